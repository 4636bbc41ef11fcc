"""Real Docker: build the x86-cpu image, smoke-test it, run the benchmark inside it, the error paths.

Needs a running engine and a local `debian:bookworm-slim` (`bash .ci/docker-setup.sh` makes both). The
x86-cpu image stays tagged (edgebench:<version>-x86-cpu) for reuse: the next build is all cache hits.
Everything else a test creates (containers, failed-build layers, results) is removed by the test.
"""
from __future__ import annotations

import json
import re
import shutil
import statistics
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from edgebench import __version__
from edgebench.docker import BaseImageError, BuildError, ContainerError, cabundle, targets
from edgebench.docker import build as dbuild
from edgebench.docker import run as drun

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
# The bundle a build uses when none is given: the one this host's pip already trusts (PIP_CERT, pip.conf, ...),
# exactly as `invoke build --target x86-cpu` picks it. CI configures pip like a user behind the proxy (.ci/run).
HOST_CA = cabundle.resolve(None)
REPORT = Path(__file__).resolve().parents[2] / "build" / "logs" / "docker-integration.json"


def _note(key, value):
    """Numbers worth reading after CI (build times, container/host ratio) go to build/logs/."""
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    doc = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    doc[key] = value
    REPORT.write_text(json.dumps(doc, indent=2))


@pytest.fixture(scope="session")
def api():
    from edgebench.docker.client import api_client

    return api_client()


@pytest.fixture
def cleanup(api):
    """Remove every container and image that appeared during the test (the kept x86-cpu tag aside)."""
    before_c = {c["Id"] for c in api.containers(all=True)}
    before_i = {i["Id"] for i in api.images(all=True)}
    yield
    for c in api.containers(all=True):
        if c["Id"] not in before_c:
            api.remove_container(c["Id"], force=True)
    for i in api.images(all=True):
        if i["Id"] not in before_i:
            try:
                api.remove_image(i["Id"], force=True, noprune=False)
            except Exception:  # a parent removed first, or shared with a kept image
                pass


def test_x86_cpu_builds_with_labels_and_passes_smoke_test(api, x86_cpu_image):
    r = x86_cpu_image  # the session's one build (tests/integration/conftest.py)
    _note("x86_cpu_build", {"seconds": round(r.seconds, 1), "steps": r.steps, "cached_steps": r.cached_steps,
                            "log": str(r.log_path)})
    assert r.tag == f"edgebench:{__version__}-x86-cpu"
    info = api.inspect_image(r.tag)
    assert info["Id"] == r.image_id
    labels = info["Config"]["Labels"]
    assert labels["io.edgebench.target"] == "x86-cpu"
    assert labels["io.edgebench.version"] == __version__
    assert labels["io.edgebench.base-image"] == "debian:bookworm-slim"
    assert labels["io.edgebench.tensorflow"] == "2.12.1"
    assert "tensorflow-cpu==2.12.1" in labels["io.edgebench.packages"].splitlines()
    assert labels["org.opencontainers.image.revision"]
    assert info["Config"]["Entrypoint"] == ["edgebench"]
    assert r.log_path.is_file() and "Successfully tagged" in r.log_path.read_text()
    smoke = r.smoke_log_path.read_text()
    assert "edgebench env --check" in smoke and "exit 0" in smoke
    assert "x86-cpu image test ok" in smoke


def test_rebuild_is_cached(x86_cpu_image):
    r = dbuild.build_image("x86-cpu", ca_bundle=HOST_CA, smoke_test=False, echo=None)
    _note("x86_cpu_rebuild_cached", {"seconds": round(r.seconds, 1), "cached_steps": r.cached_steps,
                                     "steps": r.steps})
    log = r.log_path.read_text()
    assert re.search(r"-r /opt/edgebench-build/requirements\.txt[^\n]*\n\s*---> Using cache", log), \
        "the pinned-requirements layer must come from the cache"
    assert r.seconds < 120
    if r.steps == r.cached_steps:  # nothing changed under src/ since the session's build
        assert r.image_id == x86_cpu_image.image_id


def test_readme_build_command_as_typed(x86_cpu_image):
    """`invoke build --target x86-cpu`, exactly as the README writes it (no --ca-bundle): it finds the bundle the
    host's pip trusts by itself, says which, builds (cached after the session's build), and prints quietly."""
    import subprocess

    invoke = Path(sys.executable).with_name("invoke")
    p = subprocess.run([str(invoke), "build", "--target", "x86-cpu"], cwd=ROOT, capture_output=True, text=True,
                       timeout=900)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-3000:]
    if HOST_CA is not None:
        assert f"extra CA bundle {HOST_CA.path} (from {HOST_CA.source})" in out
    built = [ln for ln in out.splitlines() if ln.startswith("built ")]
    assert len(built) == 1 and f"edgebench:{__version__}-x86-cpu" in built[0], out[-2000:]
    assert "smoke test of" in out and "passed" in out
    for noise in ("License", "license", "SetuptoolsDeprecationWarning", "Collecting ", "LABEL "):
        assert noise not in out, f"{noise!r} on the terminal:\n{out[-2000:]}"
    _note("readme_build_command_seconds_cached", {"lines": len(out.splitlines())})


