"""The per-layer roofline of an ONNX graph and the kernel-profile summary (the GPU study's "what bounds it")."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from test_onnx_clean import tf2onnx_like

from edgebench.onnxgraph import roofline

# the kernel-profile summary is the GPU study's tool (tools/gpu-study/kernel_profile.py), not the package's
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "gpu-study"))
import kernel_profile  # noqa: E402

from edgebench.onnxgraph.clean import clean

onnx = pytest.importorskip("onnx")


def test_layer_costs_count_conv_and_matmul_flops():
    model, _ = clean(tf2onnx_like(hw=4))  # Conv 3->8 (4x4 kernel, 4x4 input -> 1x1), Conv 8->8 1x1, MatMul 8x10
    costs = {c["op"]: c for c in roofline.layer_costs(model) if c["op"] in ("Conv", "MatMul")}
    convs = [c for c in roofline.layer_costs(model) if c["op"] == "Conv"]
    assert [c["flops"] for c in convs] == [2 * 8 * 3 * 4 * 4, 2 * 8 * 8]
    assert costs["MatMul"]["flops"] == 2 * 10 * 8
    assert all(c["op"] not in roofline.VIEW_OPS for c in roofline.layer_costs(model))
    assert not any(c.get("unknown_shapes") for c in roofline.layer_costs(model))


def test_floors_order_and_units():
    costs = [{"name": "conv", "op": "Conv", "flops": 2e9, "act_elements": 1e5, "weight_elements": 1e6},
             {"name": "relu", "op": "Relu", "flops": 0, "act_elements": 2e5, "weight_elements": 0}]
    f = roofline.floors(costs, peak_tflops=1000.0, bandwidth_gbs=1000.0, precision="fp16", batch=100)
    assert f["compute"]["s_per_batch"] == pytest.approx(2e9 * 100 / 1e15)
    conv_s = max(2e11 / 1e15, (1e5 * 100 + 1e6) * 2 / 1e12)
    assert f["fused"]["s_per_batch"] == pytest.approx(conv_s)
    assert f["unfused"]["s_per_batch"] == pytest.approx(conv_s + 2e5 * 100 * 2 / 1e12)
    ips = [f[k]["images_per_s"] for k in ("compute", "fused", "unfused")]
    assert ips == sorted(ips, reverse=True)
    assert f["compute"]["share_of_peak"] == pytest.approx(1.0)
    assert f["memory_bound_compute_nodes"] == 0
    small = roofline.floors(costs, 1000.0, 1000.0, "fp16", batch=1)  # weights dominate one image
    assert small["memory_bound_compute_nodes"] == 1 and small["fused"]["share_of_peak"] == pytest.approx(2e-6 / 2.2e-6)


@pytest.mark.parametrize("name, kind", [
    ("sm90_xmma_fprop_implicit_gemm_f16f16_f16f32_f32_nhwckrsc_nhwc_tilesize128x128x64", "convolution"),
    ("triton_poi_fused_add_relu_12", "triton"),
    ("triton_poi_fused__to_copy_add_convolution_relu_5", "triton"),  # Inductor's names cite the op they follow
    ("void cudnn::ops::convertTensor_kernel<float, __half>", "other"),
    ("ampere_fp16_s16816gemm_fp16_128x64_ldg8_f2f_tn", "matmul"),
    ("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>", "elementwise"),
    ("Memcpy HtoD (Pinned -> Device)", "copy"),
    ("something_else", "other"),
])
def test_kernel_kinds(name, kind):
    assert kernel_profile.kind_of(name) == kind


def test_summary_per_call_busy_time_and_verdicts():
    # two calls, each: a copy 0-10 us, a conv 10-60, an add 55-70 (overlapping the conv), then 30 us idle
    kernels = []
    for t0 in (0.0, 100.0):
        kernels += [("Memcpy HtoD", t0, t0 + 10), ("implicit_gemm_fprop", t0 + 10, t0 + 60),
                    ("triton_poi_fused_add", t0 + 55, t0 + 70)]
    s = kernel_profile.summarise(kernels, iterations=2, wall_ms=0.1, batch=4, conv_flops_per_image=5e6,
                                 peak_tflops=1.0)
    assert s["gpu_busy_us"] == pytest.approx(70.0) and s["busy_fraction"] == pytest.approx(0.7)
    assert s["kernels_per_call"] == pytest.approx(2) and s["copies_per_call"] == pytest.approx(1)
    assert list(s["by_kind"])[0] == "convolution" and s["by_kind"]["convolution"]["us"] == pytest.approx(50)
    assert s["kernels"]["implicit_gemm_fprop"] == [50.0, 1.0] and len(s["kernels"]) == 3
    assert s["convolution_tflops"] == pytest.approx(5e6 * 4 / 50e-6 / 1e12)
    assert math.isclose(s["images_per_s"], 4 / 1e-4)
    assert kernel_profile.verdict(s).startswith("GPU-bound: convolution kernels hold 71%")
    idle = kernel_profile.summarise(kernels, iterations=2, wall_ms=1.0, batch=4)
    assert kernel_profile.verdict(idle).startswith("host-bound: the GPU is busy 7%")
    with pytest.raises(ValueError):
        kernel_profile.summarise(kernels, iterations=0, wall_ms=1.0, batch=1)


def test_profile_tool_parses_configs():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "tools" / "gpu-study" / "profile_kernels.py"
    spec = importlib.util.spec_from_file_location("gpu_profile_tool", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.parse_config("torch-compile:fp16:1024:freeze=true:compile_mode=max-autotune") == (
        "torch-compile", "fp16", 1024, {"freeze": True, "compile_mode": "max-autotune"})
    with pytest.raises(SystemExit, match="backend:precision:batch"):
        tool.parse_config("torch-graph:fp16")
    with pytest.raises(SystemExit, match="not option=value"):
        tool.parse_config("torch-graph:fp16:1:freeze")


def test_measured_profiles_show_the_bounds_the_notes_state():
    """docs/measurements/profiles: the H100 profiles behind the study's "what bounds it" (README, issue note)."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "docs" / "measurements" / "profiles"
    docs = {p.name: json.loads(p.read_text()) for p in sorted(root.glob("profile-*-h100.json"))}
    assert set(docs) == {"profile-cifar-h100.json", "profile-orig-h100.json"}
    for doc in docs.values():
        assert doc["schema"] == "edgebench.kernel-profile" and doc["card"] == "NVIDIA H100 80GB HBM3"
        for c in doc["configs"]:
            s = c["summary"]
            assert sum(k["us"] for k in s["by_kind"].values()) >= s["gpu_busy_us"] * 0.99  # kinds cover the busy time
    cfg = {(c["backend"], c["precision"], c["batch"]): c["summary"] for c in docs["profile-cifar-h100.json"]["configs"]}
    b1 = cfg[("torch-compile-graph", "fp16", 1)]
    assert b1["gpu_busy_us"] > 300  # the GPU's own work at batch 1 is over the 0.3 ms goal
    assert b1["by_kind"]["convolution"]["count"] == 36
    big = cfg[("torch-compile-compute", "fp16", 4096)]
    assert 0.5 < big["convolution_share_of_peak"] < 0.7 and big["by_kind"]["triton"]["share_of_busy"] > 0.25

    # batch 1, one H200: Triton convolution templates (max-autotune) do not beat cuDNN's kernels
    tuned = json.loads((root / "profile-cifar-b1-autotune-h200.json").read_text())
    by = {c["options"].get("compile_mode", "default") + ":" + c["precision"]: c["summary"] for c in tuned["configs"]}
    assert by["max-autotune-no-cudagraphs:fp16"]["gpu_busy_us"] > by["default:fp16"]["gpu_busy_us"]
