"""The TensorFlow backends' device option (runtimes/tfdevice.py), with real TensorFlow in fresh processes.

This machine has no GPU: a row asked for "gpu" must be a skip with the reason; a "cpu" row must hide the GPU
from TensorFlow before it starts (CUDA_VISIBLE_DEVICES="", no visible GPU, no CUDA library loaded) and record
the device its model's variables live on.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

tf = pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """model.keras and a SavedModel of a 32x32x3 -> 10 model (seeded)."""
    d = tmp_path_factory.mktemp("tfdevice")
    code = textwrap.dedent(f"""
        import tensorflow as tf
        tf.keras.utils.set_random_seed(0)
        m = tf.keras.Sequential([tf.keras.Input((32, 32, 3)), tf.keras.layers.Conv2D(4, 3),
                                 tf.keras.layers.GlobalAveragePooling2D(), tf.keras.layers.Dense(10)])
        m.save({str(d / 'model.keras')!r})
        tf.saved_model.save(m, {str(d / 'saved_model')!r})
    """)
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)
    return d


def _child(code: str) -> dict:
    """Run `code` in a fresh interpreter (a bench group's child), return the JSON it prints last."""
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                       env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ":".join(sys.path)})
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend, artifact", [("keras-call", "model.keras"), ("savedmodel", "saved_model")])
def test_cpu_row_hides_the_gpu_and_records_placement(tiny_models, backend, artifact):
    out = _child(f"""
        import json, os
        import numpy as np
        from edgebench import runtimes
        rt = runtimes.open({backend!r}, {str(tiny_models / artifact)!r}, threads=1, device="cpu")
        assert os.environ["CUDA_VISIBLE_DEVICES"] == ""  # set at construction, before TF starts
        rt.load()
        y = rt.infer(np.zeros((2, 32, 32, 3), np.float32))
        import tensorflow as tf
        maps = open("/proc/self/maps").read()
        print(json.dumps({{"shape": list(y.shape), "versions": rt.versions(),
                          "visible_gpus": len(tf.config.get_visible_devices("GPU")),
                          "libcuda": "libcuda.so" in maps}}))
    """)
    assert out["shape"] == [2, 10]
    dev = out["versions"]["device"]
    assert dev["asked"] == "cpu" and dev["placed_on"] == "CPU:0" and dev["visible_gpus"] == []
    assert out["visible_gpus"] == 0 and out["libcuda"] is False, "a cpu row never touches CUDA"
    assert out["versions"]["tensorflow"] == tf.__version__


def test_gpu_row_without_gpu_is_a_skip_with_the_reason(tiny_models):
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    out = _child(f"""
        import json
        from edgebench import runtimes
        from edgebench.runtimes.base import RuntimeUnavailable
        got = {{}}
        for backend, artifact, opts in [("keras", "model.keras", {{"device": "gpu"}}),
                                        ("keras-gpu", "model.keras", {{}}),
                                        ("savedmodel", "saved_model", {{"device": "gpu"}})]:
            rt = runtimes.open(backend, {str(tiny_models)!r} + "/" + artifact, **opts)
            try:
                rt.load()
                got[backend] = "loaded"
            except RuntimeUnavailable as exc:  # the bench child reports this type as a skipped row
                got[backend] = "skip: " + str(exc)
        print(json.dumps(got))
    """)
    for backend in ("keras", "keras-gpu", "savedmodel"):
        assert out[backend].startswith(f"skip: {backend}: asked for device gpu, but TensorFlow"), out
        assert "sees no GPU" in out[backend]


def test_auto_is_tensorflows_own_choice(tiny_models):
    out = _child(f"""
        import json, os
        from edgebench import runtimes
        rt = runtimes.open("keras-call", {str(tiny_models / 'model.keras')!r})
        rt.load()
        print(json.dumps({{"env": os.environ.get("CUDA_VISIBLE_DEVICES"), "dev": rt.versions()["device"]}}))
    """)
    assert out["env"] is None and out["dev"]["asked"] == "auto" and out["dev"]["placed_on"]


def test_bad_device_value_is_a_clear_error(tiny_models):
    from edgebench import runtimes

    with pytest.raises(ValueError, match="options.device must be one of auto, cpu, gpu, not 'npu'"):
        runtimes.open("keras", str(tiny_models / "model.keras"), device="npu")
    with pytest.raises(ValueError, match="keras-gpu: options.device can only be gpu"):
        runtimes.open("keras-gpu", str(tiny_models / "model.keras"), device="cpu")
    with pytest.raises(ValueError, match="tftrt: options.device can only be gpu"):
        runtimes.open("tftrt", str(tiny_models / "saved_model"), device="cpu")
