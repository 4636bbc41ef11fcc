"""Pack a model.onnx losslessly for the lent GPU machine, where one call carries at most 64 MiB with the tree.

    python tools/gpu-study/pack_model.py pack model.onnx model.onnx.pack      # here
    python tools/gpu-study/pack_model.py unpack model.onnx.pack model.onnx    # there: byte-identical, sha256 checked

The float32 weights' bytes are cut out of the file where they lie (each initializer's raw_data, found in order),
split into their four byte planes, and the plane holding sign and exponent is zlib-compressed (trained weights
use few exponents: about 40% of its size); the mantissa planes do not compress and are stored as they are. The
rest of the file is kept verbatim, so unpacking puts every byte back where it was: a trained ResNet34's 85.2 MB
ONNX packs to about 72 MB. Standard library and numpy only (the GPU machine has no zstd).
"""
from __future__ import annotations

import hashlib
import json
import struct
import sys
import zlib

MAGIC = b"EBPACK1\n"
MIN_BYTES = 4096  # smaller tensors stay in the verbatim part


def pack(src: str, dst: str) -> None:
    import numpy as np
    import onnx

    data = open(src, "rb").read()
    model = onnx.load_from_string(data)
    spans, pos = [], 0
    for t in model.graph.initializer:
        raw = t.raw_data
        if t.data_type != onnx.TensorProto.FLOAT or len(raw) < MIN_BYTES:
            continue
        at = data.find(raw, pos)
        if at < 0:
            raise SystemExit(f"{src}: initializer {t.name} not found in order in the file")
        spans.append((at, len(raw)))
        pos = at + len(raw)
    rest, blob, prev = [], [], 0
    for at, n in spans:
        rest.append(data[prev:at])
        blob.append(data[at:at + n])
        prev = at + n
    rest.append(data[prev:])
    planes = np.frombuffer(b"".join(blob), dtype=np.uint8).reshape(-1, 4).T
    parts = [np.ascontiguousarray(planes[i]).tobytes() for i in range(4)]
    parts[3] = zlib.compress(parts[3], 6)
    verbatim = zlib.compress(b"".join(rest), 6)
    head = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "spans": spans,
            "parts": [len(p) for p in parts], "verbatim": len(verbatim), "compressed_plane": 3}
    h = json.dumps(head).encode()
    with open(dst, "wb") as f:
        f.write(MAGIC + struct.pack("<Q", len(h)) + h + verbatim)
        for p in parts:
            f.write(p)
    print(f"{src}: {len(data)} bytes -> {dst}: {len(MAGIC) + 8 + len(h) + len(verbatim) + sum(head['parts'])}")


def unpack(src: str, dst: str) -> None:
    import numpy as np

    buf = open(src, "rb").read()
    if not buf.startswith(MAGIC):
        raise SystemExit(f"{src}: not a pack_model.py pack")
    off = len(MAGIC)
    (n,) = struct.unpack("<Q", buf[off:off + 8])
    head = json.loads(buf[off + 8:off + 8 + n])
    off += 8 + n
    rest = zlib.decompress(buf[off:off + head["verbatim"]])
    off += head["verbatim"]
    parts = []
    for i, size in enumerate(head["parts"]):
        p = buf[off:off + size]
        parts.append(zlib.decompress(p) if i == head["compressed_plane"] else p)
        off += size
    blob = np.stack([np.frombuffer(p, dtype=np.uint8) for p in parts], axis=1).tobytes()
    out, r, b, prev = [], 0, 0, 0
    for at, size in head["spans"]:
        out.append(rest[r:r + at - prev])
        r += at - prev
        out.append(blob[b:b + size])
        b += size
        prev = at + size
    out.append(rest[r:])
    data = b"".join(out)
    got = hashlib.sha256(data).hexdigest()
    if len(data) != head["size"] or got != head["sha256"]:
        raise SystemExit(f"{src}: unpacked {len(data)} bytes, sha256 {got}; expected {head['size']}, {head['sha256']}")
    open(dst, "wb").write(data)
    print(f"{dst}: {len(data)} bytes, sha256 ok")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("pack", "unpack"):
        raise SystemExit(__doc__)
    (pack if sys.argv[1] == "pack" else unpack)(sys.argv[2], sys.argv[3])
