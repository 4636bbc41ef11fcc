"""ONNX INT8: static QDQ quantization with onnxruntime.quantization, calibrated on real CIFAR-10 images.

The default artifact is tuned for ONNX Runtime's CPU INT8 kernels (x86 VNNI/AMX, aarch64 dot-product),
which fuse QuantizeLinear/DequantizeLinear pairs into integer convolutions: uint8 asymmetric
activations, per-channel symmetric int8 weights, percentile calibration, the input normalisation +
stem conv and the classifier kept in float, and the batch norms tf2onnx leaves unfused folded first.

TensorRT 8.5's explicit-quantization path reads QDQ graphs too, but only symmetric int8 (zero point 0)
with per-channel weights on axis 0 (opset >= 13): `symmetric_activations=True` (CLI `--int8-symmetric`)
writes that variant. TensorRT INT8 engines are built by default with TensorRT's own entropy calibrator
from model.onnx (see tensorrt.py), which needs neither.

The defaults were chosen from measurements (top-1 agreement with Keras on 1,000 test images): see
DEFAULTS and the export issue's note.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from edgebench.contracts.vocabulary import CALIB_IMAGES_DEFAULT
from edgebench.export.base import ExportContext, Exporter, ExportError, ExportOptionError, float_images

CALIBRATION_METHODS = ("minmax", "entropy", "percentile", "distribution")
KEEP_FLOAT_CHOICES = ("none", "first", "last", "first-last")
DEFAULTS: Dict[str, Any] = {
    "calib_images": CALIB_IMAGES_DEFAULT,
    "calibrate_method": "percentile",
    "percentile": 99.999,
    "per_channel": True,
    # uint8 asymmetric activations: post-ReLU tensors use all 256 levels (symmetric int8 wastes the
    # negative half); measured 97.3% vs 95.2% top-1 agreement. TensorRT's explicit quantization needs
    # symmetric int8: pass symmetric_activations=True (CLI --int8-symmetric) for a QDQ model meant for it.
    "symmetric_activations": False,
    "keep_float": "first-last",       # first conv (and the normalisation before it) and last dense in float
    "calib_batch": 32,
    "op_types": None,                 # None: onnxruntime's default set (Conv, MatMul, Add, ...)
    "fold_batchnorm": True,
    "exclude": (),                    # more nodes to keep in float: substrings of ONNX node names
}


def validate(options: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(DEFAULTS)
    out.update({k: v for k, v in options.items() if v is not None})
    method = str(out["calibrate_method"]).lower()
    if method not in CALIBRATION_METHODS:
        raise ExportOptionError(f"calibrate_method must be one of {', '.join(CALIBRATION_METHODS)}, got {method!r}")
    out["calibrate_method"] = method
    if out["keep_float"] not in KEEP_FLOAT_CHOICES:
        raise ExportOptionError(f"keep_float must be one of {', '.join(KEEP_FLOAT_CHOICES)}, got {out['keep_float']!r}")
    out["calib_images"] = int(out["calib_images"])
    if out["calib_images"] < 1:
        raise ExportOptionError(f"calib_images must be >= 1, got {out['calib_images']}")
    out["calib_batch"] = int(out["calib_batch"])
    if out["calib_batch"] < 1:
        raise ExportOptionError(f"calib_batch must be >= 1, got {out['calib_batch']}")
    pct = float(out["percentile"])
    if not 90.0 <= pct <= 100.0:
        raise ExportOptionError(f"percentile must be within 90..100, got {pct}")
    out["percentile"] = pct
    if out["op_types"] is not None:
        if isinstance(out["op_types"], str):
            out["op_types"] = [t for t in out["op_types"].split(",") if t]
        out["op_types"] = [str(t) for t in out["op_types"]]
    out["per_channel"] = bool(out["per_channel"])
    out["fold_batchnorm"] = bool(out["fold_batchnorm"])
    exclude = out["exclude"] or ()
    out["exclude"] = [e for e in (exclude.split(",") if isinstance(exclude, str) else exclude) if e]
    out["symmetric_activations"] = bool(out["symmetric_activations"])
    return out


def float_nodes(graph_nodes: List[Any], keep: str) -> List[str]:
    """Names of the nodes to leave in float for `keep` ("first", "last", "first-last", "none").

    "first": every node up to and including the first Conv (the input normalisation and the stem conv:
    the 0..255 input then needs no int8 scale). "last": the last MatMul/Gemm and every node after it
    (the classifier and its bias). Works on any sequence of objects with .name and .op_type in
    topological order (onnx NodeProto)."""
    names: List[str] = []
    if keep in ("first", "first-last"):
        for node in graph_nodes:
            names.append(node.name)
            if node.op_type == "Conv":
                break
        else:
            names = []  # no conv at all: nothing to keep
    if keep in ("last", "first-last"):
        last = None
        for i, node in enumerate(graph_nodes):
            if node.op_type in ("MatMul", "Gemm"):
                last = i
        if last is not None:
            names.extend(n.name for n in graph_nodes[last:] if n.name not in names)
    return names


def _bypass_noop_reshapes(graph, shapes: Dict[str, List[Any]], inits: Dict[str, Any]) -> set:
    """Rewire the users of each Reshape whose static input shape already is its target; the names removed."""
    from onnx import numpy_helper

    consumers: Dict[str, List[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in graph.output}
    removed = set()
    for node in graph.node:
        if node.op_type != "Reshape" or node.input[1] not in inits:
            continue
        target = [int(v) for v in numpy_helper.to_array(inits[node.input[1]]).ravel()]
        src = shapes.get(node.input[0])
        if not src or len(src) != len(target) or node.output[0] in graph_outputs:
            continue
        if all(t == -1 and i == 0 or t == s for i, (t, s) in enumerate(zip(target, src))) and \
                all(s is not None for s in src[1:]):
            for user in consumers.get(node.output[0], []):
                for k, name in enumerate(user.input):
                    if name == node.output[0]:
                        user.input[k] = node.input[0]
            removed.add(node.name)
    return removed


def fold_batchnorm(model):
    """Fold BatchNormalization into the Conv before it, looking through no-op Reshapes.

    tf2onnx folds most batch norms, but where the feature map is 1x1 (stage 4 of the ImageNet-stem
    ResNet on 32x32 images) it emits Conv -> Reshape[-1,C,1,1] -> BatchNormalization. Quantizing
    that graph puts a per-tensor int8 scale on the un-normalised conv output, whose channels differ
    in range by orders of magnitude. Returns (new ModelProto, number of batch norms folded)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    shapes = {}
    for vi in list(graph.value_info) + list(graph.input) + list(graph.output):
        dims = vi.type.tensor_type.shape.dim
        shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    # 1. bypass Reshapes that do not change the shape (static input shape equals the target)
    removed = _bypass_noop_reshapes(graph, shapes, inits)
    # 2. fold BatchNormalization into a Conv whose only consumer it is
    folded = 0
    consumers = {}
    for node in graph.node:
        if node.name in removed:
            continue
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for bn in graph.node:
        if bn.op_type != "BatchNormalization" or bn.name in removed:
            continue
        conv = producer.get(bn.input[0])
        if (conv is None or conv.op_type != "Conv" or conv.name in removed
                or len(consumers.get(conv.output[0], [])) != 1):
            continue
        if conv.input[1] not in inits or any(n not in inits for n in bn.input[1:5]):
            continue
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        gamma, beta, mean, var = (numpy_helper.to_array(inits[n]).astype(np.float64) for n in bn.input[1:5])
        w = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float64)
        b = (numpy_helper.to_array(inits[conv.input[2]]).astype(np.float64) if len(conv.input) > 2 and conv.input[2]
             else np.zeros(w.shape[0]))
        k = gamma / np.sqrt(var + eps)
        new_w = numpy_helper.from_array((w * k.reshape(-1, 1, 1, 1)).astype(np.float32), conv.input[1] + "_bnfold")
        new_b = numpy_helper.from_array(((b - mean) * k + beta).astype(np.float32), conv.name + "_bnfold_bias")
        graph.initializer.extend([new_w, new_b])
        del conv.input[1:]
        conv.input.extend([new_w.name, new_b.name])
        conv.output[0] = bn.output[0]
        removed.add(bn.name)
        folded += 1
    keep = [n for n in graph.node if n.name not in removed]
    del graph.node[:]
    graph.node.extend(keep)
    used = {name for n in graph.node for name in n.input}
    unused = [i for i in graph.initializer if i.name not in used]
    for i in unused:
        graph.initializer.remove(i)
    del graph.value_info[:]  # stale after the rewrite; onnxruntime infers again
    onnx.checker.check_model(model)
    return model, folded


