"""The manifest loader against 200+ generated malformed manifests: always a ManifestError with a message
(never a raw KeyError / TypeError / AttributeError), and no file changed."""
from __future__ import annotations

import copy
import hashlib
import json
import random

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


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _set(doc, path, value):
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _delete(doc, path):
    target = doc
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]


def malformed(n: int = 240):
    rng = random.Random(13)
    paths = [p for p in _paths(GOOD) if p]
    required = [p for p in paths if p in (("schema",), ("schema_version",), ("artifacts",)) or
                (len(p) == 3 and p[0] == "artifacts" and p[2] in ("name", "format", "precision", "path", "status"))]
    out = ["", "{", "[]", "null", "42", '"text"', "{\"schema\": \"edgebench.manifest\"}", "\x00\x01", "[" * 5000]
    for p in required:  # every required field missing
        d = copy.deepcopy(GOOD)
        _delete(d, p)
        out.append(json.dumps(d))
    while len(out) < n:  # every field replaced by junk of the wrong type
        d = copy.deepcopy(GOOD)
        p = rng.choice(paths)
        value = rng.choice(JUNK)
        _set(d, p, value)
        try:
            manifest.Manifest.from_dict(json.loads(json.dumps(d)))
            continue  # that junk happens to be valid there (e.g. null for an optional field)
        except Exception:
            pass
        out.append(json.dumps(d))
    return out


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
