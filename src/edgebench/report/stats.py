"""Speed of a row with its spread, and the test that decides whether two speeds differ beyond noise.

The test ("within noise" or not) is a percentile bootstrap of the ratio of medians from the raw samples
(per-batch latencies, or the seconds of each test-set pass): the two speeds differ when the 95% interval
of the ratio excludes 1. Without raw samples on both sides nothing is decided: the ratio is shown as
untested. METHOD says this in words for the report.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from edgebench.report import fields
from edgebench.report.format import num, sub
from edgebench.stats_core import BOOTSTRAP_RESAMPLES, CONFIDENCE, bootstrap_ratio_of_medians, percentile, sample_cv

METHOD = (f"a percentile bootstrap ({BOOTSTRAP_RESAMPLES} resamples) of the ratio of medians from the raw "
          f"samples of both rows (per-batch latencies, or the seconds of each test-set pass); two speeds differ "
          f"when the {CONFIDENCE:.0%} interval of the ratio excludes 1×. It measures noise within each run: "
          f"a busy machine between runs can move speeds by more, so repeat comparisons that matter.")


def latency_cv(row: Dict[str, Any]) -> Optional[float]:
    """Coefficient of variation (fraction) of the raw latencies, else std / mean, else the stored cv."""
    cv = sample_cv(fields.raw_latencies_ms(row))
    if cv is not None:
        return cv
    mean, std = num(sub(row, "latency_ms", "mean")), num(sub(row, "latency_ms", "std"))
    if mean and std is not None:
        return std / mean
    return fields.nonnegative(sub(row, "latency_ms", "cv"))


def rate(row: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Speed of an ok row as images per second (higher is faster), with a spread [lo, hi], CV and samples.

    testset: images / avg_s; spread: the slowest and fastest pass (min-max); samples: seconds per pass.
    Without an image count the unit is passes per second, comparable only with other passes.
    latency, throughput: throughput_ips (or batch / median latency); spread: the interquartile range of
    the raw latencies carried over to the rate (or median +- std); samples: per-batch latencies in ms.
    """
    if row.get("status") != "ok":
        return None
    if row.get("scenario") == "testset":
        ts = row.get("testset") if isinstance(row.get("testset"), dict) else {}
        avg, mx, mn = num(ts.get("avg_s")), num(ts.get("max_s")), num(ts.get("min_s"))
        if not avg or avg <= 0:
            return None
        images = num(ts.get("images"))
        scale = images if images else 1.0
        secs = fields.pass_seconds(row)
        return {"value": scale / avg, "lo": scale / mx if mx else None, "hi": scale / mn if mn else None,
                "spread": "min-max", "cv": sample_cv(secs), "unit": "img/s" if images else "passes/s",
                "images": images, "samples": secs, "sample_kind": "seconds per pass"}
    batch = num(row.get("batch_size")) or 1.0
    lat = row.get("latency_ms") if isinstance(row.get("latency_ms"), dict) else {}
    median = num(lat.get("median")) or num(lat.get("mean"))
    value = num(row.get("throughput_ips"))
    if value is None and median:
        value = batch * 1000.0 / median
    if not value or value <= 0:
        return None
    lo = hi = None
    spread = None
    raw = fields.raw_latencies_ms(row)
    s = sorted(raw)
    if len(s) >= 4 and median:
        p25, p75 = percentile(s, 25), percentile(s, 75)
        hi, lo, spread = value * median / p25, value * median / p75, "IQR"
    elif median and num(lat.get("std")) is not None and median - num(lat.get("std")) > 0:
        std = num(lat.get("std"))
        lo, hi, spread = value * median / (median + std), value * median / (median - std), "±1 std"
    return {"value": value, "lo": lo, "hi": hi, "spread": spread, "cv": latency_cv(row), "unit": "img/s",
            "images": None, "samples": raw, "sample_kind": "ms per batch"}


def speed_test(a: Dict[str, Any], b: Dict[str, Any], a_row: Dict[str, Any], b_row: Dict[str, Any]
               ) -> Dict[str, Any]:
    """Is rate b different from rate a beyond noise? Returns {ratio, lo, hi, tested, differs, why}.

    Samples are times (lower is faster), so the speed ratio b/a is median(time a) / median(time b),
    scaled by the batch sizes for per-batch latencies and by the image counts for test-set passes."""
    ratio = b["value"] / a["value"]
    sa, sb = a.get("samples") or [], b.get("samples") or []
    if len(sa) < 2 or len(sb) < 2:
        return {"ratio": ratio, "lo": None, "hi": None, "tested": False, "differs": None,
                "why": "not tested: no raw samples on both sides"}
    try:
        time_ratio, lo, hi = bootstrap_ratio_of_medians(sb, sa)   # median(time a) / median(time b)
    except ValueError as exc:
        return {"ratio": ratio, "lo": None, "hi": None, "tested": False, "differs": None, "why": f"not tested: {exc}"}
    if a_row.get("scenario") == "testset":
        scale = (b.get("images") or 1.0) / (a.get("images") or 1.0)
    else:
        scale = (num(b_row.get("batch_size")) or 1.0) / (num(a_row.get("batch_size")) or 1.0)
    ratio, lo, hi = time_ratio * scale, lo * scale, hi * scale     # a ratio of medians, as tested
    differs = not (lo <= 1.0 <= hi)
    n = f"n={len(sa)} vs {len(sb)}"
    why = (f"{CONFIDENCE:.0%} interval {lo:.3g}–{hi:.3g}× excludes 1× ({n})" if differs
           else f"{CONFIDENCE:.0%} interval {lo:.3g}–{hi:.3g}× includes 1× ({n})")
    return {"ratio": ratio, "lo": lo, "hi": hi, "tested": True, "differs": differs, "why": why}


def geomean(values: List[float]) -> Optional[float]:
    import math

    vals = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def spread_text(r: Dict[str, Any]) -> Tuple[str, str]:
    """('lo–hi', 'IQR') for a rate's spread, or ('', '')."""
    if r.get("lo") is None or r.get("hi") is None:
        return "", ""
    from edgebench.report.format import fmt

    return f"{fmt(r['lo'])}–{fmt(r['hi'])}", str(r.get("spread") or "")
