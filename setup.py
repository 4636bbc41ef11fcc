"""Packaging glue that pyproject.toml cannot say: ship the repository's top-level `templates/` folder
(the only copy of the report templates) inside the package as `edgebench/templates/`.

Everything else about the package is in pyproject.toml. An editable install (`pip install -e .`) reads
the templates from the checkout (edgebench.report.render looks there after the packaged copy).
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
if not (HERE / "templates" / "report.html.j2").is_file():
    raise SystemExit(f"edgebench build: {HERE / 'templates'} lacks report.html.j2; the report templates "
                     "ship from the repository's templates/ folder (copy it into the build context)")

setup(
    # suites/ and reference/ hold only data files (package-data in pyproject.toml): listed so that setuptools
    # ships them without its "importable package absent from packages" warning
    packages=find_packages("src") + ["edgebench.suites", "edgebench.reference", "edgebench.templates"],
    package_dir={"": "src", "edgebench.templates": "templates"},
)
