"""The cuDNN fusion pass (runtimes/torch_fuse.py) on small ONNX graphs, on the CPU.

cuDNN's fused operators (torch.cudnn_convolution_relu / _add_relu) dispatch on CUDA only, so here the fused
modules run their reference path (the same function in plain ops: relu(conv(x) + b [+ z])). These tests check
the graph structure (which sites fused, which were left and why, which Add input became the residual) and that
the rewritten module computes what the unfused one and ONNX Runtime compute. The cuDNN path itself is checked
on the GPU machine (tests/unit/test_torch_gpu.py::test_fused_matches_onnxruntime).
Skipped where PyTorch or onnx2torch is absent (the CI venv has neither)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (the CI venv has none; the GPU machine has it)")
pytest.importorskip("onnx2torch", reason="onnx2torch is not installed (tools/gpu-study/run.sh brings its wheel)")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx2torch import convert  # noqa: E402

from edgebench.onnxgraph.clean import clean  # noqa: E402
from edgebench.runtimes.torch_fuse import (  # noqa: E402
    ConvAddReLU,
    ConvReLU,
    DownsampleFork,
    ReducedMatMul,
    fuse_cudnn,
    merge_downsample,
    pad_input_channels,
    reduce_small_matmuls,
)

RNG = np.random.default_rng(7)


class _Builder:
    """ONNX nodes of tf2onnx's shape for a ResNet: Conv -> BatchNormalization -> Relu, residual Adds."""

    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, value):
        self.n += 1
        name = f"c{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def conv_bn(self, x, cin, cout, k, stride=1, pads=None):
        self.n += 1
        out, bn = f"conv{self.n}", f"bn{self.n}"
        w = self.const(RNG.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k))
        p = pads if pads is not None else [k // 2] * 4
        self.nodes.append(helper.make_node("Conv", [x, w], [out], kernel_shape=[k, k], strides=[stride] * 2, pads=p))
        stats = [self.const(RNG.uniform(0.5, 1.5, cout)), self.const(RNG.standard_normal(cout) * 0.1),
                 self.const(RNG.standard_normal(cout) * 0.1), self.const(RNG.uniform(0.5, 1.5, cout))]
        self.nodes.append(helper.make_node("BatchNormalization", [out] + stats, [bn], epsilon=1e-3))
        return bn

    def op(self, kind, inputs, **attrs):
        self.n += 1
        out = f"{kind.lower()}{self.n}"
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def block(self, x, cin, cout, stride, pads=None):
        h = self.op("Relu", [self.conv_bn(x, cin, cout, 3, stride, pads=pads)])
        h = self.conv_bn(h, cout, cout, 3)
        short = self.conv_bn(x, cin, cout, 1, stride, pads=[0] * 4) if stride != 1 or cin != cout else x
        # the downsample branch enters the Add first, the identity second: both orders must be matched
        return self.op("Relu", [self.op("Add", [short, h] if short is not x else [h, x])])


def mini_resnet(tail_relu: bool = True, hw: int = 16, down_pads=None):
    """NHWC 16x16x3 -> stem Conv(asymmetric pads)/BN/Relu -> identity block -> downsample block -> [Add without
    Relu] -> GAP -> Flatten -> Gemm, the way the kit's tf2onnx exports look."""
    b = _Builder()
    x = b.op("Transpose", ["image"], perm=[0, 3, 1, 2])
    x = b.op("Relu", [b.conv_bn(x, 3, 8, 3, 2, pads=[0, 0, 1, 1])])  # 'SAME' with stride 2: pads after only
    x = b.block(x, 8, 8, 1)
    x = b.block(x, 8, 16, 2, pads=down_pads)
    y = b.conv_bn(x, 16, 16, 1)
    x = b.op("Add", [y, x]) if not tail_relu else b.op("Relu", [b.op("Add", [y, x])])
    x = b.op("Flatten", [b.op("GlobalAveragePool", [x])])
    logits = b.op("Gemm", [x, b.const(RNG.standard_normal((10, 16))), b.const(np.zeros(10))], transB=1)
    graph = helper.make_graph(b.nodes, "mini_resnet",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", hw, hw, 3])],
                              [helper.make_tensor_value_info(logits, TensorProto.FLOAT, ["batch", 10])],
                              initializer=b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _converted(model):
    cleaned, report = clean(model)
    assert report.batchnorms_folded > 0
    return convert(cleaned).eval()


def _x(n=3):
    return torch.from_numpy(RNG.uniform(0, 1, (n, 16, 16, 3)).astype(np.float32))


def _kinds(gm):
    return [type(gm.get_submodule(n.target)).__name__ for n in gm.graph.nodes if n.op == "call_module"]


def test_every_conv_relu_and_residual_site_fuses():
    gm = _converted(mini_resnet())
    x = _x()
    with torch.no_grad():
        before = gm(x)
    report = fuse_cudnn(gm, example=x[:1])
    # stem + 2 blocks x (first conv -> relu, second conv -> add -> relu) + the tail conv -> add -> relu
    assert (report["conv_relu"], report["conv_add_relu"], report["convs"]) == (3, 3, 7)
    assert len(report["left"]) == 1
    assert "downsample" in report["left"][0]["reason"]  # the 1x1 projection is the residual, not fused
    kinds = _kinds(gm)
    assert "ReLU" not in kinds and "OnnxBinaryMathOperation" not in kinds and kinds.count("Conv2d") == 1
    assert kinds.count("ConvReLU") == 3 and kinds.count("ConvAddReLU") == 3
    with torch.no_grad():
        after = gm(x)
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_the_residual_is_the_other_input_whichever_side_it_enters():
    gm = _converted(mini_resnet())
    report = fuse_cudnn(gm)
    by_name = {n.name: n for n in gm.graph.nodes}
    for site in (s for s in report["sites"] if s["kind"] == "conv_add_relu"):
        node = next(n for n in gm.graph.nodes if n.target == site["module"])
        z = node.args[1]
        assert z.name == site["residual"] and z.name in by_name
    projection = report["left"][0]["conv"]  # the downsample block's 1x1 conv: its output is that site's residual
    assert projection in [s.get("residual") for s in report["sites"]]


def test_the_stem_keeps_its_asymmetric_pad_inside_the_fused_module():
    gm = _converted(mini_resnet())
    fuse_cudnn(gm)
    first = next(gm.get_submodule(n.target) for n in gm.graph.nodes if n.op == "call_module"
                 and isinstance(gm.get_submodule(n.target), ConvReLU))
    assert first.pad is not None and first.stride == [2, 2]


def test_an_add_without_relu_is_left_with_its_reason():
    gm = _converted(mini_resnet(tail_relu=False))
    x = _x()
    with torch.no_grad():
        before = gm(x)
    report = fuse_cudnn(gm, example=x[:1])
    assert report["conv_add_relu"] == 2 and report["conv_relu"] == 3
    reasons = [r["reason"] for r in report["left"]]
    assert any("not by a ReLU" in r for r in reasons), reasons
    with torch.no_grad():
        torch.testing.assert_close(gm(x), before, rtol=1e-5, atol=1e-5)


def test_a_conv_with_two_users_is_left():
    model = mini_resnet()
    stem_bn = next(n for n in model.graph.node if n.op_type == "BatchNormalization").output[0]
    # a second reader of the stem conv's output (its BN then cannot fold either: clean.py keeps it)
    model.graph.node.append(helper.make_node("Identity", [stem_bn], ["extra"]))
    model.graph.output.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, ["batch", 8, 8, 8]))
    gm = convert(clean(model)[0]).eval()
    report = fuse_cudnn(gm)
    assert report["conv_relu"] == 2
    assert any("used by 2 nodes" in r["reason"] or "not a ReLU" in r["reason"] for r in report["left"])


