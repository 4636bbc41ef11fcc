"""Jetson board state and clocks from recorded output (no Jetson here): an Orin Nano 8 GB on JetPack 5.1.2.

The recorded values: tegrastats 4.x lines, `nvpmodel -q`, /var/lib/nvpmodel/status, the nvpmodel.conf mode
lines, a jtop 4.2 `stats` dict, and the sysfs files jetson_clocks changes (cpufreq min/max, GPU devfreq).
"""
from __future__ import annotations

from pathlib import Path

from edgebench.machine import telemetry as tm

TEGRA_IDLE = ("11-26-2026 10:00:00 RAM 2270/7620MB (lfb 1017x4MB) SWAP 0/3810MB (cached 0MB) "
              "CPU [2%@1510,0%@1510,1%@1510,0%@1510,0%@1510,0%@1510] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[624] "
              "VIC_FREQ 115 APE 174 CPU@48.5C SOC2@47.2C SOC0@47.5C CV1@-256C GPU@47.9C tj@48.5C SOC1@47.0C "
              "CV2@-256C VDD_IN 4827mW/4827mW VDD_CPU_GPU_CV 480mW/480mW VDD_SOC 1440mW/1440mW")
TEGRA_HOT = TEGRA_IDLE.replace("@1510", "@1113").replace("GR3D_FREQ 0%@[624]", "GR3D_FREQ 99%@[420]") \
    .replace("tj@48.5C", "tj@86.1C")
NVPMODEL_CONF = """< POWER_MODEL ID=0 NAME=15W >
CPU_ONLINE CORE_0 1
< POWER_MODEL ID=1 NAME=7W >
CPU_ONLINE CORE_0 1
< PM_CONFIG DEFAULT=0 >
"""
RELEASE = "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023\n"


def test_tegrastats_clocks_and_temperatures():
    p = tm.parse_tegrastats(TEGRA_IDLE)
    assert p["cpu_mhz"] == [1510] * 6 and p["gpu_mhz"] == 624 and p["gpu_util"] == 0
    assert p["temps_c"]["tj"] == 48.5 and "CV1" not in p["temps_c"], "-256C is an absent sensor"
    assert p["rails_mw"]["VDD_IN"] == 4827


def test_sustained_run_detects_throttling_from_clocks():
    s = tm.Sampler(tegrastats="")
    for line in [TEGRA_IDLE] * 6 + [TEGRA_HOT] * 3:
        s._clock_sample(tm.parse_tegrastats(line))
    c = tm.throttle_summary(s.cpu_mhz, s.gpu_mhz, s.temp_max_c)
    assert c["throttled"] is True and c["temp_max_c"] == 86.1
    assert any("gpu clock fell from 624 to 420 MHz" in r for r in c["reasons"])
    steady = tm.throttle_summary([1510.0] * 9, [624.0] * 9, [50.0] * 9)
    assert steady["throttled"] is False and steady["reasons"] == []


def _board(tmp_path: Path, mode: int = 0, locked: bool = True, host_release: str = RELEASE) -> Path:
    root = tmp_path / "root"
    for cpu in range(6):
        d = root / f"sys/devices/system/cpu/cpu{cpu}/cpufreq"
        d.mkdir(parents=True)
        (d / "scaling_cur_freq").write_text("1510400\n")
        (d / "scaling_max_freq").write_text("1510400\n")
        (d / "scaling_min_freq").write_text("1510400\n" if locked else "115200\n")
    gpu = root / "sys/class/devfreq/17000000.ga10b"
    gpu.mkdir(parents=True)
    (gpu / "cur_freq").write_text("624750000\n")
    (gpu / "max_freq").write_text("624750000\n")
    (gpu / "min_freq").write_text("624750000\n" if locked else "306000000\n")
    for i, (name, milli) in enumerate([("cpu-thermal", 48500), ("gpu-thermal", 47900), ("cv0-thermal", -256000)]):
        z = root / f"sys/devices/virtual/thermal/thermal_zone{i}"
        z.mkdir(parents=True)
        (z / "type").write_text(name + "\n")
        (z / "temp").write_text(f"{milli}\n")
    (root / "etc").mkdir()
    (root / "etc/nv_tegra_release").write_text(RELEASE)  # the image's own (l4t-jetpack r35.4.1)
    (root / "host/etc").mkdir(parents=True)
    (root / "host/etc/nv_tegra_release").write_text(host_release)
    (root / "host/etc/nvpmodel.conf").write_text(NVPMODEL_CONF)
    (root / "host/var/lib/nvpmodel").mkdir(parents=True)
    (root / "host/var/lib/nvpmodel/status").write_text(f"pmode:{mode:04d} fmode:fanNull\n")
    return root


