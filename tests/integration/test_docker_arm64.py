"""The arm64 path, built for real under emulation: the arm64-cpu image through the same template with
--platform linux/arm64 (qemu-user-static via binfmt_misc), its smoke test, and a short benchmark inside it whose
results render like any other device's.

Needs `.ci/arm64-setup.sh` (qemu, binfmt_misc, an arm64 debian:bookworm-slim made with debootstrap). Slow under
emulation: not in the default CI run (`.ci/arm64-check` runs it; marker `arm64`).
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
from edgebench.docker import cabundle

pytestmark = [pytest.mark.arm64, pytest.mark.docker, pytest.mark.slow]

ARM64_BASE = os.environ.get("EDGEBENCH_ARM64_BASE", "edgebench-base/debian:bookworm-slim-arm64")
NOTES = Path(__file__).resolve().parents[2] / "build" / "logs" / "arm64.json"

SUITE = """\
name: arm64-check
threads: [2]
pin_threads: false
test_images: 300
overhead_check: false
scenarios:
  testset:    {batch_size: 32, repeats: 1}
  latency:    {batch_size: 1, min_iterations: 10, min_seconds: 0.5, warmup_iterations: 2, warmup_seconds: 0.2}
runs:
  - {backend: onnxruntime, precisions: [fp32]}
  - {backend: tflite, precisions: [fp32]}
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
    r = dbuild.build_image("arm64-cpu", base_image=ARM64_BASE, ca_bundle=cabundle.resolve(None), smoke_test=True,
                           echo=sys.stderr)
    _note("build", {"seconds": round(r.seconds, 1), "steps": r.steps, "cached_steps": r.cached_steps,
                    "log": str(r.log_path)})
    return r


def test_arm64_image_builds_under_qemu_and_passes_smoke_test(arm64_image):
    from edgebench.docker.client import api_client

    info = api_client().inspect_image(arm64_image.tag)
    assert arm64_image.tag == f"edgebench:{__version__}-arm64-cpu"
    assert info["Architecture"] == "arm64" and info["Os"] == "linux"
    assert info["Config"]["Labels"]["io.edgebench.platform"] == "linux/arm64"
    smoke = arm64_image.smoke_log_path.read_text()
    assert "arm64-cpu image test ok" in smoke and '"tensorflow": "2.12.1"' in smoke


def test_short_bench_inside_the_arm64_image_renders(arm64_image, small_model_path, cifar_source, tmp_path):
    from edgebench.export import export_all
    from edgebench.launchers import BenchRequest
    from edgebench.launchers.container import ContainerLauncher
    from edgebench.report import render_report

    art = tmp_path / "artifacts"
    art.mkdir()
    shutil.copy2(small_model_path, art / "model.keras")
    export_all(art / "model.keras", formats=["onnx-fp32", "tflite-fp32"], data_source=cifar_source,
               parity_images=64, log=None)
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "results" / "arm64-qemu.json"
    started = time.monotonic()
    req = BenchRequest(artifacts=str(art), out=str(out), suite=str(suite), device="arm64-qemu",
                       data=str(cifar_source), test_limit=300, reference="onnxruntime")
    res = ContainerLauncher("arm64-cpu", echo=sys.stderr).launch(req)
    doc = json.loads(Path(res.results).read_text())
    ok = [r for r in doc["rows"] if r["status"] == "ok"]
    _note("bench", {"seconds": round(time.monotonic() - started, 1), "ok_rows": len(ok),
                    "rows": [(r["backend"], r["scenario"], r.get("throughput_ips")) for r in ok]})
    assert {r["backend"] for r in ok} == {"onnxruntime", "tflite"}, [(r["id"], r["reason"]) for r in doc["rows"]]
    machine = json.dumps(doc["environment"])
    assert "aarch64" in machine, "the results say the benchmark ran on aarch64"
    html, md = render_report([str(res.results)], str(tmp_path / "report"), title="arm64 under qemu")
    assert Path(html).is_file() and "arm64-qemu" in Path(md).read_text()
