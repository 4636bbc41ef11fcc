"""Runs a suite: one child process per backend x precision x threads group, rows streamed back.

Why child processes: thread settings of TensorFlow and ONNX Runtime only take effect before the
framework starts, CPU pinning is per process, and a backend that crashes (a segfault in a native
library) must not take the harness or the rows already measured down with it.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from edgebench import results
from edgebench.bench import stats
from edgebench.bench.suite import Group, Suite, rule_from
from edgebench.bench.stoprule import measure, warm_up

THREAD_SLACK = 1.25  # measured CPU% may exceed threads x 100% by this factor before we call it ignored


# --------------------------------------------------------------------------------------------
# inside the child process
# --------------------------------------------------------------------------------------------

def _pin(threads: Optional[int]) -> Optional[List[int]]:
    if threads is None or not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cores)
    return cores


def _set_thread_env(threads: Optional[int]) -> None:
    """Before any framework import: OpenMP / MKL / Eigen pools read these at start-up."""
    if threads is not None:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
            os.environ[var] = str(threads)
        os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
    from edgebench.bench.telemetry import Sampler

    with Sampler(gpu=gpu) as sampler:
        value = fn()
    return value, sampler.summary(images)


def _die_with_parent() -> None:
    """Linux: the kernel sends this child SIGKILL when the harness dies, so no orphan keeps a core busy."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
        except (OSError, AttributeError):
            pass


def run_group(job: Dict[str, Any], conn) -> None:
    """Child entry point: load the backend once, then accuracy and each scenario; one message per row."""
    _die_with_parent()
    group = Group(**job["group"])
    _set_thread_env(group.threads)
    affinity = _pin(group.threads) if job["pin_threads"] else None
    from edgebench import runtimes

    def send(kind, **payload):
        conn.send(dict(payload, kind=kind))  # synchronous: a crash right after cannot lose it

    data = np.load(job["data_file"])
    x, y = data["x"].astype(np.float32), data["y"]
    ref = np.load(job["reference_file"]) if job.get("reference_file") else None
    rt = runtimes.open(group.backend, job["artifact"], precision=group.precision, threads=group.threads,
                       batch_size=max([1] + [b for s, cfg in group.scenarios.items()
                                                  for b in _scenario_batches(s, cfg)]), **group.options)
    t0 = time.perf_counter()
    rt.load()
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rt.infer(x[:1])
    cold = {"load_s": load_s, "first_inference_s": time.perf_counter() - t0}
    send("cold", cold_start=cold, affinity=affinity, versions=rt.versions())

    testset_cfg = group.scenarios.get("testset")
    acc_batch = int(testset_cfg.get("batch_size", 32)) if testset_cfg else 64
    pass_seconds: List[float] = []
    t0 = time.perf_counter()
    on_gpu = rt.device == "gpu"
    logits, tel = _sampled(lambda: rt.infer_all(x, acc_batch), len(x), on_gpu)
    pass_seconds.append(time.perf_counter() - t0)
    accuracy = _accuracy(logits, y, ref)
    send("accuracy", accuracy=accuracy)
    if job.get("save_logits"):
        np.save(job["save_logits"], logits)

    for scenario, cfg in group.scenarios.items():
        if scenario == "testset":
            repeats = int(cfg.get("repeats", 3))
            batch = int(cfg.get("batch_size", 32))

            def passes():
                # the accuracy pass above was the first repeat at this batch size
                for _ in range(repeats - len(pass_seconds)):
                    t = time.perf_counter()
                    rt.infer_all(x, batch)
                    pass_seconds.append(time.perf_counter() - t)

            _, tel2 = _sampled(passes, len(x) * max(1, repeats - 1), on_gpu)
            send("row", scenario="testset", batch_size=batch, pass_seconds=list(pass_seconds),
                 telemetry=tel2 if repeats > 1 else tel)
        else:
            sizes = [int(cfg.get("batch_size", 1))] if scenario == "latency" else [int(b) for b in cfg["batch_sizes"]]
            rule = rule_from(cfg)
            for b in sizes:
                xb = np.ascontiguousarray(np.resize(x, (b,) + x.shape[1:]))
                warm_up(lambda: rt.infer(xb), rule)
                t_wall = time.perf_counter()
                lat, tel_b = _sampled(lambda: measure(lambda: rt.infer(xb), rule), b, on_gpu)
                t_wall = time.perf_counter() - t_wall
                tel_b["energy_j_per_image"] = (tel_b["power_w_mean"] * sum(lat) / 1000.0 / (b * len(lat))
                                               if tel_b.get("power_w_mean") else None)
                extra: Dict[str, Any] = {"cut_short": rule.cut_short(len(lat), t_wall)}
                if job.get("overhead_check") and scenario == "throughput" and b == job["overhead_batch"]:
                    extra["harness_overhead"] = _bare_loop_overhead(rt, xb, lat)
                send("row", scenario=scenario, batch_size=b, latencies_ms=lat, telemetry=tel_b, extra=extra)
    rt.close()
    send("done")


