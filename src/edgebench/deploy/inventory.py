"""The fleet inventory: `devices.yaml` loaded and validated into `Inventory` / `Device`.

Where it is read from: the `--inventory` flag, then `invoke.yaml`'s `edgebench.inventory`, then
`devices.yaml` at the repo root (`find_inventory`). A bad file is an `InventoryError` naming the file,
the device and the key. Registry credentials never live here: Docker's own config / credential helpers
hold them.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from edgebench.deploy.errors import InventoryError

DEFAULT_L4T_FILE = "/etc/nv_tegra_release"
DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
FLEET_KEYS = {"registry", "known_hosts", "devices"}
DEVICE_KEYS = {"name", "ssh", "target", "l4t_release_file", "runtime", "label", "reserve_gb", "docker_api"}
SSH_KEYS = {"user", "host", "port", "identity_file"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_REGISTRY = re.compile(r"^[A-Za-z0-9.-]+(:\d+)?(/[a-z0-9._/-]+)?$")


def _spec():
    """The inventory's schema (issue 20): every key's type and range, checked at load before anything connects."""
    from edgebench.contracts.schema import Int, List_, Map, Null, Num, Str

    text = Str(max_len=4096)
    ssh = Map({"user": Str(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$", hint="a user name"),
               # a host name or an address; IPv6 with two colons or more. "h:2299": the port goes in ssh.port
               "host": Str(pattern=r"^([A-Za-z0-9_.-]{1,253}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f.]*)$",
                           hint="a host name or address (put a port in ssh.port, not after a colon)"),
               "port": Int(1, 65535), "identity_file": text}, required=("user", "host"))
    device = Map({"name": Str(pattern=_NAME.pattern, hint="letters, digits, '.', '_', '-' (at most 63)"),
                  "ssh": ssh, "target": Str(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", hint="a target name"),
                  "l4t_release_file": Str(pattern=r"^/", max_len=4096, hint="an absolute path on the device"),
                  "runtime": Str(pattern=r"^[a-z][a-z0-9_.-]{0,63}$", hint="a Docker runtime name (nvidia, runc)")
                  | Null(),
                  "label": Str(max_len=200) | Null(), "reserve_gb": Num(0, 100000),
                  "docker_api": Str(pattern=r"^1\.[0-9]{2}$", hint="a Docker API version such as 1.41")},
                 required=("name", "ssh", "target"))
    return Map({"registry": Str(pattern=_REGISTRY.pattern, hint="host:port/repo") | Null(),
                "known_hosts": text | Null(), "devices": List_(device, 1, 10000)}, required=("devices",))


@dataclass(frozen=True)
class SSHDestination:
    user: str
    host: str
    port: int = 22
    identity_file: Optional[str] = None

    @property
    def url(self) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}"

    @property
    def known_hosts_name(self) -> str:
        """How known_hosts spells this host (OpenSSH's `[host]:port` for a port other than 22)."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


@dataclass(frozen=True)
class Device:
    name: str
    ssh: SSHDestination
    target: str
    l4t_release_file: str = DEFAULT_L4T_FILE
    runtime: Optional[str] = None        # container runtime to require (default: the target's; nvidia on Jetson)
    label: str = ""                      # shown in reports
    reserve_gb: float = 1.0              # keep this much free on Docker's data root after the image lands
    docker_api: str = "1.41"             # fixed API version (no version probing over SSH)

    @property
    def display(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class Inventory:
    path: Path
    devices: List[Device]
    registry: Optional[str] = None       # host:port/repo, set once for the fleet
    known_hosts: str = DEFAULT_KNOWN_HOSTS

    def select(self, names: Optional[Any] = None) -> List[Device]:
        """`all`/None -> every device; "a,b" or ["a", "b"] -> those, in that order (unknown: InventoryError)."""
        if names in (None, "", "all") or names == ["all"]:
            return list(self.devices)
        wanted = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
        by_name = {d.name: d for d in self.devices}
        unknown = [n for n in wanted if n not in by_name]
        if unknown:
            raise InventoryError(self.path, f"no device named {', '.join(unknown)} (known: {', '.join(by_name)})")
        return [by_name[n] for n in wanted]

    def known_hosts_path(self) -> Path:
        return Path(os.path.expanduser(self.known_hosts))


def find_inventory(flag: Optional[str] = None, config_value: Optional[str] = None,
                   root: Optional[Path] = None) -> Path:
    """The flag, then invoke.yaml's value, then <root>/devices.yaml; InventoryError when none exists."""
    from edgebench.docker.targets import containers_dir

    root = root or containers_dir().parent
    for label, value in (("--inventory", flag), ("invoke.yaml edgebench.inventory", config_value)):
        if value:
            p = Path(value).expanduser()
            p = p if p.is_absolute() else root / p
            if not p.is_file():
                raise InventoryError(p, f"inventory named by {label} does not exist")
            return p
    p = root / "devices.yaml"
    if not p.is_file():
        raise InventoryError(p, "no inventory: copy devices.example.yaml to devices.yaml and edit it, "
                                "or pass --inventory FILE")
    return p


def load(path: Any) -> Inventory:
    import yaml

    from edgebench.contracts.schema import load_yaml, yaml_problem

    path = Path(path)
    try:
        doc = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InventoryError(path, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InventoryError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise InventoryError(path, f"not valid YAML: {yaml_problem(exc)}") from None
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. a YAML date out of range
        raise InventoryError(path, f"not valid YAML: {type(exc).__name__}: {exc}") from None
    return parse(doc, path)


def parse(doc: Any, path: Any = "<inventory>") -> Inventory:
    from edgebench.contracts.schema import problems
    from edgebench.docker.errors import TargetError
    from edgebench.docker.targets import load as load_target

    if not isinstance(doc, dict):
        raise InventoryError(path, "must be a mapping with a `devices:` list")
    found = problems(doc, _spec())
    if found:
        raise _located(path, doc, found[0], len(found) - 1)
    _unknown(doc, FLEET_KEYS, path)
    registry = doc.get("registry")
    if registry is not None and (not isinstance(registry, str) or not _REGISTRY.match(registry)):
        raise InventoryError(path, f"registry must be host:port/repo, not {registry!r}", key="registry")
    known_hosts = doc.get("known_hosts") or DEFAULT_KNOWN_HOSTS
    raw = doc.get("devices")
    if not isinstance(raw, list) or not raw:
        raise InventoryError(path, "needs a non-empty `devices:` list", key="devices")
    devices: List[Device] = []
    seen = set()
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise InventoryError(path, f"devices[{i}] must be a mapping", key="devices")
        name = entry.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise InventoryError(path, f"devices[{i}] needs a `name` of letters, digits, '.', '_', '-' "
                                       f"(got {name!r})", key="name")
        if name in seen:
            raise InventoryError(path, "duplicate device name", device=name, key="name")
        seen.add(name)
        _unknown(entry, DEVICE_KEYS, path, device=name)
        target = entry.get("target")
        if not isinstance(target, str):
            raise InventoryError(path, "needs a `target` (a folder under containers/)", device=name, key="target")
        try:
            load_target(target)
        except TargetError as exc:
            raise InventoryError(path, f"unknown target {target!r}: {exc}", device=name, key="target") from exc
        devices.append(Device(name=name, ssh=_ssh(entry.get("ssh"), path, name), target=target,
                              l4t_release_file=str(entry.get("l4t_release_file") or DEFAULT_L4T_FILE),
                              runtime=entry.get("runtime"), label=str(entry.get("label") or ""),
                              reserve_gb=_number(entry.get("reserve_gb", 1.0), path, name, "reserve_gb"),
                              docker_api=str(entry.get("docker_api") or "1.41")))
    return Inventory(path=Path(path), devices=devices, registry=registry, known_hosts=str(known_hosts))


def _located(path: Any, doc: Dict[str, Any], problem: str, more: int) -> InventoryError:
    """A schema problem ('devices[1].ssh.port: must be ...') as the InventoryError naming device and key."""
    where, _, what = problem.partition(": ")
    lacks = re.match(r"^lacks '([^']+)'$", what)
    if lacks:
        where, what = f"{where}.{lacks.group(1)}" if where else lacks.group(1), "is required"
    what += f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    m = re.match(r"^devices\[(\d+)\]\.?(.*)$", where)
    if not m:
        return InventoryError(path, what, key=where)
    entry = doc["devices"][int(m.group(1))]
    name = entry.get("name") if isinstance(entry, dict) else None
    device = name if isinstance(name, str) and _NAME.match(name) else f"devices[{m.group(1)}]"
    return InventoryError(path, what, device=device, key=m.group(2) or "devices")


def _ssh(raw: Any, path: Any, name: str) -> SSHDestination:
    if not isinstance(raw, dict):
        raise InventoryError(path, "needs `ssh: {user, host, port, identity_file}`", device=name, key="ssh")
    _unknown(raw, SSH_KEYS, path, device=name, prefix="ssh.")
    for key in ("user", "host"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise InventoryError(path, f"needs ssh.{key}", device=name, key=f"ssh.{key}")
    port = raw.get("port", 22)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise InventoryError(path, f"ssh.port must be a port number, not {port!r}", device=name, key="ssh.port")
    identity = raw.get("identity_file")
    if identity is not None:
        identity = os.path.expanduser(str(identity))
    return SSHDestination(user=raw["user"], host=raw["host"], port=port, identity_file=identity)


def _number(value: Any, path: Any, name: str, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InventoryError(path, f"must be a number >= 0, not {value!r}", device=name, key=key)
    return float(value)


def _unknown(mapping: Dict[str, Any], allowed: Sequence[str], path: Any, device: str = "", prefix: str = "") -> None:
    extra = sorted(set(mapping) - set(allowed))
    if extra:
        raise InventoryError(path, f"unknown key (allowed: {', '.join(sorted(allowed))})", device=device,
                             key=prefix + extra[0])


__all__ = ["Inventory", "Device", "SSHDestination", "find_inventory", "load", "parse", "DEFAULT_L4T_FILE"]
