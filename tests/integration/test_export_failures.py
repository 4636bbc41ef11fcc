"""Bad inputs: each failure names the format and the cause, other formats still export, nothing
half-written is left under a final name, and the command exits non-zero."""
from __future__ import annotations

import json

import pytest

from edgebench.export import export_all
from edgebench.export import manifest as manifest_mod

pytestmark = pytest.mark.slow


def _by_name(man):
    return {a["name"]: a for a in man["artifacts"]}


def test_corrupt_model_file(tmp_path):
    bad = tmp_path / "model.keras"
    bad.write_bytes(b"this is not a keras archive" * 10)
    man = export_all(bad, formats=["onnx"], parity_images=0, log=None)
    for art in man["artifacts"]:
        assert art["status"] == "failed" and "cannot be loaded by Keras" in art["error"]
        assert art["name"] in art["error"]
    assert not (tmp_path / "model.onnx").exists()


def test_model_with_wrong_input_shape(tmp_path):
    import tensorflow as tf

    inp = tf.keras.Input((28, 28, 1))
    model = tf.keras.Model(inp, tf.keras.layers.Dense(10)(tf.keras.layers.Flatten()(inp)))
    path = tmp_path / "mnist.keras"
    model.save(path)
    man = export_all(path, formats=["savedmodel"], parity_images=0, log=None)
    (art,) = man["artifacts"]
    assert art["status"] == "failed" and "input shape is (28, 28, 1)" in art["error"]
    assert "savedmodel-fp32" in art["error"]


def test_converter_failure_leaves_other_formats(model_copy, cifar_source, monkeypatch):
    import tf2onnx

    def broken(*args, **kwargs):
        raise RuntimeError("unsupported op FancyConv")

    monkeypatch.setattr(tf2onnx.convert, "from_keras", broken)
    out = model_copy.parent
    man = export_all(model_copy, formats=["keras", "savedmodel", "onnx"], data_source=cifar_source,
                     parity_images=16, calib_images=32, log=None)
    arts = _by_name(man)
    assert arts["keras-fp32"]["status"] == "ok" and arts["savedmodel-fp32"]["status"] == "ok"
    assert arts["savedmodel-fp32"]["parity"]["passed"]
    assert arts["onnx-fp32"]["status"] == "failed"
    assert "tf2onnx conversion failed" in arts["onnx-fp32"]["error"] and "FancyConv" in arts["onnx-fp32"]["error"]
    assert arts["onnx-int8"]["status"] == "failed" and "onnx-fp32" in arts["onnx-int8"]["error"]
    assert not (out / "model.onnx").exists() and not (out / "model.int8.onnx").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    with pytest.raises(manifest_mod.ManifestError, match="tf2onnx"):
        manifest_mod.resolve(out, "onnx", "fp32")


