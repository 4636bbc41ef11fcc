"""How long a suite will take, said before it starts, and a time-left estimate after each group.

The estimate before the start is rough by design: the stop rule's minimum seconds per row, warm-up, a
model-load allowance per group, and the test-set passes at an assumed speed (ASSUMED_IPS). After each group
the remaining estimate is scaled by how the finished groups compared with their own estimates.
"""
from __future__ import annotations

import time
from typing import List, Optional

LOAD_S = 8.0            # start a child, import the framework, load the model, first inference
ASSUMED_IPS = 800.0     # img/s of a test-set pass before anything is measured: the default suite on 10,000 images
                        # took 22 min on a 2-core Xeon (docs/measurements/local-x86-2core.json); this says ~24


def group_seconds(group, images: int, ips: float = ASSUMED_IPS) -> float:
    from edgebench.bench import scenarios

    total = LOAD_S + images / ips  # the accuracy pass
    for name, cfg in group.scenarios.items():
        for _ in scenarios.batches(name, cfg):
            if name == "testset":
                total += max(0, int(cfg.get("repeats", 3)) - 1) * images / ips
            else:
                total += float(cfg.get("min_seconds", 2.0)) + float(cfg.get("warmup_seconds", 0.5)) + 0.3
    return total


def human(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Tracks estimated against actual seconds per group; `left()` is the scaled remaining estimate."""

    def __init__(self, groups, images: int, skip: Optional[List[bool]] = None):
        self.estimates: List[float] = [group_seconds(g, images) for g in groups]
        self.skip = skip or [False] * len(self.estimates)
        self.done = 0
        self.est_done = 0.0
        self.actual = 0.0
        self._t0: Optional[float] = None

    def total(self) -> float:
        return sum(e for e, s in zip(self.estimates, self.skip) if not s)

    def start(self, i: int) -> None:
        self._t0 = time.monotonic()

    def finish(self, i: int, measured: bool = True) -> None:
        if self._t0 is not None and measured:
            self.actual += time.monotonic() - self._t0
            self.est_done += self.estimates[i]
        self.done = i + 1
        self._t0 = None

    def left(self) -> float:
        rest = sum(e for e, s in zip(self.estimates[self.done:], self.skip[self.done:]) if not s)
        scale = self.actual / self.est_done if self.est_done > 0 else 1.0
        return rest * scale
