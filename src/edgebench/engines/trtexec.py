"""trtexec command lines (argv lists, never shell strings) and the reading of its JSON exports.

`build_command` writes the same engine as edgebench.engines.tensorrt (a cross-check, and a fallback on a
device whose Python bindings are broken): the same profile, precision and workspace, the same explicit TF32
policy (trtexec turns TF32 on unless told `--noTF32`; Polygraphy's CreateConfig turns it off unless told
`tf32=True`: both are told, from one BuildOptions.tf32) and the same machine timing cache
(`--timingCacheFile`, the file Polygraphy loads and saves). `load_command` + `parse_times` give the
`trtexec --loadEngine` cross-check: TensorRT's own GPU compute time beside the harness's end-to-end number,
read from the `--exportTimes` trace (JSON; and `--exportProfile`'s per-layer times), not scraped from its log.
"""
from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from edgebench.contracts.vocabulary import EXPORT_PRECISIONS, INPUT_NAME, INPUT_SHAPE
from edgebench.engines.errors import EnginesError

DEFAULT_TRTEXEC = "/usr/src/tensorrt/bin/trtexec"  # JetPack / NGC location; not on PATH there
PRECISIONS = EXPORT_PRECISIONS   # the precisions an engine is built in: the exporters'
_NAME_OK = re.compile(r"^[A-Za-z0-9_:./-]+$")


def _version_tuple(version: str):
    return tuple(int(p) if p.isdigit() else 0 for p in (str(version).split(".") + ["0"])[:2])


def _shape(input_name: str, batch: int) -> str:
    return f"{input_name}:{int(batch)}x" + "x".join(str(d) for d in INPUT_SHAPE)


def build_command(onnx_path, engine_path, precision: str = "fp32", profile: Sequence[int] = (1, 64, 256),
                  input_name: str = INPUT_NAME, workspace_mb: int = 1024, calib_cache=None,
                  trt_version: str = "8.5.2", trtexec: str = DEFAULT_TRTEXEC, tf32: bool = False,
                  timing_cache=None, fp16_fallback: bool = True) -> List[str]:
    """The trtexec argv that builds the engine edgebench builds (same profile, precision, workspace, TF32
    policy, timing cache)."""
    lo, opt, hi = (int(b) for b in profile)
    if not 1 <= lo <= opt <= hi:
        raise TrtexecInputError(f"batch profile must satisfy 1 <= min <= opt <= max, got {lo}/{opt}/{hi}")
    if precision not in PRECISIONS:
        raise TrtexecInputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if not _NAME_OK.match(input_name):
        raise TrtexecInputError(f"input_name {input_name!r} has characters trtexec cannot take")
    argv = [str(trtexec), f"--onnx={onnx_path}", f"--saveEngine={engine_path}",
            f"--minShapes={_shape(input_name, lo)}", f"--optShapes={_shape(input_name, opt)}",
            f"--maxShapes={_shape(input_name, hi)}", f"--memPoolSize=workspace:{int(workspace_mb)}"]
    # TensorRT 8.6 renamed --buildOnly to --skipInference
    argv.append("--buildOnly" if _version_tuple(trt_version) < (8, 6) else "--skipInference")
    if not tf32:
        argv.append("--noTF32")  # trtexec's default is TF32 on; Polygraphy's (and ours) is off
    if timing_cache is not None:
        argv.append(f"--timingCacheFile={timing_cache}")
    if precision == "fp16":
        argv.append("--fp16")
    elif precision == "int8":
        argv += ["--int8", "--fp16"] if fp16_fallback else ["--int8"]
        if calib_cache is not None:
            argv.append(f"--calib={calib_cache}")
    return argv


def build_command_for(opts, onnx_path, engine_path, trt_version: str, timing_cache=None, calib_cache=None,
                      trtexec: str = DEFAULT_TRTEXEC) -> List[str]:
    """build_command from an edgebench.engines.tensorrt.BuildOptions: the builder's one set of options."""
    return build_command(onnx_path, engine_path, opts.precision, opts.profile, opts.input_name, opts.workspace_mb,
                         calib_cache, trt_version, trtexec, tf32=opts.tf32, timing_cache=timing_cache,
                         fp16_fallback=opts.int8_fp16_fallback)


