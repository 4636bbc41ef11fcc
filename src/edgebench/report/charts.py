"""Charts as inline SVG, generated here: no JavaScript library, no CDN, no network to view them.

Each chart function takes prepared data and returns a Chart (or None when there is nothing worth
drawing); the same SVG text goes inline into report.html and into charts/*.svg for report.md.
"""
from __future__ import annotations

import math
import random
from typing import Any, Dict, List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape, quoteattr

from edgebench.report.data import DocView, fmt, fmt_ratio, fmt_tick, num, percentile, rate, raw_latencies, threads_label

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#bab0ac", "#1b9e77", "#7570b3")
KNOWN_BACKENDS = ("keras", "keras-gpu", "savedmodel", "tflite", "onnxruntime", "tensorrt", "tftrt", "torch")
FONT = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif"
INK, GRID, MUTED = "#222", "#e3e3e3", "#666"
MAX_POINTS = 240  # raw latencies drawn per strip


class Chart:
    def __init__(self, kind: str, title: str, svg: str, caption: str = ""):
        self.kind = kind
        self.title = title
        self.svg = svg
        self.caption = caption
        self.filename = ""  # set by the renderer when written for the Markdown report


def _color_map(keys: Sequence[Any]) -> Dict[Any, str]:
    out: Dict[Any, str] = {}
    used = 0
    for k in keys:
        if k in out:
            continue
        out[k] = PALETTE[used % len(PALETTE)]
        used += 1
    return out


# ----------------------------------------------------------------------------------------------
# scales

class Scale:
    def __init__(self, lo: float, hi: float, a: float, b: float, log: bool = False, zero: bool = False):
        if log:
            lo, hi = max(lo, 1e-12), max(hi, 1e-12)
            if hi / lo < 1.5:  # too narrow for decades: widen around the middle
                mid = math.sqrt(lo * hi)
                lo, hi = mid / 1.5, mid * 1.5
            lo, hi = lo / 1.15, hi * 1.15
        else:
            if zero:
                lo = min(0.0, lo)
            span = hi - lo
            if span <= 0:
                span = abs(hi) or 1.0
                lo, hi = lo - span * 0.5, hi + span * 0.5
            else:
                if not zero or lo < 0:
                    lo -= span * 0.06
                hi += span * 0.06
        self.lo, self.hi, self.a, self.b, self.log = lo, hi, a, b, log

    def __call__(self, v: float) -> float:
        if self.log:
            v = max(v, 1e-12)
            t = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            t = (v - self.lo) / (self.hi - self.lo)
        return self.a + t * (self.b - self.a)

    def ticks(self) -> List[float]:
        if self.log:
            e0, e1 = math.floor(math.log10(self.lo)), math.ceil(math.log10(self.hi))
            mults = (1, 1.5, 2, 3, 5, 7) if e1 - e0 <= 1 else (1, 2, 5) if e1 - e0 <= 3 else (1,)
            out = [m * 10 ** e for e in range(e0, e1 + 1) for m in mults]
            return [t for t in out if self.lo <= t <= self.hi]
        span = self.hi - self.lo
        raw = span / 6.0
        mag = 10 ** math.floor(math.log10(raw))
        step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
        start = math.ceil(self.lo / step) * step
        out, t = [], start
        while t <= self.hi + 1e-9 * step:
            out.append(round(t, 10))
            t += step
        return out


def _want_log(values: Sequence[float]) -> bool:
    pos = [v for v in values if v and v > 0]
    return bool(pos) and max(pos) / min(pos) > 20


# ----------------------------------------------------------------------------------------------
# svg pieces

def _svg_open(kind: str, width: int, height: int, label: str) -> List[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{kind}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label={quoteattr(label)} font-family={quoteattr(FONT)} font-size="12">',
        f"<title>{escape(label)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
    ]


def _text(x: float, y: float, s: str, anchor: str = "start", size: int = 12, fill: str = INK,
          weight: str = "normal", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{fill}" '
            f'font-weight="{weight}"{extra}>{escape(s)}</text>')


