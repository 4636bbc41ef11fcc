"""`edgebench bench`: the standardized benchmark entrypoint, the same on a host and in every container."""
from __future__ import annotations

import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "bench", help="run a benchmark suite on an artifacts folder and write a results JSON",
        description="Run every backend x precision x threads x scenario of a suite (default: the kit's "
                    "suites/default.yaml) against the exported artifacts beside model.keras. Each group runs in "
                    "its own process; rows are written as they complete, failures become rows with the reason.")
    p.add_argument("--artifacts", required=True, help="folder with model.keras and the exported formats (manifest.json)")
    p.add_argument("--out", required=True, help="results JSON to write (rewritten atomically after every row)")
    p.add_argument("--suite", help="suite YAML (default: the kit's default suite)")
    p.add_argument("--device", default="local", help="name of this device in the results (default: local)")
    p.add_argument("--data", help="CIFAR-10 source (default: $EDGEBENCH_DATA, else Keras' download)")
    p.add_argument("--test-limit", type=int, help="use only this many test images (quick runs, tests)")
    p.add_argument("--only", nargs="+", metavar="BACKEND", help="run only these backends of the suite")
    p.add_argument("--reference", default="keras-call",
                   help="backend whose FP32 logits every row is compared with (default: the Keras model; "
                        "'onnxruntime' where TensorFlow is absent)")
    p.add_argument("--resume", action="store_true",
                   help="keep the groups an earlier, interrupted run of the same model completed in --out; "
                        "measure only the rest")
    p.set_defaults(func=_cmd_bench)


def _cmd_bench(args) -> int:
    from edgebench.bench.harness import run_bench

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    doc = run_bench(args.artifacts, args.out, suite_path=args.suite, device=args.device, data_source=args.data,
                    test_limit=args.test_limit, only=args.only,
                    reference=args.reference, resume=args.resume, log=log)
    failed = [r for r in doc["rows"] if r["status"] == "failed"]
    print(args.out)
    if failed:
        log(f"{len(failed)} rows failed: " + ", ".join(sorted({r['id'] for r in failed})[:10]))
    return 0
