"""The torch backends' settings, variants and study suites, checked without PyTorch (tests/unit/test_torch_gpu.py
runs them on a GPU)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgebench import runtimes
from edgebench.bench import suite as suite_mod
from edgebench.runtimes.torch import DEFAULTS, VARIANTS, TorchFromOnnx, TorchGraph, TorchGraphTF32

REPO = Path(__file__).resolve().parents[2]
SUITES = REPO / "src" / "edgebench" / "suites"


@pytest.fixture
def variants(monkeypatch):
    """The variant backends, registered the way tools/gpu-study/run.sh registers them."""
    monkeypatch.setenv("EDGEBENCH_BACKENDS", ",".join(f"{k}={v}" for k, v in VARIANTS.items() if k != "torch"))


def test_variants_resolve_to_their_classes(variants):
    for name, target in VARIANTS.items():
        cls = runtimes.get(name)
        assert cls.name == name and f"{cls.__module__}:{cls.__name__}" == target
        assert cls.device == "gpu" and cls.artifact_for("fp16") == ("onnx", "fp32")


def test_presets_and_suite_options_make_the_settings():
    rt = TorchGraph("model.onnx", precision="fp16", io="device")
    assert rt.settings == dict(DEFAULTS, mode="graph", channels_last=True, io="device")
    assert TorchFromOnnx("model.onnx").settings == DEFAULTS  # the first run's eager path
    assert TorchGraphTF32("model.onnx").settings["tf32"] is True
    fused = runtimes.get("torch-fused-compile-graph")("model.onnx", precision="bf16")
    assert fused.settings == dict(DEFAULTS, mode="compile-graph", channels_last=True, io="pinned", fuse="cudnn")
    pipe = runtimes.get("torch-fused-compile-pipe")("model.onnx", precision="fp16", benchmark_limit=None)
    assert pipe.settings == dict(fused.settings, chunk=1024, inline_copies=64, benchmark_limit=None,
                                 benchmark_limit_max_batch=64)


def test_batches_are_planned_as_chunks_inline_or_whole():
    """Which batches go up in chunks (a multiple of `chunk` larger than it), which in one graph with their
    copies (at most `inline_copies`), and which as before; off the GPU and with io other than pinned, none."""
    rt = runtimes.get("torch-fused-compile-pipe")("model.onnx", precision="fp16")
    rt.dev = type("Dev", (), {"type": "cuda"})()
    plans = {b: rt._plan(b) for b in (1, 32, 64, 65, 1000, 1024, 2048, 3000, 4096)}
    assert plans == {1: (1, True), 32: (1, True), 64: (1, True), 65: (1, False), 1000: (1, False),
                     1024: (1, False), 2048: (2, False), 3000: (1, False), 4096: (4, False)}
    rt.dev = type("Dev", (), {"type": "cpu"})()
    assert rt._plan(4096) == (1, False)
    plain = TorchGraph("model.onnx", precision="fp16")
    plain.dev = type("Dev", (), {"type": "cuda"})()
    assert [plain._plan(b) for b in (1, 4096)] == [(1, False), (1, False)]


@pytest.mark.parametrize("options, message", [
    ({"graphs": True}, "unknown options"),
    ({"mode": "jit"}, "mode='jit'"),
    ({"io": "zero-copy"}, "io='zero-copy'"),
    ({"compile_mode": "fast"}, "compile_mode"),
    ({"tf32": "yes"}, "tf32 must be true or false"),
    ({"freeze": True}, "freeze applies to the compiled modes only"),
    ({"mode": "compile-graph", "compile_mode": "reduce-overhead"}, "captures its own CUDA graphs"),
    ({"freeze": 1, "mode": "compile"}, "freeze must be true or false"),
    ({"fuse": "tensorrt"}, "fuse='tensorrt'; choose one of none, cudnn"),
    ({"chunk": -1}, "chunk must be an integer >= 0"),
    ({"chunk": True}, "chunk must be an integer >= 0"),
    ({"inline_copies": "64"}, "inline_copies must be an integer >= 0"),
    ({"benchmark_limit": 1.5}, "benchmark_limit must be an integer >= 0"),
    ({"chunk": 1024}, "need a captured mode"),  # eager: nothing to overlap
    ({"mode": "graph", "io": "device", "inline_copies": 8}, "io=pinned"),  # compute only: no copies to arrange
])
def test_bad_options_are_refused_with_the_choices(options, message):
    with pytest.raises(ValueError, match=message):
        TorchFromOnnx("model.onnx", precision="fp32", **options)


def test_tf32_is_an_fp32_setting_only():
    with pytest.raises(ValueError, match="fp32 only"):
        TorchFromOnnx("model.onnx", precision="fp16", tf32=True)
    with pytest.raises(runtimes.RuntimeUnavailable, match="no fp16 path"):
        TorchGraphTF32("model.onnx", precision="fp16")


@pytest.mark.skipif("torch" in sys.modules or __import__("importlib").util.find_spec("torch") is not None,
                    reason="PyTorch is installed here: the unavailable path is not reachable")
def test_without_pytorch_the_backend_says_why():
    assert "not installed" in TorchGraph.check()


@pytest.mark.parametrize("name", ["gpu-torch", "gpu-host-cpu", "gpu-fused", "gpu-fused-pipe"])
def test_study_suites_parse(variants, name):
    s = suite_mod.load(str(SUITES / f"{name}.yaml"), cores=16)
    keys = [g.key for g in s.groups]
    assert len(keys) == len(set(keys)), "two groups of one suite would write rows with the same id"
    if name == "gpu-torch":
        assert {g.backend for g in s.groups} == set(VARIANTS)
        assert all(g.threads is None for g in s.groups)
    elif name == "gpu-fused":  # every fused variant, each next to the unfused configuration it builds on
        backends = {g.backend for g in s.groups}
        fused = {b for b in VARIANTS if runtimes.get(b).presets.get("fuse") == "cudnn"}
        assert fused <= backends and fused
        assert {("fp32", "torch-fused-graph"), ("fp16", "torch-fused-graph")} <= {(g.precision, g.backend)
                                                                                for g in s.groups}
        assert {"torch-graph", "torch-compile-graph", "torch-compile-compute"} <= backends
    elif name == "gpu-fused-pipe":  # the pipelined rows next to the fused row they build on and an FP32 row
        assert {(g.precision, g.backend) for g in s.groups} >= {
            ("bf16", "torch-fused-compile-pipe"), ("fp16", "torch-fused-compile-pipe"),
            ("bf16", "torch-fused-compile-graph"), ("fp32", "torch-graph")}
    else:
        assert [g.threads for g in s.groups] == [1, 3, 6, 12, 16]


def test_every_variant_is_a_registered_backend():
    """The study script only calls the kit: every torch variant is in the vocabulary and the registry."""
    from edgebench import runtimes
    from edgebench.contracts.vocabulary import BACKENDS
    from edgebench.runtimes.torch import VARIANTS

    for name, target in VARIANTS.items():
        assert name in BACKENDS and BACKENDS[name] == ("onnx", "gpu")
        assert runtimes.get(name).__name__ == target.rsplit(":", 1)[1]
    script = (REPO / "tools" / "gpu-study" / "run.sh").read_text()
    assert "EDGEBENCH_BACKENDS" not in script and "python3 -m edgebench bench" in script
