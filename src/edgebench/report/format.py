"""Formatting of numbers and labels for the report: text in, text out, no statistics."""
from __future__ import annotations

import math
import re
from typing import Any, Optional


def num(x: Any) -> Optional[float]:
    """A finite number, or None (JSON null, strings, NaN, booleans are not numbers here)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def sub(d: Any, *keys: str) -> Any:
    """d[k1][k2]... or None where a level is missing or not an object."""
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


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


def fmt_pp(fraction_delta: Optional[float]) -> str:
    """A change of a fraction (0..1) as percentage points: +0.12 pp, ±0.00 pp."""
    if fraction_delta is None:
        return ""
    pp = fraction_delta * 100.0
    return "±0.00 pp" if abs(pp) < 0.005 else f"{pp:+.2f} pp"


def threads_label(t: Any) -> str:
    return "default" if t is None else str(t)


def batch_label(b: Any) -> str:
    return "?" if b is None else str(b)


def slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower()
    return s or "x"


def short_hash(h: Any) -> str:
    """The first 12 hex digits of a sha256 (or an image id 'sha256:...'), 'unknown' for none."""
    if not h:
        return "unknown"
    s = str(h)
    if s.startswith("sha256:"):
        s = s[7:]
    return s[:12]


def md_escape(text: Any) -> str:
    s = "" if text is None else str(text)
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("*", "\\*").replace("_", "\\_")
