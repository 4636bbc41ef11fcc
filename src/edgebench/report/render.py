"""Render report.html (self-contained: CSS and SVG inline, no network) and report.md (the same tables,
charts as charts/*.svg beside it) through the jinja2 templates.

Templates: `template_dir` (argument), $EDGEBENCH_TEMPLATES, the copies shipped inside the installed
package (`edgebench/templates/`, put there by the build from the repository's `templates/`), then the
repository's `templates/` (a checkout or an editable install). The repository's folder is the one source.

Writing is all or nothing: everything is rendered in memory first; a named input that does not exist,
or no readable input at all, is a ReportError and nothing is written. Each file is replaced atomically,
and only charts that an earlier edgebench report listed in its manifest are removed.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import edgebench
from edgebench import __version__, results
from edgebench.errors import EdgebenchError
from edgebench.report import charts as charts_mod
from edgebench.report.columns import build_table
from edgebench.report.compare import compare, compare_documents, comparison_pairs
from edgebench.report.format import fmt, md_escape
from edgebench.report.gpu import gpu_section
from edgebench.report.stats import METHOD
from edgebench.report.summary import busy_count, environment_summary, flatten, highlights
from edgebench.report.views import BASELINE_BACKEND, CV_LIMIT, DocView, disambiguate
from edgebench.util import atomic_write_text

PACKAGE_DIR = Path(edgebench.__file__).resolve().parent         # src/edgebench, or site-packages/edgebench
REFERENCE_PATH = PACKAGE_DIR / "reference" / "seed-study.json"
PACKAGED_TEMPLATES = PACKAGE_DIR / "templates"                  # only in an installed (built) package
REPO_TEMPLATES = PACKAGE_DIR.parent.parent / "templates"        # <repo>/templates in a checkout
TEMPLATE_NAMES = ("report.html.j2", "report.md.j2")
MANIFEST = ".edgebench-report.json"                             # the charts this folder's report wrote


class ReportError(EdgebenchError):
    """A report that cannot be made, with the path and the cause."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def template_dirs(template_dir=None) -> List[Path]:
    cands = [template_dir, os.environ.get("EDGEBENCH_TEMPLATES"), PACKAGED_TEMPLATES, REPO_TEMPLATES]
    out = []
    for c in cands:
        if c and (Path(c) / TEMPLATE_NAMES[0]).is_file() and Path(c) not in out:
            out.append(Path(c))
    if not out:
        raise ReportError(PACKAGED_TEMPLATES, f"report templates {TEMPLATE_NAMES} not found in any of "
                                              f"{[str(c) for c in cands if c]} (reinstall edgebench)")
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


def _load(paths: Iterable) -> Tuple[List[Tuple[Dict[str, Any], str]], List[Dict[str, str]]]:
    docs, skipped = [], []
    for p in paths:
        if not Path(p).exists():
            raise ReportError(p, "no such results file")
        try:
            docs.append((results.load(p), str(p)))
        except results.ResultsError as exc:
            skipped.append({"path": exc.path, "reason": exc.reason})
    return docs, skipped


def _section(view: DocView) -> Dict[str, Any]:
    tables = [build_table([view.row_view(r) for r in view.rows_of(s, ok_only=True)], s, view.baseline)
              for s in view.scenarios()]
    doc_charts, chart_notes = charts_mod.charts_for(view)
    for c in doc_charts:
        c.filename = f"charts/{view.anchor}-{c.kind}.svg"
    return {
        "view": view, "tables": tables, "problems": view.problems(), "charts": doc_charts,
        "chart_notes": chart_notes, "env_summary": environment_summary(view),
        "env_full": flatten(view.environment) if view.environment else [], "counts": view.counts(),
        "highlights": highlights(view), "busy": busy_count(view),
    }


