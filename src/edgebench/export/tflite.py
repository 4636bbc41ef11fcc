"""TFLite FP32, FP16 (float16 weights) and full-integer INT8.

INT8 is calibrated on real CIFAR-10 training images (the representative set; its size is an option)
and keeps float32 input and output (the converter adds a quantize op at the entry and a dequantize op
at the exit), so every format takes the same float32 0..255 NHWC input.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from edgebench.contracts.vocabulary import CALIB_IMAGES_DEFAULT
from edgebench.export.base import ExportContext, Exporter, ExportError, ExportOptionError, float_images

DEFAULT_CALIB_IMAGES = CALIB_IMAGES_DEFAULT


def _converter(ctx: ExportContext):
    import tensorflow as tf

    from edgebench.export.savedmodel import serving_function

    model = ctx.keras_model()
    serve = serving_function(model)
    return tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()], model)


def representative_dataset(images, batch: int = 1):
    """A callable yielding [float32 batch] lists, as the TFLite converter wants."""
    x = float_images(images)

    def gen():
        for i in range(0, len(x), batch):
            yield [x[i:i + batch]]

    return gen


class _TfliteExporter(Exporter):
    format = "tflite"
    tools = ("tensorflow",)
    runtime = "tflite"

    def _configure(self, ctx: ExportContext, converter) -> List[str]:
        return []

    def _export_impl(self, ctx: ExportContext, tmp_path: Path) -> List[str]:
        converter = _converter(ctx)
        applied = self._configure(ctx, converter)
        try:
            flatbuffer = converter.convert()
        except ExportError:
            raise
        except Exception as exc:
            last = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
            raise ExportError(self.artifact_name(), f"TFLite converter failed: {type(exc).__name__}: {last}") from exc
        with open(tmp_path, "wb") as f:
            f.write(flatbuffer)
        return applied


class TfliteFp32Exporter(_TfliteExporter):
    precision = "fp32"
    filename = "model_fp32.tflite"

    def _configure(self, ctx, converter):
        return ["float32"]


class TfliteFp16Exporter(_TfliteExporter):
    precision = "fp16"
    filename = "model_fp16.tflite"

    def _configure(self, ctx, converter):
        import tensorflow as tf

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
        return ["float16 weights (float32 compute on CPU, float16 on GPU delegates)"]


class TfliteInt8Exporter(_TfliteExporter):
    precision = "int8"
    filename = "model_int8.tflite"

    def validate_options(self, options: Dict[str, Any]) -> Dict[str, Any]:
        n = int(options.get("calib_images", DEFAULT_CALIB_IMAGES))
        if n < 1:
            raise ExportOptionError(f"calib_images must be >= 1, got {n}")
        options["calib_images"] = n
        options["per_channel"] = bool(options.get("per_channel", True))
        return options

    def _configure(self, ctx, converter):
        import tensorflow as tf

        images = ctx.calibration(self.artifact_name(), self.options["calib_images"])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset(images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.float32
        converter.inference_output_type = tf.float32
        applied = [f"full-integer int8, calibrated on {len(images)} CIFAR-10 training images",
                   "float32 input and output"]
        if not self.options["per_channel"]:
            converter._experimental_disable_per_channel = True
            applied.append("per-tensor weights")
        else:
            applied.append("per-channel weights")
        return applied
