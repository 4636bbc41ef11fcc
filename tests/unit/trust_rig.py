"""A hermetic bench rig for the Trust tests: a tiny CIFAR-10 folder, an artifacts folder with a real export
manifest, numpy backends (tests/plugins/edgebench_trust_backends.py), and `edgebench bench` run as a user
runs it (a subprocess), so exit codes, stderr and files are what a user sees."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import List

import numpy as np
import yaml

from edgebench.export import manifest as manifest_mod
from edgebench.util import sha256_file

REPO = Path(__file__).resolve().parents[2]
PLUGINS = REPO / "tests" / "plugins"
BACKENDS = ("quick=edgebench_trust_backends:Quick,hang=edgebench_trust_backends:Hang,"
            "width7=edgebench_trust_backends:Width7,crash=edgebench_test_backends:Crash")
QUICK_SCENARIOS = {"latency": {"batch_size": 1, "min_iterations": 3, "min_seconds": 0.02, "warmup_iterations": 1,
                               "warmup_seconds": 0.0},
                   "testset": {"batch_size": 16, "repeats": 2}}


def make_cifar(root: Path, test_images: int = 48) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(0)
    for i in range(1, 6):
        (root / f"data_batch_{i}").write_bytes(pickle.dumps(
            {b"data": rng.randint(0, 256, (4, 3072), dtype=np.uint8),
             b"labels": [int(v) for v in rng.randint(0, 10, 4)]}))
    (root / "test_batch").write_bytes(pickle.dumps(
        {b"data": rng.randint(0, 256, (test_images, 3072), dtype=np.uint8),
         b"labels": [int(v) for v in rng.randint(0, 10, test_images)]}))
    return root


def make_artifacts(root: Path) -> Path:
    """model.keras (bytes the numpy backends never parse) and a manifest recording its sha256."""
    root.mkdir(parents=True, exist_ok=True)
    model = root / "model.keras"
    model.write_bytes(b"edgebench test model " + os.urandom(64))
    sha = sha256_file(model)
    man = manifest_mod.new(model, "test-model", sha, None)
    man["artifacts"].append({"name": "keras-fp32", "format": "keras", "precision": "fp32", "path": "model.keras",
                             "status": "ok", "error": None, "size_bytes": model.stat().st_size, "sha256": sha,
                             "tools": {}, "applied": [], "options": {}, "export_seconds": 0.0, "parity": None})
    manifest_mod.write(root, man)
    return root


def write_suite(path: Path, runs=None, **top) -> Path:
    doc = dict({"name": path.stem, "threads": [1], "test_images": 32, "scenarios": QUICK_SCENARIOS,
                "runs": runs or [{"backend": "quick"}]}, **top)
    path.write_text(yaml.safe_dump(doc))
    return path


def env(**extra) -> dict:
    e = dict(os.environ, EDGEBENCH_BACKENDS=BACKENDS,
             PYTHONPATH=os.pathsep.join([str(PLUGINS), str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    e.update({k: str(v) for k, v in extra.items()})
    return e


def bench_argv(artifacts: Path, out: Path, suite: Path, data: Path, *more: str, reference: str = "quick") -> List[str]:
    return [sys.executable, "-m", "edgebench", "bench", "--artifacts", str(artifacts), "--out", str(out), "--suite",
            str(suite), "--data", str(data), "--reference", reference, *more]


def bench(*args, timeout: float = 180, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(bench_argv(*args, **kw), env=env(), capture_output=True, text=True, timeout=timeout)
