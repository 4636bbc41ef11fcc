"""The "GPU inference time" section of a report, built from results documents only.

`gpu_section(docs)` returns None when no document has a row of a GPU backend, else a dict the partials
templates/report_gpu.html.j2 and report_gpu.md.j2 render (the main templates include them as
`{% if gpu %}{% include "report_gpu.html.j2" %}{% endif %}` with `gpu=gpu_section(docs)`):

    {"title", "cards": [{"name", "driver", "peaks": {...} | None}], "models": [model, ...], "notes": [...]}
    model: {"name", "sha256", "gflops_per_image", "accuracy_note", "variants": [variant, ...],
            "cpu": [{"threads", "avg_s", "min_s", "max_s", "repeats", "ips"}], "best": {...}}
    variant: {"backend", "precision", "how", "b1_ms", "b1_cv", "best_ips", "best_batch", "b64_ips", "testset_s",
              "speedup_b1", "speedup_b64", "speedup_testset", "floor_pct", "tflops", "bound_b1", "bound_best",
              "top1", "delta_top1", "max_logit_diff", "card"}
    (top1 and delta_top1, against the reference run of the same document, are None for an untrained model:
    the model's accuracy_note says why)

Each variant says what bounds it, by a stated rule over rows of the same run: a CUDA graph of the same
precision much faster at batch 1 means CPU launch overhead; a compute-only row much faster at the same
batch means host<->device copies; otherwise the share of the compute floor (FLOPs over the card's peak).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from edgebench.contracts.vocabulary import TF32_EFFECTIVE_KEY
from edgebench.peaks import arithmetic, card_peaks
from edgebench.report import fields
from edgebench.report.format import num, sub

TITLE = "GPU inference time"
FASTER = 1.3  # "much faster" in the bound rule: 30% or more
UNDERFILLED = 0.10  # below this share of the compute floor a row is latency-bound, not throughput-bound
BASELINE = ("torch", "fp32")  # the eager FP32 path of the first GPU run
GAIN_BATCH = 64  # gains over the baseline are shown at batch 1 and at this batch (the two points)


def _pct(x: float) -> str:
    return f"{x:.2f}%" if x < 1 else f"{x:.0f}%"


def settings(row: Dict[str, Any]) -> Dict[str, Any]:
    """How a torch row was run: the settings its runtime recorded (extra.backend_versions.settings)."""
    s = sub(row, "extra", "backend_versions", "settings")
    return s if isinstance(s, dict) else {}


def _how(s: Dict[str, Any]) -> str:
    if not s:
        return ""
    mode = s.get("mode", "?")
    if mode in ("compile", "compile-graph"):
        mode = f"compile ({s.get('compile_mode', 'default')})" + (" + CUDA graph" if mode == "compile-graph" else "")
    elif mode == "graph":
        mode = "CUDA graph"
    parts = [mode, "channels-last" if s.get("channels_last") else "NCHW",
             {"pageable": "pageable copies", "pinned": "pinned async copies",
              "device": "input on GPU (compute only)"}.get(s.get("io"), str(s.get("io")))]
    if s.get(TF32_EFFECTIVE_KEY):
        parts.append("TF32")
    if s.get("sync_check"):
        parts.append("no host sync (checked)")
    if s.get("inline_copies"):
        parts.append(f"copies inside the graph up to batch {s['inline_copies']}")
    if s.get("chunk"):
        parts.append(f"copy overlapped with compute in chunks of {s['chunk']}")
    if s.get("benchmark_limit") == 0:
        parts.append("every cuDNN engine timed")
    fused = s.get("fused")
    if s.get("fuse") == "cudnn" and isinstance(fused, dict):
        parts.append(f"cuDNN-fused: {fused.get('conv_relu')} conv+ReLU, {fused.get('conv_add_relu')} conv+add+ReLU, "
                     f"{len(fused.get('left') or [])} convs left")
    return ", ".join(parts)


#: the settings that make a fused row's unfused partner (the same run without fuse: cudnn)
PARTNER_KEYS = ("mode", "compile_mode", "io", "channels_last", TF32_EFFECTIVE_KEY, "freeze")


def _against_unfused(variants: List[Dict[str, Any]]) -> None:
    """Each fused row (fuse: cudnn) against the unfused row of the same settings and precision, at batch 1
    and at the fused row's best batch: the ratios lead its two bound texts."""
    for v in variants:
        if v["settings"].get("fuse") != "cudnn":
            continue
        key = (v["precision"],) + tuple(v["settings"].get(k) for k in PARTNER_KEYS)
        w = next((w for w in variants if w["settings"].get("fuse", "none") == "none"
                  and (w["precision"],) + tuple(w["settings"].get(k) for k in PARTNER_KEYS) == key), None)
        if w is None:
            continue
        v["unfused"] = w["backend"]
        b1 = w["b1_ms"] / v["b1_ms"] if w["b1_ms"] and v["b1_ms"] else None
        best = w["ips_by_batch"].get(v["best_batch"])
        at_best = v["best_ips"] / best if best and v["best_ips"] else None
        v["vs_unfused_b1"], v["vs_unfused_best"] = b1, at_best
        if b1:
            v["bound_b1"] = f"{b1:.2f}x {w['backend']} at b1; " + v["bound_b1"]
        if at_best:
            v["bound_best"] = f"{at_best:.2f}x {w['backend']} at batch {v['best_batch']}; " + v["bound_best"]


