"""Every results field the report reads, with its one unit (edgebench.results's docstring is the contract).

Nothing here guesses a unit from a value's size: a field has one unit, named in UNITS, and a value
outside its unit's range is shown as not recorded (with the reason in `out_of_range`), never rescaled.
Schema-1 files written by every kit version so far use these units; imported CSV is converted at its
boundary (report.csvimport), not here.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from edgebench.contracts.vocabulary import NUM_CLASSES
from edgebench.report.format import num, sub

#: field path -> unit (the report reads nothing else from a row or a document)
UNITS: Dict[str, str] = {
    "accuracy.top1": "fraction of test images, 0..1",
    "accuracy.reference_top1": "fraction of test images, 0..1",
    "accuracy.delta_top1": "fraction, top1 - reference_top1 (-1..1)",
    "accuracy.max_abs_logit_diff": "logit units (absolute)",
    "latency_ms.*": "milliseconds per batch",
    "latency_ms.cv": "fraction, std / mean",
    "throughput_ips": "images per second",
    "testset.seconds": "seconds per pass over the test set",
    "testset.avg_s": "seconds per pass", "testset.max_s": "seconds per pass", "testset.min_s": "seconds per pass",
    "testset.images": "images per pass",
    "artifact.size_bytes": "bytes",
    "telemetry.cpu_percent_mean": "percent of one core, 0..100 x cores",
    "telemetry.gpu_util_mean": "percent of the GPU, 0..100",
    "telemetry.power_w_mean": "watts",
    "telemetry.energy_j_per_image": "joules per image",
    "gflops_achieved": "GFLOP/s (10^9 floating-point operations per second)",
    "floor.fraction_of_floor": "fraction, floor time / measured time (1 = at the floor; above 1 when the "
                               "floor's peak is below what the row reached: the report says why)",
    "floor.floor_ms_per_image": "milliseconds per image",
    "floor.peak_gflops": "GFLOP/s",
    "model.flops_per_image": "FLOP per image", "model.macs_per_image": "multiply-accumulates per image",
}


def fraction(x: Any) -> Optional[float]:
    """A value whose unit is a fraction 0..1, or None when missing or outside 0..1."""
    v = num(x)
    return v if v is not None and 0.0 <= v <= 1.0 else None


def signed_fraction(x: Any) -> Optional[float]:
    v = num(x)
    return v if v is not None and -1.0 <= v <= 1.0 else None


def nonnegative(x: Any) -> Optional[float]:
    v = num(x)
    return v if v is not None and v >= 0 else None


def top1(row: Dict[str, Any]) -> Optional[float]:
    return fraction(sub(row, "accuracy", "top1"))


def reference_top1(row: Dict[str, Any]) -> Optional[float]:
    return fraction(sub(row, "accuracy", "reference_top1"))


def chance_note(rows: List[Dict[str, Any]]) -> Optional[str]:
    """Top-1 means nothing for an untrained model: a note (and no number is shown) when the reference top-1
    of the rows that record one is at chance (at most 1.5 / classes), else None."""
    refs = [v for v in (reference_top1(r) for r in rows if isinstance(r, dict)) if v is not None]
    if refs and max(refs) <= 1.5 / NUM_CLASSES:
        return (f"not applicable: the reference model is at chance ({max(refs):.1%} top-1, untrained weights); "
                f"only the logit differences say how faithfully each variant computes")
    return None


def delta_top1(row: Dict[str, Any]) -> Optional[float]:
    return signed_fraction(sub(row, "accuracy", "delta_top1"))


def cpu_percent(row: Dict[str, Any]) -> Optional[float]:
    """Mean process CPU in percent of one core (200 = two cores busy)."""
    return nonnegative(sub(row, "telemetry", "cpu_percent_mean"))


def gpu_percent(row: Dict[str, Any]) -> Optional[float]:
    v = nonnegative(sub(row, "telemetry", "gpu_util_mean"))
    return v if v is not None and v <= 100.0 else None


def power_w(row: Dict[str, Any]) -> Optional[float]:
    return nonnegative(sub(row, "telemetry", "power_w_mean"))


def energy_j_per_image(row: Dict[str, Any]) -> Optional[float]:
    return nonnegative(sub(row, "telemetry", "energy_j_per_image"))


def size_bytes(row: Dict[str, Any]) -> Optional[float]:
    return nonnegative(sub(row, "artifact", "size_bytes"))


def floor_fraction(row: Dict[str, Any]) -> Optional[float]:
    return nonnegative(sub(row, "floor", "fraction_of_floor"))


def raw_latencies_ms(row: Dict[str, Any]) -> List[float]:
    """The raw per-batch latencies of a row in milliseconds (positive finite values only)."""
    raw = sub(row, "latency_ms", "raw")
    if not isinstance(raw, list):
        return []
    return [v for v in (num(x) for x in raw) if v is not None and v > 0]


def pass_seconds(row: Dict[str, Any]) -> List[float]:
    """The seconds of each test-set pass of a row."""
    secs = sub(row, "testset", "seconds")
    if not isinstance(secs, list):
        return []
    return [v for v in (num(x) for x in secs) if v is not None and v > 0]


def model_flops(model: Dict[str, Any]) -> Optional[float]:
    """FLOP per image: flops_per_image, else 2 x macs_per_image (one multiply-accumulate = 2 FLOP)."""
    f = nonnegative(model.get("flops_per_image"))
    if f:
        return f
    m = nonnegative(model.get("macs_per_image"))
    return 2.0 * m if m else None
