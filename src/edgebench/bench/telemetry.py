"""Telemetry sampled in a background thread while a run is timed.

- process CPU % like pidstat (can exceed 100% with several threads), per-core load, peak RSS (psutil);
- on a discrete NVIDIA GPU: utilisation, memory, power and energy through NVML (pynvml), if present;
- on a Jetson: GPU load and power rails (VDD_IN, VDD_CPU_GPU_CV, VDD_SOC) parsed from `tegrastats`.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from typing import Dict, List, Optional

_RAIL = re.compile(r"\b([A-Z][A-Z0-9_]*) (\d+)mW/(\d+)mW")
_GR3D = re.compile(r"GR3D_FREQ (\d+)%")
_RAM = re.compile(r"RAM (\d+)/(\d+)MB")
_CPUS = re.compile(r"CPU \[([^\]]*)\]")


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
            for rail, mw in parsed["rails_mw"].items():  # type: ignore[union-attr]
                self.rails.setdefault(rail, []).append(mw / 1000.0)
            if "gpu_util" in parsed:
                self.gpu_util.append(float(parsed["gpu_util"]))  # type: ignore[arg-type]
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
        }
        if self.power_w:
            out["power_w_mean"], out["power_source"] = mean(self.power_w), "nvml (board power)"
        elif "VDD_IN" in self.rails:
            out["power_w_mean"], out["power_source"] = mean(self.rails["VDD_IN"]), "tegrastats VDD_IN (module input)"
        seconds = self.t_end - self.t_start
        if out["power_w_mean"] is not None and images:
            out["energy_j_per_image"] = out["power_w_mean"] * seconds / images  # type: ignore[operator]
        return out
