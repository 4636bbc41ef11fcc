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


def test_the_boards_light_install_is_checked_for_aarch64_cp38_and_can_deploy(cw):
    """The Jetson guide's `make setup-light` (requirements/host-light.txt) is checked where it runs: aarch64
    cp38, glibc 2.31 (JetPack 5's Ubuntu 20.04); it has the docker SDK's ssh transport and no TensorFlow."""
    assert ("host-light", ("host-light.txt",), "linux/arm64", ["3.8"]) in cw.HOST_INSTALLS
    assert cw.PLATFORMS["linux/arm64"][0] == "manylinux_2_31_aarch64"
    names = {p.split("==")[0].lower() for p in cw.host_pins(("host-light.txt",), "3.8", "aarch64")}
    assert {"invoke", "docker", "paramiko", "jinja2", "pyyaml", "bcrypt", "pynacl", "cryptography"} <= names
    assert not names & {"tensorflow", "tensorflow-cpu", "h5py", "onnx", "tf2onnx"}
    host = {p.split("==")[0].lower(): p for p in cw.host_pins(("host.txt",), "3.8", "x86_64")}
    for pin in cw.host_pins(("host-light.txt",), "3.8", "aarch64"):  # the same versions as the full install
        assert host[pin.split("==")[0].lower()] == pin


def test_py38_real_package_pins_are_the_jetson_images(cw):
    jetson = set(cw.parse(ROOT / "containers" / "jetson-jp512" / "requirements.txt")[0])
    real = cw.parse(ROOT / "requirements" / "py38-jetson-real.txt")[0]
    assert {"cuda-python==11.8.2", "polygraphy==0.49.9"} <= set(real) and set(real) <= jetson
    cuda = set(cw.parse(ROOT / "containers" / "x86-cuda" / "requirements.txt")[0])
    assert "polygraphy==0.49.9" in cuda and "cuda-python==12.1.0" in cuda


def test_pyproject_host_extras_can_reach_devices_over_ssh():
    text = (ROOT / "pyproject.toml").read_text()
    assert text.count('"docker[ssh]==7.1.0"') == 2 and '"docker==7.1.0"' not in text
