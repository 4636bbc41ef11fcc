"""What the report writes, and when: nothing unless there is something to render, atomically, never
deleting charts it did not write; a named input that does not exist is an error; one copy of each
template, shipped inside the installed package."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from report_helpers import make_doc, write

from edgebench.report import ReportError, render_report
from edgebench.report.render import MANIFEST, PACKAGE_DIR, REPO_TEMPLATES, TEMPLATE_NAMES, template_dirs

ROOT = Path(__file__).resolve().parents[2]


def _snapshot(folder: Path):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def good_report(tmp_path):
    p = write(tmp_path / "good.json", make_doc())
    out = tmp_path / "out"
    render_report([p], out, include_reference=False)
    return out


def test_a_named_input_that_does_not_exist_is_an_error_and_nothing_changes(tmp_path, good_report):
    before = _snapshot(good_report)
    good = tmp_path / "good.json"
    with pytest.raises(ReportError) as exc:
        render_report([good, tmp_path / "missing.json"], good_report)
    assert exc.value.path.endswith("missing.json") and "no such results file" in exc.value.reason
    assert _snapshot(good_report) == before


def test_unreadable_inputs_never_replace_a_good_report(tmp_path, good_report):
    before = _snapshot(good_report)
    (tmp_path / "bad.json").write_text("{ not json")
    with pytest.raises(ReportError, match="no readable results file"):
        render_report([tmp_path / "bad.json"], good_report)
    assert _snapshot(good_report) == before and len(before) > 3


def test_nothing_to_render_is_an_error(tmp_path):
    with pytest.raises(ReportError, match="nothing to render"):
        render_report([], tmp_path / "out", include_reference=False)
    assert not (tmp_path / "out").exists()


def test_charts_it_did_not_write_are_kept(tmp_path):
    p = write(tmp_path / "r.json", make_doc())
    out = tmp_path / "out"
    (out / "charts").mkdir(parents=True)
    (out / "charts" / "my-own-drawing.svg").write_text("<svg/>")
    render_report([p], out, include_reference=False)
    assert (out / "charts" / "my-own-drawing.svg").read_text() == "<svg/>"


def test_charts_of_the_report_it_replaced_are_removed(tmp_path):
    out = tmp_path / "out"
    render_report([write(tmp_path / "a.json", make_doc("old-device"))], out, include_reference=False)
    old = set(json.loads((out / MANIFEST).read_text())["charts"])
    assert old and all((out / c).is_file() for c in old)
    render_report([write(tmp_path / "b.json", make_doc("new-device"))], out, include_reference=False)
    new = set(json.loads((out / MANIFEST).read_text())["charts"])
    assert not any((out / c).exists() for c in old - new) and all((out / c).is_file() for c in new)


def test_output_folder_that_is_a_file_is_an_error(tmp_path):
    p = write(tmp_path / "r.json", make_doc())
    (tmp_path / "afile").write_text("keep me")
    for out in (tmp_path / "afile", tmp_path / "afile" / "sub"):
        with pytest.raises(ReportError) as exc:
            render_report([p], out, include_reference=False)
        assert "afile" in exc.value.path
    assert (tmp_path / "afile").read_text() == "keep me"


def test_no_temporary_files_are_left(tmp_path):
    p = write(tmp_path / "r.json", make_doc())
    render_report([p], tmp_path / "out", include_reference=False)
    assert not [f for f in (tmp_path / "out").rglob("*") if f.name.endswith(".tmp")]


# ----------------------------------------------------------------------------------------------
# one copy of each template

def test_the_templates_have_one_home():
    assert not (ROOT / "src" / "edgebench" / "templates").exists(), "the duplicate template folder is back"
    assert template_dirs()[-1] == REPO_TEMPLATES or (PACKAGE_DIR / "templates" / TEMPLATE_NAMES[0]).is_file()


def test_an_explicit_template_folder_wins(tmp_path):
    for name in TEMPLATE_NAMES:
        shutil.copy(REPO_TEMPLATES / name, tmp_path / name)
    (tmp_path / "report.md.j2").write_text("custom {{ title }}\n")
    _, md = render_report([write(tmp_path / "r.json", make_doc())], tmp_path / "out", include_reference=False,
                          template_dir=tmp_path)
    assert md.read_text() == "custom edgebench report\n"


@pytest.mark.slow
def test_installed_package_carries_the_templates(tmp_path):
    """`pip install .` (not editable): the wheel has edgebench/templates/*.j2 from templates/, and the
    installed kit renders with them, away from the checkout."""
    src = tmp_path / "src-copy"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(ROOT / "templates", src / "templates")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(src)], check=True, capture_output=True, cwd=tmp_path)
    for name in TEMPLATE_NAMES:
        assert (target / "edgebench" / "templates" / name).read_text() == (REPO_TEMPLATES / name).read_text()
    results_file = write(tmp_path / "r.json", make_doc())
    code = ("import sys; from edgebench.report import render_report; from edgebench.report.render import "
            "template_dirs; print(template_dirs()[0]); render_report([sys.argv[1]], sys.argv[2])")
    env = dict(os.environ, PYTHONPATH=str(target))
    env.pop("EDGEBENCH_TEMPLATES", None)
    res = subprocess.run([sys.executable, "-c", code, str(results_file), str(tmp_path / "out")],
                         capture_output=True, text=True, cwd=tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(target / "edgebench" / "templates")
    assert (tmp_path / "out" / "report.html").is_file()


def test_invoke_report_with_a_missing_file_fails_as_typed(tmp_path):
    """README: `invoke report --results missing.json` exits non-zero, names the path, writes nothing."""
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "invoke", "report", "--results", "missing.json", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "missing.json: no such results file" in res.stderr + res.stdout
    assert not out.exists()


def test_a_file_that_cannot_be_written_is_our_error_with_its_path(tmp_path):
    out = tmp_path / "out"
    (out / "report.html").mkdir(parents=True)      # in the way of the page (as root, chmod would not stop us)
    with pytest.raises(ReportError) as exc:
        render_report([write(tmp_path / "r.json", make_doc())], out, include_reference=False)
    assert exc.value.path.endswith("report.html") and "cannot write" in exc.value.reason
    assert not (out / "report.md").exists() and not (out / "charts").exists()   # nothing half-replaced