def _bare_loop_overhead(rt, xb: np.ndarray, harness_ms: List[float], blocks: int = 4) -> Dict[str, float]:
    """Harness cost: the harness's own loop (a clock read per call, the telemetry thread running) against
    a bare loop of the same calls, interleaved in blocks so that drifts of the machine hit both alike."""
    from edgebench.bench.telemetry import Sampler

    from edgebench.bench.stoprule import StopRule

    per_block = max(5, len(harness_ms) // blocks)
    rule = StopRule(min_iterations=per_block, min_seconds=0.0, max_iterations=per_block)
    harness_s = bare_s = 0.0
    for _ in range(blocks):
        t0 = time.perf_counter()
        with Sampler():
            measure(lambda: rt.infer(xb), rule)  # the harness's own timed loop
        harness_s += time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(per_block):
            rt.infer(xb)
        bare_s += time.perf_counter() - t0
    return {"iterations": per_block * blocks, "bare_loop_s": bare_s, "harness_s": harness_s,
            "overhead": harness_s / bare_s - 1.0}


def _child_main(job: Dict[str, Any], conn) -> None:
    try:
        run_group(job, conn)
    except BaseException as exc:  # report, then die: the parent turns it into a failed row
        from edgebench.runtimes.base import RuntimeUnavailable

        conn.send({"kind": "error", "skipped": isinstance(exc, RuntimeUnavailable),
                   "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-4000:]})
        sys.exit(1)


# --------------------------------------------------------------------------------------------
# in the parent
# --------------------------------------------------------------------------------------------

class GroupRunner:
    """Starts the child for a group and turns its messages into result rows."""

    def __init__(self, writer: results.ResultsWriter, suite: Suite, env: Dict[str, Any], model: Dict[str, Any],
                 timeout_s: float = 3600.0, log=print):
        self.writer, self.suite, self.env, self.model = writer, suite, env, model
        self.timeout_s = timeout_s
        self.log = log

    def skip_rows(self, group: Group, status: str, reason: str, artifact=None) -> None:
        for scenario, cfg in group.scenarios.items():
            for b in _scenario_batches(scenario, cfg):
                self.writer.add(results.new_row(group.backend, group.precision, group.threads, b, scenario,
                                                status=status, reason=reason, artifact=artifact))

    def run(self, group: Group, job: Dict[str, Any], artifact: Optional[Dict[str, Any]]) -> None:
        ctx = mp.get_context("spawn")
        reader, writer = ctx.Pipe(duplex=False)
        job = dict(job, group=group.to_dict())
        proc = ctx.Process(target=_child_main, args=(job, writer), name=f"edgebench-{group.backend}")
        proc.start()
        writer.close()  # the child holds the only writer: its death ends the stream (EOFError)
        state: Dict[str, Any] = {"cold": None, "accuracy": None, "versions": {}, "affinity": None}
        expected = {(s, b) for s, cfg in group.scenarios.items() for b in _scenario_batches(s, cfg)}
        done_rows = set()
        error = None
        deadline = time.monotonic() + self.timeout_s
        try:
            while True:
                if not reader.poll(1.0):
                    if time.monotonic() > deadline:
                        error = {"error": f"timed out after {self.timeout_s:.0f} s", "skipped": False}
                        break
                    continue
                try:
                    msg = reader.recv()
                except EOFError:  # the child is gone; what it sent before is already handled
                    break
                kind = msg["kind"]
                if kind == "cold":
                    state.update(cold=msg["cold_start"], versions=msg["versions"], affinity=msg["affinity"])
                elif kind == "accuracy":
                    state["accuracy"] = msg["accuracy"]
                elif kind == "row":
                    row = self._row(group, msg, state, artifact)
                    self.writer.add(row)
                    done_rows.add((msg["scenario"], msg["batch_size"]))
                    self.log(_describe(row))
                elif kind == "error":
                    error = msg
                    break
                elif kind == "done":
                    break
        except BaseException:  # Ctrl-C or a harness error: stop the child now, keep what is written
            proc.kill()
            proc.join()
            raise
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
            proc.join()
        if error is None and proc.exitcode not in (0, None) and done_rows != expected:
            sig = -proc.exitcode if proc.exitcode < 0 else None
            error = {"error": f"backend process died ({'signal %d' % sig if sig else 'exit %d' % proc.exitcode})",
                     "skipped": False}
        if error is not None:
            status = "skipped" if error.get("skipped") else "failed"
            for scenario, cfg in group.scenarios.items():
                for b in _scenario_batches(scenario, cfg):
                    if (scenario, b) not in done_rows:
                        row = results.new_row(group.backend, group.precision, group.threads, b, scenario,
                                              status=status, reason=error["error"], artifact=artifact,
                                              cold_start=state["cold"], accuracy=state["accuracy"])
                        if error.get("traceback"):
                            row["extra"] = {"traceback": error["traceback"]}
                        self.writer.add(row)
            self.log(f"  {group.backend} {group.precision} threads={group.threads}: {status}: {error['error']}")

    def _row(self, group: Group, msg: Dict[str, Any], state: Dict[str, Any], artifact) -> Dict[str, Any]:
        from edgebench import runtimes
        from edgebench.bench.floor import floor_for

        scenario, b = msg["scenario"], msg["batch_size"]
        tel = msg.get("telemetry") or {}
        warnings: List[str] = []
        fields: Dict[str, Any] = {"artifact": artifact, "cold_start": state["cold"], "telemetry": tel,
                                  "accuracy": state["accuracy"]}
        if scenario == "testset":
            secs = msg["pass_seconds"]
            images = state["accuracy"]["images"] if state["accuracy"] else None
            fields["testset"] = {"repeats": len(secs), "images": images, "seconds": secs, "avg_s": sum(secs) / len(secs),
                                 "max_s": max(secs), "min_s": min(secs)}
            ips = images / fields["testset"]["avg_s"] if images else None
            s = stats.summarize([v * 1000 for v in secs])
            if s["warning"]:
                warnings.append(f"test-set passes: {s['warning']}")
        else:
            lat = msg["latencies_ms"]
            fields["latency_ms"] = stats.summarize(lat)
            ips = stats.images_per_second(b, lat)
            if fields["latency_ms"]["warning"]:
                warnings.append(str(fields["latency_ms"]["warning"]))
        extra = dict(msg.get("extra") or {})
        if extra.get("cut_short"):
            warnings.append(extra["cut_short"])
        extra["affinity"] = state["affinity"]
        extra["backend_versions"] = state["versions"]
        fields["throughput_ips"] = ips
        flops = self.model.get("flops_per_image")
        fields["gflops_achieved"] = flops * ips / 1e9 if flops and ips else None
        device = runtimes.get(group.backend).device
        fields["floor"] = floor_for(self.env, device, group.precision, group.threads, flops, self.model.get("params"),
                                    b, ips)
        cpu = tel.get("cpu_percent_mean")
        if device == "cpu" and group.threads and cpu is not None and cpu > group.threads * 100 * THREAD_SLACK:
            warnings.append(f"threads={group.threads} not honoured: the process used {cpu:.0f}% CPU")
        if state["accuracy"] is None:
            warnings.append("no accuracy measured for this row")
        row = results.new_row(group.backend, group.precision, group.threads, b, scenario, compute=device, **fields)
        row["warnings"] = warnings
        row["extra"] = extra
        return row


def _scenario_batches(scenario: str, cfg: Dict[str, Any]) -> List[int]:
    if scenario == "throughput":
        return [int(b) for b in cfg["batch_sizes"]]
    return [int(cfg.get("batch_size", 1 if scenario == "latency" else 32))]


def _describe(row: Dict[str, Any]) -> str:
    acc = row.get("accuracy") or {}
    top1 = f"top-1 {acc['top1']:.4f}" if acc.get("top1") is not None else "top-1 ?"
    if row["scenario"] == "testset":
        t = row["testset"]
        what = f"test set avg {t['avg_s']:.2f} s (min {t['min_s']:.2f}, max {t['max_s']:.2f})"
    else:
        lat = row["latency_ms"]
        what = f"p50 {lat['median']:.2f} ms p99 {lat['p99']:.2f} ms"
    cpu = (row.get("telemetry") or {}).get("cpu_percent_mean")
    cpu_s = f" cpu {cpu:.0f}%" if cpu is not None else ""
    return (f"  {row['backend']:15s} {row['precision']:4s} t={str(row['threads']):4s} {row['scenario']:10s} "
            f"b={row['batch_size']:<4d} {what}, {row['throughput_ips']:.0f} img/s, {top1}{cpu_s}")
