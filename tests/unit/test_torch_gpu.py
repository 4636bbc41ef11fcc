"""The torch backends on a real NVIDIA GPU (marker gpu; skipped elsewhere with the reason).

On a small graph with tf2onnx's patterns, and on the kit's real ResNet34 exports where
$EDGEBENCH_GPU_MODELS names a folder with <stem>/model.onnx (tools/gpu-study/run.sh test): every variant
computes what ONNX Runtime computes on the CPU, and no forward synchronises with the host
(torch.cuda.set_sync_debug_mode("error")), while the uncleaned graph does."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

torch = pytest.importorskip("torch", reason="PyTorch is not installed (it is on the GPU machine only)")
pytest.importorskip("onnx2torch", reason="onnx2torch is not installed (tools/gpu-study/run.sh brings its wheel)")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from test_onnx_clean import tf2onnx_like  # noqa: E402  (tests/unit is on sys.path under pytest)

from edgebench import runtimes  # noqa: E402
from edgebench.runtimes.torch import VARIANTS  # noqa: E402

if not torch.cuda.is_available():
    pytest.skip("torch sees no CUDA GPU", allow_module_level=True)

#: relative error (of the largest reference logit) allowed per precision / TF32
TOL = {"fp32": 1e-4, "tf32": 1e-2, "fp16": 2e-2, "bf16": 8e-2}


@pytest.fixture(autouse=True)
def _variants(monkeypatch):
    monkeypatch.setenv("EDGEBENCH_BACKENDS", ",".join(f"{k}={v}" for k, v in VARIANTS.items() if k != "torch"))


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "model.onnx"
    onnx.save(tf2onnx_like(hw=32), str(path))
    return path


def _reference(path, x):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]


def _check(backend, path, precision, x, ref, **options):
    with runtimes.open(backend, str(path), precision=precision, **options) as rt:
        outs = [rt.infer(x) for _ in range(3)]  # graph variants: capture, then replays
        settings = rt.versions()["settings"]
    tol = TOL["tf32" if settings.get("tf32_effective") else precision]
    for y in outs:
        assert y.shape == ref.shape and np.isfinite(y).all()
        err = np.abs(y.astype(np.float64) - ref).max() / np.abs(ref).max()
        assert err < tol, f"{backend} {precision}: relative error {err:.2e} over {tol}"
    return settings


@pytest.mark.parametrize("backend", [b for b in VARIANTS if b != "torch-compile-ro"])
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_variant_matches_onnxruntime(small_model, backend, precision):
    if backend == "torch-graph-tf32" and precision != "fp32":
        pytest.skip("TF32 is an FP32 setting")
    x = np.random.default_rng(1).uniform(0, 255, (5, 32, 32, 3)).astype(np.float32)
    compiled = "compile" in backend  # compiling syncs (torch-compile*, torch-fused-compile*)
    settings = _check(backend, small_model, precision, x, _reference(small_model, x), sync_check=not compiled)
    assert settings["gpu_name"]
    assert settings["onnx_clean"]["dynamic_ops_left"] == []


def test_compute_only_sees_a_new_batch(small_model):
    rng = np.random.default_rng(2)
    a, b = (rng.uniform(0, 255, (4, 32, 32, 3)).astype(np.float32) for _ in range(2))
    with runtimes.open("torch-compute", str(small_model), precision="fp32") as rt:
        ya, yb, ya2 = rt.infer(a), rt.infer(b), rt.infer(a)
    np.testing.assert_allclose(ya, _reference(small_model, a), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(yb, _reference(small_model, b), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(ya2, ya)


def test_pinned_input_is_page_locked_in_place_not_staged(small_model):
    """io=pinned registers the caller's buffer (the root of a slice: a test-set batch) once: no staging copy."""
    big = np.random.default_rng(5).uniform(0, 255, (12, 32, 32, 3)).astype(np.float32)
    with runtimes.open("torch-cl", str(small_model), precision="fp32") as rt:
        ys = [rt.infer(big[i:i + 4]) for i in (0, 4, 8)]
        settings = rt.versions()["settings"]
        assert len(rt._registered) == 1
    assert settings["host_registered"] is True
    for i, y in zip((0, 4, 8), ys):
        np.testing.assert_allclose(y, _reference(small_model, big[i:i + 4]), rtol=1e-4, atol=1e-3)


def test_compiled_compute_only_and_frozen_compile_match(small_model):
    x = np.random.default_rng(6).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    ref = _reference(small_model, x)
    _check("torch-compile-compute", small_model, "fp16", x, ref)
    assert _check("torch-compile", small_model, "fp16", x, ref, freeze=True)["freeze"] is True


def test_the_uncleaned_graph_synchronises_and_the_check_catches_it(small_model):
    x = np.random.default_rng(3).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    with runtimes.open("torch-cl", str(small_model), precision="fp16", clean=False, sync_check=True) as rt:
        with pytest.raises(RuntimeError, match="synchroniz"):
            rt.infer(x)


def _real_models():
    root = os.environ.get("EDGEBENCH_GPU_MODELS")
    return [p for p in sorted(Path(root).glob("*/model.onnx"))] if root else []


@pytest.mark.skipif(not _real_models(), reason="set EDGEBENCH_GPU_MODELS to a folder of <stem>/model.onnx "
                                               "(the kit's exports; tools/gpu-study/run.sh test stages them)")
