"""A model's graph without its weights, and the same graph with seeded random weights: for timing a stem on the
lent GPU machine when its trained ONNX (85 MB) cannot travel there in the same call as the rest.

    python tools/gpu-study/random_weights.py strip model.onnx template.onnx   # here: graph + shapes, no data
    python tools/gpu-study/random_weights.py fill template.onnx model.onnx    # there: N(0, 1/fan_in) weights

`strip` keeps every initializer of at most 64 elements (shapes, axes, small constants) and empties the others,
marking them; `fill` gives each marked tensor seeded random values: weights of 2-D and more N(0, 1/fan_in),
vectors (biases, BatchNormalization parameters) uniform in [0.5, 1.5]. Timing only: the logits mean nothing, and
a row made from such a model reports no accuracy.
"""
from __future__ import annotations

import sys

MARK = "edgebench: random weights"
KEEP = 64


def strip(src: str, dst: str) -> int:
    import numpy as np
    import onnx

    model = onnx.load(src)
    n = 0
    for t in model.graph.initializer:
        if t.data_type == onnx.TensorProto.FLOAT and int(np.prod(t.dims or [1])) > KEEP:
            t.ClearField("raw_data")
            t.ClearField("float_data")
            t.doc_string = MARK
            n += 1
    onnx.save(model, dst)
    return n


def fill(src: str, dst: str, seed: int = 0) -> int:
    import numpy as np
    import onnx
    from onnx import numpy_helper

    model = onnx.load(src)
    rng = np.random.default_rng(seed)
    n = 0
    for t in model.graph.initializer:
        if t.doc_string != MARK:
            continue
        dims = list(t.dims)
        if len(dims) >= 2:
            fan_in = int(np.prod(dims[1:])) if len(dims) > 2 else dims[0]
            data = (rng.standard_normal(dims) / np.sqrt(max(fan_in, 1))).astype(np.float32)
        else:
            data = rng.uniform(0.5, 1.5, dims).astype(np.float32)
        t.CopyFrom(numpy_helper.from_array(data, t.name))
        n += 1
    onnx.save(model, dst)
    return n


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("strip", "fill"):
        raise SystemExit("usage: random_weights.py strip|fill SRC DST")
    count = (strip if sys.argv[1] == "strip" else fill)(sys.argv[2], sys.argv[3])
    print(f"{sys.argv[1]}: {count} initializers -> {sys.argv[3]}")
