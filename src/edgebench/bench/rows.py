"""Row assembly in the parent: a scenario's message from the child becomes a results row (statistics,
floor, machine load, warnings); what a group did not measure becomes rows with the reason."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Set, Tuple

from edgebench import results
from edgebench.bench import scenarios

THREAD_SLACK = 1.25  # measured CPU% may exceed threads x 100% by this factor before we call it ignored


def threads_label(threads: Optional[int]) -> str:
    return "default" if threads is None else str(threads)


class RowBuilder:
    """Knows the run's environment and model; turns child messages into rows."""

    def __init__(self, env: Dict[str, Any], model: Dict[str, Any], floors: Optional[Dict[str, Any]] = None,
                 marks: Optional[List[str]] = None):
        self.env, self.model = env, model
        self.floors = floors            # measured peaks (bench.floor.calibrate), None: flag-based estimate
        self.marks = list(marks or [])  # warnings every row carries (e.g. manifest check overridden)

    def measured(self, group, msg: Dict[str, Any], state: Dict[str, Any], artifact,
                 machine_load: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        from edgebench import runtimes
        from edgebench.bench.floor import floor_for
        from edgebench.peaks import arithmetic

        scenario, b = msg["scenario"], msg["batch_size"]
        tel = msg.get("telemetry") or {}
        fields, warnings = scenarios.get(scenario).fields(msg, state["accuracy"])
        warnings = list(self.marks) + warnings
        fields.update(artifact=artifact, cold_start=state["cold"], telemetry=tel, accuracy=state["accuracy"])
        extra = dict(msg.get("extra") or {})
        if extra.get("cut_short"):
            warnings.append(extra["cut_short"])
        extra["affinity"] = state["affinity"]
        extra["backend_versions"] = state["versions"]
        if machine_load is not None:
            extra["machine_load"] = machine_load
            if machine_load.get("busy"):
                warnings.append(machine_load["busy"])
        ips = fields["throughput_ips"]
        flops = self.model.get("flops_per_image")
        fields["gflops_achieved"] = flops * ips / 1e9 if flops and ips else None
        device = runtimes.get(group.backend).device
        versions = state["versions"] if isinstance(state["versions"], dict) else {}
        fields["floor"] = floor_for(self.env, device, arithmetic(group.precision, versions.get("settings")),
                                    group.threads, flops, self.model.get("params"),
                                    b, ips, measured=self.floors)
        cpu = tel.get("cpu_percent_mean")
        if device == "cpu" and group.threads and cpu is not None and cpu > group.threads * 100 * THREAD_SLACK:
            warnings.append(f"threads={group.threads} not honoured: the process used {cpu:.0f}% CPU")
        if state["accuracy"] is None:
            warnings.append("no accuracy measured for this row")
        row = results.new_row(group.backend, group.precision, group.threads, b, scenario, compute=device, **fields)
        row["warnings"] = warnings
        row["extra"] = extra
        return row

    def unmeasured(self, group, status: str, reason: str, artifact=None, done: Optional[Set[Tuple[str, int]]] = None,
                   state: Optional[Dict[str, Any]] = None, traceback: Optional[str] = None) -> List[Dict[str, Any]]:
        """Rows with `status` and `reason` for every (scenario, batch) of `group` not in `done`."""
        state = state or {}
        out = []
        for scenario, b in scenarios.group_rows(group.scenarios):
            if done and (scenario, b) in done:
                continue
            row = results.new_row(group.backend, group.precision, group.threads, b, scenario, status=status,
                                  reason=reason, artifact=artifact, cold_start=state.get("cold"),
                                  accuracy=state.get("accuracy"))
            row["warnings"] = list(self.marks)
            if traceback:
                row["extra"] = {"traceback": traceback}
            out.append(row)
        return out


def group_ids(group) -> Set[str]:
    """Row ids of every row a group produces."""
    return {results.row_id(group.backend, group.precision, group.threads, b, s)
            for s, b in scenarios.group_rows(group.scenarios)}


def describe(row: Dict[str, Any]) -> str:
    """One progress line for a measured row."""
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
    ips = row.get("throughput_ips")
    ips_s = f"{ips:.0f} img/s" if ips else "? img/s"
    busy = " [busy machine]" if (row.get("extra") or {}).get("machine_load", {}).get("busy") else ""
    return (f"  {row['backend']:15s} {row['precision']:4s} threads={threads_label(row['threads']):7s} "
            f"{row['scenario']:10s} b={row['batch_size']:<4d} {what}, {ips_s}, {top1}{cpu_s}{busy}")
