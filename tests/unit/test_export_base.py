"""Shared export steps: temporary names, atomic replace, records, error capture (no TensorFlow)."""
from __future__ import annotations

import json

import pytest

from edgebench.export import base
from edgebench.export.base import ArtifactRecord, ExportContext, Exporter, ExportError


class _FileExporter(Exporter):
    format = "onnx"
    precision = "fp32"
    filename = "model.onnx"
    tools = ("numpy", "surely-not-installed-xyz")

    def _export_impl(self, ctx, tmp_path):
        tmp_path.write_bytes(b"payload")
        return ["wrote payload"]


class _DirExporter(Exporter):
    format = "savedmodel"
    filename = "saved_model"

    def _export_impl(self, ctx, tmp_path):
        tmp_path.mkdir()
        (tmp_path / "saved_model.pb").write_bytes(b"new")
        return []


class _Failing(Exporter):
    format = "tflite"
    precision = "int8"
    filename = "model_int8.tflite"

    def _export_impl(self, ctx, tmp_path):
        tmp_path.write_bytes(b"half written")
        raise RuntimeError("converter exploded")


class _Silent(Exporter):
    format = "tflite"
    filename = "model_fp32.tflite"

    def _export_impl(self, ctx, tmp_path):
        return []


def _ctx(tmp_path, **kw):
    logs = []
    return ExportContext(model_path=tmp_path / "model.keras", out_dir=tmp_path, log=logs.append, **kw), logs


def test_export_writes_file_with_hash_size_and_versions(tmp_path):
    ctx, _ = _ctx(tmp_path)
    rec = _FileExporter().export(ctx)
    assert rec.status == "ok" and rec.error is None
    assert (tmp_path / "model.onnx").read_bytes() == b"payload"
    assert rec.size_bytes == 7
    assert len(rec.sha256) == 64
    assert rec.tools["numpy"] and rec.tools["surely-not-installed-xyz"] is None
    assert rec.applied == ["wrote payload"]
    assert rec.export_seconds >= 0
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]  # no temporary left behind
    json.dumps(rec.to_dict())


def test_failed_export_leaves_nothing_under_final_name(tmp_path):
    ctx, logs = _ctx(tmp_path)
    rec = _Failing().export(ctx)
    assert rec.status == "failed"
    assert "converter exploded" in rec.error and "RuntimeError" in rec.error
    assert not (tmp_path / "model_int8.tflite").exists()
    assert list(tmp_path.iterdir()) == []
    assert any("tflite-int8" in m for m in logs)


def test_failed_export_keeps_previous_good_artifact(tmp_path):
    (tmp_path / "model_int8.tflite").write_bytes(b"old good")
    ctx, _ = _ctx(tmp_path)
    assert _Failing().export(ctx).status == "failed"
    assert (tmp_path / "model_int8.tflite").read_bytes() == b"old good"


def test_exporter_that_writes_nothing_fails(tmp_path):
    ctx, _ = _ctx(tmp_path)
    rec = _Silent().export(ctx)
    assert rec.status == "failed" and "wrote nothing" in rec.error


def test_folder_artifact_replaces_older_folder(tmp_path):
    old = tmp_path / "saved_model"
    old.mkdir()
    (old / "stale.txt").write_text("x")
    ctx, _ = _ctx(tmp_path)
    rec = _DirExporter().export(ctx)
    assert rec.status == "ok"
    assert sorted(p.name for p in old.iterdir()) == ["saved_model.pb"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["saved_model"]


def test_artifact_path_names_missing_dependency(tmp_path):
    ctx, _ = _ctx(tmp_path)
    with pytest.raises(ExportError, match="onnx-fp32.*not exported"):
        ctx.artifact_path("onnx-fp32")
    ctx.results["onnx-fp32"] = ArtifactRecord("onnx-fp32", "onnx", "fp32", "model.onnx", status="failed",
                                              error="tf2onnx broke")
    with pytest.raises(ExportError, match="tf2onnx broke"):
        ctx.artifact_path("onnx-fp32")


def test_calibration_missing_is_an_error_naming_the_artifact(tmp_path):
    ctx, _ = _ctx(tmp_path)
    with pytest.raises(ExportError) as info:
        ctx.calibration("tflite-int8", 10)
    assert info.value.artifact == "tflite-int8" and "calibration" in str(info.value)


def test_missing_and_empty_model_files_fail_before_importing_tensorflow(tmp_path):
    with pytest.raises(base.ModelError, match="no such file"):
        base.load_keras_model(tmp_path / "nope.keras")
    empty = tmp_path / "empty.keras"
    empty.write_bytes(b"")
    with pytest.raises(base.ModelError, match="empty"):
        base.load_keras_model(empty)


class _FakeTensor:
    def __init__(self, shape):
        self.shape = shape


class _FakeModel:
    def __init__(self, in_shape, out_shape=(None, 10), n_in=1):
        self.inputs = [_FakeTensor(in_shape)] * n_in
        self.outputs = [_FakeTensor(out_shape)]


def test_check_model_io():
    base.check_model_io(_FakeModel((None, 32, 32, 3)))
    with pytest.raises(base.ModelError, match=r"input shape is \(28, 28, 1\)"):
        base.check_model_io(_FakeModel((None, 28, 28, 1)))
    with pytest.raises(base.ModelError, match="one input"):
        base.check_model_io(_FakeModel((None, 32, 32, 3), n_in=2))
    with pytest.raises(base.ModelError, match="logits"):
        base.check_model_io(_FakeModel((None, 32, 32, 3), out_shape=(None, 4, 4, 10)))
    with pytest.raises(base.ModelError, match="outputs 7 classes but the test set .CIFAR-10. has 10"):
        base.check_model_io(_FakeModel((None, 32, 32, 3), out_shape=(None, 7)))


def test_float_images_checks_shape():
    import numpy as np

    x = base.float_images(np.zeros((2, 32, 32, 3), np.uint8))
    assert x.dtype == np.float32
    with pytest.raises(ValueError, match="NHWC"):
        base.float_images(np.zeros((2, 3, 32, 32), np.uint8))
