"""One results document prepared for display: its label, its rows as display values, its accuracy and
speed-up look-ups, and its failed / skipped rows grouped by artifact and reason."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from edgebench.report import fields
from edgebench.report.format import batch_label, fmt, num, slug, sub, threads_label
from edgebench.report.stats import latency_cv, rate

SCENARIO_ORDER = ("testset", "latency", "throughput")
BASELINE_BACKEND = "keras"
BASELINE_PRECISION = "fp32"
try:
    from edgebench.contracts.vocabulary import NOISE_CV_LIMIT as CV_LIMIT
except ImportError:  # pragma: no cover - the vocabulary is part of the package
    CV_LIMIT = 0.10


def row_sort_key(row: Dict[str, Any]) -> Tuple[Any, ...]:
    order = {s: i for i, s in enumerate(SCENARIO_ORDER)}
    t, b = row.get("threads"), row.get("batch_size")
    return (order.get(row.get("scenario"), 99), str(row.get("backend")), str(row.get("precision")),
            not isinstance(t, int), t if isinstance(t, int) else 0, str(t),
            not isinstance(b, int), b if isinstance(b, int) else 0, str(b))


def config_label(row: Dict[str, Any], with_batch: bool = True) -> str:
    parts = [str(row.get("backend")), str(row.get("precision")), f"{threads_label(row.get('threads'))} thr"]
    if with_batch:
        parts.append(f"batch {batch_label(row.get('batch_size'))}")
    return " · ".join(parts)


def where_label(environment: Dict[str, Any]) -> str:
    """Where a run ran: '<target> container', 'container <image>', or 'host'."""
    c = environment.get("container") if isinstance(environment.get("container"), dict) else {}
    if c.get("target"):
        return f"{c['target']} container"
    if c.get("image") or c.get("image_id"):
        return "container"
    return "host"


def time_label(created: str) -> str:
    return created[:16].replace("T", " ") if created else "time not recorded"


def floor_above_note(floor: Optional[Dict[str, Any]], frac: Optional[float]) -> Optional[str]:
    """Why a row ran faster than its floor (above 100%): the floor's peak is below what this backend reached,
    so here it is a lower bound of the machine's peak, not a limit. Says which peak it was."""
    if not floor or frac is None or frac <= 1.0:
        return None
    source = str(floor.get("source") or "")
    method = floor.get("method") or ("estimate" if source.startswith("estimate") else
                                     "measured" if source.startswith("measured") else "")
    why = {"estimate": "an estimate from the ISA and the recorded clock, which this CPU beats (a clock above the "
                       "recorded maximum, or more FLOP per cycle than assumed)",
           "measured": "measured by the kit's calibration GEMM, which this backend's kernels beat (or the "
                       "calibration ran while the machine was busy)",
           "datasheet": "the card's published peak, so the FLOPs counted for the model are more than it computes "
                        "(for example skipped or fused work)"}.get(method, "of unknown origin")
    return (f"{frac * 100:.0f}% of floor: faster than the floor, so its peak ({fmt(floor.get('peak_gflops'))} "
            f"GFLOP/s) is {why}; read this floor as a lower bound here, not a limit")


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
        self.suite = doc.get("suite") if isinstance(doc.get("suite"), dict) else {}
        self.environment = doc.get("environment") if isinstance(doc.get("environment"), dict) else {}
        self.rows = [r for r in doc.get("rows", []) if isinstance(r, dict)]
        self.is_reference = False
        self.role = ""                     # "original" / "re-run" when rendered as a reproduction
        self.where = where_label(self.environment)
        self.label = (f"{self.device} (imported)" if self.imported
                      else f"{self.device} · {self.where} · {time_label(self.created)}")
        self.anchor = slug(self.label)
        self.flops = fields.model_flops(self.model)
        self._keras_top1 = self._find_keras_top1()
        self.accuracy_na = fields.chance_note(self.rows)  # an untrained model: timing rows, no top-1 shown

    # --- identity -------------------------------------------------------------------------
    def container(self, key: str) -> Optional[str]:
        v = sub(self.environment, "container", key)
        return str(v) if v else None

    # --- accuracy -------------------------------------------------------------------------
    def _find_keras_top1(self) -> Optional[float]:
        for r in self.rows:
            if (r.get("backend") == BASELINE_BACKEND and str(r.get("precision")).lower() == BASELINE_PRECISION
                    and r.get("status") == "ok" and fields.top1(r) is not None):
                return fields.top1(r)
        for r in self.rows:
            if fields.reference_top1(r) is not None:
                return fields.reference_top1(r)
        return None

    def accuracy(self, row: Dict[str, Any]) -> Tuple[Optional[Dict[str, Any]], str]:
        """(accuracy, source): source is 'row', 'sibling' (same backend, precision and artifact,
        measured on another row of this file) or 'none'."""
        if fields.top1(row) is not None:
            return row["accuracy"], "row"
        if num(sub(row, "accuracy", "top1")) is not None:   # recorded, but not a fraction 0..1
            return None, "out of range"
        sha = sub(row, "artifact", "sha256")
        for r in self.rows:
            if r is row or r.get("status") != "ok":
                continue
            if (r.get("backend"), r.get("precision")) != (row.get("backend"), row.get("precision")):
                continue
            other = sub(r, "artifact", "sha256")
            if sha and other and sha != other:
                continue
            if fields.top1(r) is not None:
                return r["accuracy"], "sibling"
        return None, "none"

    # --- baseline -------------------------------------------------------------------------
    def baseline_row(self, row: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """The baseline FP32 row with the same scenario, threads and batch size (any batch size for a
        test-set pass when only one matches)."""
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
        acc, acc_src = self.accuracy(row)
        top1 = fields.fraction(acc.get("top1")) if acc and not self.accuracy_na else None
        delta = None
        if acc and not self.accuracy_na:
            delta = fields.signed_fraction(acc.get("delta_top1"))
            if delta is None and self._keras_top1 is not None and top1 is not None:
                delta = top1 - self._keras_top1
        r = rate(row)
        gflops = fields.nonnegative(row.get("gflops_achieved"))
        gflops_derived = False
        if gflops is None and r and r["unit"] == "img/s" and self.flops:
            gflops, gflops_derived = r["value"] * self.flops / 1e9, True
        size = fields.size_bytes(row)
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
        if acc_src == "out of range":
            notes.append(f"top-1 {sub(row, 'accuracy', 'top1')!r} is outside its unit "
                         f"({fields.UNITS['accuracy.top1']}): not shown")
        base = self.baseline_row(row) if status == "ok" else None
        fl = row.get("floor") if isinstance(row.get("floor"), dict) else None
        above = floor_above_note(fl, fields.floor_fraction(row))
        if above:
            notes.append(above)
        if status == "ok" and self.accuracy_na and acc:
            status_label, status_class = "ok, accuracy n/a", "ok"  # the timing stands; top-1 of chance says nothing
        elif status == "ok":
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
            "top1_na": self.accuracy_na if acc else None,
            "max_logit_diff": fields.nonnegative(acc.get("max_abs_logit_diff")) if acc else None,
            "p50_ms": num(lat.get("median")), "p99_ms": num(lat.get("p99")), "cv": cv,
            "rate": r,
            "ts_avg": num(ts.get("avg_s")), "ts_max": num(ts.get("max_s")), "ts_min": num(ts.get("min_s")),
            "ts_images": num(ts.get("images")), "ts_repeats": num(ts.get("repeats")),
            "cpu_pct": fields.cpu_percent(row), "power_w": fields.power_w(row),
            "energy_j": fields.energy_j_per_image(row), "gpu_util": fields.gpu_percent(row),
            "gflops": gflops, "gflops_derived": gflops_derived,
            "floor_frac": fields.floor_fraction(row),
            "floor_note": (f"floor {fmt(fl.get('floor_ms_per_image'))} ms/image; peak {fmt(fl.get('peak_gflops'))} "
                           f"GFLOP/s ({fl.get('source')}); this machine only" if fl else None),
            "speedup": self.speedup(row) if status == "ok" else None, "is_baseline": base is row,
            "baseline_label": config_label(base) if base is not None else None,
        }

    def scenarios(self) -> List[str]:
        """Scenarios with at least one ok row, in the report's order."""
        present = []
        for r in self.rows:
            s = r.get("scenario")
            if r.get("status") == "ok" and s not in present:
                present.append(s)
        order = {s: i for i, s in enumerate(SCENARIO_ORDER)}
        return sorted(present, key=lambda s: (order.get(s, 99), str(s)))

    def rows_of(self, scenario: str, ok_only: bool = False) -> List[Dict[str, Any]]:
        def k(r):
            return (0 if r.get("backend") == self.baseline else 1,) + row_sort_key(r)[1:]
        return sorted((r for r in self.rows if r.get("scenario") == scenario
                       and (not ok_only or r.get("status") == "ok")), key=k)

    def counts(self) -> Dict[str, int]:
        c = {"ok": 0, "failed": 0, "skipped": 0, "no_accuracy": 0}
        for r in self.rows:
            s = r.get("status")
            c[s] = c.get(s, 0) + 1
            if s == "ok" and self.accuracy(r)[0] is None:
                c["no_accuracy"] += 1
        return c

    def problems(self) -> List[Dict[str, Any]]:
        """Failed and skipped rows, one line per artifact (backend x precision x artifact) and reason,
        with the configurations it covers."""
        groups: Dict[Tuple[Any, ...], Dict[str, Any]] = {}
        for r in sorted((r for r in self.rows if r.get("status") in ("failed", "skipped")), key=row_sort_key):
            art = sub(r, "artifact", "path") or sub(r, "artifact", "sha256") or ""
            reason = str(r.get("reason") or "no reason recorded")
            key = (r.get("status"), r.get("backend"), r.get("precision"), art, reason)
            g = groups.setdefault(key, {"status": r.get("status"), "backend": r.get("backend"),
                                        "precision": r.get("precision"), "artifact": Path(str(art)).name if art else "",
                                        "reason": reason, "rows": []})
            g["rows"].append(r)
        out = []
        for g in groups.values():
            scen: Dict[str, Tuple[List[str], List[str]]] = {}
            for r in g["rows"]:
                th, ba = scen.setdefault(str(r.get("scenario")), ([], []))
                for lst, v in ((th, threads_label(r.get("threads"))), (ba, batch_label(r.get("batch_size")))):
                    if v not in lst:
                        lst.append(v)
            g["covers"] = "; ".join(
                f"{s} (threads {', '.join(th)}" + (f"; batch {', '.join(ba)})" if s == "throughput" else ")")
                for s, (th, ba) in scen.items())
            g["count"] = len(g["rows"])
            g["ids"] = [r.get("id") for r in g["rows"]]
            out.append(g)
        return out


def disambiguate(views: List[DocView]) -> None:
    """Labels that are still equal (same device, place and minute) get their file name; anchors unique."""
    by_label: Dict[str, List[DocView]] = {}
    for v in views:
        by_label.setdefault(v.label, []).append(v)
    for label, group in by_label.items():
        if len(group) < 2:
            continue
        for i, v in enumerate(group):
            v.label = f"{label} · {Path(v.path).name if v.path else i + 1}"
    used = set()
    for v in views:
        if v.role:
            v.label = f"{v.role}: {v.label}"
        base = slug(v.label)
        anchor, n = base, 2
        while anchor in used:
            anchor, n = f"{base}-{n}", n + 1
        v.anchor = anchor
        used.add(anchor)
