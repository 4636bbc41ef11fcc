"""The three scenarios, one class each: which batch sizes it runs (with its defaults), how it runs in the
benchmark child, and which row fields its message becomes in the parent.

- latency: one batch size (default 1), timed call by call under the stop rule;
- throughput: a list of batch sizes, each timed like latency;
- testset: full passes over the test images at one batch size (default 32), repeated (the seed study's measure).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from edgebench.bench import stats
from edgebench.bench.errors import UnknownScenarioError
from edgebench.bench.stoprule import StopRule, measure, warm_up

Send = Callable[..., None]


@dataclass
class ChildContext:
    """What a scenario sees inside the benchmark child: the loaded runtime and the test images."""

    rt: Any
    x: np.ndarray
    on_gpu: bool
    job: Dict[str, Any]
    pass_seconds: List[float] = field(default_factory=list)   # test-set passes done so far (accuracy = first)
    accuracy_telemetry: Dict[str, Any] = field(default_factory=dict)
    sampled: Optional[Callable[..., Tuple[Any, Dict[str, Any]]]] = None


def rule_from(cfg: Dict[str, Any]) -> StopRule:
    keys = ("min_iterations", "min_seconds", "max_iterations", "max_seconds", "warmup_iterations", "warmup_seconds")
    return StopRule(**{k: cfg[k] for k in keys if k in cfg}).validate()


class Scenario:
    name = ""
    default_batch = 1

    def batches(self, cfg: Dict[str, Any]) -> List[int]:
        return [int(cfg.get("batch_size", self.default_batch))]

    def run(self, ctx: ChildContext, cfg: Dict[str, Any], send: Send) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def fields(self, msg: Dict[str, Any], accuracy: Optional[Dict[str, Any]]) -> Tuple[Dict[str, Any], List[str]]:
        """Row fields from the child's message (incl. throughput_ips) and the warnings they carry."""
        lat = msg["latencies_ms"]
        summary = stats.summarize(lat)
        warnings = [str(summary["warning"])] if summary["warning"] else []
        return {"latency_ms": summary, "throughput_ips": stats.images_per_second(msg["batch_size"], lat)}, warnings


class _Timed(Scenario):
    """Latency and throughput: warm up, then time single calls under the stop rule, per batch size."""

    def run(self, ctx: ChildContext, cfg: Dict[str, Any], send: Send) -> None:
        rule = rule_from(cfg)
        for b in self.batches(cfg):
            xb = np.ascontiguousarray(np.resize(ctx.x, (b,) + ctx.x.shape[1:]))
            warm_up(lambda xb=xb: ctx.rt.infer(xb), rule)
            t_wall = time.perf_counter()
            lat, tel = ctx.sampled(lambda xb=xb: measure(lambda: ctx.rt.infer(xb), rule), b, ctx.on_gpu)
            t_wall = time.perf_counter() - t_wall
            tel["energy_j_per_image"] = (tel["power_w_mean"] * sum(lat) / 1000.0 / (b * len(lat))
                                         if tel.get("power_w_mean") else None)
            extra: Dict[str, Any] = {"cut_short": rule.cut_short(len(lat), t_wall)}
            self.extra(ctx, b, xb, lat, extra)
            send("row", scenario=self.name, batch_size=b, latencies_ms=lat, telemetry=tel, extra=extra)

    def extra(self, ctx: ChildContext, b: int, xb: np.ndarray, lat: List[float], extra: Dict[str, Any]) -> None:
        pass


class Latency(_Timed):
    name = "latency"
    default_batch = 1


class Throughput(_Timed):
    name = "throughput"

    def batches(self, cfg: Dict[str, Any]) -> List[int]:
        return [int(b) for b in cfg["batch_sizes"]]

    def extra(self, ctx: ChildContext, b: int, xb: np.ndarray, lat: List[float], extra: Dict[str, Any]) -> None:
        if ctx.job.get("overhead_check") and b == ctx.job.get("overhead_batch"):
            extra["harness_overhead"] = bare_loop_overhead(ctx.rt, xb, lat)


class Testset(Scenario):
    name = "testset"
    default_batch = 32
    default_repeats = 3

    def run(self, ctx: ChildContext, cfg: Dict[str, Any], send: Send) -> None:
        repeats = int(cfg.get("repeats", self.default_repeats))
        batch = self.batches(cfg)[0]

        def passes():
            # the accuracy pass was the first repeat at this batch size
            for _ in range(repeats - len(ctx.pass_seconds)):
                t = time.perf_counter()
                ctx.rt.infer_all(ctx.x, batch)
                ctx.pass_seconds.append(time.perf_counter() - t)

        _, tel = ctx.sampled(passes, len(ctx.x) * max(1, repeats - 1), ctx.on_gpu)
        send("row", scenario=self.name, batch_size=batch, pass_seconds=list(ctx.pass_seconds),
             telemetry=tel if repeats > 1 else ctx.accuracy_telemetry or tel)

    def fields(self, msg: Dict[str, Any], accuracy: Optional[Dict[str, Any]]) -> Tuple[Dict[str, Any], List[str]]:
        secs = msg["pass_seconds"]
        images = accuracy["images"] if accuracy else None
        avg = sum(secs) / len(secs)
        testset = {"repeats": len(secs), "images": images, "seconds": secs, "avg_s": avg, "max_s": max(secs),
                   "min_s": min(secs)}
        s = stats.summarize([v * 1000 for v in secs])
        warnings = [f"test-set passes: {s['warning']}"] if s["warning"] else []
        return {"testset": testset, "throughput_ips": images / avg if images else None}, warnings


SCENARIOS: Dict[str, Scenario] = {s.name: s for s in (Latency(), Throughput(), Testset())}


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UnknownScenarioError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def batches(scenario: str, cfg: Dict[str, Any]) -> List[int]:
    """Batch sizes `scenario` runs under `cfg` (its defaults applied)."""
    return get(scenario).batches(cfg or {})


def group_rows(scenarios: Dict[str, Dict[str, Any]]) -> List[Tuple[str, int]]:
    """(scenario, batch size) of every row a group's scenarios produce, in run order."""
    return [(s, b) for s, cfg in scenarios.items() for b in batches(s, cfg)]


def accuracy_batch(scenarios: Dict[str, Dict[str, Any]]) -> int:
    """The accuracy pass doubles as the first test-set pass, so it runs at the test set's batch size."""
    return batches("testset", scenarios["testset"])[0] if "testset" in scenarios else 64


def bare_loop_overhead(rt, xb: np.ndarray, harness_ms: List[float], blocks: int = 4) -> Dict[str, float]:
    """Harness cost: the harness's own loop (a clock read per call, the telemetry thread running) against
    a bare loop of the same calls, interleaved in blocks so that drifts of the machine hit both alike."""
    from edgebench.machine.telemetry import Sampler

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
