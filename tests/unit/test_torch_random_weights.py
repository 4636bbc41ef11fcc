"""tools/gpu-study/random_weights.py: a stem's graph travels without its weights and gets seeded float32 ones there."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

TOOL = Path(__file__).resolve().parents[2] / "tools" / "gpu-study" / "random_weights.py"


def _tool():
    spec = importlib.util.spec_from_file_location("random_weights", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _model(path: Path) -> None:
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b")
    shape = numpy_helper.from_array(np.array([0, -1], dtype=np.int64), "shape")
    fc = numpy_helper.from_array(rng.standard_normal((8 * 30 * 30, 10)).astype(np.float32), "fc")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Reshape", ["r", "shape"], ["f"]), helper.make_node("MatMul", ["f", "fc"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], [w, b, shape, fc])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def test_strip_then_fill_gives_a_runnable_float32_model(tmp_path):
    rw = _tool()
    src, template, filled = tmp_path / "m.onnx", tmp_path / "t.onnx", tmp_path / "f.onnx"
    _model(src)
    assert rw.strip(str(src), str(template)) == 2  # w (216 values) and fc; b (8) and shape stay as they are
    assert template.stat().st_size < src.stat().st_size / 10
    assert rw.fill(str(template), str(filled), seed=1) == 2
    inits = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(filled)).graph.initializer}
    assert inits["w"].dtype == np.float32 and inits["fc"].dtype == np.float32  # numpy 2 would promote to float64
    assert inits["w"].shape == (8, 3, 3, 3) and abs(inits["w"].std() - 1 / np.sqrt(27)) < 0.05
    assert inits["shape"].tolist() == [0, -1]
    x = np.random.default_rng(2).uniform(0, 255, (1, 3, 32, 32)).astype(np.float32)
    y = ort.InferenceSession(str(filled), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert y.shape == (1, 10) and np.isfinite(y).all()
    again = tmp_path / "g.onnx"
    rw.fill(str(template), str(again), seed=1)
    assert again.read_bytes() == filled.read_bytes()  # seeded: the same weights each time
