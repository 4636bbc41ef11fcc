"""INT8 calibration data as a file: written once by `edgebench export` (it has the training images), read by
whoever builds an engine later (the exporter, or a benchmark child on the device), which never loads CIFAR-10.

The file is a plain .npy of uint8 NHWC images (`calibration.npy` beside the manifest); its sha256 is part of
the calibration cache's name, so a different image set never reuses another's scales.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Union

from edgebench.contracts.vocabulary import INPUT_NAME, INPUT_SHAPE
from edgebench.engines.errors import EnginesError
from edgebench.errors import EdgebenchError

CALIBRATION_FILE = "calibration.npy"
ENGINE_DIR = "engines"


class CalibrationDataError(EnginesError, ValueError):
    """A calibration data file that is missing, unreadable or not NHWC images: names the path and the cause."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        super().__init__(f"calibration data {self.path}: {reason}")


class CalibrationImagesError(CalibrationDataError):
    """Calibration images in memory that are not NHWC or cannot fill one batch (no file to name)."""

    def __init__(self, message: str):
        EdgebenchError.__init__(self, message)
        self.path = None


def float_images(x) -> Any:
    """uint8 or float NHWC images -> float32 0..255 (the models' input contract)."""
    import numpy as np

    arr = np.asarray(x)
    if arr.ndim != 4 or tuple(arr.shape[1:]) != tuple(INPUT_SHAPE):
        raise CalibrationImagesError(f"images must be NHWC {INPUT_SHAPE}, got shape {arr.shape}")
    return arr.astype(np.float32, copy=False)


def write_calibration_file(images, path: Union[str, Path]) -> str:
    """Write `images` (uint8 NHWC; float 0..255 is rounded) atomically as .npy; returns the file's sha256."""
    import numpy as np

    from edgebench import util

    arr = np.asarray(images)
    if arr.ndim != 4 or tuple(arr.shape[1:]) != tuple(INPUT_SHAPE) or len(arr) == 0:
        raise CalibrationDataError(path, f"images must be a non-empty NHWC {INPUT_SHAPE} array, got {arr.shape}")
    if arr.dtype != np.uint8:
        arr = np.clip(np.round(arr), 0, 255).astype(np.uint8)
    with util.atomic_open(path) as f:
        np.save(f, np.ascontiguousarray(arr), allow_pickle=False)
    return util.sha256_file(path)


def read_calibration_file(path: Union[str, Path], limit: Optional[int] = None):
    """The images of a calibration file (memory-mapped), at most `limit` of them."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise CalibrationDataError(p, "no such file (export the model with --data to write it)")
    try:
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise CalibrationDataError(p, f"not a readable .npy file ({exc})") from exc
    if arr.ndim != 4 or tuple(arr.shape[1:]) != tuple(INPUT_SHAPE) or len(arr) == 0:
        raise CalibrationDataError(p, f"expected NHWC {INPUT_SHAPE} images, found shape {arr.shape}")
    return arr if limit is None else arr[:limit]


def calibration_batches(images, batch: int, limit: Optional[int] = None) -> Iterator[Any]:
    """Contiguous float32 NHWC batches of exactly `batch` real images (a partial last batch is
    dropped: the calibration profile has a fixed batch). Raises when there is not one full batch."""
    import numpy as np

    x = float_images(images)
    if limit is not None:
        x = x[:limit]
    if batch < 1:
        raise CalibrationImagesError(f"calibration batch must be >= 1, got {batch}")
    if len(x) < batch:
        raise CalibrationImagesError(f"{len(x)} calibration images cannot fill one batch of {batch}")
    for i in range(0, len(x) - batch + 1, batch):
        yield np.ascontiguousarray(x[i:i + batch], dtype=np.float32)


class CalibrationFeed:
    """A re-iterable data loader for Polygraphy's Calibrator: yields {input name: float32 batch}."""

    def __init__(self, images, batch: int, input_name: str = INPUT_NAME):
        self.images = images
        self.batch = int(batch)
        self.input_name = input_name
        next(iter(self))  # fail now (too few images, wrong shape), not inside TensorRT's builder

    def __iter__(self) -> Iterator[Dict[str, Any]]:
        for x in calibration_batches(self.images, self.batch):
            yield {self.input_name: x}

    def __len__(self) -> int:
        return len(self.images) // self.batch


def images_digest(images) -> str:
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def calibration_cache_name(onnx_sha256: str, calib_images: int, calib_batch: int, images_sha256: str) -> str:
    h = hashlib.sha256(f"{onnx_sha256}:{calib_images}:{calib_batch}:{images_sha256}".encode()).hexdigest()
    return f"{ENGINE_DIR}/calib-{h[:16]}.cache"
