"""Clean an exported ONNX graph for runtimes that execute it op by op on a GPU (onnx2torch -> PyTorch).

tf2onnx leaves patterns that are harmless to ONNX Runtime but cost a GPU runtime a host synchronisation
per call (a shape or axes tensor read back from the device), which also forbids CUDA-graph capture:

- `Squeeze` with opset-13 axes (an input tensor): onnx2torch squeezes by a GPU tensor. A Squeeze of
  trailing 1-sized axes down to rank 2 (the head's `GlobalAveragePool -> Squeeze`) becomes `Flatten`.
- `Reshape` of a tensor to the shape it already has (tf2onnx's NHWC<->NCHW "transpose" of a 1x1 map,
  the original-stem ResNet's stage 4): onnx2torch's Reshape tests `shape == 0` on the device. Identity
  reshapes are removed; the `BatchNormalization` they kept apart from its `Conv` is then folded into it.
- Constant sub-graphs (`Constant` nodes, ops over initializers, `Shape` of a static tensor) are folded.

`clean(model) -> (model, report)` never changes what the graph computes (up to float rounding of the
BatchNorm fold); `dynamic_ops(model)` lists the nodes that still read a tensor's values on the host.
Needs only `onnx` (its reference evaluator folds constants), so it runs where ONNX Runtime does not.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from edgebench.errors import EdgebenchError

#: op -> input positions that must be constant (read on the host by a runtime that runs op by op)
SHAPE_INPUTS: Dict[str, Sequence[int]] = {
    "Reshape": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "Expand": (1,), "Tile": (1,), "Slice": (1, 2, 3, 4),
    "Pad": (1, 2), "Resize": (1, 2, 3), "TopK": (1,), "ConstantOfShape": (0,), "Range": (0, 1, 2),
    "ReduceSum": (1,), "ReduceMean": (1,), "ReduceMax": (1,), "ReduceMin": (1,), "Split": (1,),
}
#: ops whose output depends on a tensor's runtime values or shape in a way a GPU runtime reads on the host
ALWAYS_DYNAMIC = ("Shape", "Size", "NonZero", "NonMaxSuppression", "Loop", "If")
#: onnx2torch converts these from a constant axes/shape input without reading a device tensor
STATIC_IF_CONSTANT = ("Unsqueeze", "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "Slice", "Split", "Pad",
                      "Expand", "Tile", "Resize", "TopK", "ConstantOfShape", "Range")
NONDETERMINISTIC = ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                    "Bernoulli")


class OnnxCleanError(EdgebenchError, ValueError):
    """The graph could not be cleaned (or the cleaned graph failed the ONNX checker): names the file."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"ONNX cleaning of {where}: {reason}")


@dataclass
class CleanReport:
    constants_folded: int = 0
    identity_reshapes_removed: int = 0
    squeezes_removed: int = 0
    batchnorms_folded: int = 0
    nodes_before: int = 0
    nodes_after: int = 0
    dynamic_ops_left: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


class _Graph:
    """Index over a GraphProto: initializers as arrays, producers and consumers of each tensor."""

    def __init__(self, model):
        from onnx import numpy_helper

        self.model = model
        self.g = model.graph
        self.consts: Dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in self.g.initializer}
        self.outputs: Set[str] = {o.name for o in self.g.output}

    def consumers(self, name: str) -> List[Any]:
        return [n for n in self.g.node if name in n.input]

    def producer(self, name: str):
        for n in self.g.node:
            if name in n.output:
                return n
        return None

    def rename_input(self, old: str, new: str) -> None:
        for n in self.g.node:
            for i, v in enumerate(n.input):
                if v == old:
                    n.input[i] = new

    def set_const(self, name: str, value: np.ndarray) -> None:
        self.consts[name] = np.asarray(value)

    def write_back(self) -> None:
        """Initializers = the constants still used by some node or graph output (dead ones dropped)."""
        from onnx import numpy_helper

        used = {v for n in self.g.node for v in n.input} | self.outputs
        del self.g.initializer[:]
        self.g.initializer.extend(numpy_helper.from_array(np.asarray(v), k) for k, v in self.consts.items()
                                  if k in used)
        graph_inputs = [i for i in self.g.input if i.name not in self.consts or i.name in used]
        del self.g.input[:]
        self.g.input.extend(graph_inputs)


