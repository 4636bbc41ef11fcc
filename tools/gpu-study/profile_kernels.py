"""Profile torch backends of the kit on a GPU: what each configuration's calls spend their time on.

    python tools/gpu-study/profile_kernels.py --artifacts /root/stage/cifar --out profile.json \
        torch-graph:fp16:1 torch-compile-compute:fp16:1024 torch-compile:fp16:1024:freeze=true

Each CONFIG is backend:precision:batch[:option=value...] (the backend's suite options). For each: the kit's
runtime (edgebench.runtimes) loads model.onnx, warms up, times calls on one random batch for about a second
(wall time a call), then records `--profile-calls` calls with torch.profiler and summarises the device
activity (kernel_profile.py beside this script) next to the per-layer roofline of the cleaned graph at that batch
and precision (edgebench.onnxgraph.roofline) and the card's peaks (reference/gpu-peaks.json). The JSON is
rewritten after every configuration, so a run cut short keeps what it measured.

`--check N` compares each configuration's logits for its whole batch (the path that was timed: chunked, inline
or whole) with ONNX Runtime FP32 on the CPU over N images spread across the batch (every chunk among them):
largest absolute logit difference, relative to the largest reference logit, and top-1 agreement.
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path


def _value(v: str):
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    return int(v) if v.isdigit() else v


def parse_config(spec: str):
    parts = spec.split(":")
    if len(parts) < 3 or not parts[2].isdigit():
        raise SystemExit(f"config {spec!r}: expected backend:precision:batch[:option=value...]")
    options = {}
    for item in parts[3:]:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"config {spec!r}: option {item!r} is not option=value")
        options[key] = _value(value)
    return parts[0], parts[1], int(parts[2]), options


_ORT = {}


def _check(path, x, y, n):
    """The batch's logits `y` against ONNX Runtime FP32 over `n` images spread evenly across the batch."""
    import numpy as np
    import onnxruntime as ort

    if path not in _ORT:
        _ORT[path] = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    sess = _ORT[path]
    idx = np.unique(np.linspace(0, len(x) - 1, min(n, len(x))).astype(int))
    ref = sess.run(None, {sess.get_inputs()[0].name: x[idx]})[0].astype(np.float64)
    got = y[idx].astype(np.float64)
    diff = float(np.abs(got - ref).max())
    return {"images": int(len(idx)), "first": int(idx[0]), "last": int(idx[-1]), "max_abs_logit_diff": diff,
            "rel_diff": diff / max(float(np.abs(ref).max()), 1e-12), "finite": bool(np.isfinite(got).all()),
            "top1_agreement": float((got.argmax(1) == ref.argmax(1)).mean())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--artifacts", required=True, help="folder with model.onnx")
    ap.add_argument("--out", required=True, help="JSON file to write")
    ap.add_argument("--profile-calls", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=1.0, help="timed calls for about this long")
    ap.add_argument("--check", type=int, default=0, metavar="N",
                    help="compare N images of each batch's logits with ONNX Runtime FP32 (0: no check)")
    ap.add_argument("configs", nargs="+", metavar="CONFIG")
    args = ap.parse_args(argv)
    configs = [parse_config(c) for c in args.configs]

    import kernel_profile  # beside this script
    import numpy as np
    import onnx
    import torch
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    from edgebench import runtimes
    from edgebench.onnxgraph import roofline
    from edgebench.onnxgraph.clean import clean
    from edgebench.peaks import arithmetic, card_peaks
    from edgebench.util import sha256_file

    path = Path(args.artifacts) / "model.onnx"
    costs = roofline.layer_costs(clean(onnx.load(str(path)))[0])
    conv_flops = sum(c["flops"] for c in costs if c["op"] == "Conv")
    card = torch.cuda.get_device_name()
    peaks = card_peaks(card) or {}
    doc = {"schema": "edgebench.kernel-profile", "schema_version": 1, "tool": "tools/gpu-study/profile_kernels.py",
           "card": card, "peaks": peaks.get("tflops"),
           "bandwidth_gbs": peaks.get("bandwidth_gbs"), "torch": torch.__version__, "cuda": torch.version.cuda,
           "python": platform.python_version(), "model": {"path": str(path), "sha256": sha256_file(path),
                                                           "conv_gflops_per_image": conv_flops / 1e9},
           "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "configs": []}
    out = Path(args.out)
    for backend, precision, batch, options in configs:
        entry = {"backend": backend, "precision": precision, "batch": batch, "options": options}
        print(f"[profile] {backend} {precision} batch {batch} {options}", flush=True)
        x = np.random.default_rng(0).uniform(0, 255, (batch, 32, 32, 3)).astype(np.float32)
        try:
            with runtimes.open(backend, str(path), precision=precision, **options) as rt:
                for _ in range(20):
                    rt.infer(x)
                n, start = 0, time.perf_counter()
                while n < 10 or (time.perf_counter() - start < args.seconds and n < 5000):
                    rt.infer(x)
                    n += 1
                wall_ms = (time.perf_counter() - start) / n * 1000.0
                with profile(activities=[ProfilerActivity.CUDA]) as prof:
                    for _ in range(args.profile_calls):
                        rt.infer(x)
                settings = rt.versions()["settings"]
                if args.check:
                    entry["check"] = _check(path, x, rt.infer(x), args.check)
            kernels = [(e.name, e.time_range.start, e.time_range.end) for e in prof.events()
                       if e.device_type == DeviceType.CUDA]
            held_to = arithmetic(precision, settings)
            peak = (peaks.get("tflops") or {}).get(held_to)
            summary = kernel_profile.summarise(kernels, args.profile_calls, wall_ms, batch, conv_flops, peak)
            summary["verdict"] = kernel_profile.verdict(summary)
            if peak and peaks.get("bandwidth_gbs"):
                summary["roofline"] = roofline.floors(costs, peak, peaks["bandwidth_gbs"], held_to, batch)
                # achieved FLOP/s over peak = images/s over the compute floor's images/s
                summary["share_of_peak"] = summary["images_per_s"] / summary["roofline"]["compute"]["images_per_s"]
            entry.update(timed_calls=n, summary=summary, settings=settings)
            print(f"[profile]   {wall_ms:.3f} ms a call, {summary['images_per_s']:.0f} img/s: {summary['verdict']}",
                  flush=True)
        except Exception as e:  # one failing configuration is a record, not the end of the run
            entry["error"] = f"{type(e).__name__}: {e}"
            print(f"[profile]   failed: {entry['error']}", flush=True)
        doc["configs"].append(entry)
        out.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
