"""ONNX cleaning (onnxgraph/clean.py) on small graphs built with the patterns tf2onnx leaves in the kit's
ResNet34 exports: identity Reshapes around stage-4 BatchNorms, Squeeze with opset-13 axes, Constant nodes.
Checked with ONNX Runtime on the CPU: the cleaned graph computes what the original did."""
from __future__ import annotations

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgebench.onnxgraph.clean import OnnxCleanError, clean, clean_file, dynamic_ops  # noqa: E402

RNG = np.random.default_rng(0)


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def tf2onnx_like(shared_conv_output: bool = False, real_reshape: bool = False, hw: int = 4):
    """NHWC image -> Transpose -> Conv (to 1x1) -> identity Reshape -> BN -> Relu -> identity Reshape -> Conv
    -> identity Reshape -> BN -> Add -> GlobalAveragePool -> Squeeze(axes=[2,3]) -> MatMul, plus a
    Constant-node scale and an Unsqueeze/Squeeze pair on constant axes."""
    c = 8
    f32 = lambda *s: RNG.standard_normal(s).astype(np.float32)  # noqa: E731
    inits = [
        _init("w1", f32(c, 3, hw, hw) / hw), _init("b1", f32(c)), _init("w2", f32(c, c, 1, 1)),
        _init("new_shape", np.array([-1, c, 1, 1], np.int64)), _init("axes", np.array([2, 3], np.int64)),
        _init("bn_s", f32(c) + 2), _init("bn_b", f32(c)), _init("bn_m", f32(c)), _init("bn_v", np.abs(f32(c)) + 0.5),
        _init("fc", f32(c, 10)), _init("ax0", np.array([0], np.int64)),
    ]
    nodes = [
        helper.make_node("Constant", [], ["k"], value=numpy_helper.from_array(np.array(1 / 255, np.float32))),
        helper.make_node("Mul", ["image", "k"], ["scaled"]),
        helper.make_node("Transpose", ["scaled"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w1", "b1"], ["c1"], kernel_shape=[hw, hw]),
        helper.make_node("Reshape", ["c1", "new_shape"], ["r1"]),
        helper.make_node("BatchNormalization", ["r1", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn1"], epsilon=1e-3),
        helper.make_node("Relu", ["bn1"], ["a1"]),
        helper.make_node("Reshape", ["a1", "new_shape"], ["r2"]),
        helper.make_node("Conv", ["r2", "w2"], ["c2"], kernel_shape=[1, 1]),
        helper.make_node("Reshape", ["c2", "new_shape"], ["r3"]),
        helper.make_node("BatchNormalization", ["r3", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn2"], epsilon=1e-3),
        helper.make_node("Add", ["bn2", "a1"], ["sum"]),
        helper.make_node("Unsqueeze", ["sum", "ax0"], ["u"]),
        helper.make_node("Squeeze", ["u", "ax0"], ["sq0"]),
        helper.make_node("GlobalAveragePool", ["sq0"], ["gap"]),
        helper.make_node("Squeeze", ["gap", "axes"], ["flat"]),
        helper.make_node("MatMul", ["flat", "fc"], ["logits"]),
    ]
    if shared_conv_output:  # the first Conv's raw output is also used elsewhere: its BN cannot be folded
        nodes[-1:] = [helper.make_node("ReduceMean", ["c1"], ["c1m"], axes=[1, 2, 3], keepdims=0),
                      helper.make_node("MatMul", ["flat", "fc"], ["l0"]),
                      helper.make_node("Unsqueeze", ["c1m", "ax1"], ["c1u"]),
                      helper.make_node("Add", ["l0", "c1u"], ["logits"])]
        inits.append(_init("ax1", np.array([1], np.int64)))
    if real_reshape:  # a Reshape that changes the shape must stay
        inits.append(_init("to_flat", np.array([-1, c], np.int64)))
        nodes[-2] = helper.make_node("Reshape", ["gap", "to_flat"], ["flat"])
    graph = helper.make_graph(
        nodes, "tf2onnx_like",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", hw, hw, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _run(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"image": x})[0]


@pytest.mark.parametrize("batch", [1, 5])
def test_cleaned_graph_has_no_dynamic_shape_op_and_same_outputs(batch):
    model = tf2onnx_like()
    assert dynamic_ops(model)  # the tf2onnx patterns are there to begin with
    cleaned, report = clean(model)
    assert dynamic_ops(cleaned) == [] and report.dynamic_ops_left == []
    ops = [n.op_type for n in cleaned.graph.node]
    assert not {"Reshape", "Squeeze", "BatchNormalization", "Constant", "Shape"} & set(ops)
    assert "Flatten" in ops and "Unsqueeze" not in ops  # the Unsqueeze -> Squeeze pair cancelled
    assert report.identity_reshapes_removed == 3 and report.batchnorms_folded == 2
    assert report.squeezes_removed == 2 and report.constants_folded >= 1
    x = RNG.uniform(0, 255, (batch, 4, 4, 3)).astype(np.float32)
    want, got = _run(model, x), _run(cleaned, x)
    assert got.shape == want.shape == (batch, 10)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_original_model_is_left_untouched_and_clean_is_idempotent():
    model = tf2onnx_like()
    before = model.SerializeToString()
    once, _ = clean(model)
    assert model.SerializeToString() == before
    twice, report = clean(once)
    assert [n.op_type for n in twice.graph.node] == [n.op_type for n in once.graph.node]
    assert report.identity_reshapes_removed == report.batchnorms_folded == report.squeezes_removed == 0


def test_batchnorm_whose_conv_output_is_shared_is_kept():
    model = tf2onnx_like(shared_conv_output=True)
    cleaned, report = clean(model)
    assert report.batchnorms_folded == 1  # the second one only
    assert [n.op_type for n in cleaned.graph.node].count("BatchNormalization") == 1
    x = RNG.uniform(0, 255, (3, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(_run(cleaned, x), _run(model, x), rtol=1e-4, atol=1e-3)


def test_a_reshape_that_changes_the_shape_stays_and_is_reported():
    model = tf2onnx_like(real_reshape=True)
    cleaned, report = clean(model)
    assert [n.op_type for n in cleaned.graph.node].count("Reshape") == 1
    assert report.dynamic_ops_left and report.dynamic_ops_left[0].startswith("Reshape")
    x = RNG.uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(_run(cleaned, x), _run(model, x), rtol=1e-4, atol=1e-3)


def test_clean_file_round_trip_and_unreadable_file(tmp_path):
    src = tmp_path / "model.onnx"
    onnx.save(tf2onnx_like(), str(src))
    dst = tmp_path / "model.clean.onnx"
    report = clean_file(src, dst)
    assert report.nodes_after < report.nodes_before and dynamic_ops(onnx.load(str(dst))) == []
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(OnnxCleanError, match="broken.onnx"):
        clean_file(bad, tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()
