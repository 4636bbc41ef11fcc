"""The steps every exporter shares, Polygraphy-style: the public `Exporter.export()` does the shared work
(temporary name, timing, hashing, tool versions, error capture) and calls a small `_export_impl` hook.

Nothing here imports TensorFlow, ONNX or TensorRT: the heavy imports live inside the per-format hooks.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

from edgebench import util
from edgebench.contracts.vocabulary import EXPORT_PRECISIONS as PRECISIONS
from edgebench.contracts.vocabulary import FORMATS, INPUT_SHAPE, NUM_CLASSES
from edgebench.engines.calibration import float_images
from edgebench.errors import EdgebenchError
from edgebench.export.errors import ExportFamilyError
from edgebench.export.manifest import ArtifactRecord

__all__ = ["FORMATS", "PRECISIONS", "INPUT_SHAPE", "NUM_CLASSES", "ArtifactRecord", "ExportContext", "ExportError",
           "Exporter", "ModelError", "tool_versions", "load_keras_model", "check_model_io", "float_images"]


class ExportError(ExportFamilyError, RuntimeError):
    """An export that failed: names the artifact (format and precision) and the cause."""

    def __init__(self, artifact: str, cause: str):
        self.artifact = artifact
        self.cause = cause
        super().__init__(f"{artifact}: {cause}")


class ExportStepError(ExportError):
    """A tool inside an export that failed, with the tool's own message (the pipeline names the artifact)."""

    def __init__(self, message: str, **context):
        EdgebenchError.__init__(self, message, **context)
        self.artifact = None
        self.cause = message


class ExportOptionError(ExportStepError, ValueError):
    """An export option or format name that is refused (opset, simplifier, calibration, parity thresholds)."""


class UnknownArtifactError(ExportStepError, KeyError):
    """An artifact name no exporter is registered for: a KeyError too."""


class ModelError(ExportFamilyError, ValueError):
    """The input model cannot be used: missing, corrupt, or not a 32x32x3 -> 10 classifier."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"model {self.path}: {reason}")


def tool_versions(names: Iterable[str]) -> Dict[str, Optional[str]]:
    """Installed distribution versions (None where a tool is absent): recorded with every artifact."""
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - Python < 3.8
        import importlib_metadata as metadata  # type: ignore
    out: Dict[str, Optional[str]] = {}
    for name in names:
        version = None
        for dist in _DIST_ALIASES.get(name, (name,)):
            try:
                version = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
        if version is None and name == "tensorrt":
            try:
                import tensorrt  # type: ignore  # the Jetson image ships it as a system package

                version = tensorrt.__version__
            except ImportError:
                pass
        out[name] = version
    return out


_DIST_ALIASES = {
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-aarch64", "tf-nightly"),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "tensorrt": ("tensorrt", "tensorrt-cu12", "tensorrt-cu11"),
}


def temp_path_beside(target: Path) -> Path:
    """A fresh, unused name in the target's folder (same filesystem, so the final rename is atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    os.unlink(tmp)  # the hook creates a file or a folder under this name
    return Path(tmp)