def build_context(result_paths: Sequence, include_reference: bool = True, baseline: str = BASELINE_BACKEND,
                  extra_documents: Sequence[Tuple[Dict[str, Any], str]] = (), title: Optional[str] = None,
                  reproduction: bool = False, with_imported: bool = False) -> Dict[str, Any]:
    """Everything the templates show. `reproduction`: exactly two documents, an original and its re-run,
    compared difference by difference (no reference). `with_imported`: imported tables (the seed study,
    CSV imports) are also compared with the measured runs and summed up in "At a glance"; by default
    they stay in their own section, compared with nothing."""
    loaded, skipped = _load(result_paths)
    loaded = list(loaded) + list(extra_documents)
    if result_paths and not loaded:
        raise ReportError(skipped[0]["path"] if len(skipped) == 1 else ", ".join(s["path"] for s in skipped),
                          "no readable results file: "
                          + "; ".join(f"{s['path']}: {s['reason']}" for s in skipped) + " (nothing written)")
    views = [DocView(doc, path, baseline) for doc, path in loaded]
    reference = None
    if reproduction:
        if len(views) != 2:
            raise ReportError(", ".join(str(p) for p in result_paths) or "-",
                              f"a reproduction report needs an original and a re-run, got {len(views)} readable files")
        views[0].role, views[1].role = "original", "re-run"
    elif include_reference:
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
            skipped.append({"path": v.path or v.label, "reason": f"cannot be rendered ({type(exc).__name__}: {exc})"})
    if not sections:
        raise ReportError(", ".join(s["path"] for s in skipped) or "-", "nothing to render (nothing written)")
    shown = [s["view"] for s in sections]
    comparisons, differences = [], None
    for a, b in comparison_pairs(shown, reference if reference in shown else None, with_imported):
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
    if reproduction and len(shown) == 2:
        differences = compare_documents(shown[0], shown[1])
    return {
        "title": title or ("edgebench reproduction: original vs re-run" if reproduction else "edgebench report"),
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "kit_version": __version__, "baseline": baseline,
        "sections": [s for s in sections if not s["view"].imported] + [s for s in sections if s["view"].imported],
        "measured_sections": [s for s in sections if not s["view"].imported],
        "imported_sections": [s for s in sections if s["view"].imported], "with_imported": with_imported,
        "comparisons": comparisons, "skipped": skipped, "inputs": [v.path for v in shown],
        "cv_limit_pct": round(CV_LIMIT * 100), "noise_method": METHOD,
        "reproduction": reproduction, "differences": differences,
        "gpu": gpu_section([v.doc for v in shown]),
    }


def _write(path: Path, text: str) -> None:
    """Atomic write, readable like any file the user creates (the temporary file is 0600)."""
    try:
        atomic_write_text(path, text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(path, 0o666 & ~umask)
    except OSError as exc:
        raise ReportError(path, f"cannot write ({exc.strerror or exc})") from exc


def _previous_charts(out: Path) -> List[str]:
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        return [c for c in data.get("charts", []) if isinstance(c, str) and c.startswith("charts/")
                and c.endswith(".svg") and "/" not in c[len("charts/"):]]
    except (OSError, ValueError, AttributeError):
        return []


def render_report(result_paths: Sequence, out_dir, title: Optional[str] = None, include_reference: bool = True,
                  baseline: str = BASELINE_BACKEND, extra_documents: Sequence[Tuple[Dict[str, Any], str]] = (),
                  template_dir=None, reproduction: bool = False, with_imported: bool = False) -> Tuple[Path, Path]:
    """Render report.html and report.md (plus charts/*.svg for the Markdown) into out_dir.

    Files that cannot be read are named in the report (and on stderr) and skipped; the rest renders.
    A named file that does not exist, or no readable file at all, raises ReportError before anything is
    written. `extra_documents` are already loaded documents with a name each (e.g. from a CSV import).
    `reproduction=True` renders two files as "original vs re-run" with every difference beyond noise.
    `with_imported=True` compares imported tables with the measured runs (default: their own section).
    Returns (html_path, md_path)."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ReportError(out, "the output folder is a file")
    ctx = build_context(result_paths, include_reference, baseline, extra_documents, title, reproduction,
                        with_imported)
    env = _environment(template_dir)
    html = env.get_template("report.html.j2").render(**ctx)
    md = env.get_template("report.md.j2").render(**ctx)
    charts = [c for s in ctx["sections"] for c in s["charts"]]
    charts += [cmp["chart"] for cmp in ctx["comparisons"] if cmp["chart"] is not None]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(out, f"cannot create the output folder ({exc.strerror or exc})") from exc
    for target in [out / "report.html", out / "report.md", out / MANIFEST] + [out / c.filename for c in charts]:
        if target.exists() and not target.is_file():   # found before anything is replaced
            raise ReportError(target, "cannot write (something that is not a file is in the way)")
    previous = _previous_charts(out)
    for c in charts:
        _write(out / c.filename, c.svg + "\n")
    html_path, md_path = out / "report.html", out / "report.md"
    _write(md_path, md)
    _write(html_path, html)
    written = [c.filename for c in charts]
    _write(out / MANIFEST, json.dumps({"generator": f"edgebench {__version__}", "charts": written}, indent=1) + "\n")
    for old in previous:  # charts of the report this one replaced, and only those
        if old not in written:
            try:
                (out / old).unlink()
            except OSError:
                pass
    for s in ctx["skipped"]:
        print(f"edgebench report: skipped {s['path']}: {s['reason']}", file=sys.stderr)
    return html_path, md_path