def calibration_batch(n_images: int, wanted: int) -> int:
    """The largest batch <= `wanted` that divides `n_images`, so every image is used in full batches."""
    for b in range(min(wanted, n_images), 0, -1):
        if n_images % b == 0:
            return b
    return 1


class ImageReader:
    """onnxruntime.quantization CalibrationDataReader over float32 NHWC batches (duck-typed so this
    module imports without onnxruntime; quantize_static only calls get_next/rewind)."""

    def __init__(self, images, input_name: str, batch: int = 32):
        self.x = float_images(images)
        self.input_name = input_name
        self.batch = batch
        self._i = 0

    def get_next(self) -> Optional[Dict[str, Any]]:
        # full batches only: onnxruntime 1.19's histogram calibrators (percentile, entropy) fail on a
        # ragged last batch; a partial remainder is dropped (see `used`)
        if self._i + self.batch > len(self.x):
            return None
        out = {self.input_name: self.x[self._i:self._i + self.batch]}
        self._i += self.batch
        return out

    def rewind(self) -> None:
        self._i = 0

    def __iter__(self) -> Iterable[Dict[str, Any]]:
        self.rewind()
        while True:
            item = self.get_next()
            if item is None:
                return
            yield item

    def __len__(self) -> int:
        return len(self.x) // self.batch

    @property
    def used(self) -> int:
        return len(self) * self.batch


