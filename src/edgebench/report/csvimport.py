"""Import measurements made elsewhere (a paper, a spreadsheet, another tool) from CSV into results
documents marked `"imported"`, so they render and compare like our own runs.

CSV columns (header row required; names are case-insensitive; empty cell = unknown):

    backend          required: keras, tflite, onnxruntime, ... (what ran)
    scenario         required: testset | latency | throughput
    device           device name; one results document per distinct device (default: --device)
    precision        fp32 (default), fp16, int8, ...
    threads          integer, or empty / "default" for the framework default
    batch_size       integer, or empty when not known
    status           ok (default) | failed | skipped
    reason           why a row failed or was skipped
    avg_s, max_s, min_s, repeats, images      a test-set pass: seconds per pass and its size
    mean_ms, p50_ms, p90_ms, p95_ms, p99_ms, min_ms, max_ms, std_ms           latency statistics
    throughput_ips   images per second
    top1             top-1 accuracy: a fraction 0..1 (0.791), or a percent written with its sign (79.1%);
                     a bare number above 1 is refused (no unit is guessed)
    size_mb          artifact size in MB (10^6 bytes)
    cpu_percent, power_w, energy_j_per_image, gpu_util    telemetry, where known
    gflops           achieved GFLOP/s
    note             free text, kept as a warning on the row

Every document gets `"imported": {"source", "note"}`: the source is required, so a reader always
knows where the numbers come from. Numbers are never invented: a missing cell stays null.
"""
from __future__ import annotations

import csv
import functools
import math
from pathlib import Path
from typing import Any, Dict, List, Optional

from edgebench import results
from edgebench.contracts.vocabulary import PRECISIONS

COLUMNS = (
    "backend", "scenario", "device", "precision", "threads", "batch_size", "status", "reason",
    "avg_s", "max_s", "min_s", "repeats", "images",
    "mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "min_ms", "max_ms", "std_ms",
    "throughput_ips", "top1", "size_mb", "cpu_percent", "power_w", "energy_j_per_image", "gpu_util", "gflops",
    "note",
)

