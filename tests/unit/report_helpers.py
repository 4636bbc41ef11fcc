"""Builders of made-up results documents for the report tests (test data only: never shipped as results).

Imported by tests/unit/test_report*.py and, by path, by tests/integration/test_report_browser.py.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from edgebench import results

# made-up speeds (images per second at 1 thread) and top-1 accuracy of each backend x precision
SPEC = {
    ("keras", "fp32"): (70.0, 0.790),
    ("onnxruntime", "fp32"): (180.0, 0.790),
    ("onnxruntime", "int8"): (320.0, 0.781),
    ("tflite", "int8"): (350.0, None),     # timed, accuracy not measured: must be marked
}


def _latency(rng: np.random.RandomState, mean_ms: float, n: int = 200, spread: float = 0.04) -> Dict[str, Any]:
    raw = (mean_ms * rng.lognormal(0.0, spread, n)).tolist()
    a = np.asarray(raw)
    return {"mean": float(a.mean()), "median": float(np.median(a)), "p90": float(np.percentile(a, 90)),
            "p95": float(np.percentile(a, 95)), "p99": float(np.percentile(a, 99)), "std": float(a.std(ddof=1)),
            "cv": float(a.std(ddof=1) / a.mean()), "min": float(a.min()), "max": float(a.max()), "n": n, "raw": raw}


DATA_CHECKSUM = "cd" * 32
MODEL_SHA = "ab" * 32


def make_doc(device: str = "x86-test", speed: float = 1.0, threads=(1, 2), seed: int = 0,
             spread: float = 0.04, with_failures: bool = True, batches=(1, 8, 32, 64),
             target: Optional[str] = None, image_id: Optional[str] = None, image_digest: Optional[str] = None,
             created: Optional[str] = None, model_sha: str = MODEL_SHA, data_checksum: str = DATA_CHECKSUM,
             test_images: int = 10000) -> Dict[str, Any]:
    """A complete made-up results document; `speed` scales every rate (2.0 = twice as fast).
    `target` / `image_id` / `image_digest` say it ran in a container; the suite records its test set."""
    rng = np.random.RandomState(seed)
    env = {"hostname": device, "os": "Linux 6.1", "python": "3.11.7",
           "cpu": {"model": "Test CPU @ 2.0GHz", "arch": "x86_64", "logical_cores": max(threads),
                   "usable_cores": max(threads), "physical_cores": max(threads), "isa": ["avx2", "avx512f"]},
           "memory_gb": 16.0, "gpus": [], "jetson": None,
           "versions": {"tensorflow-cpu": "2.12.1", "onnxruntime": "1.19.2"}, "git_revision": "0123456789ab",
           "container": {"image": f"edgebench:{target}" if target else None, "image_id": image_id,
                         "image_digest": image_digest, "target": target, "hostname": device}}
    model = {"name": "resnet34-cifar", "path": "model.keras", "sha256": model_sha,
             "flops_per_image": 2318804992, "macs_per_image": 1159402496, "params": 21299146}
    suite = {"name": "test-suite", "test_images": test_images,
             "data": {"source": "cifar10-test.zip", "checksum": data_checksum}}
    doc = results.new_document(device, env, model, suite, git_revision="0123456789abcdef")
    if created:
        doc["created"] = created
    for (backend, precision), (ips1, top1) in SPEC.items():
        acc = None
        if top1 is not None:
            acc = {"top1": top1, "images": 10000, "reference_top1": 0.790, "delta_top1": top1 - 0.790,
                   "max_abs_logit_diff": 0.0 if backend == "keras" else 0.02, "top1_agreement": 0.99}
        size = {"path": f"{backend}-{precision}", "size_bytes": 85_000_000 if precision == "fp32" else 22_000_000,
                "sha256": f"{backend}{precision}"}
        for t in threads:
            ips = ips1 * speed * (t ** 0.85)
            tel = {"cpu_percent_mean": 95.0 * t, "rss_peak_mb": 900.0}
            secs = [10000 / ips * f for f in (1.0, 1.01, 0.99)]
            doc["rows"].append(results.new_row(
                backend, precision, t, 64, "testset", artifact=size, accuracy=acc, telemetry=tel,
                testset={"repeats": 3, "images": 10000, "seconds": secs, "avg_s": sum(secs) / 3,
                         "max_s": max(secs), "min_s": min(secs)}))
            lat = _latency(rng, 1000.0 / (ips * 0.6), spread=spread)
            doc["rows"].append(results.new_row(
                backend, precision, t, 1, "latency", artifact=size, telemetry=tel, latency_ms=lat,
                throughput_ips=1000.0 / lat["mean"], cold_start={"load_s": 1.2, "first_inference_s": 0.3}))
            for b in batches:
                bips = ips * min(1.0, 0.55 + 0.15 * np.log2(b) / 2)
                lat = _latency(rng, b * 1000.0 / bips, n=60, spread=spread)
                doc["rows"].append(results.new_row(
                    backend, precision, t, b, "throughput", artifact=size, telemetry=tel, latency_ms=lat,
                    throughput_ips=b * 1000.0 / lat["mean"]))
    if with_failures:
        doc["rows"].append(results.new_row("tensorrt", "fp16", None, 1, "latency", status="skipped",
                                           reason="TensorRT is not installed on this machine"))
        doc["rows"].append(results.new_row("savedmodel", "fp32", 1, 1, "latency", status="failed",
                                           reason="child process crashed: Segmentation fault (signal 11)"))
    doc["complete"] = True
    return results.validate(doc)


def write(path: Path, doc: Dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))
    return path


def write_set(folder: Path) -> List[Path]:
    """Two runs of one device (the second ~25% faster), a second device, and one corrupt file."""
    folder.mkdir(parents=True, exist_ok=True)
    a = write(folder / "x86-monday.json", make_doc("x86-test", 1.0, seed=1, created="2026-11-23T17:30:00Z"))
    b = write(folder / "x86-friday.json", make_doc("x86-test", 1.25, seed=2, target="x86-cpu",
                                                   image_id="sha256:" + "e1" * 32, created="2026-11-27T17:46:00Z"))
    c = write(folder / "arm.json", make_doc("arm-test", 0.4, threads=(1, 3, 6), seed=3, with_failures=False))
    bad = folder / "truncated.json"
    bad.write_text(a.read_text()[:500])
    return [a, b, c, bad]


def mark_busy(doc: Dict[str, Any], every: int = 2, seed: int = 0) -> Dict[str, Any]:
    """Mark every `every`-th ok row as measured on a busy machine, the way edgebench.machine.load.since and
    bench.rows record it (extra.machine_load with its own numbers, the same text in warnings)."""
    rng = np.random.RandomState(seed)
    for i, r in enumerate(r for r in doc["rows"] if r["status"] == "ok"):
        if i % every:
            continue
        cores, load = float(rng.uniform(0.6, 1.6)), float(rng.uniform(1.0, 3.0))
        text = (f"busy machine: other processes used {cores:.2f} cores on average while this was measured "
                f"(load average {load:.2f} before); the numbers may be low, measure again on a quiet machine")
        r["extra"] = dict(r.get("extra") or {})
        r["extra"]["machine_load"] = {"during": {"other_processes_cores": round(cores, 3)},
                                                     "busy": text}
        r["warnings"] = list(r.get("warnings") or []) + [text]
    return doc


def add_floors(doc: Dict[str, Any], peak_gflops: float, method: str = "measured") -> Dict[str, Any]:
    """A floor on every ok row with a rate, as bench.floor.floor_for writes it (FLOPs over `peak_gflops`)."""
    flops = doc["model"]["flops_per_image"]
    for r in doc["rows"]:
        ips = r.get("throughput_ips") or (r["testset"]["images"] / r["testset"]["avg_s"] if r.get("testset") else None)
        if r["status"] != "ok" or not ips:
            continue
        floor_ms = flops / (peak_gflops * 1e9) * 1000.0
        r["floor"] = {"peak_gflops": peak_gflops, "method": method,
                      "source": f"{method} on this machine" if method == "measured" else f"{method}: test peak",
                      "floor_ms_per_image": floor_ms, "fraction_of_floor": floor_ms / (1000.0 / ips)}
    return doc
