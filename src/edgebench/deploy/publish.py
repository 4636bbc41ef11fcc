"""Publish a built image to the fleet's registry and record it in the lock file (images.lock.json).

Before anything leaves this machine, the image's layers are checked for the build machine's extra CA file
(`invoke build --ca-bundle` copies it to /etc/edgebench/extra-ca.crt): first the history (cheap), then
every file name in every layer of `docker save` (streamed, nothing written). An image that carries it,
even in a layer a later step deleted it from, is refused.

The lock file says which prebuilt image belongs to this kit version: per target, `repo@sha256:` digest,
image id, L4T, size, kit version and git revision. Registry credentials stay in Docker's own config.
"""
from __future__ import annotations

import json
import re
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

from edgebench.deploy.errors import PublishError

LOCK_NAME = "images.lock.json"
LOCK_SCHEMA = 1
#: files of the build machine that must never be in a published layer
LEAK_PATTERNS = (re.compile(r"(^|/)etc/edgebench/extra-ca\.crt$"), re.compile(r"(^|/)(\.wh\.)?extra-ca[^/]*$"))


@dataclass
class LockEntry:
    target: str
    repo: str
    digest: str                  # sha256:... of the manifest in the registry
    image_id: str                # sha256:... of the image config (equal on every device after deploy)
    size: int                    # bytes, uncompressed (what the device's disk needs)
    l4t: str
    kit_version: str
    git_revision: str
    published_at: str

    @property
    def ref(self) -> str:
        return f"{self.repo}@{self.digest}"

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["ref"] = self.ref
        return d


def lock_path(root: Optional[Path] = None) -> Path:
    from edgebench.docker.targets import containers_dir

    return (root or containers_dir().parent) / LOCK_NAME


def _lock_spec():
    """images.lock.json's schema (issue 20): checked whole before any entry is used."""
    from edgebench.contracts.schema import Const, Int, Map, Null, Str

    digest = Str(pattern=r"^sha256:[0-9a-f]{64}$", hint="sha256: and 64 hex digits")
    name = Str(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", hint="a target name")

    def ref_matches(e):
        if "ref" in e and e["ref"] != f"{e['repo']}@{e['digest']}":
            return f"ref: {e['ref']!r} is not repo@digest ({e['repo']}@{e['digest']})"
        return None

    entry = Map({"target": name, "repo": Str(pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[a-z0-9._/-]+)?$",
                                             hint="host:port/repo"),
                 "digest": digest, "image_id": digest, "size": Int(0, 1 << 44), "l4t": Str(max_len=64),
                 "kit_version": Str(max_len=64), "git_revision": Str(max_len=64), "published_at": Str(max_len=64),
                 "ref": Str(max_len=512)},
                required=("target", "repo", "digest", "image_id", "size", "l4t", "kit_version", "git_revision",
                          "published_at"), rules=(ref_matches,))

    def keys_are_targets(doc):
        for t, e in (doc.get("images") or {}).items():
            if e["target"] != t:
                return f"images.{t}.target: {e['target']!r} is filed under {t!r}"
        return None

    return Map({"schema": Const(LOCK_SCHEMA), "note": Str(max_len=2000) | Null(),
                "images": Map({}, extra=entry, max_keys=1000) | Null()}, required=("schema",),
               rules=(keys_are_targets,))


def read_lock(path: Path) -> Dict[str, LockEntry]:
    """The lock file's entries by target ({} when there is none); PublishError naming the file and key path."""
    from edgebench.contracts.schema import problems

    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise PublishError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:
        raise PublishError(f"{path}: not valid JSON: {exc}") from None
    except OSError as exc:
        raise PublishError(f"{path}: cannot read ({exc.strerror or exc})") from None
    found = problems(doc, _lock_spec())
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise PublishError(f"{path}: {found[0]}{more}; this kit reads lock schema {LOCK_SCHEMA}: "
                           f"fix the entry or delete the file and publish again")
    out = {}
    for target, e in (doc.get("images") or {}).items():
        out[target] = LockEntry(**{k: v for k, v in e.items() if k != "ref"})
    return out


