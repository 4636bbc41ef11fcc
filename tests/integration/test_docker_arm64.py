"""The arm64 path, built for real under emulation: the arm64-cpu image through the same template for linux/arm64
(qemu-user-static via binfmt_misc; pip runs natively in the install stage, see `cross_install` in its
target.yaml), its smoke test, and a short benchmark inside it whose results render like any other device's.

Needs `.ci/arm64-setup.sh` (qemu, binfmt_misc, an arm64 debian:bookworm-slim made with debootstrap). `.ci/run`
runs it after `make test` (marker `arm64`, required there: a missing qemu fails); `.ci/arm64-check` runs it alone.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from edgebench import __version__
from edgebench.docker import build as dbuild
from edgebench.docker import cabundle, targets

pytestmark = [pytest.mark.arm64, pytest.mark.docker, pytest.mark.slow]

ARM64_BASE = os.environ.get("EDGEBENCH_ARM64_BASE", "edgebench-base/debian:bookworm-slim-arm64")
NOTES = Path(__file__).resolve().parents[2] / "build" / "logs" / "arm64.json"

# A few hundred images, as the issue asks: at about 5 img/s under qemu each backend's pass costs 40 s. The openvino
# group (the image's 2025.2.0 aarch64 wheel) adds about 30 s (a child start, a 4 s load, two 2 s passes).
TEST_IMAGES = 200
SUITE = f"""\
name: arm64-check
threads: [2]
pin_threads: false
test_images: {TEST_IMAGES}
overhead_check: false
scenarios:
  testset:    {{batch_size: 50, repeats: 1}}
  latency:    {{batch_size: 1, min_iterations: 5, min_seconds: 0.2, warmup_iterations: 1, warmup_seconds: 0}}
runs:
  - {{backend: onnxruntime, precisions: [fp32]}}
  - {{backend: tflite, precisions: [fp32]}}
  - {{backend: openvino, precisions: [fp32]}}
