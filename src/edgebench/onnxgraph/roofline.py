"""Per-layer roofline of an ONNX graph: how fast a card could run it, layer by layer.

`layer_costs(model)` gives every node's arithmetic (FLOPs an image: convolutions and matrix products) and the
elements it moves (activations read and written, an image; weights, once a batch). `floors(costs, ...)` turns
them into three floors for one card, precision and batch size, each in seconds a batch and images a second:

- compute: all FLOPs at the card's dense peak, nothing else (the figure a row's "share of peak" compares with);
- fused: only the convolutions and matrix products, each at max(FLOPs over peak, bytes over bandwidth), with
  every elementwise op folded into them for free (what a perfect compiler could reach with per-layer kernels);
- unfused: every node as its own kernel at max(FLOPs over peak, bytes over bandwidth), reading its inputs from
  memory and writing its output back (eager execution, minus launch costs).

A layer whose bytes over bandwidth exceed its FLOPs over peak is memory-bound on that card whatever the kernel:
`floors` counts them. Shapes come from ONNX shape inference; the batch dimension is taken as one image.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

#: bytes of one element at each precision (TF32 keeps FP32 storage)
ELEMENT_BYTES = {"fp32": 4, "tf32": 4, "fp16": 2, "bf16": 2, "int8": 1}
#: ops whose arithmetic counts (the rest is elementwise, pooling and data movement)
COMPUTE_OPS = ("Conv", "MatMul", "Gemm")
#: ops that only relabel memory: no kernel, no bytes
VIEW_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Constant", "Shape")


def _shapes(model) -> Dict[str, List[int]]:
    """Inferred shapes (onnxgraph.clean's), a symbolic dimension (the batch) counted as one."""
    from edgebench.onnxgraph.clean import static_shapes

    return {name: [d if d and d > 0 else 1 for d in dims] for name, dims in static_shapes(model).items()}


def layer_costs(model) -> List[Dict[str, Any]]:
    """One entry a node: {"name", "op", "flops", "act_elements", "weight_elements"}, per image (weights: per
    batch). A tensor whose shape inference cannot tell is counted as zero elements, and the entry says so."""
    shapes = _shapes(model)
    weights = {i.name: list(i.dims) for i in model.graph.initializer}
    costs = []
    for node in model.graph.node:
        if node.op_type in VIEW_OPS:
            continue
        acts = [n for n in list(node.input) + list(node.output) if n and n not in weights]
        unknown = [n for n in acts if n not in shapes]
        act_elements = sum(math.prod(shapes[n]) for n in acts if n in shapes)
        weight_elements = sum(math.prod(weights[n]) for n in node.input if n in weights)
        flops = 0
        out = shapes.get(node.output[0]) if node.output else None
        w = weights.get(node.input[1]) if len(node.input) > 1 else None
        if node.op_type == "Conv" and out and w:
            flops = 2 * math.prod(out) * math.prod(w[1:])  # every output: C/groups x kh x kw multiply-adds
        elif node.op_type in ("MatMul", "Gemm") and out and w:
            trans_b = any(a.name == "transB" and a.i for a in node.attribute)
            flops = 2 * math.prod(out) * (w[-1] if trans_b else w[0])
        entry = {"name": node.name or node.output[0], "op": node.op_type, "flops": flops,
                 "act_elements": act_elements, "weight_elements": weight_elements}
        if unknown:
            entry["unknown_shapes"] = unknown
        costs.append(entry)
    return costs


def floors(costs: List[Dict[str, Any]], peak_tflops: float, bandwidth_gbs: float, precision: str,
           batch: int) -> Dict[str, Any]:
    """The three floors (module docstring) for one card, precision and batch size."""
    eb = ELEMENT_BYTES[precision]
    peak, bw = peak_tflops * 1e12, bandwidth_gbs * 1e9

    def node_s(c: Dict[str, Any]) -> float:
        return max(c["flops"] * batch / peak, (c["act_elements"] * batch + c["weight_elements"]) * eb / bw)

    compute = [c for c in costs if c["op"] in COMPUTE_OPS]
    flops = sum(c["flops"] for c in costs)
    out: Dict[str, Any] = {"precision": precision, "batch": batch, "peak_tflops": peak_tflops,
                           "bandwidth_gbs": bandwidth_gbs, "gflops_per_image": flops / 1e9,
                           "nodes": len(costs), "compute_nodes": len(compute),
                           "memory_bound_compute_nodes": sum(1 for c in compute
                                                             if c["flops"] * batch / peak < node_s(c))}
    for name, seconds in (("compute", flops * batch / peak), ("fused", sum(node_s(c) for c in compute)),
                          ("unfused", sum(node_s(c) for c in costs))):
        ips = batch / seconds if seconds else None
        out[name] = {"s_per_batch": seconds, "images_per_s": ips,
                     "share_of_peak": flops * ips / peak if ips else None}
    return out


def model_floors(model, peak_tflops: float, bandwidth_gbs: float, precision: str,
                 batches: Optional[List[int]] = None) -> List[Dict[str, Any]]:
    costs = layer_costs(model)
    return [floors(costs, peak_tflops, bandwidth_gbs, precision, b) for b in batches or [1, 32, 256, 1024, 4096]]
