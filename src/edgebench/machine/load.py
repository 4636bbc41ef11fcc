"""How busy the machine is around a measurement: load average, CPU time spent by other processes, clock.

A run's own CV says nothing about a neighbour that stole a core for the whole run (two runs a minute apart
differed by 20-28% on a 2-core machine while each run's CV was 1-3%). So the harness records, before each
group and over each row, the load average, the CPU seconds used by processes other than the harness and its
children (all CPU time from /proc/stat minus ours, from psutil), and the current CPU clock where readable;
a row measured while others used more than BUSY_OTHER_CORES cores on average is marked busy.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

#: others' average CPU use (in cores) above which a row is marked as measured on a busy machine
BUSY_OTHER_CORES = 0.25


def _busy_seconds() -> Optional[float]:
    """CPU seconds all processes have spent busy since boot (the /proc/stat 'cpu' line, minus idle/iowait)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()
        ticks = [int(v) for v in fields[1:]]
    except (OSError, ValueError, IndexError):
        return None
    busy = sum(ticks[:3]) + sum(ticks[5:8])  # user nice system + irq softirq steal
    return busy / float(os.sysconf("SC_CLK_TCK"))


def _own_seconds() -> Optional[float]:
    """CPU seconds of this process and all its descendants (alive ones, plus reaped children)."""
    try:
        import psutil
    except ImportError:
        return None
    me = psutil.Process()
    t = me.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in me.children(recursive=True):
        try:
            c = child.cpu_times()
            total += c.user + c.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def cpu_mhz() -> Optional[float]:
    """Mean current clock over the cores (cpufreq, else /proc/cpuinfo), None where the kernel hides it."""
    values: List[float] = []
    for f in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/cpufreq/scaling_cur_freq"):
        try:
            values.append(int(f.read_text()) / 1000.0)
        except (OSError, ValueError):
            continue
    if not values:
        try:
            values = [float(line.split(":")[1]) for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("cpu MHz")]
        except (OSError, ValueError, IndexError):
            values = []
    return round(sum(values) / len(values), 1) if values else None


def snapshot() -> Dict[str, Any]:
    """The machine's state now (load averages, clock) and the CPU-time counters `since` compares against."""
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {"at": time.monotonic(), "loadavg": load, "cpu_mhz": cpu_mhz(), "busy_s": _busy_seconds(),
            "own_s": _own_seconds()}


def since(before: Dict[str, Any], busy_limit: float = BUSY_OTHER_CORES) -> Dict[str, Any]:
    """What happened between `before` and now: others' CPU seconds and average cores, and a 'busy' warning."""
    now = snapshot()
    wall = now["at"] - before["at"]
    others = None
    if None not in (now["busy_s"], before["busy_s"], now["own_s"], before["own_s"]):
        others = max(0.0, (now["busy_s"] - before["busy_s"]) - (now["own_s"] - before["own_s"]))
    cores = others / wall if others is not None and wall > 0 else None
    out: Dict[str, Any] = {
        "before": {"loadavg": before["loadavg"], "cpu_mhz": before["cpu_mhz"]},
        "during": {"seconds": round(wall, 3), "other_processes_cpu_s": None if others is None else round(others, 3),
                   "other_processes_cores": None if cores is None else round(cores, 3),
                   "loadavg_after": now["loadavg"], "cpu_mhz_after": now["cpu_mhz"]},
        "busy": None,
    }
    if cores is not None and cores > busy_limit:
        load = before["loadavg"][0] if before["loadavg"] else None
        out["busy"] = (f"busy machine: other processes used {cores:.2f} cores on average while this was measured "
                       f"(load average {load:.2f} before); the numbers may be low, measure again on a quiet machine"
                       if load is not None else
                       f"busy machine: other processes used {cores:.2f} cores on average while this was measured")
    return out