def load_command(engine_path, batch: int, input_name: str = INPUT_NAME, duration_s: int = 10,
                 warmup_ms: int = 1000, use_cuda_graph: bool = False, trtexec: str = DEFAULT_TRTEXEC,
                 export_times=None, export_profile=None) -> List[str]:
    """`trtexec --loadEngine` on a built engine at one batch size: the GPU compute time cross-check, its trace
    written to `export_times` (JSON) and, when given, its per-layer times to `export_profile` (measured in a
    separate run, so profiling does not slow the timed one)."""
    if int(batch) < 1 or int(duration_s) < 1:
        raise TrtexecInputError(f"batch and duration must be >= 1, got {batch} and {duration_s}")
    if not _NAME_OK.match(input_name):
        raise TrtexecInputError(f"input_name {input_name!r} has characters trtexec cannot take")
    argv = [str(trtexec), f"--loadEngine={engine_path}", f"--shapes={_shape(input_name, batch)}",
            f"--warmUp={int(warmup_ms)}", f"--duration={int(duration_s)}", "--useSpinWait"]
    if use_cuda_graph:
        argv.append("--useCudaGraph")
    if export_times is not None:
        argv.append(f"--exportTimes={export_times}")
    if export_profile is not None:
        argv += [f"--exportProfile={export_profile}", "--separateProfileRun"]
    return argv


def _median(values: Sequence[float]) -> float:
    n = len(values)
    mid = n // 2
    return values[mid] if n % 2 else (values[mid - 1] + values[mid]) / 2


def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def _percentile(values: Sequence[float], pct: float) -> float:
    """trtexec's own rule (sampleReporting's findPercentile), in its float32 arithmetic: of the sorted values,
    drop int((1 - pct/100) * n) from the top and take the largest left (p90 of 1..100 is 90, not 91)."""
    n = len(values)
    exclude = int(_f32(_f32(1 - _f32(_f32(pct) / 100)) * n))
    return values[max(0, n - 1 - exclude)]


def _stats(values: Sequence[float]) -> Dict[str, float]:
    v = sorted(values)
    return {"min": v[0], "max": v[-1], "mean": sum(v) / len(v), "median": _median(v),
            "p90": _percentile(v, 90), "p95": _percentile(v, 95), "p99": _percentile(v, 99)}


def _load_json(source, what: str):
    if isinstance(source, (list, dict)):
        return source
    try:
        return json.loads(Path(source).read_text())
    except OSError as exc:
        raise TrtexecInputError(f"trtexec wrote no {what} file {source} ({exc.strerror or exc}): did it fail?",
                                path=source) from None
    except ValueError as exc:
        raise TrtexecInputError(f"trtexec's {what} file {source} is not JSON: {exc}", path=source) from None


def parse_times(source, warmup_ms: float = 0.0) -> Dict[str, object]:
    """The summary of a `--exportTimes` trace (a path or the loaded list). TensorRT 8.5-10 write one object per
    inference: startEnqMs, endEnqMs, startH2dMs, endH2dMs, startComputeMs, endComputeMs, startD2hMs, endD2hMs,
    h2dMs, computeMs, d2hMs, latencyMs, endToEndMs (milliseconds since the run began, warm-up included). As
    trtexec's own report does, inferences whose compute began before `warmup_ms` are dropped. Returns
    {"count", "throughput_qps", "gpu_compute_ms": {min, max, mean, median, p90, p95, p99}, "latency_ms",
    "h2d_ms", "d2h_ms", "enqueue_ms", "end_to_end_ms"}; ValueError for a file that is missing or not a trace."""
    doc = _load_json(source, "--exportTimes")
    if not isinstance(doc, list) or not all(isinstance(t, dict) for t in doc):
        raise TrtexecInputError(f"an --exportTimes trace is a JSON list of objects, got {type(doc).__name__}")
    try:
        trace = [t for t in doc if float(t["startComputeMs"]) >= warmup_ms]
        if not trace:
            raise TrtexecInputError(f"the --exportTimes trace has no inference after the {warmup_ms} ms warm-up "
                                    f"({len(doc)} in all)")
        out: Dict[str, object] = {"count": len(trace)}
        for key, field in (("gpu_compute_ms", "computeMs"), ("latency_ms", "latencyMs"), ("h2d_ms", "h2dMs"),
                           ("d2h_ms", "d2hMs"), ("end_to_end_ms", "endToEndMs")):
            out[key] = _stats([float(t[field]) for t in trace])
        out["enqueue_ms"] = _stats([float(t["endEnqMs"]) - float(t["startEnqMs"]) for t in trace])
        wall_ms = float(trace[-1]["endD2hMs"]) - float(trace[0]["startH2dMs"])  # trtexec's "benchTime"
    except KeyError as exc:
        raise TrtexecInputError(f"the --exportTimes trace lacks {exc} "
                                f"(not a trace of TensorRT 8.5 or later?)") from None
    out["throughput_qps"] = len(trace) * 1000.0 / wall_ms if wall_ms > 0 else None
    return out


