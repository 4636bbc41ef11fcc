"""Statistics over raw per-iteration latencies (kept raw in the results too)."""
from __future__ import annotations

import math
from typing import Dict, List, Sequence

from edgebench.bench.errors import BenchInputError
from edgebench.contracts.vocabulary import NOISE_CV_LIMIT
from edgebench.stats_core import percentile

CV_WARNING = NOISE_CV_LIMIT  # one home: contracts.vocabulary

__all__ = ["CV_WARNING", "images_per_second", "percentile", "summarize"]


def summarize(values_ms: Sequence[float], keep_raw: bool = True) -> Dict[str, object]:
    """mean, median, p90/p95/p99, std (sample), CV, min, max, n; a warning when CV > 10%."""
    v = [float(x) for x in values_ms]
    if not v:
        raise BenchInputError("no measurements to summarize")
    s = sorted(v)
    n = len(v)
    mean = sum(v) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1)) if n > 1 else 0.0
    cv = std / mean if mean > 0 else 0.0
    out: Dict[str, object] = {
        "n": n, "mean": mean, "median": percentile(s, 50), "p90": percentile(s, 90), "p95": percentile(s, 95),
        "p99": percentile(s, 99), "std": std, "cv": cv, "min": s[0], "max": s[-1],
        "warning": (f"CV {cv:.1%} > {CV_WARNING:.0%}: noisy, compare with care" if cv > CV_WARNING else None),
    }
    if keep_raw:
        out["raw"] = v
    return out


def images_per_second(batch_size: int, latencies_ms: List[float]) -> float:
    total_s = sum(latencies_ms) / 1000.0
    return batch_size * len(latencies_ms) / total_s if total_s > 0 else float("nan")
