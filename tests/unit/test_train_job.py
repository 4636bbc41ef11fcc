"""launchers.job (train/export in a target's image) and the invoke help: hermetic checks of what is asked of Docker."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgebench.launchers.job import CACHE_MOUNT, DATA_MOUNT, RUN_MOUNT, JobRequest, plan

ROOT = Path(__file__).resolve().parents[2]


def test_plan_mounts_data_read_only_and_the_run_folder_read_write(tmp_path):
    data = tmp_path / "cifar" / "cifar10-jpeg.zip"
    data.parent.mkdir()
    data.write_bytes(b"zip")
    run = tmp_path / "artifacts" / "seed"
    argv, binds = plan(JobRequest("train", str(run), str(data), ["--epochs", "10"]), cache=tmp_path / "cache")
    assert argv == ["train", "--out", f"{RUN_MOUNT}/seed", "--data", f"{DATA_MOUNT}/cifar10-jpeg.zip", "--epochs", "10"]
    assert binds[str(run.resolve())] == {"bind": f"{RUN_MOUNT}/seed", "mode": "rw"}
    assert binds[str(data.parent.resolve())] == {"bind": DATA_MOUNT, "mode": "ro"}
    assert binds[str((tmp_path / "cache").resolve())] == {"bind": CACHE_MOUNT, "mode": "rw"}


def test_plan_export_reads_the_run_folders_model_and_a_data_folder_is_mounted_itself(tmp_path):
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    argv, binds = plan(JobRequest("export", str(tmp_path / "r"), str(batches)), cache=tmp_path / "c")
    assert argv[:2] == ["export", f"{RUN_MOUNT}/r/model.keras"] and argv[2:] == ["--data", DATA_MOUNT]
    assert binds[str(batches.resolve())] == {"bind": DATA_MOUNT, "mode": "ro"}


def test_bad_requests_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown job 'bench'; known: train, export"):
        JobRequest("bench", str(tmp_path)).validate()
    with pytest.raises(FileNotFoundError, match="data not found"):
        JobRequest("train", str(tmp_path), str(tmp_path / "nope.zip")).validate()
    with pytest.raises(FileNotFoundError, match="model.keras does not exist; train first"):
        JobRequest("export", str(tmp_path)).validate()


class FakeAPI:
    """Records the docker SDK calls run_in_image makes (low-level API)."""

    def __init__(self):
        self.created, self.host_config = None, None

    def inspect_image(self, image):
        return {"Id": "sha256:" + "0" * 64}

    def create_host_config(self, **kw):
        self.host_config = kw
        return kw

    def create_container(self, image, **kw):
        self.created = dict(kw, image=image)
        return {"Id": "c" * 64}

    def start(self, cid):
        pass

    def logs(self, cid, stream=False, **kw):
        return iter([b"epoch 1/1: training 1 s\n"]) if stream else b""

    def wait(self, cid, timeout=None):
        return {"StatusCode": 0}

    def remove_container(self, cid, force=False):
        pass


@pytest.mark.parametrize("target,gpu", [("jetson-jp512", {"runtime": "nvidia"}), ("x86-cuda", "device_requests"),
                                        ("x86-cpu", None)])
def test_the_job_runs_in_the_targets_image_with_its_gpu(tmp_path, monkeypatch, target, gpu):
    from edgebench.launchers.job import ContainerJob

    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    api = FakeAPI()
    job = JobRequest("train", str(tmp_path / "run"), None, ["--epochs", "1"])
    res = ContainerJob(target, api=api, echo=None).run(job)
    assert res.exit_code == 0
    assert api.created["command"] == ["train", "--out", f"{RUN_MOUNT}/run", "--epochs", "1"]
    assert api.created["image"].endswith(f"-{target}" + ("-r35.4.1" if target.startswith("jetson") else ""))
    assert api.created["environment"]["EDGEBENCH_CACHE"] == CACHE_MOUNT
    assert api.host_config["network_mode"] == "none"
    if gpu == "device_requests":
        req = api.host_config["device_requests"][0]
        assert req["Count"] == -1 and req["Capabilities"] == [["gpu"]]
    elif gpu:
        assert api.host_config["runtime"] == "nvidia"
    else:
        assert "runtime" not in api.host_config and "device_requests" not in api.host_config


def _help(task: str) -> str:
    out = subprocess.run([str(Path(sys.executable).parent / "invoke"), "--help", task], cwd=str(ROOT),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return "".join(out.stdout.split())  # no whitespace: invoke wraps long help lines, even inside a name


@pytest.mark.parametrize("task", ["bench", "build", "train", "export"])
def test_invoke_help_lists_every_target_from_containers_and_sensible_short_flags(task):
    text = _help(task)
    for target in sorted(p.name for p in (ROOT / "containers").iterdir() if (p / "target.yaml").is_file()):
        assert target in text, f"invoke --help {task} does not name {target}"
    assert "-tSTRING,--target=STRING" in text and "(default" in text
    assert "-vSTRING,--devices" not in text and "-c,--force" not in text and "-f,--force" not in text
