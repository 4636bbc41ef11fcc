"""Reports: results JSON in, report.html + report.md out (jinja2 templates, inline SVG charts).

    from edgebench.report import render_report
    html, md = render_report(["results/local.json"], "reports/today")
    from edgebench.report import compare_documents          # for `reproduce`
    diffs = compare_documents(original_doc, rerun_doc)      # [Difference, ...] beyond noise
    render_report([original, rerun], "reports/repro", reproduction=True)

Modules: `fields` (each field the report reads, with its unit), `format` (numbers and labels),
`stats` (speed of a row with its spread; the bootstrap noise test), `views` (one document prepared for
display), `columns` (table columns), `summary` (environment, highlights), `identity` (what must agree
before rows are compared), `compare` (comparisons and compare_documents), `svg` + `charts` (SVG),
`csvimport` (external measurements from CSV), `render` (templates, files).
The seed study's table ships as `edgebench/reference/seed-study.json` and is drawn beside local runs.
"""
from __future__ import annotations

from edgebench.report.compare import Difference, compare_documents
from edgebench.report.csvimport import import_csv
from edgebench.report.render import REFERENCE_PATH, ReportError, build_context, render_report

__all__ = ["render_report", "build_context", "import_csv", "REFERENCE_PATH", "ReportError", "Difference",
           "compare_documents"]
