"""`edgebench` command line: the same entrypoint on a host and inside every container.

Every family registers its subcommand the same way: its own cli module with `add_parser(sub)`, listed in
`FAMILIES` below and imported directly (a family that fails to import is a bug, not a missing feature).
Heavy frameworks (TensorFlow, ONNX Runtime, ...) are imported by the subcommand that runs, so
`edgebench --help` and `edgebench env` work without them.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, Optional

from edgebench import __version__
from edgebench.errors import USER_ERRORS
from edgebench.util import tf_log_level

#: the subcommands' modules, in --help order; each has add_parser(sub). A new family adds one line here
#: (the deploy family: "edgebench.cli.deploy").
FAMILIES = (
    "edgebench.cli.train",      # train, models
    "edgebench.cli.export",     # export
    "edgebench.cli.bench",      # bench
    "edgebench.cli.report",     # report
    "edgebench.cli.env",        # env
    "edgebench.cli.deploy",     # devices, publish, deploy, reproduce
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgebench",
        description="Train, export and benchmark Keras models for edge devices (CIFAR-10 ResNet34 first).",
    )
    parser.add_argument("--version", action="version", version=f"edgebench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in FAMILIES:
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    # before any subcommand imports TensorFlow: its C++ INFO lines are not ours (EDGEBENCH_TF_LOG_LEVEL=0 keeps them)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", tf_log_level())
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except USER_ERRORS as exc:
        print(f"edgebench {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
