"""Shared gate for the tests that run the kit against a Jetson-only package in its pinned version.

They need the real Python 3.8 (the Jetson image's) and the package at the image's pin; `.ci/py38-check` installs
requirements/py38-jetson-real.txt into its 3.8 venv and runs them with EDGEBENCH_REQUIRE=real-packages, so there
a missing package fails instead of skipping. Anywhere else they skip and say what is missing.
"""
from __future__ import annotations

import os
import sys

import pytest

REQUIRE_KEY = "real-packages"


def require(dist: str, version: str) -> None:
    """Skip (or fail, under EDGEBENCH_REQUIRE=real-packages) unless this is Python 3.8 with `dist`==`version`."""
    from importlib import metadata

    reason = None
    if sys.version_info[:2] != (3, 8):
        reason = (f"needs the Jetson image's Python 3.8 (this is {sys.version.split()[0]}): run by .ci/py38-check "
                  f"(make py38)")
    else:
        try:
            found = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found = None
        if found != version:
            reason = (f"needs {dist}=={version} (the Jetson image's pin), found {found or 'none'}: "
                      f"pip install -r requirements/py38-jetson-real.txt")
    if reason is None:
        return
    if REQUIRE_KEY in {r.strip() for r in os.environ.get("EDGEBENCH_REQUIRE", "").split(",")}:
        pytest.fail(f"EDGEBENCH_REQUIRE names {REQUIRE_KEY!r}, but this test {reason}")
    pytest.skip(reason)
