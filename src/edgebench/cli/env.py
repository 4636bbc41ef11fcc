"""`edgebench env`: this machine's fingerprint; `--check` also imports and initialises backends (smoke test).

Without --check nothing heavy is imported (the backends are listed from the vocabulary); with it, each named
backend (all when none is named) is really probed: TensorRT initialises CUDA through cuda-python, so a broken
driver or binding fails the container's smoke test instead of passing it.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Dict, List, Tuple

#: the top-level packages each backend imports (any one of a tuple will do): found with importlib.util.find_spec,
#: which imports nothing. A GPU backend also needs its GPU and driver: `--check` initialises them.
NEEDS: Dict[str, List[Tuple[str, ...]]] = {
    "keras": [("tensorflow",)], "keras-call": [("tensorflow",)], "keras-gpu": [("tensorflow",)],
    "savedmodel": [("tensorflow",)], "savedmodel-xla": [("tensorflow",)],
    "tflite": [("tflite_runtime", "tensorflow")],
    "onnxruntime": [("onnxruntime",)], "onnxruntime-cuda": [("onnxruntime",)], "onnxruntime-trt": [("onnxruntime",)],
    "tensorrt": [("tensorrt",), ("cuda",)], "tftrt": [("tensorflow",), ("tensorrt",)],
    "openvino": [("openvino",)], "openvino-throughput": [("openvino",)],
}
TORCH_NEEDS = [("torch",), ("onnx2torch",)]


def importable(backend: str) -> Dict[str, object]:
    """Whether the packages `backend` imports are installed (find_spec: nothing is imported)."""
    import importlib.util

    needs = NEEDS.get(backend, TORCH_NEEDS if backend.startswith("torch") else None)
    if needs is None:
        return {"packages": None, "importable": None}  # a plugin backend: only --check can tell
    found = {}
    for choice in needs:
        hit = next((m for m in choice if importlib.util.find_spec(m) is not None), None)
        found[hit or " or ".join(choice)] = hit is not None
    return {"packages": found, "importable": all(found.values())}


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("env", help="print this machine's environment fingerprint (JSON)",
                       description="Print the environment fingerprint recorded with every result. --check imports "
                                   "and initialises backends and exits 1 when a named one cannot run here.")
    p.add_argument("--check", nargs="*", default=None, metavar="BACKEND",
                   help="probe these backends (all when none is named) and fail if one is unavailable")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from edgebench import runtimes
    from edgebench.contracts.vocabulary import BACKENDS
    from edgebench.machine import fingerprint

    info = fingerprint.collect()
    names = runtimes.names()
    if args.check is None:
        info["backends"] = {n: dict({"format": BACKENDS[n][0], "device": BACKENDS[n][1], "checked": False},
                                    **importable(n)) for n in names if n in BACKENDS}
        print(json.dumps(info, indent=2))
        can = [n for n, b in info["backends"].items() if b["importable"]]
        gpu = [n for n in can if info["backends"][n]["device"] == "gpu"]
        print(f"can run here (their packages are installed): {', '.join(c for c in can if c not in gpu) or 'none'}"
              f"{'; GPU backends, if a GPU and driver answer: ' + ', '.join(gpu) if gpu else ''}. "
              f"`edgebench env --check [BACKEND ...]` initialises them.", file=sys.stderr)
        return 0
    unknown = [b for b in args.check if b not in names]
    if unknown:
        print(f"edgebench env: unknown backend(s) {', '.join(unknown)}; known: {', '.join(names)}", file=sys.stderr)
        return 2
    probe = args.check or names
    info["backends"] = {n: runtimes.availability(n) for n in probe}
    offer = _openvino_cpu(info["backends"])
    print(json.dumps(info, indent=2))
    if offer:
        print(f"openvino CPU: {offer}", file=sys.stderr)
    missing = [b for b in args.check if not info["backends"][b].get("available")]
    for b in missing:
        print(f"backend {b!r} unavailable: {info['backends'][b].get('reason', 'unknown reason')}", file=sys.stderr)
    return 1 if missing else 0


def _openvino_cpu(backends: Dict[str, Dict[str, object]]) -> str:
    """Add what the CPU offers (VNNI, AMX, BF16, Arm dot-product; OpenVINO's OPTIMIZATION_CAPABILITIES) to each
    available openvino backend's entry; returns the one-line summary ('' when none was probed)."""
    probed = [n for n, b in backends.items() if n.startswith("openvino") and b.get("available")]
    if not probed:
        return ""
    from edgebench.runtimes import openvino

    try:
        offer = openvino.cpu_capabilities()
    except Exception as exc:  # a capability probe must never hide an available backend
        offer = {"error": f"{type(exc).__name__}: {exc}"}
    for n in probed:
        backends[n]["cpu"] = offer
    return openvino.describe_offer(offer) if "offers" in offer else str(offer["error"])
