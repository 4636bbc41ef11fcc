"""The launcher interface: where a benchmark runs. `launch(request) -> LaunchResult`.

A launcher takes a `BenchRequest` whose paths are this host's, carries it out somewhere (this process's
host, a container here, a remote device), and leaves the results JSON at `request.out` on this host.
Subclasses implement `launch_impl`; `launch` does the shared checks around it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict

from edgebench.contracts.request import BenchRequest, artifacts_not_found
from edgebench.errors import EdgebenchError


class LaunchError(EdgebenchError, RuntimeError):
    """A benchmark could not be carried out where it was asked to run (reason and where)."""

    def __init__(self, where: str, reason: str):
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: {reason}")


class JobError(LaunchError, ValueError):
    """A job description that cannot be launched (an unknown job name): a ValueError too."""

    def __init__(self, message: str):
        EdgebenchError.__init__(self, message)
        self.where = None
        self.reason = message


@dataclass
class LaunchResult:
    where: str                          # "local", "container x86-cpu (edgebench:0.1.0-x86-cpu)", "device jetson-01"
    results: Path                       # the results JSON on this host
    exit_code: int = 0                  # the bench entrypoint's exit code (see `edgebench bench --help`)
    seconds: float = 0.0
    details: Dict[str, Any] = field(default_factory=dict)   # image id/digest, log path, bytes moved, ...


class Launcher:
    """Base class: `launch` checks the request's host paths, then calls `launch_impl`."""

    name = "launcher"

    def describe(self) -> str:
        return self.name

    def launch(self, request: BenchRequest) -> LaunchResult:
        """The checks every launcher shares, on this host's paths, before anything starts: the artifacts
        folder (which runs exist when it does not), suite and data, and the --out file (bench.checks)."""
        from edgebench.bench.checks import check_out
        from edgebench.bench.errors import write_error

        artifacts = Path(request.artifacts)
        if not artifacts.is_dir():
            raise FileNotFoundError(artifacts_not_found(artifacts))
        for label, value in (("suite", request.suite), ("data", request.data)):
            if value and not Path(value).exists():
                raise FileNotFoundError(f"{label} not found: {value}")
        out = Path(request.out).resolve()
        check_out(out, force=request.force, resume=request.resume)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(out.parent, exc, what="create the results folder") from None
        return self.launch_impl(request)

    def launch_impl(self, request: BenchRequest) -> LaunchResult:  # pragma: no cover - interface
        raise NotImplementedError
