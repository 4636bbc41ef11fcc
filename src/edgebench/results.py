"""The results JSON: one file per `edgebench bench` invocation, versioned, written atomically.

Typed in code: `ResultsDocument` and `Row` (dataclasses with to_dict/from_dict). Every file is checked
field by field when it is loaded and before it is written; any malformed input is a `ResultsError` naming
the file and the field, never a raw KeyError or TypeError. The dict functions below (new_row, new_document,
ResultsWriter, load) stay the API the harness and the report use; the typed layer sits underneath.

Layout (schema "edgebench.results", version 1):

    {
      "schema": "edgebench.results", "schema_version": 1,
      "created": ISO-8601 UTC, "kit": {"version", "git_revision"},
      "device": name given by the user ("local", "orin-nano-01", ...),
      "imported": null | {"source": text, "note": text}       # transcribed measurements, not ours
      "environment": fingerprint (edgebench.machine.fingerprint.collect()),
      "model": {"name", "path", "sha256", "flops_per_image", "macs_per_image", "params"},
      "suite": the suite that was run,
      "complete": false while the sweep runs, true at its end,
      "rows": [row, ...],
      ... other top-level keys (resumed, wall_seconds, notes, ...) are kept as they are
    }

A row is one backend x precision x threads x batch size x scenario:

    {
      "id", "backend", "precision", "threads" (int or null = framework default), "batch_size", "scenario",
      "status": "ok" | "failed" | "skipped", "reason": null | text (why it failed or was skipped),
      "artifact": {"path", "size_bytes", "sha256"} | null,
      "cold_start": {"load_s", "first_inference_s"} | null,
      "latency_ms": stats of per-iteration (per-batch) latencies in milliseconds, raw values included | null,
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple

from edgebench import __version__
from edgebench.contracts.schema import (
    Anything,
    Int,
    List_,
    Map,
    Null,
    Num,
    SchemaProblem,
    Str,
    check,
    check_header,
    need,
    numbers,
    numeric_dict,
)
from edgebench.errors import EdgebenchError
from edgebench.util import atomic_write_json

SCHEMA = "edgebench.results"
SCHEMA_VERSION = 1
STATUSES = ("ok", "failed", "skipped")
SCENARIOS = ("latency", "throughput", "testset")
COMPUTE = ("cpu", "gpu")
ROW_KEYS = (
    "id", "backend", "precision", "threads", "batch_size", "scenario", "status", "reason", "artifact",
    "cold_start", "latency_ms", "throughput_ips", "testset", "accuracy", "telemetry", "gflops_achieved",
    "floor", "warnings", "extra", "compute",
)
DOCUMENT_KEYS = ("schema", "schema_version", "created", "kit", "device", "imported", "environment", "model",
                 "suite", "complete", "rows")


# Ranges of every number the report ranks or divides by (issue 20): a lower and an upper bound each, far
# outside any real measurement, so `testset.images = 2**63` or 1e308 img/s is refused at load.
_N = Null()
_SECONDS = Num(0, 1e7) | _N
_COUNT = Int(0, 10 ** 9) | _N
ROW_SPEC = Map({
    "threads": Int(1, 4096) | _N, "batch_size": Int(0, 1 << 20) | _N,
    "throughput_ips": Num(0, 1e9) | _N, "gflops_achieved": Num(0, 1e9) | _N,
    "testset": Map({"repeats": Int(1, 10000) | _N, "images": Int(1, 10 ** 8) | _N, "seconds": List_(Num(0, 1e7)) | _N,
                    "avg_s": _SECONDS, "max_s": _SECONDS, "min_s": _SECONDS}, extra=Anything()) | _N,
    "accuracy": Map({"top1": Num(0, 1) | _N, "images": _COUNT, "reference_top1": Num(0, 1) | _N,
                     "delta_top1": Num(-1, 1) | _N, "top1_agreement": Num(0, 1) | _N,
                     "max_abs_logit_diff": Num(0, 1e30) | _N}, extra=Anything()) | _N,
    "latency_ms": Map({"n": _COUNT, "raw": List_(Num(0, 1e9)) | _N, **{k: Num(0, 1e9) | _N for k in (
        "mean", "median", "p50", "p90", "p95", "p99", "min", "max")}}, extra=Anything()) | _N,
}, extra=Anything())
IMPORTED_SPEC = Map({"source": Str(max_len=2000), "note": Str(max_len=20000) | _N}, required=("source",),
                    extra=Anything())


class ResultsError(EdgebenchError, ValueError):
    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class RowError(ResultsError):
    """A row built with a status or field the schema does not have (no file yet to name)."""

    def __init__(self, reason: str):
        EdgebenchError.__init__(self, reason)
        self.path = None
        self.reason = reason


def row_id(backend: str, precision: str, threads: Optional[int], batch_size: int, scenario: str) -> str:
    t = "tdef" if threads is None else f"t{threads}"
    return f"{backend}-{precision}-{t}-b{batch_size}-{scenario}"


# --- the typed layer ------------------------------------------------------------------------------

@dataclass
class Row:
    """One backend x precision x threads x batch size x scenario. Units are in the field names:
    latency_ms (milliseconds), throughput_ips (images per second), gflops_achieved (GFLOP/s)."""

    backend: str
    precision: str
    scenario: str
    status: str
    threads: Optional[int] = None
    batch_size: Optional[int] = None
    id: Optional[str] = None
    reason: Optional[str] = None
    artifact: Optional[Dict[str, Any]] = None
    cold_start: Optional[Dict[str, Any]] = None
    latency_ms: Optional[Dict[str, Any]] = None
    throughput_ips: Optional[float] = None
    testset: Optional[Dict[str, Any]] = None
    accuracy: Optional[Dict[str, Any]] = None
    telemetry: Optional[Dict[str, Any]] = None
    gflops_achieved: Optional[float] = None
    floor: Optional[Dict[str, Any]] = None
    warnings: List[str] = field(default_factory=list)
    extra: Optional[Dict[str, Any]] = None
    compute: Optional[str] = None
    other: Dict[str, Any] = field(default_factory=dict)  # fields a newer writer added: kept as they are

    @classmethod
    def from_dict(cls, d: Any, where: str = "row") -> "Row":
        """Check every field of a row dict; SchemaProblem names the first bad one."""
        if not isinstance(d, dict):
            raise SchemaProblem(f"{where}: expected an object, got {type(d).__name__}")
        where = f"{where} ({d['id']})" if isinstance(d.get("id"), str) else where
        row = cls(backend=need(d, "backend", "str", where), precision=need(d, "precision", "str", where),
                  scenario=need(d, "scenario", "str", where, choices=SCENARIOS),
                  status=need(d, "status", "str", where, choices=STATUSES),
                  threads=need(d, "threads", "int", where, required=False, none_ok=True),
                  batch_size=need(d, "batch_size", "int", where, required=False, none_ok=True),
                  id=need(d, "id", "str", where, required=False, none_ok=True),
                  reason=need(d, "reason", "str", where, required=False, none_ok=True),
                  throughput_ips=need(d, "throughput_ips", "num", where, required=False, none_ok=True),
                  gflops_achieved=need(d, "gflops_achieved", "num", where, required=False, none_ok=True),
                  compute=need(d, "compute", "str", where, required=False, none_ok=True, choices=COMPUTE + (None,)),
                  warnings=list(need(d, "warnings", "list", where, required=False, none_ok=True) or []))
        if row.threads is not None and row.threads < 1:
            raise SchemaProblem(f"{where}.threads: {row.threads} is not a thread count (>= 1, or null)")
        if row.batch_size is not None and row.batch_size < 0:
            raise SchemaProblem(f"{where}.batch_size: {row.batch_size} is negative")
        if not all(isinstance(w, str) for w in row.warnings):
            raise SchemaProblem(f"{where}.warnings: every warning must be a string")
        for name in ("artifact", "testset", "telemetry", "floor", "extra", "cold_start", "accuracy"):
            setattr(row, name, need(d, name, "dict", where, required=False, none_ok=True))
        row.latency_ms = need(d, "latency_ms", "dict", where, required=False, none_ok=True)
        numeric_dict(row.latency_ms, f"{where}.latency_ms", lists=("raw",))
        numeric_dict(row.cold_start, f"{where}.cold_start")
        numeric_dict(row.accuracy, f"{where}.accuracy")
        numeric_dict(row.testset, f"{where}.testset", lists=("seconds",))
        if row.testset is not None and isinstance(row.testset.get("seconds"), list):
            numbers(row.testset["seconds"], f"{where}.testset.seconds")
        check(d, ROW_SPEC, where)
        row.other = {k: v for k, v in d.items() if k not in ROW_KEYS}
        return row

    def to_dict(self) -> Dict[str, Any]:
        out = {k: getattr(self, k) for k in ROW_KEYS}
        out["warnings"] = list(self.warnings)
        out.update(self.other)
        return out


@dataclass
class ResultsDocument:
    """One results file. `other` keeps top-level keys beyond the schema's own (resumed, wall_seconds, notes)."""

    device: str
    environment: Dict[str, Any]
    model: Dict[str, Any]
    suite: Dict[str, Any]
    created: str = ""
    kit: Optional[Dict[str, Any]] = None
    imported: Optional[Dict[str, Any]] = None
    complete: bool = False
    rows: List[Row] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION
    other: Dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Any) -> "ResultsDocument":
        """Check the header (one place: contracts.schema.check_header), upgrade an older version, check
        every field and row; SchemaProblem names the first problem."""
        version = check_header(d, SCHEMA, SCHEMA_VERSION, "results file")
        d = upgrade(d, version)
        rows = need(d, "rows", "list", "results")
        doc = cls(device=need(d, "device", "str", "results"), environment=need(d, "environment", "dict", "results"),
                  model=need(d, "model", "dict", "results"), suite=need(d, "suite", "dict", "results"),
                  created=need(d, "created", "str", "results", required=False, none_ok=True) or "",
                  kit=need(d, "kit", "dict", "results", required=False, none_ok=True),
                  imported=need(d, "imported", "dict", "results", required=False, none_ok=True),
                  complete=bool(need(d, "complete", "bool", "results", required=False, none_ok=True)),
                  rows=[Row.from_dict(r, f"row {i}") for i, r in enumerate(rows)])
        if doc.imported is not None:
            check(doc.imported, IMPORTED_SPEC, "results.imported")
            doc.imported = {"note": None, **doc.imported}   # every reader (the templates) finds both keys
        doc.other = {k: v for k, v in d.items() if k not in DOCUMENT_KEYS}
        return doc

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"schema": SCHEMA, "schema_version": self.schema_version, "created": self.created,
                               "kit": self.kit, "device": self.device, "imported": self.imported,
                               "environment": self.environment, "model": self.model, "suite": self.suite,
                               "complete": self.complete, "rows": [r.to_dict() for r in self.rows]}
        out.update(self.other)
        return out