def test_fused_modules_follow_dtype_and_memory_format():
    gm = _converted(mini_resnet())
    fuse_cudnn(gm)
    gm = gm.to(torch.bfloat16).to(memory_format=torch.channels_last)
    fused = [m for m in gm.modules() if isinstance(m, (ConvReLU, ConvAddReLU))]
    assert fused and all(m.weight.dtype == torch.bfloat16 for m in fused)
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in fused)


def test_the_backend_option_fuses_and_records_the_sites(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from edgebench.runtimes.torch import TorchFromOnnx

    path = tmp_path / "model.onnx"
    onnx.save(mini_resnet(hw=32), str(path))  # the backend takes the kit's 32x32 input
    x = RNG.uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    rt = TorchFromOnnx(str(path), precision="fp32", fuse="cudnn", device="cpu")
    rt.load()
    try:
        y = rt.infer(x)
        settings = rt.versions()["settings"]
    finally:
        rt.close()
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    assert settings["fuse"] == "cudnn" and settings["fused"]["fused"] == 6
    assert settings["fused"]["left"][0]["reason"]
    assert settings["fused_kernel"].startswith("reference")  # no cuDNN on the CPU: the row says so


def test_fuse_is_off_by_default_and_checked(tmp_path):
    from edgebench.runtimes.torch import TorchFromOnnx

    assert TorchFromOnnx(None).settings["fuse"] == "none"
    with pytest.raises(ValueError, match="fuse"):
        TorchFromOnnx(None, fuse="tensorrt")


@pytest.mark.parametrize("down_pads, tap", [(None, [1, 1]), ([0, 0, 1, 1], [0, 0])])
def test_the_downsample_projection_merges_into_its_blocks_first_conv(down_pads, tap):
    """Symmetric pads (the centre tap reads the projection's pixel) and tf2onnx's 'SAME' stride-2 pads after only
    (a pre-pad module; the top-left tap): both merge; small batches take the merged path, large ones the two
    convolutions apart, and both compute what the unfused graph computes."""
    gm = _converted(mini_resnet(down_pads=down_pads))
    x = _x(4)
    with torch.no_grad():
        before = gm(x)
    fuse_cudnn(gm, example=x[:1])
    report = merge_downsample(gm, max_batch=2)
    assert report["merged"] == 1 and report["sites"][0]["tap"] == tap, report
    forks = [m for m in gm.modules() if isinstance(m, DownsampleFork)]
    assert len(forks) == 1 and forks[0].weight.shape == (32, 8, 3, 3)  # 16 main + 16 projection channels
    assert _kinds(gm).count("Conv2d") == 0  # the projection is called by the fork only
    with torch.no_grad():
        small, large = torch.cat([gm(x[:2]), gm(x[2:])]), gm(x)  # merged path, then the two convolutions apart
    torch.testing.assert_close(small, before, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(large, before, rtol=1e-5, atol=1e-5)


def test_an_identity_residual_is_not_merged_and_a_stride_mismatch_is_left():
    gm = _converted(mini_resnet())
    fuse_cudnn(gm)
    fork_free = merge_downsample(gm, max_batch=64)
    assert fork_free["merged"] == 1 and not fork_free["left"]  # the identity blocks are no candidates
    gm = _converted(mini_resnet())
    fuse_cudnn(gm)
    proj = next(m for m in gm.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1))
    proj.stride = (1, 1)
    report = merge_downsample(gm, max_batch=64)
    assert report["merged"] == 0 and "stride" in report["left"][0]["reason"]


def test_the_head_matmul_becomes_a_reduction():
    gm = _converted(mini_resnet())
    x = _x()
    with torch.no_grad():
        before = gm(x)
    report = reduce_small_matmuls(gm, max_cols=64)
    assert report["reduced"] == 1 and report["sites"][0]["shape"] == [16, 10]
    assert "Linear" not in _kinds(gm) and "ReducedMatMul" in _kinds(gm)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), before, rtol=1e-5, atol=1e-5)
    gm = _converted(mini_resnet())
    assert reduce_small_matmuls(gm, max_cols=8)["reduced"] == 0  # 10 columns: more than asked for


