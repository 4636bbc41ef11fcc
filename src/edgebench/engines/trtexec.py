"""trtexec command lines (argv lists, never shell strings) and the parsing of its performance summary.

`build_command` writes the same engine as edgebench.engines.tensorrt (a cross-check, and a fallback on a
device whose Python bindings are broken); `load_command` + `parse_summary` give the `trtexec --loadEngine`
cross-check: TensorRT's own GPU compute time beside the harness's end-to-end number.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence

from edgebench.contracts.vocabulary import INPUT_NAME, INPUT_SHAPE

DEFAULT_TRTEXEC = "/usr/src/tensorrt/bin/trtexec"  # JetPack / NGC location; not on PATH there
PRECISIONS = ("fp32", "fp16", "int8")
_NAME_OK = re.compile(r"^[A-Za-z0-9_:./-]+$")


def _version_tuple(version: str):
    return tuple(int(p) if p.isdigit() else 0 for p in (str(version).split(".") + ["0"])[:2])


def _shape(input_name: str, batch: int) -> str:
    return f"{input_name}:{int(batch)}x" + "x".join(str(d) for d in INPUT_SHAPE)


def build_command(onnx_path, engine_path, precision: str = "fp32", profile: Sequence[int] = (1, 64, 256),
                  input_name: str = INPUT_NAME, workspace_mb: int = 1024, calib_cache=None,
                  trt_version: str = "8.5.2", trtexec: str = DEFAULT_TRTEXEC) -> List[str]:
    """The trtexec argv that builds the engine edgebench builds (same profile, precision, workspace)."""
    lo, opt, hi = (int(b) for b in profile)
    if not 1 <= lo <= opt <= hi:
        raise ValueError(f"batch profile must satisfy 1 <= min <= opt <= max, got {lo}/{opt}/{hi}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if not _NAME_OK.match(input_name):
        raise ValueError(f"input_name {input_name!r} has characters trtexec cannot take")
    argv = [str(trtexec), f"--onnx={onnx_path}", f"--saveEngine={engine_path}",
            f"--minShapes={_shape(input_name, lo)}", f"--optShapes={_shape(input_name, opt)}",
            f"--maxShapes={_shape(input_name, hi)}", f"--memPoolSize=workspace:{int(workspace_mb)}"]
    # TensorRT 8.6 renamed --buildOnly to --skipInference
    argv.append("--buildOnly" if _version_tuple(trt_version) < (8, 6) else "--skipInference")
    if precision == "fp16":
        argv.append("--fp16")
    elif precision == "int8":
        argv += ["--int8", "--fp16"]
        if calib_cache is not None:
            argv.append(f"--calib={calib_cache}")
    return argv


def load_command(engine_path, batch: int, input_name: str = INPUT_NAME, duration_s: int = 10,
                 warmup_ms: int = 1000, use_cuda_graph: bool = False, trtexec: str = DEFAULT_TRTEXEC) -> List[str]:
    """`trtexec --loadEngine` on a built engine at one batch size: the GPU compute time cross-check."""
    if int(batch) < 1 or int(duration_s) < 1:
        raise ValueError(f"batch and duration must be >= 1, got {batch} and {duration_s}")
    if not _NAME_OK.match(input_name):
        raise ValueError(f"input_name {input_name!r} has characters trtexec cannot take")
    argv = [str(trtexec), f"--loadEngine={engine_path}", f"--shapes={_shape(input_name, batch)}",
            f"--warmUp={int(warmup_ms)}", f"--duration={int(duration_s)}", "--useSpinWait"]
    if use_cuda_graph:
        argv.append("--useCudaGraph")
    return argv


_STAT = re.compile(r"(min|max|mean|median|percentile\((\d+(?:\.\d+)?)%\))\s*=\s*([0-9.eE+-]+)\s*ms")
_LINES = {"Latency": "latency_ms", "Enqueue Time": "enqueue_ms", "H2D Latency": "h2d_ms",
          "GPU Compute Time": "gpu_compute_ms", "D2H Latency": "d2h_ms"}


def parse_summary(text: str) -> Dict[str, object]:
    """The performance summary of a trtexec run: {"throughput_qps", "gpu_compute_ms": {"min", "max", "mean",
    "median", "p90", "p95", "p99"}, "latency_ms": {...}, ...}. Raises ValueError when there is none (a failed
    run), quoting trtexec's last lines."""
    out: Dict[str, object] = {}
    for raw in text.splitlines():
        line = re.sub(r"^(\[[^\]]*\]\s*)+", "", raw.strip())  # "[11/26/2026-18:00:00] [I] " prefixes
        m = re.match(r"Throughput:\s*([0-9.eE+-]+)\s*qps", line)
        if m:
            out["throughput_qps"] = float(m.group(1))
            continue
        label, sep, rest = line.partition(":")
        key = _LINES.get(label.strip())
        if not sep or key is None:
            continue
        stats: Dict[str, float] = {}
        for name, pct, value in _STAT.findall(rest):
            stats[f"p{pct.rstrip('0').rstrip('.') if '.' in pct else pct}" if pct else name] = float(value)
        if stats:
            out[key] = stats
    if "gpu_compute_ms" not in out:
        tail = "\n".join(text.strip().splitlines()[-5:])
        raise ValueError(f"no 'GPU Compute Time' in trtexec's output (did it fail?):\n{tail}")
    return out


def images_per_second(summary: Dict[str, object], batch: int) -> Optional[float]:
    """Images per second implied by the mean GPU compute time of one batch."""
    stats = summary.get("gpu_compute_ms")
    mean = stats.get("mean") if isinstance(stats, dict) else None
    return batch * 1000.0 / mean if mean else None


class TrtexecError(RuntimeError):
    """trtexec is missing or failed: says which binary, the command and the tail of its output."""


def find_trtexec(preferred: str = DEFAULT_TRTEXEC) -> str:
    """The trtexec binary: the JetPack / NGC location, else one on PATH; TrtexecError when there is none."""
    import os
    import shutil

    if os.access(preferred, os.X_OK):
        return preferred
    found = shutil.which("trtexec")
    if found:
        return found
    raise TrtexecError(f"trtexec not found (looked at {preferred} and on PATH): the cross-check runs where TensorRT "
                       f"is installed (Jetson / NGC images)")


def crosscheck(engine_path, batch: int, duration_s: int = 10, use_cuda_graph: bool = False,
               trtexec: Optional[str] = None, timeout_s: float = 600.0) -> Dict[str, object]:
    """Run `trtexec --loadEngine` on a built engine and return {"command", "summary", "images_per_second"}:
    TensorRT's own GPU compute time beside the harness's end-to-end number (a cross-check, not a row of ours)."""
    import subprocess

    binary = trtexec or find_trtexec()
    argv = load_command(engine_path, batch, duration_s=duration_s, use_cuda_graph=use_cuda_graph, trtexec=binary)
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise TrtexecError(f"{' '.join(argv)}: {exc}") from None
    text = res.stdout + res.stderr
    if res.returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-8:])
        raise TrtexecError(f"{' '.join(argv)} exited {res.returncode}:\n{tail}")
    try:
        summary = parse_summary(text)
    except ValueError as exc:
        raise TrtexecError(f"{' '.join(argv)}: {exc}") from None
    return {"command": argv, "summary": summary, "images_per_second": images_per_second(summary, batch)}
