"""The benchmark harness end to end on real backends (Keras, ONNX Runtime, TFLite) and real CIFAR-10 images."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from edgebench import results
from edgebench.bench.harness import run_bench
from edgebench.launchers import BenchRequest

pytestmark = pytest.mark.slow

QUICK = {"latency": {"batch_size": 1, "min_iterations": 10, "min_seconds": 0.3, "warmup_iterations": 2,
                     "warmup_seconds": 0.1},
         "throughput": {"batch_sizes": [8, 64], "min_iterations": 3, "min_seconds": 0.3, "warmup_iterations": 1,
                        "warmup_seconds": 0.1},
         "testset": {"batch_size": 32, "repeats": 2}}


def _suite(tmp_path, runs, name="t", **top):
    doc = dict({"name": name, "threads": [1], "test_images": 256, "scenarios": QUICK, "runs": runs}, **top)
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(doc))
    return str(p)


@pytest.fixture(scope="module")
def artifacts(bench_artifacts):
    """The session's one export of the trained model (tests/integration/conftest.py)."""
    return bench_artifacts


def test_end_to_end_rows(artifacts, cifar_source, tmp_path):
    out = tmp_path / "r.json"
    suite = _suite(tmp_path, [{"backend": "keras"}, {"backend": "onnxruntime", "precisions": ["fp32", "int8"]},
                              {"backend": "tflite"}, {"backend": "tensorrt", "precisions": ["fp16"]}],
                   overhead_check=True)
    run_bench(BenchRequest(artifacts=str(artifacts), out=str(out), suite=suite, data=cifar_source), log=lambda m: None)
    doc = results.load(out)
    assert doc["complete"] and doc["model"]["flops_per_image"] == 149_530_624
    assert doc["environment"]["cpu"]["logical_cores"] >= 1
    rows = {r["id"]: r for r in doc["rows"]}
    ok = [r for r in doc["rows"] if r["status"] == "ok"]
    assert {r["backend"] for r in ok} == {"keras", "onnxruntime", "tflite"}
    for r in ok:
        acc = r["accuracy"]
        assert acc["images"] == 256 and acc["reference_top1"] is not None and acc["top1_agreement"] is not None
        assert r["telemetry"]["cpu_percent_mean"] is not None and r["throughput_ips"] > 0
        assert r["artifact"]["sha256"] and r["cold_start"]["load_s"] > 0
        assert r["gflops_achieved"] > 0 and r["floor"]["peak_gflops"] > 0
    # FP32 backends agree with Keras
    assert rows["onnxruntime-fp32-t1-b8-throughput"]["accuracy"]["max_abs_logit_diff"] < 1e-3
    assert rows["keras-fp32-t1-b32-testset"]["accuracy"]["top1_agreement"] == 1.0
    lat = rows["onnxruntime-fp32-t1-b1-latency"]["latency_ms"]
    assert lat["n"] >= 10 and len(lat["raw"]) == lat["n"] and 0 < lat["median"] <= lat["p99"]
    testset = rows["tflite-fp32-t1-b32-testset"]["testset"]
    assert testset["repeats"] == 2 and testset["min_s"] <= testset["avg_s"] <= testset["max_s"]
    # harness overhead measured beside a bare loop
    assert "overhead" in rows["onnxruntime-fp32-t1-b64-throughput"]["extra"]["harness_overhead"]
    # what this machine lacks is a row with the reason, not a gap
    int8 = rows["onnxruntime-int8-t1-b1-latency"]
    assert int8["status"] == "skipped" and "int8" in int8["reason"]
    trt = rows["tensorrt-fp16-tdef-b1-latency"]
    assert trt["status"] == "skipped" and "tensorrt" in trt["reason"]


