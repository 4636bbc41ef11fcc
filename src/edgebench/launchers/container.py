"""Run the benchmark inside a target's image on this host's Docker engine (docker SDK, no shell strings).

The request's host paths become mounts: artifacts read-only at /artifacts, the results folder writable at
/results (also the writable cache: decoded test arrays, TensorRT engines), the suite's folder read-only at
/suite, the CIFAR-10 source's folder read-only at /data. The container gets no network. The image id, tag,
digest and git revision reach the result's fingerprint through EDGEBENCH_IMAGE_ID / _IMAGE / _IMAGE_DIGEST /
EDGEBENCH_GIT_REVISION.
"""
from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import uuid
from pathlib import Path
from typing import IO, Any, Dict, Iterator, Optional, Tuple, Union

from edgebench.contracts.request import BenchRequest
from edgebench.contracts.vocabulary import (
    CACHE_DIRNAME,
    DATA_CACHE_ENV,
    ENGINE_CACHE_ENV,
    EXIT_OK,
    EXIT_ROWS_FAILED,
    GIT_REVISION_ENV,
    IMAGE_DIGEST_ENV,
    IMAGE_ENV,
    IMAGE_ID_ENV,
    TARGET_ENV,
)
from edgebench.docker.errors import ContainerError
from edgebench.launchers.base import Launcher, LaunchError, LaunchResult

log = logging.getLogger(__name__)

ARTIFACTS_MOUNT = "/artifacts"
RESULTS_MOUNT = "/results"
SUITE_MOUNT = "/suite"
DATA_MOUNT = "/data"
#: writable cache inside the container (decoded test arrays, TensorRT engines): under the results mount
CACHE_DIR = f"{RESULTS_MOUNT}/{CACHE_DIRNAME}"


def mounts_for(request: BenchRequest) -> Tuple[BenchRequest, Dict[str, Dict[str, str]]]:
    """The in-container request and the binds {host path: {bind, mode}} that make its paths real."""
    artifacts = Path(request.artifacts).resolve()
    out = Path(request.out).resolve()
    binds = {str(artifacts): {"bind": ARTIFACTS_MOUNT, "mode": "ro"},
             str(out.parent): {"bind": RESULTS_MOUNT, "mode": "rw"}}
    paths: Dict[str, Optional[str]] = {"artifacts": ARTIFACTS_MOUNT, "out": f"{RESULTS_MOUNT}/{out.name}"}
    for field_name, mount in (("suite", SUITE_MOUNT), ("data", DATA_MOUNT)):
        value = getattr(request, field_name)
        if not value:
            continue
        p = Path(value).resolve()
        if not p.exists():
            raise FileNotFoundError(f"{field_name} not found: {p}")
        if p.is_dir():  # cifar-10-batches-py/ or an image folder: mount the folder itself
            binds[str(p)] = {"bind": mount, "mode": "ro"}
            paths[field_name] = mount
        else:
            binds[str(p.parent)] = {"bind": mount, "mode": "ro"}
            paths[field_name] = f"{mount}/{p.name}"
    return request.with_paths(**paths), binds


def image_environment(image: str, info: Dict[str, Any], target_name: str) -> Dict[str, str]:
    """What the benchmark's fingerprint records about the image it runs in."""
    labels = (info.get("Config") or {}).get("Labels") or {}
    digests = info.get("RepoDigests") or []
    env = {IMAGE_ID_ENV: info["Id"], IMAGE_ENV: image, TARGET_ENV: target_name,
           DATA_CACHE_ENV: f"{CACHE_DIR}/data", ENGINE_CACHE_ENV: f"{CACHE_DIR}/engines"}
    if digests:
        env[IMAGE_DIGEST_ENV] = digests[0]
    revision = labels.get("org.opencontainers.image.revision")
    if revision:
        env[GIT_REVISION_ENV] = revision
    return env


