"""The TensorRT backend's CUDA calls against the real cuda-python 11.8.2 (the Jetson image's pin) on Python 3.8.

cuda-python parses a call's arguments before it loads the driver, so on a machine with no NVIDIA driver every
call the kit makes either gets as far as loading libcuda (a RuntimeError from cuda-python: the form was
accepted) or fails with TypeError (the form is another version's, as `cudaGraphInstantiate(graph, 0)` is in
11.8.2). No TensorRT and no GPU are needed for that; what needs them is not checked here: the values the calls
return, and TensorRT's engine (a stand-in object below, since the tensorrt module cannot be installed here).
"""
from __future__ import annotations

import ctypes
import sys
import types

import numpy as np
import pytest
from jetson_real import require

PIN = "11.8.2"


@pytest.fixture()
def cudart():
    require("cuda-python", PIN)
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        pass
    else:
        pytest.skip("an NVIDIA driver is present: these tests read cuda-python's no-driver behaviour")
    from cuda import cudart as real

    return real


def _no_driver(exc: BaseException) -> bool:
    """cuda-python 11.8.2's own words when libcuda.so.1 cannot be loaded (first call, then every later one)."""
    return isinstance(exc, RuntimeError) and ("dlopen" in str(exc) or "not found" in str(exc))


def test_the_old_graph_call_is_a_typeerror_and_the_kits_is_accepted(cudart):
    from edgebench.engines import tensorrt as eng

    graph = cudart.cudaGraph_t()
    with pytest.raises(TypeError, match="3 positional arguments"):
        cudart.cudaGraphInstantiate(graph, 0)  # the 12.x form: the defect this replaces
    with pytest.raises(eng.CudaError, match=r"cudaGraphInstantiateWithFlags: .*(dlopen|not found)"):
        eng.instantiate_graph(graph)  # accepted; fails only for want of a driver, with the kit's own error


def test_binding_constant_is_not_the_system_cuda(cudart):
    """cudaRuntimeGetVersion() of cuda-python 11.8.2 is its build's 11080 with no CUDA at all: not a version."""
    from edgebench.engines import versions

    err, value = cudart.cudaRuntimeGetVersion()
    assert int(err) == 0 and value == 11080
    found = versions.system_versions(root="/nonexistent", header_dirs=[], cudart_loader=lambda: None,
                                     cudnn_loader=lambda: None, with_tensorrt=False)
    assert found["cuda"] is None  # unknown, never "11.8"


def test_check_without_a_driver_is_a_reason_not_a_crash(cudart, monkeypatch):
    from edgebench.engines import tensorrt as eng
    from edgebench.runtimes.tensorrt import TensorRT

    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))  # TensorRT: not installable here
    monkeypatch.setitem(sys.modules, "polygraphy", types.ModuleType("polygraphy"))
    with pytest.raises(eng.CudaError, match="cuInit"):
        eng.init_cuda()
    reason = TensorRT.check()
    assert reason and reason.startswith("CUDA does not initialise through cuda-python: CudaError: cuInit")


class _Recorder:
    """cuda-python's runtime module, calling the real function every time; where it stops for want of a driver
    (the arguments were accepted), it returns a success of the shape the real call returns."""

    def __init__(self, real):
        self.real, self.calls = real, []
        ok = real.cudaError_t.cudaSuccess
        self.results = {"cudaStreamCreate": (ok, real.cudaStream_t()), "cudaMalloc": (ok, 0),
                        "cudaStreamEndCapture": (ok, real.cudaGraph_t()),
                        "cudaGraphInstantiateWithFlags": (ok, real.cudaGraphExec_t())}
        self.ok = (ok,)

    def __getattr__(self, name):
        value = getattr(self.real, name)
        if not callable(value) or not name.startswith("cuda") or isinstance(value, type):
            return value

        def call(*args):
            try:
                return value(*args)
            except RuntimeError as exc:
                if not _no_driver(exc):
                    raise
            self.calls.append(name)
            return self.results.get(name, self.ok)

        call.__name__ = name
        return call


class _Engine:
    """A TensorRT 8.5 engine's bindings API, as runtimes.tensorrt uses it (TensorRT is not installable here)."""

    num_bindings = 2

    def binding_is_input(self, i):
        return i == 0

    def create_execution_context(self):
        return types.SimpleNamespace(set_binding_shape=lambda i, shape: True,
                                     execute_async_v2=lambda bindings, stream: True)


def test_every_runtime_call_has_the_form_cuda_python_11_8_takes(cudart, monkeypatch, tmp_path):
    """Load, prepare with CUDA-graph capture, infer, close: every cudart call the backend makes goes through
    the real 11.8.2 argument parsing (a TypeError here is a call in another version's form)."""
    from edgebench.engines import tensorrt as eng
    from edgebench.runtimes.tensorrt import TensorRT

    rec = _Recorder(cudart)
    monkeypatch.setattr(eng, "cuda_runtime", lambda: rec)
    monkeypatch.setattr(eng, "load_engine", lambda path: (object(), _Engine()))
    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    engine = tmp_path / "given.engine"
    engine.write_bytes(b"engine")
    rt = TensorRT(str(tmp_path / "model.onnx"), "fp16", batch_size=4, engine=str(engine), cuda_graph=True)
    rt._load_impl()
    rt._loaded = True
    out = rt.infer(np.zeros((4, 32, 32, 3), np.float32))
    assert out.shape == (4, 10)
    rt.close()
    for name in ("cudaStreamCreate", "cudaMalloc", "cudaStreamBeginCapture", "cudaStreamEndCapture",
                 "cudaGraphInstantiateWithFlags", "cudaGraphDestroy", "cudaMemcpyAsync", "cudaGraphLaunch",
                 "cudaStreamSynchronize", "cudaGraphExecDestroy", "cudaFree", "cudaStreamDestroy"):
        assert name in rec.calls, (name, rec.calls)
    assert "cudaGraphInstantiate" not in rec.calls
    assert rt.settings["builder"] == "given" and rt.settings["cuda_graph"] is True


def test_driver_calls_have_the_form_cuda_python_11_8_takes(cudart):
    from cuda import cuda

    for fn, args in ((cuda.cuInit, (0,)), (cuda.cuDeviceGet, (0,)), (cuda.cuDeviceGetName, (256, cuda.CUdevice(0))),
                     (cudart.cudaGetDeviceProperties, (0,)), (cudart.cudaDriverGetVersion, ())):
        with pytest.raises(RuntimeError) as info:
            fn(*args)
        assert _no_driver(info.value), (fn, info.value)
