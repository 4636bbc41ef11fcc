"""TensorRT engines: built through Polygraphy's loaders, INT8-calibrated from a data file, cached where writable.

Used by both sides, with no import between them: `edgebench.export.tensorrt` (engines in the artifacts folder,
recorded in the manifest) and `edgebench.runtimes.tensorrt` (an engine for the ONNX it is given, built on first
use in the engine cache). Engines are specific to the GPU, TensorRT and CUDA, so the cache key holds all of them:
the ONNX sha256, TensorRT version, GPU name, compute capability, SM count, the system's CUDA (version.json or
libcudart, never cuda-python's own constant: edgebench.engines.versions) and cuDNN, the driver's CUDA, the
board's model (every Orin module reports the GPU name "Orin"), precision, batch profile and the options
that change the build. A changed model, TensorRT, GPU or setting never picks up a stale engine.

The cache lives in a writable place, never beside the ONNX (read-only in a container): an explicit folder,
else $EDGEBENCH_ENGINE_CACHE, else under $EDGEBENCH_CACHE (in a container: /results/.edgebench-cache, the
writable results mount), else ~/.cache/edgebench/engines. The tactic timing cache lives in the same folder, one file
per machine key (TensorRT, GPU, CUDA, cuDNN, board; not the model, precision or profile), so every precision and
every rebuild on that machine reuses the timings measured before: on an Orin Nano a build takes minutes per
precision. TF32 is one explicit policy (`tf32`, default off: an FP32 engine is FP32 arithmetic), given to
Polygraphy and to trtexec alike and recorded with every row (`settings`). Building needs `tensorrt`, `polygraphy` and
`cuda-python` (the Jetson and NGC images); everything else here is plain Python, tested everywhere.
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from edgebench import util
from edgebench.contracts.vocabulary import (
    CALIB_IMAGES_DEFAULT,
    DATA_CACHE_ENV,
    ENGINE_CACHE_ENV,
    EXPORT_PRECISIONS,
    INPUT_NAME,
    INPUT_SHAPE,
    TF32_EFFECTIVE_KEY,
)
from edgebench.engines.calibration import (
    ENGINE_DIR,
    CalibrationFeed,
    calibration_cache_name,
    images_digest,
    read_calibration_file,
)
from edgebench.engines.errors import EnginesError

PRECISIONS = EXPORT_PRECISIONS
INT8_SOURCES = ("calibrate", "qdq")
QDQ_ONNX = "model.int8.onnx"


class EngineError(EnginesError, RuntimeError):
    """An engine that cannot be built, cached or loaded: names the path and the cause."""


class EngineConfigError(EngineError, ValueError):
    """Build options, a cache key's inputs or device facts that cannot make an engine: a ValueError too."""


class CudaError(EngineError):
    """A CUDA call through cuda-python that failed: names the call and CUDA's error (or why the driver could not
    be loaded: cuda-python raises a bare RuntimeError when libcuda.so is absent)."""


