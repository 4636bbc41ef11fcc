"""Backends for the harness's own tests, loaded through $EDGEBENCH_BACKENDS (the plugin mechanism).

They read model.keras only to satisfy the artifact lookup; their logits are computed with numpy.
"""
from __future__ import annotations

import os
import signal
import time

import numpy as np

from edgebench.runtimes.base import Runtime


class _Fake(Runtime):
    artifact_format = "keras"
    precisions = ("fp32",)

    def _load_impl(self) -> None:
        self.calls = 0

    def _logits(self, x):
        return np.tile(np.arange(10, dtype=np.float32), (len(x), 1))


class Crash(_Fake):
    """Dies with SIGSEGV on its 5th call, as a native library would: after the accuracy pass, mid-scenario."""

    name = "crash"

    def _infer_impl(self, x):
        self.calls += 1
        if self.calls >= int(os.environ.get("EDGEBENCH_CRASH_AT", "5")):
            os.kill(os.getpid(), signal.SIGSEGV)
        return self._logits(x)


class Sleepy(_Fake):
    """Takes 20 ms a call: a slow backend to interrupt."""

    name = "sleepy"

    def _infer_impl(self, x):
        time.sleep(0.02)
        return self._logits(x)
