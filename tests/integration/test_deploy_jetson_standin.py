"""`bench --devices` onto a Jetson stand-in: a rig device that looks like an Orin to the kit (deploy_rig.Rig with
jetson=[0]): L4T R35.4.1's release file, an engine whose runtime `nvidia` is runc behind a wrapper that logs each
call, nvpmodel's status and config, a tegrastats printing jetson-stats' own Orin line, and jtop's socket
(root:4242, mode 0660), under the device's board root as JetPack lays them out.

This tests the PLUMBING, not the numbers: that the preflight reads the board (power mode, jetson-stats, the files
a bench will mount) and warns below the maximum mode; that the fleet bench gives the device's container the
board-state mounts that the device reported (machine/boardstate.py, the local launcher's definition too), the
jtop socket's group and the `nvidia` runtime; and that the result records the board state and its source. The
stand-in is this x86 machine running the x86-cpu image as a target `jetson-standin` (that image with the
Jetson's GPU access and L4T): no GPU, no TensorRT, no jtop service, so the rows' times say nothing about a Jetson.
Cost: one rig device, the x86-cpu image (cached, like the other docker tests) loaded onto it from this engine,
the session's exported model, one short ONNX Runtime row.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from edgebench.deploy import fleet, inventory

pytestmark = [pytest.mark.deploy, pytest.mark.docker, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
TARGET = "jetson-standin"
SUITE = """\
name: jetson-standin
threads: [2]
pin_threads: false
test_images: 300
overhead_check: false
scenarios:
  latency: {batch_size: 1, min_iterations: 30, min_seconds: 1, warmup_iterations: 5, warmup_seconds: 0.3}
runs:
  - {backend: onnxruntime, precisions: [fp32]}
