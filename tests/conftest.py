"""Shared fixtures and the marker policy.

Markers: slow, docker, gpu, tensorrt, jetson, browser. A test whose machine lacks what its marker
needs is skipped with the reason (pytest -ra prints them). In CI, EDGEBENCH_REQUIRE=docker,browser
turns those skips into failures, so a broken Docker or Chromium install cannot pass as green.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA_DEFAULT = REPO.parent / "shared" / "data" / "cifar10" / "cifar10-jpeg.zip"
BUILD = REPO / "build"

# decoded CIFAR-10 arrays are cached once for the whole suite, outside the user's home
os.environ.setdefault("EDGEBENCH_CACHE", str(BUILD / "test-cache"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(REPO / "tests" / "plugins"))


def _docker_reason():
    try:
        import docker

        docker.from_env(timeout=5).ping()
        return None
    except Exception as exc:
        return f"no Docker daemon answers ({type(exc).__name__}); start one: .ci/docker-setup.sh"


def _arm64_reason():
    handler = Path("/proc/sys/fs/binfmt_misc/qemu-aarch64")
    try:
        enabled = handler.read_text().splitlines()[0].strip() == "enabled"
    except (OSError, IndexError):
        enabled = False
    if not enabled:
        return "no enabled qemu-aarch64 binfmt handler: run .ci/arm64-setup.sh (or .ci/arm64-check)"
    base = os.environ.get("EDGEBENCH_ARM64_BASE", "edgebench-base/debian:bookworm-slim-arm64")
    if subprocess.run(["docker", "image", "inspect", base], capture_output=True).returncode != 0:
        return (f"no arm64 base image {base}: run .ci/arm64-setup.sh (debootstrap --arch arm64 and its second "
                f"stage under qemu, 1-2 min)")
    return _docker_reason()


def _have_gpu():
    listed = shutil.which("nvidia-smi") and subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0
    return None if listed \
        else "no NVIDIA GPU on this machine (nvidia-smi absent or failing)"


CHECKS = {
    "docker": _docker_reason,
    "gpu": _have_gpu,
    "tensorrt": lambda: None if importlib.util.find_spec("tensorrt") else
    "TensorRT is not installed (it cannot be here: PyPI's TensorRT downloads from an unreachable host); "
    "runs on Jetson / NGC images",
    "jetson": lambda: None if Path("/etc/nv_tegra_release").exists() else "not a Jetson (/etc/nv_tegra_release absent)",
    "arm64": lambda: _arm64_reason(),
    "deploy": lambda: __import__("deploy_rig").missing(),  # tests/plugins/deploy_rig.py: sshd, registry, root
    "browser": lambda: None if (shutil.which("chromium") or shutil.which("chromium-browser")) else
    "headless Chromium is not installed (apt-get install chromium)",
}


def pytest_collection_modifyitems(config, items):
    required = {r.strip() for r in os.environ.get("EDGEBENCH_REQUIRE", "").split(",") if r.strip()}
    reasons = {}
    for item in items:
        for marker, check in CHECKS.items():
            if marker in item.keywords:
                if marker not in reasons:
                    reasons[marker] = check()
                reason = reasons[marker]
                if reason and marker in required:
                    item.stash[MISSING] = f"EDGEBENCH_REQUIRE names {marker!r}, but {reason}"
                    item.fixturenames.insert(0, "_required_missing")
                elif reason:
                    item.add_marker(pytest.mark.skip(reason=reason))


MISSING = pytest.StashKey[str]()


@pytest.fixture
def _required_missing(request):
    pytest.fail(request.node.stash[MISSING])


@pytest.fixture(scope="session")
def cifar_source() -> str:
    path = Path(os.environ.get("EDGEBENCH_TEST_DATA", DATA_DEFAULT))
    if not path.exists():
        pytest.skip(f"CIFAR-10 test data not found at {path} (set EDGEBENCH_TEST_DATA)")
    return str(path)


@pytest.fixture(scope="session")
def cifar(cifar_source):
    from edgebench.data import load_cifar10

    return load_cifar10(cifar_source, progress=False)


@pytest.fixture(scope="session")
def trained_model_dir(tmp_path_factory, cifar_source) -> Path:
    """A ResNet34 (original stem) trained for one short epoch on 2,048 images: real weights, small cost."""
    from edgebench.train import TrainConfig, train

    out = tmp_path_factory.mktemp("trained")
    train(TrainConfig(model="resnet34", epochs=1, batch_size=64, train_limit=2048, test_limit=500, seed=1),
          str(out), data_source=cifar_source, progress=False)
    return out
