"""Container targets: `containers/<target>/target.yaml` loaded and validated into a `Target`."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from edgebench.contracts.vocabulary import BACKENDS
from edgebench.docker.errors import TargetError

GPU_MODES = ("none", "nvidia-runtime", "device-requests")
PYTHON_ENVS = ("venv", "system")
KNOWN_BACKENDS = tuple(BACKENDS)

# key -> (python type(s), required, what it is)
SCHEMA: Dict[str, Tuple[Tuple[type, ...], bool, str]] = {
    "name": ((str,), True, "target name, the folder's name"),
    "description": ((str,), False, "one line"),
    "base_image": ((str,), True, "image the Dockerfile starts FROM"),
    "platform": ((str,), True, "os/arch, e.g. linux/amd64, linux/arm64"),
    "gpu": ((str,), True, "how a container reaches the GPU: " + " | ".join(GPU_MODES)),
    "python": ((str,), True, "Python major.minor in the image, e.g. '3.8'"),
    "python_env": ((str,), False, "venv (at /opt/edgebench) or system (base image's site-packages)"),
    "l4t": ((str,), False, "L4T release, e.g. '35.4.1' (Jetson only; tags carry -r<l4t>)"),
    "apt_packages": ((list,), False, "Debian/Ubuntu packages to install"),
    "pip_extra_index_urls": ((list,), False, "extra pip indexes (e.g. NVIDIA's JetPack index)"),
    "versions": ((dict,), False, "component -> version the image carries (tensorflow, tensorrt, ...)"),
    "backends": ((list,), True, "edgebench backends the image promises: " + ", ".join(KNOWN_BACKENDS)),
    "cross_install": ((dict,), False, "pip runs natively on the build machine, not under emulation: "
                                      "{base_image, glibc, apt_packages} (see CrossInstall)"),
}
CROSS_KEYS = {"base_image": str, "glibc": str, "apt_packages": list}
#: Docker's architecture -> the machine name (`uname -m`, the engine's Arch, the wheel tags'), the one table
MACHINE_OF_ARCH = {"amd64": "x86_64", "arm64": "aarch64"}


def repo_root() -> Path:
    """The kit's checkout ($EDGEBENCH_ROOT, else the folder above this package with containers/ and templates/)."""
    env = os.environ.get("EDGEBENCH_ROOT")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "containers").is_dir() and (parent / "templates").is_dir():
            return parent
    return Path.cwd()


@dataclass(frozen=True)
class CrossInstall:
    """`cross_install:` of a target.yaml. The image's packages are installed by a stage that runs on the build
    machine's own platform (an arm64 image built on x86: pip, its downloads and its byte-compiling run natively,
    not under qemu): pip picks this target's wheels by tag (`--platform`, `--python-version`, `--target` into the
    venv's site-packages) and the final stage, on the target's platform, copies the venv and checks it. The
    .pyc files stay valid because both stages run the same CPython minor version (`python`)."""
    base_image: str          # that stage's base, pulled for the build machine's platform (same distro release)
    glibc: str               # the image's glibc, e.g. "2.36": wheels tagged manylinux_2_17 .. manylinux_2_36
    apt_packages: List[str] = field(default_factory=lambda: ["python3", "python3-venv"])

    def pip_platforms(self, platform: str) -> List[str]:
        """pip's `--platform` values for an image of `platform` (e.g. linux/arm64), newest glibc first."""
        arch = machine_of(platform) or _arch(platform)
        minor = int(self.glibc.split(".")[1])
        return [f"manylinux_2_{n}_{arch}" for n in range(minor, 16, -1)] + [f"manylinux2014_{arch}"]


def _arch(platform: str) -> str:
    """linux/arm64/v8 -> arm64"""
    parts = platform.split("/")
    return parts[1] if len(parts) > 1 else platform


def machine_of(platform: str) -> Optional[str]:
    """linux/arm64(/v8) -> aarch64, linux/amd64 -> x86_64; None for an architecture not in MACHINE_OF_ARCH."""
    return MACHINE_OF_ARCH.get(_arch(platform))


def platform_of_machine(os_name: str, machine: str) -> str:
    """The Docker platform of an engine that reports `os_name` and `machine` (x86_64 -> linux/amd64)."""
    arch = {m: a for a, m in MACHINE_OF_ARCH.items()}.get(machine, machine)
    return f"{os_name}/{arch}"


def containers_dir() -> Path:
    return repo_root() / "containers"


@dataclass(frozen=True)
class Target:
    name: str
    base_image: str
    platform: str
    gpu: str
    python: str
    backends: List[str]
    folder: Path
    description: str = ""
    python_env: str = "venv"
    l4t: Optional[str] = None
    apt_packages: List[str] = field(default_factory=list)
    pip_extra_index_urls: List[str] = field(default_factory=list)
    versions: Dict[str, str] = field(default_factory=dict)
    cross_install: Optional[CrossInstall] = None

    @property
    def requirements_path(self) -> Path:
        return self.folder / "requirements.txt"

    @property
    def test_path(self) -> Optional[Path]:
        p = self.folder / "test.py"
        return p if p.is_file() else None

    def requirements(self) -> List[str]:
        """The pinned requirement lines (comments and blank lines dropped)."""
        if not self.requirements_path.is_file():
            return []
        out = []
        for line in self.requirements_path.read_text().splitlines():
            line = re.split(r"(^|\s)#", line, maxsplit=1)[0].strip()
            if line:
                out.append(line)
        return out

    def pinned_packages(self) -> List[str]:
        return [r for r in self.requirements() if not r.startswith("-")]

    def tag(self, version: str, repository: str = "edgebench") -> str:
        """`edgebench:<kit version>-<target>`, plus `-r<L4T>` for Jetson targets."""
        suffix = f"-r{self.l4t}" if self.l4t else ""
        return f"{repository}:{version}-{self.name}{suffix}"


