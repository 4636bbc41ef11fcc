"""Small helpers shared by every module: atomic writes, hashing."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Optional, Union

from edgebench.contracts.vocabulary import GIT_REVISION_ENV

PathLike = Union[str, "os.PathLike[str]"]


def tf_log_level() -> str:
    """TF_CPP_MIN_LOG_LEVEL for TensorFlow as the kit runs it: $EDGEBENCH_TF_LOG_LEVEL, else the vocabulary's."""
    from edgebench.contracts.vocabulary import TF_LOG_LEVEL, TF_LOG_LEVEL_ENV

    return os.environ.get(TF_LOG_LEVEL_ENV, TF_LOG_LEVEL)


def sha256_file(path: PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def json_digest(obj: Any) -> str:
    """sha256 (hex) of `obj` as JSON with sorted keys: the same content gives the same digest, whatever the
    order it was built in (cache keys, machine ids, suite digests). Values JSON cannot hold count as str()."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def sha256_path(path: PathLike) -> str:
    """sha256 of a file, or of a folder's files (relative names and contents, in sorted order)."""
    p = Path(path)
    if p.is_file():
        return sha256_file(p)
    h = hashlib.sha256()
    for f in sorted(q for q in p.rglob("*") if q.is_file()):
        h.update(f.relative_to(p).as_posix().encode() + b"\0")
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def path_size(path: PathLike) -> int:
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(q.stat().st_size for q in p.rglob("*") if q.is_file())


@contextlib.contextmanager
def atomic_open(path: PathLike) -> Iterator[BinaryIO]:
    """A binary file to write that appears under `path` only once complete (temporary name, then rename):
    a reader never sees half a file, and a failure leaves nothing behind."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)


def load_object(target: str) -> Any:
    """'package.module:Name' -> the object, imported on demand (lazy registries of backends and exporters)."""
    import importlib

    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def atomic_write_text(path: PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:
        pass
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def git_revision(root: Optional[PathLike] = None, short: Optional[int] = None, use_env: bool = True) -> Optional[str]:
    """The kit's git revision: $EDGEBENCH_GIT_REVISION when set (inside an image: its label), else HEAD of the
    checkout at `root` (default: this package's repository), `short` hex digits if asked, with `-dirty` when
    tracked files changed; None outside git. The one copy (bench fingerprints and image labels both use it)."""
    import re
    import subprocess

    if use_env and os.environ.get(GIT_REVISION_ENV):
        return os.environ[GIT_REVISION_ENV]
    top = Path(root) if root is not None else Path(__file__).resolve().parents[2]
    if not (top / ".git").exists():
        return None
    try:
        args = ["git", "-C", str(top), "rev-parse"] + ([f"--short={int(short)}"] if short else []) + ["HEAD"]
        rev = subprocess.run(args, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(top), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not re.fullmatch(r"[0-9a-f]{7,40}", rev):
        return None
    return rev + ("-dirty" if dirty else "")