def _axis_x(parts: List[str], sx: Scale, y0: float, y1: float, label: str, ticks: Optional[List[float]] = None,
            tick_format=None) -> None:
    tick_format = tick_format or fmt_tick
    for t in ticks if ticks is not None else sx.ticks():
        x = sx(t)
        parts.append(f'<line x1="{x:.1f}" y1="{y0:.1f}" x2="{x:.1f}" y2="{y1:.1f}" stroke="{GRID}"/>')
        parts.append(_text(x, y1 + 15, tick_format(t), "middle", 11, MUTED))
    parts.append(f'<line x1="{sx.a:.1f}" y1="{y1:.1f}" x2="{sx.b:.1f}" y2="{y1:.1f}" stroke="{MUTED}"/>')
    parts.append(_text((sx.a + sx.b) / 2, y1 + 32, label, "middle", 12, INK))


def _axis_y(parts: List[str], sy: Scale, x0: float, x1: float, label: str, tick_format=None) -> None:
    tick_format = tick_format or fmt_tick
    for t in sy.ticks():
        y = sy(t)
        parts.append(f'<line x1="{x0:.1f}" y1="{y:.1f}" x2="{x1:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(_text(x0 - 6, y + 4, tick_format(t), "end", 11, MUTED))
    parts.append(f'<line x1="{x0:.1f}" y1="{sy.a:.1f}" x2="{x0:.1f}" y2="{sy.b:.1f}" stroke="{MUTED}"/>')
    cy = (sy.a + sy.b) / 2
    parts.append(_text(16, cy, label, "middle", 12, INK, extra=f' transform="rotate(-90 16 {cy:.1f})"'))


def _legend(parts: List[str], items: List[Tuple[str, str]], x: float, y: float, line: bool = True) -> None:
    for i, (name, color) in enumerate(items):
        yy = y + i * 18
        if line:
            parts.append(f'<line x1="{x:.1f}" y1="{yy:.1f}" x2="{x + 18:.1f}" y2="{yy:.1f}" stroke="{color}" '
                         f'stroke-width="2.5"/>')
        parts.append(f'<circle cx="{x + 9:.1f}" cy="{yy:.1f}" r="4" fill="{color}"/>')
        parts.append(_text(x + 24, yy + 4, name, "start", 11, INK))


def _series_chart(kind: str, title: str, series: Dict[Any, List[Tuple[float, float, str]]], names: Dict[Any, str],
                  x_label: str, y_label: str, x_log: bool, x_ticks: Optional[List[float]], caption: str,
                  y_log: Optional[bool] = None) -> Chart:
    width, height = 760, 360
    left, right, top, bottom = 70, 560, 36, 300
    xs = [p[0] for pts in series.values() for p in pts]
    ys = [p[1] for pts in series.values() for p in pts]
    if y_log is None:
        y_log = _want_log(ys)
    sx = Scale(min(xs), max(xs), left, right, log=x_log)
    sy = Scale(min(ys), max(ys), bottom, top, log=y_log, zero=not y_log)
    parts = _svg_open(kind, width, height, title)
    parts.append(_text(left, 20, title, "start", 14, INK, "bold"))
    _axis_y(parts, sy, left, right, y_label)
    _axis_x(parts, sx, top, bottom, x_label, ticks=x_ticks)
    colors = _color_map(list(series))
    for key, pts in series.items():
        pts = sorted(pts)
        c = colors[key]
        if len(pts) > 1:
            d = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y, _) in enumerate(pts))
            parts.append(f'<path d="{d}" fill="none" stroke="{c}" stroke-width="2"/>')
        for x, y, tip in pts:
            parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{c}" stroke="#fff">'
                         f'<title>{escape(tip)}</title></circle>')
    _legend(parts, [(names[k], colors[k]) for k in series], right + 24, top + 8)
    if y_log:
        parts.append(_text(right, height - 8, "log scale", "end", 10, MUTED))
    parts.append("</svg>")
    return Chart(kind, title, "\n".join(parts), caption)


# ----------------------------------------------------------------------------------------------
# the charts

