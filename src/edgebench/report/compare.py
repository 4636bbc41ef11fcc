"""Comparisons between two results documents: the rows matched, each speed ratio with its noise test,
and every difference a reader (or `reproduce`) must know.

    from edgebench.report.compare import compare_documents
    diffs = compare_documents(original_doc, rerun_doc)   # [Difference, ...] beyond noise

Rows are matched on backend, precision, threads, batch size and scenario, and only when the model,
its input and the test set agree (edgebench.report.identity); rows whose artifacts differ are not
compared. Different models with known FLOPs are compared per FLOP (GFLOP/s), said so in the headline;
otherwise no ratio is printed. Floors (% of floor) are never compared: they belong to one machine.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from edgebench.report.format import batch_label, fmt, fmt_ratio, fmt_s, num, sub
from edgebench.report.identity import Difference, cross_model_per_flop, identity_differences
from edgebench.report.stats import geomean, rate, speed_test
from edgebench.report.views import CV_LIMIT, DocView, config_label, row_sort_key

__all__ = ["Difference", "compare", "compare_documents", "comparison_pairs"]


def row_key(row: Dict[str, Any]) -> Tuple[Any, ...]:
    return (row.get("backend"), row.get("precision"), row.get("threads"), row.get("batch_size"),
            row.get("scenario"))


def match_row(rows: List[Dict[str, Any]], row: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The row of `rows` with the same configuration (a test-set pass or an unknown batch size matches
    the one row of the same backend, precision, threads and scenario)."""
    key = row_key(row)
    for r in rows:
        if row_key(r) == key:
            return r
    if row.get("batch_size") is None or row.get("scenario") == "testset":
        loose = [r for r in rows if row_key(r)[:3] == key[:3] and r.get("scenario") == row.get("scenario")
                 and (r.get("batch_size") is None or row.get("batch_size") is None or row.get("scenario") == "testset")]
        if len(loose) == 1:
            return loose[0]
    return None


def _rate_text(row: Dict[str, Any], r: Dict[str, Any], per_flop: Optional[float]) -> str:
    if per_flop:
        return f"{fmt(r['value'] * per_flop / 1e9)} GFLOP/s"
    if row.get("scenario") == "testset":
        ts = row.get("testset") or {}
        avg, mn, mx = num(ts.get("avg_s")), num(ts.get("min_s")), num(ts.get("max_s"))
        text = f"{fmt_s(avg)} s"
        if mn is not None and mx is not None:
            text += f" ({fmt_s(mn)}–{fmt_s(mx)})"
        return text + (f" = {fmt(r['value'])} img/s" if r["unit"] == "img/s" else "")
    text = f"{fmt(r['value'])} img/s"
    p50 = num(sub(row, "latency_ms", "median"))
    if row.get("scenario") == "latency" and p50 is not None:
        text += f" (p50 {fmt(p50)} ms)"
    return text


