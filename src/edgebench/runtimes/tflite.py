"""TFLite backend: FP32, FP16 and INT8 models, XNNPACK delegate on or off, thread count honoured.

Uses `tflite_runtime` where it is installed (small, for devices), else `tf.lite` from TensorFlow.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from edgebench.contracts.vocabulary import INPUT_SHAPE
from edgebench.runtimes.base import Runtime


def _interpreter_module():
    try:
        from tflite_runtime import interpreter as tfl  # type: ignore

        return tfl, "tflite_runtime"
    except ImportError:
        import tensorflow as tf

        return tf.lite, "tensorflow.lite"


class TFLite(Runtime):
    name = "tflite"
    artifact_format = "tflite"
    precisions = ("fp32", "fp16", "int8")

    @classmethod
    def _check_impl(cls) -> Optional[str]:
        _interpreter_module()
        return None

    @classmethod
    def versions(cls) -> Dict[str, str]:
        mod, origin = _interpreter_module()
        if origin == "tflite_runtime":
            import tflite_runtime  # type: ignore

            return {"tflite_runtime": tflite_runtime.__version__}
        import tensorflow as tf

        return {"tensorflow.lite": tf.__version__}

    def _load_impl(self) -> None:
        mod, _ = _interpreter_module()
        kwargs = {"model_path": str(self.artifact), "num_threads": self.threads}
        if not self.options.get("xnnpack", True):
            kwargs["experimental_op_resolver_type"] = mod.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        self.interp = mod.Interpreter(**kwargs)
        self.inp = self.interp.get_input_details()[0]
        self.out = self.interp.get_output_details()[0]
        self._batch = None

    def _resize(self, n: int) -> None:
        if n != self._batch:
            self.interp.resize_tensor_input(self.inp["index"], [n, *INPUT_SHAPE])
            self.interp.allocate_tensors()
            self.inp = self.interp.get_input_details()[0]
            self.out = self.interp.get_output_details()[0]
            self._batch = n

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        self._resize(len(x))
        if self.inp["dtype"] != np.float32:  # integer input: quantize with the tensor's own parameters
            scale, zero = self.inp["quantization"]
            info = np.iinfo(self.inp["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.inp["dtype"])
        self.interp.set_tensor(self.inp["index"], x)
        self.interp.invoke()
        y = self.interp.get_tensor(self.out["index"])
        if self.out["dtype"] != np.float32:
            scale, zero = self.out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return y

    def _close_impl(self) -> None:
        del self.interp
