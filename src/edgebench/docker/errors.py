"""Errors that carry their context: what failed, where, and the tail of the log that says why."""
from __future__ import annotations

from typing import Iterable, List, Optional, Sequence

from edgebench.errors import EdgebenchError

START_DOCKER_HINT = (
    "Start the Docker engine and try again:\n"
    "  - Debian/Ubuntu host: `sudo systemctl start docker` (or, without systemd: `sudo dockerd &`)\n"
    "  - no engine installed: `sudo apt-get install -y docker.io`, or run `bash .ci/docker-setup.sh` as root\n"
    "  - a remote engine: set DOCKER_HOST (e.g. unix:///var/run/docker.sock or ssh://user@device)"
)


def tail(lines: Iterable[str], n: int = 40) -> str:
    """The last `n` lines of a log (a list of lines or one string)."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    kept: List[str] = list(lines)[-n:]
    return "\n".join(line.rstrip("\n") for line in kept)


class DockerError(EdgebenchError, RuntimeError):
    """Base of every error raised by edgebench.docker."""


class TargetError(DockerError, ValueError):
    """Unknown target or malformed containers/<target>/target.yaml."""


class DockerUnavailableError(DockerError):
    """No Docker engine answers."""

    def __init__(self, host: Optional[str], cause: object = None):
        self.host = host
        self.cause = cause
        where = host or "the default socket (unix:///var/run/docker.sock)"
        super().__init__(f"no Docker engine answers at {where}: {cause}\n{START_DOCKER_HINT}")


class BuildError(DockerError):
    """`docker build` failed; `build_log` holds every line, the message its tail."""

    def __init__(self, reason: str, build_log: Sequence[str], *, target: str = "", tag: str = "",
                 log_path: Optional[str] = None, tail_lines: int = 30):
        self.reason = reason
        self.build_log = list(build_log)
        self.target = target
        self.tag = tag
        self.log_path = log_path
        self.log_tail = tail(self.build_log, tail_lines)
        where = f" (full log: {log_path})" if log_path else ""
        super().__init__(f"build of {tag or target} failed: {reason}{where}\n--- build log tail ---\n{self.log_tail}")


class BaseImageError(BuildError):
    """The base image is neither present locally nor pullable."""

    def __init__(self, base_image: str, cause: object, *, target: str = "", log_path: Optional[str] = None):
        self.base_image = base_image
        hint = (f"base image {base_image!r} is not present and cannot be pulled ({cause}). "
                f"Pull it where a registry is reachable and `docker save`/`docker load` it here, "
                f"log in (`docker login nvcr.io` for NVIDIA's images), or pass another base image "
                f"(`invoke build --base-image ...`)")
        super().__init__(hint, [str(cause)], target=target, log_path=log_path)


class ContainerError(DockerError):
    """A container exited non-zero; carries its exit status, command, image and stderr tail."""

    def __init__(self, container: object, exit_status: int, command: Sequence[str], image: str, stderr: str,
                 *, log_path: Optional[str] = None, tail_lines: int = 30):
        self.container = container
        self.exit_status = exit_status
        self.command = list(command) if not isinstance(command, str) else [command]
        self.image = image
        self.stderr = stderr
        self.log_path = log_path
        self.stderr_tail = tail(stderr, tail_lines)
        where = f" (full log: {log_path})" if log_path else ""
        super().__init__(f"command {' '.join(self.command)!r} in image {image} exited with status {exit_status}"
                         f"{where}\n--- stderr tail ---\n{self.stderr_tail}")
