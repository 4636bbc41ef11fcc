"""OpenVINO backend and exporter: the property mapping, capability rules, batch split, CPU flag parsing and
option checks (hermetic: OpenVINO is not imported)."""
from __future__ import annotations

import types

import pytest

from edgebench import export, runtimes
from edgebench.contracts import vocabulary as v
from edgebench.export import openvino as ov_export
from edgebench.runtimes import openvino as ov_rt
from edgebench.runtimes.base import RuntimeUnavailable


@pytest.mark.parametrize("precision,hint", [("fp32", "f32"), ("bf16", "bf16"), ("fp16", "f16"), ("int8", "f32")])
def test_precision_maps_to_inference_precision_hint(precision, hint):
    props = ov_rt.compile_properties(precision, 2, "latency")
    assert props["INFERENCE_PRECISION_HINT"] == hint
    assert props["INFERENCE_NUM_THREADS"] == "2"
    assert props["PERFORMANCE_HINT"] == "LATENCY"
    assert "ENABLE_CPU_PINNING" not in props  # None: OpenVINO's default, read back into the row


def test_threads_pinning_and_requests():
    props = ov_rt.compile_properties("fp32", None, "throughput", pinning=False, num_requests=3)
    assert props == {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": "f32",
                     "ENABLE_CPU_PINNING": "NO", "PERFORMANCE_HINT_NUM_REQUESTS": "3"}
    assert ov_rt.compile_properties("fp32", 1, "latency", pinning=True)["ENABLE_CPU_PINNING"] == "YES"
    assert all(isinstance(k, str) and isinstance(x, str)
               for k, x in ov_rt.compile_properties("int8", 6, "latency", True, 2).items())


@pytest.mark.parametrize("bad,match", [({"mode": "fast"}, "mode must be one of"),
                                       ({"precision": "int4"}, "no int4 path"),
                                       ({"num_requests": 0}, "num_requests must be >= 1")])
def test_bad_properties_are_named(bad, match):
    args = dict(precision="fp32", threads=1, mode="latency")
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        ov_rt.compile_properties(args["precision"], args["threads"], args["mode"],
                                 num_requests=args.get("num_requests"))


def test_each_backend_records_its_mode_and_rejects_unknown_options(tmp_path):
    lat = runtimes.open("openvino", str(tmp_path), precision="bf16", threads=2)
    thr = runtimes.open("openvino-throughput", str(tmp_path), precision="fp32", threads=1, pinning=True)
    assert lat.settings["mode"] == "latency" and lat.properties["PERFORMANCE_HINT"] == "LATENCY"
    assert thr.settings["mode"] == "throughput" and thr.settings["asked"]["ENABLE_CPU_PINNING"] == "YES"
    with pytest.raises(ValueError, match="unknown options \\['spin'\\]"):
        runtimes.open("openvino", str(tmp_path), spin=False)
    with pytest.raises(RuntimeUnavailable, match="no tf32 path"):
        runtimes.open("openvino", str(tmp_path), precision="tf32")


def test_artifacts_read_for_each_precision():
    cls = runtimes.get("openvino")
    assert cls.artifact_for("int8") == ("openvino", "int8")
    assert [cls.artifact_for(p) for p in ("fp32", "bf16", "fp16")] == [("openvino", "fp32")] * 3
    assert v.backend_format("openvino-throughput") == "openvino" and v.BACKENDS["openvino"][1] == "cpu"
    assert v.FORMAT_BACKEND["openvino"] == "openvino"


def test_capabilities_decide_bf16_and_fp16():
    caps = ["BF16", "WINOGRAD", "FP32", "INT8", "BIN", "EXPORT_IMPORT"]  # an AMD EPYC with avx512_bf16
    assert ov_rt.missing_capability("bf16", caps) is None
    assert "no fp16" in ov_rt.missing_capability("fp16", caps) and "BF16, WINOGRAD" in ov_rt.missing_capability(
        "fp16", caps)
    assert ov_rt.missing_capability("bf16", ["FP32", "INT8"]) is not None  # an AVX2-only CPU
    assert ov_rt.missing_capability("fp32", []) is None and ov_rt.missing_capability("int8", []) is None


@pytest.mark.parametrize("n,parts,sizes", [(1, 4, [1]), (32, 2, [16, 16]), (7, 3, [2, 2, 3]), (5, 1, [5])])
def test_a_batch_is_split_over_the_requests_in_order(n, parts, sizes):
    slices = ov_rt.split_batch(n, parts)
    assert [s.stop - s.start for s in slices] == sizes
    assert slices[0].start == 0 and slices[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(slices, slices[1:]))


def test_ir_path_reads_the_folder_or_the_xml(tmp_path):
    assert ov_rt.ir_path(tmp_path) == tmp_path / "model.xml"
    assert ov_rt.ir_path(tmp_path / "other.xml") == tmp_path / "other.xml"