def test_the_matmul_form_of_tf2onnx_heads_is_reduced_too():
    w = torch.from_numpy(RNG.standard_normal((16, 10)).astype(np.float32))
    m = ReducedMatMul(w, torch.ones(10))
    x = torch.from_numpy(RNG.standard_normal((3, 16)).astype(np.float32))
    torch.testing.assert_close(m(x), x @ w + 1, rtol=1e-5, atol=1e-5)


def test_the_stem_input_channels_are_padded_with_zeros():
    gm = _converted(mini_resnet())
    x = _x()
    with torch.no_grad():
        before = gm(x)
    fuse_cudnn(gm)
    report = pad_input_channels(gm, 8)
    assert report["padded"] == 1 and report["sites"][0]["in_channels"] == 3
    stem = next(m for m in gm.modules() if isinstance(m, ConvReLU) and m.cpad)
    assert stem.weight.shape[1] == 8 and stem.cpad == 5
    with torch.no_grad():
        torch.testing.assert_close(gm(x), before, rtol=1e-5, atol=1e-5)


def test_the_lean_options_run_on_the_cpu_and_are_recorded(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from edgebench.runtimes.torch import TorchFromOnnx

    path = tmp_path / "model.onnx"
    onnx.save(mini_resnet(hw=32, down_pads=[0, 0, 1, 1]), str(path))
    x = RNG.uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    rt = TorchFromOnnx(str(path), precision="fp32", fuse="cudnn", device="cpu", merge_downsample=2,
                       reduce_matmul=64, pad_channels=4)
    rt.load()
    try:
        ys = [rt.infer(x[:2]), rt.infer(x)]
        settings = rt.versions()["settings"]
    finally:
        rt.close()
    for y, want in zip(ys, (ref[:2], ref)):
        np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-4)
    assert settings["merged_downsample"]["merged"] == 1 and settings["reduced_matmuls"]["reduced"] == 1
    assert settings["padded_channels"]["sites"][0]["padded_to"] == 4
    assert settings["casts"] == "eager" and settings["copies_rule"]["copies"] == "outside the model"
    with pytest.raises(ValueError, match="fuse=cudnn"):
        TorchFromOnnx(str(path), merge_downsample=64)
