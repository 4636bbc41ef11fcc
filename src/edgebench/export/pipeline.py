"""The export pipeline: the model, then the data, then each artifact (export + parity), then manifest.json.

Order matters for trust: a model that is not a 32x32x3 -> NUM_CLASSES classifier fails every row before any
work; CIFAR-10 that cannot be read (a bad --data) stops the export before anything is written; each artifact
is then exported under a temporary name and checked against Keras, and the manifest is rewritten after
every artifact (a crash keeps what was done). TensorFlow's and the converters' temporary files go to
<out>/.edgebench-tmp (TMPDIR and tempfile.tempdir point there during the export): removed at the end, and
at the start of the next export when a killed one left it behind.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Union

from edgebench.contracts.vocabulary import CALIB_IMAGES_DEFAULT
from edgebench.engines.calibration import CALIBRATION_FILE, write_calibration_file
from edgebench.export import manifest as manifest_mod
from edgebench.export import parity as parity_mod
from edgebench.export.base import ArtifactRecord, ExportContext, ModelError, tool_versions
from edgebench.export.errors import ExportFamilyError
from edgebench.export.registry import exporter_class, filename, select

DEFAULT_CALIB_IMAGES = CALIB_IMAGES_DEFAULT
TMP_DIRNAME = ".edgebench-tmp"


class ExportDataError(ExportFamilyError, ValueError):
    """CIFAR-10 is needed (parity, INT8 calibration) but cannot be read: nothing was exported."""

    def __init__(self, source: Optional[str], cause: str):
        self.source = source
        self.cause = cause
        super().__init__(f"CIFAR-10 from {source or '$EDGEBENCH_DATA / the Keras download'} cannot be read "
                         f"({cause}); nothing was exported. Give a readable --data (cifar-10-python.tar.gz, "
                         f"cifar-10-batches-py/ or an image folder / .zip), or --parity-images 0 and no INT8 "
                         f"format to export without data")


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


LOG_FILENAME = "export.log"


@contextlib.contextmanager
def frameworks_to_log(log_file: Path) -> Iterator[Callable[[str], None]]:
    """Send file descriptors 1 and 2 (TensorFlow's C++ lines, absl's and ONNX Runtime's warnings, the
    quantizer's prints) to `log_file` for the duration; yields a writer to the original stderr for the kit's
    own lines. An unopenable log file leaves the output where it was."""
    try:
        fd = os.open(str(log_file), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError:
        yield _stderr
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    terminal = os.fdopen(os.dup(saved[1]), "w", buffering=1)

    def to_terminal(msg: str) -> None:
        terminal.write(msg + "\n")
        terminal.flush()

    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    try:
        yield to_terminal
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for f in saved:
            os.close(f)
        terminal.close()


@contextlib.contextmanager
def private_tempdir(out: Path) -> Iterator[Path]:
    """Point TMPDIR and tempfile.tempdir at <out>/.edgebench-tmp for the duration; clean it before and after."""
    tmp = out / TMP_DIRNAME
    shutil.rmtree(tmp, ignore_errors=True)  # left behind by a killed export
    tmp.mkdir(parents=True)
    saved_env, saved_tempdir = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = str(tmp)
    try:
        yield tmp
    finally:
        tempfile.tempdir = saved_tempdir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(tmp, ignore_errors=True)


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
    Returns the manifest dict (also written to out_dir/manifest.json). Raises ExportDataError, before
    writing anything, when CIFAR-10 is needed and unreadable; never raises for a failed format: check
    `manifest.failed(result)`.
    """
    log = log or (lambda m: None)
    model_path = Path(model_path)
    out = Path(out_dir) if out_dir is not None else model_path.parent
    names = select(formats)
    limits = parity_mod.thresholds(thresholds)
    per_artifact = _artifact_options(names, options, calib_images, opset)

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
        out.mkdir(parents=True, exist_ok=True)
        records += [_failed(name, f"{name}: {exc}") for name in names]
        return finish()
    # 2. data: training images for calibration, test images for parity; unreadable -> stop before any export
    x_test, y_test = _export_data(ctx, man, names, data, data_source, parity_images, calib_images)
    # 3. each artifact: export, then parity (the manifest is current after every artifact)
    with private_tempdir(out), frameworks_to_log(out / LOG_FILENAME) as terminal:
        if log is _stderr:  # the kit's lines stay on the terminal; the frameworks' go to export.log
            log = ctx.log = terminal
        else:
            terminal = None
        reference = None
        if x_test is not None:
            t0 = time.perf_counter()
            reference = parity_mod.reference_logits(model, x_test)
            log(f"export: Keras reference logits on {len(x_test)} test images ({time.perf_counter() - t0:.1f} s)")
        for name in names:
            rec = _export_one(ctx, name, model_path, out, per_artifact, log)
            records.append(rec)
            if rec.status == "ok":
                log(f"[{name}] {rec.path}: {rec.size_bytes / 1e6:.1f} MB in {rec.export_seconds:.1f} s")
                check_parity(rec, out, x_test, y_test, reference, limits, threads, parity_images, log)
            finish()  # a crash keeps what was done
    if terminal is not None:
        log = ctx.log = _stderr
    log(f"export: {out / manifest_mod.FILENAME}; the frameworks' messages are in {out / LOG_FILENAME}")
    return finish()


def _artifact_options(names: List[str], options: Optional[Dict[str, Dict[str, Any]]], calib_images: int,
                      opset: Optional[int]) -> Dict[str, Dict[str, Any]]:
    """Each artifact's exporter options: the caller's, the INT8 calibration size and the ONNX opset."""
    per_artifact: Dict[str, Dict[str, Any]] = {k: dict(v) for k, v in (options or {}).items()}
    for name in names:
        per_artifact.setdefault(name, {})
        if name.endswith("int8"):
            per_artifact[name].setdefault("calib_images", calib_images)
    if opset is not None:
        per_artifact.setdefault("onnx-fp32", {})["opset"] = opset
    return per_artifact


def _failed(name: str, error: str) -> ArtifactRecord:
    fmt, precision = name.split("-")
    return ArtifactRecord(name=name, format=fmt, precision=precision, path=filename(name), status="failed",
                          error=error)


def _export_data(ctx: ExportContext, man: Dict[str, Any], names: List[str], data: Any, data_source: Optional[str],
                 parity_images: int, calib_images: int):
    """CIFAR-10 read once (ExportDataError before any export when unreadable), the calibration file written;
    returns the parity test set (x, y), or (None, None) when parity is off."""
    out, per_artifact = ctx.out_dir, ctx.options
    needs_calib = any(n.endswith("int8") for n in names)
    if data is None and (parity_images > 0 or needs_calib):
        from edgebench import data as data_mod

        try:
            data = data_mod.load_cifar10(data_source, progress=False)
        except Exception as exc:  # offline without a path, bad path, corrupt archive
            raise ExportDataError(data_source, f"{type(exc).__name__}: {exc}") from exc
    out.mkdir(parents=True, exist_ok=True)
    if data is None:
        return None, None
    man["data"] = {"source": str(getattr(data, "source", data_source)), "checksum": getattr(data, "checksum", None)}
    if needs_calib:
        n_calib = max(int(v.get("calib_images", calib_images)) for k, v in per_artifact.items() if k.endswith("int8"))
        ctx.calib_images = calibration_set(data.x_train, n_calib)
        sha = write_calibration_file(ctx.calib_images, out / CALIBRATION_FILE)
        man["data"]["calibration"] = {"path": CALIBRATION_FILE, "images": int(len(ctx.calib_images)), "sha256": sha}
    if parity_images > 0:
        return parity_set(data.x_test, data.y_test, parity_images)
    return None, None


def _export_one(ctx: ExportContext, name: str, model_path: Path, out: Path,
                per_artifact: Dict[str, Dict[str, Any]], log: Callable[[str], None]) -> ArtifactRecord:
    """One artifact's record: the Keras model itself, or its exporter's (a bad option is a failed record)."""
    if name == "keras-fp32":
        rec = keras_record(model_path, out)
    else:
        log(f"[{name}] exporting ...")
        try:
            exporter = exporter_class(name)(**per_artifact.get(name, {}))
        except (ValueError, TypeError) as exc:
            rec = _failed(name, f"bad option: {exc}")
        else:
            rec = exporter.export(ctx)
    ctx.results[name] = rec
    return rec


def calibration_set(x_train, n: int):
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


def keras_record(model_path: Path, out: Path) -> ArtifactRecord:
    from edgebench import util

    rel = os.path.relpath(model_path.resolve(), out.resolve())
    return ArtifactRecord(name="keras-fp32", format="keras", precision="fp32", path=Path(rel).as_posix(),
                          size_bytes=util.path_size(model_path), sha256=util.sha256_file(model_path),
                          tools=tool_versions(("tensorflow", "keras")), applied=["the trained model itself"],
                          export_seconds=0.0)


def check_parity(rec: ArtifactRecord, out: Path, x_test, y_test, reference, limits, threads,
                 parity_images: int, log) -> None:
    """Run the artifact on the parity images through the benchmark's own runtime and compare with Keras."""
    if parity_images <= 0:
        rec.parity = None  # skipped on request
        return
    threshold = limits.get(rec.precision, {})
    options: Dict[str, Any] = {}
    artifact = out / rec.path
    if rec.format == "tensorrt":  # the runtime reads model.onnx and is handed the engine we built
        options["engine"] = str(artifact)
        artifact = out / filename("onnx-fp32")
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
