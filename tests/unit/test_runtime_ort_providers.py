"""A GPU execution-provider row never measures ONNX Runtime's silent CPU fallback.

Real ONNX Runtime (the CPU build installed here): asked for CUDAExecutionProvider first, it logs a warning and
runs the session on the CPU, exactly what a CUDA 11 build does on a CUDA 12 image. Only the availability check
is bypassed (this machine has no CUDA provider to offer); the session, its fallback and our check are real.
"""
from __future__ import annotations

import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from edgebench.runtimes import onnxruntime as ort_rt  # noqa: E402
from edgebench.runtimes.base import RuntimeUnavailable  # noqa: E402


@pytest.fixture
def tiny_onnx(tmp_path):
    """NHWC 32x32x3 -> 10 logits: a flatten and one MatMul."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.full((3072, 10), 0.001, dtype=np.float32), "w")
    shape = numpy_helper.from_array(np.array([-1, 3072], dtype=np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["flat"]), helper.make_node("MatMul", ["flat", "w"], ["y"])],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 32, 32, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 10])], initializer=[w, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    return path


def test_cpu_row_runs_on_cpu_and_records_it(tiny_onnx):
    import numpy as np

    with ort_rt.OrtCPU(str(tiny_onnx), threads=1) as rt:
        assert rt.active_providers[0] == "CPUExecutionProvider"
        assert rt.describe()["providers"][0] == "CPUExecutionProvider"
        assert rt.infer(np.ones((2, 32, 32, 3), np.float32)).shape == (2, 10)


@pytest.mark.parametrize("cls, wanted", [(ort_rt.OrtCUDA, "CUDAExecutionProvider"),
                                         (ort_rt.OrtTensorRT, "TensorrtExecutionProvider")])
def test_gpu_row_fails_when_session_falls_back(cls, wanted, tiny_onnx, monkeypatch):
    if wanted in ort.get_available_providers():
        pytest.skip(f"this onnxruntime really has {wanted}: no fallback to provoke")
    monkeypatch.setattr(cls, "check", classmethod(lambda c: None))  # pretend the build offers the provider
    rt = cls(str(tiny_onnx), precision="fp32")
    with pytest.raises(ort_rt.ProviderFallbackError) as e:
        rt.load()
    err = e.value
    assert not isinstance(err, RuntimeUnavailable), "a fallback is a failed row, not a skip"
    assert err.wanted == wanted and err.active[0] == "CPUExecutionProvider"
    assert f"asked for {wanted}" in str(err) and "CPUExecutionProvider" in str(err) and str(tiny_onnx) in str(err)


def test_require_active_provider_on_a_real_session(tiny_onnx):
    sess = ort.InferenceSession(str(tiny_onnx), providers=["CPUExecutionProvider"])
    assert ort_rt.require_active_provider(sess, "CPUExecutionProvider", "onnxruntime") == ["CPUExecutionProvider"]
    with pytest.raises(ort_rt.ProviderFallbackError, match="asked for CUDAExecutionProvider"):
        ort_rt.require_active_provider(sess, "CUDAExecutionProvider", "onnxruntime-cuda")


def test_unavailable_provider_is_a_skip_before_any_session():
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA provider present")
    assert "lacks CUDAExecutionProvider" in ort_rt.OrtCUDA.check()
    with pytest.raises(RuntimeUnavailable):
        ort_rt.OrtCUDA(None).load()
