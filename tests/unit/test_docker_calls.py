"""The docker SDK calls of build / smoke / bench, against a fake low-level client (the daemon is not the point)."""
from __future__ import annotations

import io
import json
import re
import tarfile
from pathlib import Path
from typing import Any, Dict, List

import pytest

docker = pytest.importorskip("docker")
from docker.errors import APIError, ImageNotFound  # noqa: E402

from edgebench import __version__  # noqa: E402
from edgebench.docker import (  # noqa: E402
    BaseImageError,
    BuildError,
    ContainerError,
    DockerError,
    DockerUnavailableError,
    targets,  # noqa: E402
)
from edgebench.docker import build as dbuild  # noqa: E402
from edgebench.docker import client as dclient  # noqa: E402
from edgebench.docker import run as drun  # noqa: E402
from edgebench.launchers import BenchRequest, LaunchError  # noqa: E402
from edgebench.launchers.container import ContainerLauncher  # noqa: E402


class FakeAPI:
    """Just enough of docker.APIClient; records every call."""

    def __init__(self, images=("debian:bookworm-slim",), build_events=None, exit_codes=None, pull_error=None,
                 stdout=b"ok\n", stderr=b"", write_results=None):
        self.images = {name: {"Id": "sha256:" + f"{i:064x}", "Config": {"Labels": {}}}
                       for i, name in enumerate(images, 1)}
        self.build_events = build_events
        self.exit_codes = list(exit_codes or [])
        self.pull_error = pull_error
        self.stdout, self.stderr = stdout, stderr
        self.write_results = write_results
        self.calls: List[tuple] = []
        self.removed: List[str] = []
        self.containers: Dict[str, Dict[str, Any]] = {}

    def ping(self):
        return True

    def inspect_image(self, name):
        self.calls.append(("inspect_image", name))
        if name not in self.images:
            raise ImageNotFound(f"No such image: {name}")
        return self.images[name]

    def pull(self, repo, tag=None, platform=None, stream=False, decode=False):
        self.calls.append(("pull", repo, tag, platform))
        if self.pull_error:
            raise self.pull_error
        return iter([{"status": "Pulling from " + repo}, {"error": "manifest unknown"}])

    def build(self, **kw):
        self.calls.append(("build", kw))
        self.build_kwargs = kw
        kw["fileobj"].seek(0)
        self.context = tarfile.open(fileobj=io.BytesIO(kw["fileobj"].read()))
        events = self.build_events
        if events is None:
            events = [{"stream": "Step 1/2 : FROM x\n"}, {"stream": " ---> Using cache\n"},
                      {"stream": "Step 2/2 : RUN true\n"}, {"aux": {"ID": "sha256:" + "b" * 64}},
                      {"stream": "Successfully built bbbbbbbbbbbb\n"}, {"stream": f"Successfully tagged {kw['tag']}\n"}]
            self.images[kw["tag"]] = {"Id": "sha256:" + "b" * 64, "Config": {"Labels": kw["labels"]}}
        return iter(events)

    def create_host_config(self, **kw):
        return kw

    def create_container(self, image, command=None, entrypoint=None, environment=None, host_config=None, labels=None,
                         **kw):
        cid = f"c{len(self.containers) + 1}"
        self.containers[cid] = dict(image=image, command=command, entrypoint=entrypoint, environment=environment,
                                    host_config=host_config, labels=labels, **kw)
        self.calls.append(("create_container", cid))
        return {"Id": cid}

    def start(self, cid):
        self.calls.append(("start", cid))
        if self.write_results:
            self.write_results(self.containers[cid])

    def logs(self, cid, stream=False, follow=False, stdout=True, stderr=True):
        if stream:
            return iter([self.stdout, self.stderr])
        return (self.stdout if stdout else b"") + (self.stderr if stderr else b"")

    def wait(self, cid, timeout=None):
        return {"StatusCode": self.exit_codes.pop(0) if self.exit_codes else 0}

    def remove_container(self, cid, force=False):
        self.removed.append(cid)