def latency_distribution(view: DocView) -> Optional[Chart]:
    """Per-request latency of each ok latency row: box (25th-75th percentile, median line),
    whiskers (1st-99th percentile) and the raw values as a jittered strip."""
    rows = [r for r in view.rows_of("latency") if r.get("status") == "ok" and isinstance(r.get("latency_ms"), dict)]
    lanes = []
    for r in rows:
        raw = sorted(raw_latencies(r))
        lat = r["latency_ms"]
        if len(raw) >= 2:
            st = {"p1": percentile(raw, 1), "p25": percentile(raw, 25), "p50": percentile(raw, 50),
                  "p75": percentile(raw, 75), "p99": percentile(raw, 99), "min": raw[0], "max": raw[-1]}
        else:
            med = num(lat.get("median"))
            if med is None:
                continue
            st = {"p1": num(lat.get("min")), "p25": None, "p50": med, "p75": None, "p99": num(lat.get("p99")),
                  "min": num(lat.get("min")), "max": num(lat.get("max"))}
        label = f"{r.get('backend')} {r.get('precision')} · {threads_label(r.get('threads'))} thr"
        if r.get("batch_size") not in (1, None):
            label += f" · b{r.get('batch_size')}"
        lanes.append((label, r, raw, st))
    if not lanes:
        return None
    values = [v for _, _, raw, st in lanes for v in (list(raw) or [x for x in st.values() if x is not None])]
    lane_h = 34
    longest = max(len(label) for label, _, _, _ in lanes)
    width, top = 760, 36
    left = int(min(360, max(150, 16 + 6.3 * longest)))
    right = width - 30
    bottom = top + lane_h * len(lanes) + 6
    height = bottom + 44
    sx = Scale(min(values), max(values), left, right, log=_want_log(values))
    title = "Latency distribution per backend (ms per request)"
    parts = _svg_open("latency", width, height, title)
    parts.append(_text(12, 20, title, "start", 14, INK, "bold"))
    _axis_x(parts, sx, top, bottom, "milliseconds per request" + (" (log scale)" if sx.log else ""))
    colors = _color_map([(r.get("backend"), r.get("precision")) for _, r, _, _ in lanes])
    rng = random.Random(0)  # fixed jitter: the same input draws the same picture
    for i, (label, r, raw, st) in enumerate(lanes):
        cy = top + lane_h * i + lane_h / 2 + 3
        c = colors[(r.get("backend"), r.get("precision"))]
        parts.append(_text(left - 8, cy + 4, label, "end", 11, INK))
        if raw:
            step = max(1, len(raw) // MAX_POINTS)
            for v in raw[::step]:
                parts.append(f'<circle cx="{sx(v):.1f}" cy="{cy + rng.uniform(-9, 9):.1f}" r="1.6" fill="{c}" '
                             f'fill-opacity="0.35"/>')
        lo, hi = st.get("p1") or st.get("min"), st.get("p99") or st.get("max")
        if lo is not None and hi is not None:
            parts.append(f'<line x1="{sx(lo):.1f}" y1="{cy:.1f}" x2="{sx(hi):.1f}" y2="{cy:.1f}" stroke="{INK}"/>')
            for v in (lo, hi):
                parts.append(f'<line x1="{sx(v):.1f}" y1="{cy - 5:.1f}" x2="{sx(v):.1f}" y2="{cy + 5:.1f}" stroke="{INK}"/>')
        if st.get("p25") is not None and st.get("p75") is not None:
            x0, x1 = sx(st["p25"]), sx(st["p75"])
            parts.append(f'<rect x="{x0:.1f}" y="{cy - 9:.1f}" width="{max(x1 - x0, 1.5):.1f}" height="18" '
                         f'fill="{c}" fill-opacity="0.45" stroke="{c}"/>')
        x = sx(st["p50"])
        tip = (f"{label}: p50 {fmt(st['p50'])} ms" + (f", p99 {fmt(st['p99'])} ms" if st.get("p99") else "")
               + (f", {len(raw)} requests" if raw else ""))
        parts.append(f'<line x1="{x:.1f}" y1="{cy - 11:.1f}" x2="{x:.1f}" y2="{cy + 11:.1f}" stroke="{INK}" '
                     f'stroke-width="2.5"><title>{escape(tip)}</title></line>')
    parts.append("</svg>")
    caption = ("Box: 25th to 75th percentile, thick line: median, whiskers: 1st to 99th percentile, "
               "dots: the raw per-request latencies.")
    return Chart("latency", title, "\n".join(parts), caption)


def throughput_vs_batch(view: DocView) -> Optional[Chart]:
    series: Dict[Any, List[Tuple[float, float, str]]] = {}
    names: Dict[Any, str] = {}
    for r in view.rows_of("throughput"):
        rt, b = rate(r), num(r.get("batch_size"))
        if not rt or b is None or b <= 0:
            continue
        key = (r.get("backend"), r.get("precision"), r.get("threads"))
        names[key] = f"{key[0]} {key[1]} · {threads_label(key[2])} thr"
        series.setdefault(key, []).append((b, rt["value"], f"{names[key]}, batch {int(b)}: {fmt(rt['value'])} img/s"))
    batches = sorted({p[0] for pts in series.values() for p in pts})
    if len(batches) < 2:
        return None
    title = "Throughput against batch size"
    return _series_chart("throughput", title, series, names, "batch size (log scale)", "images per second",
                         x_log=True, x_ticks=batches, caption="Images per second at each batch size; higher is better.")


def thread_scaling(view: DocView) -> Optional[Chart]:
    """Images per second against threads, from the scenario with the most thread counts."""
    best = None
    for scenario in ("testset", "latency", "throughput"):
        series: Dict[Any, List[Tuple[float, float, str]]] = {}
        names: Dict[Any, str] = {}
        for r in view.rows_of(scenario):
            rt, t = rate(r), r.get("threads")
            if not rt or rt["unit"] != "img/s" or not isinstance(t, int):
                continue
            key = (r.get("backend"), r.get("precision"), r.get("batch_size"))
            names[key] = f"{key[0]} {key[1]}" + (f" · b{key[2]}" if scenario == "throughput" else "")
            series.setdefault(key, []).append(
                (float(t), rt["value"], f"{names[key]}, {t} threads: {fmt(rt['value'])} img/s"))
        series = {k: v for k, v in series.items() if len({p[0] for p in v}) >= 2}
        threads = sorted({p[0] for pts in series.values() for p in pts})
        if len(threads) >= 2 and (best is None or len(threads) > len(best[3])):
            best = (scenario, series, names, threads)
    if best is None:
        return None
    scenario, series, names, threads = best
    if scenario == "throughput" and len(series) > 8:  # one batch size per backend keeps it readable
        largest = max(k[2] or 0 for k in series)
        series = {k: v for k, v in series.items() if (k[2] or 0) == largest}
    title = "Thread scaling"
    what = {"testset": "test-set pass", "latency": "batch-1 latency", "throughput": "throughput sweep"}[scenario]
    return _series_chart("threads", title, series, names, "threads", "images per second", x_log=False,
                         x_ticks=threads,
                         caption=f"Images per second against the thread setting ({what}); a flat line means "
                                 "threads make no difference.")


def speed_vs_accuracy(view: DocView) -> Tuple[Optional[Chart], List[str]]:
    """Top-1 against speed, one point per backend x precision (its fastest ok row of the scenario that
    covers most backends). Returns the chart and the configurations left out for lack of accuracy."""
    best_scn, best_n = None, 0
    for scenario in ("testset", "throughput", "latency"):
        n = len({(r.get("backend"), r.get("precision")) for r in view.rows_of(scenario) if rate(r)})
        if n > best_n:
            best_scn, best_n = scenario, n
    if best_scn is None:
        return None, []
    points: Dict[Any, Tuple[float, float, Dict[str, Any]]] = {}
    missing: List[str] = []
    for r in view.rows_of(best_scn):
        rt = rate(r)
        if not rt or rt["unit"] != "img/s":
            continue
        key = (r.get("backend"), r.get("precision"))
        acc, _ = view.accuracy(r)
        top1 = None
        if acc:
            v = num(acc.get("top1"))
            top1 = v / 100.0 if v is not None and v > 1 else v
        if top1 is None:
            name = f"{key[0]} {key[1]}"
            if name not in missing:
                missing.append(name)
            continue
        if key not in points or rt["value"] > points[key][0]:
            points[key] = (rt["value"], top1 * 100.0, r)
    missing = [m for m in missing if tuple(m.split(" ", 1)) not in points]
    if not points:
        return None, missing
    width, height = 760, 360
    left, right, top, bottom = 70, 560, 36, 300
    xs = [p[0] for p in points.values()]
    ys = [p[1] for p in points.values()]
    x_log = _want_log(xs)
    sx = Scale(min(xs), max(xs), left, right, log=x_log)
    y_lo, y_hi = min(ys), max(ys)
    if y_hi - y_lo < 2:
        y_lo, y_hi = y_lo - 1, y_hi + 1
    sy = Scale(y_lo, y_hi, bottom, top)
    title = "Speed against accuracy"
    what = {"testset": "test-set pass", "latency": "batch-1 latency", "throughput": "throughput sweep"}[best_scn]
    parts = _svg_open("accuracy", width, height, title)
    parts.append(_text(left, 20, title, "start", 14, INK, "bold"))
    _axis_y(parts, sy, left, right, "top-1 %")
    _axis_x(parts, sx, top, bottom, f"images per second, fastest row per backend ({what})"
            + (" (log scale)" if x_log else ""))
    colors = _color_map(list(points))
    for key, (x, y, r) in points.items():
        tip = f"{key[0]} {key[1]}: {fmt(x)} img/s at {threads_label(r.get('threads'))} threads, top-1 {y:.2f}%"
        parts.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="6" fill="{colors[key]}" stroke="#fff">'
                     f'<title>{escape(tip)}</title></circle>')
    _legend(parts, [(f"{k[0]} {k[1]}", colors[k]) for k in points], right + 24, top + 8, line=False)
    parts.append("</svg>")
    caption = "Up and to the right is better. Configurations without a measured accuracy are not plotted."
    return Chart("accuracy", title, "\n".join(parts), caption), missing


