"""TensorRT engines (edgebench.engines): everything up to the point that needs TensorRT runs here, with the
gap named in each skip: options, cache keys, the writable cache (also inside a container), calibration data
files, trtexec command lines and output parsing, CUDA initialisation of `env --check tensorrt`."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import types

import numpy as np
import pytest

from edgebench.engines import calibration as cal
from edgebench.engines import tensorrt as eng
from edgebench.engines import trtexec
from edgebench.export import tensorrt as trtx
from edgebench.export.base import ArtifactRecord, ExportContext

SHA = "ab" * 32
FACTS = eng.DeviceFacts(trt_version="8.5.2.2", gpu_name="Orin", compute_capability="8.7", sm_count=8,
                        cuda_runtime="11.4", cuda_driver="11.4", device_model="NVIDIA Jetson Orin Nano Developer Kit")


def test_build_options_validation():
    assert eng.build_options(precision="int8").profile == (1, 64, 256)
    bad = [dict(precision="int4"), dict(precision="bf16"), dict(min_batch=0), dict(min_batch=8, opt_batch=4),
           dict(opt_batch=512, max_batch=256), dict(workspace_mb=-1), dict(int8_source="magic"),
           dict(precision="int8", calib_images=16, calib_batch=32), dict(input_name="in put"),
           dict(max_batch=2.5), dict(frobnicate=True)]
    for kwargs in bad:
        with pytest.raises(ValueError):
            eng.build_options(**kwargs)
    eng.build_options(precision="fp16", calib_images=16, calib_batch=32)  # no calibration for fp16


def test_cache_key_changes_with_every_input_and_machine_fact():
    k0 = eng.cache_key(SHA, FACTS, "int8", (1, 64, 256))
    assert k0 == eng.cache_key(SHA, FACTS.to_dict(), "int8", (1, 64, 256)) and len(k0) == 64
    keys = {eng.cache_key("cd" * 32, FACTS, "int8", (1, 64, 256)), eng.cache_key(SHA, FACTS, "fp16", (1, 64, 256)),
            eng.cache_key(SHA, FACTS, "int8", (1, 32, 256)),
            eng.cache_key(SHA, FACTS, "int8", (1, 64, 256), {"calib_images": 100})}
    for fact, value in (("trt_version", "10.3.0"), ("gpu_name", "NVIDIA H100"), ("compute_capability", "9.0"),
                        ("sm_count", 16), ("cuda_runtime", "12.2"), ("cuda_driver", "12.4"),
                        ("device_model", "NVIDIA Jetson AGX Orin")):  # every Orin module says "Orin"
        keys.add(eng.cache_key(SHA, dict(FACTS.to_dict(), **{fact: value}), "int8", (1, 64, 256)))
    assert len(keys) == 11 and k0 not in keys
    with pytest.raises(ValueError, match="64 hex"):
        eng.cache_key("nothex", FACTS, "int8", (1, 64, 256))
    with pytest.raises(ValueError, match="precision"):
        eng.cache_key(SHA, FACTS, "bf16", (1, 64, 256))
    with pytest.raises(ValueError, match="trt_version"):
        eng.cache_key(SHA, {"gpu_name": "x"}, "fp16", (1, 64, 256))


def test_key_extra_tracks_calibration_only_for_int8():
    fp16 = eng.key_extra(eng.build_options(precision="fp16"))
    int8 = eng.key_extra(eng.build_options(precision="int8", calib_images=256))
    assert "calib_images" not in fp16 and int8["calib_images"] == 256
    assert eng.key_extra(eng.build_options(precision="int8", int8_source="qdq")).get("calib_images") is None


def test_engine_filename_is_readable_and_keyed():
    key = eng.cache_key(SHA, FACTS, "fp16", (1, 64, 256))
    name = eng.engine_filename(key, "fp16", (1, 64, 256), "Orin (nvgpu)")
    assert name.startswith("fp16-b1-64-256-orin-nvgpu-") and name.endswith(key[:16] + ".engine")


def test_engine_cache_is_never_beside_the_onnx(tmp_path):
    assert eng.engine_cache_dir("/x/cache", {}) == eng.Path("/x/cache")
    assert eng.engine_cache_dir(None, {"EDGEBENCH_ENGINE_CACHE": "/e", "EDGEBENCH_CACHE": "/d"}) == eng.Path("/e")
    assert eng.engine_cache_dir(None, {"EDGEBENCH_CACHE": "/d"}) == eng.Path("/d/tensorrt-engines")
    assert eng.engine_cache_dir(None, {"HOME": "/home/u"}) == eng.Path("/home/u/.cache/edgebench/engines")
    import os

    if os.geteuid() == 0:
        return  # root writes into read-only folders: the refusal is checked as a normal user only
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(eng.EngineError, match="not writable.*EDGEBENCH_ENGINE_CACHE"):
            eng.writable_cache_dir(ro / "engines")
    finally:
        ro.chmod(0o700)


def test_container_run_resolves_a_writable_engine_path(tmp_path):
    """The launcher's mounts and environment: the engine cache lands under the writable /results mount,
    never under the read-only /artifacts where model.onnx lives."""
    from edgebench.contracts.request import BenchRequest
    from edgebench.launchers.container import ARTIFACTS_MOUNT, image_environment, mounts_for

    (tmp_path / "art").mkdir()
    req = BenchRequest(artifacts=str(tmp_path / "art"), out=str(tmp_path / "results" / "r.json"))
    inner, binds = mounts_for(req)
    env = image_environment("edgebench:x", {"Id": "sha256:1"}, "jetson-jp512")
    cache = eng.engine_cache_dir(None, env)
    onnx = eng.Path(inner.artifacts) / "model.onnx"
    writable = [b["bind"] for b in binds.values() if b["mode"] == "rw"]
    readonly = [b["bind"] for b in binds.values() if b["mode"] == "ro"]
    assert any(str(cache).startswith(w + "/") for w in writable), (cache, binds)
    assert not any(str(cache).startswith(r + "/") or str(cache) == r for r in readonly)
    assert str(onnx).startswith(ARTIFACTS_MOUNT) and onnx.parent != cache


def test_calibration_file_round_trip_and_errors(tmp_path):
    x = np.random.RandomState(0).randint(0, 256, (40, 32, 32, 3)).astype(np.uint8)
    sha = cal.write_calibration_file(x, tmp_path / "calibration.npy")
    assert len(sha) == 64
    back = cal.read_calibration_file(tmp_path / "calibration.npy", limit=16)
    np.testing.assert_array_equal(back, x[:16])
    assert cal.images_digest(cal.read_calibration_file(tmp_path / "calibration.npy")) == cal.images_digest(x)
    with pytest.raises(cal.CalibrationDataError, match="no such file"):
        cal.read_calibration_file(tmp_path / "none.npy")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(cal.CalibrationDataError, match="bad.npy"):
        cal.read_calibration_file(tmp_path / "bad.npy")
    np.save(tmp_path / "nchw.npy", np.zeros((4, 3, 32, 32), np.uint8))
    with pytest.raises(cal.CalibrationDataError, match="NHWC"):
        cal.read_calibration_file(tmp_path / "nchw.npy")
    with pytest.raises(cal.CalibrationDataError):
        cal.write_calibration_file(np.zeros((0, 32, 32, 3)), tmp_path / "empty.npy")


def test_calibration_batches_and_feed():
    x = np.arange(70 * 32 * 32 * 3, dtype=np.uint32).reshape(70, 32, 32, 3).astype(np.uint8)
    batches = list(cal.calibration_batches(x, 32))
    assert len(batches) == 2
    for b in batches:
        assert b.shape == (32, 32, 32, 3) and b.dtype == np.float32 and b.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(batches[1], x[32:64].astype(np.float32))
    feed = cal.CalibrationFeed(x, 32)
    assert len(feed) == 2 and [list(d) for d in feed] == [["image"], ["image"]]
    assert len(list(feed)) == 2  # re-iterable: Polygraphy may rewind it
    with pytest.raises(ValueError, match="cannot fill one batch"):
        cal.CalibrationFeed(x[:4], 8)
    with pytest.raises(ValueError, match="NHWC"):
        list(cal.calibration_batches(np.zeros((8, 3, 32, 32)), 4))


def test_calibration_cache_name_depends_on_images():
    a = cal.calibration_cache_name(SHA, 500, 32, cal.images_digest(np.zeros((4, 32, 32, 3), np.uint8)))
    b = cal.calibration_cache_name(SHA, 500, 32, cal.images_digest(np.ones((4, 32, 32, 3), np.uint8)))
    assert a != b and a.startswith("engines/calib-") and a.endswith(".cache")


def test_trtexec_build_command_for_tensorrt_85_and_10():
    argv = trtexec.build_command("model.onnx", "e.engine", "int8", (1, 64, 256), calib_cache="c.cache",
                                 trt_version="8.5.2.2")
    assert argv[0] == "/usr/src/tensorrt/bin/trtexec"
    assert "--onnx=model.onnx" in argv and "--saveEngine=e.engine" in argv
    assert "--minShapes=image:1x32x32x3" in argv and "--optShapes=image:64x32x32x3" in argv
    assert "--maxShapes=image:256x32x32x3" in argv and "--memPoolSize=workspace:1024" in argv
    assert "--int8" in argv and "--calib=c.cache" in argv and "--buildOnly" in argv
    argv10 = trtexec.build_command("m.onnx", "e", "fp16", trt_version="10.3.0", trtexec="trtexec")
    assert argv10[0] == "trtexec" and "--fp16" in argv10 and "--skipInference" in argv10 and "--int8" not in argv10
    assert all(isinstance(a, str) for a in argv10)  # an argv list, never a shell string
    with pytest.raises(ValueError):
        trtexec.build_command("m.onnx", "e", "fp16", (8, 4, 2))


DATA = eng.Path(__file__).parent / "data" / "jetson"


def test_trtexec_load_command_and_times_parsing():
    """--exportTimes in TensorRT's own format (sampleReporting.cpp exportJSONTrace, 8.5-10: one object per
    inference, warm-up included): the summary is computed from it the way trtexec's report does."""
    argv = trtexec.load_command("/c/e.engine", 64, use_cuda_graph=True, export_times="/t/times.json",
                                export_profile="/t/profile.json")
    assert "--loadEngine=/c/e.engine" in argv and "--shapes=image:64x32x32x3" in argv and "--useCudaGraph" in argv
    assert "--exportTimes=/t/times.json" in argv and "--exportProfile=/t/profile.json" in argv
    assert "--separateProfileRun" in argv
    with pytest.raises(ValueError):
        trtexec.load_command("e", 0)
    s = trtexec.parse_times(DATA / "trtexec-times.json", warmup_ms=1.0)
    assert s["count"] == 5  # the first inference (compute began at 0.93 ms) is warm-up
    assert s["gpu_compute_ms"]["min"] == pytest.approx(1.10) and s["gpu_compute_ms"]["max"] == pytest.approx(1.60)
    assert s["gpu_compute_ms"]["mean"] == pytest.approx((1.10 + 1.20 + 1.25 + 1.30 + 1.60) / 5)
    assert s["gpu_compute_ms"]["median"] == pytest.approx(1.25)
    assert s["gpu_compute_ms"]["p99"] == pytest.approx(1.60) and s["gpu_compute_ms"]["p90"] == pytest.approx(1.60)
    hundred = [float(i) for i in range(1, 101)]  # trtexec's float32 rule: p90 of 1..100 is 90, p99 is 100
    assert (trtexec._percentile(hundred, 90), trtexec._percentile(hundred, 99)) == (90.0, 100.0)
    assert s["enqueue_ms"]["max"] == pytest.approx(0.2)
    assert s["throughput_qps"] == pytest.approx(5 * 1000 / (10.35 - 2.0))
    assert trtexec.images_per_second(s, 64) == pytest.approx(64 * 1000 / s["gpu_compute_ms"]["mean"])
    assert trtexec.parse_times(DATA / "trtexec-times.json")["count"] == 6
    with pytest.raises(ValueError, match="no inference after"):
        trtexec.parse_times(DATA / "trtexec-times.json", warmup_ms=1e6)
    with pytest.raises(ValueError, match="lacks 'computeMs'"):
        trtexec.parse_times([{"startComputeMs": 1, "startEnqMs": 0}])
    with pytest.raises(ValueError, match="wrote no --exportTimes file"):
        trtexec.parse_times(DATA / "absent.json")
    prof = trtexec.parse_profile(DATA / "trtexec-profile.json")
    assert prof["count"] == 120 and prof["layers"][0]["name"].startswith("StatefulPartitionedCall")
    assert sum(x["percent"] for x in prof["layers"]) == pytest.approx(100.0, abs=0.2)


