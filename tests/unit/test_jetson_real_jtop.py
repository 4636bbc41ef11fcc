"""The kit's jtop code against the real jetson-stats 4.2.12 (the Jetson image's pin and the README's host install)
on Python 3.8.

What is real here: jetson-stats' own NVPModel and JetsonClocks (fed the status dicts its service sends), its own
jtop client talking to a service over its own JtopManager (a socket of jetson-stats' protocol, served in a child
process that answers the client's handshake as a service of ANOTHER version does), its own tegrastats parser fed
the deploy rig's tegrastats stand-in, and its own L4T parser fed the stand-in's release file. What needs a board
and is not checked: a real jtop service's data (GPU, rails, temperatures) and its socket's permissions.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from jetson_real import require

PIN = "4.2.12"


@pytest.fixture()
def jetson_stats():
    require("jetson-stats", PIN)
    import jtop

    assert jtop.__version__ == PIN, "jtop.__version__ is where the kit reads the client's version"
    return jtop


def test_nvpmodel_is_read_by_name_and_id_not_by_its_string(jetson_stats):
    from jtop import JetsonClocks, NVPModel

    from edgebench.machine import telemetry as tm

    # the init and status dicts jetson-stats' service sends (jtop/service.py, jtop/core/nvpmodel.py)
    nvp = NVPModel(None, {"models": ["15W", "7W"], "default": {"name": "15W", "id": 0}})
    nvp._update({"status": [True, True], "thread": False, "model": {"name": "7W", "id": 1}})
    assert str(nvp) == "7W", "jetson-stats prints the name alone: there is no '7W[1]' to parse"
    jc = JetsonClocks(None)
    jc._update({"enable": False, "thread": "inactive", "config": True, "boot": False})
    st = tm.from_jtop({"Temp CPU": 48.5, "Temp CV1": -256.0}, nvp, jc)
    assert st["power_mode"] == {"id": 1, "name": "7W", "max_id": 0, "source": "jtop"}
    assert st["jetson_clocks"] == "inactive" and st["clocks"] == {"locked": False}
    assert st["temps_c"] == {"CPU": 48.5}
    jc._update({"enable": True, "thread": "inactive", "config": True, "boot": False})
    assert jc.status == "running" and tm.from_jtop({}, nvp, jc)["clocks"] == {"locked": True}


def test_every_jetson_clocks_status_jetson_stats_defines_is_known(jetson_stats):
    """The statuses of JetsonClocks.get_status's docstring, read from the installed source."""
    import inspect

    from jtop import JetsonClocks

    from edgebench.machine import telemetry as tm

    doc = inspect.getdoc(JetsonClocks.get_status)
    statuses = {ln.split()[0] for ln in doc.splitlines() if ln.strip() and ln.split()[0].isalpha()
                and ln.split()[0].islower() and len(ln.split()) > 1 and ln.startswith(ln.split()[0])}
    statuses &= {"running", "booting", "activating", "deactivating", "uncontrolled", "inactive"}
    assert len(statuses) == 6, doc
    assert set(tm.JETSON_CLOCKS_LOCKED) == statuses
    jc = JetsonClocks(None)
    for status in statuses - {"running"}:
        jc._update({"enable": False, "thread": status, "config": True, "boot": False})
        assert jc.status == status
        assert tm.from_jtop({}, None, jc)["clocks"]["locked"] is (False if status == "inactive" else None)


SERVICE = textwrap.dedent("""
    # a jtop service of another version over jetson-stats' own JtopManager (socket, auth key, proxies)
    import queue, sys, threading
    import jtop.service as service
    service.JTOP_PIPE = sys.argv[1]
    q, data, event = queue.Queue(), {}, threading.Event()
    service.JtopManager.register("get_queue", callable=lambda: q)
    service.JtopManager.register("sync_data", callable=lambda: data)
    service.JtopManager.register("sync_event", callable=lambda: event)
    manager = service.JtopManager()
    server = manager.get_server()
    def answer():
        while True:
            msg = q.get()
            if "interval" in msg:
                q.put({"init": {"version": sys.argv[2], "interval": 0.5}})
            elif "init" in msg:
                q.put(msg)
    threading.Thread(target=answer, daemon=True).start()
    print("ready", flush=True)
    server.serve_forever()
""")


