"""From results documents to what a report shows: row views, tables, speed-ups, comparisons.

Everything here works on the results JSON only (edgebench.results); nothing is re-measured.
Numbers that the report derives (images per second from a latency, GFLOP/s from the model's FLOPs,
speed-ups, ratios) are computed here, once, so the HTML and the Markdown show the same values.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

SCENARIO_ORDER = ("testset", "latency", "throughput")
SCENARIO_TITLES = {
    "testset": "Test-set pass (the seed study's measure)",
    "latency": "Latency (one request after another)",
    "throughput": "Throughput (batch-size sweep)",
}
CV_LIMIT = 0.10  # GUIDE section 5: flag CV > 10%
BASELINE_BACKEND = "keras"
BASELINE_PRECISION = "fp32"


# ----------------------------------------------------------------------------------------------
# small helpers

def num(x: Any) -> Optional[float]:
    """A finite number, or None (JSON null, strings, NaN, booleans are not numbers here)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def sub(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def fraction(x: Any) -> Optional[float]:
    """Accuracy as a fraction; values above 1 are taken as percent."""
    v = num(x)
    if v is None:
        return None
    return v / 100.0 if v > 1.0 else v


def fmt(x: Any, digits: int = 3) -> str:
    """Human number: 3 significant digits, thousands separators for big ones, '' for None."""
    v = num(x)
    if v is None:
        return ""
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{v:,.0f}"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(a))))
    return f"{v:.{decimals}f}"


def fmt_tick(x: float) -> str:
    """Axis tick: no trailing zeros (1, 2.5, 1,000, 0.05)."""
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:.6g}"


def fmt_int(x: Any) -> str:
    v = num(x)
    return "" if v is None else (f"{int(v):,}" if v == int(v) else fmt(v))


def fmt_s(x: Any) -> str:
    """Seconds of a test-set pass: enough digits to tell passes apart (1,111.4 / 17.61 / 0.532)."""
    v = num(x)
    if v is None:
        return ""
    if abs(v) >= 100:
        return f"{v:,.1f}"
    if abs(v) >= 10:
        return f"{v:.2f}"
    return fmt(v, 3)


def fmt_ratio(x: Optional[float]) -> str:
    if x is None:
        return ""
    return f"{x:.2f}×" if x < 10 else f"{x:.1f}×"


def threads_label(t: Any) -> str:
    return "default" if t is None else str(t)


def batch_label(b: Any) -> str:
    return "?" if b is None else str(b)


def slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower()
    return s or "x"


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def raw_latencies(row: Dict[str, Any]) -> List[float]:
    raw = sub(row, "latency_ms", "raw")
    if not isinstance(raw, list):
        return []
    return [v for v in (num(x) for x in raw) if v is not None]


def latency_cv(row: Dict[str, Any]) -> Optional[float]:
    """Coefficient of variation as a fraction: std / mean where both are known, else the stored cv."""
    lat = row.get("latency_ms") if isinstance(row.get("latency_ms"), dict) else {}
    mean, std = num(lat.get("mean")), num(lat.get("std"))
    if mean and std is not None:
        return std / mean
    raw = raw_latencies(row)
    if len(raw) >= 2:
        m = sum(raw) / len(raw)
        if m > 0:
            var = sum((x - m) ** 2 for x in raw) / (len(raw) - 1)
            return math.sqrt(var) / m
    cv = num(lat.get("cv"))
    if cv is not None and cv > 1.5:  # stored as percent
        cv /= 100.0
    return cv


def row_key(row: Dict[str, Any]) -> Tuple[Any, ...]:
    return (row.get("backend"), row.get("precision"), row.get("threads"), row.get("batch_size"),
            row.get("scenario"))


def config_label(row: Dict[str, Any], with_batch: bool = True) -> str:
    parts = [str(row.get("backend")), str(row.get("precision")), f"{threads_label(row.get('threads'))} thr"]
    if with_batch:
        parts.append(f"batch {batch_label(row.get('batch_size'))}")
    return " · ".join(parts)


# ----------------------------------------------------------------------------------------------
# speed of a row, with its spread

