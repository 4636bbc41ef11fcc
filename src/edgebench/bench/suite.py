"""Suites: which backend x precision x threads x scenario runs to make (YAML, a default ships with the kit).

The whole document is validated before anything runs: one SuiteError lists every problem with its key path
(`runs[2].threads[0]: must be a positive integer, not 0`), so a mistake never becomes a crashed or a
silently meaningless row.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from edgebench.contracts.vocabulary import PRECISIONS
from edgebench.errors import EdgebenchError

DEFAULT_SUITE = Path(__file__).resolve().parent.parent / "suites" / "default.yaml"
STOP_KEYS = {"min_iterations", "min_seconds", "max_iterations", "max_seconds", "warmup_iterations", "warmup_seconds"}
SCENARIO_KEYS = {
    "latency": {"batch_size"} | STOP_KEYS,
    "throughput": {"batch_sizes"} | STOP_KEYS,
    "testset": {"batch_size", "repeats"},
}
SUITE_KEYS = {"name", "threads", "pin_threads", "test_images", "overhead_check", "interleave", "scenarios", "runs"}
RUN_KEYS = {"backend", "precisions", "threads", "scenarios", "options"}
#: every integer key: (lowest, highest) allowed. The upper bounds stop a typo (1e30 repeats) from running for
#: 6.9e25 hours or writing a row labelled b=1e30; they are far above anything a benchmark needs.
INT_KEYS = {"batch_size": (1, 65536), "repeats": (1, 10000), "min_iterations": (1, 10_000_000),
            "max_iterations": (1, 100_000_000), "warmup_iterations": (0, 1_000_000)}
SECONDS_KEYS = ("min_seconds", "max_seconds", "warmup_seconds")
MAX_SECONDS = 7 * 24 * 3600.0   # a week: the largest time any stop rule may ask for
MAX_THREADS = 1024
MAX_TEST_IMAGES = 10_000_000
MAX_INTERLEAVE = 1000


class SuiteError(EdgebenchError, ValueError):
    def __init__(self, source, reason: str):
        self.source = str(source)
        self.problems = [reason]
        super().__init__(f"suite {source}: {reason}")


class SuiteProblems(SuiteError):
    """Every problem of a suite at once, each with its key path."""

    def __init__(self, source, problems: List[str]):
        n = len(problems)
        super().__init__(source, f"{n} problem{'s' if n > 1 else ''}:\n  " + "\n  ".join(problems))
        self.problems = list(problems)


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

    @property
    def key(self):
        return (self.backend, self.precision, self.threads)


@dataclass
class Suite:
    name: str
    threads: List[int]
    pin_threads: bool
    test_images: Optional[int]
    overhead_check: bool
    groups: List[Group]
    raw: Dict[str, Any]
    interleave: int = 1   # rounds over the groups (A B A B): >1 spreads each row's samples over the sweep


def auto_threads(cores: int) -> List[int]:
    return sorted({t for t in (1, 3, 6) if t <= cores} | {cores})


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class _Checker:
    def __init__(self) -> None:
        self.problems: List[str] = []

    def add(self, path: str, msg: str) -> None:
        self.problems.append(f"{path}: {msg}")

    def keys(self, path: str, got: Any, allowed) -> bool:
        if not isinstance(got, dict):
            self.add(path, f"must be a mapping, not {type(got).__name__} {got!r}")
            return False
        for k in sorted(set(got) - set(allowed), key=str):
            self.add(f"{path}.{k}", f"unknown key; known: {', '.join(sorted(allowed))}")
        return True

    def int_at_least(self, path: str, v: Any, low: int, high: int) -> None:
        if not _is_int(v) or not low <= v <= high:
            self.add(path, f"must be an integer in [{low}, {high}], not {v!r}")

    def threads(self, path: str, v: Any, allow_auto: bool) -> None:
        if allow_auto and v == "auto":
            return
        want = "'auto' or a list of positive integers" if allow_auto else "a list of positive integers"
        if not isinstance(v, list) or not v:
            hint = f" (write [{v}])" if _is_int(v) and v >= 1 else ""
            self.add(path, f"must be {want}, not {v!r}{hint}")
            return
        for i, t in enumerate(v):
            if not _is_int(t) or not 1 <= t <= MAX_THREADS:
                self.add(f"{path}[{i}]", f"must be an integer in [1, {MAX_THREADS}], not {t!r}")

    def scenario(self, name: str, cfg: Any) -> None:
        path = f"scenarios.{name}"
        if cfg is None:
            cfg = {}
        if not self.keys(path, cfg, SCENARIO_KEYS[name]):
            return
        for k, (low, high) in INT_KEYS.items():
            if k in cfg and not (k == "max_iterations" and cfg[k] is None):  # null: no iteration cap
                self.int_at_least(f"{path}.{k}", cfg[k], low, high)
        for k in SECONDS_KEYS:
            if k not in cfg or (cfg[k] is None and k == "max_seconds"):  # max_seconds: null = no time cap
                continue
            if not _is_number(cfg[k]) or not 0 <= cfg[k] <= MAX_SECONDS:
                self.add(f"{path}.{k}", f"must be a number of seconds in [0, {MAX_SECONDS:g}], not {cfg[k]!r}")
        if name == "throughput":
            b = cfg.get("batch_sizes")
            if not isinstance(b, list) or not b:
                self.add(f"{path}.batch_sizes", f"must be a non-empty list of integers >= 1, not {b!r}")
            else:
                for i, v in enumerate(b):
                    self.int_at_least(f"{path}.batch_sizes[{i}]", v, *INT_KEYS["batch_size"])
        lo, hi = cfg.get("min_iterations"), cfg.get("max_iterations")
        if _is_int(lo) and _is_int(hi) and hi < lo:
            self.add(f"{path}.max_iterations", f"{hi} is below min_iterations {lo}")


def _check(doc: Any) -> List[str]:
    from edgebench import runtimes

    c = _Checker()
    if not c.keys("(top level)", doc, SUITE_KEYS):
        return c.problems
    c.threads("threads", doc.get("threads", "auto"), allow_auto=True)
    for k in ("pin_threads", "overhead_check"):
        if k in doc and not isinstance(doc[k], bool):
            c.add(k, f"must be true or false, not {doc[k]!r}")
    if doc.get("test_images") is not None:
        c.int_at_least("test_images", doc["test_images"], 1, MAX_TEST_IMAGES)
    if "interleave" in doc:
        c.int_at_least("interleave", doc["interleave"], 1, MAX_INTERLEAVE)
    if "name" in doc and not isinstance(doc["name"], (str, int, float)):
        c.add("name", f"must be text, not {doc['name']!r}")
    scen = doc.get("scenarios") or {}
    configured = set()
    if c.keys("scenarios", scen, SCENARIO_KEYS):
        for name, cfg in scen.items():
            if name in SCENARIO_KEYS:
                configured.add(name)
                c.scenario(name, cfg)
    runs = doc.get("runs")
    if not isinstance(runs, list) or not runs:
        c.add("runs", f"must be a non-empty list of runs, not {runs!r}")
        return c.problems
    for i, run in enumerate(runs):
        path = f"runs[{i}]"
        if not c.keys(path, run, RUN_KEYS):
            continue
        backend = run.get("backend")
        cls = None
        try:
            cls = runtimes.get(backend) if isinstance(backend, str) else None
            if cls is None:
                c.add(f"{path}.backend", f"must name a backend, not {backend!r}")
        except KeyError as exc:
            c.add(f"{path}.backend", str(exc.args[0]))
        precisions = run.get("precisions", ["fp32"])
        if not isinstance(precisions, list) or not precisions:
            c.add(f"{path}.precisions", f"must be a non-empty list, not {precisions!r}")
        else:
            for j, p in enumerate(precisions):
                if not isinstance(p, str) or p not in PRECISIONS:
                    c.add(f"{path}.precisions[{j}]", f"unknown precision {p!r}; known: {', '.join(PRECISIONS)}")
                elif cls is not None and p not in cls.precisions:
                    c.add(f"{path}.precisions[{j}]", f"{backend} has no {p} path (it offers: "
                                                     f"{', '.join(cls.precisions)})")
        if "threads" in run:
            c.threads(f"{path}.threads", run["threads"], allow_auto=False)
        rs = run.get("scenarios")
        if rs is not None:
            if not isinstance(rs, list) or not rs:
                c.add(f"{path}.scenarios", f"must be a non-empty list of scenario names, not {rs!r}")
            else:
                for j, s in enumerate(rs):
                    if not isinstance(s, str) or s not in configured:
                        c.add(f"{path}.scenarios[{j}]", f"{s!r} is not configured under 'scenarios' "
                                                        f"(configured: {', '.join(sorted(configured)) or 'none'})")
        elif not configured:
            c.add(f"{path}.scenarios", "no scenarios: configure some under 'scenarios'")
        if "options" in run and not isinstance(run["options"], dict):
            c.add(f"{path}.options", f"must be a mapping, not {run['options']!r}")
    return c.problems


def parse(doc: Dict[str, Any], source="<dict>", cores: Optional[int] = None) -> Suite:
    from edgebench import runtimes

    problems = _check(doc)
    if problems:
        raise SuiteProblems(source, problems)
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads_cfg = doc.get("threads", "auto")
    threads = auto_threads(cores) if threads_cfg == "auto" else list(threads_cfg)
    scenarios = {k: dict(v or {}) for k, v in (doc.get("scenarios") or {}).items()}
    groups: List[Group] = []
    for run in doc["runs"]:
        cls = runtimes.get(run["backend"])
        run_scenarios = run.get("scenarios") or list(scenarios)
        run_threads = run.get("threads", threads if cls.device == "cpu" else [None])
        for precision in run.get("precisions", ["fp32"]):
            for t in run_threads:
                groups.append(Group(run["backend"], precision, t, {s: dict(scenarios[s]) for s in run_scenarios},
                                    dict(run.get("options") or {})))
    return Suite(name=str(doc.get("name", Path(str(source)).stem)), threads=threads,
                 pin_threads=bool(doc.get("pin_threads", True)), test_images=doc.get("test_images"),
                 overhead_check=bool(doc.get("overhead_check", False)), groups=groups, raw=doc,
                 interleave=int(doc.get("interleave", 1)))


def load(path: Optional[str] = None, cores: Optional[int] = None) -> Suite:
    import yaml

    from edgebench.contracts.schema import load_yaml, yaml_problem

    p = Path(path) if path else DEFAULT_SUITE
    try:
        doc = load_yaml(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(p, f"cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise SuiteError(p, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise SuiteError(p, f"malformed YAML: {yaml_problem(exc)}") from None
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. a YAML date out of range
        raise SuiteError(p, f"malformed YAML: {type(exc).__name__}: {exc}") from None
    return parse(doc, p, cores)
