"""The Jetson suite reproduces the seed study's full table: CPU-only model.predict at 1/3/6 threads and the
GPU at 1/3/6/default threads, beside ONNX Runtime, TFLite and TensorRT."""
from __future__ import annotations

from pathlib import Path

from edgebench.bench import suite

SUITE = Path(__file__).resolve().parents[2] / "src" / "edgebench" / "suites" / "jetson-seed.yaml"


def test_jetson_seed_suite_has_the_study_rows():
    s = suite.load(str(SUITE), cores=6)
    rows = {(g.backend, g.threads, g.options.get("device")): g for g in s.groups}
    for t in (1, 3, 6):
        g = rows[("keras", t, "cpu")]
        assert list(g.scenarios) == ["testset"] and g.scenarios["testset"]["repeats"] >= 3
    for t in (1, 3, 6, None):  # None: TensorFlow's own thread setting, the study's "default"
        assert ("keras-gpu", t, None) in rows
    assert s.test_images == 10000
    backends = {g.backend for g in s.groups}
    assert {"onnxruntime", "tflite", "tensorrt"} <= backends
    ids = [(g.backend, g.precision, g.threads) for g in s.groups]
    assert len(ids) == len(set(ids)), "two groups would write the same row ids"