"""


def _note(key, value):
    NOTES.parent.mkdir(parents=True, exist_ok=True)
    doc = json.loads(NOTES.read_text()) if NOTES.exists() else {}
    doc[key] = value
    NOTES.write_text(json.dumps(doc, indent=2))


@pytest.fixture(scope="module")
def arm64_image():
    from edgebench.docker.client import api_client

    api = api_client()
    info = api.inspect_image(ARM64_BASE)
    assert info["Architecture"] == "arm64", info["Architecture"]
    started = time.monotonic()
    r = dbuild.build_image("arm64-cpu", base_image=ARM64_BASE, ca_bundle=cabundle.resolve(None), smoke_test=True,
                           echo=sys.stderr)
    _note("build", {"seconds": round(r.seconds, 1), "steps": r.steps, "cached_steps": r.cached_steps,
                    "smoke_seconds": round(time.monotonic() - started - r.seconds, 1), "log": str(r.log_path)})
    return r


def test_arm64_image_builds_under_qemu_and_passes_smoke_test(arm64_image):
    from edgebench.docker.client import api_client

    info = api_client().inspect_image(arm64_image.tag)
    assert arm64_image.tag == f"edgebench:{__version__}-arm64-cpu"
    assert info["Architecture"] == "arm64" and info["Os"] == "linux"
    assert info["Config"]["Labels"]["io.edgebench.platform"] == "linux/arm64"
    smoke = arm64_image.smoke_log_path.read_text()
    assert "arm64-cpu image test ok" in smoke and '"tensorflow": "2.12.1"' in smoke


def test_arm64_image_keeps_no_ca_and_records_its_packages(arm64_image):
    """pip ran in the native install stage: no step or setting of the image names the CA, and the image keeps its
    pip freeze (made by the image's own Python) with the pinned TensorFlow and the kit."""
    from edgebench.docker.client import api_client
    from edgebench.docker.run import run_in_image

    api = api_client()
    history = [h.get("CreatedBy", "") for h in api.history(arm64_image.tag)]
    assert history and not [h for h in history if "extra-ca" in h or "PIP_CERT" in h]
    env = api.inspect_image(arm64_image.tag)["Config"]["Env"]
    assert not any(e.startswith(("PIP_CERT=", "SSL_CERT_FILE=", "REQUESTS_CA_BUNDLE=")) for e in env)
    script = "cat /opt/edgebench-build/pip-freeze.txt; ls /etc/edgebench 2>&1; head -1 /opt/edgebench/bin/edgebench"
    r = run_in_image(api, arm64_image.tag, ["-c", script], entrypoint=["/bin/sh"], target=targets.load("arm64-cpu"),
                     kind="arm64-check", check=True)
    assert "tensorflow-cpu-aws==2.12.1" in r.stdout and "\npip==" in r.stdout
    assert "edgebench @ file:///opt/edgebench-build/dist/" in r.stdout, "the kit is installed from its wheel"
    assert "No such file or directory" in r.stdout, "the install stage's /etc/edgebench (the CA) is not in the image"
    assert "#!/opt/edgebench/bin/python" in r.stdout


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    """A two-stage ResNet at 16/32 channels from the kit's own builder (models.resnet; seeded random weights).

    Under qemu every FLOP is emulated (ResNet18 ran at about 5 img/s here), and this test checks that the image
    runs the benchmark and that its results render, not how fast an Arm CPU is: a small fraction of ResNet18's
    FLOPs makes the reference pass and both test-set passes take seconds instead of 1.5 minutes."""
    pytest.importorskip("tensorflow")
    import tensorflow as tf

    from edgebench import models

    tf.random.set_seed(7)
    model = models.resnet((1, 1), "imagenet", "tiny-resnet", widths=(16, 32))
    path = tmp_path_factory.mktemp("tiny-model") / "model.keras"
    model.save(path)
    return path


def test_short_bench_inside_the_arm64_image_renders(arm64_image, tiny_model_path, cifar_source, tmp_path):
    from edgebench.export import export_all
    from edgebench.launchers import BenchRequest
    from edgebench.launchers.container import ContainerLauncher
    from edgebench.report import render_report

    art = tmp_path / "artifacts"
    art.mkdir()
    shutil.copy2(tiny_model_path, art / "model.keras")
    export_all(art / "model.keras", formats=["onnx-fp32", "tflite-fp32", "openvino-fp32"], data_source=cifar_source,
               parity_images=64, log=None)
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "results" / "arm64-qemu.json"
    started = time.monotonic()
    req = BenchRequest(artifacts=str(art), out=str(out), suite=str(suite), device="arm64-qemu",
                       data=str(cifar_source), test_limit=TEST_IMAGES, reference="onnxruntime")
    res = ContainerLauncher("arm64-cpu", echo=sys.stderr).launch(req)
    doc = json.loads(Path(res.results).read_text())
    ok = [r for r in doc["rows"] if r["status"] == "ok"]
    _note("bench", {"seconds": round(time.monotonic() - started, 1), "ok_rows": len(ok),
                    "rows": [(r["backend"], r["scenario"], r.get("throughput_ips")) for r in ok]})
    assert {r["backend"] for r in ok} == {"onnxruntime", "tflite", "openvino"}, [(r["id"], r["reason"])
                                                                               for r in doc["rows"]]
    machine = json.dumps(doc["environment"])
    assert "aarch64" in machine, "the results say the benchmark ran on aarch64"
    # OpenVINO's aarch64 wheel (its ARM CPU plugin) gives the reference's top-1 on every image
    ov = next(r for r in ok if r["backend"] == "openvino" and r["scenario"] == "testset")
    assert ov["accuracy"]["top1_agreement"] == 1.0 and ov["accuracy"]["max_abs_logit_diff"] < 1e-4, ov["accuracy"]
    assert ov["extra"]["backend_versions"]["openvino"].startswith("2025.")
    html, md = render_report([str(res.results)], str(tmp_path / "report"), title="arm64 under qemu")
    text = Path(md).read_text()
    assert Path(html).is_file() and "arm64-qemu" in text
    assert "Emulated: these aarch64 results ran under user-mode emulation (qemu)" in text, "speed there means nothing"