def available(root: Optional[Path] = None) -> List[str]:
    base = root or containers_dir()
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / "target.yaml").is_file())


def load(name: str, root: Optional[Path] = None) -> Target:
    """Load and validate `containers/<name>/target.yaml`; errors name the known targets or keys."""
    base = root or containers_dir()
    known = available(base)
    if name not in known:
        raise TargetError(f"unknown target {name!r}; known targets: {', '.join(known) or '(none)'} (in {base})")
    path = base / name / "target.yaml"
    return parse(path.read_text(), folder=path.parent, source=str(path))


def _known_keys() -> str:
    return "\n".join(f"  {k}{'' if req else ' (optional)'}: {doc}" for k, (_, req, doc) in SCHEMA.items())


def parse(text: str, *, folder: Path, source: str = "target.yaml") -> Target:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TargetError(f"{source}: not valid YAML: {exc}\nknown keys:\n{_known_keys()}") from exc
    if not isinstance(data, dict):
        raise TargetError(f"{source}: expected a mapping of keys, got {type(data).__name__}\n"
                          f"known keys:\n{_known_keys()}")
    problems: List[str] = []
    unknown = sorted(set(data) - set(SCHEMA))
    if unknown:
        problems.append(f"unknown key(s): {', '.join(map(str, unknown))}")
    for key, (types, required, _) in SCHEMA.items():
        if key not in data or data[key] is None:
            if required:
                problems.append(f"missing required key: {key}")
            continue
        if not isinstance(data[key], types):
            problems.append(f"{key}: expected {'/'.join(t.__name__ for t in types)}, got {type(data[key]).__name__}"
                            f" ({data[key]!r})")
    if not problems:
        if data["name"] != folder.name:
            problems.append(f"name: {data['name']!r} differs from its folder {folder.name!r}")
        if data["gpu"] not in GPU_MODES:
            problems.append(f"gpu: {data['gpu']!r} is not one of {', '.join(GPU_MODES)}")
        if data.get("python_env", "venv") not in PYTHON_ENVS:
            problems.append(f"python_env: {data['python_env']!r} is not one of {', '.join(PYTHON_ENVS)}")
        if not re.fullmatch(r"3\.\d+", data["python"]):
            problems.append(f"python: {data['python']!r} is not major.minor like '3.8'")
        if not re.fullmatch(r"[a-z]+/[a-z0-9_]+(/v\d)?", data["platform"]):
            problems.append(f"platform: {data['platform']!r} is not os/arch like linux/arm64")
        bad = [b for b in data["backends"] if b not in KNOWN_BACKENDS]
        if bad:
            problems.append(f"backends: unknown {', '.join(map(str, bad))}; known: {', '.join(KNOWN_BACKENDS)}")
        for key in ("apt_packages", "pip_extra_index_urls", "backends"):
            if any(not isinstance(x, str) for x in data.get(key) or []):
                problems.append(f"{key}: every item must be a string")
        problems += _cross_problems(data)
    if problems:
        raise TargetError(f"{source}: " + "; ".join(problems) + f"\nknown keys:\n{_known_keys()}")
    return Target(
        name=data["name"], base_image=data["base_image"], platform=data["platform"], gpu=data["gpu"],
        python=data["python"], backends=list(data["backends"]), folder=folder,
        description=data.get("description") or "", python_env=data.get("python_env") or "venv",
        l4t=str(data["l4t"]) if data.get("l4t") else None,
        apt_packages=list(data.get("apt_packages") or []),
        pip_extra_index_urls=list(data.get("pip_extra_index_urls") or []),
        versions={str(k): str(v) for k, v in (data.get("versions") or {}).items()},
        cross_install=CrossInstall(**data["cross_install"]) if data.get("cross_install") else None,
    )


def _cross_problems(data: dict) -> List[str]:
    cross = data.get("cross_install")
    if not cross:
        return []
    out = [f"cross_install: unknown key {k!r}; known: {', '.join(CROSS_KEYS)}" for k in cross if k not in CROSS_KEYS]
    for key, typ in CROSS_KEYS.items():
        if key != "apt_packages" and key not in cross:
            out.append(f"cross_install: missing {key}")
        elif key in cross and not isinstance(cross[key], typ):
            out.append(f"cross_install.{key}: expected {typ.__name__}, got {type(cross[key]).__name__}")
    if isinstance(cross.get("apt_packages"), list) and any(not isinstance(x, str) for x in cross["apt_packages"]):
        out.append("cross_install.apt_packages: every item must be a string")
    if isinstance(cross.get("glibc"), str) and not re.fullmatch(r"2\.\d+", cross["glibc"]):
        out.append(f"cross_install.glibc: {cross['glibc']!r} is not a glibc version like '2.36'")
    if data.get("python_env", "venv") != "venv":
        out.append("cross_install: needs python_env venv (the install stage builds the venv that the image copies)")
    if machine_of(data["platform"]) is None:
        out.append(f"cross_install: platform {data['platform']!r} has no wheel tag known here "
                   f"({', '.join(MACHINE_OF_ARCH)})")
    return out