def _is_gpu_row(row: Dict[str, Any]) -> bool:
    return row.get("compute") == "gpu" or str(row.get("backend", "")).startswith("torch")


def _ok(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [r for r in rows if r.get("status") == "ok"]


def _model_key(doc: Dict[str, Any]) -> Tuple[str, str]:
    m = doc.get("model") or {}
    return (str(m.get("sha256") or ""), str(m.get("name") or "?"))


def _variant(rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    by = {(r["scenario"], r.get("batch_size")): r for r in rows}
    any_row = rows[0]
    lat = by.get(("latency", 1)) or by.get(("throughput", 1))
    tput = [r for r in rows if r["scenario"] == "throughput" and num(r.get("throughput_ips"))]
    best = max(tput, key=lambda r: r["throughput_ips"]) if tput else None
    test = next((r for r in rows if r["scenario"] == "testset"), None)
    s = settings(any_row)
    return {
        "backend": any_row["backend"], "precision": any_row["precision"], "how": _how(s), "settings": s,
        "b1_ms": num(sub(lat, "latency_ms", "median")), "b1_cv": num(sub(lat, "latency_ms", "cv")),
        "best_ips": num(sub(best, "throughput_ips")), "best_batch": sub(best, "batch_size"),
        "b64_ips": next((num(r.get("throughput_ips")) for r in tput if r.get("batch_size") == GAIN_BATCH), None),
        "delta_top1": num(sub(any_row, "accuracy", "delta_top1")),
        "floor_pct": None, "floor_pct_b1": None, "tflops": None,
        "testset_s": num(sub(test, "testset", "avg_s")), "testset_batch": sub(test, "batch_size"),
        "testset_min_s": num(sub(test, "testset", "min_s")), "testset_max_s": num(sub(test, "testset", "max_s")),
        "top1": num(sub(any_row, "accuracy", "top1")),
        "max_logit_diff": num(sub(any_row, "accuracy", "max_abs_logit_diff")),
        "card": s.get("gpu_name"), "ips_by_batch": {r.get("batch_size"): num(r.get("throughput_ips")) for r in tput},
    }


def _bounds(v: Dict[str, Any], variants: List[Dict[str, Any]]) -> None:
    """Fill bound_b1 and bound_best by the rule in the module docstring."""
    def arithmetic(w):  # TF32 is other arithmetic than FP32 proper: never compare across it
        return (w["precision"], bool(w["settings"].get(TF32_EFFECTIVE_KEY)))

    same_prec = [w for w in variants if arithmetic(w) == arithmetic(v) and w is not v]
    graphs = [w for w in same_prec if (w["settings"].get("mode") in ("graph", "compile-graph")
                                       or "reduce-overhead" in w["how"]) and w["b1_ms"]]
    mode = v["settings"].get("mode")
    fastest_graph = min(graphs, key=lambda w: w["b1_ms"]) if graphs else None
    if (v["b1_ms"] and fastest_graph and mode not in ("graph", "compile-graph")
            and v["b1_ms"] >= FASTER * fastest_graph["b1_ms"]):
        v["bound_b1"] = (f"CPU launch overhead: {fastest_graph['backend']} replays it "
                         f"{v['b1_ms'] / fastest_graph['b1_ms']:.1f}x faster")
    elif v["floor_pct_b1"] is not None and v["floor_pct_b1"] < UNDERFILLED * 100:
        v["bound_b1"] = f"serial small kernels: GPU underfilled ({_pct(v['floor_pct_b1'])} of the dense peak)"
    else:
        v["bound_b1"] = f"compute: {v['floor_pct_b1']:.0f}% of the dense peak" if v["floor_pct_b1"] is not None else ""
    b = v["best_batch"]
    compute_only = [w for w in same_prec if w["settings"].get("io") == "device" and w["ips_by_batch"].get(b)]
    co = max(compute_only, key=lambda w: w["ips_by_batch"][b]) if compute_only else None
    if v["best_ips"] and co and v["settings"].get("io") != "device" and co["ips_by_batch"][b] >= FASTER * v["best_ips"]:
        v["bound_best"] = (f"host<->device copies: compute only runs {co['ips_by_batch'][b] / v['best_ips']:.1f}x "
                           f"faster at batch {b}")
    elif v["floor_pct"] is not None:
        v["bound_best"] = f"kernel efficiency: {v['floor_pct']:.0f}% of the dense peak at batch {b}"
    else:
        v["bound_best"] = ""


def _cpu_rows(docs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    out = []
    for d in docs:
        for r in _ok(d.get("rows") or []):
            if r.get("scenario") == "testset" and not _is_gpu_row(r):
                t = r.get("testset") or {}
                out.append({"backend": r["backend"], "precision": r["precision"], "threads": r.get("threads"),
                            "avg_s": num(t.get("avg_s")), "min_s": num(t.get("min_s")), "max_s": num(t.get("max_s")),
                            "repeats": t.get("repeats"), "ips": num(r.get("throughput_ips")),
                            "batch": r.get("batch_size")})
    return sorted(out, key=lambda c: (c["backend"], c["precision"], c["threads"] or 0))


def _model(key: Tuple[str, str], docs: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    gpu_rows = [r for d in docs for r in _ok(d.get("rows") or []) if _is_gpu_row(r)]
    if not gpu_rows:
        return None
    groups: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
    for r in gpu_rows:
        groups.setdefault((r["backend"], r["precision"]), []).append(r)
    variants = [_variant(rows) for rows in groups.values()]
    flops = num(sub(docs[0], "model", "flops_per_image"))
    gpus = [g for d in docs for g in (sub(d, "environment", "gpus") or [])]
    peaks = card_peaks(str(gpus[0].get("name", ""))) if gpus else None
    for v in variants:
        prec = arithmetic(v["precision"], v["settings"])
        peak = num(sub(peaks, "tflops", prec))
        if flops and peak:
            v["peak_tflops"] = peak
            if v["best_ips"]:
                v["floor_pct"] = flops * v["best_ips"] / 1e12 / peak * 100
                v["tflops"] = flops * v["best_ips"] / 1e12
            if v["b1_ms"]:
                v["floor_pct_b1"] = flops * (1000.0 / v["b1_ms"]) / 1e12 / peak * 100
    for v in variants:
        _bounds(v, variants)
    _against_unfused(variants)
    base = next((v for v in variants if (v["backend"], v["precision"]) == BASELINE), None)
    for v in variants:
        v["speedup_b1"] = base["b1_ms"] / v["b1_ms"] if base and base["b1_ms"] and v["b1_ms"] else None
        v["speedup_b64"] = v["b64_ips"] / base["b64_ips"] if base and base["b64_ips"] and v["b64_ips"] else None
        v["speedup_testset"] = (base["testset_s"] / v["testset_s"] if base and base["testset_s"] and v["testset_s"]
                                else None)
        del v["settings"], v["ips_by_batch"]
    variants.sort(key=lambda v: (v["b1_ms"] is None, -(v["speedup_b1"] or 0), v["backend"], v["precision"]))

    def pick(field, lowest):
        have = [v for v in variants if v[field]]
        return (min if lowest else max)(have, key=lambda v: v[field]) if have else None

    note = fields.chance_note(gpu_rows)
    if note:  # never a number for an untrained model
        for v in variants:
            v["top1"] = v["delta_top1"] = None
    return {"name": key[1], "sha256": key[0], "gflops_per_image": flops / 1e9 if flops else None,
            "accuracy_note": note, "variants": variants, "cpu": _cpu_rows(docs),
            "best": {"b1": pick("b1_ms", True), "throughput": pick("best_ips", False),
                     "testset": pick("testset_s", True)}}


def gpu_section(docs: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The section's data, or None when no document holds a measured GPU row."""
    docs = [d for d in docs if isinstance(d, dict)]
    if not any(_is_gpu_row(r) for d in docs for r in _ok(d.get("rows") or [])):
        return None
    by_model: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
    for d in docs:
        by_model.setdefault(_model_key(d), []).append(d)
    models = [m for m in (_model(k, ds) for k, ds in by_model.items()) if m]
    cards, seen = [], set()
    for d in docs:
        for g in sub(d, "environment", "gpus") or []:
            name = str(g.get("name", ""))
            if name and name not in seen:
                seen.add(name)
                cards.append({"name": name, "driver": g.get("driver"), "peaks": card_peaks(name)})
    notes = [
        "b1 ms: median latency of one image per call; best img/s: the highest throughput of the batch sweep; "
        "test set: one pass over the test images at the suite's batch size, average (min) of its repeats; the "
        "first repeat includes what a new batch size costs (a capture, a compile), the min does not.",
        "Speed-ups are against the eager FP32 path (backend torch, fp32) of the same run, on the same card.",
        f"Bound: a CUDA graph of the same precision {FASTER}x faster at batch 1 means CPU launch overhead; a "
        f"compute-only row {FASTER}x faster at the same batch means host<->device copies; otherwise the share of "
        f"the card's published dense peak for that precision (TF32 where it was on) reached at that batch.",
        "Compare timings only within one card and one run.",
    ]
    return {"title": TITLE, "cards": cards, "models": models, "notes": notes}
