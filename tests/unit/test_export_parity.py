"""Parity figures, thresholds and pass/fail marking (pure numpy)."""
from __future__ import annotations

import numpy as np
import pytest

from edgebench.export import parity


def _ref(n=50, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randn(n, 10).astype(np.float32) * 5, rng.randint(0, 10, n)


def test_identical_logits_pass_every_precision():
    ref, y = _ref()
    for precision, th in parity.DEFAULT_THRESHOLDS.items():
        r = parity.compare(ref.copy(), ref, y, th)
        assert r["passed"], precision
        assert r["max_abs_logit_diff"] == 0 and r["top1_agreement"] == 1.0
        assert r["top1"] == r["reference_top1"]


def test_fp32_threshold_is_relative():
    ref, y = _ref()
    scale = float(np.abs(ref).max())
    ok = parity.compare(ref + scale * 5e-5, ref, y, parity.DEFAULT_THRESHOLDS["fp32"])
    bad = parity.compare(ref + scale * 5e-4, ref, y, parity.DEFAULT_THRESHOLDS["fp32"])
    assert ok["passed"] and not bad["passed"]
    assert "relative logit difference" in bad["reason"]
    assert bad["rel_diff"] == pytest.approx(5e-4, rel=1e-3)


def test_int8_threshold_is_agreement():
    ref, y = _ref(100)
    out = ref.copy()
    flip = np.arange(3)  # 3% disagree
    out[flip] = -out[flip]
    r = parity.compare(out, ref, y, parity.DEFAULT_THRESHOLDS["int8"])
    assert r["top1_agreement"] == pytest.approx(0.97) and not r["passed"]
    assert "top-1 agreement" in r["reason"]
    assert parity.compare(out, ref, y, {"min_top1_agreement": 0.95})["passed"]


def test_non_finite_and_shape_mismatch_fail():
    ref, y = _ref()
    bad = ref.copy()
    bad[0, 0] = np.nan
    r = parity.compare(bad, ref, y, {})
    assert not r["passed"] and "non-finite" in r["reason"] and r["max_abs_logit_diff"] is None
    r = parity.compare(ref[:, :5], ref, y, {})
    assert not r["passed"] and "shape" in r["reason"]


def test_threshold_overrides_and_parsing():
    th = parity.thresholds({"int8": {"min_top1_agreement": 0.5}, "fp16": {"max_rel_diff": None}})
    assert th["int8"]["min_top1_agreement"] == 0.5 and "max_rel_diff" not in th["fp16"]
    assert parity.DEFAULT_THRESHOLDS["int8"]["min_top1_agreement"] == 0.98  # defaults untouched
    assert parity.parse_threshold("fp16.max_rel_diff=1e-2") == {"fp16": {"max_rel_diff": 0.01}}
    with pytest.raises(ValueError, match="PRECISION.KEY=VALUE"):
        parity.parse_threshold("fp16=3")
    with pytest.raises(ValueError, match="unknown parity threshold"):
        parity.thresholds({"fp32": {"closeness": 1}})
    with pytest.raises(ValueError, match="unknown precision"):
        parity.thresholds({"int4": {"max_rel_diff": 1}})


def test_every_format_has_a_runtime_backend():
    from edgebench import runtimes

    for fmt, backend in parity.BACKENDS.items():
        assert backend in runtimes.names(), fmt
