"""The whole deploy path with the real x86-cpu image on the rig (Debian's registry + two fake devices behind
sshd): publish (layer check + push by digest), deploy through the registry and streamed over SSH, `bench
--devices` on both with results back and one merged report, `reproduce` of one result (and refused with
other artifacts). One image push and one rig for the module (CI budget: a few minutes).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgebench.deploy import fleet, inventory, publish, reproduce

pytestmark = [pytest.mark.deploy, pytest.mark.docker, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
SUITE = """\
name: deploy-check
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
def api():
    from edgebench.docker.client import api_client

    return api_client()


@pytest.fixture(scope="module")
def image(api, x86_cpu_image):
    """The session's one x86-cpu image (tests/integration/conftest.py), under a private tag for this module."""
    api.tag(x86_cpu_image.image_id, "edgebench-test/deploy-fleet", "x86-cpu")
    yield "edgebench-test/deploy-fleet:x86-cpu"
    api.remove_image("edgebench-test/deploy-fleet:x86-cpu", noprune=True)


@pytest.fixture(scope="module")
def artifacts(bench_artifacts):
    """The session's one export of the trained model (tests/integration/conftest.py)."""
    return bench_artifacts


@pytest.fixture(scope="module")
def fleet_setup(rig, image, api, tmp_path_factory):
    """Publish once, then dev1 through the registry (by digest); dev2 streamed over SSH meanwhile.

    The stream needs no lock entry (it sends the local image), so it runs beside the publish and the pull on
    the other core (the push's compression holds one): the same three operations, a minute less of CI. It reads
    a lock file of its own, so it never sees the publish's file half-written."""
    from concurrent.futures import ThreadPoolExecutor

    work = tmp_path_factory.mktemp("fleet")
    inv = inventory.load(rig.inventory(work / "devices.yaml"))
    lock = work / "images.lock.json"
    with ThreadPoolExecutor(1) as pool:
        streamed = pool.submit(fleet.deploy, inv, "dev2", via="ssh-stream", image=image,
                               lock=work / "stream.lock.json")
        pub = publish.publish("x86-cpu", inv.registry, image=image, api=api, lock=lock)
        reg = fleet.deploy(inv, "dev1", via="registry", lock=lock)[0]
        ssh = streamed.result()[0]
    yield {"inv": inv, "lock": lock, "pub": pub, "reg": reg, "ssh": ssh, "work": work}
    for ref in (f"{pub.entry.repo}:{pub.entry.kit_version}-x86-cpu", pub.entry.ref):  # the pushed tag and digest
        try:  # removing the last tag of a repo drops its digest too
            api.remove_image(ref, noprune=True)
        except Exception:
            pass


def test_publish_records_digest_and_deploy_both_ways_gives_the_same_image(fleet_setup, api, image, rig):
    s = fleet_setup
    entry = publish.read_lock(s["lock"])["x86-cpu"]
    assert entry.digest.startswith("sha256:") and entry.image_id == api.inspect_image(image)["Id"]
    assert entry.ref.startswith(f"{rig.registry.address}/edgebench@sha256:") and entry.git_revision
    for o, method in ((s["reg"], "registry"), (s["ssh"], "ssh-stream")):
        assert o.status == "ok", fleet.summary([o], "deploy")
        assert o.details["method"] == method and o.details["image_id"] == entry.image_id
        assert o.details["bytes"] > 100e6 and o.details["seconds"] > 0
    for dev in rig.devices:
        got = dev.docker("image", "inspect", "-f", "{{.Id}}", fleet.kit_tag("x86-cpu")).stdout.strip()
        assert got == entry.image_id


