"""Keras backends: `model.predict` (the seed study's method) and a direct call of the model."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from edgebench.runtimes.base import Runtime, configure_tensorflow_threads


class _KerasBase(Runtime):
    artifact_format = "keras"
    precisions = ("fp32",)

    @classmethod
    def _check_impl(cls) -> Optional[str]:
        import tensorflow  # noqa: F401

        return None

    @classmethod
    def versions(cls) -> Dict[str, str]:
        import tensorflow as tf

        return {"tensorflow": tf.__version__, "keras": tf.keras.__version__}

    def _load_impl(self) -> None:
        configure_tensorflow_threads(self.threads)
        import tensorflow as tf

        self.model = tf.keras.models.load_model(str(self.artifact), compile=False)

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
