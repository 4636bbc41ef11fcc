"""Fuzz (issue 13): the suite loader and the results loader get >= 200 generated malformed inputs each.
Each must end in our own exception with a message (SuiteError / ResultsError), never a raw traceback, and
leave the file it read unchanged."""
from __future__ import annotations

import copy
import json
import random

import pytest
import yaml

from edgebench import results
from edgebench.bench import suite as suite_mod
from edgebench.util import sha256_file

CASES = 260
VALID_SUITE = {
    "name": "fuzz", "threads": [1, 2], "pin_threads": True, "test_images": 64, "overhead_check": False,
    "interleave": 1,
    "scenarios": {"latency": {"batch_size": 1, "min_iterations": 3, "min_seconds": 0.1, "warmup_iterations": 1},
                  "throughput": {"batch_sizes": [1, 8], "min_iterations": 2},
                  "testset": {"batch_size": 32, "repeats": 2}},
    "runs": [{"backend": "onnxruntime", "precisions": ["fp32", "int8"]},
             {"backend": "tflite", "threads": [1], "scenarios": ["latency"]}],
}
# values that are wrong for every typed place they are put into
BAD_VALUES = [0, -1, -7, 2.5, "x", "", None, True, [], {}, [0], [-3], ["a"], {"k": 1}, 1e309, "fp33", [[1]], [None]]
FIELDS = [("threads",), ("pin_threads",), ("test_images",), ("overhead_check",), ("interleave",), ("scenarios",),
          ("runs",), ("scenarios", "latency", "batch_size"), ("scenarios", "latency", "min_iterations"),
          ("scenarios", "latency", "min_seconds"), ("scenarios", "latency", "warmup_iterations"),
          ("scenarios", "throughput", "batch_sizes"), ("scenarios", "testset", "batch_size"),
          ("scenarios", "testset", "repeats"), ("runs", 0, "backend"), ("runs", 0, "precisions"),
          ("runs", 1, "threads"), ("runs", 1, "scenarios"), ("runs", 0, "options"), ("runs", 0)]
ALLOWED = {  # a bad value that happens to be valid at a place is skipped, not counted
    ("pin_threads",): (True,), ("overhead_check",): (True,), ("scenarios",): ({}, None),
    ("runs", 0, "options"): ({}, {"k": 1}), ("scenarios", "latency", "min_seconds"): (0, 2.5),
    ("scenarios", "latency", "warmup_iterations"): (0,), ("test_images",): (None,), ("runs", 1, "scenarios"): (None,),
}


def _set(doc, path, value):
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


def _suite_cases(rng: random.Random):
    cases = []
    for path in FIELDS:
        for value in BAD_VALUES:
            if any(value is a or (type(value) is type(a) and value == a) for a in ALLOWED.get(path, ())):
                continue
            if path == ("scenarios",) and value is None:
                continue
            doc = copy.deepcopy(VALID_SUITE)
            _set(doc, path, value)
            cases.append(yaml.safe_dump(doc))
    while len(cases) < CASES + 60:
        doc = copy.deepcopy(VALID_SUITE)
        kind = rng.randrange(4)
        if kind == 0:
            doc[rng.choice(["bogus", "thread", "run", "scenario"])] = rng.choice([1, "x"])
            cases.append(yaml.safe_dump(doc))
        elif kind == 1:
            run = doc["runs"][rng.randrange(2)]
            run[rng.choice(["backend", "precisions"])] = rng.choice(["nope", ["fp8"], ["FP32"], "tensor rt"])
            cases.append(yaml.safe_dump(doc))
        elif kind == 2:  # structurally broken YAML text
            text = yaml.safe_dump(doc)
            cut = rng.randrange(5, len(text) - 5)
            cases.append(text[:cut] + rng.choice(["[", "{", ": :", "\t- ]", "'"]) + text[cut:])
        else:  # top level that is not a mapping
            cases.append(rng.choice(["- 1\n- 2\n", "just text\n", "42\n", "", "~\n", "[runs]\n"]))
    return cases


