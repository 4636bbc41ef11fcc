"""TensorRT engines (FP32, FP16, INT8) built from model.onnx on the machine that runs them.

The building, INT8 calibration and cache keys live in edgebench.engines.tensorrt (shared with the runtime);
these exporters put the engines in the artifacts folder under engines/<key>.engine and record them in the
manifest. A second export reuses an engine with the same key; a changed model, TensorRT, GPU or option
gives a new one. INT8 calibrates on the real CIFAR-10 training images the pipeline loaded (the same ones it
writes to calibration.npy), or (`int8_source="qdq"`) builds from the QDQ model. The machine's tactic timing cache
sits beside the engines (engines/timing-<gpu>-<key>.cache), so the FP16 and INT8 builds reuse the FP32 build's
timings and a rebuild times nothing it timed before.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List

from edgebench.engines import tensorrt as engines
from edgebench.engines.calibration import ENGINE_DIR, calibration_cache_name, images_digest
from edgebench.export.base import ExportContext, Exporter, ExportError


def require_tensorrt(artifact: str) -> None:
    try:
        import polygraphy  # noqa: F401
        import tensorrt  # noqa: F401

        engines.cuda_runtime()
    except ImportError as exc:
        raise ExportError(artifact, f"TensorRT is not available here ({exc.name or exc} is not importable): "
                                    f"engines are built on the device that runs them "
                                    f"(Jetson / NGC image, `edgebench bench` builds them)") from None


class TensorRTExporter(Exporter):
    format = "tensorrt"
    tools = ("tensorrt", "polygraphy", "cuda-python")
    requires = ("onnx-fp32",)
    runtime = "tensorrt"

    def validate_options(self, options: Dict[str, Any]) -> Dict[str, Any]:
        opts = engines.build_options(precision=self.precision,
                                     **{k: v for k, v in options.items() if k != "precision"})
        return asdict(opts)

    def build_opts(self) -> engines.BuildOptions:
        return engines.BuildOptions(**self.options)

    def engine_plan(self, ctx: ExportContext) -> engines.EnginePlan:
        require_tensorrt(self.artifact_name())
        opts = self.build_opts()
        if opts.precision == "int8" and opts.int8_source == "qdq":
            ctx.artifact_path("onnx-int8")  # ExportError when the QDQ model was not exported in this run
        try:  # the QDQ model is model.int8.onnx beside model.onnx: plan() picks it
            return engines.plan(ctx.artifact_path("onnx-fp32"), opts)
        except engines.EngineError as exc:
            raise ExportError(self.artifact_name(), str(exc)) from None

    def target_filename(self, ctx: ExportContext) -> str:
        return f"{ENGINE_DIR}/{self.engine_plan(ctx).filename}"

    def reusable(self, ctx: ExportContext, target: Path) -> bool:
        return target.is_file() and target.stat().st_size > 0

    def _export_impl(self, ctx: ExportContext, tmp_path: Path) -> List[str]:
        from edgebench import util

        p = self.engine_plan(ctx)
        images = cache = None
        if p.opts.calibrates:
            images = ctx.calibration(self.artifact_name(), p.opts.calib_images)
            cache = ctx.out_dir / calibration_cache_name(util.sha256_file(p.source), p.opts.calib_images,
                                                         p.opts.calib_batch, images_digest(images))
            cache.parent.mkdir(parents=True, exist_ok=True)
        timing = ctx.out_dir / ENGINE_DIR / engines.timing_cache_filename(p.facts)
        timing.parent.mkdir(parents=True, exist_ok=True)
        try:
            applied = engines.build_engine(p.source, tmp_path, p.opts, images, cache, ctx.log, timing_cache=timing)
        except Exception as exc:
            raise ExportError(self.artifact_name(), f"engine build failed: {exc}") from exc
        return applied + [f"built for {p.facts.gpu_name} (sm {p.facts.compute_capability}, {p.facts.sm_count} SMs, "
                          f"CUDA {p.facts.cuda_runtime})"]


class TensorRTFp32Exporter(TensorRTExporter):
    precision = "fp32"
    filename = f"{ENGINE_DIR}/fp32.engine"


class TensorRTFp16Exporter(TensorRTExporter):
    precision = "fp16"
    filename = f"{ENGINE_DIR}/fp16.engine"


class TensorRTInt8Exporter(TensorRTExporter):
    precision = "int8"
    filename = f"{ENGINE_DIR}/int8.engine"
