"""Export a trained `model.keras` to every format the targets need, each checked against Keras.

    from edgebench.export import export_all
    manifest = export_all("artifacts/run/model.keras", data_source="cifar10-jpeg.zip")

writes, next to the model: saved_model/, model.onnx, model.int8.onnx, model_{fp32,fp16,int8}.tflite,
engines/ (TensorRT, only where TensorRT is installed: on the device) and manifest.json. Every artifact
is one row with status, size, sha256, tool versions and parity; a failing format never stops the
others, and the caller (the CLI) exits non-zero when any row failed.

Importing this package imports no framework: TensorFlow, tf2onnx, ONNX Runtime and TensorRT are
imported by the exporter that needs them.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Type, Union

from edgebench.export import manifest as manifest_mod
from edgebench.export import parity as parity_mod
from edgebench.export.base import (ArtifactRecord, ExportContext, ExportError, Exporter, ModelError,
                                   tool_versions)

__all__ = ["export_all", "exporters", "select", "ExportError", "ModelError", "DEFAULT_FORMATS",
           "DEFAULT_CALIB_IMAGES"]

DEFAULT_FORMATS = ("keras", "savedmodel", "onnx", "tflite")  # tensorrt is built on the device
DEFAULT_CALIB_IMAGES = 500

# artifact name -> "module:Class", in export order (dependencies first)
_EXPORTERS: Dict[str, str] = {
    "savedmodel-fp32": "edgebench.export.savedmodel:SavedModelExporter",
    "onnx-fp32": "edgebench.export.onnx:OnnxExporter",
    "onnx-int8": "edgebench.export.onnx_int8:OnnxInt8Exporter",
    "tflite-fp32": "edgebench.export.tflite:TfliteFp32Exporter",
    "tflite-fp16": "edgebench.export.tflite:TfliteFp16Exporter",
    "tflite-int8": "edgebench.export.tflite:TfliteInt8Exporter",
    "tensorrt-fp32": "edgebench.export.tensorrt:TensorRTFp32Exporter",
    "tensorrt-fp16": "edgebench.export.tensorrt:TensorRTFp16Exporter",
    "tensorrt-int8": "edgebench.export.tensorrt:TensorRTInt8Exporter",
}
_REQUIRES = {"onnx-int8": ("onnx-fp32",), "tensorrt-fp32": ("onnx-fp32",), "tensorrt-fp16": ("onnx-fp32",),
             "tensorrt-int8": ("onnx-fp32",)}
ARTIFACTS = ("keras-fp32",) + tuple(_EXPORTERS)
FORMATS = ("keras", "savedmodel", "onnx", "tflite", "tensorrt")


def exporters() -> List[str]:
    return list(ARTIFACTS)


def exporter_class(name: str) -> Type[Exporter]:
    from edgebench.util import load_object

    try:
        target = _EXPORTERS[name]
    except KeyError:
        raise KeyError(f"unknown artifact {name!r}; known: {', '.join(_EXPORTERS)}") from None
    return load_object(target)


def select(formats: Optional[Iterable[str]] = None) -> List[str]:
    """Artifact names, in export order, for a list of formats (`onnx`, `tflite`...), artifact names
    (`tflite-int8`) or `all`; inputs an artifact needs (model.onnx for INT8 ONNX) are added."""
    wanted = set()
    for item in (formats or DEFAULT_FORMATS):
        for part in str(item).split(","):
            part = part.strip().lower()
            if not part:
                continue
            if part == "all":
                wanted.update(ARTIFACTS)
            elif part in FORMATS:
                wanted.update(a for a in ARTIFACTS if a.split("-")[0] == part)
            elif part in ARTIFACTS:
                wanted.add(part)
            else:
                raise ValueError(f"unknown format {part!r}; choose from {', '.join(FORMATS)}, "
                                 f"{', '.join(ARTIFACTS)} or all")
    for name in list(wanted):
        wanted.update(_REQUIRES.get(name, ()))
    return [a for a in ARTIFACTS if a in wanted]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def export_all(model_path: Union[str, Path], formats: Optional[Iterable[str]] = None,
               data_source: Optional[str] = None, parity_images: int = parity_mod.DEFAULT_IMAGES,
               calib_images: int = DEFAULT_CALIB_IMAGES, opset: Optional[int] = None,
               out_dir: Optional[Union[str, Path]] = None,
               thresholds: Optional[Dict[str, Dict[str, float]]] = None,
               options: Optional[Dict[str, Dict[str, Any]]] = None, threads: Optional[int] = None,
               data: Any = None, log: Optional[Callable[[str], None]] = _stderr) -> Dict[str, Any]:
    """Export `model_path` to the chosen formats, check each against Keras, write manifest.json.

    formats: see `select` (default: keras, savedmodel, onnx, tflite; add "tensorrt" on a device).
    data_source: CIFAR-10 path for calibration (training images) and parity (test images);
      `data` may instead be an object with x_train, x_test, y_test arrays (tests).
    parity_images: N test images for parity (0 skips parity). calib_images: INT8 representative set.
    options: per-artifact exporter options, e.g. {"onnx-int8": {"calibrate_method": "entropy"}}.
    Returns the manifest dict (also written to out_dir/manifest.json). Never raises for a failed
    format: check `manifest.failed(result)`.
    """
    log = log or (lambda m: None)
    model_path = Path(model_path)
    out = Path(out_dir) if out_dir is not None else model_path.parent
    out.mkdir(parents=True, exist_ok=True)
    names = select(formats)
    limits = parity_mod.thresholds(thresholds)
    per_artifact: Dict[str, Dict[str, Any]] = {k: dict(v) for k, v in (options or {}).items()}
    for name in names:
        per_artifact.setdefault(name, {})
        if name.endswith("int8"):
            per_artifact[name].setdefault("calib_images", calib_images)
    if opset is not None:
        per_artifact.setdefault("onnx-fp32", {})["opset"] = opset

    from edgebench import util

    model_sha = util.sha256_file(model_path) if model_path.is_file() else None
    man = manifest_mod.new(model_path, None, model_sha, None,
                           options={"formats": names, "parity_images": parity_images,
                                    "calib_images": calib_images, "thresholds": limits})
    ctx = ExportContext(model_path=model_path, out_dir=out, options=per_artifact, log=log)
    records: List[ArtifactRecord] = []

    def finish() -> Dict[str, Any]:
        man["artifacts"] = [r.to_dict() for r in records]
        manifest_mod.write(out, man)
        return man

    # 1. the model: a bad one fails every row with the same cause, and nothing else is attempted
    try:
        model = ctx.keras_model()
        man["model"]["name"] = getattr(model, "name", None)
    except ModelError as exc:
        log(f"export: {exc}")
        for name in names:
            fmt, precision = name.split("-")
            records.append(ArtifactRecord(name=name, format=fmt, precision=precision,
                                          path=_filename(name), status="failed",
                                          error=f"{name}: {exc}"))
        return finish()

    # 2. data: training images for calibration, test images for parity
    x_test = y_test = None
    data_error = None
    needs_calib = any(n.endswith("int8") for n in names)
    if data is None and (parity_images > 0 or needs_calib):
        try:
            from edgebench import data as data_mod

            data = data_mod.load_cifar10(data_source, progress=False)
        except Exception as exc:  # offline without a path, bad path, corrupt archive
            data_error = f"{type(exc).__name__}: {exc}"
            log(f"export: CIFAR-10 unavailable ({data_error}): INT8 calibration and parity cannot run")
    if data is not None:
        man["data"] = {"source": str(getattr(data, "source", data_source)), "checksum": getattr(data, "checksum", None)}
        if needs_calib:
            n_calib = max(int(v.get("calib_images", calib_images)) for k, v in per_artifact.items()
                          if k.endswith("int8"))
            ctx.calib_images = _calibration_set(data.x_train, n_calib)
        if parity_images > 0:
            x_test, y_test = parity_set(data.x_test, data.y_test, parity_images)
    else:
        man["data"] = {"source": data_source, "checksum": None, "error": data_error}

    reference = None
    if x_test is not None:
        t0 = time.perf_counter()
        reference = parity_mod.reference_logits(model, x_test)
        log(f"export: Keras reference logits on {len(x_test)} test images ({time.perf_counter() - t0:.1f} s)")

    # 3. each artifact: export, then parity
    for name in names:
        if name == "keras-fp32":
            rec = _keras_record(model_path, out)
        else:
            log(f"[{name}] exporting ...")
            try:
                exporter = exporter_class(name)(**per_artifact.get(name, {}))
            except (ValueError, TypeError) as exc:
                fmt, precision = name.split("-")
                rec = ArtifactRecord(name=name, format=fmt, precision=precision, path=_filename(name),
                                     status="failed", error=f"bad option: {exc}")
            else:
                rec = exporter.export(ctx)
        ctx.results[name] = rec
        records.append(rec)
        if rec.status == "ok":
            log(f"[{name}] {rec.path}: {rec.size_bytes / 1e6:.1f} MB in {rec.export_seconds:.1f} s")
            _parity(rec, out, x_test, y_test, reference, limits, threads, data_error, parity_images, log)
        finish()  # the manifest is current after every artifact (a crash keeps what was done)
    return finish()


def _filename(name: str) -> str:
    if name == "keras-fp32":
        return "model.keras"
    try:
        return exporter_class(name).filename
    except Exception:
        return name


def _calibration_set(x_train, n: int):
    """`n` training images picked with a fixed seed: every INT8 artifact sees the same ones."""
    import numpy as np

    n = min(int(n), len(x_train))
    idx = np.sort(np.random.RandomState(1234).permutation(len(x_train))[:n])
    return x_train[idx]


def parity_set(x_test, y_test, n: int):
    """`n` test images picked with a fixed seed, in a fixed order. Not the first n: image-folder
    sources list the test set class by class, so the first 1,000 would all be airplanes."""
    import numpy as np

    n = min(int(n), len(x_test))
    idx = np.sort(np.random.RandomState(0).permutation(len(x_test))[:n])
    return x_test[idx].astype("float32"), y_test[idx]


def _keras_record(model_path: Path, out: Path) -> ArtifactRecord:
    import os

    from edgebench import util

    rel = os.path.relpath(model_path.resolve(), out.resolve())
    return ArtifactRecord(name="keras-fp32", format="keras", precision="fp32", path=Path(rel).as_posix(),
                          size_bytes=util.path_size(model_path), sha256=util.sha256_file(model_path),
                          tools=tool_versions(("tensorflow", "keras")), applied=["the trained model itself"],
                          export_seconds=0.0)


def _parity(rec: ArtifactRecord, out: Path, x_test, y_test, reference, limits, threads, data_error,
            parity_images: int, log) -> None:
    if parity_images <= 0:
        rec.parity = None  # skipped on request
        return
    threshold = limits.get(rec.precision, {})
    if reference is None:
        rec.parity = {"images": 0, "passed": False, "threshold": threshold,
                      "reason": f"no test data for parity: {data_error}"}
        rec.status, rec.error = "failed", f"parity not checked: no test data ({data_error})"
        return
    options: Dict[str, Any] = {}
    fmt_path = out / rec.path
    artifact = fmt_path
    if rec.format == "tensorrt":  # the runtime reads model.onnx and is handed the engine we built
        options["engine"] = str(fmt_path)
        artifact = out / _filename("onnx-fp32")
    t0 = time.perf_counter()
    try:
        logits = parity_mod.run_artifact(rec.format, artifact, rec.precision, x_test, threads=threads, **options)
    except Exception as exc:
        rec.parity = {"images": int(len(x_test)), "passed": False, "threshold": threshold,
                      "reason": f"could not run the artifact: {type(exc).__name__}: {exc}"}
        rec.status, rec.error = "failed", f"parity run failed: {type(exc).__name__}: {exc}"
        log(f"[{rec.name}] parity run failed: {exc}")
        return
    rec.parity = parity_mod.compare(logits, reference, y_test, threshold)
    rec.parity["seconds"] = round(time.perf_counter() - t0, 3)
    p = rec.parity
    log(f"[{rec.name}] parity on {p['images']} images: max |dlogit| {p['max_abs_logit_diff']}, "
        f"agreement {p['top1_agreement']:.4f}, top-1 {p['top1']:.4f} (Keras {p['reference_top1']:.4f}) "
        f"-> {'pass' if p['passed'] else 'FAIL: ' + str(p['reason'])}")
    if not p["passed"]:
        rec.status, rec.error = "failed", f"parity: {p['reason']}"