def _line(a: DocView, b: DocView, ra_row, rb_row, ra, rb, per_flop: bool) -> Dict[str, Any]:
    test = speed_test(ra, rb, ra_row, rb_row)
    ratio, lo, hi = test["ratio"], test["lo"], test["hi"]
    if per_flop:
        k = b.flops / a.flops
        ratio, lo, hi = ratio * k, (lo * k if lo else lo), (hi * k if hi else hi)
        if test["tested"] and lo is not None and hi is not None:
            # decide on the quantity printed: the per-FLOP ratio's interval (issue 20: "0.13x" was printed as a
            # difference while its own interval 0.055-1.03x included 1)
            test = dict(test, differs=not (lo <= 1.0 <= hi),
                        why=f"per FLOP: interval {lo:.3g}–{hi:.3g}× {'excludes' if not lo <= 1.0 <= hi else 'includes'}"
                            f" 1× ({test['why']})")
    more, less = ("more GFLOP/s", "fewer GFLOP/s") if per_flop else ("faster", "slower")
    if not test["tested"]:
        verdict, badge = f"{fmt_ratio(ratio)}, untested", "untested"
    elif not test["differs"]:
        verdict, badge = "within noise", "noise"
    elif ratio >= 1:
        verdict, badge = f"{fmt_ratio(ratio)} {more}", "neutral" if per_flop else "faster"
    else:
        verdict, badge = f"{fmt_ratio(1 / ratio)} {less}", "neutral" if per_flop else "slower"
    notes = []
    if rb_row.get("scenario") == "testset":
        ia, ib = ra.get("images"), rb.get("images")
        if ia and ib and ia != ib:
            notes.append(f"passes of {fmt(ia)} vs {fmt(ib)} images: compared per image")
    if rb_row.get("batch_size") != ra_row.get("batch_size"):
        notes.append(f"batch {batch_label(ra_row.get('batch_size'))} vs {batch_label(rb_row.get('batch_size'))}")
    return {
        "config": config_label(rb_row, with_batch=rb_row.get("scenario") != "testset"),
        "scenario": rb_row.get("scenario"), "unit": "GFLOP/s" if per_flop else rb["unit"],
        "a_row": ra_row, "b_row": rb_row,
        "a_text": _rate_text(ra_row, ra, a.flops if per_flop else None),
        "b_text": _rate_text(rb_row, rb, b.flops if per_flop else None),
        "ratio": ratio, "ratio_text": fmt_ratio(ratio), "lo": lo, "hi": hi,
        "interval_text": f"{fmt(lo)}–{fmt(hi)}×" if lo is not None and hi is not None else "",
        "tested": test["tested"], "differs": test["differs"], "noise": test["tested"] and not test["differs"],
        "why": test["why"], "verdict": verdict, "badge": badge, "notes": notes, "sort": row_sort_key(rb_row),
    }


def compare(a: DocView, b: DocView) -> Dict[str, Any]:
    """Rows of b matched with rows of a; ratio = speed of b / speed of a (above 1: b is faster)."""
    diffs = identity_differences(a, b)
    blockers = [d for d in diffs if d.blocking]
    per_flop = bool(blockers) and cross_model_per_flop(a, b, diffs)
    lines: List[Dict[str, Any]] = []
    row_diffs: List[Difference] = []
    unmatched = 0
    if not blockers or per_flop:
        a_ok = [r for r in a.rows if r.get("status") == "ok"]
        for row in b.rows:
            if row.get("status") != "ok":
                continue
            other = match_row(a_ok, row)
            ra, rb = (rate(other), rate(row)) if other is not None else (None, None)
            if other is None or not ra or not rb or ra["unit"] != rb["unit"]:
                unmatched += 1
                continue
            sa, sb = sub(other, "artifact", "sha256"), sub(row, "artifact", "sha256")
            if not per_flop and sa and sb and sa != sb:
                row_diffs.append(Difference("artifact", config_label(row), str(sa)[:12], str(sb)[:12],
                                            "different artifacts: not compared", blocking=True))
                continue
            lines.append(_line(a, b, other, row, ra, rb, per_flop))
    lines.sort(key=lambda ln: ln["sort"])
    clear = [ln["ratio"] for ln in lines if ln["differs"]]
    geo = geomean(clear)
    if per_flop:
        kind = "cross-model: compared per FLOP (GFLOP/s), not per image"
    elif blockers:
        kind = "not comparable: " + ", ".join(d.what for d in blockers) + " differ"
    else:
        kind = "same device, same model" if a.device == b.device else "across devices, same model"
        if a.where != b.where and not (a.imported or b.imported):
            kind += f", {a.where} vs {b.where}"
    return {"a": a, "b": b, "kind": kind, "per_flop": per_flop, "comparable": not blockers,
            "differences": diffs + row_diffs, "blockers": blockers, "lines": lines, "unmatched": unmatched,
            "has_notes": any(ln["notes"] for ln in lines), "geomean": geo,
            "geomean_text": fmt_ratio(geo) if geo else "",
            "untested": sum(1 for ln in lines if not ln["tested"]),
            "anchor": f"cmp-{a.anchor}-{b.anchor}"}


def measurement_key(v: DocView) -> Optional[Tuple[Any, ...]]:
    """What makes two runs the same measurement: model sha256, suite name and test set (source checksum and
    image count); None when one of them is not recorded (such a file is never paired on it)."""
    data = v.suite.get("data") if isinstance(v.suite.get("data"), dict) else {}
    key = (v.model.get("sha256"), v.suite.get("name"), data.get("checksum"), v.suite.get("test_images"))
    return key if all(key) else None