def upgrade(doc: Dict[str, Any], version: int) -> Dict[str, Any]:
    """Bring an older schema version up to the current one (there is only version 1 so far)."""
    return doc


# --- the dict API (the harness and the report) ------------------------------------------------------

def new_row(backend: str, precision: str, threads: Optional[int], batch_size: int, scenario: str,
            status: str = "ok", reason: Optional[str] = None, **fields: Any) -> Dict[str, Any]:
    if status not in STATUSES:
        raise RowError(f"row status must be one of {STATUSES}, not {status!r}")
    row: Dict[str, Any] = {k: None for k in ROW_KEYS}
    row.update(id=row_id(backend, precision, threads, batch_size, scenario), backend=backend,
               precision=precision, threads=threads, batch_size=batch_size, scenario=scenario,
               status=status, reason=reason, warnings=[])
    unknown = set(fields) - set(ROW_KEYS)
    if unknown:
        raise RowError(f"unknown row fields: {sorted(unknown)}")
    row.update(fields)
    return row


def new_document(device: str, environment: Dict[str, Any], model: Dict[str, Any], suite: Dict[str, Any],
                 git_revision: Optional[str] = None, imported: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    return ResultsDocument(device=device, environment=environment, model=model, suite=suite,
                           created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           kit={"version": __version__, "git_revision": git_revision}, imported=imported).to_dict()


class ResultsWriter:
    """Holds one results document and rewrites it atomically after every row, so completed rows
    survive an interrupted sweep or a crashed backend. The document is checked before every write
    (the header each time, each row once): a malformed row is refused (ResultsError) and the file on
    disk stays the last valid one."""

    def __init__(self, path, document: Dict[str, Any]):
        self.path = Path(path)
        self.document = document
        self._checked = 0  # rows already checked
        self.flush()

    def add(self, row: Dict[str, Any]) -> None:
        try:
            Row.from_dict(row, f"row {len(self.document['rows'])}")
        except SchemaProblem as exc:
            raise ResultsError(self.path, f"refusing to write a malformed row: {exc}") from None
        self.document["rows"].append(row)
        self.flush()

    def finish(self) -> None:
        self.document["complete"] = True
        self.flush()

    def flush(self) -> None:
        try:
            rows = self.document.get("rows") if isinstance(self.document, dict) else None
            if not isinstance(rows, list):
                raise SchemaProblem("results: \"rows\" must be a list")
            ResultsDocument.from_dict(dict(self.document, rows=[]))
            if self._checked > len(rows):
                self._checked = 0
            for i in range(self._checked, len(rows)):
                Row.from_dict(rows[i], f"row {i}")
        except SchemaProblem as exc:
            raise ResultsError(self.path, f"refusing to write a malformed results document: {exc}") from None
        self._checked = len(rows)
        atomic_write_json(self.path, self.document)


def validate(doc: Any, path="<results>") -> Dict[str, Any]:
    """The document as a plain dict, checked field by field; ResultsError (with `path`) when malformed."""
    try:
        return ResultsDocument.from_dict(doc).to_dict()
    except SchemaProblem as exc:
        raise ResultsError(path, str(exc)) from None
    except RecursionError:
        raise ResultsError(path, "nested too deeply to be a results file") from None


def load_typed(path) -> ResultsDocument:
    return ResultsDocument.from_dict(load(path))


def load(path) -> Dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ResultsError(p, f"cannot read ({reason})") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(p, f"corrupt JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    except (ValueError, RecursionError) as exc:
        raise ResultsError(p, f"corrupt JSON: {exc}") from exc
    return validate(doc, p)


def load_many(paths: Iterable) -> Tuple[List[Dict[str, Any]], List[ResultsError]]:
    """Load every readable file; return the documents and the errors of the files that were skipped."""
    docs, errors = [], []
    for p in paths:
        try:
            docs.append(load(p))
        except ResultsError as exc:
            errors.append(exc)
    return docs, errors