def test_a_service_of_another_version_is_refused_and_the_board_falls_back(jetson_stats, tmp_path, monkeypatch):
    import jtop.service as service

    from edgebench.machine import telemetry as tm

    sock = str(tmp_path / "jtop.sock")
    proc = subprocess.Popen([sys.executable, "-c", SERVICE, sock, "4.3.1"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 10
        while not os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.05)
        monkeypatch.setattr(service, "JTOP_PIPE", sock)  # jetson-stats' client connects to /run/jtop.sock
        got = tm.jtop_state(sock)
    finally:
        proc.kill()
        proc.wait()
    assert "state" not in got, got
    assert got["jtop_version"] == PIN
    assert "host is jetson-stats 4.3.1" in got["reason"] and f"jetson-stats=={PIN}" in got["reason"], got

    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/nv_tegra_release").write_text("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref\n")
    (root / "host/var/lib/nvpmodel").mkdir(parents=True)
    (root / "host/var/lib/nvpmodel/status").write_text("pmode:0000 fmode:quiet\n")
    st = tm.board_state(str(root), jtop=lambda: got)
    assert st["source"] == "host files + sysfs" and st["jtop_fallback"] == got["reason"]
    assert st["power_mode"]["id"] == 0 and st["power_mode"]["source"] == "nvpmodel status file"


def test_no_service_on_the_socket_is_jtops_own_error(jetson_stats, tmp_path, monkeypatch):
    import socket

    import jtop.service as service

    from edgebench.machine import telemetry as tm

    sock = tmp_path / "jtop.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock))  # a socket file nobody listens on: what a stopped service leaves behind
    monkeypatch.setattr(service, "JTOP_PIPE", str(sock))
    try:
        got = tm.jtop_state(str(sock))
    finally:
        s.close()
    assert "JtopException" in got["reason"] and "jtop.service is not active" in got["reason"], got


def test_the_rig_tegrastats_stand_in_parses_as_jetson_stats_parses_it(jetson_stats):
    """The deploy rig's tegrastats stand-in prints jetson-stats' own Orin emulator line (tests/tegrastats)."""
    from jtop.core import tegra_parse

    from edgebench.machine import telemetry as tm

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))
    import deploy_rig

    line = deploy_rig.TEGRASTATS_ORIN
    ours = tm.parse_tegrastats(line)
    theirs_w = tegra_parse.WATTS(line)
    assert ours["rails_mw"] == {k: v["cur"] for k, v in theirs_w.items()} and ours["rails_mw"]
    theirs_cpu = tegra_parse.CPUS(line)
    assert ours["cpu_percent"] == [c.get("val") for c in theirs_cpu.values()]
    assert ours["cpu_mhz"] == [c["frq"] // 1000 for c in theirs_cpu.values()]  # theirs in kHz
    assert ours["gpu_util"] == tegra_parse.VALS(line)["GR3D"]["val"]
    temps = {k: v for k, v in tegra_parse.TEMPS(line).items() if v > -200}
    assert ours["temps_c"] == temps
    assert ours["ram_used_mb"] == tegra_parse.RAM(line)["use"]


def test_the_rig_release_file_is_jetpack_512_to_jetson_stats(jetson_stats, tmp_path, monkeypatch):
    from jtop.core import jetson_variables as jv

    from edgebench.deploy.preflight import parse_l4t

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))
    import deploy_rig

    release = tmp_path / "nv_tegra_release"
    release.write_text(deploy_rig.L4T_R35_4_1 + "\n")
    real_isfile = os.path.isfile
    monkeypatch.setattr(jv.os.path, "isfile", lambda p: True if p == "/etc/nv_tegra_release" else real_isfile(p))
    monkeypatch.setattr(jv, "cat", lambda p: release.read_text() if p == "/etc/nv_tegra_release" else "")
    l4t = jv.get_nvidia_l4t()
    assert l4t == "35.4.1" == parse_l4t(release.read_text())
    assert jv.NVIDIA_JETPACK[l4t] == "5.1.2"
