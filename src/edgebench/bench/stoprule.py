"""Warm-up and the stop rule: at least N iterations AND at least T seconds (optimum-benchmark style)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, List, Optional

from edgebench.bench.errors import BenchInputError


@dataclass
class StopRule:
    min_iterations: int = 10
    min_seconds: float = 2.0
    max_iterations: Optional[int] = None   # hard cap, even if min_seconds is not reached
    max_seconds: Optional[float] = 600.0   # hard cap, even if min_iterations is not reached
    warmup_iterations: int = 3
    warmup_seconds: float = 0.5

    def validate(self) -> "StopRule":
        if self.min_iterations < 1:
            raise BenchInputError(f"min_iterations must be >= 1, got {self.min_iterations}")
        if self.min_seconds < 0 or self.warmup_seconds < 0 or self.warmup_iterations < 0:
            raise BenchInputError("seconds and warm-up counts must be >= 0")
        if self.max_iterations is not None and self.max_iterations < self.min_iterations:
            raise BenchInputError(f"max_iterations ({self.max_iterations}) < min_iterations ({self.min_iterations})")
        return self

    def done(self, iterations: int, elapsed_s: float) -> bool:
        if self.max_iterations is not None and iterations >= self.max_iterations:
            return True
        if self.max_seconds is not None and elapsed_s >= self.max_seconds:
            return True
        return iterations >= self.min_iterations and elapsed_s >= self.min_seconds

    def cut_short(self, iterations: int, elapsed_s: float) -> Optional[str]:
        """Why the loop ended before meeting both minimums, if it did."""
        if iterations >= self.min_iterations and elapsed_s >= self.min_seconds:
            return None
        return (f"stopped by a cap after {iterations} iterations / {elapsed_s:.1f} s "
                f"(wanted >= {self.min_iterations} and >= {self.min_seconds} s)")


def warm_up(fn: Callable[[], object], rule: StopRule, clock: Callable[[], float] = time.perf_counter) -> int:
    """Run `fn` until both warm-up minimums are met (runs AND time); returns how many runs it took."""
    start, n = clock(), 0
    while n < rule.warmup_iterations or clock() - start < rule.warmup_seconds:
        fn()
        n += 1
        if rule.max_seconds is not None and clock() - start > rule.max_seconds:
            break
    return n


def measure(fn: Callable[[], object], rule: StopRule, clock: Callable[[], float] = time.perf_counter) -> List[float]:
    """Time `fn` per call (ms) until the stop rule is met. `fn` must be synchronous (GPU work synced)."""
    latencies: List[float] = []
    start = clock()
    while True:
        t0 = clock()
        fn()
        t1 = clock()
        latencies.append((t1 - t0) * 1000.0)
        if rule.done(len(latencies), t1 - start):
            return latencies
