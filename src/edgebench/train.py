"""Training: a short, sound recipe with per-epoch checkpoints and resume.

Default recipe (batch 64, 10 epochs, as in the seed study): AdamW 2e-3 with weight decay 0.05, one
warm-up epoch then cosine decay, label smoothing 0.1, random crop (4 px reflect padding) and
horizontal flip. A run killed mid-epoch and started again with the same command continues from the
last completed epoch.
"""
from __future__ import annotations

import functools
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from edgebench import data as data_mod
from edgebench import models
from edgebench.contracts.vocabulary import CHECKPOINTS_DIRNAME, INPUT_SHAPE, TRAIN_STATE_FILE
from edgebench.errors import EdgebenchError
from edgebench.util import atomic_write_json, sha256_file


class TrainConfigError(EdgebenchError, ValueError):
    """A training configuration that is refused, or an --out folder that holds another one: a ValueError too."""


@dataclass
class TrainConfig:
    model: str = "resnet34"
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adamw"  # adamw | sgd
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    augment: bool = True
    seed: Optional[int] = 0
    train_limit: Optional[int] = None
    test_limit: Optional[int] = None
    eval_each_epoch: bool = True

    def validate(self) -> None:
        models.get(self.model)
        if self.epochs < 1 or self.batch_size < 1:
            raise TrainConfigError(f"epochs and batch_size must be >= 1 (got {self.epochs}, {self.batch_size})")
        if self.optimizer not in ("adamw", "sgd"):
            raise TrainConfigError(f"unknown optimizer {self.optimizer!r}; known: adamw, sgd")
        if self.learning_rate <= 0:
            raise TrainConfigError(f"learning_rate must be > 0 (got {self.learning_rate})")


@functools.lru_cache(maxsize=None)
def _warmup_cosine_class():
    """The schedule class, made (and registered with Keras) once per process: Keras refuses a second
    registration of the same name, so a second train() in one process would fail."""
    import tensorflow as tf

    @tf.keras.utils.register_keras_serializable(package="edgebench")
    class WarmupCosine(tf.keras.optimizers.schedules.LearningRateSchedule):
        """Linear warm-up to `peak`, then cosine decay to zero at `total_steps`."""

        def __init__(self, peak: float, warmup_steps: int, total_steps: int):
            self.peak = float(peak)
            self.warmup_steps = int(warmup_steps)
            self.total_steps = int(total_steps)

        def __call__(self, step):
            step = tf.cast(step, tf.float32)
            warm = self.peak * (step + 1.0) / max(1.0, float(self.warmup_steps))
            progress = (step - self.warmup_steps) / max(1.0, float(self.total_steps - self.warmup_steps))
            cosine = 0.5 * self.peak * (1.0 + tf.cos(math.pi * tf.clip_by_value(progress, 0.0, 1.0)))
            return tf.where(step < self.warmup_steps, warm, cosine)

        def get_config(self):  # without it model.save fails after the last epoch
            return {"peak": self.peak, "warmup_steps": self.warmup_steps, "total_steps": self.total_steps}

    return WarmupCosine


