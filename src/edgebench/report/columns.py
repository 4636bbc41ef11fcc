"""Column specs of the per-scenario tables, and the table builder.

Columns with no value in any row are dropped; every column names its unit; notes are footnotes below
the table (a marker in the row), so no table grows wider than the page.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from edgebench.report.format import fmt, fmt_int, fmt_pp, fmt_ratio, fmt_s, slug
from edgebench.report.views import BASELINE_BACKEND, CV_LIMIT

SCENARIO_TITLES = {
    "testset": "Test-set pass (the seed study's measure)",
    "latency": "Latency (one request after another)",
    "throughput": "Throughput (batch-size sweep)",
}


def cell(text: str, title: Optional[str] = None, cls: str = "num") -> Dict[str, Any]:
    return {"text": text, "title": title, "cls": cls}


HEADER_TIPS = {
    "size": "artifact size on disk, MB = 10^6 bytes",
    "top1": "top-1 accuracy on the test set, percent of images; † = measured on another row of the same artifact",
    "delta": "change of top-1 from the reference (Keras FP32), percentage points",
    "p50": "median latency per batch, milliseconds", "p99": "99th percentile latency per batch, milliseconds",
    "cv": f"standard deviation / mean of the latencies, percent; above {CV_LIMIT:.0%} the timing is noisy",
    "ips": "images per second", "spread": "spread of img/s: interquartile range (latency, throughput) or "
                                          "slowest–fastest pass (test set)",
    "ts": "seconds per test-set pass: average (fastest–slowest)", "ts_n": "images per pass × passes",
    "cpu": "process CPU, mean, percent of one core (200 = two cores busy)", "gpu": "GPU utilisation, mean, percent",
    "power": "mean power draw, watts", "energy": "energy per image, millijoules",
    "gflops": "achieved GFLOP/s (10^9 FLOP per second)",
    "floor": "percent of this machine's floor: (FLOPs / peak, or weight bytes / bandwidth) over the measured "
             "time per image; never compared across machines; above 100 the floor's peak was below what the row "
             "reached (a footnote says which peak)",
    "speedup": "speed-up over the baseline backend (FP32) at the same threads, batch and scenario",
}


def _spread(v: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    r = v["rate"]
    if not r or r["unit"] != "img/s" or r.get("lo") is None or r.get("hi") is None:
        return None
    return cell(f"{fmt(r['lo'])}–{fmt(r['hi'])}", r.get("spread"))


def _ts(v: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    if v["ts_avg"] is None:
        return None
    text = fmt_s(v["ts_avg"])
    if v["ts_min"] is not None and v["ts_max"] is not None:
        text += f" ({fmt_s(v['ts_min'])}–{fmt_s(v['ts_max'])})"
    return cell(text)


COLUMNS: List[Tuple[str, str, Callable[[Dict[str, Any]], Optional[Dict[str, Any]]]]] = [
    # (key, header, function(row view) -> cell or None)
    ("size", "Size MB", lambda v: cell(fmt(v["size_mb"])) if v["size_mb"] is not None else None),
    ("top1", "Top-1 %", lambda v: (
        cell(f"{v['top1'] * 100:.2f}" + ("†" if v["top1_source"] == "sibling" else ""),
             "measured on another row of the same artifact" if v["top1_source"] == "sibling" else None)
        if v["top1"] is not None else cell("n/a: untrained", v["top1_na"], "missing") if v.get("top1_na")
        else cell("not measured", "no accuracy in this row: not a verified result", "missing"))),
    ("delta", "Δ top-1 pp", lambda v: cell(
        fmt_pp(v["delta_top1"]),
        f"max |logit diff| {fmt(v['max_logit_diff'])}" if v["max_logit_diff"] is not None else None,
        "num bad" if v["delta_top1"] is not None and v["delta_top1"] < -0.005 else "num")
        if v["delta_top1"] is not None else None),
    ("p50", "p50 ms", lambda v: cell(fmt(v["p50_ms"])) if v["p50_ms"] is not None else None),
    ("p99", "p99 ms", lambda v: cell(fmt(v["p99_ms"])) if v["p99_ms"] is not None else None),
    ("cv", "CV %", lambda v: cell(f"{v['cv'] * 100:.1f}", None, "num bad" if v["cv"] > CV_LIMIT else "num")
        if v["cv"] is not None else None),
    ("ips", "img/s", lambda v: (
        cell(fmt(v["rate"]["value"]), "derived from the test-set pass" if v["scenario"] == "testset" else None)
        if v["rate"] and v["rate"]["unit"] == "img/s" else None)),
    ("spread", "img/s spread", _spread),
    ("ts", "s per pass", _ts),
    ("ts_n", "images × passes", lambda v: cell(
        f"{fmt_int(v['ts_images']) or '?'} × {fmt_int(v['ts_repeats']) or '?'}") if v["ts_avg"] is not None else None),
    ("cpu", "CPU % (1 core = 100)", lambda v: cell(fmt(v["cpu_pct"])) if v["cpu_pct"] is not None else None),
    ("gpu", "GPU %", lambda v: cell(fmt(v["gpu_util"])) if v["gpu_util"] is not None else None),
    ("power", "Power W", lambda v: cell(fmt(v["power_w"])) if v["power_w"] is not None else None),
    ("energy", "mJ/img", lambda v: cell(fmt(v["energy_j"] * 1000.0)) if v["energy_j"] is not None else None),
    ("gflops", "GFLOP/s", lambda v: cell(
        fmt(v["gflops"]), "from the model's FLOPs per image and the measured rate" if v["gflops_derived"] else None)
        if v["gflops"] is not None else None),
    ("floor", "% of floor", lambda v: cell(f"{v['floor_frac'] * 100:.1f}", v["floor_note"])
        if v["floor_frac"] is not None else None),
    ("speedup", "vs keras", lambda v: (
        cell("baseline", "the rows the others are compared with", "num base") if v["is_baseline"] else
        cell(fmt_ratio(v["speedup"]), f"over {v['baseline_label']}") if v["speedup"] is not None else None)),
]


NUMBER = re.compile(r"-?\d+(?:[.,]\d+)*")


def note_shape(note: str) -> str:
    """A note with its numbers taken out: notes of one shape say the same thing about different values
    ('busy machine: other processes used 1.21 cores ...' on 30 rows)."""
    return NUMBER.sub("#", note)


def _ranges(notes: List[str], rows: int = 0) -> str:
    """One note for notes of one shape: each number becomes its range over them ('0.62–1.41 cores')."""
    if len(notes) == 1:
        return notes[0]
    numbers = [NUMBER.findall(n) for n in notes]
    parts = NUMBER.split(notes[0])
    out = [parts[0]]
    for k in range(len(parts) - 1):
        values = [ns[k] for ns in numbers]
        floats = [float(x.replace(",", "")) for x in values]
        lo, hi = values[floats.index(min(floats))], values[floats.index(max(floats))]
        out.append(lo if lo == hi else f"{lo}–{hi}")
        out.append(parts[k + 1])
    return (f"{rows} rows: " if rows > 1 else "") + "".join(out)


def collapse_notes(per_row: List[List[str]]) -> Tuple[List[str], List[str], List[List[int]]]:
    """(common notes, footnotes, each row's footnote numbers): notes of one shape are one footnote (their
    numbers as ranges); a shape every row carries is a common note, said once above the table."""
    shapes: Dict[str, List[str]] = {}
    rows_of: Dict[str, List[int]] = {}
    for i, notes in enumerate(per_row):
        for n in notes:
            k = note_shape(n)
            shapes.setdefault(k, []).append(n)
            if i not in rows_of.setdefault(k, []):
                rows_of[k].append(i)
    common_keys = [k for k in shapes if len(per_row) >= 2 and len(rows_of[k]) == len(per_row)]
    common = [_ranges(list(dict.fromkeys(shapes[k]))) for k in common_keys]
    footnotes: List[str] = []
    marks: List[List[int]] = [[] for _ in per_row]
    for k, notes in shapes.items():
        if k in common_keys:
            continue
        footnotes.append(_ranges(list(dict.fromkeys(notes)), len(rows_of[k])))
        for i in rows_of[k]:
            marks[i].append(len(footnotes))
    return common, footnotes, marks


def build_table(views: List[Dict[str, Any]], scenario: str, baseline: str = BASELINE_BACKEND) -> Dict[str, Any]:
    """A table of ok row views: header cells, row cells, footnote markers and the footnotes."""
    cols = []
    for key, header, fn in COLUMNS:
        cells = [fn(v) for v in views]
        if any(c is not None for c in cells):
            cols.append((key, header.replace("keras", baseline), cells))
    common, footnotes, marks = collapse_notes([v["notes"] for v in views])
    rows = [{"view": v, "cells": [c[2][i] or cell("") for c in cols], "marks": marks[i]} for i, v in enumerate(views)]
    return {
        "common_notes": common, "footnotes": footnotes, "has_notes": bool(footnotes),
        "scenario": scenario, "title": SCENARIO_TITLES.get(scenario, str(scenario)), "anchor": slug(scenario),
        "columns": [{"key": c[0], "header": c[1], "tip": HEADER_TIPS.get(c[0], "")} for c in cols],
        "rows": rows,
    }
