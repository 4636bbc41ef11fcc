"""Run the benchmark in the deployed image on a remote device's Docker engine, over SSH (deploy family).

The same `BenchRequest` as every launcher. Host paths cannot be bind-mounted on a device, so:
- the artifacts folder goes into a docker volume on the device named by the sha256 of its files
  (`edgebench-artifacts-<digest>`), sent only when that volume lacks them (its `.edgebench-sha256` list
  is compared); the CIFAR-10 source likewise (`edgebench-data-<sha256>`); both mounted read-only;
- the suite file is put into the container before it starts; results are written inside the container
  and copied back to `request.out` after it exits; the container is then removed.
The container gets the target's GPU access (`gpu_host_config`), no network, and the fingerprint's
image id / tag / digest through the same environment as the container launcher. A Jetson's container also gets
the board-state files and groups of `machine/boardstate.py` (the container launcher's definition), for the files
the device reports over the same SSH session.
"""
from __future__ import annotations

import hashlib
import io
import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import IO, Any, Dict, Iterator, List, Optional, Sequence, Tuple

from edgebench.contracts.request import BenchRequest
from edgebench.contracts.vocabulary import (
    CHECKPOINTS_DIRNAME,
    EXIT_OK,
    EXIT_ROWS_FAILED,
    IMAGE_DIGEST_ENV,
    TRAIN_STATE_FILE,
)
from edgebench.launchers.base import Launcher, LaunchError, LaunchResult
from edgebench.launchers.container import ARTIFACTS_MOUNT, CACHE_DIR, DATA_MOUNT, RESULTS_MOUNT, image_environment

MARKER = ".edgebench-sha256"
SKIPPED = {CHECKPOINTS_DIRNAME, TRAIN_STATE_FILE}   # training state: never read by a benchmark
SUITE_DIR = "/suite"


def tree_digest(files: List[Tuple[str, Path]]) -> Tuple[str, str]:
    """(sha256 over the listing, the listing "sha256  relpath" per file) of `files` [(relpath, path)]."""
    from edgebench.util import sha256_file

    lines = [f"{sha256_file(p)}  {name}" for name, p in files]
    listing = "\n".join(lines) + "\n"
    return hashlib.sha256(listing.encode()).hexdigest(), listing


def _tar(files: List[Tuple[str, Path]], extra: Dict[str, bytes], dirs: Sequence[str] = ()) -> Tuple[Any, int]:
    """A tar of `files` (+ `extra` written last) in a temporary file: (file at offset 0, size)."""
    f = tempfile.TemporaryFile()
    with tarfile.open(fileobj=f, mode="w") as tar:
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777
            tar.addfile(info)
        for name, path in files:
            tar.add(str(path), arcname=name, recursive=False)
        for name, data in extra.items():  # written last: the marker says the rest is complete
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    size = f.tell()
    f.seek(0)
    return f, size


def _chunks(f: Any, size: int = 1 << 20) -> Iterator[bytes]:
    """Send in 1 MiB chunks: one large buffer through paramiko's sendall is re-sliced per packet
    (quadratic, it looks like a hang)."""
    with f:
        while True:
            block = f.read(size)
            if not block:
                return
            yield block


def bench_files(folder: Path) -> List[Tuple[str, Path]]:
    """The files of an artifacts folder a benchmark reads (training checkpoints and resume state left out)."""
    return [(p.relative_to(folder).as_posix(), p) for p in sorted(folder.rglob("*"))
            if p.is_file() and not set(p.relative_to(folder).parts) & SKIPPED]


def _read_archive(chunks: Any) -> Dict[str, bytes]:
    data = b"".join(chunks)
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for m in tar:
            if m.isfile():
                out[m.name] = tar.extractfile(m).read()
    return out


