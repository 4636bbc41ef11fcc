"""The engines family's error root, under the kit's base: engine builds and caches (EngineError), trtexec
(TrtexecError) and calibration data (CalibrationDataError) derive from it and keep their builtin bases."""
from __future__ import annotations

from edgebench.errors import EdgebenchError


class EnginesError(EdgebenchError):
    """The engines family's root: catch it for any TensorRT engine, trtexec or calibration failure."""