def test_one_tf32_policy_and_one_timing_cache_for_both_builders():
    """trtexec turns TF32 on by default, Polygraphy's CreateConfig turns it off: both are told the same."""
    opts = eng.build_options(precision="fp32")
    argv = trtexec.build_command_for(opts, "m.onnx", "e.engine", "8.5.2.2", timing_cache="/c/timing.cache")
    assert "--noTF32" in argv and "--timingCacheFile=/c/timing.cache" in argv
    on = trtexec.build_command_for(eng.build_options(precision="fp32", tf32=True), "m.onnx", "e", "8.5.2.2")
    assert "--noTF32" not in on and not any(a.startswith("--timingCacheFile") for a in on)
    assert eng.cache_key(SHA, FACTS, "fp32", (1, 64, 256), eng.key_extra(opts)) != \
        eng.cache_key(SHA, FACTS, "fp32", (1, 64, 256), eng.key_extra(eng.build_options(tf32=True)))
    assert eng.build_settings(eng.build_options(tf32=True), FACTS)["tf32_effective"] is True
    assert eng.build_settings(eng.build_options(precision="fp16", tf32=True), FACTS)["tf32_effective"] is False
    volta = eng.DeviceFacts(**dict(FACTS.to_dict(), compute_capability="7.2"))  # Xavier: no TF32 cores
    assert eng.build_settings(eng.build_options(tf32=True), volta)["tf32_effective"] is False
    with pytest.raises(ValueError, match="tf32"):
        eng.build_options(tf32="yes")
    int8 = trtexec.build_command_for(eng.build_options(precision="int8", int8_fp16_fallback=False), "m", "e", "8.5")
    assert "--int8" in int8 and "--fp16" not in int8


