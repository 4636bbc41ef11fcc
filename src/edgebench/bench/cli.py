"""`edgebench bench`: the standardized benchmark entrypoint, the same on a host and in every container."""
from __future__ import annotations

import argparse
import sys

from edgebench.contracts.vocabulary import EXIT_COULD_NOT_RUN, EXIT_OK, EXIT_ROWS_FAILED
from edgebench.launchers.request import BenchRequest, add_arguments

EXIT_CODES = (f"exit status: {EXIT_OK} every row ok or skipped with a reason; {EXIT_ROWS_FAILED} the results file "
              f"was written but some rows failed; {EXIT_COULD_NOT_RUN} nothing could be measured (bad request, "
              f"missing artifacts or data, a refused input); 130 interrupted (completed rows kept, --resume "
              f"continues)")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench", help="run a benchmark suite on an artifacts folder and write a results JSON",
        description="Run every backend x precision x threads x scenario of a suite (default: the kit's "
                    "suites/default.yaml) against the exported artifacts beside model.keras. Each group runs in "
                    "its own process; rows are written as they complete, failures become rows with the reason.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args) -> int:
    from edgebench.launchers.local import LocalLauncher

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        request = BenchRequest.from_args(args)
        res = LocalLauncher(log=log).launch(request)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        log(f"edgebench bench: {exc}")
        return EXIT_COULD_NOT_RUN
    except KeyboardInterrupt:
        return 130
    print(res.results)
    failed = res.details.get("failed_rows", 0)
    if failed:
        log(f"{failed} rows failed (see their reasons in {res.results})")
        return EXIT_ROWS_FAILED
    return EXIT_OK