def test_cpu_flags_and_offer_x86_and_arm():
    x86 = "processor\t: 0\nflags\t\t: fpu avx2 fma avx512f avx512_vnni avx512_bf16\nprocessor\t: 1\nflags\t: fpu\n"
    flags = ov_rt.cpu_flags(x86)
    assert flags == ["avx2", "avx512_bf16", "avx512_vnni", "avx512f", "fma", "fpu"]  # the first CPU's line
    offer = ov_rt.cpu_offer(flags, ["BF16", "FP32", "INT8"])
    assert offer["offers"]["VNNI"] and offer["offers"]["BF16"] and not offer["offers"]["AMX"]
    assert offer["flags"]["VNNI"] == ["avx512_vnni"] and offer["precisions"] == ["fp32", "bf16", "int8"]
    arm = ov_rt.cpu_offer(ov_rt.cpu_flags("Features\t: fp asimd asimddp asimdhp i8mm\n"), ["FP32", "FP16", "INT8"])
    assert arm["offers"]["Arm dot-product"] and arm["offers"]["Arm FP16"] and not arm["offers"]["VNNI"]
    assert arm["precisions"] == ["fp32", "fp16", "int8"]
    assert ov_rt.cpu_flags("nothing here") == []
    line = ov_rt.describe_offer(dict(arm, cpu="Cortex-A78AE"))
    assert line.startswith("Cortex-A78AE: VNNI no") and "Arm dot-product yes" in line and line.endswith(
        "OpenVINO runs fp32, fp16, int8")


def test_export_selection_and_int8_options():
    assert export.select(["openvino"]) == ["onnx-fp32", "openvino-fp32", "openvino-int8"]
    assert export.select(["openvino-int8"]) == ["onnx-fp32", "openvino-int8"]
    assert export.registry.filename("openvino-fp32") == "openvino"
    opts = ov_export.validate({"calib_images": "64", "preset": "Performance", "keep_float": None})
    assert opts["calib_images"] == 64 and opts["preset"] == "performance" and opts["keep_float"] == "none"
    for bad, match in [({"preset": "fast"}, "preset must be one of"), ({"calib_images": 0}, "calib_images"),
                       ({"keep_float": "middle"}, "keep_float"), ({"calibrate_method": "entropy"}, "unknown")]:
        with pytest.raises(ValueError, match=match):
            ov_export.validate(bad)


def test_float_layers_are_the_first_and_last_conv_or_matmul():
    nodes = [types.SimpleNamespace(name=n, op_type=t) for n, t in
             [("sub", "Sub"), ("c0", "Conv"), ("r", "Relu"), ("c1", "Conv"), ("mm", "MatMul"), ("add", "Add")]]
    model = types.SimpleNamespace(graph=types.SimpleNamespace(node=nodes))
    assert ov_export.float_layer_names(model, "first-last") == ["c0", "mm"]
    assert ov_export.float_layer_names(model, "first") == ["c0"]
    assert ov_export.float_layer_names(model, "last") == ["mm"]
    assert ov_export.float_layer_names(model, "none") == []


class _Request:
    """An infer request that logs start/wait and returns its input's first pixel as the logits."""

    def __init__(self, log, i):
        self.log, self.i, self.x = log, i, None

    def start_async(self, inputs):
        self.log.append(("start", self.i))
        self.x = inputs[0]

    def wait(self):
        self.log.append(("wait", self.i))

    def get_output_tensor(self, index):
        return types.SimpleNamespace(data=self.x[:, 0, 0, :1].repeat(10, axis=1))


def test_throughput_starts_every_request_before_waiting_and_keeps_the_order(tmp_path):
    """No AsyncInferQueue callback (it deadlocked the child at close, see OpenVINOThroughput): plain requests."""
    import numpy as np

    log = []
    thr = runtimes.open("openvino-throughput", str(tmp_path), precision="fp32", threads=2)
    ids = iter(range(3))
    thr.compiled = types.SimpleNamespace(get_property=lambda key: 3,
                                         create_infer_request=lambda: _Request(log, next(ids)))
    thr._start()
    assert thr.settings["requests"] == 3
    x = np.arange(7, dtype=np.float32)[:, None, None, None] * np.ones((7, 2, 2, 3), np.float32)
    y = thr._infer_impl(x)
    assert log == [("start", 0), ("start", 1), ("start", 2), ("wait", 0), ("wait", 1), ("wait", 2)]
    assert y.shape == (7, 10) and list(y[:, 0]) == list(range(7))
    log.clear()
    thr._close_impl()
    assert log == [("wait", 0), ("wait", 1), ("wait", 2)] and not hasattr(thr, "compiled")
