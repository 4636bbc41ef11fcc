"""SavedModel with a `serving_default` signature whose batch dimension is dynamic."""
from __future__ import annotations

from pathlib import Path
from typing import List

from edgebench.contracts.vocabulary import INPUT_NAME, INPUT_SHAPE, OUTPUT_NAME
from edgebench.export.base import ExportContext, Exporter

SIGNATURE_KEY = "serving_default"


def serving_function(model):
    """A tf.function over the Keras model: float32 NHWC (None, 32, 32, 3) -> {"logits": (None, 10)}."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec((None,) + INPUT_SHAPE, tf.float32, name=INPUT_NAME)])
    def serve(image):
        return {OUTPUT_NAME: model(image, training=False)}

    return serve


class SavedModelExporter(Exporter):
    format = "savedmodel"
    precision = "fp32"
    filename = "saved_model"
    tools = ("tensorflow",)
    runtime = "savedmodel"

    def _export_impl(self, ctx: ExportContext, tmp_path: Path) -> List[str]:
        import tensorflow as tf

        model = ctx.keras_model()
        serve = serving_function(model)
        tf.saved_model.save(model, str(tmp_path), signatures={SIGNATURE_KEY: serve})
        shape = ",".join(map(str, INPUT_SHAPE))
        return [f"signature {SIGNATURE_KEY}: {INPUT_NAME} float32 [-1,{shape}] -> {OUTPUT_NAME}"]
