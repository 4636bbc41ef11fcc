"""Backends, one module each, behind one small interface (see base.py).

    from edgebench import runtimes
    with runtimes.open("onnxruntime", "artifacts/run/model.onnx", threads=2) as rt:
        logits = rt.infer(x)        # x: float32 NHWC, 0..255

Modules are imported lazily: listing backends imports no framework.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Type

from edgebench.contracts.vocabulary import BACKENDS
from edgebench.runtimes.base import BackendInputError, Runtime, RuntimeUnavailable, UnknownBackendError
from edgebench.runtimes.torch import VARIANTS as TORCH_VARIANTS
from edgebench.util import load_object

# backend name (the vocabulary's, in its order) -> "module:Class"
_IMPLEMENTATIONS: Dict[str, str] = {
    "keras": "edgebench.runtimes.keras:KerasPredict",
    "keras-call": "edgebench.runtimes.keras:KerasCall",
    "keras-gpu": "edgebench.runtimes.keras:KerasPredictGPU",
    "savedmodel": "edgebench.runtimes.savedmodel:SavedModelFunction",
    "savedmodel-xla": "edgebench.runtimes.savedmodel:SavedModelXLA",
    "tflite": "edgebench.runtimes.tflite:TFLite",
    "onnxruntime": "edgebench.runtimes.onnxruntime:OrtCPU",
    "onnxruntime-cuda": "edgebench.runtimes.onnxruntime:OrtCUDA",
    "onnxruntime-trt": "edgebench.runtimes.onnxruntime:OrtTensorRT",
    "tensorrt": "edgebench.runtimes.tensorrt:TensorRT",
    "tftrt": "edgebench.runtimes.tftrt:TFTRT",
    "openvino": "edgebench.runtimes.openvino:OpenVINO",
    "openvino-throughput": "edgebench.runtimes.openvino:OpenVINOThroughput",
}
_IMPLEMENTATIONS.update(TORCH_VARIANTS)  # torch, torch-cl, torch-graph, ...: one class each
_BACKENDS: Dict[str, str] = {name: _IMPLEMENTATIONS[name] for name in BACKENDS}  # KeyError: a backend without a class


def _plugins() -> Dict[str, str]:
    """Extra backends from $EDGEBENCH_BACKENDS ("name=module:Class,name2=module2:Class2"): a user's own
    runtime, or a test's deliberately crashing one. Read at call time so child processes see it too."""
    import os

    out = {}
    for item in filter(None, (os.environ.get("EDGEBENCH_BACKENDS") or "").split(",")):
        name, sep, target = item.partition("=")
        if not sep or ":" not in target:
            raise BackendInputError(f"EDGEBENCH_BACKENDS entry {item!r} is not name=module:Class")
        out[name.strip()] = target.strip()
    return out


__all__ = ["Runtime", "RuntimeUnavailable", "names", "get", "open", "availability"]


def names() -> List[str]:
    return list(dict(_BACKENDS, **_plugins()))


def get(name: str) -> Type[Runtime]:
    known = dict(_BACKENDS, **_plugins())
    try:
        target = known[name]
    except KeyError:
        raise UnknownBackendError(f"unknown backend {name!r}; known: {', '.join(known)}") from None
    return load_object(target)


def availability(name: str) -> Dict[str, object]:
    cls = get(name)
    reason = cls.check()
    out: Dict[str, object] = {"available": reason is None, "device": cls.device,
                              "precisions": list(cls.precisions), "format": cls.artifact_format}
    if reason:
        out["reason"] = reason
    else:
        try:
            out["versions"] = cls.versions()
        except Exception as exc:  # a version probe must never hide an available backend
            out["versions"] = {"error": str(exc)}
    return out


def open(name: str, artifact: Optional[str], precision: str = "fp32", threads: Optional[int] = None,  # noqa: A001
         batch_size: Optional[int] = None, **options) -> Runtime:
    """Create a backend's runtime; use it as a context manager (load on enter, close on exit)."""
    return get(name)(artifact, precision=precision, threads=threads, batch_size=batch_size, **options)
