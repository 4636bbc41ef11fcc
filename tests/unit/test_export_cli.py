"""`edgebench export` argument handling and the bad-model path (no TensorFlow needed)."""
from __future__ import annotations

import argparse
import json

import pytest

from edgebench.cli import export as cli


def _parse(argv):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    cli.add_parser(sub)
    return parser.parse_args(["export"] + argv)


def test_parser_defaults_and_options():
    args = _parse(["m.keras"])
    assert args.func is cli.run and args.parity_images == 1000 and args.opset == 13
    args = _parse(["m.keras", "--formats", "onnx", "tflite-int8", "--opset", "17", "--int8-method", "entropy",
                   "--trt-batch", "1", "8", "32", "--threshold", "int8.min_top1_agreement=0.9"])
    opts = cli._options(args)
    assert opts["onnx-fp32"]["opset"] == 17 and opts["onnx-int8"]["calibrate_method"] == "entropy"
    assert opts["tensorrt-int8"]["max_batch"] == 32


def test_top_level_cli_registers_export():
    from edgebench.cli import build_parser

    args = build_parser().parse_args(["export", "m.keras", "--parity-images", "5"])
    assert args.func is cli.run and args.parity_images == 5


def test_bad_threshold_and_format_fail_before_work(tmp_path):
    with pytest.raises(ValueError, match="unknown parity threshold"):
        cli.run(_parse([str(tmp_path / "m.keras"), "--threshold", "int8.speed=3"]))
    with pytest.raises(ValueError, match="unknown format"):
        cli.run(_parse([str(tmp_path / "m.keras"), "--formats", "coreml"]))


def test_missing_model_fails_every_artifact_and_exits_nonzero(tmp_path, capsys):
    from edgebench.cli import main

    rc = main(["export", str(tmp_path / "missing.keras"), "--formats", "onnx", "tflite-fp32"])
    assert rc == 1
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert [a["name"] for a in man["artifacts"]] == ["onnx-fp32", "onnx-int8", "tflite-fp32"]
    for a in man["artifacts"]:
        assert a["status"] == "failed" and "no such file" in a["error"] and a["name"] in a["error"]
    assert not (tmp_path / "model.onnx").exists()
    assert "no such file" in capsys.readouterr().err


def test_summary_renders_failed_and_ok_rows():
    man = {"artifacts": [
        {"name": "onnx-fp32", "status": "ok", "size_bytes": 2e6, "export_seconds": 1.5,
         "parity": {"max_abs_logit_diff": 1e-5, "top1_agreement": 1.0, "top1": 0.8}, "error": None},
        {"name": "tflite-int8", "status": "failed", "size_bytes": None, "export_seconds": 0.1, "parity": None,
         "error": "boom"}]}
    text = cli.summary(man)
    assert "onnx-fp32" in text and "1.00e-05" in text and "boom" in text