def test_devices_command_as_the_readme_writes_it(fleet_setup):
    inv = fleet_setup["inv"]
    r = subprocess.run([sys.executable, "-m", "invoke", "devices", "--inventory", str(inv.path)], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "dev1" in r.stdout and "dev2" in r.stdout and "35.4.1" in r.stdout and "x86_64" in r.stdout


@pytest.fixture(scope="module")
def benched(fleet_setup, artifacts, cifar_source):
    from edgebench.launchers import BenchRequest

    work = fleet_setup["work"]
    (work / "suite.yaml").write_text(SUITE)
    req = BenchRequest(artifacts=str(artifacts), out=str(work / "results" / "fleet.json"),
                       suite=str(work / "suite.yaml"), data=cifar_source, test_limit=300, reference="onnxruntime")
    outs = fleet.bench(fleet_setup["inv"], req, results_dir=work / "results", lock=fleet_setup["lock"], echo=None)
    return outs


def test_bench_devices_brings_results_back_with_image_digest(benched, fleet_setup, tmp_path):
    assert [o.status for o in benched] == ["ok", "ok"], fleet.summary(benched, "bench")
    entry = publish.read_lock(fleet_setup["lock"])["x86-cpu"]
    docs = {}
    for o in benched:
        path = Path(o.details["results"])
        assert path.name == f"fleet-{o.device}.json" and path.is_file()
        docs[o.device] = json.loads(path.read_text())
        c = docs[o.device]["environment"]["container"]
        assert c["image_id"] == entry.image_id and docs[o.device]["device"] == o.device
        assert c["image_digest"] == entry.ref, "the result records the image digest (lock or RepoDigests)"
        assert any(r["status"] == "ok" for r in docs[o.device]["rows"])
        t = o.details["timings"]
        assert t["preflight"] + t["artifact sync"] + t["results back"] < 30
    from edgebench.report import render_report

    html, md = render_report([o.details["results"] for o in benched], str(tmp_path / "report"), title="fleet",
                             include_reference=False)
    text = Path(md).read_text()
    assert "dev1" in text and "dev2" in text


def test_bench_again_does_not_resend_artifacts(benched, fleet_setup, artifacts, cifar_source):
    from edgebench.launchers import BenchRequest

    work = fleet_setup["work"]
    req = BenchRequest(artifacts=str(artifacts), out=str(work / "again" / "fleet.json"), suite=str(work / "suite.yaml"),
                       data=cifar_source, test_limit=300, reference="onnxruntime")
    outs = fleet.bench(fleet_setup["inv"], req, "dev2", results_dir=work / "again", lock=fleet_setup["lock"], echo=None)
    assert outs[0].status == "ok" and outs[0].details["bytes_sent"] < 100_000, outs[0].details


def test_reproduce_reruns_in_the_same_image_and_refuses_other_artifacts(benched, fleet_setup, artifacts, cifar_source,
                                                                        tmp_path):
    original = Path(next(o for o in benched if o.device == "dev1").details["results"])
    out = reproduce.run(fleet_setup["inv"], original, artifacts, data=cifar_source, results_dir=tmp_path / "results",
                        report_dir=tmp_path / "reports", lock=fleet_setup["lock"])
    assert [o.status for o in out["deploy"]] == ["ok"] and out["deploy"][0].details["method"] == "present"
    assert [o.status for o in out["bench"]] == ["ok"], fleet.summary(out["bench"], "bench")
    rerun = json.loads(Path(out["bench"][0].details["results"]).read_text())
    first = json.loads(original.read_text())
    assert rerun["environment"]["container"]["image_id"] == first["environment"]["container"]["image_id"]
    assert rerun["request"]["artifacts"] == first["request"]["artifacts"]
    assert Path(out["reports"]["dev1"]).is_file()

    other = tmp_path / "other-artifacts"
    shutil.copytree(artifacts, other)
    with open(other / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(reproduce.ReproduceError, match="model.onnx: sha256"):
        reproduce.run(fleet_setup["inv"], original, other, results_dir=tmp_path / "r2", lock=fleet_setup["lock"])


def test_bench_devices_task_as_the_readme_writes_it(benched, fleet_setup, artifacts, cifar_source, tmp_path):
    work = fleet_setup["work"]
    out = tmp_path / "task" / "seed.json"
    r = subprocess.run([sys.executable, "-m", "invoke", "bench", "--devices", "dev1", "--inventory",
                        str(fleet_setup["inv"].path), "--run", str(artifacts), "--suite", str(work / "suite.yaml"),
                        "--data", cifar_source, "--test-limit", "300", "--reference", "onnxruntime", "--out", str(out)],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "bench: 1/1 devices ok" in r.stdout and str(tmp_path / "task" / "seed-dev1.json") in r.stdout
    assert json.loads((tmp_path / "task" / "seed-dev1.json").read_text())["device"] == "dev1"
