"""The typed results document: v1 files written before still load unchanged, every malformed input is a
ResultsError with a message (200+ generated cases, no file changed), and the writer refuses a bad row."""
from __future__ import annotations

import glob
import hashlib
import json
from pathlib import Path

import fuzz_helpers as fuzz
import pytest

from edgebench import results

REPO = Path(__file__).resolve().parents[2]
V1_FILES = sorted(glob.glob(str(REPO / "docs" / "measurements" / "*.json"))) + \
    [str(REPO / "src" / "edgebench" / "reference" / "seed-study.json")]


def _good():
    doc = results.new_document("local", {"cpu": {}}, {"name": "m"}, {"name": "s"})
    doc["rows"].append(results.new_row("onnxruntime", "fp32", 2, 8, "latency", throughput_ips=10.0,
                                       latency_ms={"mean": 1.0, "raw": [1.0, 1.1]}, compute="cpu"))
    doc["rows"].append(results.new_row("tflite", "int8", None, 32, "testset",
                                       testset={"repeats": 1, "seconds": [0.5], "avg_s": 0.5}))
    return doc


@pytest.mark.parametrize("path", V1_FILES, ids=lambda p: Path(p).name)
def test_schema_v1_files_written_before_still_load(path):
    original = json.loads(Path(path).read_text())
    doc = results.load(path)
    assert len(doc["rows"]) == len(original["rows"])
    for a, b in zip(doc["rows"], original["rows"]):
        assert {k: v for k, v in a.items() if k in b} == b  # nothing changed; absent fields read as null
    typed = results.load_typed(path)
    assert typed.device == original["device"] and all(isinstance(r, results.Row) for r in typed.rows)
    assert results.ResultsDocument.from_dict(typed.to_dict()) == typed


def malformed(n: int = 240):
    good = _good()
    candidates = [p for p in fuzz.paths(good) if p and p[0] not in ("environment", "suite", "model")]
    junk = [None, 0, -3, 2.5, True, "", "x", [], {}, ["a"], {"k": [1, "z"]}]
    start = ["", "{", "[]", "null", "7", "\"s\"", "\xff\xfe", "[" * 5000, "{\"schema\": \"edgebench.results\"}"]
    return fuzz.one_field_broken(good, candidates, junk, results.ResultsDocument.from_dict, n, seed=5,
                                 delete_share=0.25, start=start)


def test_two_hundred_malformed_documents_give_results_errors(tmp_path):
    cases = malformed()
    assert len(cases) >= 200
    path = tmp_path / "r.json"
    for i, text in enumerate(cases):
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        with pytest.raises(results.ResultsError) as err:
            results.load(path)
        assert err.value.path == str(path) and err.value.reason, (i, text)
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before
        assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_row_errors_name_the_row_and_field():
    doc = _good()
    doc["rows"][1]["latency_ms"] = {"raw": [1, "slow"]}
    with pytest.raises(results.ResultsError, match=r"row 1 \(tflite-int8-tdef-b32-testset\)\.latency_ms\.raw"):
        results.validate(doc, "x.json")
    doc = _good()
    doc["rows"][0]["threads"] = 0
    with pytest.raises(results.ResultsError, match="threads"):
        results.validate(doc, "x.json")


def test_writer_refuses_a_malformed_row_and_keeps_the_file_valid(tmp_path):
    p = tmp_path / "r.json"
    w = results.ResultsWriter(p, _good())
    bad = results.new_row("keras", "fp32", 1, 8, "latency")
    bad["throughput_ips"] = "fast"
    with pytest.raises(results.ResultsError, match="throughput_ips"):
        w.add(bad)
    assert len(results.load(p)["rows"]) == 2 and len(w.document["rows"]) == 2


def test_unknown_fields_of_a_newer_writer_are_kept():
    doc = _good()
    doc["machine_load"] = {"before": 0.1}
    doc["rows"][0]["placement"] = "cpu:0"
    back = results.validate(doc)
    assert back["machine_load"] == {"before": 0.1} and back["rows"][0]["placement"] == "cpu:0"
