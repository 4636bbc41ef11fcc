"""Parity: run an artifact on the same N test images as the Keras model and compare.

Figures: largest absolute logit difference, the same relative to the largest reference logit,
top-1 agreement with Keras, top-1 accuracy (and Keras' own). Thresholds by precision are defaults
that callers may change; an artifact that misses its threshold is marked failed, with its figures.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, Optional

import numpy as np

from edgebench.contracts.vocabulary import FORMAT_BACKEND, PARITY_THRESHOLDS
from edgebench.export.base import ExportOptionError

DEFAULT_IMAGES = 1000
#: per precision (the vocabulary's): max_rel_diff = max|artifact - keras| / max|keras|; min_top1_agreement 0..1
DEFAULT_THRESHOLDS: Dict[str, Dict[str, float]] = copy.deepcopy(PARITY_THRESHOLDS)
THRESHOLD_KEYS = ("max_rel_diff", "max_abs_diff", "min_top1_agreement")

#: manifest format -> edgebench.runtimes backend that runs it
BACKENDS = dict(FORMAT_BACKEND)


def thresholds(overrides: Optional[Dict[str, Dict[str, float]]] = None) -> Dict[str, Dict[str, float]]:
    """The default thresholds with `overrides` ({precision: {key: value}}) merged in; checks keys."""
    out = copy.deepcopy(DEFAULT_THRESHOLDS)
    for precision, values in (overrides or {}).items():
        if precision not in out:
            raise ExportOptionError(f"unknown precision {precision!r} in parity thresholds (known: {', '.join(out)})")
        for key, value in values.items():
            if key not in THRESHOLD_KEYS:
                raise ExportOptionError(f"unknown parity threshold {key!r} (known: {', '.join(THRESHOLD_KEYS)})")
            if value is None:
                out[precision].pop(key, None)
            else:
                out[precision][key] = float(value)
    return out


def parse_threshold(text: str) -> Dict[str, Dict[str, float]]:
    """`fp16.max_rel_diff=1e-2` -> {"fp16": {"max_rel_diff": 0.01}} (the CLI's --threshold)."""
    try:
        lhs, value = text.split("=", 1)
        precision, key = lhs.split(".", 1)
        return {precision.strip(): {key.strip(): float(value)}}
    except ValueError:
        raise ExportOptionError(f"bad threshold {text!r}: expected PRECISION.KEY=VALUE, "
                                f"e.g. int8.min_top1_agreement=0.97") from None


def compare(logits: np.ndarray, reference: np.ndarray, labels: Optional[np.ndarray],
            threshold: Dict[str, float]) -> Dict[str, Any]:
    """Parity figures of `logits` against `reference` (same images, same order) and pass/fail."""
    logits = np.asarray(logits, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if logits.shape != reference.shape:
        return {"images": int(len(reference)), "passed": False, "threshold": dict(threshold),
                "max_abs_logit_diff": None, "rel_diff": None, "top1_agreement": None, "top1": None,
                "reference_top1": None, "reason": f"output shape {logits.shape} != Keras' {reference.shape}"}
    finite = bool(np.isfinite(logits).all())
    diff = float(np.max(np.abs(logits - reference))) if finite else float("inf")
    scale = float(np.max(np.abs(reference))) or 1.0
    pred, ref_pred = logits.argmax(axis=1), reference.argmax(axis=1)
    out: Dict[str, Any] = {
        "images": int(len(reference)),
        "max_abs_logit_diff": diff if finite else None,
        "rel_diff": diff / scale if finite else None,
        "top1_agreement": float(np.mean(pred == ref_pred)),
        "top1": float(np.mean(pred == labels)) if labels is not None else None,
        "reference_top1": float(np.mean(ref_pred == labels)) if labels is not None else None,
        "threshold": dict(threshold),
    }
    reasons = []
    if not finite:
        reasons.append("non-finite logits")
    if "max_rel_diff" in threshold and finite and out["rel_diff"] > threshold["max_rel_diff"]:
        reasons.append(f"relative logit difference {out['rel_diff']:.3g} > {threshold['max_rel_diff']:.3g}")
    if "max_abs_diff" in threshold and finite and diff > threshold["max_abs_diff"]:
        reasons.append(f"largest logit difference {diff:.3g} > {threshold['max_abs_diff']:.3g}")
    if "min_top1_agreement" in threshold and out["top1_agreement"] < threshold["min_top1_agreement"]:
        reasons.append(f"top-1 agreement {out['top1_agreement']:.4f} < {threshold['min_top1_agreement']:.4f}")
    out["passed"] = not reasons
    out["reason"] = "; ".join(reasons) or None
    return out


def run_artifact(fmt: str, path, precision: str, x: np.ndarray, batch_size: int = 100,
                 threads: Optional[int] = None, **options) -> np.ndarray:
    """Logits of an exported artifact on `x`, through edgebench.runtimes (the benchmark's own runners)."""
    from edgebench import runtimes

    backend = BACKENDS.get(fmt)
    if backend is None:
        raise ExportOptionError(f"no runtime for format {fmt!r}")
    with runtimes.open(backend, str(path), precision=precision, threads=threads, batch_size=batch_size,
                       **options) as rt:
        return rt.infer_all(np.asarray(x, dtype=np.float32), batch_size)


def reference_logits(model, x: np.ndarray, batch_size: int = 100) -> np.ndarray:
    """Keras logits on `x` (a direct call per batch: deterministic, no `predict` machinery)."""
    x = np.asarray(x, dtype=np.float32)
    return np.concatenate([np.asarray(model(x[i:i + batch_size], training=False))
                           for i in range(0, len(x), batch_size)])
