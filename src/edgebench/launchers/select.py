"""Pick the launcher for a target name: `local` runs on this host, a container target in its image here."""
from __future__ import annotations

from typing import Optional

from edgebench.launchers.base import Launcher
from edgebench.launchers.container import ContainerLauncher
from edgebench.launchers.local import LocalLauncher


def get_launcher(target: str, *, image: Optional[str] = None) -> Launcher:
    """`local` runs on this host; any container target name runs inside that target's image here."""
    if target in ("local", "", None):
        return LocalLauncher()
    return ContainerLauncher(target, image=image)