class HostPaths:
    """A text stream that writes the container's output with its mount paths turned into this host's paths,
    so a user never sees /results/... where the file is really results/... here."""

    def __init__(self, stream: IO[str], mapping: Dict[str, str]):
        self.stream, self.mapping = stream, mapping

    def write(self, text: str) -> int:
        for inner, host in self.mapping.items():
            text = text.replace(inner, host)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """While a container runs, SIGTERM raises KeyboardInterrupt (main thread only) instead of killing this
    process outright, so the container is stopped and removed on the way out, as on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def remove_launched(api: Any, launch_id: str, kind: str = "bench") -> None:
    """Force-remove the container(s) of `kind` (bench, train, export) started with EDGEBENCH_LAUNCH_ID=launch_id
    (best effort, never raises)."""
    from edgebench.docker.run import CREATED_BY_LABEL

    try:
        candidates = api.containers(all=True, filters={"label": f"{CREATED_BY_LABEL}={kind}"})
    except Exception:
        return
    for c in candidates:
        try:
            env = (api.inspect_container(c["Id"]).get("Config") or {}).get("Env") or []
            if f"EDGEBENCH_LAUNCH_ID={launch_id}" in env:
                api.remove_container(c["Id"], force=True)
        except Exception as exc:  # already gone, or the engine is busy: nothing more to do here
            log.debug("remove %s: %s", c.get("Id", "?")[:12], exc)


class ContainerLauncher(Launcher):
    """`edgebench bench` inside `target`'s image (default tag `edgebench:<version>-<target>`) on this host."""

    name = "container"

    def __init__(self, target: Union[str, Any], *, image: Optional[str] = None, api: Any = None,
                 echo: Optional[IO[str]] = sys.stderr):
        from edgebench.docker.targets import Target, load

        self.target = target if isinstance(target, Target) else load(target)
        self.image = image
        self.api = api
        self.echo = echo

    def describe(self) -> str:
        return f"container {self.target.name}"

    def launch_impl(self, request: BenchRequest) -> LaunchResult:
        from edgebench.docker.client import api_client
        from edgebench.docker.run import default_image, inspect, run_in_image

        api = self.api or api_client()
        image = self.image or default_image(self.target)
        info = inspect(api, image)
        inner, binds = mounts_for(request)
        groups = []
        if self.target.gpu == "nvidia-runtime":  # a Jetson: its board state from the host's files (one definition)
            from edgebench.machine import boardstate

            facts = boardstate.local_facts()
            binds.update(boardstate.binds(facts))
            groups = boardstate.group_add(facts, gpu_group=False)  # run_in_image adds `video` for a non-root user
        env = image_environment(image, info, self.target.name)
        out = Path(request.out).resolve()
        echo = HostPaths(self.echo, {RESULTS_MOUNT + "/": str(out.parent) + "/",
                                     ARTIFACTS_MOUNT + "/": str(Path(request.artifacts).resolve()) + "/"}) \
            if self.echo is not None else None
        env["EDGEBENCH_LAUNCH_ID"] = uuid.uuid4().hex  # finds this run's container if it must be removed
        with stop_on_sigterm():  # SIGTERM, like Ctrl-C, unwinds through run_in_image, which removes the container
            try:
                res = run_in_image(api, image, inner.to_argv(), target=self.target, binds=binds, environment=env,
                                   kind="bench", echo=echo, check=False, network_disabled=True, group_add=groups)
            except BaseException:
                remove_launched(api, env["EDGEBENCH_LAUNCH_ID"])  # in case its own clean-up did not get there
                raise
        where = f"container {self.target.name} ({image})"
        if res.exit_code not in (EXIT_OK, EXIT_ROWS_FAILED):
            raise ContainerError(res.container_id, res.exit_code, inner.to_argv(), image, res.stderr or res.stdout,
                                 log_path=str(res.log_path))
        if not out.is_file():
            raise LaunchError(where, f"the container exited {res.exit_code} and wrote no {inner.out} "
                                     f"(looked for {out}); log {res.log_path}\n{res.stderr[-2000:]}")
        if info["Id"] not in out.read_text(encoding="utf-8", errors="replace"):
            log.warning("%s does not name image %s: does the bench fingerprint read EDGEBENCH_IMAGE_ID?", out,
                        info["Id"])
        return LaunchResult(where, out, exit_code=res.exit_code, seconds=res.seconds,
                            details={"image": image, "image_id": info["Id"], "log": str(res.log_path),
                                     "digest": env.get(IMAGE_DIGEST_ENV)})


__all__ = ["ContainerLauncher", "HostPaths", "remove_launched", "stop_on_sigterm", "mounts_for", "image_environment",
           "ARTIFACTS_MOUNT", "RESULTS_MOUNT", "SUITE_MOUNT", "DATA_MOUNT", "CACHE_DIR"]
