"""Where a benchmark runs: one request (`BenchRequest`), several launchers (`launch(request) -> LaunchResult`).

- `local`: this host's Python;
- `container`: the target's image on this host's Docker engine;
- `remote` (deploy family): the deployed image on a device's Docker engine over SSH.
"""
from edgebench.contracts.request import BenchRequest
from edgebench.launchers.base import Launcher, LaunchError, LaunchResult
from edgebench.launchers.select import get_launcher

__all__ = ["BenchRequest", "LaunchError", "LaunchResult", "Launcher", "get_launcher"]
