"""`make test` runs the real-package tests (tests/unit/test_jetson_real_*.py) on the Jetson image's Python 3.8.

The suite itself runs on the host's Python (3.11 here), where those tests skip. This test builds (once, then
reuses) build/venv-py38-real from a Python 3.8 interpreter: requirements/py38-jetson-real.txt (cuda-python,
Polygraphy, jetson-stats at the image's pins) plus pytest and the few kit dependencies the tests import, at the
pins of requirements/test.txt and host.txt; then it runs the real-package tests there with
EDGEBENCH_REQUIRE=real-packages, so a missing package fails rather than skips. About 40 s the first time on 2
cores, a few seconds after. It skips, saying what is missing, without a Python 3.8 or when pip cannot install
the pins; it does nothing under a 3.8 that already has them (`.ci/py38-check` runs the tests directly there).
"""
from __future__ import annotations

import fcntl
import glob
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from jetson_real import REQUIRE_KEY

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / "build" / "venv-py38-real"
REAL = ROOT / "requirements" / "py38-jetson-real.txt"
#: what the real-package tests import besides the pinned Jetson packages (taken at the host files' pins)
RUNNER = {"pytest", "pluggy", "iniconfig", "exceptiongroup", "tomli", "packaging", "numpy", "pyyaml", "psutil"}


def _strict() -> bool:
    return REQUIRE_KEY in {r.strip() for r in os.environ.get("EDGEBENCH_REQUIRE", "").split(",")}


def _missing(reason: str) -> None:
    if _strict():
        pytest.fail(f"EDGEBENCH_REQUIRE names {REQUIRE_KEY!r}, but {reason}")
    pytest.skip(reason)


def find_py38() -> str:
    """$PY38, else pyenv's newest 3.8, else python3.8 on PATH that really runs; "" when there is none."""
    if os.environ.get("PY38"):
        return os.environ["PY38"]
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = sorted(glob.glob(f"{root}/versions/3.8.*/bin/python3.8"),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", p.split("/versions/")[1])])
    if found:
        return found[-1]
    try:
        if subprocess.run(["python3.8", "-c", "import sys"], capture_output=True, timeout=30).returncode == 0:
            return "python3.8"
    except (OSError, subprocess.TimeoutExpired):
        pass
    return ""


def requirements() -> str:
    """The venv's requirement lines: the real-package pins, then the runner's lines of test.txt and host.txt."""
    lines = [ln for ln in REAL.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    for name in ("test.txt", "host.txt"):
        for ln in (ROOT / "requirements" / name).read_text().splitlines():
            m = re.match(r"([A-Za-z0-9_.-]+)==", ln)
            if m and m.group(1).lower() in RUNNER:
                lines.append(ln)
    return "\n".join(lines) + "\n"


def ensure_venv(py: str) -> Path:
    """build/venv-py38-real, (re)built when its requirement lines changed; a file lock keeps two runs apart."""
    want = requirements()
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / ".venv-py38-real.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = VENV / ".requirements"
        if (VENV / "bin" / "python").is_file() and stamp.is_file() and stamp.read_text() == want:
            return VENV
        if not (VENV / "bin" / "python").is_file():
            r = subprocess.run([py, "-m", "venv", str(VENV)], capture_output=True, text=True, timeout=300)
            if r.returncode:
                _missing(f"`{py} -m venv` failed (Ubuntu: apt-get install python3.8-venv): {r.stderr.strip()[-300:]}")
        reqs = VENV / "requirements-real.txt"
        reqs.write_text(want)
        env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
        r = subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "-q", "-r", str(reqs)],
                           capture_output=True, text=True, timeout=900, env=env)
        if r.returncode:
            tail = [ln for ln in (r.stdout + r.stderr).splitlines() if "is ignored" not in ln][-5:]
            _missing(f"pip could not install {REAL.relative_to(ROOT)} (+ pytest) into {VENV.relative_to(ROOT)} "
                     f"with {py}: " + " | ".join(tail))
        stamp.write_text(want)
    return VENV


def test_real_package_tests_pass_on_python38():
    if sys.version_info[:2] == (3, 8):
        pytest.skip("this is Python 3.8: the real-package tests run in this session directly (.ci/py38-check)")
    py = find_py38()
    if not py:
        _missing("no Python 3.8 (the Jetson image's) for the real-package tests: none in $PY38, ~/.pyenv/versions/"
                 "3.8.*, or on PATH (pyenv install 3.8.18, or apt-get install python3.8 python3.8-venv)")
    venv = ensure_venv(py)
    files = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "unit").glob("test_jetson_real_*.py")
                   if p.name != Path(__file__).name)
    env = dict(os.environ, EDGEBENCH_REQUIRE=REQUIRE_KEY, PYTHONPATH=str(ROOT / "src"))
    r = subprocess.run([str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
                       cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    summary = (r.stdout.strip().splitlines() or [""])[-1]
    assert r.returncode == 0, f"the real-package tests failed on {py}:\n{r.stdout[-4000:]}\n{r.stderr[-2000:]}"
    assert " passed" in summary and "skipped" not in summary, summary
    print(f"real-package tests on {py}: {summary}")
