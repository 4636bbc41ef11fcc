"""Backends for the Trust tests, loaded through $EDGEBENCH_BACKENDS: no framework, numpy logits.

- `hang`: its load takes EDGEBENCH_HANG_S seconds (default 300): a reference step to interrupt;
- `width7`: a model with 7 outputs instead of CIFAR-10's 10;
- `quick`: a fast, well-behaved backend.
"""
from __future__ import annotations

import os
import time

import numpy as np

from edgebench.runtimes.base import Runtime


class Quick(Runtime):
    name = "quick"
    artifact_format = "keras"
    precisions = ("fp32",)

    def _load_impl(self) -> None:
        pass

    def _infer_impl(self, x):
        # a deterministic function of the pixels, so accuracy and agreement are real numbers
        return np.tile(x.reshape(len(x), -1)[:, :10].astype(np.float32), 1)


class Hang(Quick):
    name = "hang"

    def _load_impl(self) -> None:
        time.sleep(float(os.environ.get("EDGEBENCH_HANG_S", "300")))


class Width7(Quick):
    name = "width7"

    def _infer_impl(self, x):
        return x.reshape(len(x), -1)[:, :7].astype(np.float32)
