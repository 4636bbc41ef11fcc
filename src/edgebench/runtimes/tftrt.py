"""TF-TRT backend: the SavedModel converted by TensorFlow's TensorRT integration (Jetson / NGC images).

The converted model is cached next to the SavedModel (`saved_model_tftrt_<precision>/`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional

import numpy as np

from edgebench.contracts.vocabulary import INPUT_SHAPE
from edgebench.runtimes.base import BackendInputError
from edgebench.runtimes.savedmodel import SavedModelFunction


class TFTRT(SavedModelFunction):
    name = "tftrt"
    precisions = ("fp32", "fp16")
    device = "gpu"

    def __init__(self, artifact, precision="fp32", threads=None, batch_size=None, **options):
        options.setdefault("device", "gpu")  # TensorRT engines run on the GPU only
        if str(options["device"]).lower() != "gpu":
            raise BackendInputError(f"{self.name}: options.device can only be gpu, not {options['device']!r}")
        super().__init__(artifact, precision, threads, batch_size, **options)

    @classmethod
    def artifact_for(cls, precision: str):
        return "savedmodel", "fp32"

    @classmethod
    def _check_impl(cls) -> Optional[str]:
        from tensorflow.python.compiler.tensorrt import trt_convert as trt

        if not trt.trt_utils._pywrap_py_utils.is_tensorrt_enabled():
            return "this TensorFlow build has no TensorRT support"
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            return "TensorFlow sees no GPU"
        return None

    @classmethod
    def versions(cls) -> Dict[str, str]:
        import tensorflow as tf
        from tensorflow.python.compiler.tensorrt import trt_convert as trt

        linked = trt.trt_utils._pywrap_py_utils.get_linked_tensorrt_version()
        return {"tensorflow": tf.__version__, "tensorrt (linked)": ".".join(map(str, linked))}

    def _load_impl(self) -> None:
        from tensorflow.python.compiler.tensorrt import trt_convert as trt

        converted = Path(str(self.artifact) + f"_tftrt_{self.precision}")
        if not converted.exists():
            mode = trt.TrtPrecisionMode.FP16 if self.precision == "fp16" else trt.TrtPrecisionMode.FP32
            converter = trt.TrtGraphConverterV2(input_saved_model_dir=str(self.artifact), precision_mode=mode)
            converter.convert()
            batch = self.batch_size or 1

            def input_fn():
                yield (np.zeros((batch, *INPUT_SHAPE), dtype=np.float32),)

            converter.build(input_fn=input_fn)  # engines for this batch built now, not on first call
            tmp = converted.with_name(converted.name + ".tmp")
            converter.save(str(tmp))
            tmp.rename(converted)
        self.artifact, original = converted, self.artifact
        try:
            super()._load_impl()
        finally:
            self.artifact = original
