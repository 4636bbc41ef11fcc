"""Jetson board state and clocks from recorded output (no Jetson here): an Orin Nano 8 GB on JetPack 5.1.2.

The recorded values: tegrastats 4.x lines, `nvpmodel -q`, /var/lib/nvpmodel/status, the nvpmodel.conf mode
lines, a jtop 4.2 `stats` dict, and the sysfs files jetson_clocks changes (cpufreq min/max, GPU devfreq).
"""
from __future__ import annotations

import os
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
RELEASE = ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
           "DATE: Tue Aug  1 19:57:35 UTC 2023\n")


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


class _Mode:  # the two attributes the kit reads of jetson-stats' NVPModel (test_jetson_real_jtop.py: the real class)
    def __init__(self, name, id_):
        self.name, self.id = name, id_

    def __str__(self):  # jetson-stats prints the name alone: nothing to parse
        return self.name


class _Clocks:
    def __init__(self, status):
        self.status = status


STATS = {"time": "2026-11-26 10:00:00", "uptime": "1:00:00", "CPU1": 3, "GPU": 0, "RAM": 0.3,
         "Temp CPU": 48.5, "Temp GPU": 47.9, "Temp CV1": -256.0, "Power TOT": 4827, "jetson_clocks": "ON",
         "nvp model": "15W"}


def test_from_jtop_reads_name_and_id_and_the_clock_status():
    st = tm.from_jtop(STATS, _Mode("15W", 0), _Clocks("running"))
    assert st["power_mode"] == {"id": 0, "name": "15W", "max_id": 0, "source": "jtop"}
    assert st["temps_c"] == {"CPU": 48.5, "GPU": 47.9} and st["jetson_clocks"] == "running"
    assert st["clocks"] == {"locked": True}
    assert tm.board_warnings(dict(st, clocks={"locked": True})) == []
    low = tm.from_jtop(STATS, _Mode("7W", 1), _Clocks("inactive"))
    assert low["clocks"] == {"locked": False}
    assert "power mode 7W is not the maximum" in tm.board_warnings(low)[0]
    assert "clocks are not locked" in tm.board_warnings(low)[1]


def test_uncontrolled_is_not_unlocked_sysfs_decides(tmp_path):
    st = tm.from_jtop(STATS, _Mode("15W", 0), _Clocks("uncontrolled"))
    assert st["clocks"] == {"locked": None}, "uncontrolled: jtop cannot say; not 'not locked'"
    for status in ("booting", "activating", "deactivating"):
        assert tm.from_jtop(STATS, _Mode("15W", 0), _Clocks(status))["clocks"] == {"locked": None}
    root = _board(tmp_path, locked=True)
    full = tm.board_state(str(root), jtop=lambda: {"state": dict(st, jtop_version="4.2.12")})
    assert full["source"] == "jtop" and full["jetson_clocks"] == "uncontrolled"
    assert full["clocks"]["cpu_locked"] is True and "locked" not in full["clocks"]
    text = " | ".join(full["warnings"])
    assert "uncontrolled" in text and "clocks are not locked" not in text


def test_a_refused_client_falls_back_to_the_host_files_and_says_why(tmp_path):
    # jetson-stats 4.2.12's own wording (jtop/jtop.py, start()) for a service of another version
    exc = Exception("Mismatch version jtop service: [4.3.1] and client: [4.2.12]. Please run:\n\n"
                    "sudo systemctl restart jtop.service")
    why = tm.jtop_refusal(exc, "4.2.12")
    assert "host is jetson-stats 4.3.1" in why and "jetson-stats==4.2.12" in why
    st = tm.board_state(str(_board(tmp_path)), jtop=lambda: {"reason": why, "jtop_version": "4.2.12"})
    assert st["source"] == "host files + sysfs" and st["jtop_fallback"] == why and st["jtop_version"] == "4.2.12"
    assert st["power_mode"]["source"] == "nvpmodel status file" and st["power_mode"]["name"] == "15W"


def test_without_a_socket_jtop_is_not_tried(tmp_path):
    st = tm.board_state(str(_board(tmp_path)))
    assert st["source"] == "host files + sysfs" and "no jtop socket" in st["jtop_fallback"]
    assert st["jtop_socket"] is None and st["tegrastats"] is None


def test_board_files_and_groups_one_definition(tmp_path):
    from edgebench.machine import boardstate as bs

    have = {"/etc/nv_tegra_release", "/run/jtop.sock", "/usr/bin/tegrastats"}
    facts = bs.local_facts(exists=lambda p: p in have)
    assert sorted(facts.present) == ["jtop_socket", "l4t_release", "tegrastats"]
    assert bs.binds(facts) == {"/etc/nv_tegra_release": {"bind": "/host/etc/nv_tegra_release", "mode": "ro"},
                               "/usr/bin/tegrastats": {"bind": "/usr/local/bin/tegrastats", "mode": "ro"},
                               "/run/jtop.sock": {"bind": "/run/jtop.sock", "mode": "rw"}}
    facts.socket_gid = 994
    assert bs.group_add(facts) == ["video", "994"] and bs.group_add(facts, gpu_group=False) == ["994"]
    assert bs.group_add(bs.BoardFacts(socket_gid=994)) == ["video"], "no socket mounted: no socket group"
    assert bs.board_root("/etc/nv_tegra_release") == "" and bs.board_root("/tmp/x/etc/nv_tegra_release") == "/tmp/x"
    assert bs.board_root("/opt/release") == ""


def test_the_device_probe_script_reads_a_board_tree(tmp_path):
    """PROBE_SCRIPT run for real (sh) on a tree laid out as JetPack lays out a board, with a real socket."""
    import socket
    import subprocess

    from edgebench.machine import boardstate as bs

    root = tmp_path / "b"
    (root / "etc").mkdir(parents=True)
    (root / "etc/nv_tegra_release").write_text(RELEASE)
    (root / "etc/nvpmodel.conf").write_text(NVPMODEL_CONF)
    (root / "var/lib/nvpmodel").mkdir(parents=True)
    (root / "var/lib/nvpmodel/status").write_text("pmode:0001 fmode:quiet\n")
    (root / "run").mkdir()
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(root / "run/jtop.sock"))
    (root / "run/jtop.sock").chmod(0o660)
    try:
        out = subprocess.run(["sh", "-c", bs.PROBE_SCRIPT, "sh", str(root)], capture_output=True, text=True,
                             check=True).stdout
    finally:
        s.close()
    facts = bs.parse_probe(out, str(root))
    assert sorted(facts.present) == ["jtop_socket", "l4t_release", "nvpmodel_conf", "nvpmodel_status"]
    assert facts.socket_gid == os.getgid() and facts.socket_mode == "660"
    assert facts.nvpmodel_status.startswith("pmode:0001") and "NAME=7W" in facts.nvpmodel_conf_modes
    assert bs.binds(facts)[f"{root}/run/jtop.sock"] == {"bind": "/run/jtop.sock", "mode": "rw"}
    mode = tm.parse_nvpmodel(facts.nvpmodel_status, facts.nvpmodel_conf_modes)
    assert mode["id"] == 1 and mode["name"] == "7W"