def rate(row: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Speed of an ok row as images per second (higher is faster), with a spread [lo, hi] and CV.

    testset: images / avg_s, spread from the slowest and fastest pass. Without an image count the unit
    is passes per second, comparable only with other passes of unknown size.
    latency, throughput: throughput_ips (or batch / median latency); spread from the 25th and 75th
    percentile of the raw latencies (or mean +- std).
    """
    if row.get("status") != "ok":
        return None
    scenario = row.get("scenario")
    if scenario == "testset":
        ts = row.get("testset") if isinstance(row.get("testset"), dict) else {}
        avg, mx, mn = num(ts.get("avg_s")), num(ts.get("max_s")), num(ts.get("min_s"))
        if not avg:
            return None
        images = num(ts.get("images"))
        scale = images if images else 1.0
        unit = "img/s" if images else "passes/s"
        lo = scale / mx if mx else None
        hi = scale / mn if mn else None
        cv = None
        secs = [v for v in (num(x) for x in (ts.get("seconds") or [])) if v is not None] \
            if isinstance(ts.get("seconds"), list) else []
        if len(secs) >= 2:
            m = sum(secs) / len(secs)
            cv = math.sqrt(sum((x - m) ** 2 for x in secs) / (len(secs) - 1)) / m if m > 0 else None
        return {"value": scale / avg, "lo": lo, "hi": hi, "cv": cv, "unit": unit, "images": images}
    batch = num(row.get("batch_size")) or 1.0
    lat = row.get("latency_ms") if isinstance(row.get("latency_ms"), dict) else {}
    median = num(lat.get("median")) or num(lat.get("mean"))
    value = num(row.get("throughput_ips"))
    if value is None and median:
        value = batch * 1000.0 / median
    if not value:
        return None
    lo = hi = None
    raw = sorted(raw_latencies(row))
    if len(raw) >= 4:
        p25, p75 = percentile(raw, 25), percentile(raw, 75)
        if p25 > 0 and median:
            # the spread of the latency, carried over to the rate the row reports
            hi, lo = value * median / p25, value * median / p75
    elif median and num(lat.get("std")) is not None:
        std = num(lat.get("std"))
        if median - std > 0:
            lo, hi = value * median / (median + std), value * median / (median - std)
    return {"value": value, "lo": lo, "hi": hi, "cv": latency_cv(row), "unit": "img/s", "images": None}


def noise_verdict(a: Dict[str, Any], b: Dict[str, Any]) -> Tuple[bool, str]:
    """(within_noise, why) for two rates."""
    cvs = [c for c in (a.get("cv"), b.get("cv")) if c is not None]
    if cvs and max(cvs) > CV_LIMIT:
        return True, f"CV {max(cvs) * 100:.0f}% is too high to tell"
    if None not in (a.get("lo"), a.get("hi"), b.get("lo"), b.get("hi")):
        if a["lo"] <= b["hi"] and b["lo"] <= a["hi"]:
            return True, "spreads overlap"
        return False, "spreads apart"
    return False, "spread unknown"


# ----------------------------------------------------------------------------------------------
# one document, prepared for display

class DocView:
    """A loaded results document with its derived values; `label` names it in the report."""

    def __init__(self, doc: Dict[str, Any], path: Optional[str] = None, baseline: str = BASELINE_BACKEND):
        self.doc = doc
        self.path = str(path) if path else None
        self.baseline = baseline
        self.device = str(doc.get("device") or "unnamed device")
        self.created = str(doc.get("created") or "")
        self.imported = doc.get("imported") if isinstance(doc.get("imported"), dict) else None
        self.complete = bool(doc.get("complete", True))
        self.model = doc.get("model") if isinstance(doc.get("model"), dict) else {}
        self.environment = doc.get("environment") if isinstance(doc.get("environment"), dict) else {}
        self.rows = [r for r in doc.get("rows", []) if isinstance(r, dict)]
        self.is_reference = False
        self.label = self.device + (" (imported)" if self.imported else "")
        self.anchor = slug(self.label)
        self.flops = num(self.model.get("flops_per_image"))
        if self.flops is None and num(self.model.get("macs_per_image")) is not None:
            self.flops = 2.0 * num(self.model.get("macs_per_image"))
        self._keras_top1 = self._find_keras_top1()

    # --- accuracy -------------------------------------------------------------------------
    def _find_keras_top1(self) -> Optional[float]:
        for r in self.rows:
            if r.get("backend") == BASELINE_BACKEND and str(r.get("precision")).lower() == BASELINE_PRECISION:
                t = fraction(sub(r, "accuracy", "top1"))
                if t is not None and r.get("status") == "ok":
                    return t
        for r in self.rows:
            t = fraction(sub(r, "accuracy", "reference_top1"))
            if t is not None:
                return t
        return None

    def accuracy(self, row: Dict[str, Any]) -> Tuple[Optional[Dict[str, Any]], str]:
        """(accuracy, source): source is 'row', 'sibling' (same backend, precision and artifact,
        measured on another row of this file) or 'none'."""
        acc = row.get("accuracy")
        if isinstance(acc, dict) and fraction(acc.get("top1")) is not None:
            return acc, "row"
        sha = sub(row, "artifact", "sha256")
        for r in self.rows:
            if r is row or r.get("status") != "ok":
                continue
            if (r.get("backend"), r.get("precision")) != (row.get("backend"), row.get("precision")):
                continue
            other = sub(r, "artifact", "sha256")
            if sha and other and sha != other:
                continue
            a = r.get("accuracy")
            if isinstance(a, dict) and fraction(a.get("top1")) is not None:
                return a, "sibling"
        return None, "none"

    # --- baseline -------------------------------------------------------------------------
    def baseline_row(self, row: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """The `keras` FP32 row with the same scenario, threads and batch size (any batch size
        for a test-set pass when only one matches)."""
        cands = [r for r in self.rows
                 if r.get("backend") == self.baseline and str(r.get("precision")).lower() == BASELINE_PRECISION
                 and r.get("scenario") == row.get("scenario") and r.get("threads") == row.get("threads")
                 and r.get("status") == "ok"]
        exact = [r for r in cands if r.get("batch_size") == row.get("batch_size")]
        if exact:
            return exact[0]
        if row.get("scenario") == "testset" and len(cands) == 1:
            return cands[0]
        return None

    def speedup(self, row: Dict[str, Any]) -> Optional[float]:
        base = self.baseline_row(row)
        if base is None:
            return None
        a, b = rate(base), rate(row)
        if not a or not b or a["unit"] != b["unit"]:
            return None
        return b["value"] / a["value"]

    # --- one row --------------------------------------------------------------------------
    def row_view(self, row: Dict[str, Any]) -> Dict[str, Any]:
        status = row.get("status")
        lat = row.get("latency_ms") if isinstance(row.get("latency_ms"), dict) else {}
        ts = row.get("testset") if isinstance(row.get("testset"), dict) else {}
        tel = row.get("telemetry") if isinstance(row.get("telemetry"), dict) else {}
        acc, acc_src = self.accuracy(row)
        top1 = fraction(acc.get("top1")) if acc else None
        delta = None
        if acc:
            delta = num(acc.get("delta_top1"))
            if delta is not None and abs(delta) > 1.0:  # stored in percentage points
                delta /= 100.0
            if delta is None and self._keras_top1 is not None and top1 is not None:
                delta = top1 - self._keras_top1
        r = rate(row)
        gflops = num(row.get("gflops_achieved"))
        gflops_derived = False
        if gflops is None and r and r["unit"] == "img/s" and self.flops:
            gflops, gflops_derived = r["value"] * self.flops / 1e9, True
        size = num(sub(row, "artifact", "size_bytes"))
        cv = latency_cv(row) if lat else None
        notes: List[str] = []
        if status in ("failed", "skipped"):
            notes.append(str(row.get("reason") or "no reason recorded"))
        warnings = [str(w) for w in row.get("warnings") or [] if w]
        if cv is not None and cv > CV_LIMIT and not any("CV" in w for w in warnings):
            notes.append(f"CV {cv * 100:.0f}% > {CV_LIMIT * 100:.0f}%: noisy")
        for w in warnings:
            if w not in notes:
                notes.append(w)
        base = self.baseline_row(row) if status == "ok" else None
        speed = self.speedup(row) if status == "ok" else None
        is_baseline = base is row
        if status == "ok":
            status_label, status_class = ("ok", "ok") if top1 is not None else ("ok, no accuracy", "warn")
        else:
            status_label, status_class = str(status), str(status)
        return {
            "row": row, "id": row.get("id"), "scenario": row.get("scenario"),
            "backend": row.get("backend"), "precision": row.get("precision"),
            "threads": threads_label(row.get("threads")), "batch": batch_label(row.get("batch_size")),
            "status": status, "status_label": status_label, "status_class": status_class,
            "reason": row.get("reason"), "notes": notes,
            "size_mb": size / 1e6 if size is not None else None,
            "top1": top1, "top1_source": acc_src, "delta_top1": delta,
            "max_logit_diff": num(acc.get("max_abs_logit_diff")) if acc else None,
            "p50_ms": num(lat.get("median")), "p99_ms": num(lat.get("p99")), "cv": cv,
            "throughput": num(row.get("throughput_ips")) if row.get("scenario") != "testset" else None,
            "rate": r,
            "ts_avg": num(ts.get("avg_s")), "ts_max": num(ts.get("max_s")), "ts_min": num(ts.get("min_s")),
            "ts_images": num(ts.get("images")), "ts_repeats": num(ts.get("repeats")),
            "cpu_pct": num(tel.get("cpu_percent_mean")), "power_w": num(tel.get("power_w_mean")),
            "energy_j": num(tel.get("energy_j_per_image")), "gpu_util": num(tel.get("gpu_util_mean")),
            "gflops": gflops, "gflops_derived": gflops_derived,
            "floor_frac": num(sub(row, "floor", "fraction_of_floor")),
            "floor_note": (f"floor {fmt(sub(row, 'floor', 'floor_ms_per_image'))} ms/image; peak "
                           f"{fmt(sub(row, 'floor', 'peak_gflops'))} GFLOP/s ({sub(row, 'floor', 'source')})"
                           if isinstance(row.get("floor"), dict) else None),
            "speedup": speed, "is_baseline": is_baseline,
            "baseline_label": config_label(base) if base is not None else None,
        }

    def scenarios(self) -> List[str]:
        present = []
        for r in self.rows:
            s = r.get("scenario")
            if s not in present:
                present.append(s)
        order = {s: i for i, s in enumerate(SCENARIO_ORDER)}
        return sorted(present, key=lambda s: (order.get(s, 99), str(s)))

    def rows_of(self, scenario: str) -> List[Dict[str, Any]]:
        def k(r):
            return (0 if r.get("backend") == self.baseline else 1,) + _sort_key(r)[1:]
        return sorted((r for r in self.rows if r.get("scenario") == scenario), key=k)

    def table(self, scenario: str) -> Dict[str, Any]:
        return build_table([self.row_view(r) for r in self.rows_of(scenario)], scenario, self.baseline)

    def counts(self) -> Dict[str, int]:
        c = {"ok": 0, "failed": 0, "skipped": 0, "no_accuracy": 0}
        for r in self.rows:
            s = r.get("status")
            c[s] = c.get(s, 0) + 1
            if s == "ok" and self.accuracy(r)[0] is None:
                c["no_accuracy"] += 1
        return c


# ----------------------------------------------------------------------------------------------
# tables: columns with no value in any row are dropped, so each scenario's table stays narrow

def _cell(text: str, title: Optional[str] = None, cls: str = "num") -> Dict[str, Any]:
    return {"text": text, "title": title, "cls": cls}


def _delta_text(d: Optional[float]) -> str:
    if d is None:
        return ""
    pp = d * 100.0
    return "±0.00 pp" if abs(pp) < 0.005 else f"{pp:+.2f} pp"


HEADER_TIPS = {
    "size": "artifact size on disk, 10^6 bytes",
    "top1": "top-1 accuracy on the test set; † = measured on another row of the same artifact",
    "delta": "change of top-1 from Keras FP32, in percentage points",
    "p50": "median latency per batch", "p99": "99th percentile latency per batch",
    "cv": "standard deviation / mean of the latencies; above 10% the timing is noisy",
    "ips": "images per second", "ts_avg": "seconds per test-set pass, average",
    "ts_max": "slowest pass", "ts_min": "fastest pass", "ts_n": "images per pass x passes",
    "cpu": "process CPU %, mean (100% = one core)", "gpu": "GPU utilisation, mean",
    "power": "mean power draw", "energy": "energy per image, millijoules",
    "gflops": "achieved GFLOP/s",
    "floor": "how close to the floor: (FLOPs / peak, or weight bytes / bandwidth) over the measured time per image",
    "speedup": "speed-up over the baseline backend (FP32) at the same threads, batch and scenario",
}

COLUMNS = [
    # (key, header, md header, function(view) -> cell or None)
    ("size", "Size MB", "Size MB", lambda v: _cell(fmt(v["size_mb"])) if v["size_mb"] is not None else None),
    ("top1", "Top-1 %", "Top-1 %", lambda v: (
        _cell(f"{v['top1'] * 100:.2f}" + ("†" if v["top1_source"] == "sibling" else ""),
              "measured on another row of the same artifact" if v["top1_source"] == "sibling" else None)
        if v["top1"] is not None else
        (_cell("not measured", "no accuracy in this row: not a verified result", "missing")
         if v["status"] == "ok" else None))),
    ("delta", "Δ top-1", "Δ top-1", lambda v: _cell(
        _delta_text(v["delta_top1"]),
        f"max |logit diff| {fmt(v['max_logit_diff'])}" if v["max_logit_diff"] is not None else None,
        "num bad" if v["delta_top1"] is not None and v["delta_top1"] < -0.005 else "num")
        if v["delta_top1"] is not None else None),
    ("p50", "p50 ms", "p50 ms", lambda v: _cell(fmt(v["p50_ms"])) if v["p50_ms"] is not None else None),
    ("p99", "p99 ms", "p99 ms", lambda v: _cell(fmt(v["p99_ms"])) if v["p99_ms"] is not None else None),
    ("cv", "CV %", "CV %", lambda v: _cell(f"{v['cv'] * 100:.1f}", None,
                                           "num bad" if v["cv"] > CV_LIMIT else "num") if v["cv"] is not None else None),
    ("ips", "img/s", "img/s", lambda v: (
        _cell(fmt(v["rate"]["value"]), "derived from the test-set pass" if v["scenario"] == "testset" else None)
        if v["rate"] and v["rate"]["unit"] == "img/s" else None)),
    ("ts_avg", "avg s", "avg s", lambda v: _cell(fmt_s(v["ts_avg"])) if v["ts_avg"] is not None else None),
    ("ts_max", "max s", "max s", lambda v: _cell(fmt_s(v["ts_max"])) if v["ts_max"] is not None else None),
    ("ts_min", "min s", "min s", lambda v: _cell(fmt_s(v["ts_min"])) if v["ts_min"] is not None else None),
    ("ts_n", "images × runs", "images × runs", lambda v: _cell(
        f"{fmt_int(v['ts_images']) or '?'} × {fmt_int(v['ts_repeats']) or '?'}")
        if v["ts_avg"] is not None else None),
    ("cpu", "CPU %", "CPU %", lambda v: _cell(fmt(v["cpu_pct"])) if v["cpu_pct"] is not None else None),
    ("gpu", "GPU %", "GPU %", lambda v: _cell(fmt(v["gpu_util"])) if v["gpu_util"] is not None else None),
    ("power", "Power W", "Power W", lambda v: _cell(fmt(v["power_w"])) if v["power_w"] is not None else None),
    ("energy", "mJ/img", "mJ/img", lambda v: _cell(fmt(v["energy_j"] * 1000.0))
        if v["energy_j"] is not None else None),
    ("gflops", "GFLOP/s", "GFLOP/s", lambda v: _cell(
        fmt(v["gflops"]), "from the model's FLOPs per image and the measured rate" if v["gflops_derived"] else None)
        if v["gflops"] is not None else None),
    ("floor", "% of floor", "% of floor", lambda v: _cell(f"{v['floor_frac'] * 100:.1f}", v["floor_note"])
        if v["floor_frac"] is not None else None),
    ("speedup", "vs keras", "vs keras", lambda v: (
        _cell("baseline", "the rows the others are compared with", "num base") if v["is_baseline"] else
        _cell(fmt_ratio(v["speedup"]), f"over {v['baseline_label']}") if v["speedup"] is not None else None)),
]


def build_table(views: List[Dict[str, Any]], scenario: str, baseline: str = BASELINE_BACKEND) -> Dict[str, Any]:
    cols = []
    for key, header, md_header, fn in COLUMNS:
        cells = [fn(v) if v["status"] == "ok" or key == "size" else None for v in views]
        if any(c is not None for c in cells):
            cols.append((key, header.replace("keras", baseline), md_header.replace("keras", baseline), cells))
    # a note carried by every row is said once, above the table
    common: List[str] = []
    if len(views) >= 2:
        common = [n for n in views[0]["notes"] if all(n in v["notes"] for v in views[1:])
                  and all(v["status"] == "ok" for v in views)]
    rows = []
    for i, v in enumerate(views):
        cells = [c[3][i] or _cell("") for c in cols]
        notes = [n for n in v["notes"] if n not in common]
        rows.append({"view": v, "cells": cells, "notes": notes})
    return {
        "common_notes": common,
        "has_notes": any(r["notes"] for r in rows),
        "scenario": scenario,
        "title": SCENARIO_TITLES.get(scenario, str(scenario)),
        "anchor": slug(scenario),
        "columns": [{"key": c[0], "header": c[1], "md": c[2], "tip": HEADER_TIPS.get(c[0], "")} for c in cols],
        "rows": rows,
    }


# ----------------------------------------------------------------------------------------------
# environment: a short summary first, then everything, flattened

SUMMARY_KEYS = (
    # edgebench.bench.fingerprint.collect() keys first, then plain names (imported files)
    ("jetson.model", "Device"), ("device_model", "Device"), ("hostname", "Host"),
    ("cpu.model", "CPU"), ("cpu_model", "CPU"), ("cpu.arch", "Architecture"), ("machine", "Architecture"),
    ("cpu.physical_cores", "CPU cores"), ("cpu_count", "CPU cores"), ("cpu.usable_cores", "Usable cores"),
    ("cpu.max_mhz", "CPU max MHz"), ("cpu.isa", "ISA"), ("memory_gb", "Memory GB"),
    ("gpus", "GPU"), ("gpu", "GPU"),
    ("jetson.l4t", "L4T"), ("l4t", "L4T"), ("jetson.jetpack", "JetPack"), ("jetpack", "JetPack"),
    ("jetson.nvpmodel", "Power mode"), ("nvpmodel", "Power mode"),
    ("jetson.jetson_clocks", "jetson_clocks"), ("jetson_clocks", "jetson_clocks"),
    ("os", "OS"), ("python", "Python"), ("versions", "Packages"), ("tensorflow", "TensorFlow"),
    ("container.image", "Container image"), ("container.target", "Container target"),
    ("git_revision", "Kit revision"), ("recorded_by", "Recorded by"),
)


def _summary_value(key: str, value: Any) -> Optional[str]:
    if value is None or value == "" or value == [] or value == {}:
        return None
    if key == "gpus" and isinstance(value, list):
        names = []
        for g in value:
            if isinstance(g, dict):
                names.append(" ".join(str(g[k]) for k in ("name", "memory") if g.get(k)))
            else:
                names.append(str(g))
        return "; ".join(n for n in names if n) or None
    if key == "versions" and isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items() if v) or None
    text = _value_text(value)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return None
    text = lines[0] + (" …" if len(lines) > 1 else "")
    return text if len(text) <= 140 else text[:137] + "…"


def flatten(d: Any, prefix: str = "") -> List[Tuple[str, str]]:
    out: List[Tuple[str, str]] = []
    if isinstance(d, dict):
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v:
                out.extend(flatten(v, key))
            else:
                out.append((key, _value_text(v)))
    else:
        out.append((prefix or "value", _value_text(d)))
    return out


def _value_text(v: Any) -> str:
    if v is None:
        return "not recorded"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        if all(not isinstance(x, (dict, list)) for x in v):
            return ", ".join(str(x) for x in v) if v else "(none)"
        import json
        return json.dumps(v, sort_keys=True)
    if isinstance(v, dict):
        return "(none)"
    return str(v)


def environment_summary(view: DocView) -> List[Tuple[str, str]]:
    """Label / value pairs a reader needs to know what was measured (the full fingerprint is listed
    separately)."""
    env = view.environment
    out: List[Tuple[str, str]] = []
    seen = set()
    for key, label in SUMMARY_KEYS:
        if label in seen:
            continue
        value = sub(env, *key.split(".")) if "." in key else env.get(key)
        text = _summary_value(key, value)
        if text is not None:
            out.append((label, text))
            seen.add(label)
    model = view.model
    if model.get("name"):
        m = str(model.get("name"))
        if view.flops:
            m += f" ({view.flops / 1e9:.2f} GFLOP/image)"
        if model.get("sha256"):
            m += f", sha256 {str(model['sha256'])[:12]}"
        out.append(("Model", m))
    rev = sub(view.doc, "kit", "git_revision")
    if rev and "Kit revision" not in seen:
        out.append(("Kit revision", str(rev)[:12]))
    if not out and env:
        out = [(k, v if len(v) <= 140 else v[:137] + "…") for k, v in flatten(env)[:8]]
    return out


# ----------------------------------------------------------------------------------------------
# comparisons between documents

def _match(a_rows: List[Dict[str, Any]], row: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    key = row_key(row)
    for r in a_rows:
        if row_key(r) == key:
            return r
    if row.get("batch_size") is None or row.get("scenario") == "testset":
        loose = [r for r in a_rows if row_key(r)[:3] == key[:3] and r.get("scenario") == row.get("scenario")
                 and (r.get("batch_size") is None or row.get("batch_size") is None or row.get("scenario") == "testset")]
        if len(loose) == 1:
            return loose[0]
    return None


def _sort_key(row: Dict[str, Any]) -> Tuple[Any, ...]:
    order = {s: i for i, s in enumerate(SCENARIO_ORDER)}
    t, b = row.get("threads"), row.get("batch_size")
    return (order.get(row.get("scenario"), 99), str(row.get("backend")), str(row.get("precision")),
            not isinstance(t, int), t if isinstance(t, int) else 0, str(t),
            not isinstance(b, int), b if isinstance(b, int) else 0, str(b))


def compare(a: DocView, b: DocView) -> Dict[str, Any]:
    """Rows of b matched with rows of a (same backend, precision, threads, scenario, batch size);
    ratio = speed of b / speed of a, so > 1 means b is faster."""
    a_ok = [r for r in a.rows if r.get("status") == "ok"]
    lines = []
    unmatched = 0
    for row in b.rows:
        if row.get("status") != "ok":
            continue
        other = _match(a_ok, row)
        ra, rb = (rate(other), rate(row)) if other is not None else (None, None)
        if other is None or not ra or not rb or ra["unit"] != rb["unit"]:
            unmatched += 1
            continue
        ratio = rb["value"] / ra["value"]
        noisy, why = noise_verdict(ra, rb)
        if noisy:
            verdict = f"within noise ({why})"
        elif ratio >= 1:
            verdict = f"{fmt_ratio(ratio)} faster"
        else:
            verdict = f"{fmt_ratio(1 / ratio)} slower"
        notes = []
        if row.get("scenario") == "testset":
            ia, ib = ra.get("images"), rb.get("images")
            if ia and ib and ia != ib:
                notes.append(f"passes of {fmt(ia)} vs {fmt(ib)} images: compared per image")
        if row.get("batch_size") != other.get("batch_size"):
            notes.append(f"batch {batch_label(other.get('batch_size'))} vs {batch_label(row.get('batch_size'))}")
        lines.append({
            "config": config_label(row, with_batch=row.get("scenario") != "testset"),
            "scenario": row.get("scenario"), "unit": rb["unit"],
            "a": ra["value"], "b": rb["value"], "a_text": _rate_text(other, ra), "b_text": _rate_text(row, rb),
            "ratio": ratio, "ratio_text": fmt_ratio(ratio), "noise": noisy, "why": why, "verdict": verdict,
            "notes": notes, "sort": _sort_key(row),
        })
    lines.sort(key=lambda l: l["sort"])
    clear = [l["ratio"] for l in lines if not l["noise"]]
    geo = math.exp(sum(math.log(x) for x in clear) / len(clear)) if clear else None
    kind = "across runs of the same device" if a.device == b.device else "across devices"
    return {"a": a, "b": b, "kind": kind, "lines": lines, "unmatched": unmatched,
            "has_notes": any(l["notes"] for l in lines),
            "geomean": geo, "geomean_text": fmt_ratio(geo) if geo else "",
            "anchor": f"cmp-{a.anchor}-{b.anchor}"}


def _rate_text(row: Dict[str, Any], r: Dict[str, Any]) -> str:
    if row.get("scenario") == "testset":
        ts = row.get("testset") or {}
        avg, mn, mx = num(ts.get("avg_s")), num(ts.get("min_s")), num(ts.get("max_s"))
        text = f"{fmt_s(avg)} s"
        if mn is not None and mx is not None:
            text += f" ({fmt_s(mn)}–{fmt_s(mx)})"
        if r["unit"] == "img/s":
            text += f" = {fmt(r['value'])} img/s"
        return text
    text = f"{fmt(r['value'])} img/s"
    p50 = num(sub(row, "latency_ms", "median"))
    if row.get("scenario") == "latency" and p50 is not None:
        text += f" (p50 {fmt(p50)} ms)"
    return text


def comparison_pairs(views: List[DocView], reference: Optional[DocView]) -> List[Tuple[DocView, DocView]]:
    """The first file given against each other file; the seed-study reference against each local run."""
    pairs = []
    user = [v for v in views if v is not reference]
    if len(user) >= 2:
        for other in user[1:]:
            pairs.append((user[0], other))
    if reference is not None:
        for v in user:
            if not v.imported:
                pairs.append((reference, v))
    return pairs


def disambiguate(views: List[DocView]) -> None:
    """Give documents with the same device name distinct labels (their date, then their file name)."""
    by_label: Dict[str, List[DocView]] = {}
    for v in views:
        by_label.setdefault(v.label, []).append(v)
    for label, group in by_label.items():
        if len(group) < 2:
            continue
        for v in group:
            v.label = f"{label} · {v.created[:16].replace('T', ' ')}" if v.created else label
        if len({v.label for v in group}) < len(group):
            for v in group:
                v.label = f"{label} · {Path(v.path).name if v.path else id(v)}"
    used = set()
    for v in views:
        base = slug(v.label)
        anchor, n = base, 2
        while anchor in used:
            anchor, n = f"{base}-{n}", n + 1
        v.anchor = anchor
        used.add(anchor)


SCENARIO_SHORT = {"testset": "Test-set pass", "latency": "Latency", "throughput": "Throughput"}


def highlights(view: DocView) -> List[str]:
    """One sentence: the fastest row with a measured accuracy in the main scenario (test-set pass, else
    throughput, else latency), its speed-up and accuracy; and a faster row whose accuracy is unknown."""
    for scenario in ("testset", "throughput", "latency"):
        rated = [(r, rate(r)) for r in view.rows_of(scenario)]
        rated = [(r, rt) for r, rt in rated if rt and rt["unit"] == "img/s"]
        if rated:
            break
    else:
        return []
    with_acc = [(r, rt) for r, rt in rated if view.accuracy(r)[0] is not None]
    fastest = max(rated, key=lambda x: x[1]["value"])
    name = SCENARIO_SHORT.get(scenario, scenario).lower()

    def describe(r, rt):
        v = view.row_view(r)
        text = f"{config_label(r, scenario != 'testset')}, {fmt(rt['value'])} img/s"
        if v["speedup"] is not None and not v["is_baseline"]:
            text += f", {fmt_ratio(v['speedup'])} {view.baseline}"
        if v["top1"] is not None:
            text += f", top-1 {v['top1'] * 100:.2f}%"
            if v["delta_top1"] is not None and not v["is_baseline"]:
                text += f" ({_delta_text(v['delta_top1'])})"
        return text

    if with_acc:
        best = max(with_acc, key=lambda x: x[1]["value"])
        text = f"Fastest with measured accuracy ({name}): {describe(*best)}."
        if fastest[0] is not best[0] and view.accuracy(fastest[0])[0] is None:
            text += f" Faster but accuracy not measured: {describe(*fastest)}."
    else:
        text = f"Fastest ({name}): {describe(*fastest)}; accuracy not measured."
    return [text]
