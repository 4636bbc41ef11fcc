"""Measure this machine's peak: a short GEMM per precision and thread count, through ONNX Runtime's MLAS.

Why ONNX Runtime and not numpy: numpy has no fast INT8 matrix product (its integer matmul is a plain loop),
so an INT8 peak needs a tuned kernel; ONNX Runtime's MatMulInteger (u8 x s8, the kernel its quantized models
use: AVX-512 VNNI / AMX / Arm dot product where present) and MatMul (FP32 SGEMM) are the same code the
onnxruntime backend runs, are in every image of the kit, and take their thread count per session. The
graph is written as raw ONNX protobuf bytes here, so no `onnx` package is needed in the containers. Where
ONNX Runtime is absent, FP32 falls back to numpy's BLAS (method says so) and INT8 is not measured.

Each figure: 2*M*N*K operations over the fastest of several calls (after warm-up), pinned to the first
`threads` usable cores like the benchmark's own groups. Results are cached per machine fingerprint.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from edgebench import util
from edgebench.bench.errors import BenchInputError

SIZE = 1024            # M = N = K
MIN_CALLS = 4
MIN_SECONDS = 0.4
CACHE_VERSION = 1
ELEM = {"fp32": 1, "uint8": 2, "int8": 3, "int32": 6}


# --- a minimal ONNX protobuf writer (only what a one-node graph needs) ---------------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, value) -> bytes:
    if isinstance(value, int):
        return _varint(num << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(num << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, elem: int, shape: List[int]) -> bytes:
    dims = b"".join(_field(1, _field(1, d)) for d in shape)                 # Dimension.dim_value
    tensor = _field(1, elem) + _field(2, dims)                                # TypeProto.Tensor
    return _field(1, name) + _field(2, _field(1, tensor))                    # ValueInfoProto


def gemm_model(precision: str, n: int = SIZE) -> bytes:
    """ModelProto bytes of Y = A @ B (fp32 MatMul, or int8 MatMulInteger with uint8 A, int8 B, int32 Y)."""
    if precision == "fp32":
        op, a, b, y = "MatMul", ELEM["fp32"], ELEM["fp32"], ELEM["fp32"]
    elif precision == "int8":
        op, a, b, y = "MatMulInteger", ELEM["uint8"], ELEM["int8"], ELEM["int32"]
    else:
        raise BenchInputError(f"no GEMM calibration for {precision!r} (fp32, int8)")
    node = _field(1, "A") + _field(1, "B") + _field(2, "Y") + _field(3, "gemm") + _field(4, op)
    graph = (_field(1, node) + _field(2, "calibration") + _field(11, _value_info("A", a, [n, n]))
             + _field(11, _value_info("B", b, [n, n])) + _field(12, _value_info("Y", y, [n, n])))
    opset = _field(1, "") + _field(2, 13)
    return _field(1, 7) + _field(2, "edgebench") + _field(7, graph) + _field(8, opset)


# --- measuring -------------------------------------------------------------------------------------------------

def _best_seconds(fn) -> float:
    fn()
    fn()
    times: List[float] = []
    start = time.perf_counter()
    while len(times) < MIN_CALLS or time.perf_counter() - start < MIN_SECONDS:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _ort_gemm(precision: str, threads: int) -> float:
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(gemm_model(precision), opts, providers=["CPUExecutionProvider"])
    rng = np.random.RandomState(0)
    if precision == "fp32":
        feeds = {"A": rng.rand(SIZE, SIZE).astype(np.float32), "B": rng.rand(SIZE, SIZE).astype(np.float32)}
    else:
        feeds = {"A": rng.randint(0, 256, (SIZE, SIZE)).astype(np.uint8),
                 "B": rng.randint(-128, 128, (SIZE, SIZE)).astype(np.int8)}
    return _best_seconds(lambda: sess.run(None, feeds))


def _numpy_sgemm() -> float:
    import numpy as np

    a = np.random.RandomState(0).rand(SIZE, SIZE).astype(np.float32)
    return _best_seconds(lambda: a @ a)


def measure_peaks(job: Dict[str, Any], send) -> None:
    """Child body (bench.child): one figure per (precision, threads); each pinned like a benchmark group."""
    from edgebench.bench import child

    all_cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    try:
        import onnxruntime
        method = f"onnxruntime {onnxruntime.__version__} MLAS"
    except ImportError:
        method = None
    figures: Dict[str, Dict[str, float]] = {}
    for threads in job["threads"]:
        if all_cores is not None:
            os.sched_setaffinity(0, all_cores[:threads])
        for precision in job["precisions"]:
            if method:
                secs = _ort_gemm(precision, threads)
            elif precision == "fp32" and threads == 1:
                child.set_thread_env(1)
                secs = _numpy_sgemm()
            else:
                continue
            figures.setdefault(precision, {})[str(threads)] = 2.0 * SIZE ** 3 / secs / 1e9
    send("peaks", figures=figures, method=(f"{method}: {SIZE}x{SIZE}x{SIZE} GEMM (MatMul fp32, MatMulInteger u8s8 "
                                           f"int8), fastest of >= {MIN_CALLS} calls, pinned to the first N cores"
                                           if method else f"numpy BLAS {SIZE}^3 SGEMM, 1 thread"))


def machine_key(env: Dict[str, Any]) -> str:
    cpu = env.get("cpu") or {}
    versions = env.get("versions") or {}
    ident = {"v": CACHE_VERSION, "model": cpu.get("model"), "arch": cpu.get("arch"), "isa": cpu.get("isa"),
             "usable": cpu.get("usable_cores"), "max_mhz": cpu.get("max_mhz"), "ort": versions.get("onnxruntime"),
             "container": (env.get("container") or {}).get("image_id"), "host": env.get("hostname")}
    return util.json_digest(ident)[:16]


def calibrate(env: Dict[str, Any], threads: List[int], cache_dir: Path, precisions=("fp32", "int8"),
              log=None) -> Optional[Dict[str, Any]]:
    """Measured CPU peaks {"method", "machine_key", "figures": {precision: {threads: GFLOP/s}}, "cached"},
    from the cache when this machine (fingerprint) was calibrated before; None when it could not measure."""
    from edgebench.bench.child import Child
    from edgebench.util import atomic_write_json

    key = machine_key(env)
    cache = Path(cache_dir) / f"floor-{key}.json"
    wanted = sorted(set(int(t) for t in threads if t))
    try:
        cached = json.loads(cache.read_text())
        if all(str(t) in cached["figures"].get(p, {}) for p in precisions for t in wanted):
            return dict(cached, cached=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    if log:
        log(f"measuring this machine's peak (GEMM, {'/'.join(precisions)} at threads {wanted}): a few seconds, "
            f"once per machine")
    peaks = None
    with Child(measure_peaks, {"threads": wanted, "precisions": list(precisions)}, name="edgebench-floor",
               timeout_s=300) as proc:
        for msg in proc.messages():
            if msg["kind"] == "peaks":
                peaks = msg
    if not peaks or not peaks["figures"]:
        return None
    out = {"method": peaks["method"], "machine_key": key, "figures": peaks["figures"],
           "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    odd = not_scaling(peaks["figures"])
    if odd:
        out["note"] = (f"more threads measured slower ({odd}): the machine was busy during calibration; "
                       f"not cached, measured again next run")
        if log:
            log(f"peak calibration: {out['note']}")
        return dict(out, cached=False)
    try:
        atomic_write_json(cache, out)
    except OSError:
        pass  # a cache that cannot be written only costs a few seconds next time
    return dict(out, cached=False)


def not_scaling(figures: Dict[str, Dict[str, float]]) -> str:
    """'fp32 2 threads < 1 thread' when a higher thread count measured a lower peak (a busy machine), else ''."""
    for precision, by_threads in figures.items():
        ts = sorted(by_threads, key=int)
        for lo, hi in zip(ts, ts[1:]):
            if by_threads[hi] < by_threads[lo]:
                return f"{precision} {hi} threads {by_threads[hi]:.0f} < {lo} threads {by_threads[lo]:.0f} GFLOP/s"
    return ""


__all__ = ["calibrate", "gemm_model", "machine_key", "measure_peaks", "not_scaling", "SIZE"]
