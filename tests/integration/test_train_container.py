"""`invoke train/export --target x86-cpu`: the same `edgebench train`/`export` inside the real x86-cpu image
(launchers.job), data read-only, the run folder written back, and a run killed in its container resumed.

Reuses the session's `edgebench:<version>-x86-cpu` (test_docker_images builds it; when it is absent this module
builds it, with Docker's layer cache). Small on purpose: ResNet18, 512 images, 3 short epochs.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ARGS = ["--model", "resnet18", "--epochs", "3", "--train-limit", "512", "--test-limit", "128",
        "--no-eval-each-epoch"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def image(x86_cpu_image):
    """The session's one x86-cpu image (tests/integration/conftest.py)."""
    return x86_cpu_image.tag


def _launch(run: Path, data: str, job: str, args) -> subprocess.Popen:
    code = ("import sys; from edgebench.launchers.job import ContainerJob, JobRequest; "
            f"ContainerJob('x86-cpu').run(JobRequest({job!r}, {str(run)!r}, {data!r}, {list(args)!r}))")
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=str(ROOT))


def _kill_train_container() -> int:
    from edgebench.docker.client import api_client
    from edgebench.docker.run import CREATED_BY_LABEL

    api = api_client()
    found = api.containers(filters={"label": [f"{CREATED_BY_LABEL}=train", "io.edgebench.target=x86-cpu"]})
    for c in found:
        api.kill(c["Id"])
    return len(found)


def test_train_in_the_image_is_killed_resumes_and_exports(image, tmp_path, cifar_source):
    from edgebench.launchers.job import ContainerJob, JobRequest

    run = tmp_path / "run"
    proc = _launch(run, cifar_source, "train", ARGS)
    state = run / "train_state.json"
    deadline = time.time() + 400
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["completed_epochs"] >= 1:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "training ended before it could be killed: " + proc.stderr.read().decode()[-2000:]
    assert _kill_train_container() == 1  # the container dies mid-run (docker kill: SIGKILL)
    proc.wait(timeout=120)
    assert proc.returncode != 0
    done = json.loads(state.read_text())["completed_epochs"]
    assert 1 <= done < 3 and not (run / "model.keras").exists()

    echo = io.StringIO()
    res = ContainerJob("x86-cpu", echo=echo).run(JobRequest("train", str(run), cifar_source, ARGS))
    out = echo.getvalue()
    assert res.exit_code == 0
    assert f"resuming {run} after epoch {done}/3" in out  # the container's /artifacts/run shown as this host's path
    meta = json.loads((run / "train.json").read_text())
    assert [h["epoch"] for h in meta["history"]] == [1, 2, 3] and meta["data"]["train_used"] == 512
    assert meta["versions"]["python"].startswith("3.11")  # Debian's Python: it ran in the image, not here
    header = res.log_path.read_text().split("\n\n", 1)[0]
    binds = json.loads(header.split("# binds: ", 1)[1].splitlines()[0])
    data_bind = binds[str(Path(cifar_source).resolve().parent)]
    assert data_bind == {"bind": "/data", "mode": "ro"} and binds[str(run.resolve())]["mode"] == "rw"

    # the image exports ONNX itself (tf2onnx and onnx are in it: a Jetson host cannot install TensorFlow)
    ContainerJob("x86-cpu", echo=None).run(JobRequest("export", str(run), cifar_source,
                                                      ["--formats", "onnx-fp32", "tflite-fp32", "--parity-images",
                                                       "64"]))
    man = json.loads((run / "manifest.json").read_text())
    names = {a["name"]: a for a in man["artifacts"]}
    assert all(names[n]["status"] == "ok" for n in ("onnx-fp32", "tflite-fp32")), names
    assert (run / "model.onnx").is_file() and (run / "model_fp32.tflite").is_file()


def test_a_missing_image_or_model_is_a_clear_error(tmp_path, cifar_source):
    from edgebench.docker.errors import DockerError
    from edgebench.launchers.job import ContainerJob, JobRequest

    with pytest.raises(FileNotFoundError, match="model.keras does not exist; train first"):
        ContainerJob("x86-cpu").run(JobRequest("export", str(tmp_path / "none"), cifar_source))
    try:
        job = ContainerJob("x86-cpu", image="edgebench:no-such-tag")
        with pytest.raises(DockerError, match="not found; build it first"):
            job.run(JobRequest("train", str(tmp_path / "r"), cifar_source, ARGS))
    except DockerError as exc:  # no engine at all
        pytest.skip(f"no Docker engine: {exc}")
