"""Preflight: what a device is (Docker version, architecture, L4T release, runtimes, free disk, and on a Jetson
its board state: jetson-stats version, power mode, whether jetson_clocks locked the clocks) and whether a target's
image can go there. `deploy` and `bench --devices` run the same checks first.

Facts come from the device's Docker engine (`version()`, `info()`) and, for what Docker does not report, from
the same SSH session in one exec: the L4T release file (`cat FILE`), free space on Docker's data root
(`df -Pk ROOT`) and the board-state probe of `machine/boardstate.py` (the files the Jetson launchers mount).
Every problem is a sentence in `DeviceCheck.problems`; a device with problems is refused. A warning (a power mode
below the maximum, clocks not locked, jtop that will not answer the image's client) is reported, not refused.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from edgebench.deploy.inventory import Device
from edgebench.docker.targets import machine_of
from edgebench.machine import boardstate

_L4T = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([0-9.]+)")
GB = 1024 ** 3
SEPARATOR = "\n--edgebench--\n"
#: L4T release file ($1), free space on Docker's data root ($2), the board probe ($3, boardstate.PROBE_SCRIPT)
#: under the board root ($4)
HOST_FACTS = ('cat -- "$1" 2>/dev/null; printf "\\n--edgebench--\\n"; df -Pk -- "$2" 2>/dev/null; '
              'printf "\\n--edgebench--\\n"; sh -c "$3" sh "$4"; true')


@dataclass
class DeviceCheck:
    device: str
    reachable: bool = False
    docker_version: str = ""
    arch: str = ""
    l4t: Optional[str] = None            # "35.4.1"; None when the release file is absent
    runtimes: List[str] = field(default_factory=list)
    data_root: str = ""
    free_bytes: Optional[int] = None
    power_mode: Optional[str] = None     # "15W (mode 0)"
    power_mode_id: Optional[int] = None
    jetson_stats: Optional[str] = None   # the host's jetson-stats (jtop's service) version
    jetson_clocks: Optional[str] = None  # "on" (every clock's minimum at its maximum), "off", None: unknown
    board_files: List[str] = field(default_factory=list)  # boardstate keys the device has (what a bench mounts)
    warnings: List[str] = field(default_factory=list)
    image_bytes: Optional[int] = None    # the image to deploy, for the disk check
    problems: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reachable and not self.problems

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["ok"] = self.ok
        return d


def parse_l4t(text: Optional[str]) -> Optional[str]:
    """'# R35 (release), REVISION: 4.1, ...' -> '35.4.1'; None when absent or not an L4T release line."""
    if not text:
        return None
    m = _L4T.search(text.splitlines()[0] if text.strip() else "")
    return f"{m.group(1)}.{m.group(2)}" if m else None


def parse_df(text: str) -> Optional[int]:
    """Available bytes from `df -Pk PATH` output."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) < 2:
        return None
    parts = lines[-1].split()
    try:
        return int(parts[3]) * 1024
    except (IndexError, ValueError):
        return None


def probe(conn: Any, device: Device) -> DeviceCheck:
    """The device's facts through an open DeviceConnection (no judgement yet)."""
    check = DeviceCheck(device.name, reachable=True)
    version = conn.api.version()
    info = conn.api.info()
    check.docker_version = str(version.get("Version", ""))
    check.arch = str(info.get("Architecture", ""))
    check.runtimes = sorted((info.get("Runtimes") or {}).keys())
    check.data_root = str(info.get("DockerRootDir", ""))
    # one SSH exec for the host facts: constant scripts, the paths passed as their arguments
    root = boardstate.board_root(device.l4t_release_file)
    _, out, _ = conn.exec(["sh", "-c", HOST_FACTS, "sh", device.l4t_release_file, check.data_root or "/",
                           boardstate.PROBE_SCRIPT, root])
    parts = (out.split(SEPARATOR) + ["", "", ""])[:3]
    check.l4t = parse_l4t(parts[0])
    check.free_bytes = parse_df(parts[1]) if check.data_root else None
    board_facts(check, boardstate.parse_probe(parts[2], root))
    return check


def board_facts(check: DeviceCheck, facts: Any) -> DeviceCheck:
    """The board's jetson-stats version, power mode and jetson_clocks state (boardstate.BoardFacts) on `check`."""
    from edgebench.machine.telemetry import parse_nvpmodel, parse_nvpmodel_query

    check.board_files = list(facts.present)
    check.jetson_stats = facts.jetson_stats
    mode = (parse_nvpmodel(facts.nvpmodel_status, facts.nvpmodel_conf_modes)
            or parse_nvpmodel_query(facts.nvpmodel_query))
    if mode:
        check.power_mode_id = int(mode["id"])
        check.power_mode = f"{mode.get('name') or '?'} (mode {mode['id']})"
    locked = boardstate.clocks_locked(facts)
    check.jetson_clocks = None if locked is None else ("on" if locked else "off")
    return check