def _dataset(x, y, batch_size: int, training: bool, augment: bool, seed: Optional[int]):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)

    def prep(img, label):
        img = tf.cast(img, tf.float32)
        if training and augment:
            img = tf.pad(img, [[4, 4], [4, 4], [0, 0]], mode="REFLECT")
            img = tf.image.random_crop(img, INPUT_SHAPE)
            img = tf.image.random_flip_left_right(img)
        return img, tf.one_hot(label, models.NUM_CLASSES)

    return ds.map(prep, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _compile(model, cfg: TrainConfig, steps_per_epoch: int):
    import tensorflow as tf

    schedule = _warmup_cosine_class()(cfg.learning_rate, int(cfg.warmup_epochs * steps_per_epoch),
                                      cfg.epochs * steps_per_epoch)
    if cfg.optimizer == "adamw":
        opt = tf.keras.optimizers.AdamW(learning_rate=schedule, weight_decay=cfg.weight_decay)
    else:
        opt = tf.keras.optimizers.SGD(learning_rate=schedule, momentum=0.9, nesterov=True,
                                      weight_decay=cfg.weight_decay or None)
    model.compile(
        optimizer=opt,
        loss=tf.keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=cfg.label_smoothing),
        metrics=[tf.keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    opt.build(model.trainable_variables)  # slots exist before a checkpoint restore
    return opt


def evaluate_top1(model, x, y, batch_size: int = 256) -> float:
    logits = model.predict(x.astype(np.float32), batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == y))


PROGRESS_INTERVAL_S = 20.0  # a line at least this often when output is not a terminal (CI logs, docker logs)
PROGRESS_ENV = "EDGEBENCH_PROGRESS_S"  # another interval, in seconds (tests use a short one)


def _checkpointer(manager, state: Dict, state_file: Path, cfg: TrainConfig, n_train: int, n_test: int):
    """Saves a checkpoint and train_state.json after every epoch and prints the epoch line, with training and
    evaluation throughput apart (the epoch's test pass is timed on its own)."""
    import tensorflow as tf

    class Checkpointer(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()
            self.eval_s = 0.0

        def on_test_begin(self, logs=None):
            self.t_eval = time.perf_counter()

        def on_test_end(self, logs=None):
            self.eval_s += time.perf_counter() - self.t_eval

        def on_epoch_end(self, epoch, logs=None):
            seconds = time.perf_counter() - self.t0
            fit_s = max(1e-9, seconds - self.eval_s)
            manager.save(checkpoint_number=epoch + 1)
            state["completed_epochs"] = epoch + 1
            state["history"].append(dict({k: float(v) for k, v in (logs or {}).items()}, epoch=epoch + 1))
            state["epoch_seconds"].append(seconds)
            state.setdefault("eval_seconds", []).append(self.eval_s)
            atomic_write_json(state_file, state)
            scores = ", ".join(f"{k} {float(v):.4f}" for k, v in (logs or {}).items()
                               if k in ("loss", "accuracy", "val_accuracy"))
            evals = (f"; evaluation {self.eval_s:.0f} s ({n_test / self.eval_s:.0f} img/s)"
                     if n_test and self.eval_s > 0 else "")
            print(f"epoch {epoch + 1}/{cfg.epochs}: training {fit_s:.0f} s ({n_train / fit_s:.0f} img/s){evals}"
                  f"{', ' + scores if scores else ''}, checkpoint saved", file=sys.stderr, flush=True)

    return Checkpointer()


def _ticker(epochs: int, steps: int, n_train: int, interval: float = PROGRESS_INTERVAL_S):
    """A progress line every `interval` seconds from a timer thread (so a long first batch or a long evaluation
    is not silent either): epoch, batch, images/s so far in this epoch, loss, time left in the epoch."""
    import threading

    import tensorflow as tf

    class Ticker(tf.keras.callbacks.Callback):
        stop = threading.Event()  # set by on_train_end, and by train() when fit ends with an exception

        def on_train_begin(self, logs=None):
            self.where = {"epoch": 0, "batch": 0, "phase": "starting", "t0": time.perf_counter()}
            threading.Thread(target=self._loop, name="edgebench-train-progress", daemon=True).start()

        def on_epoch_begin(self, epoch, logs=None):
            self.where.update(epoch=epoch + 1, batch=0, phase="training", t0=time.perf_counter(), loss=None)

        def on_train_batch_end(self, batch, logs=None):
            self.where.update(batch=batch + 1, loss=(logs or {}).get("loss"))

        def on_test_begin(self, logs=None):
            self.where.update(phase="evaluating")

        def on_train_end(self, logs=None):
            self.stop.set()

        def _loop(self):
            while not self.stop.wait(interval):
                print(self.line(), file=sys.stderr, flush=True)

        def line(self) -> str:
            w = dict(self.where)
            since = f"{time.perf_counter() - w['t0']:.0f} s"
            if w["phase"] == "training" and not w["batch"]:
                return f"epoch {w['epoch']}/{epochs}: first batch ({since}; TensorFlow builds the training step)"
            if w["phase"] != "training":
                return f"epoch {w['epoch'] or 1}/{epochs}: {w['phase']} ({since})"
            spent = time.perf_counter() - w["t0"]
            ips = min(w["batch"] * n_train / steps, n_train) / spent
            left = (steps - w["batch"]) * spent / w["batch"]
            loss = f", loss {float(w['loss']):.4f}" if w.get("loss") is not None else ""
            return (f"epoch {w['epoch']}/{epochs}: batch {w['batch']}/{steps}, {ips:.0f} img/s{loss}, "
                    f"about {left:.0f} s left in this epoch")

    return Ticker()


def _seed(seed: Optional[int]) -> None:
    """What tf.keras.utils.set_random_seed does, minus Keras 2.12's seed generator, whose randint(1, 1e9)
    (a float bound) warned "non-integer arguments to randrange()" once per layer (376 in the tests)."""
    if seed is None:
        return
    import random

    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)


def _resumed_state(cfg: TrainConfig, out: Path, state_file: Path, ckpt: Any, manager: Any) -> Dict:
    """The training state: fresh, or the one in `out` (its checkpoint restored) when it was the same recipe."""
    state = {"config": asdict(cfg), "completed_epochs": 0, "history": [], "epoch_seconds": []}
    if state_file.exists() and manager.latest_checkpoint:
        prev = json.loads(state_file.read_text())
        if prev.get("config") != asdict(cfg):
            raise TrainConfigError(f"{out}: holds a run with another configuration; use a new --out folder "
                                   f"(theirs: {prev.get('config')}, yours: {asdict(cfg)})", path=out)
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        state = prev
        print(f"resuming {out} after epoch {state['completed_epochs']}/{cfg.epochs}", file=sys.stderr)
    return state


def train(cfg: TrainConfig, out_dir: str, data_source: Optional[str] = None, progress: bool = True) -> Dict:
    """Train `cfg.model` into `out_dir` (model.keras + train.json), resuming from its checkpoints."""
    cfg.validate()
    import tensorflow as tf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_file = out / TRAIN_STATE_FILE
    _seed(cfg.seed)
    ds = data_mod.load_cifar10(data_source, progress=progress)
    x_train, y_train = data_mod.subset(ds.x_train, ds.y_train, cfg.train_limit, seed=cfg.seed or 0)
    x_test, y_test = data_mod.subset(ds.x_test, ds.y_test, cfg.test_limit, seed=(cfg.seed or 0) + 1)
    steps = math.ceil(len(x_train) / cfg.batch_size)

    model = models.build(cfg.model)
    optimizer = _compile(model, cfg, steps)
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer)
    manager = tf.train.CheckpointManager(ckpt, str(out / CHECKPOINTS_DIRNAME), max_to_keep=2)

    state = _resumed_state(cfg, out, state_file, ckpt, manager)

    val = _dataset(x_test, y_test, 256, False, False, None) if cfg.eval_each_epoch else None

    quiet_terminal = not (progress and sys.stdout.isatty())  # not a terminal: our lines instead of Keras' bar
    callbacks = [_checkpointer(manager, state, state_file, cfg, len(x_train), len(x_test) if val is not None else 0)]
    if progress and quiet_terminal:
        every = float(os.environ.get(PROGRESS_ENV) or PROGRESS_INTERVAL_S)
        callbacks.append(_ticker(cfg.epochs, steps, len(x_train), interval=every))

    t_start = time.perf_counter()
    if state["completed_epochs"] < cfg.epochs:
        try:
            model.fit(
                _dataset(x_train, y_train, cfg.batch_size, True, cfg.augment, cfg.seed),
                epochs=cfg.epochs,
                initial_epoch=state["completed_epochs"],
                validation_data=val,
                callbacks=callbacks,
                verbose=0 if quiet_terminal else 1,
            )
        except KeyboardInterrupt:
            print(f"\ninterrupted: {state['completed_epochs']} epochs are saved in {out}; "
                  f"run the same command again to resume", file=sys.stderr)
            raise
        finally:
            for cb in callbacks:
                if hasattr(cb, "stop"):
                    cb.stop.set()
    top1 = evaluate_top1(model, x_test, y_test)

    model_path = out / "model.keras"
    tmp = out / f".tmp-{os.getpid()}.keras"
    model.save(tmp, include_optimizer=False)  # resume state lives in checkpoints/; this is for inference
    os.replace(tmp, model_path)
    meta = {
        "model": cfg.model,
        "model_file": model_path.name,
        "model_sha256": sha256_file(model_path),
        "complexity": models.count_flops(model),
        "eval_seconds": state.get("eval_seconds", []),
        "data": dict(ds.describe(), train_used=len(x_train), test_used=len(x_test)),
        "recipe": asdict(cfg),
        "history": state["history"],
        "epoch_seconds": state["epoch_seconds"],
        "test_top1": top1,
        "train_seconds": float(sum(state["epoch_seconds"])),
        "wall_seconds_this_invocation": time.perf_counter() - t_start,
        "versions": {"tensorflow": tf.__version__, "python": sys.version.split()[0]},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_json(out / "train.json", meta)
    return meta
