"""`edgebench` command line: the same entrypoint on a host and inside every container.

Heavy frameworks (TensorFlow, ONNX Runtime, ...) are imported by the subcommand that needs them,
so `edgebench --help` and `edgebench env` work without them.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from edgebench import __version__


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model on CIFAR-10 (model.keras + train.json)",
                       description="Train a registered model on CIFAR-10. Checkpoints every epoch; "
                                   "running the same command again resumes an interrupted run.")
    p.add_argument("--data", help="CIFAR-10 source: cifar-10-python.tar.gz, cifar-10-batches-py/, or a "
                                  "train|test/<class>/ image folder or .zip (default: $EDGEBENCH_DATA, else Keras' download)")
    p.add_argument("--model", default="resnet34", help="registered model name (see `edgebench models`)")
    p.add_argument("--out", required=True, help="run folder: model.keras, train.json, checkpoints/")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--optimizer", default="adamw", choices=["adamw", "sgd"])
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate")
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--no-augment", action="store_true", help="no random crop / flip")
    p.add_argument("--seed", type=int, default=0, help="fixed seed (weights, shuffling, augmentation)")
    p.add_argument("--train-limit", type=int, help="use only this many training images (tests, quick runs)")
    p.add_argument("--test-limit", type=int, help="evaluate on only this many test images")
    p.add_argument("--no-eval-each-epoch", action="store_true", help="skip the per-epoch test evaluation")
    p.set_defaults(func=_cmd_train)


def _cmd_train(args) -> int:
    from edgebench.train import TrainConfig, train

    cfg = TrainConfig(model=args.model, epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer,
                      learning_rate=args.lr, weight_decay=args.weight_decay, warmup_epochs=args.warmup_epochs,
                      label_smoothing=args.label_smoothing, augment=not args.no_augment, seed=args.seed,
                      train_limit=args.train_limit, test_limit=args.test_limit,
                      eval_each_epoch=not args.no_eval_each_epoch)
    meta = train(cfg, args.out, data_source=args.data)
    print(f"test top-1 {meta['test_top1']:.4f} after {len(meta['history'])} epochs, "
          f"{meta['train_seconds'] / 60:.1f} min of training -> {args.out}/model.keras")
    return 0


def _add_models(sub) -> None:
    p = sub.add_parser("models", help="list registered models with parameters and FLOPs per image")
    p.set_defaults(func=_cmd_models)


def _cmd_models(args) -> int:
    from edgebench import models

    for name in models.available():
        c = models.count_flops(models.build(name))
        print(f"{name:16s} {c['params'] / 1e6:6.2f} M params  {c['flops'] / 1e9:6.3f} GFLOP/image  "
              f"{models.get(name).description}")
    return 0


def _add_env(sub) -> None:
    p = sub.add_parser("env", help="print this machine's environment fingerprint (JSON)")
    p.add_argument("--check", nargs="*", default=None, metavar="BACKEND",
                   help="also import these backends and fail if one is missing (container smoke test)")
    p.set_defaults(func=_cmd_env)


def _cmd_env(args) -> int:
    from edgebench.bench import fingerprint
    from edgebench import runtimes

    info = fingerprint.collect()
    info["backends"] = {name: runtimes.availability(name) for name in runtimes.names()}
    print(json.dumps(info, indent=2))
    if args.check is not None:
        missing = [b for b in args.check if not info["backends"].get(b, {}).get("available")]
        if missing:
            for b in missing:
                reason = info["backends"].get(b, {}).get("reason", "unknown backend")
                print(f"backend {b!r} unavailable: {reason}", file=sys.stderr)
            return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgebench",
        description="Train, export and benchmark Keras models for edge devices (CIFAR-10 ResNet34 first).",
    )
    parser.add_argument("--version", action="version", version=f"edgebench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(sub)
    _add_models(sub)
    _add_env(sub)
    for module in ("edgebench.export.cli", "edgebench.bench.cli", "edgebench.report_cli"):
        _add_optional(sub, module)
    return parser


def _add_optional(sub, module: str) -> None:
    """Sub-commands living beside their family register themselves through `add_parser(sub)`."""
    import importlib

    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("edgebench"):
            return  # that family has not landed yet
        raise
    mod.add_parser(sub)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"edgebench {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
