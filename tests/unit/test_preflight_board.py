"""The preflight's board state on a Jetson: jetson-stats version, power mode, jetson_clocks, and the warnings
(reported, never refused). The device's facts come from its real shell scripts (HOST_FACTS and the board probe),
run here by `sh` on a tree laid out as JetPack lays out a board; no Docker, no SSH."""
from __future__ import annotations

import subprocess
from pathlib import Path

from edgebench.deploy import preflight
from edgebench.deploy.inventory import parse
from edgebench.docker.targets import load as load_target

R35 = ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
       "DATE: Tue Aug  1 19:57:35 UTC 2023")
CONF = "< POWER_MODEL ID=0 NAME=15W >\nCPU_ONLINE CORE_0 1\n< POWER_MODEL ID=1 NAME=7W >\n< PM_CONFIG DEFAULT=0 >\n"


class LocalConn:
    """A DeviceConnection whose docker API answers like a Jetson's engine and whose exec runs here."""

    class api:  # noqa: N801 - stands for the connection's docker APIClient
        @staticmethod
        def version():
            return {"Version": "24.0.5"}

        @staticmethod
        def info():
            return {"Architecture": "aarch64", "Runtimes": {"nvidia": {}, "runc": {}}, "DockerRootDir": "/"}

    @staticmethod
    def exec(argv):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout, r.stderr


def _board(tmp_path: Path, mode: int) -> Path:
    root = tmp_path / "board"
    (root / "etc").mkdir(parents=True)
    (root / "etc/nv_tegra_release").write_text(R35 + "\n")
    (root / "etc/nvpmodel.conf").write_text(CONF)
    (root / "var/lib/nvpmodel").mkdir(parents=True)
    (root / "var/lib/nvpmodel/status").write_text(f"pmode:{mode:04d} fmode:quiet\n")
    return root


def _device(root: Path):
    entry = {"name": "orin", "target": "jetson-jp512", "l4t_release_file": f"{root}/etc/nv_tegra_release",
             "ssh": {"user": "u", "host": "127.0.0.1", "port": 2201}}
    return parse({"devices": [entry]}, "inv.yaml").devices[0]


def test_power_mode_and_board_files_from_the_device(tmp_path):
    root = _board(tmp_path, 0)
    dev = _device(root)
    check = preflight.judge(preflight.probe(LocalConn(), dev), dev, load_target("jetson-jp512"))
    assert check.ok, check.problems
    assert check.l4t == "35.4.1" and check.power_mode == "15W (mode 0)" and check.power_mode_id == 0
    assert sorted(check.board_files) == ["l4t_release", "nvpmodel_conf", "nvpmodel_status"]
    assert not any("power mode" in w for w in check.warnings)
    assert any("jetson-stats is not installed" in w and "jetson-stats==4.2.12" in w for w in check.warnings)
    assert check.to_dict()["warnings"] == check.warnings


def test_a_power_mode_below_the_maximum_is_a_warning_not_a_refusal(tmp_path):
    dev = _device(_board(tmp_path, 1))
    check = preflight.judge(preflight.probe(LocalConn(), dev), dev, load_target("jetson-jp512"))
    assert check.ok, "a warning does not refuse the device"
    assert any(w.startswith("power mode 7W (mode 1) is not the maximum") and "nvpmodel -m 0" in w
               for w in check.warnings)
    text = preflight.table([check])
    assert "7W (mode 1)" in text and "warning: power mode 7W" in text


def test_jetson_stats_of_another_version_and_clocks(tmp_path):
    check = preflight.DeviceCheck("orin", reachable=True, arch="aarch64", l4t="35.4.1", runtimes=["nvidia"],
                                  power_mode="15W (mode 0)", power_mode_id=0, jetson_stats="4.3.1",
                                  jetson_clocks="off")
    dev = _device(tmp_path)
    out = preflight.judge(check, dev, load_target("jetson-jp512"))
    assert out.ok
    assert any("jetson-stats is 4.3.1" in w and "jetson-stats==4.2.12" in w for w in out.warnings)
    assert any("sudo jetson_clocks" in w for w in out.warnings)
    same = preflight.judge(preflight.DeviceCheck("orin", reachable=True, arch="aarch64", l4t="35.4.1",
                                                 runtimes=["nvidia"], power_mode_id=0, jetson_stats="4.2.12",
                                                 jetson_clocks="on"), dev, load_target("jetson-jp512"))
    assert same.warnings == []
    cpu = preflight.judge(preflight.DeviceCheck("box", reachable=True, arch="x86_64"), dev, load_target("x86-cpu"))
    assert cpu.warnings == [], "no board warnings off a Jetson target"


def test_the_image_pin_is_the_readme_host_install_and_the_test_pin():
    """One jetson-stats version everywhere: jtop's client refuses a service of another version."""
    repo = Path(__file__).resolve().parents[2]
    pin = load_target("jetson-jp512").versions["jetson-stats"]
    line = f"jetson-stats=={pin}"
    assert line in (repo / "containers/jetson-jp512/requirements.txt").read_text().splitlines()
    assert line in (repo / "requirements/py38-jetson-real.txt").read_text().splitlines()
    readme = (repo / "README.md").read_text()
    assert f"sudo pip3 install jetson-stats=={pin}" in readme
    assert "pip3 install -U jetson-stats" not in readme, "the newest jetson-stats would not match the image's"
