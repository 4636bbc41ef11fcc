"""`edgebench env`: this machine's fingerprint; `--check` also imports and initialises backends (smoke test).

Without --check nothing heavy is imported (the backends are listed from the vocabulary); with it, each named
backend (all when none is named) is really probed: TensorRT initialises CUDA through cuda-python, so a broken
driver or binding fails the container's smoke test instead of passing it.
"""
from __future__ import annotations

import argparse
import json
import sys


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
    from edgebench.machine import fingerprint
    from edgebench.contracts.vocabulary import BACKENDS

    info = fingerprint.collect()
    names = runtimes.names()
    if args.check is None:
        info["backends"] = {n: {"format": BACKENDS[n][0], "device": BACKENDS[n][1], "checked": False}
                            for n in names if n in BACKENDS}
        print(json.dumps(info, indent=2))
        return 0
    unknown = [b for b in args.check if b not in names]
    if unknown:
        print(f"edgebench env: unknown backend(s) {', '.join(unknown)}; known: {', '.join(names)}", file=sys.stderr)
        return 2
    probe = args.check or names
    info["backends"] = {n: runtimes.availability(n) for n in probe}
    print(json.dumps(info, indent=2))
    missing = [b for b in args.check if not info["backends"][b].get("available")]
    for b in missing:
        print(f"backend {b!r} unavailable: {info['backends'][b].get('reason', 'unknown reason')}", file=sys.stderr)
    return 1 if missing else 0
