"""Keras backends: `model.predict` (the seed study's method) and a direct call of the model."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from edgebench.runtimes import tfdevice
from edgebench.runtimes.base import BackendInputError, configure_tensorflow_threads


class _KerasBase(tfdevice.TensorFlowRuntime):
    """`options: {device: cpu|gpu|auto}` picks where TensorFlow runs the model (runtimes/tfdevice.py)."""

    artifact_format = "keras"
    precisions = ("fp32",)

    @classmethod
    def versions(cls) -> Dict[str, str]:
        import tensorflow as tf

        return {"tensorflow": tf.__version__, "keras": tf.keras.__version__}

    def _load_impl(self) -> None:
        self.placement = tfdevice.prepare(self.tf_device, self.name)
        configure_tensorflow_threads(self.threads)
        import tensorflow as tf

        self.model = tf.keras.models.load_model(str(self.artifact), compile=False)
        self.placement["placed_on"] = tfdevice.placed_on(self.model.weights, self.tf_device, self.name)
        self.versions = self._instance_versions  # type: ignore[assignment]  # shadows the classmethod

    def _instance_versions(self) -> Dict[str, Any]:
        """The child sends `rt.versions()` once per group: loaded, it also says where TF put the model."""
        return dict(type(self).versions(), device=dict(self.placement))

    def _close_impl(self) -> None:
        del self.model


class KerasPredict(_KerasBase):
    """`model.predict(x, batch_size)`: Keras' own batching loop, as the seed study timed it."""

    name = "keras"

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x, batch_size=len(x), verbose=0)

    def infer_all(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        return self.model.predict(x.astype(np.float32, copy=False), batch_size=batch_size, verbose=0)


class KerasCall(_KerasBase):
    """`model(x, training=False)`: an eager call per batch, no `predict` machinery."""

    name = "keras-call"

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        return self.model(x, training=False).numpy()


class KerasPredictGPU(KerasPredict):
    """`model.predict` with TensorFlow on the GPU: the seed study's "keras-gpu" rows, kept apart from the CPU
    `keras` rows by name (a suite may run both at the same thread counts). Skipped where TF sees no GPU."""

    name = "keras-gpu"
    device = "gpu"

    def __init__(self, artifact, precision="fp32", threads=None, batch_size=None, **options):
        options.setdefault("device", "gpu")
        if str(options["device"]).lower() != "gpu":
            raise BackendInputError(f"{self.name}: options.device can only be gpu, not {options['device']!r} "
                                    "(use backend keras with options: {device: cpu})")
        super().__init__(artifact, precision, threads, batch_size, **options)
