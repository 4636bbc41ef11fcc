"""`edgebench train` / `edgebench export` inside a target's image on this host (docker SDK, no shell strings).

Where the GPU is: `invoke train --target jetson-jp512` on the board itself (runtime nvidia), `--target x86-cuda`
on a workstation (a device request for every GPU), `--target x86-cpu` anywhere (CI). The run folder is mounted
read-write at /artifacts/<run> (model.keras, train.json, checkpoints/ come back to this host; a killed run
resumes from its checkpoints with the same command, as on the host), the CIFAR-10 source read-only at /data,
and this host's decoded-data cache at /cache (decoded once, reused by host and container alike).
"""
from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Dict, List, Optional, Tuple, Union

from edgebench.contracts.vocabulary import DATA_CACHE_ENV, TARGET_ENV, TF_LOG_LEVEL_ENV
from edgebench.launchers.base import JobError

RUN_MOUNT = "/artifacts"
DATA_MOUNT = "/data"
CACHE_MOUNT = "/cache"
JOBS = ("train", "export")


@dataclass
class JobRequest:
    """One `edgebench <job>` run on a run folder. `args` are the job's other options, with no host paths."""
    job: str                       # train | export
    run_dir: str                   # this host's artifacts/<run>/
    data: Optional[str] = None     # CIFAR-10 source on this host (file or folder)
    args: List[str] = field(default_factory=list)

    def validate(self) -> None:
        if self.job not in JOBS:
            raise JobError(f"unknown job {self.job!r}; known: {', '.join(JOBS)}")
        if self.data and not Path(self.data).exists():
            raise FileNotFoundError(f"data not found: {self.data}")
        if self.job == "export" and not (Path(self.run_dir) / "model.keras").is_file():
            raise FileNotFoundError(f"{Path(self.run_dir) / 'model.keras'} does not exist; train first")


def plan(request: JobRequest, cache: Optional[Path] = None) -> Tuple[List[str], Dict[str, Dict[str, str]]]:
    """The in-container argv (after the image's `edgebench` entrypoint) and the binds that make its paths real."""
    from edgebench.data import cache_dir

    run = Path(request.run_dir).resolve()
    inner_run = f"{RUN_MOUNT}/{run.name}"
    cache = (cache or cache_dir()).resolve()
    binds = {str(run): {"bind": inner_run, "mode": "rw"}, str(cache): {"bind": CACHE_MOUNT, "mode": "rw"}}
    if request.job == "train":
        argv = ["train", "--out", inner_run]
    else:
        argv = ["export", f"{inner_run}/model.keras"]
    if request.data:
        p = Path(request.data).resolve()
        if p.is_dir():
            binds[str(p)] = {"bind": DATA_MOUNT, "mode": "ro"}
            argv += ["--data", DATA_MOUNT]
        else:
            binds[str(p.parent)] = {"bind": DATA_MOUNT, "mode": "ro"}
            argv += ["--data", f"{DATA_MOUNT}/{p.name}"]
    return argv + list(request.args), binds


class ContainerJob:
    """Runs a JobRequest in `target`'s image (default tag `edgebench:<version>-<target>`), the GPU reached the way
    the target says (docker.run.gpu_host_config). Returns docker.run.RunResult; ContainerError on a non-zero exit."""

    def __init__(self, target: Union[str, Any], *, image: Optional[str] = None, api: Any = None,
                 echo: Optional[IO[str]] = sys.stderr):
        from edgebench.docker.targets import Target, load

        self.target = target if isinstance(target, Target) else load(target)
        self.image, self.api, self.echo = image, api, echo

    def run(self, request: JobRequest):
        from edgebench.docker.client import api_client
        from edgebench.docker.run import default_image, inspect, run_in_image
        from edgebench.launchers.container import HostPaths, remove_launched, stop_on_sigterm

        request.validate()
        run = Path(request.run_dir).resolve()
        run.mkdir(parents=True, exist_ok=True)
        api = self.api or api_client()
        image = self.image or default_image(self.target)
        inspect(api, image)  # a clear "build it first" before anything starts
        argv, binds = plan(request)
        Path(next(h for h, b in binds.items() if b["bind"] == CACHE_MOUNT)).mkdir(parents=True, exist_ok=True)
        env = {DATA_CACHE_ENV: CACHE_MOUNT, TARGET_ENV: self.target.name,
               "EDGEBENCH_LAUNCH_ID": uuid.uuid4().hex, "PYTHONUNBUFFERED": "1"}
        import os

        if os.environ.get(TF_LOG_LEVEL_ENV):
            env[TF_LOG_LEVEL_ENV] = os.environ[TF_LOG_LEVEL_ENV]
        echo = HostPaths(self.echo, {f"{RUN_MOUNT}/{run.name}": str(run)}) if self.echo is not None else None
        with stop_on_sigterm():  # SIGTERM, like Ctrl-C, stops and removes the container; checkpoints stay
            try:
                return run_in_image(api, image, argv, target=self.target, binds=binds, environment=env,
                                    kind=request.job, echo=echo, check=True, network_disabled=True)
            except BaseException:
                remove_launched(api, env["EDGEBENCH_LAUNCH_ID"], kind=request.job)
                raise


__all__ = ["JobRequest", "ContainerJob", "plan", "RUN_MOUNT", "DATA_MOUNT", "CACHE_MOUNT"]
