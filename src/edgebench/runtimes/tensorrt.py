"""TensorRT backend: runs an engine built on this GPU from model.onnx.

Engines come from edgebench.engines.tensorrt (Polygraphy's loaders, shared with the exporter): a given
`engine` option, else the cached engine for the ONNX file on this machine, built on first use in the writable
engine cache (`engine_cache` option, else $EDGEBENCH_ENGINE_CACHE, else $EDGEBENCH_CACHE: in a container the
results mount, never the read-only artifacts). INT8 calibration reads `calibration.npy` (written by
`edgebench export --data` beside the manifest, or the `calibration` option): a benchmark child never loads
CIFAR-10. Supports the TensorRT 8.5 bindings API (JetPack 5.1.2) and the 10.x named-tensor API. Execution
is synchronous from the caller's view (the stream is synchronized before `infer` returns); optionally the
enqueue is captured once into a CUDA graph and replayed (`cuda_graph: true`; instantiated with
`cudaGraphInstantiateWithFlags`, the one form cuda-python 11.8 and 12.x share). Every row records how its engine
was built (builder, TF32 policy and whether TF32 was in effect, timing cache) and the system's CUDA, cuDNN and
TensorRT (edgebench.engines.versions: JetPack's /usr/local/cuda, not cuda-python's compile-time constant).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from edgebench.contracts.vocabulary import INPUT_SHAPE, NUM_CLASSES, TF32_EFFECTIVE_KEY
from edgebench.engines import tensorrt as engines
from edgebench.engines.calibration import CALIBRATION_FILE
from edgebench.engines.tensorrt import cuda_call
from edgebench.runtimes.base import BackendStateError, Runtime


class TensorRT(Runtime):
    name = "tensorrt"
    uses_engine_cache = True
    artifact_format = "onnx"
    precisions = ("fp32", "fp16", "int8")
    device = "gpu"

    @classmethod
    def artifact_for(cls, precision: str):
        return "onnx", "fp32"  # engines of every precision are built from the FP32 ONNX on the device

    @classmethod
    def _check_impl(cls) -> Optional[str]:
        import polygraphy  # noqa: F401  # builds and loads the engines (edgebench.engines.tensorrt)
        import tensorrt  # noqa: F401

        try:  # initialise CUDA for real: a broken cuda-python or driver is "unavailable", not a pass
            engines.init_cuda()
        except ImportError:
            raise
        except Exception as exc:
            return f"CUDA does not initialise through cuda-python: {type(exc).__name__}: {exc}"
        return None

    @classmethod
    def versions(cls) -> Dict[str, str]:
        import tensorrt as trt

        from edgebench.engines import versions as system

        out: Dict[str, Any] = {"tensorrt": trt.__version__}
        try:
            import polygraphy

            out["polygraphy"] = polygraphy.__version__
        except ImportError:
            pass
        found = system.system_versions(with_tensorrt=False)
        out.update({k: v for k, v in found.items() if v})
        return out

    def _instance_versions(self) -> Dict[str, Any]:
        """On a loaded runtime: the versions plus how the engine was built (`settings`), so the row says it."""
        return dict(type(self).versions(), settings=dict(self.settings))

    def build_opts(self) -> engines.BuildOptions:
        build = dict(self.options.get("build") or {})
        build.setdefault("max_batch", self.batch_size or 256)
        return engines.normalized_options(self.precision, **build)

    def engine_path(self) -> Path:
        """The engine to run: the `engine` option, else the cached one for the artifact (built when missing)."""
        if self.options.get("engine"):
            return Path(self.options["engine"])
        assert self.artifact is not None
        calibration = self.options.get("calibration") or self.artifact.parent / CALIBRATION_FILE
        opts = self.build_opts()
        build = {k: v for k, v in vars(opts).items() if k != "precision"}
        return engines.engine_for(self.artifact, self.precision, cache_dir=self.options.get("engine_cache"),
                                  calibration_file=calibration, **build)

    def engine_settings(self, engine_path: Path) -> Dict[str, Any]:
        """How the engine was built, for the row: the build options' settings, or 'given' for an `engine` option
        (built elsewhere: its TF32 policy is not known here)."""
        if self.options.get("engine"):
            return {"builder": "given", "engine": str(engine_path), "tf32": None, TF32_EFFECTIVE_KEY: None}
        opts = self.build_opts()
        facts = engines.DeviceFacts.probe()
        cache = engines.engine_cache_dir(self.options.get("engine_cache")) / engines.timing_cache_filename(facts)
        return dict(engines.build_settings(opts, facts, timing_cache=cache), engine=str(engine_path))

    def _load_impl(self) -> None:
        import tensorrt as trt

        cudart = engines.cuda_runtime()
        engine_path = self.engine_path()
        self.runtime, self.engine = engines.load_engine(engine_path)
        self.engine_file = str(engine_path)
        self.settings = dict(self.engine_settings(engine_path), cuda_graph=bool(self.options.get("cuda_graph", False)))
        self.versions = self._instance_versions  # type: ignore[assignment]  # shadows the classmethod
        self.context = self.engine.create_execution_context()
        self.v10 = hasattr(self.engine, "num_io_tensors")
        if self.v10:
            names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
            self.input_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
            self.output_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        else:
            self.input_index = next(i for i in range(self.engine.num_bindings) if self.engine.binding_is_input(i))
            self.output_index = next(i for i in range(self.engine.num_bindings) if not self.engine.binding_is_input(i))
        self.stream = cuda_call(cudart.cudaStreamCreate)
        self.use_graph = bool(self.options.get("cuda_graph", False))
        self._batch = None
        self._graph_exec = None
        self.d_in = self.d_out = None

    def _prepare(self, n: int) -> None:
        cudart = engines.cuda_runtime()

        if n == self._batch:
            return
        self._free()
        shape = (n,) + tuple(INPUT_SHAPE)
        in_bytes, out_bytes = int(np.prod(shape)) * 4, n * NUM_CLASSES * 4
        self.d_in = cuda_call(cudart.cudaMalloc, in_bytes)
        self.d_out = cuda_call(cudart.cudaMalloc, out_bytes)
        self.h_out = np.empty((n, NUM_CLASSES), dtype=np.float32)
        if self.v10:
            self.context.set_input_shape(self.input_name, shape)
            self.context.set_tensor_address(self.input_name, int(self.d_in))
            self.context.set_tensor_address(self.output_name, int(self.d_out))
        else:
            self.context.set_binding_shape(self.input_index, shape)
            self.bindings = [0] * self.engine.num_bindings
            self.bindings[self.input_index] = int(self.d_in)
            self.bindings[self.output_index] = int(self.d_out)
        self._batch = n
        if self.use_graph:
            self._enqueue()  # one run before capture lets TensorRT finish lazy setup
            cuda_call(cudart.cudaStreamSynchronize, self.stream)
            cuda_call(cudart.cudaStreamBeginCapture, self.stream,
                      cudart.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal)
            self._enqueue()
            graph = cuda_call(cudart.cudaStreamEndCapture, self.stream)
            try:
                self._graph_exec = engines.instantiate_graph(graph)
            finally:
                cuda_call(cudart.cudaGraphDestroy, graph)  # the executable graph keeps what it needs

    def _enqueue(self) -> None:
        ok = (self.context.execute_async_v3(int(self.stream)) if self.v10
              else self.context.execute_async_v2(self.bindings, int(self.stream)))
        if not ok:
            raise BackendStateError("tensorrt: enqueue failed")

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        cudart = engines.cuda_runtime()

        n = len(x)
        self._prepare(n)
        x = np.ascontiguousarray(x, dtype=np.float32)
        kind_h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        kind_d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        cuda_call(cudart.cudaMemcpyAsync, self.d_in, x.ctypes.data, x.nbytes, kind_h2d, self.stream)
        if self._graph_exec is not None:
            cuda_call(cudart.cudaGraphLaunch, self._graph_exec, self.stream)
        else:
            self._enqueue()
        cuda_call(cudart.cudaMemcpyAsync, self.h_out.ctypes.data, self.d_out, self.h_out.nbytes, kind_d2h, self.stream)
        cuda_call(cudart.cudaStreamSynchronize, self.stream)  # honest host timing
        return self.h_out.copy()

    def _free(self) -> None:
        cudart = engines.cuda_runtime()

        for ptr in (self.d_in, self.d_out):
            if ptr is not None:
                cudart.cudaFree(ptr)
        self.d_in = self.d_out = None
        if self._graph_exec is not None:
            cudart.cudaGraphExecDestroy(self._graph_exec)
        self._graph_exec = None

    def _close_impl(self) -> None:
        cudart = engines.cuda_runtime()

        self._free()
        cudart.cudaStreamDestroy(self.stream)
        del self.context, self.engine, self.runtime
