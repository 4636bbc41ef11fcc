"""Both Jetson launchers mount the board-state files of one definition (machine/boardstate.py): the container
launcher from this host's files, the remote launcher from what the device reports (its probe script, run here by
`sh` on a tree laid out as JetPack lays out a board, with a real unix socket as jtop's). No Docker, no SSH."""
from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from edgebench import __version__
from edgebench.deploy.inventory import parse
from edgebench.docker import targets
from edgebench.launchers import BenchRequest
from edgebench.launchers.container import ContainerLauncher
from edgebench.launchers.remote import RemoteLauncher
from edgebench.machine import boardstate


@pytest.fixture()
def board(tmp_path):
    """A board root: release file, nvpmodel status, tegrastats, and jtop's socket (mode 0660)."""
    root = tmp_path / "board"
    for d in ("etc", "var/lib/nvpmodel", "usr/bin", "run"):
        (root / d).mkdir(parents=True)
    (root / "etc/nv_tegra_release").write_text("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref\n")
    (root / "var/lib/nvpmodel/status").write_text("pmode:0000 fmode:quiet\n")
    (root / "usr/bin/tegrastats").write_text("#!/bin/sh\n")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(root / "run/jtop.sock"))
    (root / "run/jtop.sock").chmod(0o660)
    yield root
    s.close()


EXPECTED = {"etc/nv_tegra_release": ("/host/etc/nv_tegra_release", "ro"),
            "var/lib/nvpmodel/status": ("/host/var/lib/nvpmodel/status", "ro"),
            "usr/bin/tegrastats": ("/usr/local/bin/tegrastats", "ro"),
            "run/jtop.sock": ("/run/jtop.sock", "rw")}


def _board_binds(binds, root):
    return {k[len(str(root)) + 1:]: (v["bind"], v["mode"]) for k, v in binds.items() if k.startswith(str(root))}


class FakeAPI:
    """The docker APIClient calls the container launcher makes."""

    def __init__(self, image, results):
        self.image, self.results, self.created = image, results, []

    def inspect_image(self, name):
        return {"Id": "sha256:" + "a" * 64, "Config": {"Labels": {}}}

    def create_host_config(self, **kw):
        return kw

    def create_container(self, image, **kw):
        self.created.append(kw)
        out = next(a for a in kw["command"] if a.startswith("/results/"))
        (self.results / Path(out).name).write_text(json.dumps({"id": "sha256:" + "a" * 64}))
        return {"Id": "c1"}

    def start(self, cid):
        pass

    def logs(self, cid, stream=False, follow=False, stdout=True, stderr=True):
        return iter([b""]) if stream else b""

    def wait(self, cid, timeout=None):
        return {"StatusCode": 0}

    def remove_container(self, cid, force=False):
        pass


def test_container_launcher_mounts_the_hosts_board_files_and_the_socket_group(board, tmp_path, monkeypatch):
    real = boardstate.local_facts
    monkeypatch.setattr(boardstate, "local_facts", lambda: real(root=str(board)))
    monkeypatch.setenv("EDGEBENCH_LOG_DIR", str(tmp_path / "logs"))
    (tmp_path / "a").mkdir()
    (tmp_path / "r").mkdir()
    jetson = targets.load("jetson-jp512")
    api = FakeAPI(jetson.tag(__version__), tmp_path / "r")
    ContainerLauncher(jetson, api=api, echo=None).launch(
        BenchRequest(artifacts=str(tmp_path / "a"), out=str(tmp_path / "r" / "d.json"), device="d"))
    (c,) = api.created
    hc = c["host_config"]
    assert _board_binds(hc["binds"], board) == EXPECTED
    gid = str(os.stat(board / "run/jtop.sock").st_gid)
    assert gid in hc["group_add"] and hc["runtime"] == "nvidia"
    assert ("video" in hc["group_add"]) == (os.getuid() != 0), "video for a non-root user, as before"


def test_a_cpu_target_gets_no_board_files(board, tmp_path, monkeypatch):
    real = boardstate.local_facts
    monkeypatch.setattr(boardstate, "local_facts", lambda: real(root=str(board)))
    monkeypatch.setenv("EDGEBENCH_LOG_DIR", str(tmp_path / "logs"))
    (tmp_path / "a").mkdir()
    (tmp_path / "r").mkdir()
    api = FakeAPI("x", tmp_path / "r")
    ContainerLauncher("x86-cpu", api=api, echo=None).launch(
        BenchRequest(artifacts=str(tmp_path / "a"), out=str(tmp_path / "r" / "d.json"), device="d"))
    assert _board_binds(api.created[0]["host_config"]["binds"], board) == {}


class LocalConn:
    @staticmethod
    def exec(argv, timeout=30.0):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr


def _device(release_file):
    entry = {"name": "orin", "target": "jetson-jp512", "l4t_release_file": release_file,
             "ssh": {"user": "u", "host": "127.0.0.1", "port": 2201}}
    return parse({"devices": [entry]}, "inv.yaml").devices[0]


def test_remote_launcher_mounts_what_the_device_reported(board):
    dev = _device(f"{board}/etc/nv_tegra_release")
    launcher = RemoteLauncher(dev, targets.load("jetson-jp512"), "img", lambda: None, echo=None)
    binds, groups = launcher.board_mounts(LocalConn())
    assert _board_binds(binds, board) == EXPECTED, "the same definition as the container launcher's"
    assert groups == ["video", str(os.stat(board / "run/jtop.sock").st_gid)]
    assert launcher.board["mounted"] == ["l4t_release", "nvpmodel_status", "tegrastats", "jtop_socket"]
    (board / "run/jtop.sock").unlink()
    binds, groups = launcher.board_mounts(LocalConn())
    assert "/run/jtop.sock" not in {v["bind"] for v in binds.values()}, "a missing file is not bound (the engine " \
                                                                       "would create a directory there)"
    assert groups == ["video"]
    cpu = RemoteLauncher(dev, targets.load("x86-cpu"), "img", lambda: None, echo=None)
    assert cpu.board_mounts(LocalConn()) == ({}, [])
