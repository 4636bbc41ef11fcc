"""A registry on this machine for `deploy --via ssh`: the device pulls layers, not a whole `docker save`.

Debian's `docker-registry` (distribution 2.8) serves a store kept between deploys (`<cache>/deploy-registry`,
`$EDGEBENCH_CACHE` else ~/.cache/edgebench) on 127.0.0.1 only. This machine's engine pushes the image into it
(layers the store already holds are not compressed or sent again), and the device's engine pulls it by digest
through a port forwarded over the device's SSH connection (`deploy/tunnel.py`), so layers the device already has
are not moved either.

The port is kept in the store (`port`) and reused while it is free: this machine's engine remembers which layers
it pushed *per registry address*, so a new port would make it compress and send every layer again (the store would
keep one copy, but the time is lost). One process at a time uses a store (an exclusive lock on `lock`); another
deploy waits for it. The store only grows: removing the folder is safe (the next deploy pushes everything again).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import IO, Any, Dict, List, Optional

from edgebench.deploy.errors import DeployError

#: Debian's package `docker-registry` installs it here; `$EDGEBENCH_REGISTRY_BIN` names another one
REGISTRY_BIN = "/usr/bin/docker-registry"
REGISTRY_BIN_ENV = "EDGEBENCH_REGISTRY_BIN"
#: the repository in the local registry: <address>/edgebench-deploy/<target>
REPO_PREFIX = "edgebench-deploy"
PUSH_TAG = "deploy"
#: a partial image ("rung") after every this many compressed layer bytes: what a cut transfer can keep
RUNG_BYTES = 64 * 1000 * 1000
#: marks a partial image, so the device's copies are found and removed once the whole image is there
RUNG_LABEL = "io.edgebench.deploy-rung"
MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
START_TIMEOUT = 20.0


class LocalRegistryError(DeployError):
    """The local registry cannot start, or refused a push; names the store and the registry's log."""


def default_root() -> Path:
    from edgebench.data import cache_dir

    return cache_dir() / "deploy-registry"


def registry_binary() -> str:
    exe = os.environ.get(REGISTRY_BIN_ENV) or REGISTRY_BIN
    if not os.access(exe, os.X_OK):
        found = shutil.which("docker-registry")
        if not found:
            raise LocalRegistryError(f"{exe} not found: deploy --via ssh serves the image from a local registry "
                                     f"(apt-get install docker-registry, or set ${REGISTRY_BIN_ENV}); "
                                     f"--via ssh-stream sends the whole image without one")
        exe = found
    return exe


