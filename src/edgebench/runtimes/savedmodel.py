"""SavedModel backends: the serving signature as a `tf.function`, with XLA off or on."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from edgebench.runtimes import tfdevice
from edgebench.runtimes.base import BackendInputError, configure_tensorflow_threads


class SavedModelFunction(tfdevice.TensorFlowRuntime):
    name = "savedmodel"
    artifact_format = "savedmodel"
    precisions = ("fp32",)
    jit_compile = False

    @classmethod
    def versions(cls) -> Dict[str, str]:
        import tensorflow as tf

        return {"tensorflow": tf.__version__}

    def _load_impl(self) -> None:
        self.placement = tfdevice.prepare(self.tf_device, self.name)
        configure_tensorflow_threads(self.threads)
        import tensorflow as tf

        self.loaded = tf.saved_model.load(str(self.artifact))
        self.placement["placed_on"] = tfdevice.placed_on(getattr(self.loaded, "variables", []), self.tf_device,
                                                         self.name)
        self.versions = self._instance_versions  # type: ignore[assignment]  # shadows the classmethod
        try:
            signature = self.loaded.signatures["serving_default"]
        except KeyError:
            raise BackendInputError(f"{self.artifact}: SavedModel has no 'serving_default' signature",
                                    path=self.artifact) from None
        _, kwargs = signature.structured_input_signature
        if len(kwargs) != 1:
            raise BackendInputError(f"{self.artifact}: expected one input, the signature has {sorted(kwargs)}",
                                    path=self.artifact)
        input_name = next(iter(kwargs))

        def call(x):
            out = signature(**{input_name: x})
            return next(iter(out.values()))

        self.fn = tf.function(call, jit_compile=self.jit_compile)

    def _instance_versions(self) -> Dict[str, Any]:
        """The child sends `rt.versions()` once per group: loaded, it also says where TF put the model."""
        return dict(type(self).versions(), device=dict(self.placement))

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        return self.fn(x).numpy()

    def _close_impl(self) -> None:
        del self.fn, self.loaded


class SavedModelXLA(SavedModelFunction):
    name = "savedmodel-xla"
    jit_compile = True
