"""Run one command inside a target's image (docker SDK low-level API, no shell strings).

`run_in_image` creates, follows and removes one container, with the GPU reached the way the target says
(`runtime="nvidia"` on Jetson, a device request on x86 + NVIDIA). The benchmark itself is carried out by
`edgebench.launchers.container`, which builds its command from a `BenchRequest`.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Dict, Optional, Sequence

from edgebench.docker.client import log_path
from edgebench.docker.errors import ContainerError, DockerError
from edgebench.docker.targets import Target

log = logging.getLogger(__name__)

CREATED_BY_LABEL = "io.edgebench.created-by"


@dataclass
class RunResult:
    exit_code: int
    stdout: str
    stderr: str
    log_path: Path
    seconds: float
    container_id: str = ""


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
                 echo: Optional[IO[str]] = None, check: bool = True, timeout: Optional[float] = None,
                 network_disabled: bool = False, group_add: Sequence[str] = ()) -> RunResult:
    """Create, start, follow and remove one container; ContainerError (with stderr) when it exits non-zero.
    `group_add`: extra groups (numeric ids are fine: a Jetson's jtop socket group, which the image lacks)."""
    log_file = log_file or log_path(kind, target.name)
    env = {"HOME": "/tmp"} if _user_args(target) else {}
    env.update(environment or {})
    extra: Dict[str, Any] = {}
    groups = list(group_add)
    if target.gpu == "nvidia-runtime" and _user_args(target):
        groups.insert(0, "video")  # Jetson's GPU device nodes belong to `video`
    if groups:
        extra["group_add"] = groups
    if network_disabled:
        extra["network_mode"] = "none"  # a benchmarking container gets no network
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
    return RunResult(code, stdout, stderr, log_file, seconds, cid)


def inspect(api: Any, image: str) -> Dict[str, Any]:
    from docker.errors import ImageNotFound

    try:
        return api.inspect_image(image)
    except ImageNotFound as exc:
        raise DockerError(f"image {image!r} not found; build it first (`invoke build --target ...`)") from exc


def default_image(target: Target) -> str:
    from edgebench import __version__

    return target.tag(__version__)
