"""One group (a backend at one precision and thread count, running its scenarios) in its own child process:
`run_group` is the child's body, `GroupRunner` starts it (bench.child) and turns its messages into rows
(bench.rows) as they arrive, so a crash keeps every row measured before it."""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from edgebench import results
from edgebench.bench import child, scenarios
from edgebench.bench.errors import BenchInputError
from edgebench.bench.rows import RowBuilder, describe, threads_label
from edgebench.bench.suite import Group
from edgebench.contracts.vocabulary import NUM_CLASSES
from edgebench.machine import load as machine

# --------------------------------------------------------------------------------------------
# inside the child process
# --------------------------------------------------------------------------------------------

def _accuracy(logits: np.ndarray, labels: np.ndarray, ref: Optional[np.ndarray]) -> Dict[str, Any]:
    pred = logits.argmax(1)
    out: Dict[str, Any] = {"top1": float(np.mean(pred == labels)), "images": int(len(labels)),
                           "reference_top1": None, "delta_top1": None, "max_abs_logit_diff": None,
                           "top1_agreement": None}
    if ref is not None:
        ref_top1 = float(np.mean(ref.argmax(1) == labels))
        out.update(reference_top1=ref_top1, delta_top1=out["top1"] - ref_top1,
                   max_abs_logit_diff=float(np.max(np.abs(logits.astype(np.float64) - ref))),
                   top1_agreement=float(np.mean(pred == ref.argmax(1))))
    return out


def _sampled(fn, images: int, gpu: bool = True):
    from edgebench.machine.telemetry import Sampler

    with Sampler(gpu=gpu) as sampler:
        value = fn()
    return value, sampler.summary(images)


def check_output_width(logits: np.ndarray, what: str) -> None:
    """The model must give one logit per CIFAR-10 class, or every accuracy figure is meaningless."""
    width = logits.shape[-1] if logits.ndim >= 2 else None
    if width != NUM_CLASSES:
        raise BenchInputError(f"{what}: the model gives outputs of shape {tuple(logits.shape[1:])}, but the "
                              f"CIFAR-10 test set has {NUM_CLASSES} classes (expected ({NUM_CLASSES},)); "
                              f"refusing to benchmark it")


def run_group(job: Dict[str, Any], send: Callable[..., None]) -> None:
    """Child body: load the backend once, then accuracy and each scenario; one message per row."""
    group = Group(**job["group"])
    child.set_thread_env(group.threads)
    affinity = child.pin(group.threads) if job["pin_threads"] else None
    from edgebench import runtimes

    data = np.load(job["data_file"])
    x, y = data["x"].astype(np.float32), data["y"]
    ref = np.load(job["reference_file"]) if job.get("reference_file") else None
    largest = max([1] + [b for _, b in scenarios.group_rows(group.scenarios)])
    options = dict(group.options)
    if job.get("engine_cache") and getattr(runtimes.get(group.backend), "uses_engine_cache", False):
        options.setdefault("engine_cache", job["engine_cache"])   # the run's cache, passed (not via os.environ)
    rt = runtimes.open(group.backend, job["artifact"], precision=group.precision, threads=group.threads,
                       batch_size=largest, **options)
    t0 = time.perf_counter()
    rt.load()
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    first = rt.infer(x[:1])
    cold = {"load_s": load_s, "first_inference_s": time.perf_counter() - t0}
    check_output_width(np.asarray(first), f"{group.backend} on {job['artifact']}")
    send("cold", cold_start=cold, affinity=affinity, versions=rt.versions())

    ctx = scenarios.ChildContext(rt=rt, x=x, on_gpu=rt.device == "gpu", job=job, sampled=_sampled)
    t0 = time.perf_counter()
    logits, ctx.accuracy_telemetry = _sampled(lambda: rt.infer_all(x, scenarios.accuracy_batch(group.scenarios)),
                                              len(x), ctx.on_gpu)
    ctx.pass_seconds.append(time.perf_counter() - t0)
    send("accuracy", accuracy=_accuracy(logits, y, ref))
    if job.get("save_logits"):
        np.save(job["save_logits"], logits)
    for name, cfg in group.scenarios.items():
        scenarios.get(name).run(ctx, cfg, send)
    rt.close()


# --------------------------------------------------------------------------------------------
# in the parent
# --------------------------------------------------------------------------------------------

class GroupRunner:
    """Starts the child for a group and turns its messages into result rows, written as they arrive."""

    def __init__(self, writer: results.ResultsWriter, builder: RowBuilder, timeout_s: float = 3600.0,
                 log: Callable[[str], None] = print):
        self.writer, self.builder = writer, builder
        self.timeout_s = timeout_s
        self.log = log

    def skip_rows(self, group: Group, status: str, reason: str, artifact=None) -> None:
        for row in self.builder.unmeasured(group, status, reason, artifact):
            self.writer.add(row)

    def run(self, group: Group, job: Dict[str, Any], artifact: Optional[Dict[str, Any]],
            sink=None) -> List[Dict[str, Any]]:
        """Measure `group`; returns its rows, each also given to `sink.add` (default: the results writer) as it
        arrives."""
        sink = sink or self.writer
        job = dict(job, group=group.to_dict())
        state: Dict[str, Any] = {"cold": None, "accuracy": None, "versions": {}, "affinity": None}
        done_rows = set()
        rows: List[Dict[str, Any]] = []
        before = machine.snapshot()
        with child.Child(run_group, job, name=f"edgebench-{group.backend}", timeout_s=self.timeout_s) as proc:
            for msg in proc.messages():
                kind = msg["kind"]
                if kind == "cold":
                    state.update(cold=msg["cold_start"], versions=msg["versions"], affinity=msg["affinity"])
                elif kind == "accuracy":
                    state["accuracy"] = msg["accuracy"]
                elif kind == "row":
                    row = self.builder.measured(group, msg, state, artifact, machine.since(before))
                    sink.add(row)
                    rows.append(row)
                    done_rows.add((msg["scenario"], msg["batch_size"]))
                    self.log(describe(row))
        error = proc.error
        expected = set(scenarios.group_rows(group.scenarios))
        if error is None and proc.death() and done_rows != expected:
            error = {"error": f"backend process died ({proc.death()})", "skipped": False}
        if error is not None:
            status = "skipped" if error.get("skipped") else "failed"
            for row in self.builder.unmeasured(group, status, error["error"], artifact, done_rows, state,
                                               error.get("traceback")):
                sink.add(row)
                rows.append(row)
            self.log(f"  {group.backend} {group.precision} threads={threads_label(group.threads)}: {status}: "
                     f"{error['error']}")
        return rows
