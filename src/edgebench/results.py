"""The results JSON: one file per `edgebench bench` invocation, versioned, written atomically.

Layout (schema "edgebench.results", version 1):

    {
      "schema": "edgebench.results", "schema_version": 1,
      "created": ISO-8601 UTC, "kit": {"version", "git_revision"},
      "device": name given by the user ("local", "orin-nano-01", ...),
      "imported": null | {"source": text, "note": text}       # transcribed measurements, not ours
      "environment": fingerprint (edgebench.bench.fingerprint.collect()),
      "model": {"name", "path", "sha256", "flops_per_image", "macs_per_image", "params"},
      "suite": the suite that was run,
      "complete": false while the sweep runs, true at its end,
      "rows": [row, ...]
    }

A row is one backend x precision x threads x batch size x scenario:

    {
      "id", "backend", "precision", "threads" (int or null = framework default), "batch_size", "scenario",
      "status": "ok" | "failed" | "skipped", "reason": null | text (why it failed or was skipped),
      "artifact": {"path", "size_bytes", "sha256"} | null,
      "cold_start": {"load_s", "first_inference_s"} | null,
      "latency_ms": stats of per-iteration (per-batch) latencies, raw values included | null,
      "throughput_ips": images per second | null,
      "testset": {"repeats", "images", "seconds": [...], "avg_s", "max_s", "min_s"} | null,
      "accuracy": {"top1", "images", "reference_top1", "delta_top1", "max_abs_logit_diff", "top1_agreement"} | null,
      "telemetry": {"cpu_percent_mean", "cpu_percent_max", "per_core_percent_mean", "rss_peak_mb",
                    "gpu_util_mean", "gpu_mem_mb", "power_w_mean", "energy_j_per_image", ...} | null,
      "gflops_achieved": float | null, "floor": {...} | null, "warnings": [text, ...],
      "extra": {...} | null,  # affinity, backend versions, harness overhead, traceback of a failure
      "compute": "cpu" | "gpu" | null   # where the backend runs its arithmetic
    }
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from edgebench import __version__
from edgebench.util import atomic_write_json

SCHEMA = "edgebench.results"
SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "skipped")
SCENARIOS = ("latency", "throughput", "testset")
ROW_KEYS = (
    "id", "backend", "precision", "threads", "batch_size", "scenario", "status", "reason", "artifact",
    "cold_start", "latency_ms", "throughput_ips", "testset", "accuracy", "telemetry", "gflops_achieved",
    "floor", "warnings", "extra", "compute",
)


class ResultsError(ValueError):
    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def row_id(backend: str, precision: str, threads: Optional[int], batch_size: int, scenario: str) -> str:
    t = "tdef" if threads is None else f"t{threads}"
    return f"{backend}-{precision}-{t}-b{batch_size}-{scenario}"


def new_row(backend: str, precision: str, threads: Optional[int], batch_size: int, scenario: str,
            status: str = "ok", reason: Optional[str] = None, **fields: Any) -> Dict[str, Any]:
    if status not in STATUSES:
        raise ValueError(f"row status must be one of {STATUSES}, not {status!r}")
    row: Dict[str, Any] = {k: None for k in ROW_KEYS}
    row.update(id=row_id(backend, precision, threads, batch_size, scenario), backend=backend,
               precision=precision, threads=threads, batch_size=batch_size, scenario=scenario,
               status=status, reason=reason, warnings=[])
    unknown = set(fields) - set(ROW_KEYS)
    if unknown:
        raise ValueError(f"unknown row fields: {sorted(unknown)}")
    row.update(fields)
    return row


def new_document(device: str, environment: Dict[str, Any], model: Dict[str, Any], suite: Dict[str, Any],
                 git_revision: Optional[str] = None, imported: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "kit": {"version": __version__, "git_revision": git_revision},
        "device": device,
        "imported": imported,
        "environment": environment,
        "model": model,
        "suite": suite,
        "complete": False,
        "rows": [],
    }


class ResultsWriter:
    """Holds one results document and rewrites it atomically after every row, so completed rows
    survive an interrupted sweep or a crashed backend."""

    def __init__(self, path, document: Dict[str, Any]):
        self.path = Path(path)
        self.document = document
        self.flush()

    def add(self, row: Dict[str, Any]) -> None:
        self.document["rows"].append(row)
        self.flush()

    def finish(self) -> None:
        self.document["complete"] = True
        self.flush()

    def flush(self) -> None:
        atomic_write_json(self.path, self.document)


def _upgrade(doc: Dict[str, Any], path) -> Dict[str, Any]:
    """Bring an older schema version up to the current one, or refuse it with a clear message."""
    version = doc.get("schema_version")
    if version == SCHEMA_VERSION:
        return doc
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise ResultsError(path, f"schema version {version} is newer than this kit understands "
                                 f"({SCHEMA_VERSION}); upgrade edgebench to read it")
    raise ResultsError(path, f"schema version {version!r} cannot be upgraded (this kit reads {SCHEMA_VERSION})")


def validate(doc: Any, path="<results>") -> Dict[str, Any]:
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ResultsError(path, f"not an edgebench results file (no \"schema\": \"{SCHEMA}\")")
    doc = _upgrade(doc, path)
    rows = doc.get("rows")
    if not isinstance(rows, list):
        raise ResultsError(path, "\"rows\" is missing or not a list")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise ResultsError(path, f"row {i} is not an object")
        missing = [k for k in ("backend", "precision", "scenario", "status") if k not in row]
        if missing:
            raise ResultsError(path, f"row {i} ({row.get('id', '?')}) lacks {', '.join(missing)}")
        if row["status"] not in STATUSES:
            raise ResultsError(path, f"row {i} ({row.get('id', '?')}) has unknown status {row['status']!r}")
    return doc


def load(path) -> Dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ResultsError(p, f"cannot read ({exc.strerror or exc})") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(p, f"corrupt JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    return validate(doc, p)


def load_many(paths: Iterable) -> "tuple[List[Dict[str, Any]], List[ResultsError]]":
    """Load every readable file; return the documents and the errors of the files that were skipped."""
    docs, errors = [], []
    for p in paths:
        try:
            docs.append(load(p))
        except ResultsError as exc:
            errors.append(exc)
    return docs, errors
