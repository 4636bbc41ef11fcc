import json

import pytest

from edgebench import results


def _doc():
    return results.new_document("local", {"cpu": {}}, {"name": "m"}, {"name": "s"})


def test_rows_and_ids():
    r = results.new_row("onnxruntime", "int8", 2, 64, "throughput", throughput_ips=10.0)
    assert r["id"] == "onnxruntime-int8-t2-b64-throughput" and r["status"] == "ok" and r["accuracy"] is None
    assert results.new_row("tensorrt", "fp16", None, 1, "latency")["id"] == "tensorrt-fp16-tdef-b1-latency"
    with pytest.raises(ValueError, match="unknown row fields"):
        results.new_row("x", "fp32", 1, 1, "latency", speed=3)
    with pytest.raises(ValueError, match="status"):
        results.new_row("x", "fp32", 1, 1, "latency", status="great")


def test_writer_round_trip_and_completeness(tmp_path):
    p = tmp_path / "r.json"
    w = results.ResultsWriter(p, _doc())
    assert results.load(p)["complete"] is False
    w.add(results.new_row("keras", "fp32", 1, 32, "testset"))
    w.finish()
    doc = results.load(p)
    assert doc["complete"] is True and len(doc["rows"]) == 1
    assert not list(tmp_path.glob(".*tmp"))  # no temporary left behind


def test_bad_files_are_named(tmp_path):
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"schema": "edgebench.results", "rows": [')
    with pytest.raises(results.ResultsError, match="corrupt.json: corrupt JSON"):
        results.load(corrupt)
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(dict(_doc(), schema_version=99)))
    with pytest.raises(results.ResultsError, match="newer than this kit"):
        results.load(newer)
    other = tmp_path / "other.json"
    other.write_text("[]")
    with pytest.raises(results.ResultsError, match="not an edgebench results file"):
        results.load(other)
    docs, errors = results.load_many([corrupt, newer, tmp_path / "missing.json"])
    assert docs == [] and len(errors) == 3