def write_lock(path: Path, entries: Dict[str, LockEntry]) -> None:
    doc = {"schema": LOCK_SCHEMA,
           "note": "written by `invoke publish`: the prebuilt image of each target for this kit version",
           "images": {t: e.to_dict() for t, e in sorted(entries.items())}}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def history_leaks(api: Any, image: str) -> List[str]:
    """History steps that mention an extra CA file (a COPY of it shows its destination)."""
    return [str(h.get("CreatedBy", ""))[:160] for h in api.history(image) if "extra-ca" in str(h.get("CreatedBy", ""))]


def _members(stream: Any) -> Iterator[str]:
    """Every file name in every layer of a `docker save` tar stream (legacy and OCI layouts)."""
    outer = tarfile.open(fileobj=stream, mode="r|")
    for member in outer:
        if not member.isfile() or member.name.endswith((".json", "repositories", "VERSION", "oci-layout")):
            continue
        f = outer.extractfile(member)
        if f is None:
            continue
        try:
            with tarfile.open(fileobj=f, mode="r|") as layer:
                for m in layer:
                    yield m.name
        except tarfile.ReadError:
            continue  # a blob that is not a layer (config, manifest)


class _ChunkReader:
    """A file object over a generator of byte chunks (docker-py's get_image), without quadratic copies."""

    def __init__(self, chunks: Any):
        self.chunks = iter(chunks)
        self.buf = b""
        self.pos = 0
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        parts = []
        want = n
        while want != 0:
            if self.pos >= len(self.buf):
                try:
                    self.buf, self.pos = next(self.chunks), 0
                except StopIteration:
                    break
                self.count += len(self.buf)
            take = len(self.buf) - self.pos if want < 0 else min(want, len(self.buf) - self.pos)
            parts.append(self.buf[self.pos:self.pos + take])
            self.pos += take
            if want > 0:
                want -= take
        return b"".join(parts)


def layer_leaks(api: Any, image: str) -> List[str]:
    """Paths in the image's layers that are the build machine's extra CA file (streamed `docker save`)."""
    found = []
    for name in _members(_ChunkReader(api.get_image(image, chunk_size=1 << 20))):
        if any(p.search(name.lstrip("./")) for p in LEAK_PATTERNS):
            found.append(name)
    return found


def check_clean(api: Any, image: str, deep: bool = True) -> None:
    """PublishError when the build machine's extra CA file is in any layer of `image`."""
    leaks = history_leaks(api, image)
    if not leaks and deep:
        leaks = layer_leaks(api, image)
    if leaks:
        raise PublishError(f"image {image} carries the build machine's extra CA file in a layer "
                           f"({'; '.join(leaks[:3])}): refused, an image that leaves this machine carries nothing "
                           f"of it. Rebuild with a kit whose --ca-bundle does not leave it in any layer.")


@dataclass
class PushResult:
    entry: LockEntry
    seconds: float
    bytes_pushed: int
    layers_pushed: int
    layers_existing: int


class _Progress:
    """Push progress as a line every `every` seconds and one per finished layer (a 2 GB push takes minutes)."""

    def __init__(self, say: Optional[Callable[[str], None]], every: float = 10.0, clock=time.monotonic):
        self.say, self.every, self.clock = say, every, clock
        self.start = self.last = clock()
        self.current: Dict[str, int] = {}
        self.done = 0

    def event(self, ev: Dict[str, Any]) -> None:
        if self.say is None:
            return
        status, layer = ev.get("status", ""), ev.get("id", "")
        if status == "Pushing" and layer:
            self.current[layer] = int((ev.get("progressDetail") or {}).get("current") or 0)
        elif status in ("Pushed", "Layer already exists") and layer:
            self.done += 1
            self.say(f"  layer {layer}: {status.lower()} ({self.done} done, {self._mb():.0f} MB sent, "
                     f"{self.clock() - self.start:.0f} s)")
        now = self.clock()
        if now - self.last >= self.every:
            self.last = now
            self.say(f"  pushing: {self._mb():.0f} MB sent, {self.done} layers done, {now - self.start:.0f} s")

    def _mb(self) -> float:
        return sum(self.current.values()) / 1e6


