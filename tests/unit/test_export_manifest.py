"""manifest.json: writing, loading, resolving artifacts for the benchmark harness."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgebench.export import manifest


def _write(tmp_path: Path, artifacts):
    man = manifest.new(tmp_path / "model.keras", "resnet18", "0" * 64, {"source": "x", "checksum": "y"})
    man["artifacts"] = artifacts
    manifest.write(tmp_path, man)
    return man


def _art(name, path, status="ok", passed=True, error=None):
    fmt, precision = name.split("-")
    return {"name": name, "format": fmt, "precision": precision, "path": path, "size_bytes": 1, "sha256": "a" * 64,
            "tools": {}, "applied": [], "export_seconds": 0.1, "status": status, "error": error,
            "parity": {"passed": passed, "reason": None if passed else "top-1 agreement 0.5 < 0.98"}}


def test_round_trip_and_resolve(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"x")
    _write(tmp_path, [_art("onnx-fp32", "model.onnx")])
    data = manifest.load(tmp_path)
    assert data["schema"] == "edgebench.manifest" and data["schema_version"] == 1
    assert manifest.resolve(tmp_path, "onnx", "fp32") == tmp_path / "model.onnx"
    assert manifest.resolve(tmp_path / "manifest.json", "onnx", "fp32") == tmp_path / "model.onnx"


def test_resolve_errors_are_clear(tmp_path):
    with pytest.raises(manifest.ManifestError, match="no export manifest"):
        manifest.load(tmp_path)
    (tmp_path / "model_int8.tflite").write_bytes(b"x")
    _write(tmp_path, [_art("onnx-fp32", "model.onnx"),
                      _art("tflite-int8", "model_int8.tflite", status="failed", passed=False,
                           error="parity: top-1 agreement 0.5 < 0.98"),
                      _art("tflite-fp16", "model_fp16.tflite", status="failed", error="converter failed")])
    with pytest.raises(manifest.ManifestError, match="no tensorrt/fp16 artifact.*onnx/fp32"):
        manifest.resolve(tmp_path, "tensorrt", "fp16")
    with pytest.raises(manifest.ManifestError, match="converter failed"):
        manifest.resolve(tmp_path, "tflite", "fp16")
    with pytest.raises(manifest.ManifestError, match="agreement"):
        manifest.resolve(tmp_path, "tflite", "int8")
    with pytest.raises(manifest.ManifestError, match="missing on disk"):
        manifest.resolve(tmp_path, "onnx", "fp32")
    assert [a["name"] for a in manifest.failed(manifest.load(tmp_path))] == ["tflite-int8", "tflite-fp16"]


def test_parity_failure_can_be_ignored_on_request(tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"x")
    _write(tmp_path, [_art("tflite-int8", "m.tflite", passed=False)])
    with pytest.raises(manifest.ManifestError, match="parity"):
        manifest.resolve(tmp_path, "tflite", "int8")
    assert manifest.resolve(tmp_path, "tflite", "int8", require_parity=False).name == "m.tflite"


def test_wrong_schema_and_version(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(manifest.ManifestError, match="not an edgebench manifest"):
        manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"schema": "edgebench.manifest", "schema_version": 9,
                                                        "artifacts": []}))
    with pytest.raises(manifest.ManifestError, match="schema_version 9"):
        manifest.load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(manifest.ManifestError, match="unreadable"):
        manifest.load(tmp_path)
