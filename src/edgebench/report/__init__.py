"""Reports: results JSON in, report.html + report.md out (jinja2 templates, inline SVG charts).

    from edgebench.report import render_report
    html, md = render_report(["results/local.json"], "reports/today")

Modules: `data` (loading, row views, tables, speed-ups, comparisons with a within-noise flag),
`charts` (SVG), `csvimport` (external measurements from CSV), `render` (templates, files).
The seed study's table ships as `edgebench/reference/seed-study.json` and is drawn beside local runs.
"""
from __future__ import annotations

from edgebench.report.csvimport import import_csv
from edgebench.report.render import REFERENCE_PATH, build_context, render_report

__all__ = ["render_report", "build_context", "import_csv", "REFERENCE_PATH"]
