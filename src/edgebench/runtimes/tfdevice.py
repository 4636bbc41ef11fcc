"""Where a TensorFlow backend runs: `options: {device: cpu|gpu|auto}` in a suite run, and where TF really put it.

In the Jetson and x86-cuda images TensorFlow sees the GPU, so without this a `keras` row at 1 thread runs on
the GPU whatever its thread count. A group runs in its own child process, so:
  cpu   the GPU is hidden from TensorFlow in that child before TF initialises CUDA (CUDA_VISIBLE_DEVICES="" at
        construction, then `tf.config.set_visible_devices([], "GPU")`): the row never touches CUDA;
  gpu   the row needs a GPU that TensorFlow sees; without one the row is skipped with the reason;
  auto  TensorFlow's own choice (the GPU when it sees one): the default, as before.
Each row records what was asked and the device of the model's variables after loading (`placed_on`), and a row
whose model landed elsewhere than asked fails instead of measuring the wrong device.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Iterable, Mapping, Optional

from edgebench.runtimes.base import BackendError, BackendInputError, Runtime, RuntimeUnavailable

DEVICES = ("auto", "cpu", "gpu")


class DevicePlacementError(BackendError, RuntimeError):
    """TensorFlow placed the model on another device than the row asked for."""


def asked(options: Mapping[str, Any], backend: str) -> str:
    device = str(options.get("device", "auto")).lower()
    if device not in DEVICES:
        raise BackendInputError(f"{backend}: options.device must be one of {', '.join(DEVICES)}, not {device!r}")
    return device


def hide_gpu_early(device: str) -> None:
    """At construction, before TensorFlow can initialise CUDA in this (child) process."""
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


def prepare(device: str, backend: str) -> Dict[str, Any]:
    """Make TensorFlow's visible devices match `device` before the model loads; what TF sees, for the row."""
    import tensorflow as tf

    if device == "cpu":
        try:
            tf.config.set_visible_devices([], "GPU")
        except RuntimeError as exc:  # GPUs already initialised in this process
            raise DevicePlacementError(f"{backend}: cannot hide the GPU from TensorFlow any more ({exc}); "
                                       "a device: cpu row must run in a fresh process") from exc
    gpus = tf.config.list_physical_devices("GPU") if device != "cpu" else []
    if device == "gpu" and not gpus:
        raise RuntimeUnavailable(
            f"{backend}: asked for device gpu, but TensorFlow {tf.__version__} sees no GPU here "
            f"(built with CUDA: {tf.test.is_built_with_cuda()}; CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')!s}; in a container, was it started with the GPU: "
            "--runtime nvidia on Jetson, --gpus all on x86?)")
    return {"asked": device, "visible_gpus": [g.name for g in gpus],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def short(device_string: str) -> str:
    """'/job:localhost/replica:0/task:0/device:GPU:0' -> 'GPU:0'."""
    return device_string.rsplit("device:", 1)[-1] if device_string else "unknown"


def placed_on(variables: Iterable[Any], device: str, backend: str) -> str:
    """Device of the model's variables (where its arithmetic runs); DevicePlacementError when it is not as asked."""
    devices = sorted({short(getattr(v, "device", "") or "") for v in variables})
    where = ",".join(devices) or "unknown"
    kinds = {d.split(":")[0] for d in devices}
    if device == "cpu" and "GPU" in kinds:
        raise DevicePlacementError(f"{backend}: asked for device cpu, but TensorFlow placed the model on {where}")
    if device == "gpu" and kinds and "GPU" not in kinds:
        raise DevicePlacementError(f"{backend}: asked for device gpu, but TensorFlow placed the model on {where}")
    return where


class TensorFlowRuntime(Runtime):
    """Base of the TensorFlow backends: `options: {device: cpu|gpu|auto}` picks where TensorFlow runs the
    model; `cpu` hides the GPU before TensorFlow starts in this process."""

    def __init__(self, artifact, precision="fp32", threads=None, batch_size=None, **options):
        super().__init__(artifact, precision, threads, batch_size, **options)
        self.tf_device = asked(options, self.name)
        hide_gpu_early(self.tf_device)
        self.placement: Dict[str, Any] = {"asked": self.tf_device}

    @classmethod
    def _check_impl(cls) -> Optional[str]:
        import tensorflow  # noqa: F401

        return None
