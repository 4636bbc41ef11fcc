"""Environment fingerprint recorded with every result: what was measured, where, with what.

Reads files and asks package metadata; imports no framework (versions come from installed
distributions), so it is cheap and safe to call before TensorFlow sets its thread pools.
"""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

from edgebench import util
from edgebench.contracts.vocabulary import IMAGE_DIGEST_ENV, IMAGE_ENV, IMAGE_ID_ENV, TARGET_ENV

JETPACK_BY_L4T = {"R35.4.1": "5.1.2", "R35.3.1": "5.1.1", "R35.2.1": "5.1", "R35.1.0": "5.0.2",
                  "R36.2.0": "6.0 DP", "R36.3.0": "6.0", "R36.4.0": "6.1"}
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8",
             "amx_bf16", "asimd", "asimddp", "sve", "fphp", "asimdhp", "i8mm", "bf16")
PACKAGES = ("tensorflow", "tensorflow-cpu", "keras", "onnxruntime", "onnxruntime-gpu", "onnx", "tf2onnx",
            "tflite-runtime", "tensorrt", "openvino", "nncf", "numpy", "torch", "onnx2torch", "pynvml", "nvidia-ml-py")


def _run(cmd: List[str], timeout: float = 5.0) -> Optional[str]:
    if not shutil.which(cmd[0]) and not os.path.exists(cmd[0]):
        return None
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout or out.stderr).strip() or None


def parse_nv_tegra_release(text: str) -> Optional[Dict[str, str]]:
    """'# R35 (release), REVISION: 4.1, GCID: ...' -> {"l4t": "R35.4.1", "jetpack": "5.1.2"}."""
    m = re.search(r"R(\d+) \(release\), REVISION: ([\d.]+)", text)
    if not m:
        return None
    l4t = f"R{m.group(1)}.{m.group(2)}"
    return {"l4t": l4t, "jetpack": JETPACK_BY_L4T.get(l4t, "unknown"), "raw": text.splitlines()[0].strip()}


def cpu_info() -> Dict[str, object]:
    model, flags, mhz = platform.processor() or platform.machine(), set(), None
    try:
        text = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^(model name|Model|CPU part)\s*:\s*(.+)$", text, re.M)
        if m:
            model = m.group(2).strip()
        m = re.search(r"^(flags|Features)\s*:\s*(.+)$", text, re.M)
        if m:
            flags = set(m.group(2).split())
        m = re.search(r"^cpu MHz\s*:\s*([\d.]+)", text, re.M)
        if m:
            mhz = float(m.group(1))
    except OSError:
        pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
        freq = psutil.cpu_freq()
        max_mhz = freq.max if freq and freq.max else None
    except Exception:
        physical, max_mhz = None, None
    return {"model": model, "arch": platform.machine(), "logical_cores": os.cpu_count(), "usable_cores": affinity,
            "physical_cores": physical, "mhz": mhz, "max_mhz": max_mhz,
            "isa": sorted(f for f in ISA_FLAGS if f in flags)}


def gpu_info() -> List[Dict[str, str]]:
    out = _run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                "--format=csv,noheader"])
    gpus = []
    if out and "," in out:
        for line in out.splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) >= 4:
                gpus.append({"name": parts[0], "memory": parts[1], "driver": parts[2], "max_sm_clock": parts[3]})
    return gpus


def jetson_info() -> Optional[Dict[str, object]]:
    from edgebench.machine import boardstate

    # the image's own release (l4t-jetpack), else the host's as the Jetson launchers mount it
    for release in (boardstate.RELEASE_FILE, boardstate.inside("l4t_release")):
        try:
            rel = parse_nv_tegra_release(Path(release).read_text())
            break
        except OSError:
            continue
    else:
        return None
    if rel is None:
        return None
    info: Dict[str, object] = dict(rel)
    try:
        info["model"] = Path("/proc/device-tree/model").read_text().strip("\0\n ")
    except OSError:
        info["model"] = None
    info["nvpmodel"] = _run(["nvpmodel", "-q"])
    clocks = _run(["jetson_clocks", "--show"])
    info["jetson_clocks"] = clocks
    from edgebench.machine.telemetry import board_state  # power mode, clocks, temps, host L4T, warnings

    info["state"] = board_state(run=_run)
    return info


def package_versions() -> Dict[str, str]:
    try:
        from importlib import metadata
    except ImportError:  # pragma: no cover - Python < 3.8
        return {}
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    if "tensorrt" not in out:  # TensorRT on Jetson/NGC is a system package, not always a pip distribution
        version = _module_version_without_import("tensorrt")
        if version:
            out["tensorrt"] = version
    return out


def _module_version_without_import(name: str) -> Optional[str]:
    """`__version__ = "x"` read from a package's __init__.py (or version.py) text: nothing is imported."""
    try:
        import importlib.util

        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent
    for candidate in (Path(spec.origin), folder / "version.py", folder / "_version.py"):
        try:
            m = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", candidate.read_text(errors="replace"), re.M)
        except OSError:
            continue
        if m:
            return m.group(1)
    return None


def cuda_stack() -> Optional[Dict[str, object]]:
    """The system's CUDA and cuDNN (JetPack's /usr/local/cuda/version.json, cudnn_version.h, else the libraries
    themselves; edgebench.engines.versions), each with its source; None where neither is installed. Never a
    Python binding's compile-time constant (cuda-python 11.8 says 11.8 on JetPack 5's CUDA 11.4)."""
    from edgebench.engines.versions import system_versions

    found = system_versions(with_tensorrt=False)  # TensorRT's version: package_versions(), read without import
    return found if found.get("cuda") or found.get("cudnn") else None


def container_info() -> Optional[Dict[str, object]]:
    inside = os.path.exists("/.dockerenv") or os.environ.get(IMAGE_ID_ENV) is not None
    if not inside:
        try:
            inside = "docker" in Path("/proc/1/cgroup").read_text()
        except OSError:
            pass
    if not inside:
        return None
    return {"image": os.environ.get(IMAGE_ENV), "image_id": os.environ.get(IMAGE_ID_ENV),
            "image_digest": os.environ.get(IMAGE_DIGEST_ENV),  # repo@sha256:... when pulled/published
            "target": os.environ.get(TARGET_ENV), "hostname": platform.node()}


def collect() -> Dict[str, object]:
    import psutil

    return {
        "hostname": platform.node(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "cpu": cpu_info(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "gpus": gpu_info(),
        "cuda": cuda_stack(),
        "jetson": jetson_info(),
        "container": container_info(),
        "versions": package_versions(),
        "git_revision": util.git_revision(short=12),
    }