def test_timing_cache_is_per_machine_not_per_model_or_precision():
    name = eng.timing_cache_filename(FACTS)
    assert name == eng.timing_cache_filename(FACTS.to_dict()) and name.startswith("timing-orin-")
    for field, value in (("trt_version", "8.6.1"), ("cuda_runtime", "11.8"), ("cudnn", "8.9.0"),
                         ("device_model", "NVIDIA Jetson AGX Orin")):
        assert eng.timing_cache_filename(dict(FACTS.to_dict(), **{field: value})) != name, field


def _fake_cuda(monkeypatch, init_error: int = 0):
    """A stand-in for cuda-python's driver API (no GPU here): cuInit returns `init_error`."""
    driver = types.SimpleNamespace(cuInit=lambda flags: (init_error,), cuDeviceGet=lambda i: (0, 0),
                                   cuDeviceGetName=lambda n, d: (0, b"Orin\x00\x00 \x01garbage\n"))
    bindings = types.ModuleType("cuda.bindings")
    bindings.driver = driver
    pkg = types.ModuleType("cuda")
    pkg.bindings = bindings
    monkeypatch.setitem(sys.modules, "cuda", pkg)
    monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
    monkeypatch.setitem(sys.modules, "cuda.bindings.driver", driver)


def test_init_cuda_really_calls_cuinit(monkeypatch):
    _fake_cuda(monkeypatch)
    assert eng.init_cuda() == "Orin"
    _fake_cuda(monkeypatch, init_error=100)  # CUDA_ERROR_NO_DEVICE
    with pytest.raises(eng.CudaError, match="CUDA call failed: 100"):
        eng.init_cuda()


