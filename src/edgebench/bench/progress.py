"""How long a suite will take, said before it starts, and a time-left estimate after each group.

The first estimate is rough by design: the stop rule's minimum seconds per row, warm-up, a model-load allowance
per group, and the test-set passes at an assumed speed (ASSUMED_IPS). Once the reference pass has run, the
estimate is calibrated on this machine (`calibrated`): its images per second (scaled to each group's threads)
and its start-up time replace the assumed ones. After each group the remaining estimate is also scaled by how
the finished groups compared with their own estimates.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, List, Optional

LOAD_S = 8.0            # start a child, import the framework, load the model, first inference
ASSUMED_IPS = 800.0     # img/s of a test-set pass before anything is measured: the default suite on 10,000 images
                        # took 22 min on a 2-core Xeon (docs/measurements/local-x86-2core.json); this says ~24


@dataclass
class Speed:
    """This machine's pace: test-set images per second on `cores` cores, and the start-up of one group."""
    ips: float = ASSUMED_IPS
    load_s: float = LOAD_S
    cores: int = 0              # 0: the speed does not depend on threads (the assumed one)

    def for_threads(self, threads: Optional[int]) -> float:
        if not self.cores or not threads:
            return self.ips
        return self.ips * min(threads, self.cores) / self.cores


def group_seconds(group, images: int, ips: float = ASSUMED_IPS, speed: Optional[Speed] = None) -> float:
    from edgebench.bench import scenarios

    speed = speed or Speed(ips=ips)
    rate = speed.for_threads(getattr(group, "threads", None))
    total = speed.load_s + images / rate  # the accuracy pass
    for name, cfg in group.scenarios.items():
        for batch in scenarios.batches(name, cfg):
            if name == "testset":
                total += max(0, int(cfg.get("repeats", 3)) - 1) * images / rate
                continue
            bs = batch if isinstance(batch, int) else int(cfg.get("batch_size", 1) or 1)
            # the stop rule: at least min_iterations AND min_seconds, after warm-up by runs and by time
            total += max(float(cfg.get("min_seconds", 2.0)), int(cfg.get("min_iterations", 1)) * bs / rate)
            total += max(float(cfg.get("warmup_seconds", 0.5)), int(cfg.get("warmup_iterations", 1)) * bs / rate)
            total += 0.3
    return total


def calibrated(timing: Optional[Dict[str, float]], cores: int) -> Optional[Speed]:
    """The Speed the reference pass measured on this machine (bench.reference's `timing`), or None without one."""
    if not timing or not timing.get("infer_seconds") or not timing.get("images"):
        return None
    return Speed(ips=float(timing["images"]) / float(timing["infer_seconds"]),
                 load_s=float(timing.get("load_seconds") or LOAD_S), cores=max(1, int(cores)))


def human(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Tracks estimated against actual seconds per group; `left()` is the scaled remaining estimate."""

    def __init__(self, groups, images: int, skip: Optional[List[bool]] = None, speed: Optional[Speed] = None):
        self.groups, self.images = groups, images
        self.estimates: List[float] = [group_seconds(g, images, speed=speed) for g in groups]
        self.skip = skip or [False] * len(self.estimates)
        self.done = 0
        self.est_done = 0.0
        self.actual = 0.0
        self._t0: Optional[float] = None

    def recalibrate(self, speed: Speed) -> None:
        """Estimate the groups not yet started again at this machine's measured speed."""
        for i in range(self.done, len(self.estimates)):
            self.estimates[i] = group_seconds(self.groups[i], self.images, speed=speed)

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
