"""The Jetson board-state files, defined once: which of the host's files a Jetson container gets, where they
appear inside it, and the groups needed to read them.

Both Jetson launchers use `binds()` and `group_add()` over one `BoardFacts`:
- `launchers/container.py` (this host's engine): the facts come from this host (`local_facts()`, os.stat);
- `launchers/remote.py` (a device's engine over SSH / the docker API): the facts come from the device itself
  (`PROBE_SCRIPT` through the same SSH session as the preflight, read by `parse_probe()`). The docker API cannot
  say whether a host path exists, and a bind whose source is missing is created by the engine as an empty
  directory (a directory at /run/jtop.sock stops jtop's service from starting), so only what the device reported
  is mounted.

jtop's socket is root:jtop with mode 0660 (jetson-stats' service chmods it so), and the image has no `jtop` group:
the container is given the socket's numeric group id, read from the socket on the host.

The board files are looked up under a board root: "" (the file system's root) on a real board. A device whose
release file is configured as `<root>/etc/nv_tegra_release` has its board files under the same `<root>` (the
deploy rig's Jetson stand-in uses that; a real board keeps the default /etc/nv_tegra_release).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

RELEASE_FILE = "/etc/nv_tegra_release"


@dataclass(frozen=True)
class BoardFile:
    key: str      # the name a fact and a result use
    host: str     # where JetPack keeps it on the board (under the board root)
    inside: str   # where the container sees it
    mode: str     # "ro", or "rw" for jtop's socket (a client writes to it)


#: the one list: the host's L4T release, nvpmodel's status and config, tegrastats, jtop's socket
BOARD_FILES: Tuple[BoardFile, ...] = (
    BoardFile("l4t_release", RELEASE_FILE, "/host/etc/nv_tegra_release", "ro"),
    BoardFile("nvpmodel_status", "/var/lib/nvpmodel/status", "/host/var/lib/nvpmodel/status", "ro"),
    BoardFile("nvpmodel_conf", "/etc/nvpmodel.conf", "/host/etc/nvpmodel.conf", "ro"),
    BoardFile("tegrastats", "/usr/bin/tegrastats", "/usr/local/bin/tegrastats", "ro"),
    BoardFile("jtop_socket", "/run/jtop.sock", "/run/jtop.sock", "rw"),
)
BY_KEY = {f.key: f for f in BOARD_FILES}
#: nvpmodel's mode 0 is each Jetson's maximum (Orin Nano 8 GB on JetPack 5: 15W; 7W is mode 1)
MAX_POWER_MODE = 0
#: Jetson's GPU device nodes (/dev/nvhost-*, /dev/nvmap) belong to `video`
VIDEO_GROUP = "video"


def inside(key: str) -> str:
    """Where the container sees board file `key`."""
    return BY_KEY[key].inside


@dataclass
class BoardFacts:
    """What a board has, as its host sees it."""
    root: str = ""                                         # "" on a real board
    present: List[str] = field(default_factory=list)       # keys of BOARD_FILES that exist
    socket_gid: Optional[int] = None                       # jtop socket's group id
    socket_mode: Optional[str] = None                      # "660" as jetson-stats sets it
    jetson_stats: Optional[str] = None                     # the host's jetson-stats version (jtop's service)
    nvpmodel_status: Optional[str] = None                  # /var/lib/nvpmodel/status text
    nvpmodel_conf_modes: Optional[str] = None              # the POWER_MODEL lines of /etc/nvpmodel.conf
    nvpmodel_query: Optional[str] = None                   # `nvpmodel -q` output, where the tool exists
    freqs: List[Tuple[str, int, int]] = field(default_factory=list)  # (cpu|gpu, min kHz/Hz, max) from sysfs

    def host_path(self, key: str) -> str:
        return self.root + BY_KEY[key].host


def board_root(release_file: str) -> str:
    """The board root of a device whose L4T release file is `release_file` ("" for the default)."""
    if release_file.endswith(RELEASE_FILE) and release_file != RELEASE_FILE:
        return release_file[:-len(RELEASE_FILE)].rstrip("/")
    return ""


def binds(facts: BoardFacts) -> Dict[str, Dict[str, str]]:
    """docker-py binds {host path: {bind, mode}} for each board file the host has."""
    return {facts.host_path(f.key): {"bind": f.inside, "mode": f.mode} for f in BOARD_FILES if f.key in facts.present}


def group_add(facts: BoardFacts, gpu_group: bool = True) -> List[str]:
    """Supplementary groups for a Jetson container: `video` (the GPU) and jtop socket's group id, when mounted."""
    out = [VIDEO_GROUP] if gpu_group else []
    if "jtop_socket" in facts.present and facts.socket_gid is not None:
        out.append(str(facts.socket_gid))
    return out


