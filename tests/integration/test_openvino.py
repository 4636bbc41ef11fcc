"""OpenVINO end to end on the trained ResNet34: the session's export (tests/integration/conftest.py: the IR converted
from model.onnx and NNCF's INT8 IR, each checked against Keras in the manifest) benchmarked on a few hundred real
CIFAR-10 test images, both backends (synchronous LATENCY requests, THROUGHPUT async requests)."""
from __future__ import annotations

import pytest
import yaml

from edgebench import results
from edgebench.bench.harness import run_bench
from edgebench.export import manifest
from edgebench.launchers import BenchRequest

pytestmark = pytest.mark.slow
pytest.importorskip("openvino")

TEST_IMAGES = 256
SUITE = {"name": "openvino-check", "threads": [1], "pin_threads": True, "test_images": TEST_IMAGES,
         "overhead_check": False,
         "scenarios": {"latency": {"batch_size": 1, "min_iterations": 10, "min_seconds": 0.3, "warmup_iterations": 2,
                                   "warmup_seconds": 0.1},
                       "throughput": {"batch_sizes": [64], "min_iterations": 3, "min_seconds": 0.3,
                                      "warmup_iterations": 1, "warmup_seconds": 0.1},
                       "testset": {"batch_size": 32, "repeats": 1}},
         "runs": [{"backend": "keras", "precisions": ["fp32"], "scenarios": ["testset"]},
                  {"backend": "openvino", "precisions": ["fp32", "int8"]},
                  {"backend": "openvino-throughput", "precisions": ["fp32"], "scenarios": ["throughput", "testset"]}]}


@pytest.fixture(scope="module")
def doc(bench_artifacts, cifar_source, tmp_path_factory):
    work = tmp_path_factory.mktemp("openvino-bench")
    suite = work / "suite.yaml"
    suite.write_text(yaml.safe_dump(SUITE))
    out = work / "openvino.json"
    run_bench(BenchRequest(artifacts=str(bench_artifacts), out=str(out), suite=str(suite), data=cifar_source),
              log=lambda m: None)
    return results.load(out)


def test_export_writes_both_irs_checked_against_keras(bench_artifacts):
    records = {a["name"]: a for a in manifest.load(bench_artifacts)["artifacts"]}
    for name in ("openvino-fp32", "openvino-int8"):
        rec = records[name]
        assert rec["status"] == "ok", rec
        folder = bench_artifacts / rec["path"]
        assert (folder / "model.xml").is_file() and (folder / "model.bin").is_file()
        assert rec["parity"]["passed"], rec["parity"]
    assert records["openvino-fp32"]["parity"]["rel_diff"] < 1e-4
    # the fixture turns the INT8 gate off (a one-epoch model): a broken quantization agrees by chance (~0.1-0.3)
    assert records["openvino-int8"]["parity"]["top1_agreement"] >= 0.75, records["openvino-int8"]["parity"]
    assert any("nncf.quantize" in step for step in records["openvino-int8"]["applied"])
    # INT8 weights: the IR is well under the FP32 one
    assert records["openvino-int8"]["size_bytes"] < 0.5 * records["openvino-fp32"]["size_bytes"]


def test_top1_matches_keras(doc):
    rows = {r["id"]: r for r in doc["rows"]}
    bad = [(r["id"], r["reason"]) for r in doc["rows"] if r["status"] != "ok"]
    assert not bad, bad
    keras = rows["keras-fp32-t1-b32-testset"]["accuracy"]
    assert keras["images"] == TEST_IMAGES and keras["top1_agreement"] == 1.0
    for backend in ("openvino", "openvino-throughput"):
        acc = rows[f"{backend}-fp32-t1-b32-testset"]["accuracy"]
        assert acc["images"] == TEST_IMAGES and acc["top1"] == keras["top1"], (backend, acc)
        assert acc["max_abs_logit_diff"] < 1e-3 and acc["top1_agreement"] == 1.0, (backend, acc)
    int8 = rows["openvino-int8-t1-b32-testset"]["accuracy"]
    # INT8 on the session's one-epoch model (near-tied logits): agreement 0.88-0.97 seen; a broken quantization
    # agrees by chance (~0.1-0.3) and moves top-1 by far more
    assert int8["top1_agreement"] >= 0.75 and abs(int8["delta_top1"]) <= 0.10, int8
    assert int8["max_abs_logit_diff"] > 0, "the INT8 IR gives logits of its own, not the FP32 ones"


def test_rows_record_precision_threads_pinning_and_scenario(doc):
    ov_rows = [r for r in doc["rows"] if r["backend"].startswith("openvino")]
    assert {(r["backend"], r["precision"], r["scenario"]) for r in ov_rows} == {
        ("openvino", p, s) for p in ("fp32", "int8") for s in ("latency", "throughput", "testset")} | {
        ("openvino-throughput", "fp32", s) for s in ("throughput", "testset")}
    for r in ov_rows:
        assert r["threads"] == 1 and r["throughput_ips"] > 0
        assert r["extra"]["affinity"] and len(r["extra"]["affinity"]) == 1, "the child was pinned to one core"
        settings = r["extra"]["backend_versions"]["settings"]
        mode = "throughput" if r["backend"] == "openvino-throughput" else "latency"
        assert settings["mode"] == mode and settings["asked"]["PERFORMANCE_HINT"] == mode.upper()
        effective = settings["effective"]
        assert effective["PERFORMANCE_HINT"].lower().endswith(mode), effective
        assert effective["INFERENCE_NUM_THREADS"] == 1 and effective["ENABLE_CPU_PINNING"] in (True, False)
        assert "f32" in effective["INFERENCE_PRECISION_HINT"] or "float32" in effective["INFERENCE_PRECISION_HINT"]
        assert r["extra"]["backend_versions"]["openvino"]
    tput = next(r for r in ov_rows if r["backend"] == "openvino-throughput" and r["scenario"] == "throughput")
    assert tput["extra"]["backend_versions"]["settings"]["requests"] >= 1
    lat = next(r for r in ov_rows if r["id"] == "openvino-fp32-t1-b1-latency")
    assert lat["latency_ms"]["n"] >= 10 and 0 < lat["latency_ms"]["median"] <= lat["latency_ms"]["p99"]
