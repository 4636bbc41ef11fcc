"""ONNX FP32 through tf2onnx, with a dynamic batch dimension.

Opset 13 is the default: TensorRT 8.5 (JetPack 5.1.2) parses opsets 7..17, ONNX Runtime 1.19 runs up
to 21, and 13 is tf2onnx's well-trodden default with per-channel QuantizeLinear (needed by the INT8
QDQ model). An optional simplifier (onnxslim, else onnxsim) runs only when installed; the manifest's
`applied` list says what ran.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Dict, List

from edgebench.contracts.vocabulary import INPUT_NAME, INPUT_SHAPE
from edgebench.export.base import ExportContext, Exporter, ExportError, ExportOptionError, ExportStepError

DEFAULT_OPSET = 13
MIN_OPSET, MAX_OPSET = 11, 18  # tf2onnx 1.16 emits up to 18; QDQ per-channel needs >= 13 (checked there)
SIMPLIFIERS = ("auto", "none", "onnxslim", "onnxsim")
BATCH_DIM = "batch"


def validate_opset(opset: Any) -> int:
    try:
        value = int(opset)
    except (TypeError, ValueError):
        raise ExportOptionError(f"opset must be an integer, got {opset!r}") from None
    if not MIN_OPSET <= value <= MAX_OPSET:
        raise ExportOptionError(f"opset {value} outside the supported range {MIN_OPSET}..{MAX_OPSET} "
                                f"(TensorRT 8.5 parses up to 17; tf2onnx 1.16 writes up to 18)")
    return value


def available_simplifier(choice: str) -> str:
    """Which simplifier to run for `choice` ("auto" picks an installed one; "none" when none is)."""
    if choice not in SIMPLIFIERS:
        raise ExportOptionError(f"simplify must be one of {', '.join(SIMPLIFIERS)}, got {choice!r}")
    if choice == "none":
        return "none"
    installed = [m for m in ("onnxslim", "onnxsim") if importlib.util.find_spec(m) is not None]
    if choice == "auto":
        return installed[0] if installed else "none"
    if choice not in installed:
        raise ExportOptionError(f"simplify={choice} asked for, but {choice} is not installed")
    return choice


def set_dynamic_batch(model_proto, dim_name: str = BATCH_DIM) -> None:
    """Name the first dimension of every graph input and output `dim_name` (symbolic, so dynamic)."""
    for value in list(model_proto.graph.input) + list(model_proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims):
            dims[0].ClearField("dim_value")
            dims[0].dim_param = dim_name


def simplify(model_proto, which: str):
    """Run onnxslim or onnxsim on a ModelProto; returns the new proto."""
    if which == "onnxslim":
        import onnxslim  # type: ignore

        return onnxslim.slim(model_proto)
    if which == "onnxsim":
        import onnxsim  # type: ignore

        simplified, ok = onnxsim.simplify(model_proto)
        if not ok:
            raise ExportStepError("onnxsim could not validate the simplified model")
        return simplified
    return model_proto


class OnnxExporter(Exporter):
    format = "onnx"
    precision = "fp32"
    filename = "model.onnx"
    tools = ("tf2onnx", "onnx", "tensorflow", "onnxslim", "onnxsim")
    runtime = "onnxruntime"

    def validate_options(self, options: Dict[str, Any]) -> Dict[str, Any]:
        options["opset"] = validate_opset(options.get("opset", DEFAULT_OPSET))
        simplify_choice = options.get("simplify", "auto")
        available_simplifier(simplify_choice)  # raises for a bad choice
        options["simplify"] = simplify_choice
        return options

    def _export_impl(self, ctx: ExportContext, tmp_path: Path) -> List[str]:
        import onnx
        import tensorflow as tf
        import tf2onnx

        model = ctx.keras_model()
        opset = self.options["opset"]
        spec = (tf.TensorSpec((None,) + INPUT_SHAPE, tf.float32, name=INPUT_NAME),)
        try:
            proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=opset)
        except Exception as exc:
            raise ExportError(self.artifact_name(), f"tf2onnx conversion failed: {type(exc).__name__}: {exc}") from exc
        applied = [f"tf2onnx opset {opset}", "dynamic batch"]
        set_dynamic_batch(proto)
        which = available_simplifier(self.options["simplify"])
        if which != "none":
            try:
                proto = simplify(proto, which)
                set_dynamic_batch(proto)
                applied.append(which)
            except Exception as exc:  # the unsimplified model is still a good model
                ctx.log(f"[{self.artifact_name()}] {which} failed, keeping the tf2onnx graph: {exc}")
        try:
            onnx.checker.check_model(proto)
        except Exception as exc:
            raise ExportError(self.artifact_name(), f"onnx checker rejected the model: {exc}") from exc
        with open(tmp_path, "wb") as f:
            f.write(proto.SerializeToString())
        return applied