def test_fuzz_suite_loader_malformed_inputs(tmp_path):
    rng = random.Random(13)
    cases = _suite_cases(rng)
    refused = 0
    for i, text in enumerate(cases):
        p = tmp_path / f"s{i}.yaml"
        p.write_text(text)
        before = sha256_file(p)
        try:
            suite_mod.load(str(p), cores=2)
        except suite_mod.SuiteError as exc:
            assert str(exc).strip() and str(p) in str(exc), text
            refused += 1
        except Exception as exc:  # pragma: no cover - the failure this test exists to catch
            pytest.fail(f"case {i}: raw {type(exc).__name__}: {exc}\n{text}")
        else:
            if not text.strip() or "[" in text or "'" in text:
                continue  # a cut that still parses to a valid suite is not a malformed input
            pytest.fail(f"case {i} was accepted:\n{text}")
        assert sha256_file(p) == before
    assert refused >= 200, refused


VALID_ROW = results.new_row("onnxruntime", "fp32", 1, 8, "latency", latency_ms={"n": 2, "mean": 1.0, "median": 1.0,
                                                                              "raw": [1.0, 1.0]},
                            throughput_ips=8000.0, accuracy={"top1": 0.5, "images": 10})


def _valid_doc():
    doc = results.new_document("local", {"cpu": {}}, {"name": "m", "sha256": "0" * 64}, {"name": "s"})
    doc["rows"].append(copy.deepcopy(VALID_ROW))
    return doc


ROW_BAD = {"backend": [1, None, {}], "precision": [3, None], "scenario": ["warp", 1, None],
           "status": ["great", None, 0], "threads": [0, -2, "two", 1.5], "batch_size": [-1, "8", 2.5],
           "throughput_ips": ["fast", [1]], "warnings": ["text", [1, 2], {}], "latency_ms": ["slow", [1], 3],
           "accuracy": ["high", [0.5]], "testset": [1, "x"], "compute": ["tpu", 3], "extra": [1, "x"],
           "artifact": ["model.onnx", 3], "cold_start": [1, "x"], "reason": [3, ["x"]]}
DOC_BAD = {"schema": ["edgebench.result", None, 1], "schema_version": [0, 99, "1", None, 1.5],
           "rows": [None, {}, "rows", 3, [1], ["row"]], "device": [None, 3, []], "environment": [None, "x", []],
           "model": [None, 1, []], "suite": [None, 2, "s"], "complete": ["yes", 1]}


def _results_cases(rng: random.Random):
    cases = []
    for key, values in DOC_BAD.items():
        for v in values:
            doc = _valid_doc()
            doc[key] = v
            cases.append(json.dumps(doc))
        doc = _valid_doc()
        del doc[key]
        cases.append(json.dumps(doc))
    for key, values in ROW_BAD.items():
        for v in values:
            doc = _valid_doc()
            doc["rows"][0][key] = v
            cases.append(json.dumps(doc))
    for key in ("backend", "precision", "scenario", "status"):
        doc = _valid_doc()
        del doc["rows"][0][key]
        cases.append(json.dumps(doc))
    text = json.dumps(_valid_doc())
    while len(cases) < CASES:
        kind = rng.randrange(4)
        if kind == 0:  # truncated
            cases.append(text[:rng.randrange(0, len(text) - 1)])
        elif kind == 1:  # a byte flipped into something JSON does not allow
            i = rng.randrange(len(text))
            cases.append(text[:i] + rng.choice(["\x00", "}", "{", "\"", ",,", "NaNx"]) + text[i + 1:])
        elif kind == 2:  # not JSON at all / not UTF-8
            cases.append(rng.choice([b"\xff\xfe\x00garbage", b"<html>", b"", b"[" * 100000, b"null", b"[]", b"7"]))
        else:  # a raw value inside latency stats
            doc = _valid_doc()
            doc["rows"][0]["latency_ms"][rng.choice(["mean", "median", "raw"])] = rng.choice(["x", [None], {"a": 1}])
            cases.append(json.dumps(doc))
    return cases


def test_fuzz_results_loader_malformed_inputs(tmp_path):
    cases = _results_cases(random.Random(13))
    refused = 0
    for i, case in enumerate(cases):
        p = tmp_path / f"r{i}.json"
        p.write_bytes(case if isinstance(case, bytes) else case.encode("utf-8"))
        before = sha256_file(p)
        try:
            results.load(p)
        except results.ResultsError as exc:
            assert str(exc).strip() and str(p) in str(exc)
            refused += 1
        except Exception as exc:  # pragma: no cover - the failure this test exists to catch
            pytest.fail(f"case {i}: raw {type(exc).__name__}: {exc}\n{case[:300]!r}")
        assert sha256_file(p) == before
    assert refused >= 200, refused