def test_bad_data_fails_before_exporting_anything(model_copy, tmp_path, capsys):
    """issue 13: `export` with a bad --data fails before any format is written, not after all of them."""
    from edgebench.cli import main
    from edgebench.export import ExportDataError

    out = tmp_path / "out"
    with pytest.raises(ExportDataError, match="no-such-cifar.*nothing was exported"):
        export_all(model_copy, formats=["keras", "tflite-int8"], data_source=str(tmp_path / "no-such-cifar"),
                   parity_images=0, out_dir=out, log=None)
    assert not out.exists() or not any(out.iterdir())
    rc = main(["export", str(model_copy), "--out", str(out), "--formats", "onnx", "--data", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert rc == 2 and "nothing was exported" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_model_with_wrong_number_of_classes_is_refused(tmp_path):
    """issue 13 #8: a 7-class model against the 10-class test set is refused at export, every row naming why."""
    import tensorflow as tf

    inp = tf.keras.Input((32, 32, 3))
    model = tf.keras.Model(inp, tf.keras.layers.Dense(7)(tf.keras.layers.GlobalAveragePooling2D()(inp)))
    path = tmp_path / "seven.keras"
    model.save(path)
    man = export_all(path, formats=["savedmodel", "onnx"], parity_images=0, log=None)
    assert man["artifacts"]
    for art in man["artifacts"]:
        assert art["status"] == "failed" and "outputs 7 classes" in art["error"] and "10" in art["error"]
    assert not (tmp_path / "model.onnx").exists() and not (tmp_path / "saved_model").exists()


def test_tensorflow_temp_files_stay_in_the_artifacts_folder(model_copy, cifar_source, monkeypatch):
    """issue 13: TensorFlow's temp folder is the kit's own (<out>/.edgebench-tmp), removed at the end and at the
    start of the next export when a killed one left it behind."""
    import tempfile

    from edgebench.export import pipeline

    out = model_copy.parent
    leftover = out / pipeline.TMP_DIRNAME / "tmpabc"
    leftover.mkdir(parents=True)  # what a killed export leaves
    seen = []
    real = pipeline.check_parity

    def spy(*args, **kwargs):
        seen.append((tempfile.gettempdir(), __import__("os").environ.get("TMPDIR")))
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "check_parity", spy)
    man = export_all(model_copy, formats=["tflite-fp32"], data_source=cifar_source, parity_images=8, log=None)
    assert all(a["status"] == "ok" for a in man["artifacts"]), man["artifacts"]
    assert seen and all(t == str(out / pipeline.TMP_DIRNAME) == e for t, e in seen)
    assert not (out / pipeline.TMP_DIRNAME).exists() and tempfile.gettempdir() != str(out / pipeline.TMP_DIRNAME)


def test_parity_failure_is_marked_and_cli_exits_nonzero(model_copy, cifar_source, tmp_path, capsys):
    from edgebench.cli import main

    out = tmp_path / "out"
    rc = main(["export", str(model_copy), "--out", str(out), "--formats", "onnx", "--data", cifar_source,
               "--parity-images", "32", "--calib-images", "32", "--threshold", "int8.min_top1_agreement=1.01"])
    assert rc == 1
    man = json.loads((out / "manifest.json").read_text())
    arts = _by_name(man)
    assert arts["onnx-fp32"]["status"] == "ok" and arts["onnx-fp32"]["parity"]["passed"]
    q = arts["onnx-int8"]
    assert q["status"] == "failed" and q["error"].startswith("parity:")
    assert q["parity"]["passed"] is False and q["parity"]["top1_agreement"] is not None
    assert q["parity"]["threshold"] == {"min_top1_agreement": 1.01}
    assert (out / "model.int8.onnx").exists()  # kept for inspection, but resolve() refuses it
    with pytest.raises(manifest_mod.ManifestError, match="agreement"):
        manifest_mod.resolve(out, "onnx", "int8")
    assert "onnx-int8" in capsys.readouterr().err


def test_tensorrt_requested_where_absent_fails_with_reason(exported):
    pytest.importorskip  # noqa: B018 - keep the import lint quiet
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed: see test_tensorrt_engines")
    out, _ = exported
    man = export_all(out / "model.keras", formats=["tensorrt-fp16"], out_dir=out / "trt", parity_images=0, log=None)
    arts = _by_name(man)
    assert arts["onnx-fp32"]["status"] == "ok"
    assert arts["tensorrt-fp16"]["status"] == "failed" and "TensorRT is not available" in arts["tensorrt-fp16"]["error"]


@pytest.mark.tensorrt
def test_tensorrt_engines(exported, cifar_source, tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed (engines are built on Jetson / NGC images)")
    out, _ = exported
    man = export_all(out / "model.keras", formats=["tensorrt"], out_dir=tmp_path, data_source=cifar_source,
                     parity_images=128, calib_images=64, thresholds={"int8": {"min_top1_agreement": 0.0}},
                     options={f"tensorrt-{p}": {"calib_batch": 32, "max_batch": 128} for p in ("fp32", "fp16", "int8")},
                     log=None)
    arts = _by_name(man)
    for p in ("fp32", "fp16", "int8"):
        assert arts[f"tensorrt-{p}"]["status"] == "ok", arts[f"tensorrt-{p}"]["error"]
    assert list((tmp_path / "engines").glob("calib-*.cache"))
