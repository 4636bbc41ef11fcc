"""Run commands, and the benchmark, inside a target's image (docker SDK low-level API, no shell strings).

`bench_in_container` runs the same entrypoint as a local run (`edgebench bench`), with the artifacts mounted
read-only at /artifacts, a results folder mounted writable at /results, the GPU reached the way the target
says (`runtime="nvidia"` on Jetson, a device request on x86 + NVIDIA), and the image id handed to the
benchmark's fingerprint through EDGEBENCH_IMAGE_ID / EDGEBENCH_IMAGE.
"""
from __future__ import annotations

import json
import logging
import os
import platform as _platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Dict, List, Optional, Sequence, Union

from edgebench.docker.client import api_client, log_path
from edgebench.docker.errors import ContainerError, DockerError
from edgebench.docker.targets import Target, load

log = logging.getLogger(__name__)

ARTIFACTS_MOUNT = "/artifacts"
RESULTS_MOUNT = "/results"
SUITE_MOUNT = "/suite"
DATA_MOUNT = "/data"
CREATED_BY_LABEL = "io.edgebench.created-by"


@dataclass
class RunResult:
    exit_code: int
    stdout: str
    stderr: str
    log_path: Path
    seconds: float


def gpu_host_config(target: Target) -> Dict[str, Any]:
    """create_host_config keyword arguments that give a container the target's GPU."""
    if target.gpu == "nvidia-runtime":
        return {"runtime": "nvidia"}
    if target.gpu == "device-requests":
        from docker.types import DeviceRequest

        return {"device_requests": [DeviceRequest(count=-1, capabilities=[["gpu"]])]}
    return {}


def _user_args(target: Target) -> Dict[str, Any]:
    """Run as the calling user (results stay theirs); root stays root."""
    if not hasattr(os, "getuid") or os.getuid() == 0:
        return {}
    return {"user": f"{os.getuid()}:{os.getgid()}"}


def run_in_image(api: Any, image: str, command: Sequence[str], *, target: Target,
                 binds: Optional[Dict[str, Dict[str, str]]] = None, environment: Optional[Dict[str, str]] = None,
                 entrypoint: Optional[Sequence[str]] = None, log_file: Optional[Path] = None, kind: str = "run",
                 echo: Optional[IO[str]] = None, check: bool = True, timeout: Optional[float] = None) -> RunResult:
    """Create, start, follow and remove one container; ContainerError (with stderr) when it exits non-zero."""
    log_file = log_file or log_path(kind, target.name)
    env = {"HOME": "/tmp"} if _user_args(target) else {}
    env.update(environment or {})
    extra: Dict[str, Any] = {}
    if target.gpu == "nvidia-runtime" and _user_args(target):
        extra["group_add"] = ["video"]  # Jetson's GPU device nodes belong to `video`
    host_config = api.create_host_config(binds=binds or {}, **gpu_host_config(target), **extra)
    started = time.monotonic()
    container = api.create_container(
        image, command=list(command), entrypoint=list(entrypoint) if entrypoint is not None else None,
        environment=env, host_config=host_config, labels={CREATED_BY_LABEL: kind, "io.edgebench.target": target.name},
        **_user_args(target))
    cid = container["Id"] if isinstance(container, dict) else container
    with open(log_file, "w", encoding="utf-8") as f:
        f.write(f"# image: {image}\n# entrypoint: {list(entrypoint) if entrypoint is not None else '(image)'}\n"
                f"# command: {list(command)}\n# binds: {json.dumps(binds or {})}\n"
                f"# environment: {json.dumps(env)}\n# gpu: {target.gpu}\n# container: {cid}\n\n")
        try:
            api.start(cid)
            for chunk in api.logs(cid, stream=True, follow=True, stdout=True, stderr=True):
                text = chunk.decode("utf-8", "replace") if isinstance(chunk, bytes) else str(chunk)
                f.write(text)
                f.flush()
                if echo is not None:
                    echo.write(text)
                    echo.flush()
            status = api.wait(cid, timeout=timeout)
            code = int(status.get("StatusCode", -1)) if isinstance(status, dict) else int(status)
            stdout = api.logs(cid, stdout=True, stderr=False).decode("utf-8", "replace")
            stderr = api.logs(cid, stdout=False, stderr=True).decode("utf-8", "replace")
        finally:
            try:
                api.remove_container(cid, force=True)
            except Exception as exc:  # a container left behind is worth a warning, not a failure
                log.warning("could not remove container %s: %s", cid[:12], exc)
        seconds = time.monotonic() - started
        f.write(f"\n# exit status {code} after {seconds:.1f} s\n")
    if check and code != 0:
        shown = list(entrypoint or []) + list(command)
        raise ContainerError(cid, code, shown, image, stderr or stdout, log_path=str(log_file))
    return RunResult(code, stdout, stderr, log_file, seconds)


