"""Interleaved repeats (suite option `interleave: N`): the sweep runs N rounds over the groups (A B A B ...),
each round taking its share of the stop rule's minimums, and each row pools the samples of every round.
A machine that drifts during the sweep then shows up as rounds that differ (each round's median is kept in
the row's extra.rounds, and a warning says by how much), instead of hiding inside one group's samples."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from edgebench.bench import scenarios, stats
from edgebench.bench.suite import Group

#: rounds whose medians differ by more than this fraction make a warning
ROUND_DRIFT = 0.10


def share_out(group: Group, rounds: int) -> Group:
    """The group with each scenario's minimums (iterations, seconds, test-set repeats) shared out over rounds."""
    if rounds <= 1:
        return group
    out = {}
    for name, cfg in group.scenarios.items():
        cfg = dict(cfg)
        if name == "testset":
            cfg["repeats"] = max(1, -(-int(cfg.get("repeats", 3)) // rounds))
        else:
            rule = scenarios.rule_from(cfg)
            cfg["min_iterations"] = max(1, -(-rule.min_iterations // rounds))
            cfg["min_seconds"] = rule.min_seconds / rounds
            if cfg.get("max_iterations") is not None:
                cfg["max_iterations"] = max(cfg["min_iterations"], -(-int(cfg["max_iterations"]) // rounds))
        out[name] = cfg
    return Group(group.backend, group.precision, group.threads, out, dict(group.options))


def round_summary(row: Dict[str, Any]) -> Dict[str, Any]:
    if row["scenario"] == "testset":
        return {"median_ms": float(np.median(row["testset"]["seconds"])) * 1000.0, "ips": row["throughput_ips"]}
    return {"median_ms": row["latency_ms"]["median"], "ips": row["throughput_ips"]}


def merge(old: Dict[str, Any], new: Dict[str, Any], round_no: int) -> Dict[str, Any]:
    """Fold round `round_no`'s row into the row of the earlier rounds: raw samples pooled, statistics
    recomputed, each round's median kept."""
    if new["status"] != "ok" or old["status"] != "ok":
        keep = old if old["status"] == "ok" else new
        note = f"round {round_no}: {new['status']}: {new['reason']}" if new["status"] != "ok" else \
            f"round {round_no} measured, an earlier round did not"
        return dict(keep, warnings=list(keep.get("warnings") or []) + [note])
    merged = dict(old)
    extra = dict(old.get("extra") or {})
    per_round = list(extra.get("rounds") or [round_summary(old)])
    per_round.append(round_summary(new))
    extra["rounds"] = per_round
    extra["rounds_done"] = round_no
    if (new.get("extra") or {}).get("machine_load"):
        extra.setdefault("machine_load_rounds", []).append(new["extra"]["machine_load"])
    merged["extra"] = extra
    if old["scenario"] == "testset":
        secs = old["testset"]["seconds"] + new["testset"]["seconds"]
        images = old["testset"]["images"]
        avg = sum(secs) / len(secs)
        merged["testset"] = dict(old["testset"], repeats=len(secs), seconds=secs, avg_s=avg, max_s=max(secs),
                                 min_s=min(secs))
        merged["throughput_ips"] = images / avg if images else None
    else:
        raw = old["latency_ms"]["raw"] + new["latency_ms"]["raw"]
        merged["latency_ms"] = stats.summarize(raw)
        merged["throughput_ips"] = stats.images_per_second(old["batch_size"], raw)
    medians = [r["median_ms"] for r in per_round if r.get("median_ms")]
    both = (old.get("warnings") or []) + (new.get("warnings") or [])
    warnings = [w for w in both if not w.startswith("rounds differ")]
    if len(medians) > 1 and max(medians) > (1 + ROUND_DRIFT) * min(medians):
        warnings.append(f"rounds differ by {max(medians) / min(medians) - 1:.0%} (medians "
                        f"{', '.join(f'{m:.2f}' for m in medians)} ms): the machine drifted during the sweep")
    merged["warnings"] = list(dict.fromkeys(warnings))
    return merged


class RoundSink:
    """Where GroupRunner puts rows in round r > 1: each row is merged into the one already in the file."""

    def __init__(self, writer, round_no: int):
        self.writer, self.round_no = writer, round_no

    def add(self, row: Dict[str, Any]) -> None:
        rows = self.writer.document["rows"]
        for k, old in enumerate(rows):
            if old.get("id") == row["id"]:
                rows[k] = merge(old, row, self.round_no)
                self.writer.flush()
                return
        self.writer.add(row)
