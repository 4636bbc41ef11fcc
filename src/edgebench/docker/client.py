"""The docker SDK's low-level client, made once per call, with errors that say how to start the engine."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Optional

from edgebench.docker.errors import DockerUnavailableError


def api_client(base_url: Optional[str] = None, timeout: int = 600) -> Any:
    """`docker.APIClient` for DOCKER_HOST (or `base_url`), pinged; DockerUnavailableError if none answers."""
    try:
        import docker
        from docker.utils import kwargs_from_env
    except ImportError as exc:  # pragma: no cover - host extra not installed
        raise DockerUnavailableError(base_url or os.environ.get("DOCKER_HOST"),
                                     f"the docker SDK is not installed ({exc}); pip install 'edgebench[host]'") from exc
    kwargs = kwargs_from_env()
    if base_url:
        kwargs["base_url"] = base_url
    host = kwargs.get("base_url") or os.environ.get("DOCKER_HOST")
    try:
        api = docker.APIClient(version="auto", timeout=timeout, **kwargs)
        api.ping()
    except Exception as exc:  # DockerException, requests' ConnectionError, FileNotFoundError on the socket
        raise DockerUnavailableError(host, exc) from exc
    return api


def log_dir() -> Path:
    from edgebench.docker.targets import repo_root

    d = Path(os.environ.get("EDGEBENCH_LOG_DIR") or repo_root() / "build" / "logs")
    d.mkdir(parents=True, exist_ok=True)
    return d


def log_path(kind: str, target: str) -> Path:
    """build/logs/<kind>-<target>-<UTC time>.log: every docker command keeps its log."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = log_dir() / f"{kind}-{target}-{stamp}.log"
    n = 1
    while path.exists():
        n += 1
        path = log_dir() / f"{kind}-{target}-{stamp}-{n}.log"
    return path
