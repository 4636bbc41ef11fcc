"""Format selection, option validation and the light imports of the export package."""
from __future__ import annotations

import subprocess
import sys

import pytest

from edgebench import export
from edgebench.export import onnx as onnx_export
from edgebench.export import onnx_int8


def test_default_selection_excludes_tensorrt():
    names = export.select(None)
    assert names == ["keras-fp32", "savedmodel-fp32", "onnx-fp32", "onnx-int8", "tflite-fp32", "tflite-fp16",
                     "tflite-int8", "openvino-fp32", "openvino-int8"]


def test_selection_adds_dependencies_and_keeps_order():
    assert export.select(["onnx-int8"]) == ["onnx-fp32", "onnx-int8"]
    assert export.select(["tensorrt-int8", "keras"]) == ["keras-fp32", "onnx-fp32", "tensorrt-int8"]
    assert export.select(["tflite,savedmodel"]) == ["savedmodel-fp32", "tflite-fp32", "tflite-fp16", "tflite-int8"]
    assert "tensorrt-fp16" in export.select(["all"])


def test_unknown_format_is_named():
    with pytest.raises(ValueError, match="'coreml'"):
        export.select(["coreml"])


def test_every_exporter_class_resolves():
    for name in export.exporters():
        if name == "keras-fp32":
            continue
        cls = export.exporter_class(name)
        assert cls.artifact_name() == name


def test_importing_the_package_imports_no_framework():
    code = ("import sys, edgebench.export, edgebench.cli.export, edgebench.export.tensorrt, "
            "edgebench.export.onnx_int8, edgebench.export.tflite, edgebench.export.onnx;"
            "bad=[m for m in ('tensorflow','tf2onnx','onnxruntime','tensorrt','onnx') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_opset_validation():
    assert onnx_export.validate_opset("13") == 13
    for bad in (10, 19, "x", None):
        with pytest.raises(ValueError, match="opset"):
            onnx_export.validate_opset(bad)


def test_simplifier_choice():
    assert onnx_export.available_simplifier("none") == "none"
    assert onnx_export.available_simplifier("auto") in ("none", "onnxslim", "onnxsim")
    with pytest.raises(ValueError, match="simplify"):
        onnx_export.available_simplifier("magic")


def test_onnx_exporter_rejects_bad_options():
    with pytest.raises(ValueError, match="opset"):
        onnx_export.OnnxExporter(opset=99)


def test_int8_options_validate():
    opts = onnx_int8.validate({})
    assert opts["calibrate_method"] == "percentile" and opts["per_channel"] and not opts["symmetric_activations"]
    assert opts["keep_float"] == "first-last" and opts["fold_batchnorm"]
    assert onnx_int8.validate({"op_types": "Conv,MatMul"})["op_types"] == ["Conv", "MatMul"]
    for bad in ({"calibrate_method": "guess"}, {"keep_float": "middle"}, {"calib_images": 0},
                {"percentile": 50}):
        with pytest.raises(ValueError):
            onnx_int8.validate(bad)


class _Node:
    def __init__(self, name, op_type):
        self.name, self.op_type = name, op_type


NODES = [_Node("sub", "Sub"), _Node("mul", "Mul"), _Node("t", "Transpose"), _Node("stem", "Conv"),
         _Node("relu", "Relu"), _Node("c2", "Conv"), _Node("pool", "GlobalAveragePool"), _Node("sq", "Squeeze"),
         _Node("fc", "MatMul"), _Node("bias", "Add")]


def test_float_nodes_first_and_last():
    assert onnx_int8.float_nodes(NODES, "none") == []
    assert onnx_int8.float_nodes(NODES, "first") == ["sub", "mul", "t", "stem"]
    assert onnx_int8.float_nodes(NODES, "last") == ["fc", "bias"]
    assert onnx_int8.float_nodes(NODES, "first-last") == ["sub", "mul", "t", "stem", "fc", "bias"]
    assert onnx_int8.float_nodes([_Node("a", "Relu")], "first-last") == []


def test_calibration_reader_yields_full_batches_only():
    import numpy as np

    reader = onnx_int8.ImageReader(np.zeros((70, 32, 32, 3), np.uint8), "image", batch=32)
    batches = list(reader)
    assert [b["image"].shape[0] for b in batches] == [32, 32]
    assert batches[0]["image"].dtype == np.float32
    assert reader.used == 64 and len(reader) == 2
    reader.rewind()
    assert reader.get_next() is not None


def test_calibration_batch_divides_the_image_count():
    assert onnx_int8.calibration_batch(500, 32) == 25
    assert onnx_int8.calibration_batch(64, 32) == 32
    assert onnx_int8.calibration_batch(7, 32) == 7
    assert onnx_int8.calibration_batch(97, 32) == 1