def inspect(api: Any, image: str) -> Dict[str, Any]:
    from docker.errors import ImageNotFound

    try:
        return api.inspect_image(image)
    except ImageNotFound as exc:
        raise DockerError(f"image {image!r} not found; build it first (`invoke build --target ...`)") from exc


def default_image(target: Target) -> str:
    from edgebench import __version__

    return target.tag(__version__)


def bench_in_container(target: Union[str, Target], artifacts_dir: Union[str, Path], results_dir: Union[str, Path],
                       suite_path: Optional[Union[str, Path]] = None, device_name: Optional[str] = None,
                       extra_args: Sequence[str] = (), *, data_source: Optional[Union[str, Path]] = None,
                       image: Optional[str] = None, results_name: Optional[str] = None, api: Any = None,
                       echo: Optional[IO[str]] = sys.stderr) -> Path:
    """Run `edgebench bench` inside the target's image; returns the results JSON on this host.

    artifacts_dir is mounted read-only at /artifacts, results_dir writable at /results, the suite file's
    folder read-only at /suite, the CIFAR-10 source's folder (data_source, default $EDGEBENCH_DATA) read-only
    at /data. The image id and tag reach the result's fingerprint through EDGEBENCH_IMAGE_ID / EDGEBENCH_IMAGE,
    the image's git revision label through EDGEBENCH_GIT_REVISION.
    """
    t = load(target) if isinstance(target, str) else target
    artifacts = Path(artifacts_dir).resolve()
    results = Path(results_dir).resolve()
    if not artifacts.is_dir():
        raise FileNotFoundError(f"artifacts folder not found: {artifacts}")
    results.mkdir(parents=True, exist_ok=True)
    api = api or api_client()
    image = image or default_image(t)
    info = inspect(api, image)
    iid = info["Id"]
    labels = (info.get("Config") or {}).get("Labels") or {}
    device_name = device_name or f"{_platform.node() or 'host'}-{t.name}"
    results_name = results_name or f"{device_name}.json"
    binds = {str(artifacts): {"bind": ARTIFACTS_MOUNT, "mode": "ro"},
             str(results): {"bind": RESULTS_MOUNT, "mode": "rw"}}
    command: List[str] = ["bench", "--artifacts", ARTIFACTS_MOUNT]
    for path, mount, flag in ((suite_path, SUITE_MOUNT, "--suite"),
                              (data_source or os.environ.get("EDGEBENCH_DATA") or None, DATA_MOUNT, "--data")):
        if path is None:
            continue
        p = Path(path).resolve()
        if not p.exists():
            raise FileNotFoundError(f"{flag[2:]} not found: {p}")
        if p.is_dir():  # cifar-10-batches-py/ or an image folder: mount the folder itself
            binds[str(p)] = {"bind": mount, "mode": "ro"}
            command += [flag, mount]
        else:
            binds[str(p.parent)] = {"bind": mount, "mode": "ro"}
            command += [flag, f"{mount}/{p.name}"]
    command += ["--out", f"{RESULTS_MOUNT}/{results_name}", "--device", device_name, *extra_args]
    env = {"EDGEBENCH_IMAGE_ID": iid, "EDGEBENCH_IMAGE": image, "EDGEBENCH_TARGET": t.name,
           # decoded CIFAR-10 arrays are cached in the writable results folder: decoded once, not every run
           "EDGEBENCH_CACHE": f"{RESULTS_MOUNT}/.edgebench-cache/data"}
    revision = labels.get("org.opencontainers.image.revision")
    if revision:
        env["EDGEBENCH_GIT_REVISION"] = revision
    run_in_image(api, image, command, target=t, binds=binds, environment=env, kind="bench", echo=echo)
    out = results / results_name
    if not out.is_file():
        raise DockerError(f"the container exited 0 but wrote no {RESULTS_MOUNT}/{results_name} (looked for {out})")
    if iid not in out.read_text(encoding="utf-8", errors="replace"):
        log.warning("%s does not name image %s: does the bench fingerprint read EDGEBENCH_IMAGE_ID?", out, iid)
    return out