def comparison_pairs(views: List[DocView], reference: Optional[DocView],
                     with_imported: bool = False) -> List[Tuple[DocView, DocView]]:
    """Which files are compared, in this order:
    1. runs of the same model, suite and test set on different launchers (host, a container) or devices:
       every such pair, the older run first;
    2. the first file given against each other file not yet paired with it;
    3. with `with_imported` only: imported tables (CSV imports in 2., the seed-study reference against each
       local run). Without it imported tables are shown in their own section and compared with nothing."""
    user = [v for v in views if v is not reference and (with_imported or not v.imported)]
    measured = [v for v in user if not v.imported]
    groups: Dict[Tuple[Any, ...], List[DocView]] = {}
    for v in measured:
        key = measurement_key(v)
        if key is not None:
            groups.setdefault(key, []).append(v)
    pairs: List[Tuple[DocView, DocView]] = []
    for group in groups.values():
        group = sorted(group, key=lambda v: v.created)      # stable: equal times keep the order given
        for i, a in enumerate(group):
            pairs += [(a, b) for b in group[i + 1:] if (a.where, a.device) != (b.where, b.device)]
    paired = {frozenset((id(a), id(b))) for a, b in pairs}
    if len(user) >= 2:
        pairs += [(user[0], o) for o in user[1:] if frozenset((id(user[0]), id(o))) not in paired]
    if reference is not None and with_imported:
        pairs += [(reference, v) for v in measured]
    return pairs


# ----------------------------------------------------------------------------------------------
# the public comparison `reproduce` calls

Doc = Union[Dict[str, Any], DocView]


def _view(d: Doc) -> DocView:
    return d if isinstance(d, DocView) else DocView(d)


def _top1(row: Dict[str, Any]) -> Optional[float]:
    from edgebench.report.fields import top1

    return top1(row)


def compare_documents(original: Doc, rerun: Doc) -> List[Difference]:
    """Every difference between an original result and its re-run that is beyond noise: identity (model,
    input, test set, artifacts, image, machine, kit), rows missing on one side, status changes, top-1
    changes of at least one test image, and speeds whose bootstrap interval excludes 1×. Speeds that
    cannot be tested (no raw samples) are listed when they differ by more than the CV limit.
    `a` of each Difference is the original, `b` the re-run. Documents are results dicts (results.load)."""
    a, b = _view(original), _view(rerun)
    cmp = compare(a, b)
    out = list(cmp["differences"])
    a_rows = {row_key(r): r for r in a.rows}
    b_rows = {row_key(r): r for r in b.rows}
    for key in sorted(set(a_rows) | set(b_rows), key=lambda k: tuple(str(x) for x in k)):
        ra, rb = a_rows.get(key), b_rows.get(key)
        name = config_label(ra or rb) + f" ({key[4]})"
        if ra is None or rb is None:
            out.append(Difference("missing row", name, "present" if ra else "absent", "present" if rb else "absent"))
            continue
        if ra.get("status") != rb.get("status"):
            out.append(Difference("status", name, str(ra.get("status")), str(rb.get("status")),
                                  str(rb.get("reason") or ra.get("reason") or "")))
            continue
        ta, tb = _top1(ra), _top1(rb)
        images = num(sub(rb, "accuracy", "images")) or num(sub(ra, "accuracy", "images"))
        if ta is not None and tb is not None and images and abs(ta - tb) * images >= 0.5:
            out.append(Difference("accuracy", name, f"{ta * 100:.2f}%", f"{tb * 100:.2f}%",
                                  f"{abs(ta - tb) * images:.0f} of {images:.0f} test images classified differently"))
    for line in cmp["lines"]:
        name = f"{line['config']} ({line['scenario']})"
        if line["differs"] or (not line["tested"] and abs(line["ratio"] - 1.0) > CV_LIMIT):
            out.append(Difference("speed", name, line["a_text"], line["b_text"],
                                  f"{line['verdict']}; {line['why']}"))
    return out


def differences_by_kind(diffs: Sequence[Difference]) -> Dict[str, List[Difference]]:
    out: Dict[str, List[Difference]] = {}
    for d in diffs:
        out.setdefault(d.kind, []).append(d)
    return out
