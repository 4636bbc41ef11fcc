"""Training off a terminal is never silent: a progress line on a timer, and an epoch line that keeps training and
evaluation throughput apart (real TensorFlow, a small subset)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def test_progress_lines_on_a_timer_and_throughput_apart(tmp_path, cifar_source):
    cmd = [sys.executable, "-m", "edgebench", "train", "--data", cifar_source, "--out", str(tmp_path / "run"),
           "--model", "resnet18-half", "--epochs", "1", "--train-limit", "1024", "--test-limit", "512"]
    env = dict(os.environ, EDGEBENCH_PROGRESS_S="1", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stamps, lines = [], []
    for line in proc.stderr:  # stdout is a pipe, not a terminal: Keras' bar is off, our lines are on
        stamps.append(time.monotonic())
        lines.append(line.rstrip())
    proc.wait(timeout=300)
    assert proc.returncode == 0, "\n".join(lines[-30:])
    tick = re.compile(r"epoch 1/1: (batch \d+/16, \d+ img/s|starting|first batch|evaluating)[ ,]")
    ticks = [i for i, s in enumerate(lines) if tick.match(s)]
    assert ticks, "no progress line:\n" + "\n".join(lines)
    gaps = [b - a for a, b in zip([stamps[i] for i in ticks], [stamps[i] for i in ticks][1:])]
    assert all(g < 5 for g in gaps), gaps  # every second, give or take a loaded machine
    epoch = [s for s in lines if s.startswith("epoch 1/1: training")]
    assert len(epoch) == 1, lines
    m = re.match(r"epoch 1/1: training (\d+) s \((\d+) img/s\); evaluation (\d+) s \((\d+) img/s\)", epoch[0])
    assert m, epoch[0]
    assert int(m.group(4)) > int(m.group(2))  # evaluation (no gradients) is faster than training: not one number