def test_tensorrt_check_fails_when_cuda_does_not_initialise(monkeypatch):
    """`edgebench env --check tensorrt` must fail on a broken cuda-python, not pass on imports alone."""
    from edgebench.runtimes.tensorrt import TensorRT

    monkeypatch.setitem(sys.modules, "tensorrt", types.ModuleType("tensorrt"))
    monkeypatch.setitem(sys.modules, "polygraphy", types.ModuleType("polygraphy"))
    _fake_cuda(monkeypatch, init_error=35)  # CUDA_ERROR_INSUFFICIENT_DRIVER
    reason = TensorRT.check()
    assert reason and "CUDA does not initialise" in reason and "35" in reason
    _fake_cuda(monkeypatch)
    assert TensorRT.check() is None


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_env_check_tensorrt_fails_here_with_the_reason():
    res = subprocess.run([sys.executable, "-m", "edgebench", "env", "--check", "tensorrt"], capture_output=True,
                         text=True)
    assert res.returncode == 1 and "backend 'tensorrt' unavailable" in res.stderr and "Traceback" not in res.stderr


def test_exporter_options_validated_at_construction():
    exp = trtx.TensorRTInt8Exporter(max_batch=128, calib_images=64, calib_batch=16)
    assert exp.options["precision"] == "int8" and exp.options["max_batch"] == 128
    with pytest.raises(ValueError):
        trtx.TensorRTFp16Exporter(min_batch=0)


