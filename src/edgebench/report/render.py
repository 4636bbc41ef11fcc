"""Render report.html (self-contained: CSS and SVG inline, no network) and report.md (the same tables,
charts as charts/*.svg beside it) through the jinja2 templates.

Templates are looked up in this order: `template_dir` (argument), $EDGEBENCH_TEMPLATES, the repository's
`templates/` (the source of truth, when running from a checkout), then the copies shipped inside the
package (`edgebench/templates/`, for an installed kit in a container). A unit test keeps the shipped
copies identical to the repository's.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from edgebench import __version__, results
from edgebench.report import charts as charts_mod
from edgebench.report.data import (
    BASELINE_BACKEND, DocView, comparison_pairs, compare, disambiguate, environment_summary, flatten, fmt,
    highlights,
)
from edgebench.util import atomic_write_text

PACKAGE_DIR = Path(__file__).resolve().parent.parent          # src/edgebench
REFERENCE_PATH = PACKAGE_DIR / "reference" / "seed-study.json"
PACKAGED_TEMPLATES = PACKAGE_DIR / "templates"
REPO_TEMPLATES = PACKAGE_DIR.parent.parent / "templates"       # <repo>/templates in a checkout
TEMPLATE_NAMES = ("report.html.j2", "report.md.j2")


def template_dirs(template_dir=None) -> List[Path]:
    cands = [template_dir, os.environ.get("EDGEBENCH_TEMPLATES"), REPO_TEMPLATES, PACKAGED_TEMPLATES]
    out = []
    for c in cands:
        if c and (Path(c) / TEMPLATE_NAMES[0]).is_file() and Path(c) not in out:
            out.append(Path(c))
    if not out:
        raise FileNotFoundError(f"report templates {TEMPLATE_NAMES} not found in any of "
                                f"{[str(c) for c in cands if c]}")
    return out


def _environment(template_dir=None):
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in template_dirs(template_dir)]),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
    )
    env.filters["fmt"] = fmt
    env.filters["md"] = md_escape
    env.filters["safe_svg"] = Markup
    return env


def md_escape(text: Any) -> str:
    s = "" if text is None else str(text)
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("*", "\\*").replace("_", "\\_")


# ----------------------------------------------------------------------------------------------

def _load(paths: Iterable) -> Tuple[List[Tuple[Dict[str, Any], str]], List[Dict[str, str]]]:
    docs, skipped = [], []
    for p in paths:
        try:
            docs.append((results.load(p), str(p)))
        except results.ResultsError as exc:
            skipped.append({"path": exc.path, "reason": exc.reason})
    return docs, skipped


def _section(view: DocView) -> Dict[str, Any]:
    tables = [view.table(s) for s in view.scenarios()]
    doc_charts, chart_notes = charts_mod.charts_for(view)
    for c in doc_charts:
        c.filename = f"charts/{view.anchor}-{c.kind}.svg"
    env_full = flatten(view.environment) if view.environment else []
    return {
        "view": view, "tables": tables, "charts": doc_charts, "chart_notes": chart_notes,
        "env_summary": environment_summary(view), "env_full": env_full, "counts": view.counts(),
        "highlights": highlights(view),
    }


def build_context(result_paths: Sequence, include_reference: bool = True, baseline: str = BASELINE_BACKEND,
                  extra_documents: Sequence[Tuple[Dict[str, Any], str]] = (), title: Optional[str] = None
                  ) -> Dict[str, Any]:
    loaded, skipped = _load(result_paths)
    loaded = list(loaded) + list(extra_documents)
    reference = None
    views: List[DocView] = []
    for doc, path in loaded:
        views.append(DocView(doc, path, baseline))
    if include_reference:
        try:
            reference = DocView(results.load(REFERENCE_PATH), str(REFERENCE_PATH), baseline)
            reference.is_reference = True
            views.append(reference)
        except results.ResultsError as exc:
            skipped.append({"path": exc.path, "reason": f"seed-study reference: {exc.reason}"})
    disambiguate(views)
    sections = []
    for v in views:
        try:
            sections.append(_section(v))
        except Exception as exc:  # a malformed file must not take the others down: name it, skip it
            skipped.append({"path": v.path or v.label,
                            "reason": f"cannot be rendered ({type(exc).__name__}: {exc})"})
    rendered = {id(s["view"]) for s in sections}
    comparisons = []
    for a, b in comparison_pairs([s["view"] for s in sections],
                                 reference if reference is not None and id(reference) in rendered else None):
        try:
            cmp = compare(a, b)
        except Exception as exc:
            skipped.append({"path": b.path or b.label,
                            "reason": f"cannot be compared with {a.label} ({type(exc).__name__}: {exc})"})
            continue
        cmp["chart"] = charts_mod.comparison_bars(cmp)
        if cmp["chart"] is not None:
            cmp["chart"].filename = f"charts/{cmp['anchor']}.svg"
        comparisons.append(cmp)
    local = [s for s in sections if not s["view"].imported]
    imported = [s for s in sections if s["view"].imported]
    return {
        "title": title or "edgebench report",
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "kit_version": __version__,
        "baseline": baseline,
        "sections": local + imported,
        "comparisons": comparisons,
        "skipped": skipped,
        "inputs": [s["view"].path for s in sections],
        "cv_limit_pct": 10,
    }


def _write(path: Path, text: str) -> None:
    """Atomic write, readable like any file the user creates (the temporary file is 0600)."""
    atomic_write_text(path, text)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def render_report(result_paths: Sequence, out_dir, title: Optional[str] = None, include_reference: bool = True,
                  baseline: str = BASELINE_BACKEND, extra_documents: Sequence[Tuple[Dict[str, Any], str]] = (),
                  template_dir=None) -> Tuple[Path, Path]:
    """Render report.html and report.md (plus charts/*.svg for the Markdown) into out_dir.

    Files that cannot be read are named in the report (and on stderr) and skipped; the rest renders.
    `extra_documents` are already loaded documents with a name each (e.g. from a CSV import).
    Returns (html_path, md_path)."""
    out = Path(out_dir)
    ctx = build_context(result_paths, include_reference, baseline, extra_documents, title)
    env = _environment(template_dir)
    html = env.get_template("report.html.j2").render(**ctx)
    md = env.get_template("report.md.j2").render(**ctx)
    out.mkdir(parents=True, exist_ok=True)
    written = {c.filename for s in ctx["sections"] for c in s["charts"]}
    written |= {cmp["chart"].filename for cmp in ctx["comparisons"] if cmp["chart"] is not None}
    for old in (out / "charts").glob("*.svg"):  # charts of an earlier report in the same folder
        if f"charts/{old.name}" not in written:
            old.unlink()
    for s in ctx["sections"]:
        for c in s["charts"]:
            _write(out / c.filename, c.svg + "\n")
    for cmp in ctx["comparisons"]:
        if cmp["chart"] is not None:
            _write(out / cmp["chart"].filename, cmp["chart"].svg + "\n")
    html_path, md_path = out / "report.html", out / "report.md"
    _write(html_path, html)
    _write(md_path, md)
    for s in ctx["skipped"]:
        print(f"edgebench report: skipped {s['path']}: {s['reason']}", file=sys.stderr)
    return html_path, md_path
