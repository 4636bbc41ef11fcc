"""TensorRT exporter: everything up to the point that needs TensorRT runs here; the build itself skips."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from edgebench.export import tensorrt as trtx
from edgebench.export.base import ArtifactRecord, ExportContext

SHA = "ab" * 32


def test_build_options_validation():
    assert trtx.build_options(precision="int8").profile == (1, 64, 256)
    bad = [dict(precision="int4"), dict(min_batch=0), dict(min_batch=8, opt_batch=4),
           dict(opt_batch=512, max_batch=256), dict(workspace_mb=-1), dict(int8_source="magic"),
           dict(precision="int8", calib_images=16, calib_batch=32), dict(input_name="in put"),
           dict(max_batch=2.5), dict(frobnicate=True)]
    for kwargs in bad:
        with pytest.raises(ValueError):
            trtx.build_options(**kwargs)
    # a big calib batch is fine for fp16 (no calibration)
    trtx.build_options(precision="fp16", calib_images=16, calib_batch=32)


def test_cache_key_changes_with_every_input():
    base = dict(onnx_sha256=SHA, trt_version="8.5.2.2", gpu_name="Orin", precision="int8", profile=(1, 64, 256))
    k0 = trtx.cache_key(**base)
    assert k0 == trtx.cache_key(**base) and len(k0) == 64
    changes = [dict(onnx_sha256="cd" * 32), dict(trt_version="10.3.0"), dict(gpu_name="NVIDIA H100"),
               dict(precision="fp16"), dict(profile=(1, 32, 256)), dict(extra={"calib_images": 100})]
    keys = {trtx.cache_key(**dict(base, **c)) for c in changes}
    assert len(keys) == len(changes) and k0 not in keys
    with pytest.raises(ValueError, match="64 hex"):
        trtx.cache_key(**dict(base, onnx_sha256="nothex"))
    with pytest.raises(ValueError, match="precision"):
        trtx.cache_key(**dict(base, precision="bf16"))


def test_key_extra_tracks_calibration_only_for_int8():
    fp16 = trtx.key_extra(trtx.build_options(precision="fp16"))
    int8 = trtx.key_extra(trtx.build_options(precision="int8", calib_images=256))
    assert "calib_images" not in fp16 and int8["calib_images"] == 256
    assert trtx.key_extra(trtx.build_options(precision="int8", int8_source="qdq")).get("calib_images") is None


def test_engine_filename_is_readable_and_keyed():
    key = trtx.cache_key(SHA, "8.5.2", "Orin (nvgpu)", "fp16", (1, 64, 256))
    name = trtx.engine_filename(key, "fp16", (1, 64, 256), "Orin (nvgpu)")
    assert name.startswith("engines/fp16-b1-64-256-orin-nvgpu-") and name.endswith(key[:16] + ".engine")


def test_calibration_batches_are_full_float32_and_contiguous():
    x = np.arange(70 * 32 * 32 * 3, dtype=np.uint32).reshape(70, 32, 32, 3).astype(np.uint8)
    batches = list(trtx.calibration_batches(x, 32))
    assert len(batches) == 2
    for b in batches:
        assert b.shape == (32, 32, 32, 3) and b.dtype == np.float32 and b.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(batches[1], x[32:64].astype(np.float32))
    assert len(list(trtx.calibration_batches(x, 8, limit=16))) == 2
    with pytest.raises(ValueError, match="cannot fill one batch"):
        list(trtx.calibration_batches(x[:4], 8))
    with pytest.raises(ValueError, match="NHWC"):
        list(trtx.calibration_batches(np.zeros((8, 3, 32, 32)), 4))


def test_calibration_cache_name_depends_on_images():
    a = trtx.calibration_cache_name(SHA, 500, 32, trtx.images_digest(np.zeros((4, 32, 32, 3), np.uint8)))
    b = trtx.calibration_cache_name(SHA, 500, 32, trtx.images_digest(np.ones((4, 32, 32, 3), np.uint8)))
    assert a != b and a.startswith("engines/calib-") and a.endswith(".cache")


def test_trtexec_command_for_tensorrt_85_and_10():
    argv = trtx.trtexec_command("model.onnx", "e.engine", "int8", (1, 64, 256), calib_cache="c.cache",
                                trt_version="8.5.2.2")
    assert argv[0] == "/usr/src/tensorrt/bin/trtexec"
    assert "--onnx=model.onnx" in argv and "--saveEngine=e.engine" in argv
    assert "--minShapes=image:1x32x32x3" in argv and "--optShapes=image:64x32x32x3" in argv
    assert "--maxShapes=image:256x32x32x3" in argv and "--memPoolSize=workspace:1024" in argv
    assert "--int8" in argv and "--calib=c.cache" in argv and "--buildOnly" in argv
    argv10 = trtx.trtexec_command("m.onnx", "e", "fp16", trt_version="10.3.0", trtexec="trtexec")
    assert argv10[0] == "trtexec" and "--fp16" in argv10 and "--skipInference" in argv10
    assert "--int8" not in argv10
    assert all(isinstance(a, str) for a in argv10)  # an argv list, never a shell string
    with pytest.raises(ValueError):
        trtx.trtexec_command("m.onnx", "e", "fp16", (8, 4, 2))


def test_exporter_options_validated_at_construction():
    exp = trtx.TensorRTInt8Exporter(max_batch=128, calib_images=64, calib_batch=16)
    assert exp.options["precision"] == "int8" and exp.options["max_batch"] == 128
    with pytest.raises(ValueError):
        trtx.TensorRTFp16Exporter(min_batch=0)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_export_without_tensorrt_fails_with_a_reason(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    ctx = ExportContext(model_path=tmp_path / "model.keras", out_dir=tmp_path)
    ctx.results["onnx-fp32"] = ArtifactRecord("onnx-fp32", "onnx", "fp32", "model.onnx")
    rec = trtx.TensorRTFp16Exporter().export(ctx)
    assert rec.status == "failed"
    assert "TensorRT is not available here" in rec.error and "device" in rec.error
    assert not (tmp_path / "engines").exists() or not any((tmp_path / "engines").iterdir())


@pytest.mark.tensorrt
def test_engine_build_and_cache_reuse(tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (engines are built on Jetson / NGC images)")
    pytest.importorskip("cuda", reason="cuda-python is not installed")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    # a tiny NHWC model: image -> Transpose -> GlobalAveragePool -> Flatten -> MatMul -> 10 logits
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 10], list(np.linspace(-1, 1, 30)))
    nodes = [helper.make_node("Transpose", ["image"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("GlobalAveragePool", ["t"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "w"], ["logits"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                            ["batch", 32, 32, 3])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(tmp_path / "model.onnx"))
    first = trtx.engine_for(tmp_path / "model.onnx", "fp16", max_batch=8)
    mtime = first.stat().st_mtime_ns
    assert first.exists() and first.parent.name == "engines"
    assert trtx.engine_for(tmp_path / "model.onnx", "fp16", max_batch=8) == first
    assert first.stat().st_mtime_ns == mtime  # reused, not rebuilt
