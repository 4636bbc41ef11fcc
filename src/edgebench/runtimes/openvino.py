"""OpenVINO on the CPU: the IR that `edgebench export --formats openvino` writes (model.xml + model.bin in a folder).

Two backends, one per way of running a batch, so the row's backend name says which one ran:

    openvino             PERFORMANCE_HINT LATENCY, one synchronous infer request per batch
    openvino-throughput  PERFORMANCE_HINT THROUGHPUT, the batch split over OpenVINO's optimal number of
                         infer requests started together (start_async, then wait), one stream each

Precisions: fp32 and bf16/fp16 read the FP32 IR and set INFERENCE_PRECISION_HINT (f32, bf16, f16); bf16 and
fp16 run only where the CPU offers them (OpenVINO's OPTIMIZATION_CAPABILITIES), else the row is skipped with
that reason. int8 reads NNCF's quantized IR (its float parts at f32). Threads go through INFERENCE_NUM_THREADS;
ENABLE_CPU_PINNING follows the option `pinning` (None: OpenVINO's default). What the compiled model reports
back (precision, threads, pinning, streams, requests) is in every row's extra.backend_versions.settings.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from edgebench.runtimes.base import BackendInputError, Runtime, RuntimeUnavailable

MODES = ("latency", "throughput")
#: suite precision -> INFERENCE_PRECISION_HINT value (int8: NNCF's IR; what stays in float runs at f32)
INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}
#: suite precision -> the element type name INFERENCE_PRECISION_HINT reads back as
TYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "int8": "float32"}
#: suite precision -> the OPTIMIZATION_CAPABILITIES entry the CPU must list for it
CAPABILITY = {"fp32": "FP32", "bf16": "BF16", "fp16": "FP16", "int8": "INT8"}
#: properties read back from the compiled model into the row
READ_BACK = ("PERFORMANCE_HINT", "INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS", "ENABLE_CPU_PINNING",
             "NUM_STREAMS", "OPTIMAL_NUMBER_OF_INFER_REQUESTS", "SCHEDULING_CORE_TYPE",
             "ENABLE_HYPER_THREADING")
OPTION_KEYS = ("pinning", "num_requests")
IR_FILENAME = "model.xml"


def compile_properties(precision: str, threads: Optional[int], mode: str,
                       pinning: Optional[bool] = None, num_requests: Optional[int] = None) -> Dict[str, str]:
    """The CPU plugin properties for one row (string keys and values, as `Core.compile_model` takes them)."""
    if mode not in MODES:
        raise BackendInputError(f"openvino mode must be one of {', '.join(MODES)}, got {mode!r}")
    if precision not in INFERENCE_PRECISION:
        raise BackendInputError(f"openvino has no {precision} path (it offers {', '.join(INFERENCE_PRECISION)})")
    props = {"PERFORMANCE_HINT": mode.upper(), "INFERENCE_PRECISION_HINT": INFERENCE_PRECISION[precision]}
    if threads is not None:
        props["INFERENCE_NUM_THREADS"] = str(int(threads))
    if pinning is not None:
        props["ENABLE_CPU_PINNING"] = "YES" if pinning else "NO"
    if num_requests is not None:
        if int(num_requests) < 1:
            raise BackendInputError(f"openvino num_requests must be >= 1, got {num_requests}")
        props["PERFORMANCE_HINT_NUM_REQUESTS"] = str(int(num_requests))
    return props


def ir_path(artifact: Path) -> Path:
    """The .xml of an artifact: the folder the exporter writes (model.xml inside) or an .xml itself."""
    return artifact / IR_FILENAME if artifact.is_dir() else artifact


def missing_capability(precision: str, capabilities: List[str]) -> Optional[str]:
    """Why this CPU cannot run `precision` (None: it can), from OPTIMIZATION_CAPABILITIES."""
    need = CAPABILITY[precision]
    if precision in ("fp32", "int8") or need in capabilities:
        return None
    return (f"this CPU offers no {precision} inference in OpenVINO (OPTIMIZATION_CAPABILITIES: "
            f"{', '.join(capabilities) or 'none'})")


def split_batch(n: int, parts: int) -> List[slice]:
    """Contiguous, non-empty slices of a batch of `n` over at most `parts` requests."""
    parts = max(1, min(parts, n))
    bounds = np.linspace(0, n, parts + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


class OpenVINO(Runtime):
    name = "openvino"
    artifact_format = "openvino"
    precisions = ("fp32", "bf16", "fp16", "int8")
    mode = "latency"

    def __init__(self, artifact, precision: str = "fp32", threads=None, batch_size=None, **options: Any):
        unknown = sorted(set(options) - set(OPTION_KEYS))
        if unknown:
            raise BackendInputError(f"{self.name}: unknown options {unknown}; known: {list(OPTION_KEYS)}")
        super().__init__(artifact, precision=precision, threads=threads, batch_size=batch_size, **options)
        self.properties = compile_properties(precision, threads, self.mode, options.get("pinning"),
                                             options.get("num_requests"))
        self.settings: Dict[str, Any] = {"mode": self.mode, "asked": dict(self.properties)}

    @classmethod
    def artifact_for(cls, precision: str):
        return ("openvino", "int8") if precision == "int8" else ("openvino", "fp32")

    @classmethod
    def _check_impl(cls) -> Optional[str]:
        import openvino as ov

        if "CPU" not in ov.Core().available_devices:
            return "OpenVINO sees no CPU device"
        return None

    @classmethod
    def versions(cls) -> Dict[str, Any]:
        import openvino as ov

        return {"openvino": ov.__version__.split("-")[0], "openvino_build": ov.__version__}

    def _instance_versions(self) -> Dict[str, Any]:
        """Sent once per group by the bench child: the properties asked for and those the model reports."""
        return dict(type(self).versions(), settings=dict(self.settings))

    def _load_impl(self) -> None:
        import openvino as ov

        core = ov.Core()
        capabilities = [str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
        reason = missing_capability(self.precision, capabilities)
        if reason:
            raise RuntimeUnavailable(f"{self.name}: {reason}")
        xml = ir_path(self.artifact)
        if not xml.exists():
            raise FileNotFoundError(f"{self.name}: no OpenVINO IR at {xml}")
        self.compiled = core.compile_model(core.read_model(str(xml)), "CPU", self.properties)
        self.settings["effective"] = {k: _read(self.compiled, k) for k in READ_BACK}
        self.settings["capabilities"] = capabilities
        effective = str(self.settings["effective"].get("INFERENCE_PRECISION_HINT") or "")
        # read back as the element type (`<Type: 'bfloat16'>`, `float16`) or its short name, by release
        if self.precision in ("bf16", "fp16") and not any(
                s in effective for s in (INFERENCE_PRECISION[self.precision], TYPE_NAMES[self.precision])):
            raise RuntimeUnavailable(f"{self.name}: asked for {self.precision}, OpenVINO compiled at {effective}")
        self.versions = self._instance_versions  # type: ignore[assignment]  # shadows the classmethod
        self._start()

    def _start(self) -> None:
        self.request = self.compiled.create_infer_request()

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        self.request.infer({0: x})
        return np.array(self.request.get_output_tensor(0).data, dtype=np.float32, copy=True)

    def _close_impl(self) -> None:
        for attr in ("request", "requests", "compiled"):
            if hasattr(self, attr):
                delattr(self, attr)

    def describe(self) -> Dict[str, Any]:
        d = super().describe()
        d["settings"] = dict(self.settings)
        return d


class OpenVINOThroughput(OpenVINO):
    """THROUGHPUT hint: a batch is split over the compiled model's optimal number of infer requests, all started
    (start_async) before any is waited for.

    Plain requests, not an AsyncInferQueue with a Python callback: the callback runs on OpenVINO's stream threads
    and takes the GIL, and freeing the compiled model (which joins those threads) while holding the GIL then
    deadlocked a child here (openvino 2026.4, THROUGHPUT, bf16, 1 thread: the stream thread waiting for the GIL in
    ~CPUStreamsExecutor)."""

    name = "openvino-throughput"
    mode = "throughput"

    def _start(self) -> None:
        self.n_requests = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.requests = [self.compiled.create_infer_request() for _ in range(self.n_requests)]
        self.settings["requests"] = self.n_requests

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        parts = split_batch(len(x), self.n_requests)
        started = list(zip(self.requests, parts))
        for request, part in started:
            request.start_async({0: np.ascontiguousarray(x[part])})
        outputs = []
        for request, _ in started:
            request.wait()
            outputs.append(np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True))
        return np.concatenate(outputs)

    def _close_impl(self) -> None:
        for request in getattr(self, "requests", []):
            request.wait()
        self.requests = []
        super()._close_impl()


def _read(compiled, key: str) -> Any:
    try:
        value = compiled.get_property(key)
    except Exception:  # a property this OpenVINO release does not have
        return None
    return value if isinstance(value, (bool, int, float)) else str(value)


#: what a CPU offers for inference -> the /proc/cpuinfo flags (x86 `flags`, Arm `Features`) that mean it
CPU_FEATURES = {
    "VNNI": ("avx512_vnni", "avx_vnni"),
    "AMX": ("amx_tile", "amx_int8", "amx_bf16"),
    "BF16": ("avx512_bf16", "amx_bf16", "bf16"),
    "AVX-512": ("avx512f",),
    "Arm dot-product": ("asimddp",),
    "Arm FP16": ("asimdhp", "fphp"),
    "Arm I8MM": ("i8mm",),
}


def cpu_flags(cpuinfo: Optional[str] = None) -> List[str]:
    """The first `flags` (x86) or `Features` (Arm) line of /proc/cpuinfo, as a sorted list ([] if unreadable)."""
    import re

    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return []
    m = re.search(r"^(flags|Features)\s*:\s*(.*)$", cpuinfo, re.M)
    return sorted(set(m.group(2).split())) if m else []


def cpu_offer(flags: List[str], capabilities: Optional[List[str]]) -> Dict[str, Any]:
    """What this CPU offers (from its flags) and what OpenVINO will use (OPTIMIZATION_CAPABILITIES)."""
    have = set(flags)
    offers = {name: sorted(have & set(names)) for name, names in CPU_FEATURES.items()}
    return {"offers": {name: bool(found) for name, found in offers.items()},
            "flags": {name: found for name, found in offers.items() if found},
            "openvino_capabilities": list(capabilities) if capabilities is not None else None,
            "precisions": [p for p in ("fp32", "bf16", "fp16", "int8")
                           if capabilities is not None and missing_capability(p, list(capabilities)) is None]}


def cpu_capabilities() -> Dict[str, Any]:
    """`edgebench env --check openvino`: the CPU's inference features, as its flags and OpenVINO see them."""
    import openvino as ov

    core = ov.Core()
    caps = [str(c) for c in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")]
    out = cpu_offer(cpu_flags(), caps)
    out["cpu"] = str(core.get_property("CPU", "FULL_DEVICE_NAME"))
    return out


def describe_offer(offer: Dict[str, Any]) -> str:
    """One line: `AMD EPYC: VNNI yes, AMX no, ...; OpenVINO runs fp32, bf16, int8`."""
    yes = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in offer["offers"].items())
    return f"{offer.get('cpu', 'CPU')}: {yes}; OpenVINO runs {', '.join(offer['precisions']) or 'nothing'}"
