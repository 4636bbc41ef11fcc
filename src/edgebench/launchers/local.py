"""Run the benchmark in this host's Python, no container (the `local` target)."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable, Optional

from edgebench.contracts.request import BenchRequest
from edgebench.contracts.vocabulary import EXIT_OK, EXIT_ROWS_FAILED
from edgebench.launchers.base import Launcher, LaunchResult


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class LocalLauncher(Launcher):
    name = "local"

    def __init__(self, log: Optional[Callable[[str], None]] = None):
        self.log = log or _stderr

    def launch_impl(self, request: BenchRequest) -> LaunchResult:
        from edgebench.bench.harness import run_bench

        started = time.monotonic()
        doc = run_bench(request, log=self.log)
        failed = sum(1 for r in doc.get("rows", []) if r.get("status") == "failed")
        return LaunchResult("local", Path(request.out).resolve(), exit_code=EXIT_ROWS_FAILED if failed else EXIT_OK,
                            seconds=time.monotonic() - started, details={"failed_rows": failed})
