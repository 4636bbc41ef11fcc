"""OpenVINO IR: `openvino-fp32` converted from the exported model.onnx with OpenVINO's own converter
(`openvino.convert_model`, FP32 weights kept: `save_model(compress_to_fp16=False)`), and `openvino-int8`, NNCF
post-training quantization of model.onnx (see `quantize` for why the ONNX backend) converted the same way, calibrated
on CIFAR-10 training images (the same set, and the same
parity gate, as the other INT8 formats: export.parity, PARITY_THRESHOLDS["int8"]).

Each artifact is a folder (`openvino/`, `openvino-int8/`) holding model.xml and model.bin, so one path, size
and sha256 in the manifest cover both files; runtimes.openvino reads the folder.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from edgebench.contracts.vocabulary import CALIB_IMAGES_DEFAULT
from edgebench.export.base import ExportContext, Exporter, ExportError, ExportOptionError, float_images

IR_FILENAME = "model.xml"
PRESETS = ("mixed", "performance")
KEEP_FLOAT_CHOICES = ("none", "first", "last", "first-last")
DEFAULTS: Dict[str, Any] = {
    "calib_images": CALIB_IMAGES_DEFAULT,
    # mixed: symmetric int8 weights, asymmetric activations (like onnx-int8's uint8 activations);
    # performance: symmetric activations too
    "preset": "mixed",
    "fast_bias_correction": True,
    "keep_float": "none",   # convolutions/matmuls NNCF leaves in float: the first, the last, both
    "fold_batchnorm": True,
}


def validate(options: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(DEFAULTS)
    out.update({k: v for k, v in options.items() if v is not None})
    unknown = sorted(set(out) - set(DEFAULTS))
    if unknown:
        raise ExportOptionError(f"unknown openvino-int8 options {unknown}; known: {sorted(DEFAULTS)}")
    out["calib_images"] = int(out["calib_images"])
    if out["calib_images"] < 1:
        raise ExportOptionError(f"calib_images must be >= 1, got {out['calib_images']}")
    out["preset"] = str(out["preset"]).lower()
    if out["preset"] not in PRESETS:
        raise ExportOptionError(f"preset must be one of {', '.join(PRESETS)}, got {out['preset']!r}")
    if out["keep_float"] not in KEEP_FLOAT_CHOICES:
        raise ExportOptionError(f"keep_float must be one of {', '.join(KEEP_FLOAT_CHOICES)}, got {out['keep_float']!r}")
    out["fast_bias_correction"] = bool(out["fast_bias_correction"])
    out["fold_batchnorm"] = bool(out["fold_batchnorm"])
    return out


def convert(onnx_path: Path):
    """The ONNX model as an openvino.Model (OpenVINO's converter: the ONNX frontend)."""
    import openvino as ov

    return ov.convert_model(str(onnx_path))


def save(model, folder: Path) -> None:
    import openvino as ov

    folder.mkdir(parents=True)
    ov.save_model(model, str(folder / IR_FILENAME), compress_to_fp16=False)


def float_layer_names(model, keep_float: str) -> List[str]:
    """Names of the first and/or last Conv/MatMul/Gemm node of an ONNX model, in graph order."""
    if keep_float == "none":
        return []
    layers = [n.name for n in model.graph.node if n.op_type in ("Conv", "MatMul", "Gemm")]
    if not layers:
        return []
    picked = []
    if keep_float in ("first", "first-last"):
        picked.append(layers[0])
    if keep_float in ("last", "first-last") and layers[-1] not in picked:
        picked.append(layers[-1])
    return picked


def quantize(onnx_path: Path, images, options: Dict[str, Any]):
    """NNCF post-training quantization (its ONNX backend, statistics through ONNX Runtime) of model.onnx on
    `images` (NHWC, one image per sample), for the CPU; returns (QDQ onnx.ModelProto, nodes kept in float,
    batch norms folded).

    The ONNX backend, not NNCF's OpenVINO one: the NNCF that installs beside TensorFlow 2.12 (numpy < 1.24) is
    2.14, whose OpenVINO backend imports `openvino.runtime`, which OpenVINO 2026 no longer has. OpenVINO reads
    the QDQ graph as an INT8 model (its low-precision transformations run the quantized convolutions in int8)."""
    import nncf
    import onnx

    from edgebench.export.onnx_int8 import fold_batchnorm

    model = onnx.load(str(onnx_path))
    folded = 0
    if options["fold_batchnorm"]:  # the batch norms tf2onnx leaves behind 1x1 maps (see onnx_int8.fold_batchnorm)
        model, folded = fold_batchnorm(model)
    input_name = model.graph.input[0].name
    x = float_images(images)
    dataset = nncf.Dataset([{input_name: x[i:i + 1]} for i in range(len(x))])
    preset = {"mixed": nncf.QuantizationPreset.MIXED, "performance": nncf.QuantizationPreset.PERFORMANCE}[
        options["preset"]]
    names = float_layer_names(model, options["keep_float"])
    kwargs: Dict[str, Any] = {}
    if names:
        kwargs["ignored_scope"] = nncf.IgnoredScope(names=names)
    quantized = nncf.quantize(model, dataset, preset=preset, target_device=nncf.TargetDevice.CPU,
                              subset_size=len(x), fast_bias_correction=options["fast_bias_correction"], **kwargs)
    return quantized, names, folded


class OpenVINOExporter(Exporter):
    format = "openvino"
    precision = "fp32"
    filename = "openvino"
    tools = ("openvino", "onnx")
    requires = ("onnx-fp32",)
    runtime = "openvino"

    def _export_impl(self, ctx: ExportContext, tmp_path: Path) -> List[str]:
        src = ctx.artifact_path("onnx-fp32")
        try:
            save(convert(src), tmp_path)
        except Exception as exc:
            raise ExportError(self.artifact_name(), f"openvino convert_model/save_model failed on {src.name}: "
                                                    f"{type(exc).__name__}: {exc}") from exc
        return [f"openvino.convert_model from {src.name}", "FP32 weights (save_model compress_to_fp16=False)"]


class OpenVINOInt8Exporter(Exporter):
    format = "openvino"
    precision = "int8"
    filename = "openvino-int8"
    tools = ("openvino", "nncf", "onnx")
    requires = ("onnx-fp32",)
    runtime = "openvino"

    def validate_options(self, options: Dict[str, Any]) -> Dict[str, Any]:
        return validate(options)

    def _export_impl(self, ctx: ExportContext, tmp_path: Path) -> List[str]:
        src = ctx.artifact_path("onnx-fp32")
        images = ctx.calibration(self.artifact_name(), self.options["calib_images"])
        try:
            quantized, kept, folded = quantize(src, images, self.options)
            qdq = Path(str(tmp_path) + ".qdq.onnx")
            import onnx

            onnx.save(quantized, str(qdq))
            try:
                save(convert(qdq), tmp_path)
            finally:
                qdq.unlink()
        except ImportError as exc:
            raise ExportError(self.artifact_name(), f"{exc.name or exc} is not installed (pip install nncf: "
                                                    f"see requirements/host.txt)") from exc
        except Exception as exc:
            raise ExportError(self.artifact_name(), f"NNCF quantization or its OpenVINO conversion failed: "
                                                    f"{type(exc).__name__}: {exc}") from exc
        applied = [f"nncf.quantize of {src.name} (ONNX backend, target CPU, preset {self.options['preset']}, "
                   f"fast_bias_correction {self.options['fast_bias_correction']}) on {len(images)} CIFAR-10 "
                   f"training images",
                   "openvino.convert_model of the QDQ graph"]
        if folded:
            applied.insert(0, f"folded {folded} BatchNormalization into Conv")
        if kept:
            applied.append(f"kept in float ({self.options['keep_float']}): {', '.join(kept)}")
        return applied