@pytest.mark.parametrize("path", _real_models(), ids=lambda p: p.parent.name)
def test_real_export_is_capturable_and_correct(path):
    x = np.random.default_rng(4).uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    ref = _reference(path, x)
    for backend, precision in (("torch-graph", "fp32"), ("torch-graph", "fp16"), ("torch-cl", "bf16")):
        settings = _check(backend, path, precision, x, ref, sync_check=True)
        assert settings["onnx_clean"]["dynamic_ops_left"] == []


@pytest.mark.parametrize("backend", ["torch-fused-graph", "torch-fused-compute", "torch-fused-compile-graph"])
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_fused_matches_onnxruntime(tmp_path, backend, precision):
    """fuse: cudnn on a small ResNet (stem, identity block, downsample block): cuDNN's fused calls compute what
    ONNX Runtime computes, every Conv -> Relu / Conv -> Add -> Relu site fused, the projection left."""
    from test_torch_fuse import mini_resnet

    path = tmp_path / "model.onnx"
    onnx.save(mini_resnet(hw=32), str(path))
    x = np.random.default_rng(8).uniform(0, 255, (6, 32, 32, 3)).astype(np.float32)
    settings = _check(backend, path, precision, x, _reference(path, x),
                      sync_check=backend != "torch-fused-compile-graph")
    assert settings["fused_kernel"].startswith("cudnn")
    assert (settings["fused"]["conv_relu"], settings["fused"]["conv_add_relu"]) == (3, 3)
    assert [r["reason"] for r in settings["fused"]["left"]] == [
        r["reason"] for r in settings["fused"]["left"] if "downsample" in r["reason"]]


@pytest.mark.skipif(not _real_models(), reason="set EDGEBENCH_GPU_MODELS to a folder of <stem>/model.onnx "
                                               "(the kit's exports; tools/gpu-study/run.sh test stages them)")
@pytest.mark.parametrize("path", _real_models(), ids=lambda p: p.parent.name)
def test_real_export_fuses_every_residual_site(path):
    """The kit's ResNet34 export: every block's Add -> Relu fuses into a conv, and the fused graph is correct."""
    x = np.random.default_rng(9).uniform(0, 255, (8, 32, 32, 3)).astype(np.float32)
    settings = _check("torch-fused-graph", path, "fp32", x, _reference(path, x), sync_check=True)
    fused = settings["fused"]
    assert fused["conv_add_relu"] == 16 and fused["conv_relu"] >= 17, fused  # ResNet34: 16 blocks
    assert all("downsample" in r["reason"] for r in fused["left"]), fused["left"]


@pytest.mark.parametrize("backend, precision", [("torch-graph", "fp32"), ("torch-fused-compile-pipe", "fp16")])
def test_chunked_and_inline_copies_match_onnxruntime(small_model, backend, precision):
    """chunk: a batch that is a multiple of the chunk goes up in chunks on a copy stream, each chunk's graph
    waiting for its own copy; inline_copies: a small batch's copies are inside its graph. Both compute what ONNX
    Runtime computes, batch after batch (a new batch each call: no stale chunk), and the row says which ran how."""
    big = np.random.default_rng(10).uniform(0, 255, (40, 32, 32, 3)).astype(np.float32)
    with runtimes.open(backend, str(small_model), precision=precision, chunk=4, inline_copies=2) as rt:
        for lo, b in ((0, 2), (2, 8), (10, 6), (16, 12), (28, 12), (1, 2)):
            x = big[lo:lo + b]
            y = rt.infer(x)
            ref = _reference(small_model, x)
            err = np.abs(y.astype(np.float64) - ref).max() / np.abs(ref).max()
            assert y.shape == ref.shape and err < TOL[precision], (b, err)
        settings = rt.versions()["settings"]
    assert settings["chunked"] == {"8": 2, "12": 3} and settings["inline_copies_at"] == [2]
    assert settings["graphs_captured"] == [2, 6, 8, 12]


@pytest.mark.skipif(not _real_models(), reason="set EDGEBENCH_GPU_MODELS to a folder of <stem>/model.onnx "
                                               "(tools/gpu-study/run.sh test)")
@pytest.mark.parametrize("path", _real_models(), ids=lambda p: p.parent.name)
def test_real_export_lean_passes_apply_and_match_onnxruntime(path):
    """torch-fused-compile-lean's passes on the kit's export, on cuDNN: the 3 downsample projections merged, the
    head reduced, the stem padded; the merged path (batch <= 64, copies in the graph) and the apart path (80)
    both compute what ONNX Runtime computes (FP32, so random weights stay finite; mode graph: no compile)."""
    x = np.random.default_rng(11).uniform(0, 255, (80, 32, 32, 3)).astype(np.float32)
    ref = _reference(path, x)
    with runtimes.open("torch-fused-compile-lean", str(path), precision="fp32", mode="graph") as rt:
        outs = [rt.infer(x[:4]), rt.infer(x), rt.infer(x[4:8])]
        settings = rt.versions()["settings"]
    for y, want in zip(outs, (ref[:4], ref, ref[4:8])):
        err = np.abs(y.astype(np.float64) - want).max() / np.abs(want).max()
        assert err < TOL["fp32"], err
    assert settings["merged_downsample"]["merged"] == 3, settings["merged_downsample"]
    assert settings["reduced_matmuls"]["reduced"] == 1 and settings["padded_channels"]["padded"] == 1
    assert settings["inline_copies_at"] == [4]
