"""Statistics shared by the bench and the report: one percentile, one bootstrap.

No framework imports (numpy only inside the bootstrap): safe in any container, on Python 3.8, and
importable from both `edgebench.bench` and `edgebench.report` without either importing the other.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

from edgebench.errors import EdgebenchError

#: resamples of a bootstrap: 25 in each tail of a 95% interval of a median ratio
BOOTSTRAP_RESAMPLES = 1000
#: the two-sided level of every interval the kit reports
CONFIDENCE = 0.95


class StatsError(EdgebenchError, ValueError):
    """Values a statistic cannot be computed from (none, too few, not positive): a ValueError too."""


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of already sorted values, q in 0..100."""
    if not sorted_values:
        raise StatsError("percentile of no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return percentile(sorted(values), 50)


def bootstrap_ratio_of_medians(a: Sequence[float], b: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
                               confidence: float = CONFIDENCE, seed: int = 0) -> Tuple[float, float, float]:
    """(ratio, lo, hi): median(b) / median(a) and its percentile-bootstrap interval, each sample resampled
    on its own (numpy, imported here: a core dependency, not a framework). Deterministic for a given seed,
    so a report renders the same twice."""
    import numpy as np

    if len(a) < 2 or len(b) < 2:
        raise StatsError("a bootstrap needs at least two values on each side")
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ma, mb = float(np.median(xa)), float(np.median(xb))
    if ma <= 0 or mb <= 0:
        raise StatsError("medians must be positive")
    rng = np.random.RandomState(seed)
    da = np.median(xa[rng.randint(0, len(xa), (resamples, len(xa)))], axis=1)
    db = np.median(xb[rng.randint(0, len(xb), (resamples, len(xb)))], axis=1)
    ratios = np.sort(db / da)
    tail = (1.0 - confidence) / 2 * 100.0
    lo, hi = np.percentile(ratios, [tail, 100.0 - tail])
    return mb / ma, float(lo), float(hi)


def sample_cv(values: Sequence[float]) -> Optional[float]:
    """Sample standard deviation / mean, or None for fewer than two values or a non-positive mean."""
    if len(values) < 2:
        return None
    m = sum(values) / len(values)
    if m <= 0:
        return None
    return math.sqrt(sum((x - m) ** 2 for x in values) / (len(values) - 1)) / m