def quantize(onnx_in: Path, onnx_out: Path, images, options: Dict[str, Any], log=lambda m: None) -> List[str]:
    """Static QDQ quantization of `onnx_in` into `onnx_out`; returns what was applied."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    opts = validate(options)
    model = onnx.load(str(onnx_in))
    folded = 0
    if opts["fold_batchnorm"]:
        model, folded = fold_batchnorm(model)
        if folded:
            folded_path = Path(str(onnx_out) + ".folded.onnx")
            onnx.save(model, str(folded_path))
            onnx_in = folded_path
    input_name = model.graph.input[0].name
    excluded = float_nodes(list(model.graph.node), opts["keep_float"])
    excluded += [n.name for n in model.graph.node
                 if n.name not in excluded and any(p in n.name for p in opts["exclude"])]
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile, "distribution": CalibrationMethod.Distribution}[
        opts["calibrate_method"]]

    class Reader(ImageReader, CalibrationDataReader):
        pass

    reader = Reader(images, input_name, calibration_batch(len(images), opts["calib_batch"]))
    extra = {"ActivationSymmetric": opts["symmetric_activations"], "WeightSymmetric": True}
    if opts["calibrate_method"] == "percentile":
        extra["CalibPercentile"] = opts["percentile"]
    act_type = QuantType.QInt8 if opts["symmetric_activations"] else QuantType.QUInt8
    # the calibrator keeps its augmented model in its own temporary folder, not in out_dir
    try:
        quantize_static(str(onnx_in), str(onnx_out), reader, quant_format=QuantFormat.QDQ,
                        per_channel=opts["per_channel"], activation_type=act_type, weight_type=QuantType.QInt8,
                        calibrate_method=method, nodes_to_exclude=excluded, extra_options=extra,
                        op_types_to_quantize=opts["op_types"])
    finally:
        if folded:
            Path(onnx_in).unlink()
    applied = [
        "static QDQ",
        *([f"folded {folded} BatchNormalization into Conv"] if folded else []),
        f"calibration {opts['calibrate_method']}"
        + (f" {opts['percentile']}" if opts["calibrate_method"] == "percentile" else "")
        + f" on {reader.used} CIFAR-10 training images",
        "per-channel int8 weights" if opts["per_channel"] else "per-tensor int8 weights",
        "symmetric int8 activations" if opts["symmetric_activations"] else "asymmetric uint8 activations",
    ]
    if opts["op_types"]:
        applied.append(f"quantized op types: {', '.join(opts['op_types'])}")
    if excluded:
        applied.append(f"kept in float ({opts['keep_float']}"
                       + (f", names containing {', '.join(opts['exclude'])}" if opts["exclude"] else "")
                       + f"): {len(excluded)} nodes")
    return applied


class OnnxInt8Exporter(Exporter):
    format = "onnx"
    precision = "int8"
    filename = "model.int8.onnx"
    tools = ("onnxruntime", "onnx")
    requires = ("onnx-fp32",)
    runtime = "onnxruntime"

    def validate_options(self, options: Dict[str, Any]) -> Dict[str, Any]:
        return validate(options)

    def _export_impl(self, ctx: ExportContext, tmp_path: Path) -> List[str]:
        src = ctx.artifact_path("onnx-fp32")
        images = ctx.calibration(self.artifact_name(), self.options["calib_images"])
        try:
            return quantize(src, tmp_path, images, self.options, ctx.log)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(self.artifact_name(), f"onnxruntime quantize_static failed: "
                                                    f"{type(exc).__name__}: {exc}") from exc
