"""What a GPU did during some timed calls, from the kernels a profiler saw: the evidence for "what bounds it".

`summarise(kernels, iterations, wall_ms, ...)` takes device activities as (name, start_us, end_us) tuples
(torch.profiler's CUDA events; tools/gpu-study/profile.py collects them) and returns, per call:

- kernels and copies launched, and the time the GPU was busy (the union of their intervals) against the wall
  time of a call: busy well under wall means the GPU waits for the host (launch overhead, a copy, Python);
- the busy time by kind (convolution, matrix product, fused Triton, elementwise, copy, other), with the
  convolutions' achieved TFLOP/s when their FLOPs are given;
- the heaviest kernels by name.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

#: kernel kind by name pattern, first match wins. Triton comes before convolution: Inductor names its fused
#: kernels after the ops they follow (triton_poi_fused_add_convolution_relu_3 is pointwise work, not a conv).
KINDS: Tuple[Tuple[str, str], ...] = (
    ("copy", r"memcpy|memset|Memcpy|Memset"),
    ("triton", r"^triton_"),
    ("convolution", r"conv(?!ert)|fprop|implicit_gemm|implicit_convolve|nhwckrsc|winograd|dgrad"),
    ("matmul", r"gemm|gemv|matmul|cublas|cutlass"),
    ("elementwise", r"elementwise|vectorized|reduce|pool|softmax|copy_kernel|nchwToNhwc|nhwcToNchw|transpose"),
)
TOP = 8


def kind_of(name: str) -> str:
    for kind, pattern in KINDS:
        if re.search(pattern, name, flags=re.IGNORECASE):
            return kind
    return "other"


def _union_us(intervals: List[Tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for s, e in sorted(intervals):
        if e <= end:
            continue
        total += e - max(s, end)
        end = e
    return total


def summarise(kernels: Sequence[Tuple[str, float, float]], iterations: int, wall_ms: float,
              batch: int, conv_flops_per_image: Optional[float] = None,
              peak_tflops: Optional[float] = None) -> Dict[str, Any]:
    """Per-call figures from the device activities of `iterations` calls whose wall time was `wall_ms` each."""
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, not {iterations}")
    n = float(iterations)
    busy_us = _union_us([(s, e) for _, s, e in kernels]) / n
    by_kind: Dict[str, Dict[str, float]] = {}
    by_name: Dict[str, Dict[str, float]] = {}
    for name, s, e in kernels:
        for table, key in ((by_kind, kind_of(name)), (by_name, name)):
            slot = table.setdefault(key, {"us": 0.0, "count": 0.0})
            slot["us"] += (e - s) / n
            slot["count"] += 1 / n
    wall_us = wall_ms * 1000.0
    out: Dict[str, Any] = {
        "iterations": iterations, "batch": batch, "wall_us": wall_us,
        "images_per_s": batch / (wall_ms / 1000.0) if wall_ms else None,
        "kernels_per_call": sum(v["count"] for k, v in by_kind.items() if k != "copy"),
        "copies_per_call": by_kind.get("copy", {}).get("count", 0.0),
        "gpu_busy_us": busy_us, "busy_fraction": busy_us / wall_us if wall_us else None,
        "by_kind": {k: {"us": round(v["us"], 2), "count": round(v["count"], 2),
                        "share_of_busy": v["us"] / busy_us if busy_us else None}
                    for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1]["us"])},
        "top_kernels": [{"name": k[:160], "kind": kind_of(k), "us": round(v["us"], 2), "count": round(v["count"], 2)}
                        for k, v in sorted(by_name.items(), key=lambda kv: -kv[1]["us"])[:TOP]],
        # every kernel, so the kinds can be drawn again from the record: name -> [us, count] a call
        "kernels": {k[:200]: [round(v["us"], 3), round(v["count"], 3)]
                    for k, v in sorted(by_name.items(), key=lambda kv: -kv[1]["us"])},
    }
    conv_us = by_kind.get("convolution", {}).get("us")
    if conv_flops_per_image and conv_us:
        tflops = conv_flops_per_image * batch / (conv_us * 1e-6) / 1e12
        out["convolution_tflops"] = tflops
        if peak_tflops:
            out["convolution_share_of_peak"] = tflops / peak_tflops
    return out


def verdict(summary: Dict[str, Any], launch_gap: float = 0.5) -> str:
    """One line: what bounds these calls, by a stated rule. GPU busy under `launch_gap` of the wall time: the
    host (launches, copies it waits for, Python); else the kind of kernel that holds most of the busy time."""
    frac = summary.get("busy_fraction")
    if frac is not None and frac < launch_gap:
        return (f"host-bound: the GPU is busy {frac:.0%} of each call ({summary['kernels_per_call']:.0f} kernels, "
                f"{summary['gpu_busy_us']:.0f} of {summary['wall_us']:.0f} us)")
    kinds = summary.get("by_kind") or {}
    if not kinds:
        return "no kernels seen"
    top, v = next(iter(kinds.items()))
    line = f"GPU-bound: {top} kernels hold {v['share_of_busy']:.0%} of the busy time"
    if top == "convolution" and summary.get("convolution_share_of_peak") is not None:
        line += f", running at {summary['convolution_share_of_peak']:.0%} of the dense peak"
    return line
