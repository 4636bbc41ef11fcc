"""Published GPU peaks, the one copy: `reference/gpu-peaks.json` (dense TFLOP/s per precision, TF32 included,
and memory bandwidth per card). The floor column of every row (bench.floor) and the report's GPU section
(report.gpu) both read them from here.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from edgebench.contracts.vocabulary import TF32_EFFECTIVE_KEY

PEAKS_FILE = Path(__file__).resolve().parent / "reference" / "gpu-peaks.json"


def arithmetic(precision: str, settings: Optional[Dict[str, Any]]) -> str:
    """The peak a row's arithmetic is held to: `tf32` where FP32 ran on TF32 tensor cores (the runtime's
    recorded `tf32_effective`), else its precision."""
    return "tf32" if (settings or {}).get(TF32_EFFECTIVE_KEY) else precision


def load_peaks(path: Optional[Path] = None) -> List[Dict[str, Any]]:
    """The cards of the peaks file, most specific match first."""
    return json.loads(Path(path or PEAKS_FILE).read_text())["cards"]


def card_peaks(gpu_name: str, cards: Optional[List[Dict[str, Any]]] = None) -> Optional[Dict[str, Any]]:
    """The published peaks of the card nvidia-smi (or torch) calls `gpu_name`: the first entry one of whose
    lower-case 'match' strings occurs in the name, or None."""
    name = (gpu_name or "").lower()
    for card in cards if cards is not None else load_peaks():
        if any(m in name for m in card["match"]):
            return card
    return None
