"""The bench's time estimate: the stop rule's terms, and the calibration on this machine's reference pass."""
from __future__ import annotations

from pathlib import Path

import pytest

from edgebench.bench import progress
from edgebench.bench import suite as suite_mod

SUITES = Path(__file__).resolve().parents[2] / "src" / "edgebench" / "suites"


def _demo_groups():
    return suite_mod.load(str(SUITES / "demo.yaml"), cores=2).groups


def test_calibrated_speed_comes_from_the_reference_pass():
    speed = progress.calibrated({"images": 1000, "infer_seconds": 0.5, "load_seconds": 3.0}, cores=2)
    assert speed.ips == 2000 and speed.load_s == 3.0
    assert speed.for_threads(1) == 1000 and speed.for_threads(2) == 2000 and speed.for_threads(8) == 2000
    assert progress.calibrated(None, 2) is None and progress.calibrated({"images": 10}, 2) is None


def test_a_slower_machine_gets_a_longer_estimate():
    g = _demo_groups()[0]
    fast = progress.group_seconds(g, 1000, speed=progress.Speed(ips=5000, load_s=2, cores=2))
    slow = progress.group_seconds(g, 1000, speed=progress.Speed(ips=50, load_s=9, cores=2))
    assert slow > fast + 7  # the start-up and the test-set passes both scale


def test_min_iterations_bound_when_they_take_longer_than_min_seconds():
    g = _demo_groups()[0]
    cfg = dict(g.scenarios)
    cfg["throughput"] = dict(cfg["throughput"], batch_sizes=[256], min_iterations=10, min_seconds=0.1,
                             warmup_iterations=0, warmup_seconds=0)
    g.scenarios = {"throughput": cfg["throughput"]}
    speed = progress.Speed(ips=256, load_s=0, cores=0)
    # the accuracy pass over 1,000 images (3.9 s) + 10 iterations of 256 images at 256 img/s (10 s) + 0.3 s
    assert progress.group_seconds(g, 1000, speed=speed) == pytest.approx(1000 / 256 + 10 + 0.3)


def test_recalibrate_replaces_the_assumed_estimate_of_groups_not_started():
    groups = _demo_groups()
    p = progress.Progress(groups, 1000)
    assumed = p.total()
    p.recalibrate(progress.Speed(ips=100, load_s=20, cores=2))
    assert p.total() > assumed
