"""ONNX Runtime backends: CPU execution provider (intra-op threads honoured), CUDA and TensorRT
execution providers where the installed build has them. FP32 reads model.onnx, INT8 the QDQ model."""
from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from edgebench.runtimes.base import BackendError, Runtime


class ProviderFallbackError(BackendError, RuntimeError):
    """ONNX Runtime put the session on another execution provider than the one the row asked for.

    ONNX Runtime falls back to the next provider in the list (in the end the CPU) with only a log line when a
    provider cannot start (CUDA/cuDNN libraries missing or of another major version, no GPU), so a row named
    onnxruntime-cuda would measure the CPU. Such a row fails with this error instead."""

    def __init__(self, backend: str, wanted: str, active: List[str], artifact: object = None):
        self.backend, self.wanted, self.active = backend, wanted, list(active)
        super().__init__(
            f"{backend}: asked for {wanted}, but ONNX Runtime runs the session on {active[0] if active else 'nothing'}"
            f" (session providers: {', '.join(active) or 'none'}; artifact {artifact}). The {wanted} could not"
            f" start: check that this onnxruntime build matches the CUDA/cuDNN/TensorRT libraries here"
            f" (`edgebench env --check {backend}`); the row is not measured on a fallback provider")


def require_active_provider(session, wanted: str, backend: str, artifact: object = None) -> List[str]:
    """The session's providers, when the first (the one that runs the graph) is `wanted`; else the error."""
    active = list(session.get_providers())
    if not active or active[0] != wanted:
        raise ProviderFallbackError(backend, wanted, active, artifact)
    return active


class OrtCPU(Runtime):
    name = "onnxruntime"
    artifact_format = "onnx"
    precisions = ("fp32", "int8")
    providers: List[str] = ["CPUExecutionProvider"]

    @classmethod
    def _check_impl(cls) -> Optional[str]:
        import onnxruntime as ort

        have = ort.get_available_providers()
        missing = [p for p in cls.providers if p not in have]
        if missing:
            return f"onnxruntime {ort.__version__} lacks {', '.join(missing)} (has {', '.join(have)})"
        return None

    @classmethod
    def versions(cls) -> Dict[str, str]:
        import onnxruntime as ort

        return {"onnxruntime": ort.__version__}

    def _session_options(self):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if self.threads is not None:
            so.intra_op_num_threads = self.threads
            so.inter_op_num_threads = 1
        if not self.options.get("spin", True):
            so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return so

    def _provider_list(self):
        return list(self.providers)

    def _load_impl(self) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(self.artifact), sess_options=self._session_options(),
                                            providers=self._provider_list())
        # a GPU row must run on the provider it names, never on a silent fallback
        self.active_providers = require_active_provider(self.session, self.providers[0], self.name, self.artifact)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output_name], {self.input_name: x})[0]

    def _close_impl(self) -> None:
        del self.session

    def describe(self) -> Dict[str, object]:
        d = super().describe()
        d["providers"] = list(getattr(self, "active_providers", []))
        return d


class OrtCUDA(OrtCPU):
    name = "onnxruntime-cuda"
    device = "gpu"
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]


class OrtTensorRT(OrtCPU):
    name = "onnxruntime-trt"
    device = "gpu"
    precisions = ("fp32", "fp16", "int8")
    providers = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]

    @classmethod
    def artifact_for(cls, precision: str):
        return ("onnx", "int8") if precision == "int8" else ("onnx", "fp32")

    def _provider_list(self):
        trt_opts = {"trt_fp16_enable": self.precision == "fp16",
                    "trt_engine_cache_enable": True,
                    "trt_engine_cache_path": str(self.options.get("cache_dir", "engines"))}
        return [("TensorrtExecutionProvider", trt_opts), "CUDAExecutionProvider", "CPUExecutionProvider"]
