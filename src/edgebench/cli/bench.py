"""`edgebench bench`: the standardized benchmark entrypoint, the same on a host and in every container."""
from __future__ import annotations

import argparse
import sys

from edgebench.contracts.request import BenchRequest, options
from edgebench.contracts.vocabulary import EXIT_COULD_NOT_RUN, EXIT_OK, EXIT_ROWS_FAILED, NUM_CLASSES
from edgebench.errors import USER_ERRORS

EXIT_CODES = (f"exit status:\n  {EXIT_OK}  every row ok or skipped with a reason\n  "
              f"{EXIT_ROWS_FAILED}  the results file was written but some rows failed (their reasons are in "
              f"the file)\n  {EXIT_COULD_NOT_RUN}  nothing "
              f"could be measured: a bad request or suite, missing artifacts or data, a refusal (artifact sha256 "
              f"not the manifest's, --out exists, a model whose output width is not the {NUM_CLASSES} classes, "
              f"an unwritable or full disk)\n"
              f"  130 interrupted by Ctrl-C or SIGTERM (completed rows kept, --resume continues)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """`edgebench bench`'s options, built from BenchRequest's fields (`options()`: the one definition)."""
    for o in options():
        kw = {"help": o.help}
        if o.type == "flag":
            kw["action"] = "store_true"
        elif o.type == "list":
            kw.update(nargs="+", metavar=o.metavar)
        elif o.type == "int":
            kw["type"] = int
        if o.required:
            kw["required"] = True
        elif o.type != "flag":
            kw["default"] = o.default
        p.add_argument(o.flag, dest=o.name, **kw)


def request_from_args(args: argparse.Namespace) -> BenchRequest:
    """The request an `edgebench bench` command line spells."""
    return BenchRequest(**{o.name: getattr(args, o.name) for o in options()})


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench", help="run a benchmark suite on an artifacts folder and write a results JSON",
        description="Run every backend x precision x threads x scenario of a suite (default: the kit's "
                    "suites/default.yaml) against the exported artifacts beside model.keras. Each group runs in "
                    "its own process; rows are written as they complete, failures become rows with the reason. "
                    "Before anything runs, the suite is validated, every artifact's sha256 is checked against "
                    "the export manifest and an existing --out is protected. Frameworks' messages go to "
                    "<out>.log.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args) -> int:
    from edgebench.launchers.local import LocalLauncher

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        request = request_from_args(args)
        res = LocalLauncher(log=log).launch(request)
    except KeyboardInterrupt:
        return 130
    except USER_ERRORS as exc:  # our refusals and user mistakes: one line
        log(f"edgebench bench: {exc}")
        return EXIT_COULD_NOT_RUN
    print(res.results)
    failed = res.details.get("failed_rows", 0)
    if failed:
        log(f"{failed} rows failed (see their reasons in {res.results})")
        return EXIT_ROWS_FAILED
    return EXIT_OK