def judge(check: DeviceCheck, device: Device, target: Any, image_bytes: Optional[int] = None,
          image_present: bool = False) -> DeviceCheck:
    """Add a problem for each way `target`'s image (of `image_bytes`) cannot run on this device."""
    check.image_bytes = image_bytes
    want_arch = machine_of(target.platform) or target.platform
    if check.arch and check.arch != want_arch:
        check.problems.append(f"architecture: the {target.name} image is {target.platform} ({want_arch}) but the "
                              f"device's engine is {check.arch}")
    if target.l4t:
        want = target.l4t.split(".")[0]
        if check.l4t is None:
            check.problems.append(f"L4T: the {target.name} image needs L4T R{target.l4t} (JetPack) but "
                                  f"{device.l4t_release_file} is absent or not an L4T release line")
        elif check.l4t.split(".")[0] != want:
            check.problems.append(f"L4T: the {target.name} image is built for L4T R{target.l4t} but the device "
                                  f"runs R{check.l4t} (another major release: another JetPack)")
    runtime = device.runtime or ("nvidia" if target.gpu == "nvidia-runtime" else None)
    if runtime and runtime not in check.runtimes:
        check.problems.append(f"runtime: the {target.name} image needs the {runtime!r} container runtime; the "
                              f"device's engine has {', '.join(check.runtimes) or 'none'} "
                              f"(install nvidia-container-toolkit / JetPack's nvidia-container)")
    if target.gpu == "nvidia-runtime" and check.l4t is not None:
        check.warnings.extend(board_warnings(check, target))
    if image_bytes and not image_present:
        need = image_bytes + int(device.reserve_gb * GB)
        if check.free_bytes is None:
            check.problems.append(f"disk: could not read free space on {check.data_root or 'the data root'}")
        elif check.free_bytes < need:
            check.problems.append(f"disk: {check.free_bytes / GB:.1f} GB free on {check.data_root}, the image needs "
                                  f"{image_bytes / GB:.2f} GB + {device.reserve_gb:g} GB reserve")
    return check


def board_warnings(check: DeviceCheck, target: Any) -> List[str]:
    """What will make a Jetson's numbers low or its board state thin: reported, never refused."""
    out = []
    if check.power_mode_id is None:
        out.append("power mode unknown (no /var/lib/nvpmodel/status or nvpmodel on the device)")
    elif check.power_mode_id != boardstate.MAX_POWER_MODE:
        out.append(f"power mode {check.power_mode} is not the maximum (mode {boardstate.MAX_POWER_MODE}): "
                   f"`sudo nvpmodel -m {boardstate.MAX_POWER_MODE}` for published numbers")
    if check.jetson_clocks == "off":
        out.append("clocks are not locked: `sudo jetson_clocks` before benchmarking")
    pin = target.versions.get("jetson-stats")
    if check.jetson_stats is None:
        out.append(f"jetson-stats is not installed on the device: results read the board from nvpmodel's files "
                   f"and sysfs (for jtop: sudo pip3 install jetson-stats=={pin or '<the image pin>'})")
    elif pin and check.jetson_stats != pin:
        out.append(f"the device's jetson-stats is {check.jetson_stats}, the {target.name} image's client {pin}: "
                   f"jtop refuses another version (sudo pip3 install jetson-stats=={pin}; "
                   f"sudo systemctl restart jtop.service)")
    return out


def table(checks: List[DeviceCheck]) -> str:
    """The preflight table `edgebench devices` prints."""
    head = ("device", "ok", "docker", "arch", "L4T", "runtimes", "free GB", "power mode", "clocks", "jetson-stats",
            "problems")
    rows = [head]
    for c in checks:
        notes = c.problems + [f"warning: {w}" for w in c.warnings]
        rows.append((c.device, "yes" if c.ok else "NO", c.docker_version or "-", c.arch or "-", c.l4t or "-",
                     ",".join(c.runtimes) or "-", f"{c.free_bytes / GB:.1f}" if c.free_bytes is not None else "-",
                     c.power_mode or "-", c.jetson_clocks or "-", c.jetson_stats or "-", "; ".join(notes) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows)


__all__ = ["DeviceCheck", "probe", "judge", "table", "parse_l4t", "parse_df", "board_facts", "board_warnings"]
