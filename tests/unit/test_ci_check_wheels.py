""".ci/check-wheels: how it reads the requirement files (markers, own indexes, NVIDIA's local versions)."""
from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("packaging")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cw():
    loader = importlib.machinery.SourceFileLoader("check_wheels", str(ROOT / ".ci" / "check-wheels"))
    spec = importlib.util.spec_from_loader("check_wheels", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def test_markers_pick_each_pythons_pin(cw):
    line = 'scipy==1.10.1; python_version < "3.9"'
    assert cw.applies(line, "3.8", "x86_64") == "scipy==1.10.1"
    assert cw.applies(line, "3.11", "x86_64") == ""
    assert cw.applies("numpy==1.23.5", "3.10", "aarch64") == "numpy==1.23.5"


def test_every_host_python_gets_exactly_one_pin_per_package(cw):
    pins = cw.parse(ROOT / "requirements" / "host.txt")[0] + cw.parse(ROOT / "requirements" / "test.txt")[0]
    for py in cw.HOST_PYTHONS:
        names = [p.split("==")[0].lower() for p in (cw.applies(x, py, "x86_64") for x in pins) if p]
        assert len(names) == len(set(names)), py
        assert "tensorflow-cpu" in names and "pytest" in names


def test_own_index_and_local_versions_are_listed_unchecked(cw):
    pins, index = cw.parse(ROOT / "containers" / "x86-cuda" / "requirements-onnxruntime-cuda12.txt")
    assert pins == ["onnxruntime-gpu==1.18.0"] and "onnxruntime-cuda-12" in index
    rows = cw.check("x86-cuda", pins, "linux/amd64", "3.10", index)
    assert rows[0][1] == "unchecked" and "not reachable" in rows[0][2]
    rows = cw.check("jetson-jp512", ["tensorflow==2.12.0+nv23.06", "jax==0.4.13"], "linux/arm64", "3.8")
    assert [r[1] for r in rows] == ["unchecked", "sdist-allowed"]


def test_jetson_pins_are_complete_and_h5py_has_a_wheel(cw):
    pins = cw.parse(ROOT / "containers" / "jetson-jp512" / "requirements.txt")[0]
    names = {p.split("==")[0].lower() for p in pins}
    assert "h5py==3.10.0" in pins, "3.11 has no cp38 aarch64 wheel"
    assert {"wrapt", "grpcio", "absl-py", "tensorboard", "keras", "typing_extensions"} <= names
    assert all("==" in p for p in pins)
