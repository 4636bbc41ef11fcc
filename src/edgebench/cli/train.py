"""`edgebench train` and `edgebench models`: the training family's subcommands (registered by cli.py)."""
from __future__ import annotations

import argparse


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a model on CIFAR-10 (model.keras + train.json)",
                       description="Train a registered model on CIFAR-10. Checkpoints every epoch; "
                                   "running the same command again resumes an interrupted run.")
    p.add_argument("--data", help="CIFAR-10 source: cifar-10-python.tar.gz, cifar-10-batches-py/, or a "
                                  "train|test/<class>/ image folder or .zip (default: $EDGEBENCH_DATA, else "
                                  "Keras' download)")
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
    p.set_defaults(func=run_train)

    m = sub.add_parser("models", help="list registered models with parameters and FLOPs per image")
    m.set_defaults(func=run_models)
    return p


def run_train(args) -> int:
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


def run_models(args) -> int:
    from edgebench import models

    for name in models.available():  # from the architecture: no TensorFlow import, no model build
        c = models.complexity(name)
        print(f"{name:16s} {c['params'] / 1e6:6.2f} M params  {c['flops'] / 1e9:6.3f} GFLOP/image  "
              f"{models.get(name).description}")
    return 0