def _attrs(node) -> Dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def static_shapes(model) -> Dict[str, List[Optional[int]]]:
    """Inferred shapes: a dimension is its integer size, or None where it is symbolic (the batch)."""
    from onnx import shape_inference

    inferred = shape_inference.infer_shapes(model)
    out: Dict[str, List[Optional[int]]] = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            out[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    return out


def _fold_constants(gr: _Graph, shapes: Dict[str, List[Optional[int]]]) -> int:
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    folded = 0
    for node in list(gr.g.node):
        if node.op_type == "Constant":
            attr = node.attribute[0]
            if attr.name != "value":
                continue  # value_float(s)/value_int(s)/sparse: left as they are
            gr.set_const(node.output[0], numpy_helper.to_array(attr.t))
        elif node.op_type == "Shape" and node.input[0] in shapes and all(d is not None for d in shapes[node.input[0]]) \
                and not _attrs(node):
            gr.set_const(node.output[0], np.array(shapes[node.input[0]], dtype=np.int64))
        elif node.op_type not in NONDETERMINISTIC and node.domain in ("", "ai.onnx") and node.input \
                and all(not v or v in gr.consts for v in node.input):
            opset = [o for o in gr.model.opset_import if o.domain in ("", "ai.onnx")]
            inputs = [helper.make_tensor_value_info(v or f"_empty{i}", 0, None) for i, v in enumerate(node.input)]
            sub = helper.make_model(
                helper.make_graph([node], "fold", inputs, [helper.make_tensor_value_info(o, 0, None)
                                                           for o in node.output]), opset_imports=opset)
            try:
                values = ReferenceEvaluator(sub).run(None, {v: gr.consts[v] for v in node.input if v})
            except Exception:  # an op the reference evaluator lacks: leave it to the runtime
                continue
            for name, value in zip(node.output, values):
                gr.set_const(name, np.asarray(value))
        else:
            continue
        gr.g.node.remove(node)
        folded += 1
    return folded


def _remove_identity_reshapes(gr: _Graph, shapes: Dict[str, List[Optional[int]]]) -> int:
    removed = 0
    for node in list(gr.g.node):
        if node.op_type != "Reshape" or node.input[1] not in gr.consts or node.output[0] in gr.outputs:
            continue
        if _attrs(node).get("allowzero", 0):
            continue
        src = shapes.get(node.input[0])
        target = [int(v) for v in gr.consts[node.input[1]].ravel()]
        if src is None or len(src) != len(target):
            continue
        unknown = [i for i, (s, t) in enumerate(zip(src, target)) if not (t == 0 or (s is not None and s == t))]
        # one -1 may stand for the one dimension not otherwise pinned down (the symbolic batch)
        if unknown and not (len(unknown) == 1 and target[unknown[0]] == -1):
            continue
        gr.rename_input(node.output[0], node.input[0])
        gr.g.node.remove(node)
        removed += 1
    return removed


def _axes(gr: _Graph, node) -> Optional[List[int]]:
    """Constant axes of a Squeeze/Unsqueeze (opset-13 input or older attribute), None when not constant."""
    if len(node.input) > 1 and node.input[1]:
        return [int(a) for a in gr.consts[node.input[1]].ravel()] if node.input[1] in gr.consts else None
    return list(_attrs(node).get("axes", [])) or None


def _squeeze_to_flatten(gr: _Graph, shapes: Dict[str, List[Optional[int]]]) -> int:
    """Unsqueeze -> Squeeze on the same axes cancels; a Squeeze of trailing 1s down to rank 2 is a Flatten."""
    from onnx import helper

    changed = 0
    for node in list(gr.g.node):
        if node.op_type != "Squeeze":
            continue
        axes = _axes(gr, node)
        if axes is None:
            continue
        up = gr.producer(node.input[0])
        if up is not None and up.op_type == "Unsqueeze" and _axes(gr, up) == axes \
                and len(gr.consumers(up.output[0])) == 1 and up.output[0] not in gr.outputs \
                and node.output[0] not in gr.outputs:
            gr.rename_input(node.output[0], up.input[0])
            gr.g.node.remove(node)
            gr.g.node.remove(up)
            changed += 1
            continue
        src = shapes.get(node.input[0])
        if not src or not axes:
            continue
        rank = len(src)
        axes = sorted(a % rank for a in axes)
        if axes != list(range(2, rank)) or any(src[a] != 1 for a in axes):
            continue
        flat = helper.make_node("Flatten", [node.input[0]], list(node.output), name=(node.name or "squeeze") + "_flat",
                                axis=1)
        pos = list(gr.g.node).index(node)
        gr.g.node.remove(node)
        gr.g.node.insert(pos, flat)
        changed += 1
    return changed


def _fold_batchnorms(gr: _Graph) -> int:
    folded = 0
    for bn in list(gr.g.node):
        if bn.op_type != "BatchNormalization" or len(bn.output) != 1:
            continue
        conv = gr.producer(bn.input[0])
        if conv is None or conv.op_type != "Conv" or conv.input[0] == "" or conv.input[1] not in gr.consts:
            continue
        if len(gr.consumers(conv.output[0])) != 1 or conv.output[0] in gr.outputs:
            continue
        params = bn.input[1:5]
        if not all(p in gr.consts for p in params) or (len(conv.input) > 2 and conv.input[2] not in gr.consts):
            continue
        scale, bias, mean, var = (gr.consts[p].astype(np.float64) for p in params)
        eps = float(_attrs(bn).get("epsilon", 1e-5))
        w = gr.consts[conv.input[1]]
        out_ch = w.shape[0]
        b = gr.consts[conv.input[2]].astype(np.float64) if len(conv.input) > 2 else np.zeros(out_ch)
        k = scale / np.sqrt(var + eps)
        w_new = (w.astype(np.float64) * k.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
        b_new = ((b - mean) * k + bias).astype(w.dtype)
        w_name, b_name = conv.output[0] + "_bnfold_W", conv.output[0] + "_bnfold_B"
        gr.set_const(w_name, w_new)
        gr.set_const(b_name, b_new)
        conv.input[1] = w_name
        if len(conv.input) > 2:
            conv.input[2] = b_name
        else:
            conv.input.append(b_name)
        conv.output[0] = bn.output[0]
        gr.g.node.remove(bn)
        folded += 1
    return folded


def dynamic_ops(model) -> List[str]:
    """Nodes ("op_type name") that make an op-by-op GPU runtime read a tensor's values on the host."""
    consts = {i.name for i in model.graph.initializer}
    found = []
    for n in model.graph.node:
        label = f"{n.op_type} {n.name}".strip()
        if n.op_type in ALWAYS_DYNAMIC:
            found.append(label)
        elif n.op_type in ("Reshape", "Squeeze"):
            if n.op_type == "Squeeze" and (len(n.input) < 2 or not n.input[1]):
                continue  # opset < 13 axes attribute, or squeeze-all: static
            found.append(label)  # onnx2torch runs both on a device tensor, constant or not
        elif n.op_type in SHAPE_INPUTS:
            if any(i < len(n.input) and n.input[i] and n.input[i] not in consts for i in SHAPE_INPUTS[n.op_type]):
                found.append(label)
    return found


def clean(model) -> Tuple[Any, CleanReport]:
    """(cleaned copy of `model`, CleanReport). The input model is not modified."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    report = CleanReport(nodes_before=len(m.graph.node))
    gr = _Graph(m)
    for _ in range(4):  # each step can expose more of the others; converges in two rounds on tf2onnx graphs
        shapes = static_shapes(m)
        step = _fold_constants(gr, shapes)
        gr.write_back()
        shapes = static_shapes(m)
        r = _remove_identity_reshapes(gr, shapes)
        s = _squeeze_to_flatten(gr, shapes)
        b = _fold_batchnorms(gr)
        gr.write_back()
        report.constants_folded += step
        report.identity_reshapes_removed += r
        report.squeezes_removed += s
        report.batchnorms_folded += b
        if not (step or r or s or b):
            break
    del m.graph.value_info[:]  # stale after the rewrites; a runtime re-infers what it needs
    try:
        onnx.checker.check_model(m)
    except onnx.checker.ValidationError as exc:
        raise OnnxCleanError(m.graph.name or "<model>", f"the cleaned graph fails the ONNX checker: {exc}") from exc
    report.nodes_after = len(m.graph.node)
    report.dynamic_ops_left = dynamic_ops(m)
    return m, report


def clean_file(src, dst) -> CleanReport:
    """Clean the ONNX file `src` into `dst` (may be the same path; written whole, then renamed)."""
    import onnx

    src, dst = Path(src), Path(dst)
    try:
        model = onnx.load(str(src))
    except Exception as exc:  # protobuf decode errors, missing file, external data not found
        raise OnnxCleanError(str(src), f"cannot read it ({type(exc).__name__}: {exc})") from exc
    try:
        cleaned, report = clean(model)
    except OnnxCleanError as exc:
        raise OnnxCleanError(str(src), str(exc)) from exc
    tmp = dst.with_name(dst.name + ".tmp")
    onnx.save(cleaned, str(tmp))
    tmp.replace(dst)
    return report
