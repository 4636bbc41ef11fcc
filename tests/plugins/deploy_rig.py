"""The deploy test rig: a real registry (Debian's docker-registry) and "fresh devices" (an extra dockerd with
its own empty store and its own unused bridge, reached only through its own sshd on a loopback port). Everything is
started as our own processes and stopped by its pid (never by name); only 127.0.0.1 is used.

A device can be a Jetson stand-in (`Rig(jetson=[i])`): an L4T R35.4.1 release file, an engine with a runtime named
`nvidia` (runc under that name), nvpmodel's status and config, a tegrastats that prints jetson-stats' own Orin
line, and jtop's socket (root:JTOP_GID, 0660), laid out as JetPack lays them out under the device's board root.

Used by tests/integration/test_deploy_*.py (module fixtures) and tools/deploy-bench.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

SSHD = "/usr/sbin/sshd"
RUNC = "/usr/sbin/runc"   # docker.io's runc: the stand-in engine's `nvidia` runtime runs it

# ---- the Jetson stand-in's board files: formats from JetPack 5.1.2 and from jetson-stats' own test data ----
#: /etc/nv_tegra_release of L4T R35.4.1 (JetPack 5.1.2), which jetson-stats' get_nvidia_l4t() reads as 35.4.1
L4T_R35_4_1 = ("# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
               "DATE: Tue Aug  1 19:57:35 UTC 2023")
#: jetson-stats 4.2.12's tegrastats emulator line for an Orin run as root (its tests/tegrastats, "Jetson Orin
#: (SUDO)"), its $RANDOM loads fixed: date, RAM, SWAP, 12 CPUs, GR3D/GR3D2, temperatures (-256C: no sensor), rails
TEGRASTATS_ORIN = (
    "01-03-2023 16:07:54 RAM 2257/30536MB (lfb 5392x4MB) SWAP 0/15268MB (cached 0MB) CPU [12%@729,3%@729,0%@729,"
    "7%@729,1%@729,0%@729,5%@729,2%@729,0%@729,9%@729,4%@729,6%@729] EMC_FREQ 0%@204 GR3D_FREQ 37%@0 "
    "GR3D2_FREQ 12%@0 NVJPG1 729 VIC_FREQ 115 APE 233 CV0@-256C CPU@41.437C Tboard@29C SOC2@39.062C "
    "Tdiode@30.75C SOC0@39.031C CV1@-256C GPU@-256C tj@41.656C SOC1@38.937C CV2@-256C VDD_GPU_SOC 2390mW/2390mW "
    "VDD_CPU_CV 796mW/796mW VIN_SYS_5V0 3522mW/3522mW NC 0mW/0mW VDDQ_VDD2_1V8AO 301mW/301mW NC 0mW/0mW")
#: /etc/nvpmodel.conf's mode lines of an Orin Nano 8 GB on JetPack 5.1.2 (nvpmodel_p3767_0003.conf)
NVPMODEL_CONF = ("< POWER_MODEL ID=0 NAME=15W >\nCPU_ONLINE CORE_0 1\n< POWER_MODEL ID=1 NAME=7W >\n"
                 "CPU_ONLINE CORE_0 1\n< PM_CONFIG DEFAULT=0 >\n")
#: tegrastats' command line as the kit runs it (`tegrastats --interval MS`): the stand-in prints the line above
TEGRASTATS_SCRIPT = """#!/bin/sh
ms=1000
while [ $# -gt 0 ]; do case "$1" in --interval) ms=$2; shift;; esac; shift; done
s="$((ms / 1000)).$(printf %03d $((ms % 1000)))"
while true; do echo '{line}'; sleep "$s"; done
"""
JTOP_GID = 4242   # the stand-in's `jtop` group (a real board's is a system gid chosen by jetson-stats' installer)
DOCKERD = "/usr/sbin/dockerd"
REGISTRY = "/usr/bin/docker-registry"


def missing() -> Optional[str]:
    """Why the rig cannot run here (None when it can)."""
    for exe, pkg in ((SSHD, "openssh-server"), (DOCKERD, "docker.io"), (REGISTRY, "docker-registry")):
        if not os.access(exe, os.X_OK):
            return f"{exe} not installed (apt-get install {pkg}; .ci/deploy-setup.sh)"
    if os.geteuid() != 0:
        return "the deploy rig starts dockerd, which needs root"
    try:
        import paramiko  # noqa: F401
    except ImportError:
        return "paramiko is not installed (pip install -r requirements/host.txt)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout: float, what: str, log: Optional[Path] = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s\n{tail}")


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop_pid(pid: Optional[int], timeout: float = 20.0, sig: int = signal.SIGTERM) -> None:
    if not pid:
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        try:  # our own child: reap it
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            pass
        time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class Registry:
    """docker-registry serving a fresh store on 127.0.0.1:<port> (read-only with `readonly=True`)."""

    def __init__(self, base: Path, port: Optional[int] = None, readonly: bool = False):
        self.base = base
        self.port = port or free_port()
        self.readonly = readonly
        self.proc: Optional[subprocess.Popen] = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "Registry":
        self.base.mkdir(parents=True, exist_ok=True)
        (self.base / "store").mkdir(exist_ok=True)
        maintenance = "  maintenance:\n    readonly:\n      enabled: true\n" if self.readonly else ""
        cfg = self.base / "config.yml"
        cfg.write_text(f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                       f"    rootdirectory: {self.base / 'store'}\n  delete:\n    enabled: true\n{maintenance}"
                       f"http:\n  addr: 127.0.0.1:{self.port}\n")
        logf = open(self.base / "registry.log", "wb")
        self.proc = subprocess.Popen([REGISTRY, "serve", str(cfg)], stdout=logf, stderr=subprocess.STDOUT)
        wait_for(lambda: _port_open(self.port), 20, f"registry on {self.address}", self.base / "registry.log")
        return self

    def stop(self) -> None:
        if self.proc:
            _stop_pid(self.proc.pid)
            self.proc = None


class FakeDevice:
    """A second Docker engine (own data root, own unused bridge) behind its own sshd on 127.0.0.1:<port>."""

    def __init__(self, name: str, base: Path, keys: Path, known_hosts: Path, l4t_line: str, jetson: bool = False):
        self.jetson = jetson      # a Jetson stand-in: board files under base/board, a `nvidia` runtime
        self.name = name
        self.base = base          # short path: the engine's sockets live under it
        self.keys = keys          # the rig's user key pair: keys/id_ed25519(.pub)
        self.known_hosts = known_hosts
        self.l4t_line = l4t_line
        self.port = free_port()
        self.sshd: Optional[subprocess.Popen] = None
        tag = os.urandom(2).hex()
        self.bridge = f"ebbr{name[-1]}{tag}"                                  # <= 15 characters
        self.bridge_cidr = f"10.{231 + int(name[-1]) % 20}.{int(tag, 16) % 250 + 1}.1/24"

    @property
    def socket(self) -> Path:
        return self.base / "docker.sock"

    @property
    def board(self) -> Path:
        """The stand-in's board root: JetPack's paths under it (the kit's board root, from the release file)."""
        return self.base / "board"

    @property
    def l4t_file(self) -> Path:
        return self.board / "etc/nv_tegra_release" if self.jetson else self.base / "nv_tegra_release"

    def set_power_mode(self, mode: int) -> None:
        """/var/lib/nvpmodel/status as nvpmodel leaves it after `nvpmodel -m MODE`."""
        (self.board / "var/lib/nvpmodel/status").write_text(f"pmode:{mode:04d} fmode:quiet\n")

    def make_board(self) -> None:
        """An Orin's board files where JetPack keeps them: nvpmodel's status and config, tegrastats, and jtop's
        socket (a bound unix socket, root:JTOP_GID, mode 0660 as jetson-stats' service leaves it; no service)."""
        import socket as socketlib

        for d in ("etc", "var/lib/nvpmodel", "usr/bin", "run"):
            (self.board / d).mkdir(parents=True, exist_ok=True)
        (self.board / "etc/nvpmodel.conf").write_text(NVPMODEL_CONF)
        self.set_power_mode(0)
        tegrastats = self.board / "usr/bin/tegrastats"
        tegrastats.write_text(TEGRASTATS_SCRIPT.replace("{line}", TEGRASTATS_ORIN))
        tegrastats.chmod(0o755)
        sock = self.board / "run/jtop.sock"
        self._jtop = socketlib.socket(socketlib.AF_UNIX)
        self._jtop.bind(str(sock))
        os.chown(sock, 0, JTOP_GID)
        sock.chmod(0o660)

    def start(self) -> "FakeDevice":
        for d in ("root", "exec"):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        if self.jetson:
            self.make_board()
        self.l4t_file.write_text(self.l4t_line + "\n")
        self.start_dockerd()
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.base / "host_key")], check=True)
        shutil.copy(self.keys / "id_ed25519.pub", self.base / "authorized_keys")
        Path("/run/sshd").mkdir(exist_ok=True)
        (self.base / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.base / 'host_key'}\n"
            f"PidFile {self.base / 'sshd.pid'}\nAuthorizedKeysFile {self.base / 'authorized_keys'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
            "StrictModes no\nUsePAM no\nMaxStartups 50\nMaxSessions 50\n"
            f"SetEnv DOCKER_HOST=unix://{self.socket}\nSubsystem sftp /usr/lib/openssh/sftp-server\n")
        self.start_sshd()
        self.accept_host_key()
        return self

    def make_bridge(self) -> None:
        """An own, empty bridge for this engine. NOT `--bridge=none`: dockerd then deletes the host's
        `docker0` (moby's removeDefaultBridgeInterface), breaking the main engine's default network."""
        if subprocess.run(["ip", "link", "show", self.bridge], capture_output=True).returncode == 0:
            return
        subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", self.bridge_cidr, "dev", self.bridge], check=True)

    def start_dockerd(self) -> None:
        self.make_bridge()
        logf = open(self.base / "dockerd.log", "ab")
        subprocess.Popen([DOCKERD, "--data-root", str(self.base / "root"), "--exec-root", str(self.base / "exec"),
                          "-H", f"unix://{self.socket}", "--pidfile", str(self.base / "docker.pid"),
                          f"--bridge={self.bridge}", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                          *([f"--add-runtime=nvidia={self.nvidia_runtime()}"] if self.jetson else [])],
                         stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._engine_up, 60, f"dockerd of {self.name}", self.base / "dockerd.log")

    def nvidia_runtime(self) -> Path:
        """The `nvidia` runtime: runc behind a wrapper that logs each call (JetPack's nvidia-container-runtime
        is such a wrapper too), so a test can tell that a container went through the runtime named `nvidia`."""
        wrapper = self.base / "nvidia-runtime"
        if not wrapper.exists():
            wrapper.write_text(f'#!/bin/sh\necho "$*" >> {self.base / "nvidia-runtime.log"}\nexec {RUNC} "$@"\n')
            wrapper.chmod(0o755)
        return wrapper

    def runtime_calls(self) -> List[str]:
        """Each call of the `nvidia` runtime so far (its argument list)."""
        log = self.base / "nvidia-runtime.log"
        return log.read_text().splitlines() if log.exists() else []

    def _engine_up(self) -> bool:
        return subprocess.run(["docker", "-H", f"unix://{self.socket}", "version"], capture_output=True).returncode == 0

    def start_sshd(self) -> None:
        logf = open(self.base / "sshd.log", "ab")
        self.sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.base / "sshd_config")], stdout=logf,
                                     stderr=subprocess.STDOUT)
        wait_for(lambda: _port_open(self.port), 20, f"sshd of {self.name}", self.base / "sshd.log")

    def host_key_line(self) -> str:
        key = (self.base / "host_key.pub").read_text().split()
        return f"[127.0.0.1]:{self.port} {key[0]} {key[1]}\n"

    def accept_host_key(self) -> None:
        with open(self.known_hosts, "a") as f:
            f.write(self.host_key_line())

    def dockerd_pid(self) -> Optional[int]:
        try:
            return int((self.base / "docker.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def kill_dockerd(self) -> None:
        """Hard stop of this device's engine (a transfer cut midway); start_dockerd() brings it back."""
        _stop_pid(self.dockerd_pid(), sig=signal.SIGKILL)
        (self.base / "docker.pid").unlink(missing_ok=True)
        # its containerd dies with it (parent-death signal) but leaves its pid file and sockets, on which a
        # restarted dockerd waits in vain: clear the exec root (no containers run on a fake device)
        time.sleep(0.5)
        shutil.rmtree(self.base / "exec", ignore_errors=True)
        (self.base / "exec").mkdir()

    def stop_sshd(self) -> None:
        if self.sshd:
            _stop_pid(self.sshd.pid)
            self.sshd = None

    def docker(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "-H", f"unix://{self.socket}", *args], capture_output=True, text=True)

    def stop(self) -> None:
        self.stop_sshd()
        if getattr(self, "_jtop", None) is not None:
            self._jtop.close()
        pid = self.dockerd_pid()
        _stop_pid(pid, timeout=10)
        subprocess.run(["umount", "-R", str(self.base / "root")], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


class Rig:
    """Registry + N fake devices + a known_hosts and user key of its own."""

    def __init__(self, devices: int = 2, l4t_lines: Optional[List[str]] = None, jetson: Sequence[int] = ()):
        """`jetson`: indexes of the devices that are Jetson stand-ins (FakeDevice(jetson=True))."""
        self.dir = Path(tempfile.mkdtemp(prefix="ebrig-", dir="/tmp"))
        self.keys = self.dir / "keys"
        self.keys.mkdir()
        self.known_hosts = self.dir / "known_hosts"
        self.known_hosts.touch()
        lines = l4t_lines or ["# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64"] * devices
        self.devices: List[FakeDevice] = [
            FakeDevice(f"dev{i + 1}", Path(tempfile.mkdtemp(prefix=f"ebd{i + 1}", dir="/tmp")), self.keys,
                       self.known_hosts, L4T_R35_4_1 if i in jetson else lines[i], jetson=i in jetson)
            for i in range(devices)]
        self.registry = Registry(self.dir / "registry")
        self.readonly_registry = Registry(self.dir / "registry-ro", readonly=True)

    def start(self) -> "Rig":
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.keys / "id_ed25519")], check=True)
        self.registry.start()
        self.readonly_registry.start()
        for d in self.devices:
            d.start()
        return self

    def inventory(self, path: Path, registry: bool = True, devices: Optional[List[Dict]] = None) -> Path:
        """A devices.yaml for the rig (x86-cpu on every fake device, unless `devices` says otherwise)."""
        import yaml

        entries = devices or [self.entry(d) for d in self.devices]
        doc = {"known_hosts": str(self.known_hosts), "devices": entries}
        if registry:
            doc["registry"] = f"{self.registry.address}/edgebench"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return path

    def entry(self, d: FakeDevice, **over) -> Dict:
        e = {"name": d.name, "target": "x86-cpu", "l4t_release_file": str(d.l4t_file), "reserve_gb": 0.5,
             "ssh": {"user": "root", "host": "127.0.0.1", "port": d.port,
                     "identity_file": str(self.keys / "id_ed25519")}}
        e.update(over)
        return e

    def stop(self) -> None:
        for d in self.devices:
            d.stop()
        self.registry.stop()
        self.readonly_registry.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
