"""Suites: which backend x precision x threads x scenario runs to make (YAML, a default ships with the kit)."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from edgebench.bench.stoprule import StopRule

DEFAULT_SUITE = Path(__file__).resolve().parent.parent / "suites" / "default.yaml"
SCENARIO_KEYS = {
    "latency": {"batch_size", "min_iterations", "min_seconds", "max_iterations", "max_seconds",
                "warmup_iterations", "warmup_seconds"},
    "throughput": {"batch_sizes", "min_iterations", "min_seconds", "max_iterations", "max_seconds",
                   "warmup_iterations", "warmup_seconds"},
    "testset": {"batch_size", "repeats"},
}
SUITE_KEYS = {"name", "threads", "pin_threads", "test_images", "overhead_check", "scenarios", "runs"}
RUN_KEYS = {"backend", "precisions", "threads", "scenarios", "options"}


class SuiteError(ValueError):
    def __init__(self, source, reason: str):
        super().__init__(f"suite {source}: {reason}")


@dataclass
class Group:
    """One child process: a backend at one precision and thread count, running its scenarios."""

    backend: str
    precision: str
    threads: Optional[int]
    scenarios: Dict[str, Dict[str, Any]]
    options: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class Suite:
    name: str
    threads: List[int]
    pin_threads: bool
    test_images: Optional[int]
    overhead_check: bool
    groups: List[Group]
    raw: Dict[str, Any]


def auto_threads(cores: int) -> List[int]:
    return sorted({t for t in (1, 3, 6) if t <= cores} | {cores})


def rule_from(cfg: Dict[str, Any]) -> StopRule:
    keys = ("min_iterations", "min_seconds", "max_iterations", "max_seconds", "warmup_iterations", "warmup_seconds")
    return StopRule(**{k: cfg[k] for k in keys if k in cfg}).validate()


def _check_keys(where: str, got: Dict[str, Any], allowed, source) -> None:
    unknown = set(got) - set(allowed)
    if unknown:
        raise SuiteError(source, f"{where}: unknown keys {sorted(unknown)}; known: {sorted(allowed)}")


def parse(doc: Dict[str, Any], source="<dict>", cores: Optional[int] = None) -> Suite:
    from edgebench import runtimes

    if not isinstance(doc, dict):
        raise SuiteError(source, "top level must be a mapping")
    _check_keys("top level", doc, SUITE_KEYS, source)
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads_cfg = doc.get("threads", "auto")
    if threads_cfg == "auto":
        threads = auto_threads(cores)
    elif isinstance(threads_cfg, list) and all(isinstance(t, int) and t >= 1 for t in threads_cfg):
        threads = list(threads_cfg)
    else:
        raise SuiteError(source, f"threads must be 'auto' or a list of positive integers, not {threads_cfg!r}")
    scenarios = doc.get("scenarios") or {}
    for name, cfg in scenarios.items():
        if name not in SCENARIO_KEYS:
            raise SuiteError(source, f"unknown scenario {name!r}; known: {sorted(SCENARIO_KEYS)}")
        _check_keys(f"scenario {name}", cfg or {}, SCENARIO_KEYS[name], source)
        if name != "testset":
            try:
                rule_from(cfg or {})
            except (ValueError, TypeError) as exc:
                raise SuiteError(source, f"scenario {name}: {exc}") from exc
    if not doc.get("runs"):
        raise SuiteError(source, "no runs")
    groups: List[Group] = []
    for i, run in enumerate(doc["runs"]):
        _check_keys(f"run {i}", run, RUN_KEYS, source)
        backend = run.get("backend")
        try:
            cls = runtimes.get(backend)
        except KeyError as exc:
            raise SuiteError(source, f"run {i}: {exc.args[0]}") from None
        precisions = run.get("precisions") or ["fp32"]
        run_scenarios = run.get("scenarios") or list(scenarios)
        missing = [s for s in run_scenarios if s not in scenarios]
        if missing:
            raise SuiteError(source, f"run {i} ({backend}): scenarios {missing} are not configured in 'scenarios'")
        run_threads = run.get("threads", threads if cls.device == "cpu" else [None])
        for precision in precisions:
            for t in run_threads:
                groups.append(Group(backend, precision, t, {s: dict(scenarios[s] or {}) for s in run_scenarios},
                                    dict(run.get("options") or {})))
    return Suite(name=str(doc.get("name", Path(str(source)).stem)), threads=threads,
                 pin_threads=bool(doc.get("pin_threads", True)), test_images=doc.get("test_images"),
                 overhead_check=bool(doc.get("overhead_check", False)), groups=groups, raw=doc)


def load(path: Optional[str] = None, cores: Optional[int] = None) -> Suite:
    import yaml

    p = Path(path) if path else DEFAULT_SUITE
    try:
        doc = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise SuiteError(p, f"cannot read ({exc.strerror or exc})") from exc
    except yaml.YAMLError as exc:
        raise SuiteError(p, f"malformed YAML: {exc}") from exc
    return parse(doc, p, cores)
