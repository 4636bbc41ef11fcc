"""Real TF / tf2onnx / ONNX Runtime / TFLite exports of a small model, checked against Keras."""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgebench import util
from edgebench.export import manifest as manifest_mod

pytestmark = pytest.mark.slow

EXPECTED = {
    "keras-fp32": "model.keras",
    "savedmodel-fp32": "saved_model",
    "onnx-fp32": "model.onnx",
    "onnx-int8": "model.int8.onnx",
    "tflite-fp32": "model_fp32.tflite",
    "tflite-fp16": "model_fp16.tflite",
    "tflite-int8": "model_int8.tflite",
    "openvino-fp32": "openvino",
    "openvino-int8": "openvino-int8",
}


def test_every_default_artifact_exports_and_is_recorded(exported):
    out, man = exported
    assert man["schema"] == "edgebench.manifest" and man["schema_version"] == 1
    assert man["model"]["sha256"] == util.sha256_file(out / "model.keras")
    assert man["model"]["name"] == "resnet18"
    assert man["data"]["checksum"]
    by_name = {a["name"]: a for a in man["artifacts"]}
    assert list(by_name) == list(EXPECTED)
    for name, path in EXPECTED.items():
        art = by_name[name]
        assert art["status"] == "ok", (name, art["error"])
        assert art["path"] == path
        assert art["sha256"] == util.sha256_path(out / path)
        assert art["size_bytes"] == util.path_size(out / path) > 0
        assert art["export_seconds"] is not None
        assert art["parity"]["images"] == 128
    assert by_name["onnx-fp32"]["tools"]["tf2onnx"] == "1.16.1"
    assert by_name["onnx-int8"]["tools"]["onnxruntime"]
    assert by_name["tflite-int8"]["tools"]["tensorflow"].startswith("2.12")
    # the manifest on disk is the one returned, and nothing half-written is left around
    assert json.loads((out / "manifest.json").read_text())["artifacts"] == man["artifacts"]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_float_artifacts_match_keras(exported):
    _, man = exported
    for art in man["artifacts"]:
        p = art["parity"]
        if art["precision"] == "fp32":
            assert p["passed"] and p["rel_diff"] <= 1e-4, art["name"]
            assert p["top1_agreement"] == 1.0
        if art["precision"] == "fp16":
            assert p["passed"] and p["rel_diff"] <= 5e-3
    int8 = [a for a in man["artifacts"] if a["precision"] == "int8"]
    assert all(a["parity"]["max_abs_logit_diff"] is not None and a["parity"]["threshold"] == {"min_top1_agreement": 0.0}
               for a in int8)


def test_resolve_gives_every_artifact(exported):
    out, _ = exported
    for name, path in EXPECTED.items():
        fmt, precision = name.split("-")
        assert manifest_mod.resolve(out, fmt, precision) == out / path


def test_savedmodel_signature_has_dynamic_batch(exported):
    import tensorflow as tf

    out, _ = exported
    loaded = tf.saved_model.load(str(out / "saved_model"))
    sig = loaded.signatures["serving_default"]
    spec = sig.structured_input_signature[1]["image"]
    assert spec.shape.as_list() == [None, 32, 32, 3] and spec.dtype == tf.float32
    assert list(sig(image=tf.zeros((3, 32, 32, 3)))["logits"].shape) == [3, 10]


def test_onnx_has_dynamic_batch_and_opset(exported):
    import onnx
    import onnxruntime as ort

    out, man = exported
    model = onnx.load(str(out / "model.onnx"))
    dim0 = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param == "batch"
    assert {o.domain: o.version for o in model.opset_import}[""] == 13
    sess = ort.InferenceSession(str(out / "model.int8.onnx"), providers=["CPUExecutionProvider"])
    for n in (1, 5):
        assert sess.run(None, {"image": np.zeros((n, 32, 32, 3), np.float32)})[0].shape == (n, 10)
    q = onnx.load(str(out / "model.int8.onnx"))
    ops = {n.op_type for n in q.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and "BatchNormalization" not in ops
    zero_point_types = {i.data_type for i in q.graph.initializer if i.name.endswith("_zero_point")}
    assert {onnx.TensorProto.UINT8, onnx.TensorProto.INT8} <= zero_point_types  # uint8 activations, int8 weights
    applied = next(a for a in man["artifacts"] if a["name"] == "onnx-int8")["applied"]
    assert any("calibration percentile" in s for s in applied)


def test_tflite_int8_takes_float_input_and_is_integer_inside(exported):
    import tensorflow as tf

    out, _ = exported
    interp = tf.lite.Interpreter(model_path=str(out / "model_int8.tflite"))
    assert interp.get_input_details()[0]["dtype"] == np.float32
    assert interp.get_output_details()[0]["dtype"] == np.float32
    assert list(interp.get_input_details()[0]["shape_signature"]) == [-1, 32, 32, 3]
    dtypes = {d["dtype"] for d in interp.get_tensor_details()}
    assert np.int8 in dtypes