def _cpu_percent(artifacts, cifar_source, tmp_path, threads, pin):
    out = tmp_path / f"t{threads}{'-pinned' if pin else ''}.json"
    scen = {"throughput": {"batch_sizes": [64], "min_iterations": 5, "min_seconds": 2.0, "warmup_iterations": 2,
                           "warmup_seconds": 0.3}}
    suite = _suite(tmp_path, [{"backend": "onnxruntime"}], name=f"threads{threads}", threads=[threads],
                   pin_threads=pin, scenarios=scen, test_images=64)
    run_bench(BenchRequest(artifacts=str(artifacts), out=str(out), suite=suite, data=cifar_source), log=lambda m: None)
    row = results.load(out)["rows"][0]
    assert row["status"] == "ok", row["reason"]
    return row


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="thread scaling needs at least 2 cores")
def test_threads_take_effect(artifacts, cifar_source, tmp_path):
    """threads=1 really uses one core: measured CPU%, with the framework setting alone (no pinning)."""
    one = _cpu_percent(artifacts, cifar_source, tmp_path, 1, pin=False)
    two = _cpu_percent(artifacts, cifar_source, tmp_path, 2, pin=False)
    cpu1, cpu2 = one["telemetry"]["cpu_percent_mean"], two["telemetry"]["cpu_percent_mean"]
    assert cpu1 <= 125, f"threads=1 used {cpu1:.0f}% CPU"
    busy = [r["extra"]["machine_load"]["busy"] for r in (one, two) if r["extra"]["machine_load"]["busy"]]
    if busy:  # the harness itself says so: other processes took the cores a second thread would use
        pytest.skip(f"machine too busy to compare thread counts: {busy[0]}")
    assert cpu2 > 1.3 * cpu1, f"threads=2 used {cpu2:.0f}% vs {cpu1:.0f}% at threads=1"
    assert not [w for w in one["warnings"] if "not honoured" in w]
    pinned = _cpu_percent(artifacts, cifar_source, tmp_path, 1, pin=True)
    assert pinned["extra"]["affinity"] == [sorted(os.sched_getaffinity(0))[0]]


def test_crashing_backend_becomes_failed_rows(artifacts, cifar_source, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_BACKENDS", "crash=edgebench_test_backends:Crash")
    monkeypatch.setenv("EDGEBENCH_CRASH_AT", "8")  # after the accuracy pass (64 images / 32) and a few latency calls
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1] / "plugins"))
    out = tmp_path / "crash.json"
    suite = _suite(tmp_path, [{"backend": "crash"}, {"backend": "onnxruntime"}], test_images=64)
    run_bench(BenchRequest(artifacts=str(artifacts), out=str(out), suite=suite, data=cifar_source), log=lambda m: None)
    doc = results.load(out)
    assert doc["complete"]
    crash = [r for r in doc["rows"] if r["backend"] == "crash"]
    assert crash and all(r["status"] == "failed" for r in crash)
    assert "signal 11" in crash[0]["reason"]
    assert crash[0]["accuracy"] is not None  # what it measured before dying is kept
    assert all(r["status"] == "ok" for r in doc["rows"] if r["backend"] == "onnxruntime")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_sweep_keeps_completed_rows(artifacts, cifar_source, tmp_path, sig):
    out = tmp_path / "int.json"
    plugins = str(Path(__file__).resolve().parents[1] / "plugins")
    slow = dict(QUICK, latency=dict(QUICK["latency"], min_seconds=60))
    suite = _suite(tmp_path, [{"backend": "onnxruntime", "scenarios": ["throughput"]},
                              {"backend": "sleepy", "scenarios": ["latency"]}], scenarios=slow, test_images=64)
    env = dict(os.environ, EDGEBENCH_BACKENDS="sleepy=edgebench_test_backends:Sleepy",
               PYTHONPATH=plugins + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "edgebench", "bench", "--artifacts", str(artifacts), "--out",
                             str(out), "--suite", suite, "--data", cifar_source], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a shell's background job inherits SIGINT ignored: give the harness Ctrl-C back
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while time.time() < deadline:
        if _first_group_done(out):
            break
        time.sleep(0.5)
    time.sleep(3)  # the sleepy group is inside its 60 s latency run now
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    doc = results.load(out)  # still a valid file
    assert doc["complete"] is False
    assert [r["backend"] for r in doc["rows"]] == ["onnxruntime", "onnxruntime"]
    assert all(r["status"] == "ok" for r in doc["rows"])
    assert "interrupted" in err and "Traceback" not in err


