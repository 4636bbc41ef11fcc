"""TensorRT backend: runs an engine built on this GPU from model.onnx (see export/tensorrt.py).

Supports the TensorRT 8.5 bindings API (JetPack 5.1.2) and the 10.x named-tensor API. Device
memory and streams come from cuda-python (`cuda.cudart`). Execution is synchronous from the
caller's view: the stream is synchronized before `infer` returns, so host timings are honest.
Optionally the enqueue is captured once into a CUDA graph and replayed.
"""
from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from edgebench.runtimes.base import Runtime


def _cuda_check(result):
    err = result[0]
    if int(err) != 0:
        raise RuntimeError(f"CUDA call failed: {err}")
    return result[1] if len(result) == 2 else result[1:]


class TensorRT(Runtime):
    name = "tensorrt"
    artifact_format = "onnx"
    precisions = ("fp32", "fp16", "int8")
    device = "gpu"

    @classmethod
    def artifact_for(cls, precision: str):
        return "onnx", "fp32"  # engines of every precision are built from the FP32 ONNX on the device

    @classmethod
    def _check_impl(cls) -> Optional[str]:
        import tensorrt  # noqa: F401
        from cuda import cudart  # noqa: F401

        return None

    @classmethod
    def versions(cls) -> Dict[str, str]:
        import tensorrt as trt

        return {"tensorrt": trt.__version__}

    def _load_impl(self) -> None:
        import tensorrt as trt
        from cuda import cudart

        from edgebench.export import tensorrt as trt_export

        engine_path = self.options.get("engine") or trt_export.engine_for(
            self.artifact, self.precision, max_batch=self.batch_size or 256, **self.options.get("build", {}))
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        with open(engine_path, "rb") as f:
            self.engine = self.runtime.deserialize_cuda_engine(f.read())
        if self.engine is None:
            raise RuntimeError(f"tensorrt: could not deserialize {engine_path} (built by another TensorRT or GPU?)")
        self.context = self.engine.create_execution_context()
        self.v10 = hasattr(self.engine, "num_io_tensors")
        if self.v10:
            names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
            self.input_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
            self.output_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        else:
            self.input_index = next(i for i in range(self.engine.num_bindings) if self.engine.binding_is_input(i))
            self.output_index = next(i for i in range(self.engine.num_bindings) if not self.engine.binding_is_input(i))
        self.stream = _cuda_check(cudart.cudaStreamCreate())
        self.use_graph = bool(self.options.get("cuda_graph", False))
        self._batch = None
        self._graph_exec = None
        self.d_in = self.d_out = None

    def _prepare(self, n: int) -> None:
        from cuda import cudart

        if n == self._batch:
            return
        self._free()
        in_bytes, out_bytes = n * 32 * 32 * 3 * 4, n * 10 * 4
        self.d_in = _cuda_check(cudart.cudaMalloc(in_bytes))
        self.d_out = _cuda_check(cudart.cudaMalloc(out_bytes))
        self.h_out = np.empty((n, 10), dtype=np.float32)
        if self.v10:
            self.context.set_input_shape(self.input_name, (n, 32, 32, 3))
            self.context.set_tensor_address(self.input_name, int(self.d_in))
            self.context.set_tensor_address(self.output_name, int(self.d_out))
        else:
            self.context.set_binding_shape(self.input_index, (n, 32, 32, 3))
            self.bindings = [0] * self.engine.num_bindings
            self.bindings[self.input_index] = int(self.d_in)
            self.bindings[self.output_index] = int(self.d_out)
        self._batch = n
        if self.use_graph:
            self._enqueue()  # one run before capture lets TensorRT finish lazy setup
            _cuda_check(cudart.cudaStreamSynchronize(self.stream))
            _cuda_check(cudart.cudaStreamBeginCapture(self.stream, cudart.cudaStreamCaptureMode.cudaStreamCaptureModeGlobal))
            self._enqueue()
            graph = _cuda_check(cudart.cudaStreamEndCapture(self.stream))
            self._graph_exec = _cuda_check(cudart.cudaGraphInstantiate(graph, 0))

    def _enqueue(self) -> None:
        ok = (self.context.execute_async_v3(int(self.stream)) if self.v10
              else self.context.execute_async_v2(self.bindings, int(self.stream)))
        if not ok:
            raise RuntimeError("tensorrt: enqueue failed")

    def _infer_impl(self, x: np.ndarray) -> np.ndarray:
        from cuda import cudart

        n = len(x)
        self._prepare(n)
        x = np.ascontiguousarray(x, dtype=np.float32)
        kind_h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        kind_d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _cuda_check(cudart.cudaMemcpyAsync(self.d_in, x.ctypes.data, x.nbytes, kind_h2d, self.stream))
        if self._graph_exec is not None:
            _cuda_check(cudart.cudaGraphLaunch(self._graph_exec, self.stream))
        else:
            self._enqueue()
        _cuda_check(cudart.cudaMemcpyAsync(self.h_out.ctypes.data, self.d_out, self.h_out.nbytes, kind_d2h, self.stream))
        _cuda_check(cudart.cudaStreamSynchronize(self.stream))  # honest host timing
        return self.h_out.copy()

    def _free(self) -> None:
        from cuda import cudart

        for ptr in (self.d_in, self.d_out):
            if ptr is not None:
                cudart.cudaFree(ptr)
        self.d_in = self.d_out = None
        self._graph_exec = None

    def _close_impl(self) -> None:
        from cuda import cudart

        self._free()
        cudart.cudaStreamDestroy(self.stream)
        del self.context, self.engine, self.runtime
