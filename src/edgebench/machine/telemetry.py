"""Telemetry sampled in a background thread while a run is timed.

- process CPU % like pidstat (can exceed 100% with several threads), per-core load, peak RSS (psutil);
- on a discrete NVIDIA GPU: utilisation, memory, power and energy through NVML (pynvml), if present;
- on a Jetson: GPU load and power rails (VDD_IN, VDD_CPU_GPU_CV, VDD_SOC) parsed from `tegrastats`, and the
  CPU/GPU clocks and temperatures (from sysfs, readable inside the container), so a long run shows throttling.

`board_state()` is the Jetson's state for every result: power mode, clocks (and whether jetson_clocks locked
them), temperatures and the host's own L4T release, read through jetson-stats (jtop's socket mounted into the
container) when it answers, else from the host files mounted read-only (`machine/boardstate.py` defines them),
with the source it used and why jtop did not answer, and warnings when the board is not at its maximum power mode
or its clocks are not locked.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from typing import Any, Dict, List, Optional

from edgebench.machine import boardstate

_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)mW/(\d+)mW")
_GR3D = re.compile(r"GR3D_FREQ (\d+)%")
_RAM = re.compile(r"RAM (\d+)/(\d+)MB")
_CPUS = re.compile(r"CPU \[([^\]]*)\]")
_GR3D_MHZ = re.compile(r"GR3D_FREQ \d+%@\[?(\d+)")
_TEMP = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*)@(-?\d+(?:\.\d+)?)C\b")


def parse_tegrastats(line: str) -> Dict[str, object]:
    """One tegrastats line -> {"rails_mw": {rail: now_mW}, "gpu_util": %, "ram_used_mb", "cpu_percent": [...]}."""
    out: Dict[str, object] = {"rails_mw": {name: int(now) for name, now, _avg in _RAIL.findall(line)}}
    m = _GR3D.search(line)
    if m:
        out["gpu_util"] = int(m.group(1))
    m = _RAM.search(line)
    if m:
        out["ram_used_mb"] = int(m.group(1))
    m = _CPUS.search(line)
    if m:
        out["cpu_percent"] = [int(c.split("%")[0]) if "%" in c else None for c in m.group(1).split(",")]
        out["cpu_mhz"] = [int(c.split("@")[1]) if "@" in c else None for c in m.group(1).split(",")]
    m = _GR3D_MHZ.search(line)
    if m:
        out["gpu_mhz"] = int(m.group(1))
    # -256C: a sensor that is not there (CV1/CV2 on an Orin Nano)
    out["temps_c"] = {k: float(v) for k, v in _TEMP.findall(line) if float(v) > -200}
    return out


class Sampler:
    """Context manager: samples every `interval` seconds between enter and exit; `summary()` after."""

    def __init__(self, interval: float = 0.2, pid: Optional[int] = None, tegrastats: Optional[str] = None,
                 gpu: bool = True):
        """gpu=False for a CPU backend: a discrete GPU's board power (NVML) says nothing about its energy,
        so NVML is not read. A Jetson's VDD_IN covers the whole module and is read either way."""
        self.interval = interval
        self.gpu = gpu
        self.pid = pid or os.getpid()
        self.tegrastats = tegrastats if tegrastats is not None else shutil.which("tegrastats")
        self.cpu: List[float] = []
        self.per_core: List[List[float]] = []
        self.rss_peak = 0
        self.gpu_util: List[float] = []
        self.gpu_mem: List[float] = []
        self.power_w: List[float] = []
        self.rails: Dict[str, List[float]] = {}
        self.cpu_mhz: List[float] = []
        self.gpu_mhz: List[float] = []
        self.temp_max_c: List[float] = []
        self.tegrastats_lines = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._tegra: Optional[subprocess.Popen] = None
        self._nvml = None
        self.t_start = self.t_end = 0.0

    def __enter__(self) -> "Sampler":
        import psutil

        self._proc = psutil.Process(self.pid)
        self._proc.cpu_percent(None)  # prime the counters: the first call always returns 0
        psutil.cpu_percent(None, percpu=True)
        if self.gpu:
            self._start_nvml()
        if self.tegrastats:
            self._start_tegrastats()
        self.t_start = self._last_sample = time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="edgebench-telemetry", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.t_end = time.perf_counter()
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        if time.perf_counter() - self._last_sample >= self.interval / 2:
            self._sample()  # the tail of the run counts too, unless it is too short to measure a rate over
        if self._tegra:
            self._tegra.terminate()
            try:
                self._tegra.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._tegra.kill()
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass

    def _start_nvml(self) -> None:
        try:
            import pynvml  # type: ignore

            pynvml.nvmlInit()
            self._nvml = pynvml
            self._nvml_handle = pynvml.nvmlDeviceGetHandleByIndex(int(os.environ.get("EDGEBENCH_GPU_INDEX", "0")))
        except Exception:
            self._nvml = None

    def _start_tegrastats(self) -> None:
        ms = max(100, int(self.interval * 1000))
        try:
            self._tegra = subprocess.Popen([self.tegrastats, "--interval", str(ms)], stdout=subprocess.PIPE,
                                           stderr=subprocess.DEVNULL, text=True)
        except OSError:
            self._tegra = None
            return
        threading.Thread(target=self._read_tegrastats, daemon=True).start()

    def _read_tegrastats(self) -> None:
        for line in self._tegra.stdout:  # type: ignore[union-attr]
            parsed = parse_tegrastats(line)
            self.tegrastats_lines += 1
            for rail, mw in parsed["rails_mw"].items():  # type: ignore[union-attr]
                self.rails.setdefault(rail, []).append(mw / 1000.0)
            if "gpu_util" in parsed:
                self.gpu_util.append(float(parsed["gpu_util"]))  # type: ignore[arg-type]
            self._clock_sample(parsed)
            if self._stop.is_set():
                break

    def _sample(self) -> None:
        import psutil

        self._last_sample = time.perf_counter()
        try:
            self.cpu.append(self._proc.cpu_percent(None))
            self.rss_peak = max(self.rss_peak, self._proc.memory_info().rss)
        except psutil.Error:
            return
        self.per_core.append(psutil.cpu_percent(None, percpu=True))
        if self._nvml is not None:
            try:
                h = self._nvml_handle
                self.gpu_util.append(float(self._nvml.nvmlDeviceGetUtilizationRates(h).gpu))
                self.gpu_mem.append(self._nvml.nvmlDeviceGetMemoryInfo(h).used / 2**20)
                self.power_w.append(self._nvml.nvmlDeviceGetPowerUsage(h) / 1000.0)
            except Exception:
                pass

    def _clock_sample(self, parsed: Dict[str, object]) -> None:
        mhz = [m for m in parsed.get("cpu_mhz") or [] if m]  # type: ignore[union-attr]
        if mhz:
            self.cpu_mhz.append(sum(mhz) / len(mhz))
        if parsed.get("gpu_mhz"):
            self.gpu_mhz.append(float(parsed["gpu_mhz"]))  # type: ignore[arg-type]
        temps = parsed.get("temps_c") or {}
        if temps:
            self.temp_max_c.append(max(temps.values()))  # type: ignore[union-attr,arg-type]

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def summary(self, images: Optional[int] = None) -> Dict[str, object]:
        def mean(xs):
            return sum(xs) / len(xs) if xs else None

        cores = [mean([s[i] for s in self.per_core]) for i in range(len(self.per_core[0]))] if self.per_core else []
        out: Dict[str, object] = {
            "samples": len(self.cpu),
            "interval_s": self.interval,
            "cpu_percent_mean": mean(self.cpu),
            "cpu_percent_max": max(self.cpu) if self.cpu else None,
            "per_core_percent_mean": cores,
            "rss_peak_mb": self.rss_peak / 2**20 if self.rss_peak else None,
            "gpu_util_mean": mean(self.gpu_util),
            "gpu_mem_mb_max": max(self.gpu_mem) if self.gpu_mem else None,
            "power_w_mean": None,
            "power_source": None,
            "energy_j_per_image": None,
            "rails_w_mean": {k: mean(v) for k, v in self.rails.items()} or None,
            # where the Jetson figures (rails, GPU load, clocks) of this row came from: tegrastats, or nothing
            "tegrastats": {"path": self.tegrastats, "lines": self.tegrastats_lines} if self.tegrastats else None,
        }
        if self.cpu_mhz or self.gpu_mhz or self.temp_max_c:
            out["clocks"] = throttle_summary(self.cpu_mhz, self.gpu_mhz, self.temp_max_c)
        if self.power_w:
            out["power_w_mean"], out["power_source"] = mean(self.power_w), "nvml (board power)"
        elif "VDD_IN" in self.rails:
            out["power_w_mean"], out["power_source"] = mean(self.rails["VDD_IN"]), "tegrastats VDD_IN (module input)"
        seconds = self.t_end - self.t_start
        if out["power_w_mean"] is not None and images:
            out["energy_j_per_image"] = out["power_w_mean"] * seconds / images  # type: ignore[operator]
        return out


