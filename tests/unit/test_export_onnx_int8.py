"""Graph clean-up before INT8 quantization: batch norms behind no-op Reshapes fold into their Conv."""
from __future__ import annotations

import numpy as np
import pytest

from edgebench.export.onnx_int8 import fold_batchnorm

onnx = pytest.importorskip("onnx")


def _model():
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.RandomState(0)
    c = 8
    inits = [numpy_helper.from_array(rng.randn(c, 4, 1, 1).astype(np.float32), "w"),
             numpy_helper.from_array(np.array([-1, c, 1, 1], np.int64), "shape"),
             numpy_helper.from_array(rng.uniform(0.5, 2, c).astype(np.float32), "gamma"),
             numpy_helper.from_array(rng.randn(c).astype(np.float32), "beta"),
             numpy_helper.from_array(rng.randn(c).astype(np.float32), "mean"),
             numpy_helper.from_array(rng.uniform(0.1, 3, c).astype(np.float32), "var")]
    nodes = [helper.make_node("Conv", ["x", "w"], ["conv"], name="conv"),
             helper.make_node("Reshape", ["conv", "shape"], ["r"], name="reshape"),
             helper.make_node("BatchNormalization", ["r", "gamma", "beta", "mean", "var"], ["bn"], name="bn",
                              epsilon=1e-5),
             helper.make_node("Relu", ["bn"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4, 1, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", c, 1, 1])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_fold_through_noop_reshape_keeps_outputs():
    ort = pytest.importorskip("onnxruntime")
    model = _model()
    folded, n = fold_batchnorm(_model())
    assert n == 1
    assert [node.op_type for node in folded.graph.node] == ["Conv", "Relu"]
    x = np.random.RandomState(1).randn(5, 4, 1, 1).astype(np.float32)

    def run(m):
        return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    np.testing.assert_allclose(run(folded), run(model), rtol=1e-5, atol=1e-5)