def port_free(port: int) -> bool:
    """Free to listen on (as the registry does, with SO_REUSEADDR: the last run's TIME_WAIT does not count)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_port(saved: Optional[int]) -> int:
    """The saved port while it is free, else a new one from the kernel."""
    if saved and port_free(saved):
        return saved
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_text(store: Path, port: int) -> str:
    return (f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {store}\n"
            f"http:\n  addr: 127.0.0.1:{port}\n")


class LocalRegistry:
    """`with LocalRegistry() as reg: ref = reg.publish(api, image, target)` -> "<address>/<repo>@sha256:..."."""

    def __init__(self, root: Optional[Path] = None):
        self.root = Path(root) if root else default_root()
        self.port = 0
        self.proc: Optional[subprocess.Popen] = None
        self._lock_file: Optional[IO[str]] = None
        self._published: Dict[str, Dict[str, Any]] = {}
        self._mutex = threading.Lock()
        self._start_lock = threading.Lock()
        self.rung_bytes = RUNG_BYTES

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "registry.log"

    def start(self) -> "LocalRegistry":
        import fcntl

        exe = registry_binary()
        (self.root / "store").mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.root / "lock", "w")
        fcntl.flock(self._lock_file, fcntl.LOCK_EX)   # another deploy using this store waits here
        saved = self.root / "port"
        try:
            old = int(saved.read_text().strip())
        except (OSError, ValueError):
            old = None
        self.port = pick_port(old)
        saved.write_text(f"{self.port}\n")
        cfg = self.root / "config.yml"
        cfg.write_text(config_text(self.root / "store", self.port))
        with open(self.log, "wb") as logf:
            self.proc = subprocess.Popen([exe, "serve", str(cfg)], stdout=logf, stderr=subprocess.STDOUT)
        self._wait_up()
        return self

    def ensure(self) -> "LocalRegistry":
        """Started (once, thread-safe): what several devices deployed in parallel call."""
        with self._start_lock:
            return self if self.proc is not None else self.start()

    def _wait_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"http://{self.address}/v2/", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-1500:] if self.log.exists() else ""
        self.stop()
        raise LocalRegistryError(f"the local registry ({self.root}) did not answer on {self.address} within "
                                 f"{START_TIMEOUT:.0f} s; its log ends: {tail.strip() or '(empty)'}")

    def repo(self, target: str) -> str:
        return f"{self.address}/{REPO_PREFIX}/{target}"

    def publish(self, api: Any, image: str, target: str) -> Dict[str, Any]:
        """Push `image` (once per image id in this session); {ref, path, digest, bytes, pushed, existing, seconds}.
        `path` is the reference without the address: the device reaches the registry at its own port."""
        from edgebench.deploy.errors import PublishError
        from edgebench.deploy.publish import push

        image_id = api.inspect_image(image)["Id"]
        with self._mutex:   # devices deployed in parallel share one push
            if image_id in self._published:
                return self._published[image_id]
            started = time.monotonic()
            repo = self.repo(target)
            try:
                res = push(api, image_id, repo, PUSH_TAG)
            except PublishError as exc:
                raise LocalRegistryError(f"the local registry ({self.root}) took no push: {exc}") from exc
            finally:
                try:   # the tag only names the push; the store keeps the image
                    api.remove_image(f"{repo}:{PUSH_TAG}", noprune=True)
                except Exception:  # noqa: BLE001 - a tag that was never set
                    pass
            path = f"{REPO_PREFIX}/{target}@{res['digest']}"
            out = dict(res, ref=f"{self.address}/{path}", path=path, seconds=time.monotonic() - started)
            self._published[image_id] = out
            return out

    def rungs(self, pushed: Dict[str, Any], every: Optional[int] = None) -> List[str]:
        """Paths (like `pushed['path']`) of partial images of the pushed one: its first k layers, a rung after
        every `every` compressed bytes. Pulled in order, each rung the device completes stays on it as an image,
        so a cut loses at most the rung in progress (the engine drops the layers of a cut pull). Memoized."""
        every = every or self.rung_bytes
        key = f"rungs:{pushed['digest']}:{every}"
        with self._mutex:
            if key not in self._published:
                self._published[key] = {"paths": self._make_rungs(pushed, every)}
            return list(self._published[key]["paths"])

    def _make_rungs(self, pushed: Dict[str, Any], every: int) -> List[str]:
        name = pushed["path"].split("@", 1)[0]
        manifest = json.loads(self._get(f"/v2/{name}/manifests/{pushed['digest']}", MANIFEST_V2))
        layers = manifest.get("layers") or []
        cuts, since = [], 0
        for k, layer in enumerate(layers[:-1], start=1):
            since += int(layer.get("size") or 0)
            if since >= every:
                cuts.append(k)
                since = 0
        if not cuts:
            return []
        config = json.loads(self._get(f"/v2/{name}/blobs/{manifest['config']['digest']}", "*/*"))
        paths = []
        for k in cuts:
            labels = dict((config.get("config") or {}).get("Labels") or {}, **{RUNG_LABEL: str(k)})
            part = dict(config, rootfs=dict(config["rootfs"], diff_ids=config["rootfs"]["diff_ids"][:k]),
                        config=dict(config.get("config") or {}, Labels=labels))
            part.pop("history", None)   # the engine checks layers against rootfs only; history would not match
            blob = json.dumps(part, sort_keys=True, separators=(",", ":")).encode()
            blob_digest = self._put_blob(name, blob)
            body = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_V2,
                               "config": dict(manifest["config"], size=len(blob), digest=blob_digest),
                               "layers": layers[:k]}, separators=(",", ":")).encode()
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            self._request("PUT", f"/v2/{name}/manifests/{digest}", body, MANIFEST_V2)
            paths.append(f"{name}@{digest}")
        return paths

    def _request(self, method: str, path: str, body: Optional[bytes] = None, ctype: str = "") -> Any:
        url = path if path.startswith("http") else f"http://{self.address}{path}"
        req = urllib.request.Request(url, data=body, method=method)
        if ctype and body is not None:
            req.add_header("Content-Type", ctype)
        elif ctype:
            req.add_header("Accept", ctype)
        try:
            return urllib.request.urlopen(req, timeout=60)
        except OSError as exc:
            raise LocalRegistryError(f"the local registry ({self.root}) answered {method} {path} with: {exc}") from exc

    def _get(self, path: str, accept: str) -> bytes:
        with self._request("GET", path, None, accept) as r:
            return r.read()

    def _put_blob(self, name: str, blob: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        with self._request("POST", f"/v2/{name}/blobs/uploads/", b"") as r:
            location = r.headers["Location"]
        sep = "&" if "?" in location else "?"
        with self._request("PUT", f"{location}{sep}digest={digest}", blob, "application/octet-stream"):
            pass
        return digest

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None
        if self._lock_file is not None:
            self._lock_file.close()   # releases the flock
            self._lock_file = None

    def __enter__(self) -> "LocalRegistry":
        return self.start() if self.proc is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


__all__ = ["LocalRegistry", "LocalRegistryError", "default_root", "pick_port", "config_text", "REPO_PREFIX",
           "RUNG_BYTES", "RUNG_LABEL"]
