"""SavedModel backends: the serving signature as a `tf.function`, with XLA off or on."""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from edgebench.runtimes.base import Runtime, configure_tensorflow_threads


class SavedModelFunction(Runtime):
    name = "savedmodel"
    artifact_format = "savedmodel"
    precisions = ("fp32",)
    jit_compile = False

    @classmethod
    def _check_impl(cls) -> Optional[str]:
        import tensorflow  # noqa: F401

        return None

    @classmethod
    def versions(cls) -> Dict[str, str]:
        import tensorflow as tf

        return {"tensorflow": tf.__version__}

    def _load_impl(self) -> None:
        configure_tensorflow_threads(self.threads)
        import tensorflow as tf

        self.loaded = tf.saved_model.load(str(self.artifact))
        try:
            signature = self.loaded.signatures["serving_default"]
        except KeyError:
            raise ValueError(f"{self.artifact}: SavedModel has no 'serving_default' signature") from None
        _, kwargs = signature.structured_input_signature
        if len(kwargs) != 1:
            raise ValueError(f"{self.artifact}: expected one input, the signature has {sorted(kwargs)}")
        input_name = next(iter(kwargs))

        def call(x):
            out = signature(**{input_name: x})
            return next(iter(out.values()))

        self.fn = tf.function(call, jit_compile=self.jit_compile)

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        return self.fn(x).numpy()

    def _close_impl(self) -> None:
        del self.fn, self.loaded


class SavedModelXLA(SavedModelFunction):
    name = "savedmodel-xla"
    jit_compile = True