def test_ca_bundle_is_in_no_image_layer(api, x86_cpu_image):
    """A --ca-bundle build leaves the CA in no layer: neither the history nor any layer's files name it."""
    if HOST_CA is None:
        pytest.skip("no CA bundle configured on this host, so the session's build used none: nothing to check")
    history = api.history(x86_cpu_image.tag)
    assert history and not [h["CreatedBy"] for h in history if "extra-ca" in h.get("CreatedBy", "")]
    assert not any("PIP_CERT" in h.get("CreatedBy", "") for h in history)
    env = api.inspect_image(x86_cpu_image.tag)["Config"]["Env"]
    assert not any(e.startswith(("PIP_CERT=", "SSL_CERT_FILE=", "REQUESTS_CA_BUNDLE=")) for e in env)
    import time

    started = time.monotonic()
    scan, read = _overlay_layer_names(api, x86_cpu_image.tag), "overlay2 layer folders"
    if scan is None:
        scan, read = _saved_layer_names(api, x86_cpu_image.tag), "docker save"
    found, layers = scan
    _note("image_layer_scan", {"layers": layers, "read": read, "seconds": round(time.monotonic() - started, 1)})
    assert layers >= 3
    assert not found, f"the CA is in a layer: {found}"


def _overlay_layer_names(api, tag):
    """(names with "extra-ca", layers) from the engine's own layer folders (overlay2: each layer's `diff`
    directory on this machine's disk), read as names only: seconds instead of a 2.3 GB `docker save`.
    None when the engine keeps its layers some other way, or its folders are not readable from here."""
    import os

    driver = api.inspect_image(tag).get("GraphDriver") or {}
    data = driver.get("Data") or {}
    if driver.get("Name") != "overlay2" or not data.get("UpperDir"):
        return None
    dirs = [data["UpperDir"]] + [d for d in (data.get("LowerDir") or "").split(":") if d]
    if not all(os.path.isdir(d) for d in dirs):
        return None
    found = [os.path.join(root, n) for d in dirs for root, subdirs, files in os.walk(d)
             for n in files + subdirs if "extra-ca" in n]
    return found, len(dirs)


def _saved_layer_names(api, tag):
    """(names with "extra-ca", layers) from every layer of `docker save`: any storage driver."""
    import tarfile

    found, layers = [], 0
    with tarfile.open(fileobj=_Stream(api.get_image(tag)), mode="r|") as outer:
        for member in outer:
            if member.name.endswith("layer.tar") or member.name.startswith("blobs/sha256/"):
                f = outer.extractfile(member)
                if f is None:
                    continue
                try:
                    with tarfile.open(fileobj=f, mode="r|") as layer:
                        layers += 1
                        found += [m.name for m in layer if "extra-ca" in m.name]
                except tarfile.ReadError:  # an OCI blob that is a config or manifest, not a layer
                    continue
    return found, layers


class _Stream:
    """A file-like reader over the docker SDK's chunk iterator (image save), for tarfile's stream mode."""

    def __init__(self, chunks):
        self.chunks, self.buf = iter(chunks), b""

    def read(self, n=-1):
        while n < 0 or len(self.buf) < n:
            try:
                self.buf += next(self.chunks)
            except StopIteration:
                break
        if n < 0:
            n = len(self.buf)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def test_certificate_failure_says_what_to_run(api, tmp_path, cleanup, monkeypatch):
    """Without a CA bundle behind a TLS-intercepting proxy, the build fails at pip and says the exact command."""
    folder = tmp_path / "x86-cpu"  # the real target's base stage (cached), one small pin
    shutil.copytree(ROOT / "containers" / "x86-cpu", folder)
    (folder / "requirements.txt").write_text("six==1.17.0\n")
    (folder / "test.py").unlink()
    t = targets.load("x86-cpu", root=tmp_path)
    tag = f"edgebench-test:certfail-{uuid.uuid4().hex[:8]}"
    try:
        dbuild.build_image(t, tag=tag, ca_bundle=None, smoke_test=False, echo=None, api=api)
    except BuildError as e:
        if "CERTIFICATE_VERIFY_FAILED" not in "\n".join(e.build_log):
            raise
        assert f"invoke build --target x86-cpu --ca-bundle {cabundle.system_bundle()}" in str(e)
        assert "CERTIFICATE_VERIFY_FAILED" in e.reason and Path(e.log_path).is_file()
        return
    pytest.skip("pip reached PyPI without an extra CA: this network does not intercept TLS")


def test_container_exit_nonzero_raises_with_stderr(api, x86_cpu_image, cleanup):
    t = targets.load("x86-cpu")
    with pytest.raises(ContainerError) as e:
        drun.run_in_image(api, x86_cpu_image.tag, ["env", "--check", "tensorrt"], target=t, kind="test-fail")
    err = e.value
    assert err.exit_status != 0
    assert "tensorrt" in err.stderr and err.image == x86_cpu_image.tag
    assert err.command == ["env", "--check", "tensorrt"]
    assert Path(err.log_path).is_file()
    ids = {c["Id"] for c in api.containers(all=True)}
    assert err.container not in ids, "the failed container is removed"