def local_facts(root: str = "", exists: Callable[[str], bool] = os.path.exists) -> BoardFacts:
    """This host's board files (the container launcher's side)."""
    facts = BoardFacts(root=root, present=[f.key for f in BOARD_FILES if exists(root + f.host)])
    if "jtop_socket" in facts.present:
        try:
            st = os.stat(facts.host_path("jtop_socket"))
            facts.socket_gid, facts.socket_mode = st.st_gid, format(st.st_mode & 0o777, "o")
        except OSError:
            pass
    return facts


#: run on a device as `sh -c PROBE_SCRIPT sh ROOT`: one `key value` line per fact (POSIX sh and coreutils only)
_SOCK, _STATUS, _CONF = (BY_KEY[k].host for k in ("jtop_socket", "nvpmodel_status", "nvpmodel_conf"))
PROBE_SCRIPT = "\n".join([
    'r=$1',
    *[f'[ -e "$r{f.host}" ] && echo "present {f.key}"' for f in BOARD_FILES],
    f'[ -S "$r{_SOCK}" ] && echo "socket $(stat -L -c \'%g %a\' "$r{_SOCK}")"',
    # the host's jetson-stats, read from its installed metadata (nothing imported, no service contacted)
    'v=$(python3 -c "from importlib.metadata import version; print(version(\'jetson-stats\'))" 2>/dev/null) '
    '&& echo "jetson_stats $v"',
    f'[ -r "$r{_STATUS}" ] && echo "nvpmodel_status $(head -c 200 "$r{_STATUS}")"',
    f'[ -r "$r{_CONF}" ] && grep -E "^<[[:space:]]*POWER_MODEL" "$r{_CONF}" | head -n 20 | sed "s/^/nvpmodel_conf /"',
    'command -v nvpmodel >/dev/null 2>&1 && nvpmodel -q 2>/dev/null | sed "s/^/nvpmodel_query /"',
    'for d in /sys/devices/system/cpu/cpu[0-9]*/cpufreq; do [ -r "$d/scaling_max_freq" ] && '
    'echo "freq cpu $(cat "$d/scaling_min_freq") $(cat "$d/scaling_max_freq")"; done',
    'for d in /sys/class/devfreq/*; do case "$d" in *ga10b|*gv11b|*gp10b|*gpu) [ -r "$d/max_freq" ] && '
    'echo "freq gpu $(cat "$d/min_freq") $(cat "$d/max_freq")";; esac; done',
    'true',
])


def parse_probe(text: str, root: str = "") -> BoardFacts:
    """PROBE_SCRIPT's output -> BoardFacts (unknown or malformed lines are ignored)."""
    facts = BoardFacts(root=root)
    conf: List[str] = []
    query: List[str] = []
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        value = value.strip()
        if key == "present" and value in BY_KEY and value not in facts.present:
            facts.present.append(value)
        elif key == "socket":
            parts = value.split()
            if parts and parts[0].isdigit():
                facts.socket_gid = int(parts[0])
                facts.socket_mode = parts[1] if len(parts) > 1 else None
        elif key == "jetson_stats" and value:
            facts.jetson_stats = value
        elif key == "nvpmodel_status" and value:
            facts.nvpmodel_status = value
        elif key == "nvpmodel_conf":
            conf.append(value)
        elif key == "nvpmodel_query":
            query.append(value)
        elif key == "freq":
            parts = value.split()
            if len(parts) == 3 and parts[0] in ("cpu", "gpu") and parts[1].isdigit() and parts[2].isdigit():
                facts.freqs.append((parts[0], int(parts[1]), int(parts[2])))
    facts.nvpmodel_conf_modes = "\n".join(conf) or None
    facts.nvpmodel_query = "\n".join(query).strip() or None
    return facts


def probe(exec_: Callable[[List[str]], Tuple[int, str, str]], root: str = "") -> BoardFacts:
    """A device's board facts through `exec_(argv) -> (status, stdout, stderr)` (an SSH session's exec)."""
    _, out, _ = exec_(["sh", "-c", PROBE_SCRIPT, "sh", root])
    return parse_probe(out, root)


def clocks_locked(facts: BoardFacts) -> Optional[bool]:
    """jetson_clocks leaves every CPU's and the GPU's minimum frequency at its maximum: True / False, or None
    when sysfs showed no frequencies."""
    if not facts.freqs:
        return None
    return all(lo == hi for _, lo, hi in facts.freqs)


__all__ = ["BOARD_FILES", "BoardFile", "BoardFacts", "MAX_POWER_MODE", "PROBE_SCRIPT", "RELEASE_FILE", "VIDEO_GROUP",
           "binds", "board_root", "clocks_locked", "group_add", "inside", "local_facts", "parse_probe", "probe"]
