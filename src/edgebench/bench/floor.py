"""The floor: how fast a backend could go on this device, from FLOPs over peak and bytes over bandwidth.

CPU peaks are measured (bench.calibrate: a short GEMM per precision and thread count on this machine,
cached per machine fingerprint); where no measurement exists for a precision and thread count, an estimate
from the ISA and clock is used and labelled `"method": "estimate"`. GPU peaks come from published
specifications in reference/gpu-peaks.json (`"method": "datasheet"`). Every figure says where it came from, so
a reader can judge it; floors are never compared across machines.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

BYTES_PER_WEIGHT = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}


def cpu_peak_gflops(cpu: Dict[str, Any], threads: int, precision: str) -> Optional[Dict[str, Any]]:
    """cores x GHz x FLOP/cycle: AVX-512 with two FMA units 64, AVX2 32, Arm NEON (2x128-bit FMA) 16.
    INT8 dot-product instructions (VNNI, Arm dotprod) do about 4x the FP32 rate."""
    mhz = cpu.get("max_mhz") or cpu.get("mhz")
    isa = set(cpu.get("isa") or [])
    if not mhz:
        if cpu.get("arch") != "aarch64":
            return None
        mhz = 1510.0  # no clock reported (Jetson kernels often hide it): the Orin Nano's A78AE cluster
    if "avx512f" in isa:
        per_cycle, isa_name = 64, "AVX-512, 2 FMA units"
    elif "avx2" in isa and "fma" in isa:
        per_cycle, isa_name = 32, "AVX2 FMA"
    elif cpu.get("arch") == "aarch64":
        per_cycle, isa_name = 16, "NEON 2x128-bit FMA"
    else:
        per_cycle, isa_name = 8, "SSE"
    factor = 1
    if precision == "int8" and ({"avx512_vnni", "amx_int8", "asimddp"} & isa):
        factor = 4
    elif precision == "fp16" and ({"asimdhp", "fphp"} & isa):
        factor = 2
    gflops = threads * (mhz / 1000.0) * per_cycle * factor
    source = (f"estimate: {threads} cores x {mhz:.0f} MHz x {per_cycle * factor} "
              f"FLOP/cycle ({isa_name}{', int8 dot product' if factor == 4 else ''})")
    return {"peak_gflops": gflops, "method": "estimate", "source": source}


def gpu_peak(gpus, precision: str, jetson: Optional[Dict[str, Any]] = None):
    """The card's published dense peak for `precision` (tf32 where FP32 ran on TF32 tensor cores) and its
    memory bandwidth, from the one peaks file (edgebench.peaks); None for a card it does not list."""
    from edgebench.peaks import card_peaks

    names = [str(g.get("name", "")) for g in gpus or []]
    if jetson and "orin nano" in str(jetson.get("model", "")).lower():
        names.insert(0, "orin nano")  # every Orin module reports the GPU name "Orin"
    for name in names:
        card = card_peaks(name)
        if card:
            tflops = card["tflops"]
            return {"peak_gflops": tflops.get(precision, tflops["fp32"]) * 1000.0,
                    "bandwidth_gbs": card["bandwidth_gbs"], "method": "datasheet",
                    "source": f"{card['card']}: {card['source']}"}
    return None


def measured_peak(measured: Optional[Dict[str, Any]], precision: str, threads: int) -> Optional[Dict[str, Any]]:
    """The calibrated peak for `precision` at `threads` (bench.calibrate's figures), None if not measured."""
    if not measured:
        return None
    figure = (measured.get("figures") or {}).get(precision, {}).get(str(threads))
    if not figure:
        return None
    return {"peak_gflops": figure, "method": "measured",
            "source": f"measured on this machine: {measured.get('method')} at {threads} threads "
                      f"(machine {measured.get('machine_key')})"}


def floor_for(env: Dict[str, Any], device: str, precision: str, threads: Optional[int], flops_per_image: float,
              params: Optional[int], batch_size: int, achieved_ips: Optional[float],
              measured: Optional[Dict[str, Any]] = None) -> Optional[Dict[str, Any]]:
    if device == "gpu":
        peak = gpu_peak(env.get("gpus"), precision, env.get("jetson"))
    else:
        cpu = env.get("cpu") or {}
        n = threads or cpu.get("usable_cores") or 1
        peak = measured_peak(measured, precision, n) or cpu_peak_gflops(cpu, n, precision)
    if not peak or not flops_per_image:
        return None
    compute_ms = flops_per_image / (peak["peak_gflops"] * 1e9) * 1000.0
    out: Dict[str, Any] = dict(peak)
    out["compute_floor_ms_per_image"] = compute_ms
    memory_ms = None
    if peak.get("bandwidth_gbs") and params:
        weight_bytes = params * BYTES_PER_WEIGHT.get(precision, 4)
        memory_ms = weight_bytes / (peak["bandwidth_gbs"] * 1e9) * 1000.0 / batch_size  # weights read once a batch
        out["memory_floor_ms_per_image"] = memory_ms
    floor_ms = max(compute_ms, memory_ms or 0.0)
    out["floor_ms_per_image"] = floor_ms
    if achieved_ips:
        achieved_ms = 1000.0 / achieved_ips
        out["fraction_of_floor"] = floor_ms / achieved_ms  # 1.0 = at the floor
    return out
