"""TensorRT engines (FP32, FP16, INT8) built from model.onnx on the machine that runs them.

Engines are specific to the GPU and the TensorRT version, so they are built on the device (the
Jetson image has TensorRT 8.5.2; NGC x86 images 8.6 / 10.x) and cached under engines/ with a key made
of the ONNX sha256, TensorRT version, GPU name, precision and batch profile: a second run reuses an
engine, and a changed model, TensorRT or GPU never picks up a stale one.

INT8 uses an IInt8EntropyCalibrator2 fed with real CIFAR-10 training images; its calibration cache is
written next to the engines (and read back by later builds of the same ONNX and image set).
Alternatively (`int8_source="qdq"`) the engine is built from the QDQ model (explicit quantization).

Both TensorRT APIs are handled: 8.5 (explicit-batch flag, `build_serialized_network`, bindings) and
10.x (no batch flag, named tensors). Everything that does not need TensorRT (options, cache keys,
calibration batches, the trtexec command line) is plain Python and tested everywhere.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from edgebench.export.base import INPUT_SHAPE, ExportContext, ExportError, Exporter, float_images

ENGINE_DIR = "engines"
DEFAULT_TRTEXEC = "/usr/src/tensorrt/bin/trtexec"  # JetPack / NGC location; not on PATH there
INPUT_NAME = "image"
PRECISIONS = ("fp32", "fp16", "int8")
INT8_SOURCES = ("calibrate", "qdq")


@dataclass
class BuildOptions:
    """What an engine build depends on, besides the ONNX file, TensorRT and the GPU."""

    precision: str = "fp32"
    min_batch: int = 1
    opt_batch: int = 64
    max_batch: int = 256
    workspace_mb: int = 1024
    calib_images: int = 500
    calib_batch: int = 32
    int8_source: str = "calibrate"      # "calibrate": entropy calibrator on model.onnx; "qdq": model.int8.onnx
    int8_fp16_fallback: bool = True      # let layers TensorRT keeps out of INT8 run in FP16, not FP32
    input_name: str = INPUT_NAME
    extra: Dict[str, Any] = field(default_factory=dict)

    def validate(self) -> "BuildOptions":
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        for name in ("min_batch", "opt_batch", "max_batch", "workspace_mb", "calib_images", "calib_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.min_batch <= self.opt_batch <= self.max_batch:
            raise ValueError(f"batch profile must satisfy min <= opt <= max, got "
                             f"{self.min_batch}/{self.opt_batch}/{self.max_batch}")
        if self.int8_source not in INT8_SOURCES:
            raise ValueError(f"int8_source must be one of {', '.join(INT8_SOURCES)}, got {self.int8_source!r}")
        if self.precision == "int8" and self.int8_source == "calibrate":
            if self.calib_batch > self.calib_images:
                raise ValueError(f"calib_batch ({self.calib_batch}) is larger than calib_images "
                                 f"({self.calib_images}): no full calibration batch")
        if not re.match(r"^[A-Za-z0-9_:./-]+$", self.input_name):
            raise ValueError(f"input_name {self.input_name!r} has characters trtexec cannot take")
        return self

    @property
    def profile(self) -> Tuple[int, int, int]:
        return (self.min_batch, self.opt_batch, self.max_batch)


def build_options(**kwargs: Any) -> BuildOptions:
    known = {f for f in BuildOptions.__dataclass_fields__}  # type: ignore[attr-defined]
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ValueError(f"unknown TensorRT build option(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return BuildOptions(**kwargs).validate()


# --- cache keys -------------------------------------------------------------------------------

def cache_key(onnx_sha256: str, trt_version: str, gpu_name: str, precision: str,
              profile: Sequence[int], extra: Optional[Dict[str, Any]] = None) -> str:
    """sha256 over everything an engine depends on (hex). Changing any part gives a new key."""
    if not re.match(r"^[0-9a-f]{64}$", onnx_sha256 or ""):
        raise ValueError(f"onnx_sha256 must be 64 hex digits, got {onnx_sha256!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    payload = {"onnx_sha256": onnx_sha256, "tensorrt": str(trt_version), "gpu": str(gpu_name).strip(),
               "precision": precision, "profile": [int(b) for b in profile], "extra": extra or {}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "gpu"


def engine_filename(key: str, precision: str, profile: Sequence[int], gpu_name: str) -> str:
    """engines/<precision>-b<min>-<opt>-<max>-<gpu>-<key16>.engine: readable, and unique per key."""
    lo, opt, hi = profile
    return f"{ENGINE_DIR}/{precision}-b{lo}-{opt}-{hi}-{_slug(gpu_name)[:32]}-{key[:16]}.engine"


def key_extra(opts: BuildOptions) -> Dict[str, Any]:
    """The build options, beyond precision and profile, that change the engine."""
    extra: Dict[str, Any] = {"workspace_mb": opts.workspace_mb}
    if opts.precision == "int8":
        extra.update(int8_source=opts.int8_source, fp16_fallback=opts.int8_fp16_fallback)
        if opts.int8_source == "calibrate":
            extra.update(calib_images=opts.calib_images, calib_batch=opts.calib_batch)
    extra.update(opts.extra)
    return extra


def calibration_cache_name(onnx_sha256: str, calib_images: int, calib_batch: int, images_sha256: str) -> str:
    h = hashlib.sha256(f"{onnx_sha256}:{calib_images}:{calib_batch}:{images_sha256}".encode()).hexdigest()
    return f"{ENGINE_DIR}/calib-{h[:16]}.cache"


# --- calibration data -------------------------------------------------------------------------

def calibration_batches(images, batch: int, limit: Optional[int] = None) -> Iterator[Any]:
    """Contiguous float32 NHWC batches of exactly `batch` real images (a partial last batch is
    dropped: the calibration profile has a fixed batch). Raises when there is not one full batch."""
    import numpy as np

    x = float_images(images)
    if limit is not None:
        x = x[:limit]
    if batch < 1:
        raise ValueError(f"calibration batch must be >= 1, got {batch}")
    if len(x) < batch:
        raise ValueError(f"{len(x)} calibration images cannot fill one batch of {batch}")
    for i in range(0, len(x) - batch + 1, batch):
        yield np.ascontiguousarray(x[i:i + batch], dtype=np.float32)


def images_digest(images) -> str:
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def make_entropy_calibrator(images, batch: int, cache_path: Path):
    """An IInt8EntropyCalibrator2 that feeds `images` in batches of `batch` and keeps its cache."""
    import tensorrt as trt
    from cuda import cudart

    from edgebench.runtimes.tensorrt import _cuda_check

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = calibration_batches(images, batch)
            self.batch = batch
            self.nbytes = batch * int(INPUT_SHAPE[0] * INPUT_SHAPE[1] * INPUT_SHAPE[2]) * 4
            self.device = _cuda_check(cudart.cudaMalloc(self.nbytes))
            self.cache_path = Path(cache_path)

        def get_batch_size(self):
            return self.batch

        def get_batch(self, names):  # noqa: ARG002 - one input
            try:
                x = next(self.batches)
            except StopIteration:
                return None
            _cuda_check(cudart.cudaMemcpy(self.device, x.ctypes.data, self.nbytes,
                                          cudart.cudaMemcpyKind.cudaMemcpyHostToDevice))
            return [int(self.device)]

        def read_calibration_cache(self):
            if self.cache_path.exists():
                return self.cache_path.read_bytes()
            return None

        def write_calibration_cache(self, cache):
            from edgebench import util

            util.atomic_write_bytes(self.cache_path, bytes(cache))

        def free(self):
            if self.device is not None:
                cudart.cudaFree(self.device)
                self.device = None

    return EntropyCalibrator()


# --- TensorRT facts ---------------------------------------------------------------------------

def trt_version() -> str:
    import tensorrt as trt

    return trt.__version__


def trt_major(version: str) -> int:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        raise ValueError(f"unparseable TensorRT version {version!r}") from None


def gpu_name(device: int = 0) -> str:
    from cuda import cudart

    from edgebench.runtimes.tensorrt import _cuda_check

    props = _cuda_check(cudart.cudaGetDeviceProperties(device))
    name = props.name
    return (name.decode(errors="replace") if isinstance(name, bytes) else str(name)).rstrip("\x00").strip()


def network_flags(version: str) -> int:
    """Explicit batch is a creation flag before TensorRT 10 and the only mode (flag deprecated) after."""
    import tensorrt as trt

    if trt_major(version) >= 10:
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)


def build_engine(onnx_path: Path, engine_path: Path, opts: BuildOptions, calib_images=None,
                 calib_cache: Optional[Path] = None, log=lambda m: None) -> List[str]:
    """Build and serialize an engine for `opts` from `onnx_path` into `engine_path`. Returns what was
    applied. Raises RuntimeError with the parser's / builder's own messages on failure."""
    import tensorrt as trt

    version = trt.__version__
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(version))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RuntimeError(f"ONNX parser failed on {onnx_path}: {'; '.join(errors) or 'no message'}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, opts.workspace_mb << 20)
    inp = network.get_input(0)
    c = tuple(INPUT_SHAPE)
    profile = builder.create_optimization_profile()
    profile.set_shape(inp.name, (opts.min_batch,) + c, (opts.opt_batch,) + c, (opts.max_batch,) + c)
    config.add_optimization_profile(profile)
    applied = [f"TensorRT {version}", f"batch profile {opts.min_batch}/{opts.opt_batch}/{opts.max_batch}",
               f"workspace {opts.workspace_mb} MiB"]
    calibrator = None
    if opts.precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
        applied.append("fp16")
    elif opts.precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        if opts.int8_fp16_fallback:
            config.set_flag(trt.BuilderFlag.FP16)
            applied.append("fp16 fallback")
        if opts.int8_source == "calibrate":
            if calib_images is None:
                raise RuntimeError("INT8 calibration needs CIFAR-10 training images (none given)")
            calibrator = make_entropy_calibrator(calib_images[:opts.calib_images], opts.calib_batch,
                                                 calib_cache or engine_path.with_suffix(".calib"))
            config.int8_calibrator = calibrator
            cal_profile = builder.create_optimization_profile()
            b = (opts.calib_batch,) + c
            cal_profile.set_shape(inp.name, b, b, b)
            config.set_calibration_profile(cal_profile)
            applied.append(f"int8 entropy calibration (IInt8EntropyCalibrator2) on "
                           f"{min(len(calib_images), opts.calib_images)} CIFAR-10 training images")
        else:
            applied.append("int8 explicit quantization from the QDQ model")
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.free()
    if serialized is None:
        raise RuntimeError("TensorRT builder returned no engine (see the TensorRT log above)")
    with open(engine_path, "wb") as f:
        f.write(serialized)
    return applied


# --- trtexec ----------------------------------------------------------------------------------

def trtexec_command(onnx_path, engine_path, precision: str = "fp32", profile: Sequence[int] = (1, 64, 256),
                    input_name: str = INPUT_NAME, workspace_mb: int = 1024, calib_cache=None,
                    trt_version: str = "8.5.2", trtexec: str = DEFAULT_TRTEXEC) -> List[str]:
    """The trtexec command line (an argv list, no shell) that builds the same engine: a cross-check
    and a fallback on a device where the Python bindings are missing."""
    opts = BuildOptions(precision=precision, min_batch=profile[0], opt_batch=profile[1], max_batch=profile[2],
                        workspace_mb=workspace_mb, input_name=input_name).validate()
    c = "x".join(str(d) for d in INPUT_SHAPE)
    argv = [str(trtexec), f"--onnx={onnx_path}", f"--saveEngine={engine_path}",
            f"--minShapes={input_name}:{opts.min_batch}x{c}", f"--optShapes={input_name}:{opts.opt_batch}x{c}",
            f"--maxShapes={input_name}:{opts.max_batch}x{c}", f"--memPoolSize=workspace:{workspace_mb}"]
    # TensorRT 8.6 renamed --buildOnly to --skipInference
    major_minor = tuple(int(p) for p in (str(trt_version).split(".") + ["0"])[:2])
    argv.append("--buildOnly" if major_minor < (8, 6) else "--skipInference")
    if precision == "fp16":
        argv.append("--fp16")
    elif precision == "int8":
        argv += ["--int8", "--fp16"]
        if calib_cache is not None:
            argv.append(f"--calib={calib_cache}")
    return argv


# --- the exporters and the runtime's entry point ----------------------------------------------

def _require_tensorrt(artifact: str):
    try:
        import tensorrt  # noqa: F401
        from cuda import cudart  # noqa: F401
    except ImportError as exc:
        raise ExportError(artifact, f"TensorRT is not available here ({exc.name or exc} is not importable): "
                                    f"engines are built on the device that runs them "
                                    f"(Jetson / NGC image, `edgebench bench` builds them)") from None


class _TensorRTExporter(Exporter):
    format = "tensorrt"
    tools = ("tensorrt", "cuda-python")
    requires = ("onnx-fp32",)
    runtime = "tensorrt"

    def validate_options(self, options: Dict[str, Any]) -> Dict[str, Any]:
        opts = build_options(precision=self.precision, **{k: v for k, v in options.items() if k != "precision"})
        return asdict(opts)

    def _build_opts(self) -> BuildOptions:
        return BuildOptions(**self.options)

    def _source(self, ctx: ExportContext) -> Path:
        opts = self._build_opts()
        if opts.precision == "int8" and opts.int8_source == "qdq":
            return ctx.artifact_path("onnx-int8")
        return ctx.artifact_path("onnx-fp32")

    def target_filename(self, ctx: ExportContext) -> str:
        from edgebench import util

        _require_tensorrt(self.artifact_name())
        opts = self._build_opts()
        src = self._source(ctx)
        gpu = gpu_name()
        key = cache_key(util.sha256_file(src), trt_version(), gpu, opts.precision, opts.profile, key_extra(opts))
        return engine_filename(key, opts.precision, opts.profile, gpu)

    def reusable(self, ctx: ExportContext, target: Path) -> bool:
        return target.is_file() and target.stat().st_size > 0

    def _export_impl(self, ctx: ExportContext, tmp_path: Path) -> List[str]:
        from edgebench import util

        opts = self._build_opts()
        src = self._source(ctx)
        images = None
        cache = None
        if opts.precision == "int8" and opts.int8_source == "calibrate":
            images = ctx.calibration(self.artifact_name(), opts.calib_images)
            cache = ctx.out_dir / calibration_cache_name(util.sha256_file(src), opts.calib_images,
                                                         opts.calib_batch, images_digest(images))
            cache.parent.mkdir(parents=True, exist_ok=True)
        try:
            return build_engine(src, tmp_path, opts, images, cache, ctx.log)
        except Exception as exc:
            raise ExportError(self.artifact_name(), f"engine build failed: {exc}") from exc


class TensorRTFp32Exporter(_TensorRTExporter):
    precision = "fp32"
    filename = f"{ENGINE_DIR}/fp32.engine"


class TensorRTFp16Exporter(_TensorRTExporter):
    precision = "fp16"
    filename = f"{ENGINE_DIR}/fp16.engine"


class TensorRTInt8Exporter(_TensorRTExporter):
    precision = "int8"
    filename = f"{ENGINE_DIR}/int8.engine"


def engine_for(onnx_path, precision: str = "fp32", max_batch: int = 256, data_source: Optional[str] = None,
               **options: Any) -> Path:
    """The cached engine for `onnx_path` on this GPU and TensorRT (built first when missing), in an
    engines/ folder beside the ONNX file. Used by edgebench.runtimes.tensorrt."""
    onnx_path = Path(onnx_path)
    opts = dict(options)
    opts.setdefault("max_batch", max_batch)
    opts["opt_batch"] = min(opts.get("opt_batch", 64), opts["max_batch"])
    opts["min_batch"] = min(opts.get("min_batch", 1), opts["opt_batch"])
    cls = {"fp32": TensorRTFp32Exporter, "fp16": TensorRTFp16Exporter, "int8": TensorRTInt8Exporter}[precision]
    exporter = cls(**opts)
    ctx = ExportContext(model_path=onnx_path, out_dir=onnx_path.parent)
    from edgebench.export.base import ArtifactRecord

    ctx.results["onnx-fp32"] = ArtifactRecord(name="onnx-fp32", format="onnx", precision="fp32", path=onnx_path.name)
    int8_path = onnx_path.parent / "model.int8.onnx"
    if int8_path.exists():
        ctx.results["onnx-int8"] = ArtifactRecord(name="onnx-int8", format="onnx", precision="int8",
                                                  path=int8_path.name)
    if precision == "int8" and exporter.options["int8_source"] == "calibrate":
        from edgebench import data as data_mod
        from edgebench.export import _calibration_set

        ds = data_mod.load_cifar10(data_source, progress=False)
        ctx.calib_images = _calibration_set(ds.x_train, exporter.options["calib_images"])
    rec = exporter.export(ctx)
    if rec.status != "ok":
        raise RuntimeError(f"tensorrt-{precision}: {rec.error}")
    return onnx_path.parent / rec.path