def test_board_state_at_max_mode_with_locked_clocks(tmp_path):
    st = tm.board_state(str(_board(tmp_path)), use_jtop=False)
    assert st["host_l4t"] == "35.4.1" and st["image_l4t"] == "35.4.1"
    assert st["power_mode"] == {"id": 0, "name": "15W", "max_id": 0, "source": "nvpmodel status file"}
    assert st["clocks"]["cpu_locked"] is True and st["clocks"]["gpu_locked"] is True
    assert st["clocks"]["gpu_mhz"] == 624 and st["clocks"]["cpu_mhz"] == [1510] * 6
    assert st["temps_c"] == {"cpu-thermal": 48.5, "gpu-thermal": 47.9}
    assert st["warnings"] == []


def test_board_state_warns_when_not_max_mode_or_clocks_free(tmp_path):
    old = RELEASE.replace("REVISION: 4.1", "REVISION: 3.0")
    st = tm.board_state(str(_board(tmp_path, mode=1, locked=False, host_release=old)), use_jtop=False)
    text = " | ".join(st["warnings"])
    assert "power mode 7W is not the maximum" in text and "nvpmodel -m 0" in text
    assert "clocks are not locked" in text and "jetson_clocks" in text
    assert "host L4T 35.3.0 differs from the image's 35.4.1" in text


def test_off_a_jetson_there_is_no_board_state(tmp_path):
    assert tm.board_state(str(tmp_path), use_jtop=False) is None


def test_nvpmodel_query_fallback(tmp_path):
    root = _board(tmp_path)
    (root / "host/var/lib/nvpmodel/status").unlink()
    st = tm.board_state(str(root), use_jtop=False, run=lambda argv: "NV Power Mode: 15W\n0\n")
    assert st["power_mode"]["name"] == "15W" and st["power_mode"]["source"] == "nvpmodel -q"
    assert tm.parse_nvpmodel_query("garbage") is None


def test_from_jtop_recorded_stats():
    stats = {"time": "2026-11-26 10:00:00", "uptime": "1:00:00", "CPU1": 3, "GPU": 0, "RAM": 0.3,
             "Temp CPU": 48.5, "Temp GPU": 47.9, "Temp CV1": -256.0, "Power TOT": 4827, "jetson_clocks": "ON",
             "nvp model": "15W"}
    st = tm.from_jtop(stats, "15W[0]", True)
    assert st["power_mode"] == {"id": 0, "name": "15W", "max_id": 0, "source": "jtop"}
    assert st["temps_c"] == {"CPU": 48.5, "GPU": 47.9} and st["jetson_clocks"] == "active"
    assert tm.board_warnings(dict(st, clocks={"locked": True})) == []
    assert "clocks are not locked" in tm.board_warnings(tm.from_jtop(stats, "7W[1]", False))[1]


def test_jetson_mounts_only_what_the_host_has():
    have = {"/etc/nv_tegra_release", "/run/jtop.sock", "/usr/bin/tegrastats"}
    mounts = tm.jetson_mounts(exists=lambda p: p in have)
    assert ("/etc/nv_tegra_release", "/host/etc/nv_tegra_release", "ro") in mounts
    assert ("/run/jtop.sock", "/run/jtop.sock", "rw") in mounts
    assert ("/usr/bin/tegrastats", "/usr/local/bin/tegrastats", "ro") in mounts
    assert len(mounts) == 3