def _first_group_done(out):
    """The results file is rewritten after every row: both onnxruntime rows in means the sleepy group runs."""
    try:
        return len(json.loads(out.read_text()).get("rows", [])) >= 2
    except (OSError, ValueError):
        return False


def test_resume_keeps_completed_groups(artifacts, cifar_source, tmp_path):
    """A run cut after its first group (as an interruption leaves it: that group's rows, complete false);
    --resume with the same request keeps those rows as measured and measures the rest; a resume with another
    --only is refused, since it would write complete: true with a backend's rows missing (issue 20)."""
    import json

    from edgebench.bench.errors import BenchError

    out = tmp_path / "res.json"
    suite = _suite(tmp_path, [{"backend": "onnxruntime", "scenarios": ["latency"]},
                              {"backend": "tflite", "scenarios": ["latency"]}], name="b", test_images=64)
    request = dict(artifacts=str(artifacts), out=str(out), suite=suite, data=cifar_source)
    run_bench(BenchRequest(**request), log=lambda m: None)
    doc = json.loads(out.read_text())
    doc["rows"] = [r for r in doc["rows"] if r["backend"] == "onnxruntime"]
    doc["complete"] = False
    out.write_text(json.dumps(doc))
    before = results.load(out)["rows"]
    with pytest.raises(BenchError, match="--only differs"):
        run_bench(BenchRequest(**request, resume=True, only=["tflite"]), log=lambda m: None)
    logs = []
    run_bench(BenchRequest(**request, resume=True), log=logs.append)
    after = results.load(out)
    assert after["complete"] and after["rows"][0] == before[0]  # kept as measured, not measured again
    assert [r["backend"] for r in after["rows"]] == ["onnxruntime", "tflite"]
    assert any("done in the run being resumed" in m for m in logs) and len(after["resumed"]) == 1


def test_trust_1_artifact_copied_over_another_refused(artifacts, cifar_source, tmp_path):
    """The issue's case: one artifact copied over another; the harness refuses before measuring anything."""
    from edgebench.bench.errors import BenchError
    from edgebench.util import sha256_file

    copy = tmp_path / "copied"
    shutil.copytree(artifacts, copy)
    expected = sha256_file(copy / "model.onnx")
    shutil.copy(copy / "model.keras", copy / "model.onnx")
    out = tmp_path / "r.json"
    suite = _suite(tmp_path, [{"backend": "onnxruntime", "scenarios": ["latency"]}], test_images=64)
    with pytest.raises(BenchError) as err:
        run_bench(BenchRequest(artifacts=str(copy), out=str(out), suite=suite, data=cifar_source), log=lambda m: None)
    assert expected in str(err.value) and sha256_file(copy / "model.onnx") in str(err.value)
    assert not out.exists()


def test_trust_8_seven_class_model_refused(cifar_source, tmp_path):
    """A real Keras model with 7 outputs, with a manifest that matches it: refused at the reference step."""
    import tensorflow as tf

    from edgebench.bench.errors import BenchError
    from edgebench.export import manifest as manifest_mod
    from edgebench.util import sha256_file

    art = tmp_path / "seven"
    art.mkdir()
    inputs = tf.keras.Input((32, 32, 3), name="image")
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(7)(tf.keras.layers.GlobalAveragePooling2D()(inputs)))
    model.save(art / "model.keras")
    man = manifest_mod.new(art / "model.keras", "seven", sha256_file(art / "model.keras"), None)
    manifest_mod.write(art, man)
    suite = _suite(tmp_path, [{"backend": "keras-call", "scenarios": ["latency"]}], test_images=64)
    with pytest.raises(BenchError, match=r"\(7,\).*10 classes"):
        run_bench(BenchRequest(artifacts=str(art), out=str(tmp_path / "r.json"), suite=suite, data=cifar_source),
                  log=lambda m: None)
