"""The report's charts as inline SVG (no JavaScript library, no CDN, no network to view them).

Each function takes a document view (or a comparison) and returns a Chart, or None when there is
nothing worth drawing. A backend has one colour in every chart (edgebench.report.svg.backend_color);
precision is the marker's shape, threads the line's style. Speed charts draw each point's spread.
"""
from __future__ import annotations

import random
from typing import Any, Dict, List, Optional, Tuple
from xml.sax.saxutils import escape, quoteattr

from edgebench.report.fields import raw_latencies_ms
from edgebench.report.format import fmt, fmt_ratio, fmt_tick, num, threads_label
from edgebench.report.stats import rate
from edgebench.report.svg import (
    INK,
    MUTED,
    Chart,
    Scale,
    axis_x,
    axis_y,
    backend_color,
    dash_of,
    legend,
    marker,
    marker_shape,
    svg_open,
    text,
    want_log,
)
from edgebench.report.views import DocView
from edgebench.stats_core import percentile

MAX_POINTS = 240  # raw latencies drawn per strip
WHAT = {"testset": "test-set pass", "latency": "batch-1 latency", "throughput": "throughput sweep"}

# a series: key -> {"backend", "precision", "threads", "name", "points": [(x, y, lo, hi, tip)]}
Series = Dict[Any, Dict[str, Any]]


def _series_chart(kind: str, title: str, series: Series, x_label: str, y_label: str, x_log: bool,
                  x_ticks: Optional[List[float]], caption: str) -> Chart:
    left, right, top, bottom = 70, 540, 36, 300
    height = max(360, top + 8 + 18 * len(series) + 12)
    width = 780
    pts_all = [p for s in series.values() for p in s["points"]]
    xs = [p[0] for p in pts_all]
    ys = [y for p in pts_all for y in (p[1], p[2], p[3]) if y is not None]
    y_log = want_log(ys)
    sx = Scale(min(xs), max(xs), left, right, log=x_log)
    sy = Scale(min(ys), max(ys), bottom, top, log=y_log, zero=not y_log)
    parts = svg_open(kind, width, height, title)
    parts.append(text(left, 20, title, "start", 14, INK, "bold"))
    axis_y(parts, sy, left, right, y_label)
    axis_x(parts, sx, top, bottom, x_label, ticks=x_ticks)
    all_threads = [s["threads"] for s in series.values()]
    items = []
    for s in series.values():
        c, pts = backend_color(s["backend"]), sorted(s["points"])
        dash = dash_of(s["threads"], all_threads) if s.get("by_threads") else ""
        if len(pts) > 1:
            d = " ".join(f"{'M' if i == 0 else 'L'}{sx(p[0]):.1f},{sy(p[1]):.1f}" for i, p in enumerate(pts))
            parts.append(f'<path d="{d}" fill="none" stroke="{c}" stroke-width="2"'
                         + (f' stroke-dasharray="{dash}"' if dash else "")
                         + f' data-backend={quoteattr(str(s["backend"]))} data-color="{c}"/>')
        for x, y, lo, hi, tip in pts:
            if lo is not None and hi is not None:
                X = sx(x)
                parts.append(f'<line class="spread" x1="{X:.1f}" y1="{sy(lo):.1f}" x2="{X:.1f}" y2="{sy(hi):.1f}" '
                             f'stroke="{c}" stroke-width="1.5" data-backend={quoteattr(str(s["backend"]))} '
                             f'data-color="{c}"/>')
                for v in (lo, hi):
                    parts.append(f'<line x1="{X - 4:.1f}" y1="{sy(v):.1f}" x2="{X + 4:.1f}" y2="{sy(v):.1f}" '
                                 f'stroke="{c}" stroke-width="1.5"/>')
            parts.append(marker(marker_shape(s["precision"]), sx(x), sy(y), 4.5, c, s["backend"], tip))
        items.append({"name": s["name"], "backend": s["backend"], "precision": s["precision"], "dash": dash})
    legend(parts, items, right + 20, top + 8)
    if y_log:
        parts.append(text(right, bottom + 44, "log scale", "end", 10, MUTED))
    parts.append("</svg>")
    return Chart(kind, title, "\n".join(parts), caption)


def _point(x: float, r: Dict[str, Any], tip: str) -> Tuple[float, float, Optional[float], Optional[float], str]:
    spread = f" (spread {fmt(r['lo'])}–{fmt(r['hi'])}, {r['spread']})" if r.get("lo") and r.get("hi") else ""
    return (x, r["value"], r.get("lo"), r.get("hi"), f"{tip}: {fmt(r['value'])} img/s{spread}")


