"""The engine builder's Polygraphy calls against the real Polygraphy 0.49.9 (the GPU images' pin) on Python 3.8.

Polygraphy is pure Python and imports TensorRT lazily, so every name the kit imports from it is imported here
for real, every call's arguments are bound to the real function's `inspect.signature`, and the loaders the kit
constructs (CreateConfig, Profile, NetworkFromOnnxPath, EngineBytesFromNetwork, EngineFromBytes) are the real
classes, whose stored settings are read back. What truly needs TensorRT is not run: a loader's __call__ (the
build itself) and Calibrator (it subclasses a TensorRT class); those two are bound to their signatures only.
"""
from __future__ import annotations

import ast
import inspect
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from jetson_real import require

PIN = "0.49.9"
KIT = Path(__file__).resolve().parents[2] / "src" / "edgebench" / "engines" / "tensorrt.py"


def _kit_imports():
    """(module, name) of every `from polygraphy... import name` in the kit's engine builder."""
    found = []
    for node in ast.walk(ast.parse(KIT.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("polygraphy"):
            found += [(node.module, a.name) for a in node.names]
    return found


@pytest.fixture()
def polygraphy_trt(monkeypatch):
    require("polygraphy", PIN)
    import importlib

    module = importlib.import_module("polygraphy.backend.trt")
    trt = types.ModuleType("tensorrt")  # TensorRT itself cannot be installed here: the two names the kit reads
    trt.__version__ = "8.5.2.2"
    trt.MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, level=None: None})
    trt.Runtime = type("Runtime", (), {"__init__": lambda self, logger=None: None})
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    return module


def test_every_polygraphy_name_the_kit_uses_imports_for_real(polygraphy_trt):
    import importlib

    names = _kit_imports()
    assert {n for _, n in names} >= {"CreateConfig", "EngineBytesFromNetwork", "NetworkFromOnnxPath", "Profile",
                                     "Calibrator", "EngineFromBytes"}
    for module, name in names:
        assert callable(getattr(importlib.import_module(module), name)), (module, name)


class _Bound:
    """Binds every call to the real signature; constructs the real loader where that needs no TensorRT."""

    NO_TRT_CONSTRUCT = {"Calibrator"}       # subclasses trt.IInt8EntropyCalibrator2 when called
    STAND_IN_CALL = {"EngineBytesFromNetwork": b"serialized engine", "EngineFromBytes": "engine"}

    def __init__(self, module, monkeypatch):
        self.calls = {}
        for _, name in _kit_imports():
            monkeypatch.setattr(module, name, self.wrap(name, getattr(module, name)))

    def wrap(self, name, real):
        sig = inspect.signature(real)

        def call(*args, **kwargs):
            sig.bind(*args, **kwargs)  # TypeError for a keyword or argument the real function does not take
            obj = None if name in self.NO_TRT_CONSTRUCT else real(*args, **kwargs)
            self.calls.setdefault(name, []).append((args, kwargs, obj))
            if name in self.STAND_IN_CALL:
                return lambda: self.STAND_IN_CALL[name]
            return obj if obj is not None else object()

        return call


@pytest.mark.parametrize("precision,tf32", [("fp32", False), ("fp32", True), ("fp16", False), ("int8", False)])
def test_build_engine_calls_take_the_real_signatures(polygraphy_trt, monkeypatch, tmp_path, precision, tf32):
    from edgebench.engines import tensorrt as eng

    bound = _Bound(polygraphy_trt, monkeypatch)
    opts = eng.build_options(precision=precision, tf32=tf32, max_batch=64, calib_images=64, calib_batch=16)
    images = np.random.RandomState(0).randint(0, 256, (64, 32, 32, 3)).astype(np.uint8)
    timing = tmp_path / "timing-orin.cache"
    applied = eng.build_engine(tmp_path / "model.onnx", tmp_path / "e.engine", opts, images,
                               tmp_path / "calib.cache", timing_cache=timing)
    assert (tmp_path / "e.engine").read_bytes() == b"serialized engine"
    (_, _, config), = bound.calls["CreateConfig"]
    assert config.tf32 is tf32 and config.timing_cache_path == str(timing)  # the real loader's own fields
    assert bool(config.fp16) == (precision != "fp32") and bool(config.int8) == (precision == "int8")
    assert config.memory_pool_limits == {"WORKSPACE": 1024 << 20}
    (_, kwargs, builder), = bound.calls["EngineBytesFromNetwork"]
    assert builder.timing_cache_path == str(timing) and kwargs["config"] is config
    assert len(config.profiles) == (2 if precision == "int8" else 1)  # calibration profile at batch 16
    assert ("tf32 on" if tf32 else "tf32 off") in applied
    if precision == "int8":
        (args, kwargs, _), = bound.calls["Calibrator"]
        assert kwargs["cache"] == str(tmp_path / "calib.cache")


def test_load_engine_call_takes_the_real_signature(polygraphy_trt, monkeypatch, tmp_path):
    from edgebench.engines import tensorrt as eng

    bound = _Bound(polygraphy_trt, monkeypatch)
    (tmp_path / "e.engine").write_bytes(b"plan")
    runtime, engine = eng.load_engine(tmp_path / "e.engine")
    assert engine == "engine"
    (args, kwargs, loader), = bound.calls["EngineFromBytes"]
    assert args == (b"plan",) and kwargs["runtime"] is runtime
