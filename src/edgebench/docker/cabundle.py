"""Which extra CA bundle a build gives pip: the flag, else the bundle the host's pip already trusts.

Behind a TLS-intercepting proxy pip fails with CERTIFICATE_VERIFY_FAILED unless it trusts the proxy's CA.
A user on such a network has already told the host's pip (they installed the kit's venv through it), in
one of the places pip and requests read: `PIP_CERT`, `REQUESTS_CA_BUNDLE`, `SSL_CERT_FILE`, or pip's
config `cert` (`global.cert` / `install.cert`). The build uses the same file, says which one, and keeps
it out of the image's layers (templates/Dockerfile.j2: only the install stage sees it).
"""
from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

ENV_VARS = ("EDGEBENCH_CA_BUNDLE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")
# the host bundles a hint suggests, most common first (Debian/Ubuntu, Fedora/RHEL, Alpine/macOS)
SYSTEM_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")
CERT_ERROR = re.compile(r"CERTIFICATE_VERIFY_FAILED|SSLCertVerificationError|certificate verify failed")


@dataclass(frozen=True)
class CABundle:
    path: Path
    source: str  # "--ca-bundle", "PIP_CERT", "pip config global.cert (/etc/pip.conf)", ...

    def describe(self) -> str:
        return f"extra CA bundle {self.path} (from {self.source})"


def pip_config_files(env: Mapping[str, str]) -> List[Path]:
    """pip's config files in pip's own order (later ones win): global, user, PIP_CONFIG_FILE."""
    home = Path(env.get("HOME") or Path.home())
    xdg_dirs = (env.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":")
    files = [Path(d) / "pip" / "pip.conf" for d in xdg_dirs if d] + [Path("/etc/pip.conf")]
    files += [home / ".pip" / "pip.conf", Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf"]
    if env.get("PIP_CONFIG_FILE") and env["PIP_CONFIG_FILE"] != os.devnull:
        files.append(Path(env["PIP_CONFIG_FILE"]))
    return files


def pip_config_cert(env: Mapping[str, str], files: Optional[Sequence[Path]] = None) -> Optional[CABundle]:
    """`cert` from pip's config files (`[install]` over `[global]`, later files over earlier)."""
    found: Optional[CABundle] = None
    for f in files if files is not None else pip_config_files(env):
        if not f.is_file():
            continue
        cp = configparser.ConfigParser(interpolation=None)
        try:
            cp.read(str(f))
        except configparser.Error:
            continue
        for section in ("global", "install"):
            if cp.has_option(section, "cert"):
                found = CABundle(Path(cp.get(section, "cert")).expanduser(), f"pip config {section}.cert ({f})")
    return found


def resolve(explicit: Optional[str] = None, env: Optional[Mapping[str, str]] = None,
            pip_files: Optional[Sequence[Path]] = None) -> Optional[CABundle]:
    """The CA bundle a build should give pip, or None.

    Order: the flag; EDGEBENCH_CA_BUNDLE; PIP_CERT; REQUESTS_CA_BUNDLE; SSL_CERT_FILE; pip config `cert`.
    A flag or EDGEBENCH_CA_BUNDLE naming a missing file is an error; a missing file named by pip's or
    requests' settings is skipped (pip itself would fail on the host then, so it is not what the user uses).
    """
    env = os.environ if env is None else env
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise FileNotFoundError(f"CA bundle not found: {p} (given with --ca-bundle)")
        return CABundle(p, "--ca-bundle")
    for var in ENV_VARS:
        value = env.get(var)
        if not value:
            continue
        p = Path(value).expanduser()
        if p.is_file():
            return CABundle(p, var)
        if var == "EDGEBENCH_CA_BUNDLE":
            raise FileNotFoundError(f"CA bundle not found: {p} (from EDGEBENCH_CA_BUNDLE)")
    found = pip_config_cert(env, pip_files)
    if found is not None and found.path.is_file():
        return found
    return None


def system_bundle() -> str:
    for p in SYSTEM_BUNDLES:
        if Path(p).is_file():
            return p
    return SYSTEM_BUNDLES[0]


def cert_failure_hint(lines: Sequence[str], *, target: str, used: Optional[CABundle]) -> Optional[str]:
    """What to run when the build log shows pip failing TLS verification; None when it does not."""
    if not any(CERT_ERROR.search(line) for line in lines):
        return None
    cmd = f"invoke build --target {target} --ca-bundle {system_bundle()}"
    if used is None:
        return ("pip inside the build could not verify PyPI's TLS certificate (CERTIFICATE_VERIFY_FAILED): "
                "this network probably intercepts TLS with its own CA. Give the build the CA bundle this "
                f"host trusts:\n  {cmd}\n(or set PIP_CERT / EDGEBENCH_CA_BUNDLE to it once; the build then "
                "uses it by itself and keeps it out of the image)")
    return (f"pip inside the build could not verify PyPI's TLS certificate (CERTIFICATE_VERIFY_FAILED) even with "
            f"the {used.describe()}: that file lacks the proxy's CA. Try the host's full bundle:\n  {cmd}")


def env_summary(env: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    env = os.environ if env is None else env
    return {k: env[k] for k in ENV_VARS if env.get(k)}
