"""`edgebench export MODEL.keras ...`: registered by the top-level parser through `add_parser(sub)`."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Dict

from edgebench.export import parity as parity_mod
from edgebench.export.base import ExportOptionError

INT8_METHODS = ("minmax", "entropy", "percentile", "distribution")


def add_parser(sub) -> argparse.ArgumentParser:
    from edgebench.export import ARTIFACTS, DEFAULT_CALIB_IMAGES, DEFAULT_FORMATS, FORMATS
    from edgebench.export.onnx import DEFAULT_OPSET
    from edgebench.export.onnx_int8 import DEFAULTS as INT8

    p = sub.add_parser(
        "export", help="export model.keras to SavedModel, ONNX, TFLite (+INT8), TensorRT; check each against Keras",
        description="Write every format the targets need next to the model (or in --out), run each artifact on "
                    "the same test images as Keras and record size, sha256, tool versions and parity in "
                    "manifest.json. Exits 1 when any artifact failed export or parity (after exporting the "
                    "rest); a model that is "
                    "not a 32x32x3 -> 10-class classifier fails every artifact. Exits 2, before exporting anything, "
                    "when --data cannot be read (parity and INT8 calibration need it).")
    p.add_argument("model", help="model.keras from `edgebench train`")
    p.add_argument("--formats", nargs="+", default=list(DEFAULT_FORMATS), metavar="FORMAT",
                   help=f"formats ({', '.join(FORMATS)}), artifacts ({', '.join(ARTIFACTS)}) or all "
                        f"(default: {' '.join(DEFAULT_FORMATS)}; tensorrt only where TensorRT is installed)")
    p.add_argument("--out", help="output folder (default: the model's folder)")
    p.add_argument("--data", help="CIFAR-10 source for calibration and parity (default: $EDGEBENCH_DATA)")
    p.add_argument("--parity-images", type=int, default=parity_mod.DEFAULT_IMAGES,
                   help="test images for parity (default %(default)s; 0 skips parity)")
    p.add_argument("--calib-images", type=int, default=DEFAULT_CALIB_IMAGES,
                   help="training images for INT8 calibration (default %(default)s)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset (default %(default)s)")
    p.add_argument("--simplify", default="auto", choices=["auto", "none", "onnxslim", "onnxsim"],
                   help="ONNX simplifier (auto: one if installed)")
    p.add_argument("--int8-method", default=INT8["calibrate_method"], choices=INT8_METHODS,
                   help="ONNX INT8 calibration method (default %(default)s)")
    p.add_argument("--int8-percentile", type=float, default=INT8["percentile"],
                   help="percentile for --int8-method percentile (default %(default)s)")
    p.add_argument("--int8-keep-float", default=INT8["keep_float"], choices=["none", "first", "last", "first-last"],
                   help="ONNX INT8: layers left in float (default %(default)s)")
    p.add_argument("--int8-per-tensor", action="store_true", help="ONNX INT8: per-tensor weights")
    p.add_argument("--int8-symmetric", action="store_true",
                   help="ONNX INT8: symmetric int8 activations (zero point 0), as TensorRT's explicit "
                        "quantization (--trt-int8-source qdq) needs; default uint8 asymmetric, more accurate on CPU")
    p.add_argument("--trt-batch", nargs=3, type=int, default=[1, 64, 256], metavar=("MIN", "OPT", "MAX"),
                   help="TensorRT optimization profile batch sizes (default 1 64 256)")
    p.add_argument("--trt-workspace-mb", type=int, default=1024)
    p.add_argument("--trt-int8-source", default="calibrate", choices=["calibrate", "qdq"],
                   help="TensorRT INT8 from the entropy calibrator, or from the QDQ model")
    p.add_argument("--threshold", action="append", default=[], metavar="PRECISION.KEY=VALUE",
                   help="override a parity threshold, e.g. int8.min_top1_agreement=0.97, fp16.max_rel_diff=1e-2 "
                        f"(defaults: {parity_mod.DEFAULT_THRESHOLDS})")
    p.add_argument("--threads", type=int, help="threads for the parity runs (default: framework default)")
    p.set_defaults(func=run)
    return p


def _options(args) -> Dict[str, Dict[str, Any]]:
    trt = {"min_batch": args.trt_batch[0], "opt_batch": args.trt_batch[1], "max_batch": args.trt_batch[2],
           "workspace_mb": args.trt_workspace_mb}
    return {
        "onnx-fp32": {"opset": args.opset, "simplify": args.simplify},
        "onnx-int8": {"calibrate_method": args.int8_method, "percentile": args.int8_percentile,
                      "keep_float": args.int8_keep_float, "per_channel": not args.int8_per_tensor,
                      "symmetric_activations": args.int8_symmetric},
        "tensorrt-fp32": dict(trt), "tensorrt-fp16": dict(trt),
        "tensorrt-int8": dict(trt, int8_source=args.trt_int8_source, calib_images=args.calib_images),
    }


def run(args) -> int:
    from edgebench.export import export_all, manifest, select

    thresholds: Dict[str, Dict[str, float]] = {}
    for text in args.threshold:
        for precision, values in parity_mod.parse_threshold(text).items():
            thresholds.setdefault(precision, {}).update(values)
    parity_mod.thresholds(thresholds)  # bad keys fail before any work
    select(args.formats)
    if args.parity_images < 0 or args.calib_images < 1:
        raise ExportOptionError("--parity-images must be >= 0 and --calib-images >= 1")
    man = export_all(args.model, formats=args.formats, data_source=args.data, parity_images=args.parity_images,
                     calib_images=args.calib_images, out_dir=args.out, thresholds=thresholds,
                     options=_options(args), threads=args.threads)
    print(summary(man), file=sys.stderr)
    bad = manifest.failed(man)
    return 1 if bad else 0


def summary(man: Dict[str, Any]) -> str:
    lines = [f"{'artifact':16s} {'status':7s} {'MB':>7s} {'export s':>8s} {'max|dlogit|':>11s} "
             f"{'agree':>6s} {'top-1':>6s}"]
    for a in man["artifacts"]:
        p = a.get("parity") or {}
        size = f"{a['size_bytes'] / 1e6:.1f}" if a.get("size_bytes") else "-"
        diff = p.get("max_abs_logit_diff")
        lines.append(f"{a['name']:16s} {a['status']:7s} {size:>7s} {a.get('export_seconds') or 0:8.1f} "
                     f"{(f'{diff:.2e}' if diff is not None else '-'):>11s} "
                     f"{(format(p['top1_agreement'], '.4f') if p.get('top1_agreement') is not None else '-'):>6s} "
                     f"{(format(p['top1'], '.4f') if p.get('top1') is not None else '-'):>6s}"
                     + (f"  {a['error']}" if a.get("error") else ""))
    return "\n".join(lines)
