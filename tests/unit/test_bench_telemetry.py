import threading
import time

from edgebench.bench import floor
from edgebench.machine import fingerprint
from edgebench.machine.telemetry import Sampler, parse_tegrastats

# A tegrastats line as JetPack 5.1 prints it on an Orin Nano
ORIN = ("RAM 2448/7620MB (lfb 1x4MB) SWAP 0/3810MB (cached 0MB) CPU [2%@1510,1%@1510,0%@1510,0%@1510,off,"
        "0%@1510] EMC_FREQ 0%@2133 GR3D_FREQ 37%@[624] VIC_FREQ 729 APE 200 CV0@45.437C CPU@47.875C "
        "GPU@44.937C tj@47.875C VDD_IN 7336mW/4336mW VDD_CPU_GPU_CV 2483mW/483mW VDD_SOC 1329mW/1329mW")


def test_parse_tegrastats():
    p = parse_tegrastats(ORIN)
    assert p["rails_mw"] == {"VDD_IN": 7336, "VDD_CPU_GPU_CV": 2483, "VDD_SOC": 1329}
    assert p["gpu_util"] == 37
    assert p["ram_used_mb"] == 2448
    assert p["cpu_percent"] == [2, 1, 0, 0, None, 0]


def test_sampler_sees_a_busy_thread():
    def spin():  # 0.6 s of CPU time, however long a loaded machine takes to give it
        start = time.thread_time()
        while time.thread_time() - start < 0.6:
            pass

    t0 = time.perf_counter()
    with Sampler(interval=0.1, tegrastats="") as s:
        t = threading.Thread(target=spin)
        t.start()
        t.join()
    wall = time.perf_counter() - t0
    summary = s.summary(images=100)
    assert summary["samples"] >= 3
    # one busy thread is ~100% of a core on an idle machine; on a loaded one it gets 0.6 s CPU over `wall`
    assert summary["cpu_percent_mean"] > 0.5 * 100 * 0.6 / wall
    assert summary["rss_peak_mb"] > 1
    assert summary["power_w_mean"] is None and summary["energy_j_per_image"] is None  # no power source here


def test_nv_tegra_release():
    text = ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
            "DATE: Tue Aug  1 19:57:35 UTC 2023\n")
    assert fingerprint.parse_nv_tegra_release(text)["l4t"] == "R35.4.1"
    assert fingerprint.parse_nv_tegra_release(text)["jetpack"] == "5.1.2"
    assert fingerprint.parse_nv_tegra_release("garbage") is None


def test_fingerprint_has_what_reports_need():
    env = fingerprint.collect()
    for key in ("cpu", "memory_gb", "gpus", "jetson", "container", "versions", "python"):
        assert key in env
    assert env["cpu"]["logical_cores"] >= 1


def test_floor_cpu_and_gpu():
    cpu = {"arch": "x86_64", "mhz": 2000.0, "isa": ["avx2", "avx512f", "fma", "avx512_vnni"], "usable_cores": 2}
    f = floor.floor_for({"cpu": cpu}, "cpu", "fp32", 1, 150e6, 21e6, 64, achieved_ips=500.0)
    assert f["peak_gflops"] == 128.0  # 1 core x 2 GHz x 64 FLOP/cycle
    assert abs(f["compute_floor_ms_per_image"] - 150e6 / 128e9 * 1000) < 1e-9
    assert 0 < f["fraction_of_floor"] < 1
    assert floor.floor_for({"cpu": cpu}, "cpu", "int8", 1, 150e6, None, 1, None)["peak_gflops"] == 512.0
    env = {"gpus": [], "jetson": {"model": "NVIDIA Orin Nano Developer Kit"}}
    g = floor.floor_for(env, "gpu", "fp16", None, 2.3e9, 21e6, 1, achieved_ips=100.0)
    assert g["peak_gflops"] == 10240.0 and g["bandwidth_gbs"] == 68.0
    assert g["floor_ms_per_image"] == max(g["compute_floor_ms_per_image"], g["memory_floor_ms_per_image"])
    assert floor.floor_for({"gpus": [{"name": "Unknown GPU"}]}, "gpu", "fp32", None, 1e9, None, 1, None) is None


def test_sampler_reads_the_rigs_tegrastats_stand_in(tmp_path):
    """The deploy rig's tegrastats stand-in (jetson-stats' Orin line) run as the Sampler runs tegrastats."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))
    import deploy_rig

    exe = tmp_path / "tegrastats"
    exe.write_text(deploy_rig.TEGRASTATS_SCRIPT.replace("{line}", deploy_rig.TEGRASTATS_ORIN))
    exe.chmod(0o755)
    with Sampler(interval=0.1, tegrastats=str(exe)) as s:
        deadline = time.monotonic() + 10
        while s.tegrastats_lines < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    summary = s.summary(images=10)
    assert summary["tegrastats"]["path"] == str(exe) and summary["tegrastats"]["lines"] >= 3
    assert summary["rails_w_mean"]["VDD_GPU_SOC"] == 2.39 and summary["gpu_util_mean"] == 37
    assert summary["clocks"]["cpu_mhz"]["max"] == 729
    with Sampler(interval=0.1, tegrastats="") as none:
        pass
    assert none.summary()["tegrastats"] is None