def push(api: Any, image: str, repo: str, tag: str,
         progress: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """Tag `image` as repo:tag and push it; {digest, size, bytes, pushed, existing}; PublishError on refusal.
    `progress` (a print function) gets a line per finished layer and every 10 s."""
    api.tag(image, repo, tag)
    totals: Dict[str, int] = {}
    existing = 0
    digest = None
    shown = _Progress(progress)
    try:
        for ev in api.push(repo, tag=tag, stream=True, decode=True):
            shown.event(ev)
            if ev.get("error") or ev.get("errorDetail"):
                raise PublishError(f"registry {repo.split('/')[0]} refused the push of {repo}:{tag}: "
                                   f"{ev.get('error') or ev['errorDetail'].get('message')}")
            status = ev.get("status", "")
            if status == "Layer already exists":
                existing += 1
            elif status == "Pushing" and ev.get("id"):
                total = (ev.get("progressDetail") or {}).get("total")
                if total:
                    totals[ev["id"]] = max(totals.get(ev["id"], 0), int(total))
            aux = ev.get("aux") or {}
            if aux.get("Digest"):
                digest = aux["Digest"]
    except PublishError:
        raise
    except Exception as exc:  # connection refused, API error
        raise PublishError(f"push of {repo}:{tag} failed: {exc}") from exc
    if not digest:
        raise PublishError(f"push of {repo}:{tag} reported no digest")
    return {"digest": digest, "bytes": sum(totals.values()), "pushed": len(totals), "existing": existing}


def publish(target: str, registry: str, *, image: Optional[str] = None, api: Any = None,
            lock: Optional[Path] = None, deep_check: bool = True,
            progress: Optional[Callable[[str], None]] = None) -> PushResult:
    """Check, push and lock `target`'s image (default tag edgebench:<version>-<target>)."""
    from edgebench import __version__
    from edgebench.docker.client import api_client
    from edgebench.docker.run import default_image, inspect
    from edgebench.docker.targets import load

    t = load(target)
    api = api or api_client()
    image = image or default_image(t)
    info = inspect(api, image)
    say = progress or (lambda _m: None)
    say(f"checking {image} for the build machine's CA file in its layers (reads the whole image)")
    check_clean(api, image, deep=deep_check)
    started = time.monotonic()
    repo = registry.rstrip("/") if "/" in registry else f"{registry}/edgebench"
    tag = f"{__version__}-{t.name}"
    say(f"pushing {image} to {repo}:{tag} ({int(info['Size']) / 1e6:.0f} MB uncompressed)")
    pushed = push(api, image, repo, tag, progress=progress)
    labels = (info.get("Config") or {}).get("Labels") or {}
    entry = LockEntry(target=t.name, repo=repo, digest=pushed["digest"], image_id=info["Id"], size=int(info["Size"]),
                      l4t=t.l4t or "", kit_version=__version__,
                      git_revision=labels.get("org.opencontainers.image.revision", "unknown"),
                      published_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    lock = lock or lock_path()
    entries = read_lock(lock)
    entries[t.name] = entry
    write_lock(lock, entries)
    return PushResult(entry, time.monotonic() - started, pushed["bytes"], pushed["pushed"], pushed["existing"])


__all__ = ["LockEntry", "PushResult", "publish", "push", "check_clean", "layer_leaks", "history_leaks",
           "read_lock", "write_lock", "lock_path", "LOCK_NAME"]
