"""SVG building blocks for the report's charts: scales, axes, text, legend, marks, and the one colour
per backend (the same in every chart of every report), precision by marker shape, threads by line style.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple
from xml.sax.saxutils import escape, quoteattr

from edgebench.contracts.vocabulary import BACKENDS
from edgebench.report.format import fmt_tick

KNOWN_BACKENDS: Tuple[str, ...] = tuple(BACKENDS)

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#1b9e77", "#7570b3", "#d95f02", "#66a61e", "#e7298a")
EXTRA = ("#a6761d", "#17becf", "#8c564b", "#bcbd22", "#e6ab02", "#393b79", "#843c39")
FONT = "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif"
INK, GRID, MUTED = "#222", "#e3e3e3", "#666"
MARKERS = {"fp32": "circle", "fp16": "square", "bf16": "diamond", "int8": "triangle"}
DASHES = ("", "7 4", "2 3", "9 3 2 3", "4 2", "1 2")


def backend_color(backend: Any) -> str:
    """The colour of a backend: fixed by its place in the vocabulary, so every chart agrees."""
    name = str(backend)
    if name in KNOWN_BACKENDS:
        return PALETTE[KNOWN_BACKENDS.index(name) % len(PALETTE)]
    spare = PALETTE[len(KNOWN_BACKENDS):] + EXTRA  # colours no known backend uses
    return spare[sum(ord(c) * (i + 1) for i, c in enumerate(name)) % len(spare)]


def marker_shape(precision: Any) -> str:
    return MARKERS.get(str(precision).lower(), "circle")


def dash_of(threads: Any, all_threads: Sequence[Any]) -> str:
    order = sorted({str(t) for t in all_threads}, key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))
    return DASHES[order.index(str(threads)) % len(DASHES)] if str(threads) in order else ""


class Chart:
    def __init__(self, kind: str, title: str, svg: str, caption: str = ""):
        self.kind = kind
        self.title = title
        self.svg = svg
        self.caption = caption
        self.filename = ""  # set by the renderer when written for the Markdown report


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
        out, t = [], math.ceil(self.lo / step) * step
        while t <= self.hi + 1e-9 * step:
            out.append(round(t, 10))
            t += step
        return out


def want_log(values: Sequence[float]) -> bool:
    pos = [v for v in values if v and v > 0]
    return bool(pos) and max(pos) / min(pos) > 20


def svg_open(kind: str, width: int, height: int, label: str) -> List[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{kind}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label={quoteattr(label)} font-family={quoteattr(FONT)} font-size="12">',
        f"<title>{escape(label)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff"/>',
    ]


def text(x: float, y: float, s: str, anchor: str = "start", size: int = 12, fill: str = INK,
         weight: str = "normal", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{fill}" '
            f'font-weight="{weight}"{extra}>{escape(s)}</text>')


def axis_x(parts: List[str], sx: Scale, y0: float, y1: float, label: str, ticks: Optional[List[float]] = None,
           tick_format=None) -> None:
    tick_format = tick_format or fmt_tick
    for t in ticks if ticks is not None else sx.ticks():
        x = sx(t)
        parts.append(f'<line x1="{x:.1f}" y1="{y0:.1f}" x2="{x:.1f}" y2="{y1:.1f}" stroke="{GRID}"/>')
        parts.append(text(x, y1 + 15, tick_format(t), "middle", 11, MUTED))
    parts.append(f'<line x1="{sx.a:.1f}" y1="{y1:.1f}" x2="{sx.b:.1f}" y2="{y1:.1f}" stroke="{MUTED}"/>')
    parts.append(text((sx.a + sx.b) / 2, y1 + 32, label, "middle", 12, INK))


def axis_y(parts: List[str], sy: Scale, x0: float, x1: float, label: str, tick_format=None) -> None:
    tick_format = tick_format or fmt_tick
    for t in sy.ticks():
        y = sy(t)
        parts.append(f'<line x1="{x0:.1f}" y1="{y:.1f}" x2="{x1:.1f}" y2="{y:.1f}" stroke="{GRID}"/>')
        parts.append(text(x0 - 6, y + 4, tick_format(t), "end", 11, MUTED))
    parts.append(f'<line x1="{x0:.1f}" y1="{sy.a:.1f}" x2="{x0:.1f}" y2="{sy.b:.1f}" stroke="{MUTED}"/>')
    cy = (sy.a + sy.b) / 2
    parts.append(text(16, cy, label, "middle", 12, INK, extra=f' transform="rotate(-90 16 {cy:.1f})"'))


def marker(shape: str, x: float, y: float, r: float, color: str, backend: Any, tip: str = "",
           opacity: str = "") -> str:
    """A data mark; `data-backend` and `data-color` let a test check one colour per backend."""
    attrs = (f'fill="{color}" stroke="#fff" data-backend={quoteattr(str(backend))} data-color="{color}"'
             + (f' fill-opacity="{opacity}"' if opacity else ""))
    title = f"<title>{escape(tip)}</title>" if tip else ""
    if shape == "square":
        return f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}" {attrs}>{title}</rect>'
    if shape == "diamond":
        pts = f"{x:.1f},{y - r * 1.3:.1f} {x + r * 1.3:.1f},{y:.1f} {x:.1f},{y + r * 1.3:.1f} {x - r * 1.3:.1f},{y:.1f}"
        return f'<polygon points="{pts}" {attrs}>{title}</polygon>'
    if shape == "triangle":
        pts = f"{x:.1f},{y - r * 1.3:.1f} {x + r * 1.2:.1f},{y + r * 0.9:.1f} {x - r * 1.2:.1f},{y + r * 0.9:.1f}"
        return f'<polygon points="{pts}" {attrs}>{title}</polygon>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" {attrs}>{title}</circle>'


def legend(parts: List[str], items: List[Dict[str, Any]], x: float, y: float) -> None:
    """items: {name, backend, precision, dash (None: no line)}."""
    for i, it in enumerate(items):
        yy = y + i * 18
        c = backend_color(it["backend"])
        if it.get("dash") is not None:
            dash = f' stroke-dasharray="{it["dash"]}"' if it["dash"] else ""
            parts.append(f'<line x1="{x:.1f}" y1="{yy:.1f}" x2="{x + 22:.1f}" y2="{yy:.1f}" stroke="{c}" '
                         f'stroke-width="2"{dash} data-backend={quoteattr(str(it["backend"]))} data-color="{c}"/>')
        parts.append(marker(marker_shape(it.get("precision")), x + 11, yy, 4, c, it["backend"]))
        parts.append(text(x + 28, yy + 4, it["name"], "start", 11, INK))