@pytest.fixture(autouse=True)
def _logs(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_LOG_DIR", str(tmp_path / "logs"))


def test_build_calls_low_level_api_with_tag_labels_and_context(tmp_path):
    api = FakeAPI()
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    out = io.StringIO()
    r = dbuild.build_image("x86-cpu", ca_bundle=ca, smoke_test=False, api=api, echo=out, no_cache=True,
                           platform="linux/amd64")
    kw = api.build_kwargs
    assert r.tag == kw["tag"] == f"edgebench:{__version__}-x86-cpu"
    assert r.image_id == "sha256:" + "b" * 64
    assert kw["custom_context"] is True and kw["nocache"] is True and kw["pull"] is False
    assert kw["rm"] and kw["forcerm"] and kw["decode"] and kw["platform"] == "linux/amd64"
    assert kw["buildargs"] == {"BASE_IMAGE": "debian:bookworm-slim"}
    assert kw["labels"]["io.edgebench.target"] == "x86-cpu"
    assert "tensorflow-cpu==2.12.1" in kw["labels"]["io.edgebench.packages"]
    names = api.context.getnames()
    for n in ("Dockerfile", "requirements.txt", "pyproject.toml", "README.md", "src/edgebench/__init__.py",
              "src/edgebench/docker/build.py", "extra-ca.crt"):
        assert n in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert all(m.mtime == 0 and m.uid == 0 for m in api.context.getmembers()), "deterministic context"
    assert b"COPY extra-ca.crt" in api.context.extractfile("Dockerfile").read()
    assert api.context.extractfile("extra-ca.crt").read() == ca.read_bytes()
    assert r.steps == 2 and r.cached_steps == 1
    log = r.log_path.read_text()
    assert "Step 2/2 : RUN true" in log and "finished in" in log
    assert re.search(r"slowest steps:\n#   step \d \d+\.\d s \((FROM x|RUN true)\)", log), "where the time went"
    assert "[" in out.getvalue() and "2/2]" in out.getvalue(), "progress prefix on streamed lines"
    assert not any(c[0] == "pull" for c in api.calls), "a local base is not pulled"


def test_jetson_build_tag_and_base_override():
    api = FakeAPI(images=("mirror.local/l4t-jetpack:r35.4.1",))
    r = dbuild.build_image("jetson-jp512", base_image="mirror.local/l4t-jetpack:r35.4.1", smoke_test=False, api=api,
                           echo=None)
    assert r.tag == f"edgebench:{__version__}-jetson-jp512-r35.4.1"
    assert api.build_kwargs["buildargs"]["BASE_IMAGE"] == "mirror.local/l4t-jetpack:r35.4.1"
    assert api.build_kwargs["labels"]["io.edgebench.l4t"] == "35.4.1"
    assert b"ARG BASE_IMAGE=mirror.local/l4t-jetpack:r35.4.1" in api.context.extractfile("Dockerfile").read()


@pytest.mark.parametrize("name", ["jetson-jp512", "x86-cuda"])
def test_unpullable_base_image(name):
    api = FakeAPI(images=())
    with pytest.raises(BaseImageError) as e:
        dbuild.build_image(name, smoke_test=False, api=api, echo=None)
    assert targets.load(name).base_image in str(e.value)
    assert "manifest unknown" in str(e.value) and "--base-image" in str(e.value)
    assert not any(c[0] == "build" for c in api.calls)


def test_pull_api_error_is_base_image_error():
    api = FakeAPI(images=(), pull_error=APIError("Get https://nvcr.io/v2/: dial tcp: lookup nvcr.io: no such host"))
    with pytest.raises(BaseImageError, match="no such host"):
        dbuild.build_image("x86-cuda", smoke_test=False, api=api, echo=None)


def test_failed_build_carries_log_tail():
    events = [{"stream": f"Step {i}/40 : RUN step {i}\n"} for i in range(1, 40)]
    events += [{"stream": "ERROR: No matching distribution found for tensorflow-cpu==9.9\n"},
               {"error": "The command '/bin/bash -o pipefail -c pip install' returned a non-zero code: 1",
                "errorDetail": {"code": 1}}]
    api = FakeAPI(build_events=events)
    with pytest.raises(BuildError) as e:
        dbuild.build_image("x86-cpu", smoke_test=False, api=api, echo=None)
    err = e.value
    assert "returned a non-zero code: 1" in err.reason
    assert "No matching distribution found" in err.log_tail
    assert "Step 1/40" not in err.log_tail and "Step 39/40" in err.log_tail
    assert len(err.build_log) == 41 and Path(err.log_path).is_file()
    assert "No matching distribution" in str(err)


def test_smoke_runs_env_check_with_promised_backends_and_test_py():
    api = FakeAPI()
    r = dbuild.build_image("x86-cpu", smoke_test=True, api=api, echo=None)
    cmds = [c for c in api.containers.values()]
    t = targets.load("x86-cpu")
    assert cmds[0]["command"] == ["env", "--check", *t.backends] and cmds[0]["entrypoint"] is None
    assert cmds[1]["entrypoint"] == ["python3"] and cmds[1]["command"] == ["/opt/edgebench-build/test.py"]
    assert json.loads(cmds[1]["environment"]["EDGEBENCH_EXPECT_VERSIONS"])["tensorflow"] == "2.12.1"
    assert sorted(api.removed) == sorted(api.containers), "every container removed"
    assert r.smoke_log_path and "edgebench env --check keras" in r.smoke_log_path.read_text()


def test_smoke_failure_raises_container_error_and_keeps_log():
    api = FakeAPI(exit_codes=[1], stderr=b"backend 'tflite' unavailable: No module named 'tensorflow'\n")
    with pytest.raises(ContainerError) as e:
        dbuild.build_image("x86-cpu", api=api, echo=None)
    err = e.value
    assert err.exit_status == 1 and "tflite" in err.stderr_tail
    assert err.command[:3] == ["edgebench", "env", "--check"]
    assert "smoke-x86-cpu" in err.log_path and "tflite" in Path(err.log_path).read_text()
    assert api.removed == ["c1"]


@pytest.mark.parametrize("name, expect", [
    ("x86-cpu", {}),
    ("jetson-jp512", {"runtime": "nvidia"}),
])
def test_gpu_access_per_target(name, expect):
    hc = drun.gpu_host_config(targets.load(name))
    assert hc == expect


def test_gpu_access_x86_cuda_is_device_request():
    from docker.types import DeviceRequest

    hc = drun.gpu_host_config(targets.load("x86-cuda"))
    (req,) = hc["device_requests"]
    assert isinstance(req, DeviceRequest) and req["Count"] == -1 and req["Capabilities"] == [["gpu"]]
    assert "runtime" not in hc


def _fake_bench_writer(results_dir: Path, payload_from_env=True):
    def write(container):
        out = next(a for a in container["command"] if a.startswith("/results/"))
        env = container["environment"]
        (results_dir / Path(out).name).write_text(json.dumps({"environment": {"container": {
            "image_id": env["EDGEBENCH_IMAGE_ID"], "image": env["EDGEBENCH_IMAGE"]}}}))
    return write


def _req(tmp_path):
    return BenchRequest(artifacts=str(tmp_path / "a"), out=str(tmp_path / "r" / "d.json"), device="d")


@pytest.mark.parametrize("name", ["x86-cpu", "x86-cuda", "jetson-jp512"])
def test_bench_in_container_mounts_env_and_gpu(tmp_path, name):
    t = targets.load(name)
    arts, res = tmp_path / "arts", tmp_path / "res"
    arts.mkdir()
    suite = tmp_path / "suites" / "quick.yaml"
    suite.parent.mkdir()
    suite.write_text("name: quick\n")
    data = tmp_path / "data" / "cifar10-jpeg.zip"
    data.parent.mkdir()
    data.write_bytes(b"zip")
    res.mkdir()
    api = FakeAPI(images=(t.tag(__version__),), write_results=_fake_bench_writer(res))
    api.images[t.tag(__version__)]["Config"]["Labels"] = {"org.opencontainers.image.revision": "abc-dirty"}
    req = BenchRequest(artifacts=str(arts), out=str(res / "dev1.json"), suite=str(suite), data=str(data),
                       device="dev1", test_limit=64)
    out = ContainerLauncher(name, api=api, echo=None).launch(req).results
    (c,) = api.containers.values()
    assert c["image"] == t.tag(__version__)
    assert c["command"] == ["bench", "--artifacts", "/artifacts", "--out", "/results/dev1.json", "--device", "dev1",
                            "--suite", "/suite/quick.yaml", "--data", "/data/cifar10-jpeg.zip", "--test-limit", "64"]
    assert c["host_config"]["network_mode"] == "none", "a benchmarking container gets no network"
    binds = c["host_config"]["binds"]
    assert binds[str(arts.resolve())] == {"bind": "/artifacts", "mode": "ro"}
    assert binds[str(res.resolve())] == {"bind": "/results", "mode": "rw"}
    assert binds[str(suite.parent.resolve())] == {"bind": "/suite", "mode": "ro"}
    assert binds[str(data.parent.resolve())] == {"bind": "/data", "mode": "ro"}
    iid = api.images[t.tag(__version__)]["Id"]
    assert c["environment"]["EDGEBENCH_IMAGE_ID"] == iid
    assert c["environment"]["EDGEBENCH_GIT_REVISION"] == "abc-dirty"
    for k, v in drun.gpu_host_config(t).items():
        assert c["host_config"][k] == v
    assert out == res.resolve() / "dev1.json"
    assert iid in out.read_text()
    assert api.removed == ["c1"]


def test_bench_container_nonzero_exit_raises_with_stderr(tmp_path):
    api = FakeAPI(images=(f"edgebench:{__version__}-x86-cpu",), exit_codes=[2],
                  stderr=b"Traceback...\nedgebench bench: error: suite not found\n")
    (tmp_path / "a").mkdir()
    with pytest.raises(ContainerError) as e:
        ContainerLauncher("x86-cpu", api=api, echo=None).launch(_req(tmp_path))
    err = e.value
    assert err.exit_status == 2 and "suite not found" in err.stderr and err.image.endswith("-x86-cpu")
    assert err.command[0] == "bench" and "exited with status 2" in str(err)
    assert api.removed == ["c1"]


def test_bench_missing_image_says_build_first(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(DockerError, match="build it first"):
        ContainerLauncher("x86-cpu", api=FakeAPI(images=()), echo=None).launch(_req(tmp_path))


def test_bench_no_results_json_is_an_error(tmp_path):
    (tmp_path / "a").mkdir()
    api = FakeAPI(images=(f"edgebench:{__version__}-x86-cpu",))
    with pytest.raises(LaunchError, match="wrote no /results/"):
        ContainerLauncher("x86-cpu", api=api, echo=None).launch(_req(tmp_path))


def test_daemon_not_running_says_how_to_start(monkeypatch, tmp_path):
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with pytest.raises(DockerUnavailableError) as e:
        dclient.api_client(base_url=f"unix://{tmp_path}/no-docker.sock")
    msg = str(e.value)
    assert "no-docker.sock" in msg and "dockerd" in msg and "systemctl start docker" in msg
    assert "docker-setup.sh" in msg


def test_edgebench_help_does_not_import_docker():
    import subprocess
    import sys

    code = ("import sys; from edgebench import cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "import edgebench.docker.targets, edgebench.docker.render\n"
            "assert 'docker' not in sys.modules, 'docker SDK imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_cross_install_build_names_the_native_platform_and_checks_the_result(tmp_path):
    """arm64-cpu on an x86 engine: BUILDPLATFORM is the engine's, the build gets no platform (its stages name
    theirs), both base images must be local, and an image of the wrong architecture is an error."""

    class CrossAPI(FakeAPI):
        result_arch = "arm64"

        def version(self):
            return {"Os": "linux", "Arch": "amd64", "ApiVersion": "1.41"}

        def build(self, **kw):
            events = super().build(**kw)
            self.images[kw["tag"]]["Architecture"] = self.result_arch
            return events

    base = "edgebench-base/debian:bookworm-slim-arm64"
    api = CrossAPI(images=(base, "debian:bookworm-slim"))
    api.images[base]["Architecture"] = "arm64"
    api.images["debian:bookworm-slim"]["Architecture"] = "amd64"
    r = dbuild.build_image("arm64-cpu", base_image=base, smoke_test=False, api=api, echo=None)
    kw = api.build_kwargs
    assert kw["platform"] is None and kw["buildargs"] == {"BASE_IMAGE": base, "BUILDPLATFORM": "linux/amd64"}
    assert ("inspect_image", "debian:bookworm-slim") in api.calls and not any(c[0] == "pull" for c in api.calls)
    assert b"FROM --platform=linux/arm64 ${BASE_IMAGE} AS base" in api.context.extractfile("Dockerfile").read()
    assert "cross install: pip runs on linux/amd64, the image is linux/arm64" in r.log_path.read_text()
    api.result_arch = "amd64"  # as if the final stage had come out for the engine's platform
    with pytest.raises(BuildError, match="built for linux/amd64, not linux/arm64"):
        dbuild.build_image("arm64-cpu", base_image=base, smoke_test=False, api=api, echo=None)