def test_failed_build_carries_log_tail(api, tmp_path, cleanup):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "target.yaml").write_text(textwrap.dedent("""\
        name: broken
        base_image: debian:bookworm-slim
        platform: linux/amd64
        gpu: none
        python: "3.11"
        python_env: system
        backends: [keras]
    """))
    (folder / "requirements.txt").write_text("tensorflow-cpu==2.12.1\n")
    t = targets.load("broken", root=tmp_path)
    tag = f"edgebench-test:broken-{uuid.uuid4().hex[:8]}"
    with pytest.raises(BuildError) as e:  # minbase has no python3: the pip step fails at once
        dbuild.build_image(t, tag=tag, smoke_test=False, echo=None, api=api)
    err = e.value
    assert "returned a non-zero code" in err.reason
    assert "python3" in err.log_tail and "Step " in err.log_tail
    assert Path(err.log_path).is_file() and err.log_tail.splitlines()[-1] in Path(err.log_path).read_text()


@pytest.mark.parametrize("name", ["jetson-jp512", "x86-cuda"])
def test_unpullable_base_image_fails_before_build(api, name, cleanup):
    t = targets.load(name)
    try:
        api.inspect_image(t.base_image)
        pytest.skip(f"{t.base_image} is present here: nothing to test")
    except Exception:
        pass
    with pytest.raises(BaseImageError) as e:
        dbuild.build_image(name, smoke_test=False, echo=None, api=api)
    assert t.base_image in str(e.value) and "docker login nvcr.io" in str(e.value)


QUICK_SUITE = """\
name: container-check
threads: [2]
pin_threads: false
test_images: 500
overhead_check: false
scenarios:
  latency:    {batch_size: 1, min_iterations: 30, min_seconds: 1, warmup_iterations: 5, warmup_seconds: 0.3}
  throughput: {batch_sizes: [64], min_iterations: 5, min_seconds: 2, warmup_iterations: 2, warmup_seconds: 0.3}
runs:
  - {backend: keras-call, precisions: [fp32]}
  - {backend: onnxruntime, precisions: [fp32]}
"""


def _ok_rows(doc):
    return {(r["backend"], r["scenario"], r["batch_size"]): r for r in doc["rows"] if r["status"] == "ok"}


@pytest.mark.slow
def test_bench_in_container_names_image_and_matches_host(api, x86_cpu_image, bench_artifacts, cifar_source, tmp_path,
                                                         cleanup):
    pytest.importorskip("edgebench.bench.harness", reason="the bench harness has not landed")
    suite = tmp_path / "suite.yaml"
    suite.write_text(QUICK_SUITE)
    results = tmp_path / "results"
    from edgebench.launchers import BenchRequest
    from edgebench.launchers.container import ContainerLauncher

    req = BenchRequest(artifacts=str(bench_artifacts), out=str(results / "ci-container.json"), suite=str(suite),
                       device="ci-container", data=str(cifar_source), test_limit=500)
    out = ContainerLauncher("x86-cpu", echo=sys.stderr).launch(req).results
    assert out == (results / "ci-container.json").resolve()
    doc = json.loads(out.read_text())
    iid = api.inspect_image(x86_cpu_image.tag)["Id"]  # a rebuild after a src/ change moves the tag
    assert iid in out.read_text(), "the result names the image it came from"
    assert doc["environment"]["container"]["image_id"] == iid
    assert doc["device"] == "ci-container" and doc["complete"] is True
    inside = _ok_rows(doc)
    assert inside, [(r["id"], r["reason"]) for r in doc["rows"]]
    assert list(bench_artifacts.glob("*")) and not (bench_artifacts / "ci-container.json").exists()

    # the same suite on this host: container numbers must match within noise
    from edgebench.bench.harness import run_bench

    host_doc = run_bench(BenchRequest(artifacts=str(bench_artifacts), out=str(tmp_path / "host.json"),
                                      suite=str(suite), device="ci-host", data=str(cifar_source), test_limit=500),
                         log=lambda m: None)
    host = _ok_rows(host_doc)
    ratios = {}
    for key in sorted(set(inside) & set(host)):
        a, b = inside[key].get("throughput_ips"), host[key].get("throughput_ips")
        if a and b:
            ratios["/".join(map(str, key))] = round(a / b, 3)
        ia, ib = inside[key].get("accuracy") or {}, host[key].get("accuracy") or {}
        if ia.get("top1") is not None and ib.get("top1") is not None:
            assert abs(ia["top1"] - ib["top1"]) < 1e-6, f"{key}: accuracy differs in the container"
    _note("container_vs_host_throughput_ratio", ratios)
    print("container/host throughput ratios:", ratios)
    assert ratios, "no row ran both in the container and on the host"
    med = statistics.median(ratios.values())
    # generous: a 2-core CI machine shares its cores with everything else that runs
    assert 0.5 < med < 2.0, ratios