def parse_profile(source) -> Dict[str, object]:
    """A `--exportProfile` file: [{"count": N}, {"name", "timeMs", "averageMs", "percentage"}, ...] ->
    {"count": N, "layers": [{"name", "total_ms", "average_ms", "percent"}, ...]}."""
    doc = _load_json(source, "--exportProfile")
    if not isinstance(doc, list) or not doc or not isinstance(doc[0], dict) or "count" not in doc[0]:
        raise TrtexecInputError("an --exportProfile file is a JSON list that starts with {\"count\": N}")
    try:
        layers = [{"name": str(x["name"]), "total_ms": float(x["timeMs"]), "average_ms": float(x["averageMs"]),
                   "percent": float(x["percentage"])} for x in doc[1:]]
    except (KeyError, TypeError) as exc:
        raise TrtexecInputError(f"an --exportProfile layer lacks {exc}") from None
    return {"count": int(doc[0]["count"]), "layers": layers}


def images_per_second(summary: Dict[str, object], batch: int) -> Optional[float]:
    """Images per second implied by the mean GPU compute time of one batch."""
    stats = summary.get("gpu_compute_ms")
    mean = stats.get("mean") if isinstance(stats, dict) else None
    return batch * 1000.0 / mean if mean else None


class TrtexecError(EnginesError, RuntimeError):
    """trtexec is missing or failed: says which binary, the command and the tail of its output."""


class TrtexecInputError(TrtexecError, ValueError):
    """An argument trtexec cannot take, or a trace / profile file it wrote that cannot be read: a ValueError too."""


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
               trtexec: Optional[str] = None, timeout_s: float = 600.0, warmup_ms: int = 1000,
               profile: bool = False) -> Dict[str, object]:
    """Run `trtexec --loadEngine` on a built engine and return {"command", "summary", "images_per_second"} (and
    "profile" when asked): TensorRT's own GPU compute time, from its --exportTimes trace, beside the harness's
    end-to-end number (a cross-check, not a row of ours)."""
    import subprocess
    import tempfile

    binary = trtexec or find_trtexec()
    with tempfile.TemporaryDirectory(prefix="edgebench-trtexec-") as tmp:
        times, prof = Path(tmp) / "times.json", (Path(tmp) / "profile.json" if profile else None)
        argv = load_command(engine_path, batch, duration_s=duration_s, warmup_ms=warmup_ms,
                            use_cuda_graph=use_cuda_graph, trtexec=binary, export_times=times, export_profile=prof)
        try:
            res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TrtexecError(f"{' '.join(argv)}: {exc}") from None
        tail = "\n".join((res.stdout + res.stderr).strip().splitlines()[-8:])
        if res.returncode != 0:
            raise TrtexecError(f"{' '.join(argv)} exited {res.returncode}:\n{tail}")
        try:
            summary = parse_times(times, warmup_ms=warmup_ms)
            layers = parse_profile(prof) if prof is not None else None
        except ValueError as exc:
            raise TrtexecError(f"{' '.join(argv)}: {exc}\n{tail}") from None
    out: Dict[str, object] = {"command": argv, "summary": summary,
                              "images_per_second": images_per_second(summary, batch)}
    if layers is not None:
        out["profile"] = layers
    return out