def comparison_bars(cmp: Dict[str, Any]) -> Optional[Chart]:
    lines = cmp["lines"]
    if not lines:
        return None
    lane_h = 24
    longest = max(len(f"{l['scenario']}: {l['config']}") for l in lines)
    width, top = 760, 40
    left = int(min(400, max(180, 16 + 6.3 * longest)))  # room for the longest label at 11 px
    right = width - 70
    bottom = top + lane_h * len(lines) + 4
    height = bottom + 46
    ratios = [l["ratio"] for l in lines]
    lo, hi = min(ratios + [1.0]), max(ratios + [1.0])
    sx = Scale(lo, hi, left, right, log=True)
    a, b = cmp["a"].label, cmp["b"].label
    title = f"{b} relative to {a}"
    parts = _svg_open("comparison", width, height, title)
    parts.append(_text(12, 20, title, "start", 14, INK, "bold"))
    _axis_x(parts, sx, top, bottom, "speed ratio (log scale; right of 1× = faster)",
            tick_format=lambda v: f"{fmt_tick(v)}×")
    x1 = sx(1.0)
    for i, l in enumerate(lines):
        cy = top + lane_h * i + lane_h / 2 + 2
        color = "#9a9a9a" if l["noise"] else ("#2e8b57" if l["ratio"] >= 1 else "#c0392b")
        x = sx(l["ratio"])
        parts.append(_text(left - 8, cy + 4, f"{l['scenario']}: {l['config']}", "end", 11, INK))
        parts.append(f'<rect x="{min(x, x1):.1f}" y="{cy - 7:.1f}" width="{max(abs(x - x1), 1.5):.1f}" height="14" '
                     f'fill="{color}"><title>{escape(l["config"] + ": " + l["verdict"])}</title></rect>')
        parts.append(_text(max(x, x1) + 4, cy + 4, l["ratio_text"] + (" ~" if l["noise"] else ""), "start", 10, MUTED))
    parts.append(f'<line x1="{x1:.1f}" y1="{top - 4:.1f}" x2="{x1:.1f}" y2="{bottom:.1f}" stroke="{INK}"/>')
    parts.append("</svg>")
    caption = "Green: faster, red: slower, grey (~): within noise."
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