def remove_path(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink()


def replace_path(tmp: Path, target: Path) -> None:
    """Move `tmp` (file or folder) to `target`. A file replaces atomically; a folder replaces an older
    folder by moving the old one aside first, so the final name never holds a half-written folder."""
    if tmp.is_dir():
        old = None
        if target.exists():
            old = temp_path_beside(target)
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            remove_path(old)
    else:
        if target.is_dir():
            remove_path(target)
        os.replace(tmp, target)


@dataclass
class ExportContext:
    """What the exporters share: the source model, the output folder, the data and the options."""

    model_path: Path
    out_dir: Path
    options: Dict[str, Any] = field(default_factory=dict)
    calib_images: Optional[Any] = None  # uint8 or float32 NHWC array of real training images
    log: Callable[[str], None] = lambda msg: None
    _keras_model: Any = None
    results: Dict[str, ArtifactRecord] = field(default_factory=dict)

    def keras_model(self):
        """The Keras model, loaded once (lazily: TensorFlow is imported here, not at module import)."""
        if self._keras_model is None:
            self._keras_model = load_keras_model(self.model_path)
        return self._keras_model

    def artifact_path(self, name: str) -> Path:
        rec = self.results.get(name)
        if rec is None or rec.status != "ok":
            reason = "was not exported in this run" if rec is None else f"failed: {rec.error}"
            raise ExportError(name, f"needs {name} as input, but it {reason}")
        return self.out_dir / rec.path

    def calibration(self, artifact: str, n: Optional[int] = None):
        if self.calib_images is None or len(self.calib_images) == 0:
            raise ExportError(artifact, "no calibration data: give --data (CIFAR-10) for INT8 calibration")
        x = self.calib_images
        return x if n is None else x[:n]


def load_keras_model(path) -> Any:
    """Load `model.keras` (compile=False) and check it is a 32x32x3 -> 10 classifier; ModelError if not."""
    p = Path(path)
    if not p.exists():
        raise ModelError(p, "no such file")
    if p.is_file() and p.stat().st_size == 0:
        raise ModelError(p, "empty file")
    import tensorflow as tf

    try:
        model = tf.keras.models.load_model(str(p), compile=False)
    except Exception as exc:  # Keras raises many types for a corrupt archive
        raise ModelError(p, f"cannot be loaded by Keras ({type(exc).__name__}: {_short(exc)})") from exc
    check_model_io(model, p)
    return model


def check_model_io(model, path="<model>", num_classes: int = NUM_CLASSES) -> None:
    """One 32x32x3 input, one (batch, num_classes) output: a model with another number of classes than the
    test set's would be exported and benchmarked against the wrong labels without a word."""
    inputs = getattr(model, "inputs", None) or []
    outputs = getattr(model, "outputs", None) or []
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(path, f"expected one input and one output, got {len(inputs)} and {len(outputs)}")
    shape = tuple(inputs[0].shape)[1:]
    shape = tuple(int(d) if d is not None else None for d in shape)
    if shape != INPUT_SHAPE:
        raise ModelError(path, f"input shape is {shape}, expected {INPUT_SHAPE} (NHWC CIFAR-10 images)")
    out_shape = tuple(outputs[0].shape)[1:]
    if len(out_shape) != 1:
        raise ModelError(path, f"output shape is {out_shape}, expected (classes,) logits")
    if out_shape[0] != num_classes:
        raise ModelError(path, f"the model outputs {out_shape[0]} classes but the test set (CIFAR-10) has "
                               f"{num_classes}: its accuracy and parity against the labels would be meaningless")


def _short(exc: BaseException, limit: int = 500) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first if len(first) <= limit else first[:limit] + "..."


class Exporter:
    """Base of every per-format exporter.

    A subclass sets `format`, `precision`, `filename` (relative to the output folder), `tools` (the
    distributions whose versions are recorded), `requires` (artifacts it reads, e.g. "onnx-fp32") and
    implements `_export_impl(ctx, tmp_path)`, which writes the artifact (a file or a folder) at
    `tmp_path` and returns what it applied (a list of short strings). The shared work is here.
    """

    format: str = ""
    precision: str = "fp32"
    filename: str = ""
    tools: tuple = ()
    requires: tuple = ()
    runtime: str = ""  # the edgebench.runtimes backend that runs this artifact in parity

    @classmethod
    def artifact_name(cls) -> str:
        return f"{cls.format}-{cls.precision}"

    def __init__(self, **options: Any):
        self.options = self.validate_options(dict(options))

    def validate_options(self, options: Dict[str, Any]) -> Dict[str, Any]:
        """Check and normalise this exporter's options; raise ValueError naming the bad one."""
        return options

    def target_filename(self, ctx: ExportContext) -> str:
        """Where the artifact goes, relative to the output folder (a cache key may be part of it)."""
        return self.filename

    def reusable(self, ctx: ExportContext, target: Path) -> bool:
        """True when `target` is already a valid artifact for these inputs (a cached engine)."""
        return False

    def export(self, ctx: ExportContext) -> ArtifactRecord:
        """Write the artifact under a temporary name, then rename; never raises for a failed export."""
        name = self.artifact_name()
        rec = ArtifactRecord(name=name, format=self.format, precision=self.precision, path=self.filename,
                             tools=tool_versions(self.tools), options=_jsonable(self.options))
        start = time.perf_counter()
        tmp = None
        try:
            rec.path = self.target_filename(ctx)
            target = ctx.out_dir / rec.path
            if self.reusable(ctx, target):
                applied = ["reused the cached artifact (same cache key)"]
            else:
                tmp = temp_path_beside(target)
                applied = self._export_impl(ctx, tmp) or []
                if not tmp.exists():
                    raise ExportError(name, "the converter finished but wrote nothing")
                replace_path(tmp, target)
            rec.applied = list(applied)
            rec.size_bytes = util.path_size(target)
            rec.sha256 = util.sha256_path(target)
        except Exception as exc:  # a failing format never stops the sweep
            rec.status = "failed"
            rec.error = exc.cause if isinstance(exc, ExportError) else f"{type(exc).__name__}: {_short(exc)}"
            if isinstance(exc, ModelError):
                rec.error = str(exc)
            ctx.log(f"[{name}] export failed: {rec.error}")
            if os.environ.get("EDGEBENCH_DEBUG"):
                ctx.log(traceback.format_exc())
        finally:
            rec.export_seconds = round(time.perf_counter() - start, 3)
            if tmp is not None:
                remove_path(tmp)
        return rec

    def _export_impl(self, ctx: ExportContext, tmp_path: Path) -> List[str]:  # pragma: no cover
        raise NotImplementedError


def _jsonable(d: Dict[str, Any]) -> Dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, (str, int, float, bool)) or v is None:
            out[k] = v
        elif isinstance(v, (list, tuple)):
            out[k] = [x if isinstance(x, (str, int, float, bool)) or x is None else str(x) for x in v]
        else:
            out[k] = str(v)
    return out