#: the CSV's schema for numbers (issue 20): each column's allowed range, lower and upper bound, in its unit
#: (a bare top1 above 1 gets its own message below)
RANGES = {"avg_s": (0, 1e7), "max_s": (0, 1e7), "min_s": (0, 1e7), "repeats": (1, 10000), "images": (1, 10 ** 8),
          "threads": (1, 4096), "batch_size": (1, 1 << 20), "throughput_ips": (0, 1e9), "top1": (0, 100),
          "size_mb": (0, 1e6), "cpu_percent": (0, 100 * 4096), "power_w": (0, 1e5), "energy_j_per_image": (0, 1e6),
          "gpu_util": (0, 100), "gflops": (0, 1e9),
          **{c: (0, 1e9) for c in ("mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "min_ms", "max_ms", "std_ms")}}


def _cell_float(rec: Dict[str, str], path, line: int, column: str) -> Optional[float]:
    return _float(rec.get(column, ""), path, line, column)


def _float(text: str, path, line: int, column: str) -> Optional[float]:
    t = (text or "").strip().replace(",", "")
    if t.lower() in ("", "-", "n/a", "na", "null", "none"):
        return None
    percent = t.endswith("%")
    if percent and column != "top1":
        raise results.ResultsError(path, f"line {line}: column {column!r} takes a plain number, "
                                         f"not a percent: {text!r}")
    try:
        v = float(t[:-1] if percent else t)
    except ValueError:
        raise results.ResultsError(path, f"line {line}: column {column!r} is not a number: {text!r}") from None
    v = v / 100.0 if percent else v
    lo, hi = RANGES.get(column, (0, 1e9))
    if not math.isfinite(v) or not lo <= v <= hi:
        raise results.ResultsError(path, f"line {line}: column {column!r} must be a number in [{lo:g}, {hi:g}], "
                                         f"not {text!r}")
    return v


def _int(text: str, path, line: int, column: str) -> Optional[int]:
    t = (text or "").strip().lower()
    if t in ("", "default", "framework default", "-", "n/a", "null", "none"):
        return None
    v = _float(t, path, line, column)
    if v is None or v != int(v) or v < 1 or v > 1e9:
        raise results.ResultsError(path, f"line {line}: column {column!r} must be a positive integer, not {text!r}")
    return int(v)


def import_csv(path, source: Optional[str] = None, note: Optional[str] = None, device: Optional[str] = None,
               model: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
    """Read a CSV of external measurements; return one validated results document per device."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise results.ResultsError(p, f"cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise results.ResultsError(p, f"not UTF-8 text (byte {exc.start}): save the CSV as UTF-8") from None
    try:
        return _documents(p, text, source, note, device, model)
    except csv.Error as exc:
        raise results.ResultsError(p, f"not a readable CSV ({exc})") from None
    except results.ResultsError:
        raise
    except (ValueError, TypeError, OverflowError) as exc:   # a value our checks let through: still our error
        raise results.ResultsError(p, f"cannot import ({type(exc).__name__}: {exc})") from None


def _check_header(p: Path, reader: Any, text: str, source: Optional[str]) -> None:
    """The header names known columns once each, with backend and scenario; a source is given; the file
    is not cut."""
    if not reader.fieldnames:
        raise results.ResultsError(p, "empty CSV (a header row is required)")
    fields = [(f or "").strip().lower() for f in reader.fieldnames]
    if len(set(fields)) != len(fields):
        raise results.ResultsError(p, f"repeated CSV columns in the header: {fields}")
    unknown = sorted(set(fields) - set(COLUMNS))
    if unknown:
        raise results.ResultsError(p, f"unknown CSV columns {unknown}; known: {', '.join(COLUMNS)}")
    for required in ("backend", "scenario"):
        if required not in fields:
            raise results.ResultsError(p, f"CSV lacks the required column {required!r}")
    if not source:
        raise results.ResultsError(p, "an imported measurement needs its source (--source TEXT)")
    if text.strip() and not text.endswith(("\n", "\r")):
        raise results.ResultsError(p, f"the last line ({len(text.splitlines())}) has no line end: the file looks "
                                      f"cut (a truncated copy?); refused rather than import a cut value. Add the "
                                      f"final newline if the file is complete")


def _measured_fields(rec: Dict[str, str], p: Path, n: int, f: Any) -> Dict[str, Any]:
    """A CSV line's measurements as results-row fields (test set, latency, throughput, accuracy, size,
    telemetry, GFLOP/s)."""
    fields_: Dict[str, Any] = {}
    if any(rec.get(c) for c in ("avg_s", "max_s", "min_s")):
        fields_["testset"] = {"avg_s": f("avg_s"), "max_s": f("max_s"), "min_s": f("min_s"),
                              "repeats": _int(rec.get("repeats", ""), p, n, "repeats"),
                              "images": _int(rec.get("images", ""), p, n, "images"), "seconds": None}
    lat_cols = ("mean_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "min_ms", "max_ms", "std_ms")
    if any(rec.get(c) for c in lat_cols):
        lat = {"mean": f("mean_ms"), "median": f("p50_ms"), "p90": f("p90_ms"), "p95": f("p95_ms"),
               "p99": f("p99_ms"), "min": f("min_ms"), "max": f("max_ms"), "std": f("std_ms"),
               "n": None, "raw": None}
        lat["cv"] = lat["std"] / lat["mean"] if lat["std"] is not None and lat["mean"] else None
        fields_["latency_ms"] = lat
    fields_["throughput_ips"] = f("throughput_ips")
    top1 = f("top1")
    if top1 is not None and top1 > 1.0:
        raise results.ResultsError(p, f"line {n}: top1 {rec.get('top1')!r} is not a fraction 0..1; write a "
                                      f"percent with its sign ({rec.get('top1')}%)")
    if top1 is not None:
        fields_["accuracy"] = {"top1": top1, "images": None,
                               "reference_top1": None, "delta_top1": None, "max_abs_logit_diff": None,
                               "top1_agreement": None}
    size = f("size_mb")
    if size is not None:
        fields_["artifact"] = {"path": None, "size_bytes": int(size * 1e6), "sha256": None}
    tel = {"cpu_percent_mean": f("cpu_percent"), "power_w_mean": f("power_w"),
           "energy_j_per_image": f("energy_j_per_image"), "gpu_util_mean": f("gpu_util")}
    if any(v is not None for v in tel.values()):
        fields_["telemetry"] = tel
    fields_["gflops_achieved"] = f("gflops")
    return fields_


def _documents(p: Path, text: str, source: Optional[str], note: Optional[str], device: Optional[str],
               model: Optional[Dict[str, Any]]) -> List[Dict[str, Any]]:
    reader = csv.DictReader(text.splitlines())
    _check_header(p, reader, text, source)
    docs: Dict[str, Dict[str, Any]] = {}
    for n, raw in enumerate(reader, start=2):
        if None in raw:
            raise results.ResultsError(p, f"line {n}: more cells than the header has columns")
        rec = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        if not any(rec.values()):
            continue
        f = functools.partial(_cell_float, rec, p, n)
        dev = rec.get("device") or device or "imported"
        scenario = rec.get("scenario", "").lower()
        if scenario not in results.SCENARIOS:
            raise results.ResultsError(p, f"line {n}: scenario must be one of {results.SCENARIOS}, not {scenario!r}")
        status = (rec.get("status") or "ok").lower()
        if status not in results.STATUSES:
            raise results.ResultsError(p, f"line {n}: status must be one of {results.STATUSES}, not {status!r}")
        if not rec.get("backend"):
            raise results.ResultsError(p, f"line {n}: empty backend")
        if (rec.get("precision") or "fp32").lower() not in PRECISIONS:
            raise results.ResultsError(p, f"line {n}: precision must be one of {', '.join(PRECISIONS)}, "
                                          f"not {rec.get('precision')!r}")
        fields_ = _measured_fields(rec, p, n, f)
        measured = [k for k in ("testset", "latency_ms") if k in fields_] + \
            [k for k in ("throughput_ips",) if fields_.get(k) is not None]
        if status == "ok" and not measured:
            raise results.ResultsError(p, f"line {n}: an ok row needs a measurement (avg_s, p50_ms, "
                                          f"mean_ms or throughput_ips)")
        threads = _int(rec.get("threads", ""), p, n, "threads")
        batch = _int(rec.get("batch_size", ""), p, n, "batch_size")
        try:
            row = results.new_row(rec["backend"], (rec.get("precision") or "fp32").lower(), threads, batch, scenario,
                                  status=status, reason=rec.get("reason") or None, **fields_)
        except results.ResultsError:
            raise
        except (ValueError, TypeError) as exc:
            raise results.ResultsError(p, f"line {n}: {exc}") from None
        if rec.get("note"):
            row["warnings"].append(rec["note"])
        if status == "ok" and "accuracy" not in fields_:
            row["warnings"].append("accuracy not reported by the source")
        if dev not in docs:
            docs[dev] = results.new_document(
                dev, environment={"recorded_by": f"imported from {p.name}; no fingerprint"},
                model=dict(model or {}), suite={"name": f"imported from {p.name}"},
                imported={"source": source, "note": note or f"imported from {p.name}"})
            docs[dev]["complete"] = True
        docs[dev]["rows"].append(row)
    if not docs:
        raise results.ResultsError(p, "no data rows")
    return [results.validate(d, p) for d in docs.values()]