"""


@pytest.fixture(scope="module")
def standin():
    """The rig with one device, a Jetson stand-in."""
    import deploy_rig  # on sys.path through tests/conftest.py

    why = deploy_rig.missing()
    if why:
        pytest.skip(why)
    rig = deploy_rig.Rig(1, jetson=[0])
    try:
        rig.start()
        yield rig
    finally:
        rig.stop()


@pytest.fixture(scope="module")
def kit_root(tmp_path_factory):
    """This checkout as the kit sees it ($EDGEBENCH_ROOT) with one target more: `jetson-standin`, the x86-cpu
    image's folder with the Jetson's GPU access (runtime nvidia), its L4T and its jetson-stats pin."""
    import yaml

    from edgebench.docker.targets import load

    root = tmp_path_factory.mktemp("kit-root")
    (root / "containers").mkdir()
    for d in (REPO / "containers").iterdir():
        (root / "containers" / d.name).symlink_to(d)
    (root / "templates").symlink_to(REPO / "templates")
    folder = root / "containers" / TARGET
    shutil.copytree(REPO / "containers" / "x86-cpu", folder)
    data = yaml.safe_load((folder / "target.yaml").read_text())
    jetson = load("jetson-jp512")
    data.update(name=TARGET, gpu=jetson.gpu, l4t=jetson.l4t, description="deploy rig's Jetson stand-in (x86-cpu image)")
    data["versions"]["jetson-stats"] = jetson.versions["jetson-stats"]
    (folder / "target.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    before = os.environ.get("EDGEBENCH_ROOT")
    os.environ["EDGEBENCH_ROOT"] = str(root)
    yield root
    if before is None:
        os.environ.pop("EDGEBENCH_ROOT", None)
    else:
        os.environ["EDGEBENCH_ROOT"] = before


@pytest.fixture(scope="module")
def deployed(standin, x86_cpu_image):
    """The session's x86-cpu image (tests/integration/conftest.py; session-scoped, so pytest builds it before
    kit_root points $EDGEBENCH_ROOT elsewhere) loaded onto the stand-in's engine as the stand-in target's tag."""
    res = x86_cpu_image
    dev = standin.devices[0]
    save = subprocess.Popen(["docker", "save", res.image_id], stdout=subprocess.PIPE)
    load = subprocess.run(["docker", "-H", f"unix://{dev.socket}", "load"], stdin=save.stdout, capture_output=True,
                          text=True, timeout=900)
    save.stdout.close()
    assert save.wait(timeout=60) == 0 and load.returncode == 0, load.stderr
    tagged = dev.docker("tag", res.image_id, fleet.kit_tag(TARGET))
    assert tagged.returncode == 0, tagged.stderr
    return res.image_id


@pytest.fixture(scope="module")
def inv(standin, kit_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("standin")
    dev = standin.devices[0]
    return inventory.load(standin.inventory(work / "devices.yaml", registry=False,
                                            devices=[standin.entry(dev, target=TARGET)]))


def test_preflight_reads_the_board_and_warns_below_the_maximum_mode(standin, inv):
    dev = standin.devices[0]
    (check,) = fleet.devices_table(inv)
    assert check.ok, check.problems
    assert check.l4t == "35.4.1" and "nvidia" in check.runtimes
    assert check.power_mode == "15W (mode 0)" and check.jetson_clocks in (None, "on", "off")
    assert sorted(check.board_files) == ["jtop_socket", "l4t_release", "nvpmodel_conf", "nvpmodel_status",
                                         "tegrastats"]
    assert any("jetson-stats is not installed on the device" in w for w in check.warnings), check.warnings
    assert not any("power mode" in w for w in check.warnings)
    dev.set_power_mode(1)
    try:
        (low,) = fleet.devices_table(inv)
    finally:
        dev.set_power_mode(0)
    assert low.ok and low.power_mode == "7W (mode 1)", "a lower mode is a warning, not a refusal"
    assert any(w.startswith("power mode 7W (mode 1) is not the maximum") for w in low.warnings), low.warnings


def test_bench_devices_records_the_board_state(standin, inv, deployed, bench_artifacts, cifar_source,
                                                tmp_path):
    from edgebench.launchers import BenchRequest

    dev = standin.devices[0]
    (tmp_path / "suite.yaml").write_text(SUITE)
    calls_before = dev.runtime_calls()
    req = BenchRequest(artifacts=str(bench_artifacts), out=str(tmp_path / "results" / "standin.json"),
                       suite=str(tmp_path / "suite.yaml"), data=cifar_source, test_limit=300, reference="onnxruntime")
    (out,) = fleet.bench(inv, req, results_dir=tmp_path / "results", lock=tmp_path / "none.lock.json", echo=None)
    assert out.status == "ok", fleet.summary([out], "bench")
    doc = json.loads(Path(out.details["results"]).read_text())

    # the runtime choice: the bench container was created through the engine's `nvidia` runtime
    assert any(" create " in f" {c} " for c in dev.runtime_calls()[len(calls_before):]), dev.runtime_calls()

    state = doc["environment"]["jetson"]["state"]
    assert state["host_l4t"] == "35.4.1", "the host's release file reached the container"
    assert state["power_mode"] == {"id": 0, "name": "15W", "max_id": 0, "source": "nvpmodel status file"}
    assert state["source"] == "host files + sysfs"
    assert state["jtop_fallback"] == "jetson-stats is not installed in this image", state
    sock = state["jtop_socket"]
    assert sock["path"] == "/run/jtop.sock" and sock["gid"] == 4242 and sock["mode"] == "660"
    assert sock["in_groups"] is True, "the container was given the jtop socket's group"
    assert state["tegrastats"] == "/usr/local/bin/tegrastats"
    assert not any("power mode" in w for w in state["warnings"])

    ok = [r for r in doc["rows"] if r["status"] == "ok"]
    assert ok, [(r["backend"], r["status"], r.get("reason")) for r in doc["rows"]]
    rails = ok[0]["telemetry"]["rails_w_mean"]
    assert rails and rails["VDD_GPU_SOC"] == pytest.approx(2.39), "tegrastats (the stand-in) ran in the container"
    left = dev.docker("ps", "-aq", "--filter", "label=io.edgebench.created-by=bench").stdout.split()
    assert left == [], "the bench container was removed"
