"""Containers: one image per target from `containers/<target>/` + `templates/Dockerfile.j2`.

Everything here talks to Docker through the docker SDK (never through shell strings); the SDK is
imported by the functions that need it, so `edgebench --help` works without it.

    targets.load(name)              -> Target (validated containers/<name>/target.yaml)
    render.render_dockerfile(t)     -> Dockerfile text
    build.build_image(name, ...)    -> BuildResult (tag, image id, seconds, log paths)
    run.run_in_image(api, image, command, target=...) -> RunResult (one container, followed and removed)

The benchmark in a container is a launcher: `edgebench.launchers.container.ContainerLauncher`.
"""
from __future__ import annotations

from edgebench.docker.errors import (  # noqa: F401
    BaseImageError,
    BuildError,
    ContainerError,
    DockerError,
    DockerUnavailableError,
    TargetError,
)