@dataclass
class BuildOptions:
    """What an engine build depends on, besides the ONNX file, TensorRT and the GPU."""

    precision: str = "fp32"
    min_batch: int = 1
    opt_batch: int = 64
    max_batch: int = 256
    workspace_mb: int = 1024
    calib_images: int = CALIB_IMAGES_DEFAULT
    calib_batch: int = 32
    int8_source: str = "calibrate"      # "calibrate": entropy calibrator on model.onnx; "qdq": model.int8.onnx
    int8_fp16_fallback: bool = True      # let layers TensorRT keeps out of INT8 run in FP16, not FP32
    tf32: bool = False                   # FP32 layers on TF32 tensor cores (both builders; trtexec's default is on)
    input_name: str = INPUT_NAME
    extra: Dict[str, Any] = field(default_factory=dict)

    def validate(self) -> "BuildOptions":
        if self.precision not in PRECISIONS:
            raise EngineConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        for name in ("min_batch", "opt_batch", "max_batch", "workspace_mb", "calib_images", "calib_batch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise EngineConfigError(f"{name} must be a positive integer, got {value!r}")
        if not self.min_batch <= self.opt_batch <= self.max_batch:
            raise EngineConfigError(f"batch profile must satisfy min <= opt <= max, got "
                                    f"{self.min_batch}/{self.opt_batch}/{self.max_batch}")
        if self.int8_source not in INT8_SOURCES:
            raise EngineConfigError(f"int8_source must be one of {', '.join(INT8_SOURCES)}, got {self.int8_source!r}")
        if self.precision == "int8" and self.int8_source == "calibrate" and self.calib_batch > self.calib_images:
            raise EngineConfigError(f"calib_batch ({self.calib_batch}) is larger than calib_images "
                                    f"({self.calib_images}): no full calibration batch")
        if not isinstance(self.tf32, bool):
            raise EngineConfigError(f"tf32 must be true or false, got {self.tf32!r}")
        if not re.match(r"^[A-Za-z0-9_:./-]+$", self.input_name):
            raise EngineConfigError(f"input_name {self.input_name!r} has characters trtexec cannot take")
        return self

    @property
    def profile(self) -> Tuple[int, int, int]:
        return (self.min_batch, self.opt_batch, self.max_batch)

    @property
    def calibrates(self) -> bool:
        return self.precision == "int8" and self.int8_source == "calibrate"


def build_options(**kwargs: Any) -> BuildOptions:
    known = set(BuildOptions.__dataclass_fields__)  # type: ignore[attr-defined]
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise EngineConfigError(f"unknown TensorRT build option(s): {', '.join(unknown)} "
                                f"(known: {', '.join(sorted(known))})")
    return BuildOptions(**kwargs).validate()


def key_extra(opts: BuildOptions) -> Dict[str, Any]:
    """The build options, beyond precision and profile, that change the engine."""
    extra: Dict[str, Any] = {"workspace_mb": opts.workspace_mb, "tf32": opts.tf32}
    if opts.precision == "int8":
        extra.update(int8_source=opts.int8_source, fp16_fallback=opts.int8_fp16_fallback)
        if opts.int8_source == "calibrate":
            extra.update(calib_images=opts.calib_images, calib_batch=opts.calib_batch)
    extra.update(opts.extra)
    return extra


# --- the machine an engine is built for ------------------------------------------------------------

@dataclass(frozen=True)
class DeviceFacts:
    """Everything about this machine an engine depends on (the cache key's machine part)."""

    trt_version: str
    gpu_name: str
    compute_capability: str = ""
    sm_count: int = 0
    cuda_runtime: str = ""   # the system's CUDA (engines.versions), major.minor: "11.4" on JetPack 5.1.2
    cuda_driver: str = ""
    device_model: str = ""   # /proc/device-tree/model on a Jetson ("NVIDIA Jetson Orin Nano ..."), else ""
    cudnn: str = ""          # the system's cuDNN ("8.6.0" on JetPack 5.1.2), "" where there is none

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def probe(cls, device: int = 0) -> "DeviceFacts":
        import tensorrt as trt

        from edgebench.engines import versions

        cudart = cuda_runtime()
        props = cuda_call(cudart.cudaGetDeviceProperties, device)
        system = versions.system_versions(with_tensorrt=False)
        if not system.get("cuda"):
            raise CudaError(f"the system's CUDA version is unknown: no {versions.cuda_root()}/version.json or "
                            f"version.txt, and no libcudart.so to ask (set CUDA_HOME to the toolkit's folder)")
        return cls(trt_version=trt.__version__, gpu_name=c_string(props.name),
                   compute_capability=f"{props.major}.{props.minor}",
                   sm_count=int(props.multiProcessorCount), cuda_runtime=str(system["cuda"]),
                   cuda_driver=versions.from_packed(cuda_call(cudart.cudaDriverGetVersion)),
                   device_model=board_model(), cudnn=str(system.get("cudnn") or ""))


def c_string(value: Any) -> str:
    """A C string from cuda-python or /proc: text up to the first NUL (the buffer after it is not cleared)."""
    text = value.decode(errors="replace") if isinstance(value, (bytes, bytearray)) else str(value)
    return text.split("\x00", 1)[0].strip()


def board_model(path: str = "/proc/device-tree/model") -> str:
    try:
        return c_string(Path(path).read_bytes())
    except OSError:
        return ""


def cache_key(onnx_sha256: str, facts: Union[DeviceFacts, Mapping[str, Any]], precision: str,
              profile: Sequence[int], extra: Optional[Dict[str, Any]] = None) -> str:
    """sha256 over everything an engine depends on (hex). Changing any part gives a new key."""
    if not re.match(r"^[0-9a-f]{64}$", onnx_sha256 or ""):
        raise EngineConfigError(f"onnx_sha256 must be 64 hex digits, got {onnx_sha256!r}")
    if precision not in PRECISIONS:
        raise EngineConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    machine = facts.to_dict() if isinstance(facts, DeviceFacts) else dict(facts)
    if not machine.get("trt_version") or not machine.get("gpu_name"):
        raise EngineConfigError(f"device facts need at least trt_version and gpu_name, got {machine}")
    payload = {"onnx_sha256": onnx_sha256, "machine": {k: str(v).strip() for k, v in sorted(machine.items())},
               "precision": precision, "profile": [int(b) for b in profile], "extra": extra or {}}
    return util.json_digest(payload)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "gpu"


def engine_filename(key: str, precision: str, profile: Sequence[int], gpu_name: str) -> str:
    """<precision>-b<min>-<opt>-<max>-<gpu>-<key16>.engine: readable, and unique per key."""
    lo, opt, hi = profile
    return f"{precision}-b{lo}-{opt}-{hi}-{_slug(gpu_name)[:32]}-{key[:16]}.engine"


def timing_cache_filename(facts: Union[DeviceFacts, Mapping[str, Any]]) -> str:
    """timing-<gpu>-<key16>.cache: one tactic timing cache per machine key (the engine key's machine part, the
    same normalisation), shared by every model, precision and profile built there. TensorRT keys each entry by
    the layer and its configuration itself, so sharing is safe; another TensorRT, GPU, CUDA or cuDNN gets
    another file."""
    machine = facts.to_dict() if isinstance(facts, DeviceFacts) else dict(facts)
    if not machine.get("trt_version") or not machine.get("gpu_name"):
        raise EngineConfigError(f"device facts need at least trt_version and gpu_name, got {machine}")
    key = util.json_digest({"timing_cache": {k: str(v).strip() for k, v in sorted(machine.items())}})
    return f"timing-{_slug(str(machine['gpu_name']))[:32]}-{key[:16]}.cache"


def tf32_effective(opts: BuildOptions, facts: Optional[DeviceFacts]) -> bool:
    """Whether FP32 layers ran on TF32 tensor cores: asked for, an FP32 engine, and a GPU of compute capability
    8.0 or newer (Ampere, the Orin's 8.7; older GPUs have no TF32). The key peaks.arithmetic reads."""
    if not opts.tf32 or opts.precision != "fp32" or facts is None:
        return False
    try:
        return tuple(int(x) for x in facts.compute_capability.split(".")[:2]) >= (8, 0)
    except ValueError:
        return False


def build_settings(opts: BuildOptions, facts: Optional[DeviceFacts] = None, builder: str = "polygraphy",
                   timing_cache: Optional[Union[str, Path]] = None) -> Dict[str, Any]:
    """What a row records about how its engine was built (extra.backend_versions.settings)."""
    out: Dict[str, Any] = {"builder": builder, "tf32": opts.tf32, TF32_EFFECTIVE_KEY: tf32_effective(opts, facts),
                           "profile": list(opts.profile), "workspace_mb": opts.workspace_mb}
    if opts.precision == "int8":
        out.update(int8_source=opts.int8_source, fp16_fallback=opts.int8_fp16_fallback)
    if timing_cache is not None:
        out["timing_cache"] = str(timing_cache)
    return out


# --- where engines are cached ----------------------------------------------------------------------

def engine_cache_dir(explicit: Optional[Union[str, Path]] = None,
                     environ: Optional[Mapping[str, str]] = None) -> Path:
    """The engine cache folder (not created): explicit, $EDGEBENCH_ENGINE_CACHE, $EDGEBENCH_CACHE/engines,
    else the user's cache. Never the ONNX file's folder, which a container mounts read-only."""
    env = os.environ if environ is None else environ
    if explicit:
        return Path(explicit)
    if env.get(ENGINE_CACHE_ENV):
        return Path(env[ENGINE_CACHE_ENV])
    if env.get(DATA_CACHE_ENV):
        return Path(env[DATA_CACHE_ENV]) / "tensorrt-engines"
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "edgebench" / "engines"


def writable_cache_dir(explicit: Optional[Union[str, Path]] = None) -> Path:
    """engine_cache_dir(), created and checked writable; EngineError says how to fix it when it is not."""
    d = engine_cache_dir(explicit)
    try:
        d.mkdir(parents=True, exist_ok=True)
        probe = d / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise EngineError(f"engine cache {d} is not writable ({exc.strerror or exc}); set ${ENGINE_CACHE_ENV} "
                          f"to a writable folder") from None
    return d


# --- CUDA through cuda-python -----------------------------------------------------------------------

def cuda_runtime():
    """cuda-python's runtime API module (`cuda.bindings.runtime` from 12.6, `cuda.cudart` before)."""
    try:
        from cuda.bindings import runtime as cudart  # type: ignore
    except ImportError:
        from cuda import cudart  # type: ignore
    return cudart


def cuda_driver():
    try:
        from cuda.bindings import driver  # type: ignore
    except ImportError:
        from cuda import cuda as driver  # type: ignore
    return driver


def cuda_check(result, what: str = ""):
    """The value of a cuda-python call ((err,) or (err, value, ...)); CudaError naming the call and error code."""
    err = result[0]
    if int(err) != 0:
        raise CudaError(f"CUDA call failed: {err}" + (f" ({what})" if what else ""))
    if len(result) == 1:
        return None
    return result[1] if len(result) == 2 else result[1:]


def cuda_call(fn, *args):
    """`cuda_check(fn(*args))`, with cuda-python's own RuntimeError (libcuda.so not loadable: no driver, no
    device, not started with the nvidia runtime) turned into a CudaError that names the call. A TypeError (a
    call in another binding version's form) is a bug and is not caught."""
    name = getattr(fn, "__name__", str(fn))
    try:
        result = fn(*args)
    except RuntimeError as exc:
        raise CudaError(f"{name}: {exc} (no NVIDIA driver here? on a Jetson, start the container with "
                        f"--runtime nvidia)") from exc
    return cuda_check(result, name)


def instantiate_graph(graph):
    """An executable CUDA graph from `graph`. `cudaGraphInstantiateWithFlags(graph, flags)` has this form in
    cuda-python 11.8 (JetPack 5's pin) and 12.x alike; `cudaGraphInstantiate` does not (11.8 takes
    `(graph, pLogBuffer, bufferSize)`, 12.x `(graph, flags)`)."""
    return cuda_call(cuda_runtime().cudaGraphInstantiateWithFlags, graph, 0)


def init_cuda(device: int = 0) -> str:
    """Initialise CUDA for real (cuInit, cuDeviceGet, cuDeviceGetName): the device's name, or RuntimeError.
    A broken cuda-python or driver fails here, not halfway through a benchmark."""
    drv = cuda_driver()
    cuda_call(drv.cuInit, 0)
    dev = cuda_call(drv.cuDeviceGet, device)
    name = cuda_call(drv.cuDeviceGetName, 256, dev)
    return c_string(name)


# --- building ---------------------------------------------------------------------------------------

def build_engine(onnx_path: Path, engine_path: Path, opts: BuildOptions, calib_images=None,
                 calib_cache: Optional[Path] = None, log: Callable[[str], None] = lambda m: None,
                 timing_cache: Optional[Path] = None) -> List[str]:
    """Build `onnx_path` into a serialized engine at `engine_path` through Polygraphy (NetworkFromOnnxPath,
    CreateConfig with a Profile, the TF32 policy, the timing cache and, for INT8, a Calibrator fed from
    `calib_images`; EngineBytesFromNetwork saves the timings back). Returns what was applied."""
    import tensorrt as trt
    from polygraphy.backend.trt import Calibrator, CreateConfig, EngineBytesFromNetwork, NetworkFromOnnxPath, Profile

    shape = tuple(INPUT_SHAPE)
    lo, opt, hi = opts.profile
    profiles = [Profile().add(opts.input_name, min=(lo,) + shape, opt=(opt,) + shape, max=(hi,) + shape)]
    applied = [f"TensorRT {trt.__version__} via Polygraphy", f"batch profile {lo}/{opt}/{hi}",
               f"workspace {opts.workspace_mb} MiB", "tf32 on" if opts.tf32 else "tf32 off"]
    if timing_cache is not None:
        applied.append(f"timing cache {timing_cache.name}" + (" (reused)" if timing_cache.is_file() else " (new)"))
    calibrator = None
    if opts.calibrates:
        if calib_images is None:
            raise EngineError("INT8 calibration needs calibration images (none given)")
        feed = CalibrationFeed(calib_images[:opts.calib_images], opts.calib_batch, opts.input_name)
        calibrator = Calibrator(feed, cache=str(calib_cache) if calib_cache else None)
        if opts.calib_batch != opt:  # Polygraphy calibrates with the last profile: one of the calibration batch
            b = (opts.calib_batch,) + shape
            profiles.append(Profile().add(opts.input_name, min=b, opt=b, max=b))
        applied.append(f"int8 entropy calibration (Polygraphy Calibrator, IInt8EntropyCalibrator2) on "
                       f"{len(feed) * opts.calib_batch} CIFAR-10 training images")
    elif opts.precision == "int8":
        applied.append("int8 explicit quantization from the QDQ model")
    fp16 = opts.precision == "fp16" or (opts.precision == "int8" and opts.int8_fp16_fallback)
    if fp16:
        applied.append("fp16" if opts.precision == "fp16" else "fp16 fallback")
    cache = str(timing_cache) if timing_cache is not None else None
    config = CreateConfig(tf32=opts.tf32, fp16=fp16, int8=opts.precision == "int8", profiles=profiles,
                          calibrator=calibrator, load_timing_cache=cache,
                          memory_pool_limits={trt.MemoryPoolType.WORKSPACE: opts.workspace_mb << 20})
    log(f"tensorrt: building {opts.precision} engine from {onnx_path} ...")
    try:
        serialized = EngineBytesFromNetwork(NetworkFromOnnxPath(str(onnx_path)), config=config,
                                            save_timing_cache=cache)()
    except Exception as exc:  # Polygraphy reports parser and builder errors as PolygraphyException
        raise EngineError(f"building {engine_path.name} from {onnx_path} failed: {exc}") from exc
    if serialized is None:
        raise EngineError(f"TensorRT returned no engine for {onnx_path} (see the TensorRT log above)")
    util.atomic_write_bytes(engine_path, bytes(serialized))
    return applied


def load_engine(path: Union[str, Path]):
    """(trt.Runtime, ICudaEngine) deserialized from `path` through Polygraphy's EngineFromBytes."""
    import tensorrt as trt
    from polygraphy.backend.trt import EngineFromBytes

    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    try:
        engine = EngineFromBytes(Path(path).read_bytes(), runtime=runtime)()
    except Exception as exc:
        raise EngineError(f"could not deserialize {path} (built by another TensorRT or GPU?): {exc}") from exc
    if engine is None:
        raise EngineError(f"could not deserialize {path} (built by another TensorRT or GPU?)")
    return runtime, engine


@dataclass
class EnginePlan:
    """Where the engine for one ONNX + options + machine goes, and what it is built from."""

    source: Path
    key: str
    filename: str
    facts: DeviceFacts
    opts: BuildOptions


def plan(onnx_path: Union[str, Path], opts: BuildOptions, facts: Optional[DeviceFacts] = None) -> EnginePlan:
    """The engine's key and file name (QDQ INT8 builds from model.int8.onnx beside `onnx_path`)."""
    src = Path(onnx_path)
    if opts.precision == "int8" and opts.int8_source == "qdq":
        src = src.parent / QDQ_ONNX
    if not src.is_file():
        raise EngineError(f"{src}: no such ONNX file to build a {opts.precision} engine from")
    facts = facts or DeviceFacts.probe()
    key = cache_key(util.sha256_file(src), facts, opts.precision, opts.profile, key_extra(opts))
    return EnginePlan(src, key, engine_filename(key, opts.precision, opts.profile, facts.gpu_name), facts, opts)


def engine_for(onnx_path: Union[str, Path], precision: str = "fp32", cache_dir: Optional[Union[str, Path]] = None,
               calibration_file: Optional[Union[str, Path]] = None, log: Callable[[str], None] = lambda m: None,
               **options: Any) -> Path:
    """The engine for `onnx_path` on this machine: one with the same key that `edgebench export` left in the
    artifacts' engines/ folder (read only), else the writable engine cache's, built there first when missing
    (with the machine's timing cache beside it). INT8 calibration reads its images from `calibration_file`
    (written by `edgebench export`)."""
    opts = normalized_options(precision, **options)
    p = plan(onnx_path, opts)
    for found in (engine_cache_dir(cache_dir) / p.filename, Path(onnx_path).parent / ENGINE_DIR / p.filename):
        if found.is_file() and found.stat().st_size > 0:
            return found
    directory = writable_cache_dir(cache_dir)
    target = directory / p.filename
    images = cache = None
    if opts.calibrates:
        if calibration_file is None:
            raise EngineError(f"INT8 calibration of {onnx_path} needs the calibration data file that "
                              f"`edgebench export --data` writes (calibration.npy beside the manifest)")
        images = read_calibration_file(calibration_file, opts.calib_images)

        cache = directory / Path(calibration_cache_name(util.sha256_file(p.source), opts.calib_images,
                                                        opts.calib_batch, images_digest(images))).name
    build_engine(p.source, target, opts, images, cache, log, timing_cache=directory / timing_cache_filename(p.facts))
    return target


def normalized_options(precision: str = "fp32", **options: Any) -> BuildOptions:
    """BuildOptions for a runtime's `build:` options: max_batch 256 unless given, opt and min capped by it."""
    options = dict(options)
    options.setdefault("max_batch", 256)
    options["opt_batch"] = min(options.get("opt_batch", 64), options["max_batch"])
    options["min_batch"] = min(options.get("min_batch", 1), options["opt_batch"])
    return build_options(precision=precision, **options)


__all__ = ["BuildOptions", "DeviceFacts", "EngineError", "CudaError", "EnginePlan", "ENGINE_DIR", "PRECISIONS",
           "INT8_SOURCES",
           "build_options", "key_extra", "cache_key", "engine_filename", "engine_cache_dir", "writable_cache_dir",
           "cuda_runtime", "cuda_driver", "cuda_check", "cuda_call", "instantiate_graph", "init_cuda", "build_engine",
           "load_engine", "plan", "engine_for", "normalized_options", "board_model", "timing_cache_filename",
           TF32_EFFECTIVE_KEY, "build_settings"]
