"""`edgebench report`: results JSON (and imported CSV) in, report.html + report.md out.

Registered by edgebench.cli through `add_parser(subparsers)`. Imports stay light (jinja2, no
TensorFlow), so the command runs in any container and on a laptop.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: what `edgebench report` exits with (shown by --help; `run` returns these)
EXIT_CODES = (
    (0, "report written (some inputs may have been named and skipped on stderr)"),
    (1, "nothing could be rendered: every input unreadable, or the output folder unwritable; nothing written"),
    (2, "a named input does not exist, or the request is incomplete (nothing to report, --reproduction "
        "without two files)"),
)


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "report", help="render report.html + report.md from results JSON files",
        description="Render an HTML report (self-contained, charts inline) and a Markdown report from "
                    "results JSON files, with a table per device and scenario, charts, the environment of "
                    "each device, comparisons between files (the first file against each other one) and "
                    "the seed study's table as a reference. Unreadable files are named and skipped.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="CSV import (--import-csv): a header row with at least `backend` and `scenario`; other "
               "columns: device, precision, threads, batch_size, status, reason, avg_s, max_s, min_s, "
               "repeats, images, mean_ms, p50_ms, p90_ms, p95_ms, p99_ms, min_ms, max_ms, std_ms, "
               "throughput_ips, top1, size_mb, cpu_percent, power_w, energy_j_per_image, gpu_util, gflops, "
               "note. See edgebench.report.csvimport.\n\nexit codes:\n"
               + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES),
    )
    p.add_argument("results", nargs="*", metavar="RESULTS.json", help="results files (edgebench bench output)")
    p.add_argument("--out", default="reports", help="output folder (default: ./reports, as invoke report)")
    p.add_argument("--title", help="report title (default: 'edgebench report')")
    p.add_argument("--baseline", default="keras",
                   help="backend that speed-ups are measured against, FP32 at the same threads (default: keras)")
    p.add_argument("--no-reference", action="store_true", help="leave out the seed study's reference table")
    p.add_argument("--with-imported", action="store_true",
                   help="compare imported tables (the seed study, --import-csv) with the measured runs and list "
                        "them in 'At a glance' (default: their own section, compared with nothing)")
    p.add_argument("--import-csv", action="append", default=[], metavar="FILE",
                   help="external measurements to include, as CSV (repeatable); also written as results "
                        "JSON to OUT/imported/ so they can be re-rendered")
    p.add_argument("--source", help="where the CSV numbers come from (required with --import-csv)")
    p.add_argument("--note", help="a note shown with the imported numbers")
    p.add_argument("--device", help="device name for CSV rows without a `device` column")
    p.add_argument("--templates", help="folder with report.html.j2 / report.md.j2 to use instead of the kit's")
    p.add_argument("--reproduction", action="store_true",
                   help="exactly two results files, an original and its re-run: render them as 'original vs "
                        "re-run' with every difference beyond noise (no reference)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    """Exit 0: report written; 1: nothing could be rendered (unreadable inputs, unwritable folder: nothing
    written); 2: a named input does not exist or the request is incomplete."""
    from edgebench import results
    from edgebench.report import ReportError, import_csv, render_report
    from edgebench.report.format import slug

    def fail(code: int, text: str) -> int:
        print(f"edgebench report: {text}", file=sys.stderr)
        return code

    if not args.results and not args.import_csv and args.no_reference:
        return fail(2, "nothing to report (give results files, --import-csv, or keep the reference)")
    for path in list(args.results) + list(args.import_csv):
        if not Path(path).exists():
            return fail(2, f"{path}: no such file (nothing written)")
    if args.reproduction and len(args.results) != 2:
        return fail(2, f"--reproduction takes exactly two results files (original, re-run), not {len(args.results)}")
    out = Path(args.out)
    extra, pending = [], []
    failed_imports = 0
    for csv_path in args.import_csv:
        try:
            docs = import_csv(csv_path, source=args.source, note=args.note, device=args.device)
        except results.ResultsError as exc:
            print(f"edgebench report: skipped {exc.path}: {exc.reason}", file=sys.stderr)
            failed_imports += 1
            continue
        for doc in docs:
            dest = out / "imported" / f"{Path(csv_path).stem}-{slug(doc['device'])}.json"
            extra.append((doc, str(dest)))
            pending.append((dest, doc))
    if args.import_csv and not extra and not args.results:
        return fail(1, "none of the CSV files could be imported (nothing written)")
    try:
        html, md = render_report(args.results, out, title=args.title,
                                 include_reference=not args.no_reference and not args.reproduction,
                                 baseline=args.baseline, extra_documents=extra, template_dir=args.templates,
                                 reproduction=args.reproduction, with_imported=args.with_imported)
        _write_imports(pending)
    except ReportError as exc:
        return fail(1, str(exc))
    print(f"report: {html}")
    print(f"report: {md}")
    return 0


def _write_imports(pending) -> None:
    """The imported CSV as results JSON beside the report, so it can be re-rendered (after the report)."""
    from edgebench.report import ReportError
    from edgebench.util import atomic_write_json

    for dest, doc in pending:
        try:
            atomic_write_json(dest, doc)
        except OSError as exc:
            raise ReportError(dest, f"cannot write ({exc.strerror or exc})") from exc