def _results_back(api: Any, cid: str, inner_out: str, out: Path, code: int, where: str) -> None:
    """The results JSON (and its framework log, when the run wrote one) copied out of the container to `out`."""
    try:
        stream, _ = api.get_archive(cid, inner_out)
        got = _read_archive(stream)
    except Exception as exc:
        tail = api.logs(cid, stdout=True, stderr=True, tail=40).decode("utf-8", "replace")
        raise LaunchError(where, f"the container exited {code} and left no {inner_out} ({exc})\n{tail}") from exc
    out.write_bytes(next(iter(got.values())))
    try:  # the framework log beside it (TensorFlow / ONNX Runtime messages)
        stream, _ = api.get_archive(cid, inner_out[:-len(".json")] + ".log")
        for data in _read_archive(stream).values():
            out.with_suffix(".log").write_bytes(data)
    except Exception:  # noqa: BLE001 - no log is no error
        pass


class RemoteLauncher(Launcher):
    """`edgebench bench` in `image` (the tag deploy set) on a device reached by `connection_factory()`."""

    name = "remote"

    def __init__(self, device: Any, target: Any, image: str, connection_factory: Any, *,
                 digest: Optional[str] = None, echo: Optional[IO[str]] = sys.stderr):
        self.device = device              # edgebench.deploy.inventory.Device
        self.target = target              # edgebench.docker.targets.Target
        self.image = image
        self.connect = connection_factory  # () -> DeviceConnection (opened)
        self.digest = digest
        self.echo = echo
        self.timings: Dict[str, float] = {}
        self.bytes_sent = 0
        self.board: Dict[str, Any] = {}   # what the board-state probe found (Jetson targets)

    def describe(self) -> str:
        return f"device {self.device.name}"

    def _tick(self, label: str, since: float) -> float:
        now = time.monotonic()
        self.timings[label] = round(self.timings.get(label, 0.0) + now - since, 3)
        return now

    def sync_volume(self, api: Any, prefix: str, files: List[Tuple[str, Path]], digest: str, listing: str) -> str:
        """Volume `edgebench-<prefix>-<digest>` holding `files`; sent only when its marker differs."""
        from docker.errors import NotFound

        name = f"edgebench-{prefix}-{digest[:32]}"
        cid = None
        try:
            try:
                api.inspect_volume(name)
                exists = True
            except NotFound:
                api.create_volume(name, labels={"io.edgebench.sha256": digest})
                exists = False
            cid = api.create_container(self.image, command=["true"], network_disabled=True,
                                       host_config=api.create_host_config(binds={name: {"bind": "/v", "mode": "rw"}},
                                                                          network_mode="none"))["Id"]
            if exists:
                try:
                    stream, _ = api.get_archive(cid, f"/v/{MARKER}")
                    if _read_archive(stream).get(MARKER, b"").decode() == listing:
                        return name
                except NotFound:
                    pass
            payload, size = _tar(files, {MARKER: listing.encode()})
            if not api.put_archive(cid, "/v", _chunks(payload)):
                raise LaunchError(self.describe(), f"could not copy {prefix} into volume {name}")
            self.bytes_sent += size
            return name
        finally:
            if cid:
                api.remove_container(cid, force=True)

    def _sync_inputs(self, api: Any, request: BenchRequest):
        """The artifacts (and data) synced into volumes on the device by content digest, the suite to put:
        (binds, the request's paths inside the container, {archive path: bytes})."""
        from edgebench.util import sha256_file

        files = bench_files(Path(request.artifacts).resolve())
        digest, listing = tree_digest(files)
        binds = {self.sync_volume(api, "artifacts", files, digest, listing):
                 {"bind": ARTIFACTS_MOUNT, "mode": "ro"}}
        paths: Dict[str, Optional[str]] = {"artifacts": ARTIFACTS_MOUNT,
                                           "out": f"{RESULTS_MOUNT}/{Path(request.out).name}"}
        if request.data:
            data = Path(request.data).resolve()
            if data.is_dir():
                dfiles = [(p.relative_to(data).as_posix(), p) for p in sorted(data.rglob("*")) if p.is_file()]
                ddig, dlist = tree_digest(dfiles)
                paths["data"] = DATA_MOUNT
            else:
                dsha = sha256_file(data)
                ddig, dlist, dfiles = dsha, f"{dsha}  {data.name}\n", [(data.name, data)]
                paths["data"] = f"{DATA_MOUNT}/{data.name}"
            binds[self.sync_volume(api, "data", dfiles, ddig, dlist)] = {"bind": DATA_MOUNT, "mode": "ro"}
        put: Dict[str, bytes] = {}
        if request.suite:
            suite = Path(request.suite)
            put[f"{SUITE_DIR.strip('/')}/{suite.name}"] = suite.read_bytes()
            paths["suite"] = f"{SUITE_DIR}/{suite.name}"
        return binds, paths, put

    def board_mounts(self, conn: Any) -> Tuple[Dict[str, Dict[str, str]], List[str]]:
        """A Jetson's board-state binds and groups (machine/boardstate.py, as the container launcher's), for the
        files the device says it has: the docker API cannot tell, and would create a missing bind source."""
        if self.target.gpu != "nvidia-runtime":
            return {}, []
        from edgebench.machine import boardstate

        facts = boardstate.probe(conn.exec, boardstate.board_root(self.device.l4t_release_file))
        self.board = {"mounted": list(facts.present), "socket_gid": facts.socket_gid,
                      "jetson_stats": facts.jetson_stats}
        return boardstate.binds(facts), boardstate.group_add(facts)

    def launch_impl(self, request: BenchRequest) -> LaunchResult:
        from edgebench.docker.run import CREATED_BY_LABEL, gpu_host_config

        where = self.describe()
        t0 = time.monotonic()
        conn = self.connect()
        try:
            api = conn.api
            t = self._tick("connect+preflight", t0)
            try:
                info = api.inspect_image(self.image)
            except Exception as exc:
                raise LaunchError(where, f"image {self.image} is not on the device: deploy it first ({exc})") from exc
            binds, paths, put = self._sync_inputs(api, request)
            t = self._tick("artifact sync", t)
            inner = request.with_paths(**paths)
            env = image_environment(self.image, info, self.target.name)
            env["HOME"] = "/tmp"
            if self.digest:
                env[IMAGE_DIGEST_ENV] = self.digest
            board_binds, groups = self.board_mounts(conn)
            binds.update(board_binds)
            host_config = api.create_host_config(binds=binds, network_mode="none", **gpu_host_config(self.target),
                                                 **({"group_add": groups} if groups else {}))
            labels = {CREATED_BY_LABEL: "bench", "io.edgebench.target": self.target.name}
            cid = api.create_container(self.image, command=inner.to_argv(), environment=env, host_config=host_config,
                                       network_disabled=True, user="0:0", labels=labels)["Id"]
            try:
                small, _ = _tar([], put, dirs=[RESULTS_MOUNT.strip("/"), CACHE_DIR.strip("/"), SUITE_DIR.strip("/")])
                api.put_archive(cid, "/", _chunks(small))
                t = self._tick("artifact sync", t)
                api.start(cid)
                for chunk in api.logs(cid, stream=True, follow=True):
                    if self.echo is not None:
                        self.echo.write(f"[{self.device.name}] " + chunk.decode("utf-8", "replace"))
                code = int(api.wait(cid).get("StatusCode", -1))
                t = self._tick("run", t)
                out = Path(request.out).resolve()
                _results_back(api, cid, inner.out, out, code, where)
                self._tick("results back", t)
            finally:
                api.remove_container(cid, force=True)
        finally:
            conn.close()
        if code not in (EXIT_OK, EXIT_ROWS_FAILED):
            raise LaunchError(where, f"`edgebench bench` exited {code} in {self.image}; partial results in {out}")
        doc = json.loads(out.read_text(encoding="utf-8"))
        return LaunchResult(where, out, exit_code=code, seconds=time.monotonic() - t0,
                            details={"image": self.image, "image_id": info["Id"], "digest": self.digest,
                                     "timings": dict(self.timings), "bytes_sent": self.bytes_sent, "board": self.board,
                                     "complete": doc.get("complete")})


__all__ = ["RemoteLauncher", "tree_digest", "bench_files"]
