"""The small interface every backend implements (Polygraphy-style runners).

A runtime is a context manager: `load()` (activate) reads the artifact and prepares the session,
`infer(x)` runs one batch synchronously and returns host-side float32 logits, `close()` releases
it. Public methods do the shared work (timing, checks) and call the `*_impl` hooks.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from edgebench.contracts.vocabulary import INPUT_SHAPE
from edgebench.errors import EdgebenchError


class BackendError(EdgebenchError):
    """The runtimes family's root: a backend that cannot run, refuses its input or fails."""


class RuntimeUnavailable(BackendError, RuntimeError):
    """The backend cannot run here (framework missing, no GPU, wrong precision...): a skip, not a failure."""


class BackendInputError(BackendError, ValueError):
    """An option, artifact or input batch the backend refuses: a ValueError too."""


class UnknownBackendError(BackendError, KeyError):
    """A backend name no runtime is registered for: a KeyError too."""


class BackendStateError(BackendError, RuntimeError):
    """A backend used out of order (infer before load) or in a process whose framework state it cannot change."""


class Runtime:
    #: backend name as used in suites and results
    name = "base"
    #: artifact format this backend reads (a manifest "format": keras, savedmodel, onnx, tflite)
    artifact_format = "keras"
    precisions: Tuple[str, ...] = ("fp32",)
    #: takes an `engine_cache` option (the harness passes the run's writable cache folder)
    uses_engine_cache = False
    #: "cpu" backends honour `threads`; "gpu" backends ignore it
    device = "cpu"

    def __init__(self, artifact: Optional[str], precision: str = "fp32", threads: Optional[int] = None,
                 batch_size: Optional[int] = None, **options: Any):
        if precision not in self.precisions:
            raise RuntimeUnavailable(f"{self.name} has no {precision} path (it offers {', '.join(self.precisions)})")
        if threads is not None and threads < 1:
            raise BackendInputError(f"threads must be >= 1 or None (framework default), got {threads}")
        self.artifact = Path(artifact) if artifact else None
        self.precision = precision
        self.threads = threads
        self.batch_size = batch_size
        self.options = options
        self.load_seconds: Optional[float] = None
        self._loaded = False

    @classmethod
    def artifact_for(cls, precision: str) -> Tuple[str, str]:
        """(format, precision) of the exported artifact this backend reads for `precision`."""
        return cls.artifact_format, precision

    # --- availability -------------------------------------------------------------------------
    @classmethod
    def check(cls) -> Optional[str]:
        """None when the backend can run here, else the reason it cannot."""
        try:
            return cls._check_impl()
        except ImportError as exc:
            return f"{exc.name or exc} is not installed"

    @classmethod
    def _check_impl(cls) -> Optional[str]:
        return None

    @classmethod
    def versions(cls) -> Dict[str, str]:
        """Versions of the frameworks this backend uses (only call when available)."""
        return {}

    # --- lifecycle ----------------------------------------------------------------------------
    def load(self) -> "Runtime":
        reason = self.check()
        if reason:
            raise RuntimeUnavailable(f"{self.name}: {reason}")
        if self.artifact is not None and not self.artifact.exists():
            raise FileNotFoundError(f"{self.name}: artifact {self.artifact} does not exist")
        t0 = time.perf_counter()
        self._load_impl()
        self.load_seconds = time.perf_counter() - t0
        self._loaded = True
        return self

    def infer(self, x: np.ndarray) -> np.ndarray:
        if not self._loaded:
            raise BackendStateError(f"{self.name}: infer() before load()")
        if x.ndim != 4 or x.shape[1:] != tuple(INPUT_SHAPE):
            raise BackendInputError(f"{self.name}: expected NHWC batches of {'x'.join(map(str, INPUT_SHAPE))}, "
                                    f"got {x.shape}")
        if x.dtype != np.float32:
            x = x.astype(np.float32)
        return self._infer_impl(x)

    def infer_all(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        """Logits for every image of `x`, batch by batch (the test-set pass). Backends whose
        framework has its own batching loop (Keras `predict`) override this."""
        return np.concatenate([self.infer(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    def close(self) -> None:
        if self._loaded:
            self._close_impl()
        self._loaded = False

    def __enter__(self) -> "Runtime":
        return self.load()

    def __exit__(self, *exc) -> None:
        self.close()

    # --- hooks --------------------------------------------------------------------------------
    def _load_impl(self) -> None:
        raise NotImplementedError

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _close_impl(self) -> None:
        pass

    def describe(self) -> Dict[str, Any]:
        return {"backend": self.name, "precision": self.precision, "threads": self.threads,
                "artifact": str(self.artifact) if self.artifact else None, "options": dict(self.options)}


def configure_tensorflow_threads(threads: Optional[int]) -> None:
    """TF reads its thread settings once, before its first op: call this first in a fresh process."""
    import tensorflow as tf

    if threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError as exc:  # TF already initialised in this process
            raise BackendStateError(
                f"TensorFlow is already initialised in this process; its thread count ({threads}) cannot be "
                f"set any more (run each thread setting in a fresh process): {exc}") from exc
