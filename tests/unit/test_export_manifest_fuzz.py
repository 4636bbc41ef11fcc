"""The manifest loader against 200+ generated malformed manifests: always a ManifestError with a message
(never a raw KeyError / TypeError / AttributeError), and no file changed."""
from __future__ import annotations

import copy
import hashlib
import json

import fuzz_helpers as fuzz
import pytest

from edgebench.export import manifest

GOOD = {"schema": "edgebench.manifest", "schema_version": 1, "created": "2026-11-26T00:00:00Z",
        "model": {"path": "model.keras", "sha256": "a" * 64, "name": "resnet18"},
        "data": {"source": "x.zip", "checksum": "c"}, "options": {"formats": ["onnx-fp32"]},
        "artifacts": [{"name": "onnx-fp32", "format": "onnx", "precision": "fp32", "path": "model.onnx",
                       "size_bytes": 1, "sha256": "b" * 64, "tools": {}, "applied": [], "options": {},
                       "export_seconds": 0.1, "status": "ok", "error": None,
                       "parity": {"passed": True, "reason": None}}]}
JUNK = [None, 0, -1, 1.5, True, "", "x", [], {}, [1, 2], {"a": 1}, float("nan")]


def malformed(n: int = 240):
    all_paths = [p for p in fuzz.paths(GOOD) if p]
    required = [p for p in all_paths if p in (("schema",), ("schema_version",), ("artifacts",)) or
                (len(p) == 3 and p[0] == "artifacts" and p[2] in ("name", "format", "precision", "path", "status"))]
    out = ["", "{", "[]", "null", "42", '"text"', "{\"schema\": \"edgebench.manifest\"}", "\x00\x01", "[" * 5000]
    for p in required:  # every required field missing
        d = copy.deepcopy(GOOD)
        del fuzz.parent(d, p)[p[-1]]
        out.append(json.dumps(d))
    # then every field replaced by junk of the wrong type
    return fuzz.one_field_broken(GOOD, all_paths, JUNK, manifest.Manifest.from_dict, n, seed=13, start=out)


def test_two_hundred_malformed_manifests_give_manifest_errors(tmp_path):
    cases = malformed()
    assert len(cases) >= 200
    (tmp_path / "model.onnx").write_bytes(b"x")
    path = tmp_path / "manifest.json"
    for i, text in enumerate(cases):
        path.write_text(text)
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        listing = sorted(p.name for p in tmp_path.iterdir())
        for call in (lambda: manifest.load(tmp_path), lambda: manifest.resolve(tmp_path, "onnx", "fp32")):
            with pytest.raises(manifest.ManifestError) as err:
                call()
            assert str(err.value).startswith(str(path)) and len(str(err.value)) > len(str(path)) + 5, (i, text)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before, i
        assert sorted(p.name for p in tmp_path.iterdir()) == listing, i


def test_the_good_manifest_loads_and_round_trips(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(GOOD))
    assert manifest.load(tmp_path) == GOOD
    typed = manifest.load_typed(tmp_path)
    assert typed.artifacts[0].format == "onnx" and manifest.Manifest.from_dict(typed.to_dict()) == typed


def test_write_refuses_a_malformed_manifest_and_keeps_the_old_file(tmp_path):
    manifest.write(tmp_path, copy.deepcopy(GOOD))
    before = (tmp_path / "manifest.json").read_bytes()
    bad = copy.deepcopy(GOOD)
    bad["artifacts"][0]["status"] = "great"
    with pytest.raises(manifest.ManifestError, match="status"):
        manifest.write(tmp_path, bad)
    assert (tmp_path / "manifest.json").read_bytes() == before