def test_no_import_cycle_between_export_and_runtime():
    code = ("import sys; import edgebench.runtimes.tensorrt; assert 'edgebench.export.tensorrt' not in sys.modules; "
            "import edgebench.export.tensorrt; import edgebench.engines.tensorrt as e; "
            "assert 'edgebench.runtimes.tensorrt' not in sys.modules or True")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    import re

    for module in ("tensorrt.py", "calibration.py", "trtexec.py"):
        src = (eng.Path(eng.__file__).parent / module).read_text()
        assert not re.search(r"^\s*(from|import) edgebench\.(export|runtimes)", src, re.M), module
    for side in ("export/tensorrt.py", "runtimes/tensorrt.py"):  # neither side imports the other
        src = (eng.Path(eng.__file__).parents[1] / side).read_text()
        other = "runtimes" if side.startswith("export") else "export"
        assert not re.search(rf"^\s*(from|import) edgebench\.{other}", src, re.M), side


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_export_without_tensorrt_fails_with_a_reason(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    ctx = ExportContext(model_path=tmp_path / "model.keras", out_dir=tmp_path)
    ctx.results["onnx-fp32"] = ArtifactRecord("onnx-fp32", "onnx", "fp32", "model.onnx")
    rec = trtx.TensorRTFp16Exporter().export(ctx)
    assert rec.status == "failed"
    assert "TensorRT is not available here" in rec.error and "device" in rec.error
    assert not (tmp_path / "engines").exists() or not any((tmp_path / "engines").iterdir())


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_runtime_int8_without_calibration_file_says_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(eng.DeviceFacts, "probe", classmethod(lambda cls, device=0: FACTS))
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    with pytest.raises(eng.EngineError, match="calibration data file"):
        eng.engine_for(tmp_path / "model.onnx", "int8", cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").glob("*.engine"))


@pytest.mark.tensorrt
def test_engine_build_and_cache_reuse(tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (engines are built on Jetson / NGC images)")
    pytest.importorskip("polygraphy", reason="Polygraphy is not installed (it comes with the Jetson / NGC images)")
    pytest.importorskip("cuda", reason="cuda-python is not installed")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    # a tiny NHWC model: image -> Transpose -> GlobalAveragePool -> Flatten -> MatMul -> 10 logits
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 10], list(np.linspace(-1, 1, 30)))
    nodes = [helper.make_node("Transpose", ["image"], ["t"], perm=[0, 3, 1, 2]),
             helper.make_node("GlobalAveragePool", ["t"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("MatMul", ["f", "w"], ["logits"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                            ["batch", 32, 32, 3])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, str(tmp_path / "model.onnx"))
    cal.write_calibration_file(np.random.RandomState(0).randint(0, 256, (64, 32, 32, 3)), tmp_path / "calibration.npy")
    for precision in ("fp16", "int8"):
        first = eng.engine_for(tmp_path / "model.onnx", precision, cache_dir=tmp_path / "cache", max_batch=8,
                               calibration_file=tmp_path / "calibration.npy", calib_images=64, calib_batch=8)
        mtime = first.stat().st_mtime_ns
        assert first.exists() and first.parent == tmp_path / "cache"
        again = eng.engine_for(tmp_path / "model.onnx", precision, cache_dir=tmp_path / "cache", max_batch=8,
                               calibration_file=tmp_path / "calibration.npy", calib_images=64, calib_batch=8)
        assert again == first and first.stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_trtexec_crosscheck_runs_the_binary_and_reads_its_json(tmp_path):
    """The cross-check's process handling, with a stand-in trtexec script (no TensorRT here) that writes the
    real --exportTimes / --exportProfile files where it is told to."""
    fake = tmp_path / "trtexec"
    fake.write_text("#!/bin/sh\nfor a in \"$@\"; do case $a in\n"
                    f"  --exportTimes=*) cp {DATA / 'trtexec-times.json'} \"${{a#--exportTimes=}}\";;\n"
                    f"  --exportProfile=*) cp {DATA / 'trtexec-profile.json'} \"${{a#--exportProfile=}}\";;\n"
                    "esac; done\necho '[I] PASSED'\n")
    fake.chmod(0o755)
    out = trtexec.crosscheck(tmp_path / "e.engine", 64, duration_s=1, trtexec=str(fake), warmup_ms=1, profile=True)
    assert out["summary"]["count"] == 5 and out["profile"]["count"] == 120
    assert out["images_per_second"] == pytest.approx(64 * 1000 / out["summary"]["gpu_compute_ms"]["mean"])
    assert out["command"][0] == str(fake) and "--shapes=image:64x32x32x3" in out["command"]
    silent = tmp_path / "silent"
    silent.write_text("#!/bin/sh\necho '[I] nothing exported'\n")
    silent.chmod(0o755)
    with pytest.raises(trtexec.TrtexecError, match="(?s)wrote no --exportTimes.*nothing exported"):
        trtexec.crosscheck(tmp_path / "e.engine", 1, duration_s=1, trtexec=str(silent))
    broken = tmp_path / "broken"
    broken.write_text("#!/bin/sh\necho '[E] Error[4]: engine was built by TensorRT 10' >&2\nexit 1\n")
    broken.chmod(0o755)
    with pytest.raises(trtexec.TrtexecError, match="(?s)exited 1.*built by TensorRT 10"):
        trtexec.crosscheck(tmp_path / "e.engine", 1, duration_s=1, trtexec=str(broken))
    import shutil

    if shutil.which("trtexec") is None:
        with pytest.raises(trtexec.TrtexecError, match="not found"):
            trtexec.find_trtexec(str(tmp_path / "none"))


def test_runtime_reuses_the_engine_export_left_with_the_same_key(tmp_path, monkeypatch):
    """An engine exported on this device (artifacts/engines/, read-only in a container) is found by its key;
    nothing is written, and a missing one would be built in the writable cache, not there."""
    monkeypatch.setattr(eng.DeviceFacts, "probe", classmethod(lambda cls, device=0: FACTS))
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    p = eng.plan(tmp_path / "model.onnx", eng.build_options(precision="fp16", max_batch=64))
    exported = tmp_path / "engines" / p.filename
    exported.parent.mkdir()
    exported.write_bytes(b"engine")
    assert eng.engine_for(tmp_path / "model.onnx", "fp16", cache_dir=tmp_path / "cache", max_batch=64) == exported
    assert not (tmp_path / "cache").exists()
    other = eng.plan(tmp_path / "model.onnx", eng.build_options(precision="fp16", opt_batch=32, max_batch=32))
    assert other.filename != p.filename  # another profile, another key: never the wrong engine


# --- CUDA, cuDNN and TensorRT versions from the system (edgebench.engines.versions) ---------------------------

def test_cuda_and_cudnn_versions_come_from_the_system_files(tmp_path):
    """JetPack 5.1.2's toolkit files (version.json: CUDA 11.4; cudnn_version.h: cuDNN 8.6.0), in their real format."""
    from edgebench.engines import versions

    found = versions.system_versions(root=DATA / "cuda-11.4", header_dirs=[str(DATA / "include")],
                                     cudart_loader=lambda: None, cudnn_loader=lambda: None, with_tensorrt=False)
    assert found["cuda"] == "11.4" and found["cudart"] == "11.4.298" and found["cudnn"] == "8.6.0"
    assert found["cuda_source"].endswith("version.json") and found["cudnn_source"].endswith("cudnn_version.h")
    old = tmp_path / "cuda-10.2"
    old.mkdir()
    (old / "version.txt").write_text("CUDA Version 10.2.89\n")  # toolkits before 11.1
    assert versions.cuda_version(old, loader=lambda: None)["cuda"] == "10.2"
    none = versions.system_versions(root=tmp_path / "absent", header_dirs=[str(tmp_path)], cudart_loader=lambda: None,
                                    cudnn_loader=lambda: None, with_tensorrt=False)
    assert none["cuda"] is None and none["cudnn"] is None  # unknown, never a binding's guess
    assert versions.cudnn_from_packed(8600) == "8.6.0" and versions.cudnn_from_packed(90100) == "9.1.0"
    (tmp_path / "version.json").write_text('{"cuda": {"name": "CUDA SDK", "version": "garbage"}}')
    assert versions.cuda_from_version_json(tmp_path / "version.json") is None


def test_cuda_version_from_the_loaded_libcudart_not_the_binding(monkeypatch):
    """With no version files, libcudart's own cudaRuntimeGetVersion (through ctypes) answers."""
    import ctypes

    from edgebench.engines import versions

    class Lib:
        _name = "libcudart.so.11.0"

        def cudaRuntimeGetVersion(self, ref):
            ctypes.cast(ref, ctypes.POINTER(ctypes.c_int)).contents.value = 11040
            return 0

    got = versions.cuda_version(eng.Path("/nonexistent"), loader=lambda: Lib())
    assert got == {"cuda": "11.4", "source": "cudaRuntimeGetVersion of libcudart.so.11.0"}


def test_device_facts_take_the_system_cuda_not_cuda_python_constant(monkeypatch):
    """cuda-python 11.8.2 answers 11080 from cudaRuntimeGetVersion on any system: the key must say 11.4."""
    props = types.SimpleNamespace(name=b"Orin\x00", major=8, minor=7, multiProcessorCount=8)
    cudart = types.SimpleNamespace(cudaGetDeviceProperties=lambda d: (0, props),
                                   cudaRuntimeGetVersion=lambda: (0, 11080), cudaDriverGetVersion=lambda: (0, 11040))
    monkeypatch.setattr(eng, "cuda_runtime", lambda: cudart)
    trt = types.ModuleType("tensorrt")
    trt.__version__ = "8.5.2.2"
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setenv("CUDA_HOME", str(DATA / "cuda-11.4"))
    from edgebench.engines import versions

    monkeypatch.setattr(versions, "CUDNN_HEADER_DIRS", (str(DATA / "include"),))
    facts = eng.DeviceFacts.probe()
    assert facts.cuda_runtime == "11.4" and facts.cuda_driver == "11.4" and facts.cudnn == "8.6.0"
    assert facts.compute_capability == "8.7" and facts.gpu_name == "Orin"
    monkeypatch.setenv("CUDA_HOME", "/nonexistent")
    monkeypatch.setattr(versions, "_load_first", lambda names, dirs=(): None)
    with pytest.raises(eng.CudaError, match="CUDA version is unknown"):
        eng.DeviceFacts.probe()
