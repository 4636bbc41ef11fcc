"""The reference step: FP32 logits of the reference backend on the test images (the yardstick of every row),
and the model's FLOPs when the reference is the Keras model itself. Runs in a child (bench.child), so a
SIGTERM or Ctrl-C to the harness stops it like any group; cached beside the results."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np

from edgebench.bench.child import Child
from edgebench.bench.errors import BenchError
from edgebench.contracts.vocabulary import NUM_CLASSES
from edgebench.util import atomic_open, atomic_write_json


def reference_child(job: Dict[str, Any], send: Callable[..., None]) -> None:
    from edgebench import models, runtimes

    d = np.load(job["data_file"])
    with runtimes.open(job["backend"], job["artifact"]) as rt:
        t0 = time.perf_counter()
        logits = rt.infer_all(d["x"].astype(np.float32), 256)
        infer_s = time.perf_counter() - t0
        keras_model = getattr(rt, "model", None) if job["backend"].startswith("keras") else None
        complexity = models.count_flops(keras_model) if keras_model is not None else None
        name = keras_model.name if keras_model is not None else None
    with atomic_open(job["out"]) as f:
        np.save(f, logits)
    send("reference", complexity=complexity, name=name, shape=list(logits.shape), infer_seconds=infer_s)


def width_problem(shape, artifact) -> Optional[str]:
    if len(shape) != 2 or shape[1] != NUM_CLASSES:
        return (f"{artifact}: the model's output has shape {tuple(shape[1:])} per image, but the CIFAR-10 test "
                f"set has {NUM_CLASSES} classes (expected ({NUM_CLASSES},)); refusing to benchmark a model whose "
                f"outputs cannot be scored against these labels")
    return None


def compute(backend: str, artifact: Path, data_file: Path, cache: Path, log_file: Optional[Path] = None,
            timeout_s: float = 3600.0) -> Dict[str, Any]:
    """Reference logits into `cache` (.npy) and their metadata (.json beside it); reuses both when present.
    BenchError when the reference fails or the model's output width is not NUM_CLASSES."""
    meta_file = cache.with_suffix(".json")
    if cache.exists() and meta_file.exists():
        try:
            meta = json.loads(meta_file.read_text())
            shape = list(np.load(cache, mmap_mode="r").shape)
        except (OSError, ValueError):
            meta = None
        if meta is not None:
            problem = width_problem(shape, artifact)
            if problem:
                raise BenchError(problem)
            return meta
    msg = None
    job = {"backend": backend, "artifact": str(artifact), "data_file": str(data_file), "out": str(cache),
           "log_file": str(log_file) if log_file else None}
    t0 = time.monotonic()
    with Child(reference_child, job, name="edgebench-reference", timeout_s=timeout_s) as proc:
        for m in proc.messages():
            if m["kind"] == "reference":
                msg = m
    if msg is None:
        why = (proc.error or {}).get("error") or (f"the process died ({proc.death()})" if proc.death() else "no answer")
        raise BenchError(f"reference ({backend} on {artifact}) failed: {why}"
                         + (f"; details in {log_file}" if log_file else ""))
    problem = width_problem(msg["shape"], artifact)
    if problem:
        raise BenchError(problem)
    wall = time.monotonic() - t0
    infer_s = float(msg.get("infer_seconds") or 0.0)
    # this machine's speed, for the suite's time estimate (bench.progress.calibrated): the reference pass's images
    # per second (all cores, batch 256) and the start-up around it (process, framework import, model load)
    timing = {"images": int(msg["shape"][0]), "infer_seconds": infer_s, "load_seconds": max(0.0, wall - infer_s)}
    meta = {"complexity": msg["complexity"], "name": msg["name"], "backend": backend, "timing": timing}
    atomic_write_json(meta_file, meta)
    return meta
