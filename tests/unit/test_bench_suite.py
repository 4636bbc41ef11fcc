import re

import pytest

from edgebench.bench import suite


def test_default_suite_parses_with_auto_threads():
    s = suite.load(cores=2)
    assert s.threads == [1, 2]
    backends = {g.backend for g in s.groups}
    assert {"keras", "savedmodel", "tflite", "onnxruntime", "tensorrt"} <= backends
    cpu = [g for g in s.groups if g.backend == "onnxruntime"]
    assert sorted({g.threads for g in cpu}) == [1, 2]
    gpu = [g for g in s.groups if g.backend == "tensorrt"]
    assert {g.threads for g in gpu} == {None} and {g.precision for g in gpu} == {"fp32", "fp16", "int8"}
    assert set(s.groups[0].scenarios) == {"latency", "throughput", "testset"}


@pytest.mark.parametrize("cores,expected", [(1, [1]), (2, [1, 2]), (6, [1, 3, 6]), (8, [1, 3, 6, 8])])
def test_auto_threads(cores, expected):
    assert suite.auto_threads(cores) == expected


BASE = {"scenarios": {"latency": {"batch_size": 1}}, "runs": [{"backend": "onnxruntime"}]}


@pytest.mark.parametrize("doc,message", [
    (dict(BASE, bogus=1), "bogus: unknown key"),
    (dict(BASE, runs=[{"backend": "nope"}]), "runs[0].backend: unknown backend 'nope'"),
    (dict(BASE, runs=[{"backend": "onnxruntime", "scenarios": ["testset"]}]), "not configured"),
    (dict(BASE, scenarios={"warp": {}}), "scenarios.warp: unknown key"),
    (dict(BASE, scenarios={"latency": {"min_iterations": 0}}),
     "scenarios.latency.min_iterations: must be an integer in [1, 10000000]"),
    (dict(BASE, threads="many"), "threads: must be"),
    (dict(BASE, runs=[]), "runs: must be a non-empty list"),
])
def test_bad_suites_name_the_problem(doc, message):
    with pytest.raises(suite.SuiteError, match=re.escape(message)):
        suite.parse(doc, "t.yaml", cores=2)


def test_malformed_yaml(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("runs: [unclosed\n")
    with pytest.raises(suite.SuiteError, match="malformed YAML"):
        suite.load(str(p))