def latency_distribution(view: DocView) -> Optional[Chart]:
    """Per-request latency of each ok latency row: box (25th-75th percentile, median line), whiskers
    (1st-99th percentile) and the raw values as a jittered strip; the colour is the backend's."""
    lanes = []
    for r in view.rows_of("latency", ok_only=True):
        lat = r.get("latency_ms") if isinstance(r.get("latency_ms"), dict) else None
        if lat is None:
            continue
        raw = sorted(raw_latencies_ms(r))
        if len(raw) >= 2:
            st = {"p1": percentile(raw, 1), "p25": percentile(raw, 25), "p50": percentile(raw, 50),
                  "p75": percentile(raw, 75), "p99": percentile(raw, 99)}
        elif num(lat.get("median")) is not None:
            st = {"p1": num(lat.get("min")), "p25": None, "p50": num(lat.get("median")), "p75": None,
                  "p99": num(lat.get("p99"))}
        else:
            continue
        label = f"{r.get('backend')} {r.get('precision')} · {threads_label(r.get('threads'))} thr"
        if r.get("batch_size") not in (1, None):
            label += f" · b{r.get('batch_size')}"
        lanes.append((label, r, raw, st))
    if not lanes:
        return None
    values = [v for _, _, raw, st in lanes for v in (raw or [x for x in st.values() if x is not None])]
    lane_h, width, top = 34, 780, 36
    left = int(min(360, max(150, 16 + 6.3 * max(len(lab) for lab, _, _, _ in lanes))))
    right, bottom = width - 30, top + lane_h * len(lanes) + 6
    sx = Scale(min(values), max(values), left, right, log=want_log(values))
    title = "Latency distribution per backend (ms per request)"
    parts = svg_open("latency", width, bottom + 44, title)
    parts.append(text(12, 20, title, "start", 14, INK, "bold"))
    axis_x(parts, sx, top, bottom, "milliseconds per request" + (" (log scale)" if sx.log else ""))
    rng = random.Random(0)  # fixed jitter: the same input draws the same picture
    for i, (label, r, raw, st) in enumerate(lanes):
        cy = top + lane_h * i + lane_h / 2 + 3
        c, be = backend_color(r.get("backend")), quoteattr(str(r.get("backend")))
        parts.append(text(left - 8, cy + 4, label, "end", 11, INK))
        step = max(1, len(raw) // MAX_POINTS)
        for v in raw[::step]:
            parts.append(f'<circle cx="{sx(v):.1f}" cy="{cy + rng.uniform(-9, 9):.1f}" r="1.6" fill="{c}" '
                         f'fill-opacity="0.35" data-backend={be} data-color="{c}"/>')
        lo, hi = st.get("p1"), st.get("p99")
        if lo is not None and hi is not None:
            parts.append(f'<line x1="{sx(lo):.1f}" y1="{cy:.1f}" x2="{sx(hi):.1f}" y2="{cy:.1f}" stroke="{INK}"/>')
            for v in (lo, hi):
                parts.append(f'<line x1="{sx(v):.1f}" y1="{cy - 5:.1f}" x2="{sx(v):.1f}" y2="{cy + 5:.1f}" '
                             f'stroke="{INK}"/>')
        if st.get("p25") is not None and st.get("p75") is not None:
            x0, x1 = sx(st["p25"]), sx(st["p75"])
            parts.append(f'<rect x="{x0:.1f}" y="{cy - 9:.1f}" width="{max(x1 - x0, 1.5):.1f}" height="18" '
                         f'fill="{c}" fill-opacity="0.45" stroke="{c}" data-backend={be} data-color="{c}"/>')
        x = sx(st["p50"])
        tip = (f"{label}: p50 {fmt(st['p50'])} ms" + (f", p99 {fmt(st['p99'])} ms" if st.get("p99") else "")
               + (f", {len(raw)} requests" if raw else ""))
        parts.append(f'<line x1="{x:.1f}" y1="{cy - 11:.1f}" x2="{x:.1f}" y2="{cy + 11:.1f}" stroke="{INK}" '
                     f'stroke-width="2.5"><title>{escape(tip)}</title></line>')
    parts.append("</svg>")
    return Chart("latency", title, "\n".join(parts),
                 "Box: 25th to 75th percentile, thick line: median, whiskers: 1st to 99th percentile, dots: the "
                 "raw per-request latencies. Colour: backend.")


def throughput_vs_batch(view: DocView) -> Optional[Chart]:
    series: Series = {}
    for r in view.rows_of("throughput", ok_only=True):
        rt, b = rate(r), num(r.get("batch_size"))
        if not rt or b is None or b <= 0:
            continue
        key = (r.get("backend"), r.get("precision"), r.get("threads"))
        name = f"{key[0]} {key[1]} · {threads_label(key[2])} thr"
        s = series.setdefault(key, {"backend": key[0], "precision": key[1], "threads": key[2], "name": name,
                                    "by_threads": True, "points": []})
        s["points"].append(_point(b, rt, f"{name}, batch {int(b)}"))
    batches = sorted({p[0] for s in series.values() for p in s["points"]})
    if len(batches) < 2:
        return None
    return _series_chart("throughput", "Throughput against batch size", series, "batch size (log scale)",
                         "images per second", True, batches,
                         "Images per second at each batch size; higher is better. Colour: backend; marker: "
                         "precision; line style: threads; bars: spread (interquartile range of the latencies).")


def thread_scaling(view: DocView) -> Optional[Chart]:
    """Images per second against threads, from the scenario with the most thread counts."""
    best = None
    for scenario in ("testset", "latency", "throughput"):
        series: Series = {}
        for r in view.rows_of(scenario, ok_only=True):
            rt, t = rate(r), r.get("threads")
            if not rt or rt["unit"] != "img/s" or not isinstance(t, int):
                continue
            key = (r.get("backend"), r.get("precision"), r.get("batch_size"))
            name = f"{key[0]} {key[1]}" + (f" · b{key[2]}" if scenario == "throughput" else "")
            s = series.setdefault(key, {"backend": key[0], "precision": key[1], "threads": None, "name": name,
                                        "batch": key[2], "points": []})
            s["points"].append(_point(float(t), rt, f"{name}, {t} threads"))
        series = {k: v for k, v in series.items() if len({p[0] for p in v["points"]}) >= 2}
        threads = sorted({p[0] for s in series.values() for p in s["points"]})
        if len(threads) >= 2 and (best is None or len(threads) > len(best[2])):
            best = (scenario, series, threads)
    if best is None:
        return None
    scenario, series, threads = best
    if scenario == "throughput" and len(series) > 8:  # one batch size per backend keeps it readable
        largest = max(s["batch"] or 0 for s in series.values())
        series = {k: v for k, v in series.items() if (v["batch"] or 0) == largest}
    spread = "slowest–fastest pass" if scenario == "testset" else "interquartile range of the latencies"
    return _series_chart("threads", "Thread scaling", series, "threads", "images per second", False, threads,
                         f"Images per second against the thread setting ({WHAT[scenario]}); a flat line means "
                         f"threads make no difference. Colour: backend; marker: precision; bars: spread ({spread}).")


def speed_vs_accuracy(view: DocView) -> Tuple[Optional[Chart], List[str]]:
    """Top-1 against speed, one point per backend x precision (its fastest ok row of the scenario that
    covers most backends). Returns the chart and the configurations left out for lack of accuracy."""
    best_scn, best_n = None, 0
    for scenario in ("testset", "throughput", "latency"):
        n = len({(r.get("backend"), r.get("precision")) for r in view.rows_of(scenario, ok_only=True) if rate(r)})
        if n > best_n:
            best_scn, best_n = scenario, n
    if best_scn is None:
        return None, []
    points: Dict[Any, Tuple[float, float, Dict[str, Any]]] = {}
    missing: List[str] = []
    for r in view.rows_of(best_scn, ok_only=True):
        rt = rate(r)
        if not rt or rt["unit"] != "img/s":
            continue
        key = (r.get("backend"), r.get("precision"))
        v = view.row_view(r)
        if v["top1"] is None:
            if f"{key[0]} {key[1]}" not in missing:
                missing.append(f"{key[0]} {key[1]}")
            continue
        if key not in points or rt["value"] > points[key][0]:
            points[key] = (rt["value"], v["top1"] * 100.0, r)
    missing = [m for m in missing if tuple(m.split(" ", 1)) not in points]
    if not points:
        return None, missing
    left, right, top, bottom = 70, 540, 36, 300
    width, height = 780, max(360, top + 8 + 18 * len(points) + 12)
    xs, ys = [p[0] for p in points.values()], [p[1] for p in points.values()]
    x_log = want_log(xs)
    sx = Scale(min(xs), max(xs), left, right, log=x_log)
    y_lo, y_hi = min(ys), max(ys)
    if y_hi - y_lo < 2:
        y_lo, y_hi = y_lo - 1, y_hi + 1
    sy = Scale(y_lo, y_hi, bottom, top)
    title = "Speed against accuracy"
    parts = svg_open("accuracy", width, height, title)
    parts.append(text(left, 20, title, "start", 14, INK, "bold"))
    axis_y(parts, sy, left, right, "top-1 %")
    axis_x(parts, sx, top, bottom, f"images per second, fastest row per backend ({WHAT[best_scn]})"
           + (" (log scale)" if x_log else ""))
    for key, (x, y, r) in points.items():
        tip = f"{key[0]} {key[1]}: {fmt(x)} img/s at {threads_label(r.get('threads'))} threads, top-1 {y:.2f}%"
        parts.append(marker(marker_shape(key[1]), sx(x), sy(y), 6, backend_color(key[0]), key[0], tip))
    legend(parts, [{"name": f"{k[0]} {k[1]}", "backend": k[0], "precision": k[1], "dash": None} for k in points],
           right + 20, top + 8)
    parts.append("</svg>")
    return (Chart("accuracy", title, "\n".join(parts), "Up and to the right is better. Colour: backend; marker: "
                  "precision. Configurations without a measured accuracy are not plotted."), missing)


def comparison_bars(cmp: Dict[str, Any]) -> Optional[Chart]:
    lines = cmp["lines"]
    if not lines:
        return None
    lane_h, width, top = 24, 780, 40
    left = int(min(400, max(180, 16 + 6.3 * max(len(f"{ln['scenario']}: {ln['config']}") for ln in lines))))
    right, bottom = width - 70, top + lane_h * len(lines) + 4
    ratios = [ln["ratio"] for ln in lines] + [v for ln in lines for v in (ln["lo"], ln["hi"]) if v]
    sx = Scale(min(ratios + [1.0]), max(ratios + [1.0]), left, right, log=True)
    unit = "GFLOP/s ratio" if cmp["per_flop"] else "speed ratio"
    title = f"{cmp['b'].label} relative to {cmp['a'].label}"
    parts = svg_open("comparison", width, bottom + 46, title)
    parts.append(text(12, 20, title, "start", 14, INK, "bold"))
    axis_x(parts, sx, top, bottom, f"{unit} (log scale; right of 1× = {cmp['b'].label} higher)",
           tick_format=lambda v: f"{fmt_tick(v)}×")
    x1 = sx(1.0)
    colors = {"faster": "#2e8b57", "slower": "#c0392b", "noise": "#9a9a9a", "untested": "#c8b27a", "neutral": "#4e79a7"}
    for i, ln in enumerate(lines):
        cy = top + lane_h * i + lane_h / 2 + 2
        x = sx(ln["ratio"])
        parts.append(text(left - 8, cy + 4, f"{ln['scenario']}: {ln['config']}", "end", 11, INK))
        parts.append(f'<rect x="{min(x, x1):.1f}" y="{cy - 7:.1f}" width="{max(abs(x - x1), 1.5):.1f}" height="14" '
                     f'fill="{colors[ln["badge"]]}">'
                     f'<title>{escape(ln["config"] + ": " + ln["verdict"])}</title></rect>')
        if ln["lo"] and ln["hi"]:
            parts.append(f'<line x1="{sx(ln["lo"]):.1f}" y1="{cy:.1f}" x2="{sx(ln["hi"]):.1f}" y2="{cy:.1f}" '
                         f'stroke="{INK}" stroke-width="1.2"/>')
        parts.append(text(max(x, x1) + 4, cy + 4, fmt_ratio(ln["ratio"]) + (" ~" if ln["noise"] else ""), "start",
                          10, MUTED))
    parts.append(f'<line x1="{x1:.1f}" y1="{top - 4:.1f}" x2="{x1:.1f}" y2="{bottom:.1f}" stroke="{INK}"/>')
    parts.append("</svg>")
    caption = ("Blue: per-FLOP ratio of different models; grey (~): within noise; sand: untested." if cmp["per_flop"]
               else "Green: faster, red: slower, grey (~): within noise, sand: untested (no raw samples). "
                    "Black line: 95% bootstrap interval of the ratio.")
    return Chart("comparison", title, "\n".join(parts), caption)


def charts_for(view: DocView) -> Tuple[List[Chart], List[str]]:
    """All charts of one document, and notes on what could not be drawn."""
    charts, notes = [], []
    for fn in (latency_distribution, throughput_vs_batch, thread_scaling):
        c = fn(view)
        if c is not None:
            charts.append(c)
    acc_chart, missing = speed_vs_accuracy(view)
    if acc_chart is not None:
        charts.append(acc_chart)
    if missing:
        notes.append("Speed against accuracy leaves out (no accuracy measured): " + ", ".join(missing) + ".")
    return charts, notes