# --------------------------------------------------------------------------------------------
# Jetson board state: power mode, clocks, temperatures, host L4T (jtop first, host files second)
# --------------------------------------------------------------------------------------------

THROTTLE_DROP = 0.10  # a clock more than 10% below its run's peak in the last third of a run: throttled


def throttle_summary(cpu_mhz: List[float], gpu_mhz: List[float], temps: List[float]) -> Dict[str, object]:
    """Clock ranges over a run, and throttled=True when the last third ran >10% below the run's peak clock."""
    out: Dict[str, object] = {"temp_max_c": max(temps) if temps else None, "throttled": False, "reasons": []}
    for name, xs in (("cpu", cpu_mhz), ("gpu", gpu_mhz)):
        if not xs:
            continue
        out[f"{name}_mhz"] = {"min": min(xs), "max": max(xs), "mean": sum(xs) / len(xs)}
        tail = xs[len(xs) * 2 // 3:] if len(xs) >= 3 else []
        if tail and sum(tail) / len(tail) < max(xs) * (1 - THROTTLE_DROP):
            out["throttled"] = True
            out["reasons"].append(f"{name} clock fell from {max(xs):.0f} to {sum(tail) / len(tail):.0f} MHz "  # type: ignore[union-attr]
                                  f"in the last third of the run")
    return out


def _read(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def parse_nvpmodel(status: Optional[str], conf: Optional[str]) -> Optional[Dict[str, object]]:
    """/var/lib/nvpmodel/status ("pmode:0000 ...") + /etc/nvpmodel.conf ("< POWER_MODEL ID=0 NAME=15W >")."""
    if not status:
        return None
    m = re.search(r"pmode:(\d+)", status)
    if not m:
        return None
    mode = int(m.group(1))
    names = {int(i): n for i, n in re.findall(r"POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+?)\s*>", conf or "")}
    return {"id": mode, "name": names.get(mode), "max_id": boardstate.MAX_POWER_MODE, "source": "nvpmodel status file"}


def parse_nvpmodel_query(text: Optional[str]) -> Optional[Dict[str, object]]:
    """`nvpmodel -q`: "NV Power Mode: 15W\n0"."""
    if not text:
        return None
    m = re.search(r"NV Power Mode:\s*(\S+)\s*\n\s*(\d+)", text)
    if not m:
        return None
    return {"id": int(m.group(2)), "name": m.group(1), "max_id": boardstate.MAX_POWER_MODE, "source": "nvpmodel -q"}


def read_clocks(sysfs: str = "/sys") -> Dict[str, object]:
    """CPU and GPU clocks from sysfs (visible in a container); locked = min == max, as jetson_clocks leaves them."""
    import glob

    out: Dict[str, object] = {}
    cpus = []
    for d in sorted(glob.glob(os.path.join(sysfs, "devices/system/cpu/cpu[0-9]*/cpufreq"))):
        vals = {k: _read(os.path.join(d, f"scaling_{k}_freq")) for k in ("cur", "min", "max")}
        if all(v and v.isdigit() for v in vals.values()):
            cpus.append({k: int(v) // 1000 for k, v in vals.items()})  # type: ignore[union-attr]
    if cpus:
        out["cpu_mhz"] = [c["cur"] for c in cpus]
        out["cpu_locked"] = all(c["min"] == c["max"] for c in cpus)
        out["cpu_max_mhz"] = max(c["max"] for c in cpus)
    for d in sorted(glob.glob(os.path.join(sysfs, "class/devfreq/*"))):
        if not re.search(r"(ga10b|gv11b|gp10b|gpu)$", d):
            continue
        vals = {k: _read(os.path.join(d, f"{k}_freq")) for k in ("cur", "min", "max")}
        if all(v and v.isdigit() for v in vals.values()):
            out["gpu_mhz"] = int(vals["cur"]) // 1000000  # type: ignore[arg-type]
            out["gpu_max_mhz"] = int(vals["max"]) // 1000000  # type: ignore[arg-type]
            out["gpu_locked"] = vals["min"] == vals["max"]
            break
    return out


def read_temperatures(sysfs: str = "/sys") -> Dict[str, float]:
    import glob

    out = {}
    for d in sorted(glob.glob(os.path.join(sysfs, "devices/virtual/thermal/thermal_zone*"))):
        name, temp = _read(os.path.join(d, "type")), _read(os.path.join(d, "temp"))
        if name and temp and temp.lstrip("-").isdigit() and int(temp) > -200000:
            out[name] = int(temp) / 1000.0
    return out


#: jetson-stats' `JetsonClocks.status` values (jtop/core/jetson_clocks.py, 4.2.12) -> are the clocks locked? Only
#: "running" and "inactive" say so; "booting", "activating" and "deactivating" are transitions, and "uncontrolled"
#: means jtop could not take jetson_clocks over (it ran before jtop's service started): sysfs decides those.
JETSON_CLOCKS_LOCKED: Dict[str, Optional[bool]] = {"running": True, "inactive": False, "booting": None,
                                                   "activating": None, "deactivating": None, "uncontrolled": None}
_MISMATCH = re.compile(r"Mismatch version jtop service: \[(.*?)\] and client: \[(.*?)\]")


def _inside(root: str, key: str) -> str:
    return os.path.join(root, boardstate.inside(key).lstrip("/"))


def from_jtop(stats: Dict[str, object], nvpmodel: object, jetson_clocks: object) -> Dict[str, object]:
    """Board state from a jtop client: `j.stats`, `j.nvpmodel` (jetson-stats' NVPModel: `.name` and `.id`; its
    str() is the name alone) and `j.jetson_clocks` (its JetsonClocks: `.status`, see JETSON_CLOCKS_LOCKED)."""
    mode = None
    if nvpmodel is not None:
        mode = {"id": int(nvpmodel.id), "name": str(nvpmodel.name), "max_id": boardstate.MAX_POWER_MODE,  # type: ignore[attr-defined]
                "source": "jtop"}
    status = getattr(jetson_clocks, "status", None) if jetson_clocks is not None else None
    temps = {k.replace("Temp ", ""): float(v) for k, v in stats.items()  # type: ignore[union-attr]
             if str(k).startswith("Temp ") and isinstance(v, (int, float)) and v > -200}
    return {"power_mode": mode, "temps_c": temps, "clocks": {"locked": JETSON_CLOCKS_LOCKED.get(str(status))},
            "jetson_clocks": status}


def jtop_refusal(exc: BaseException, client: Optional[str]) -> str:
    """Why jtop's client gave up, with what to do (a service of another version is the usual case)."""
    text = " ".join(str(exc).split())
    m = _MISMATCH.search(text)
    if m:
        return (f"jtop's service on the host is jetson-stats {m.group(1)}, this image's client {m.group(2)}: "
                f"install the same version on the host (sudo pip3 install jetson-stats=={m.group(2)}, then "
                f"sudo systemctl restart jtop.service)")
    if "Authentication" in text:
        return (f"jtop's service refused this image's client (jetson-stats {client}; another release's key): "
                f"install jetson-stats=={client} on the host")
    return f"{type(exc).__name__}: {text}"


def jtop_state(socket: str = boardstate.inside("jtop_socket")) -> Dict[str, object]:
    """{"state": ...} read through jtop, or {"reason": why not} (the caller falls back to the host's files)."""
    if not os.path.exists(socket):
        return {"reason": f"no jtop socket at {socket} (jetson-stats' service is not running on the host, or the "
                          f"socket is not mounted)"}
    try:
        import jtop as jetson_stats  # jetson-stats: its client must be the host service's version
        from jtop import jtop
    except ImportError:
        return {"reason": "jetson-stats is not installed in this image"}
    version = getattr(jetson_stats, "__version__", None)
    try:
        with jtop(interval=0.5) as j:  # start() waits for the service's first sample
            state = from_jtop(dict(j.stats), j.nvpmodel, j.jetson_clocks)
    except Exception as exc:  # JtopException (version, permission, service down), socket errors
        return {"reason": jtop_refusal(exc, version), "jtop_version": version}
    state["jtop_version"] = version
    return {"state": state}


def socket_access(path: str) -> Optional[Dict[str, object]]:
    """jtop's socket as this process sees it: its group and mode, and whether that group is one of ours."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    gid = st.st_gid
    return {"path": path, "gid": gid, "mode": format(st.st_mode & 0o777, "o"),
            "in_groups": gid == os.getgid() or gid in os.getgroups(), "uid": os.getuid()}


def _files_state(root: str, run: Any) -> Dict[str, object]:
    """Power mode from nvpmodel's files (else `nvpmodel -q`) and temperatures from sysfs: jtop's fallback."""
    mode = parse_nvpmodel(_read(_inside(root, "nvpmodel_status")), _read(_inside(root, "nvpmodel_conf")))
    if mode is None and run is not None:
        mode = parse_nvpmodel_query(run(["nvpmodel", "-q"]))
    return {"power_mode": mode, "temps_c": read_temperatures(os.path.join(root, "sys")),
            "source": "host files + sysfs"}


def board_state(root: str = "/", use_jtop: bool = True, run=None, jtop=None) -> Optional[Dict[str, object]]:
    """The Jetson's state for the results (None off a Jetson): host L4T, power mode, clocks, temperatures,
    warnings, and which source said so (`source`: jtop, else host files + sysfs with `jtop_fallback` saying why).
    `root` lets tests point at a recorded tree; `run(argv)` returns a host tool's output or None; `jtop()` replaces
    the jtop client (tests)."""
    sysfs = os.path.join(root, "sys")
    host_rel = _read(_inside(root, "l4t_release"))
    own_rel = _read(os.path.join(root, boardstate.RELEASE_FILE.lstrip("/")))
    if not host_rel and not own_rel:
        return None
    state: Dict[str, object] = {"host_l4t": _l4t(host_rel) if host_rel else None,
                                "image_l4t": _l4t(own_rel) if own_rel else None}
    if not host_rel:  # not in a container, or the host file was not mounted
        state["host_l4t_source"] = "this system's /etc/nv_tegra_release (host or image: not mounted)"
    socket = _inside(root, "jtop_socket")
    jt = (jtop or (lambda: jtop_state(socket)))() if use_jtop else {"reason": "jtop not asked"}
    if "state" in jt:
        state.update(jt["state"])  # type: ignore[arg-type]
        state["source"] = "jtop"
    else:
        state["jtop_fallback"] = jt["reason"]
        if jt.get("jtop_version"):
            state["jtop_version"] = jt["jtop_version"]
        state.update(_files_state(root, run))
    state["jtop_socket"] = socket_access(socket)
    tegrastats = _inside(root, "tegrastats")
    state["tegrastats"] = tegrastats if os.access(tegrastats, os.X_OK) else shutil.which("tegrastats")
    clocks = read_clocks(sysfs)
    state["clocks"] = dict(clocks, **{k: v for k, v in (state.get("clocks") or {}).items() if v is not None})
    state["warnings"] = board_warnings(state)
    return state


def _l4t(text: str) -> Optional[str]:
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def board_warnings(state: Dict[str, object]) -> List[str]:
    """What makes a Jetson slower than published: not the maximum power mode, clocks not locked, L4T skew."""
    out = []
    mode = state.get("power_mode")
    if not mode:
        out.append("power mode unknown: mount /var/lib/nvpmodel/status and /etc/nvpmodel.conf (or jtop's socket)")
    elif mode.get("id") != mode.get("max_id", boardstate.MAX_POWER_MODE):  # type: ignore[union-attr]
        top = boardstate.MAX_POWER_MODE
        out.append(f"power mode {mode.get('name') or mode.get('id')} is not the maximum (mode {top}): "  # type: ignore[union-attr]
                   f"`sudo nvpmodel -m {top}` for published numbers")
    clocks = state.get("clocks") or {}
    locked = clocks.get("locked")  # type: ignore[union-attr]
    if state.get("jetson_clocks") == "uncontrolled":
        out.append("jtop reports jetson_clocks 'uncontrolled' (it ran before jtop's service started): "
                   "the lock was read from sysfs")
    if locked is None and "cpu_locked" in clocks:
        locked = clocks.get("cpu_locked") and clocks.get("gpu_locked", True)  # type: ignore[union-attr]
    if locked is None:
        out.append("clock lock unknown (no cpufreq in sysfs, no answer from jtop)")
    elif not locked:
        out.append("clocks are not locked (frequency scaling adds variance): `sudo jetson_clocks` before benchmarking")
    if state.get("host_l4t") and state.get("image_l4t") and state["host_l4t"] != state["image_l4t"]:
        out.append(f"host L4T {state['host_l4t']} differs from the image's {state['image_l4t']}")
    return out
