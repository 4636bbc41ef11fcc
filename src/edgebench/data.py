"""CIFAR-10 readers: the official archive or folder, image-folder trees (plain or zipped), Keras' download.

Every reader returns the same thing: uint8 NHWC arrays (0..255) and int64 labels in the official label
order. Decoded arrays are cached under a key made of the source's checksum, so the second load is fast.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from edgebench.contracts.vocabulary import DATA_CACHE_ENV
from edgebench.contracts.vocabulary import INPUT_SHAPE as IMAGE_SHAPE
from edgebench.errors import EdgebenchError
from edgebench.util import atomic_open, sha256_file

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CACHE_VERSION = 1
DATA_ENV = "EDGEBENCH_DATA"
CACHE_ENV = DATA_CACHE_ENV


class DataError(EdgebenchError, ValueError):
    """Bad CIFAR-10 input: carries the offending path and what is wrong with it."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass
class Cifar10:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    kind: str
    checksum: str

    def describe(self) -> Dict[str, object]:
        return {
            "source": self.source,
            "kind": self.kind,
            "checksum": self.checksum,
            "train_images": int(len(self.x_train)),
            "test_images": int(len(self.x_test)),
        }


def cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "edgebench")
    return Path(root)


def detect_kind(path: Path) -> str:
    """Name the layout of a CIFAR-10 source, or raise DataError saying why it is none we know."""
    if not path.exists():
        raise DataError(path, "no such file or folder")
    if path.is_file():
        name = path.name.lower()
        if name.endswith((".tar.gz", ".tgz", ".tar")):
            return "python-archive"
        if name.endswith(".zip"):
            return "image-zip"
        raise DataError(path, "unknown file type (expected cifar-10-python.tar.gz or a .zip of "
                              "train|test/<class>/ images)")
    if any((path / n).exists() for n in ("data_batch_1", "test_batch")):  # missing batches get named later
        return "python-folder"
    if (path / "cifar-10-batches-py").is_dir():
        return "python-folder"
    if (path / "train").is_dir() and (path / "test").is_dir():
        return "image-folder"
    raise DataError(
        path,
        "unknown layout: expected cifar-10-batches-py/ (data_batch_1..5, test_batch) "
        "or train/ and test/ folders of <class>/ images",
    )


def checksum(path: Path) -> str:
    """sha256 of a file's bytes; for a folder, of every file's relative path, size and mtime (fast on 60k files)."""
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        st = p.stat()
        h.update(f"{p.relative_to(path).as_posix()}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    return "dir-" + h.hexdigest()


def load_cifar10_test(source: Optional[str] = None, use_cache: bool = True, progress: bool = True) -> Cifar10:
    """Only the test split (x_train/y_train are empty): a benchmark decodes 10,000 images, not 60,000.
    Cached per split; a full cache of the same source serves it too."""
    source = source or os.environ.get(DATA_ENV) or None
    if source is None:
        full = _load_keras_download()
        return Cifar10(full.x_train[:0], full.y_train[:0], full.x_test, full.y_test, full.source, full.kind,
                       full.checksum)
    path = Path(source).expanduser().resolve()
    kind = detect_kind(path)
    digest = checksum(path)
    test_cache = cache_dir() / f"cifar10-v{CACHE_VERSION}-{digest[:24]}-test.npz"
    if use_cache:
        for cached in (test_cache, _cache_file(digest)):
            if cached.exists():
                try:
                    with np.load(cached) as z:
                        x, y = z["x_test"], z["y_test"]
                    return Cifar10(x[:0], y[:0], x, y, str(path), kind, digest)
                except (OSError, ValueError, KeyError):
                    cached.unlink(missing_ok=True)  # corrupt cache: decode again
    x_test, y_test = _READERS[kind](path, progress, ("test",))
    data = Cifar10(x_test[:0], y_test[:0], x_test, y_test, str(path), kind, digest)
    _validate(data, path, ("test",))
    if use_cache:
        _atomic_savez(test_cache, x_test=x_test, y_test=y_test)
    return data


def _cache_file(digest: str) -> Path:
    return cache_dir() / f"cifar10-v{CACHE_VERSION}-{digest[:24]}.npz"


def load_cifar10(source: Optional[str] = None, use_cache: bool = True, progress: bool = True) -> Cifar10:
    """Load CIFAR-10 from `source` (a path), $EDGEBENCH_DATA, or Keras' download when online."""
    source = source or os.environ.get(DATA_ENV) or None
    if source is None:
        return _load_keras_download()
    path = Path(source).expanduser().resolve()
    kind = detect_kind(path)
    digest = checksum(path)
    cache_file = _cache_file(digest)
    if use_cache and cache_file.exists():
        try:
            with np.load(cache_file) as z:
                return Cifar10(z["x_train"], z["y_train"], z["x_test"], z["y_test"], str(path), kind, digest)
        except (OSError, ValueError, KeyError):
            cache_file.unlink(missing_ok=True)  # corrupt cache: decode again
    x_train, y_train, x_test, y_test = _READERS[kind](path, progress, ("train", "test"))
    data = Cifar10(x_train, y_train, x_test, y_test, str(path), kind, digest)
    _validate(data, path)
    if use_cache:
        _atomic_savez(cache_file, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return data


def _atomic_savez(target: Path, **arrays) -> None:
    with atomic_open(target) as f:
        np.savez(f, **arrays)


def _validate(data: Cifar10, path: Path, splits=("train", "test")) -> None:
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        if split not in splits:
            continue
        if len(x) == 0:
            raise DataError(path, f"empty split: no {split} images")
        if x.shape[1:] != IMAGE_SHAPE:
            raise DataError(path, f"{split} images have shape {x.shape[1:]}, expected {IMAGE_SHAPE}")
        if len(x) != len(y):
            raise DataError(path, f"{split}: {len(x)} images but {len(y)} labels")
        if y.min() < 0 or y.max() >= len(CLASSES):
            raise DataError(path, f"{split}: labels outside 0..{len(CLASSES) - 1}")


# --- official python pickles -------------------------------------------------------------------

def _unpickle_batch(raw: bytes, name: str, origin: Path) -> Tuple[np.ndarray, np.ndarray]:
    try:
        d = pickle.loads(raw, encoding="bytes")
        data = np.asarray(d[b"data"], dtype=np.uint8)
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except Exception as exc:  # pickle raises many types on corrupt input
        raise DataError(origin, f"{name}: not a CIFAR-10 batch ({type(exc).__name__}: {exc})") from exc
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(origin, f"{name}: rows of {data.shape[1:]} values, expected 3072 (32x32x3)")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))


def _batch_names(splits) -> List[str]:
    return (list(TRAIN_BATCHES) if "train" in splits else []) + (["test_batch"] if "test" in splits else [])


def _join_batches(batches: Dict[str, bytes], origin: Path, splits=("train", "test")):
    missing = [n for n in _batch_names(splits) if n not in batches]
    if missing:
        raise DataError(origin, f"missing batch files: {', '.join(missing)}")
    out: List[np.ndarray] = []
    if "train" in splits:
        train = [_unpickle_batch(batches[n], n, origin) for n in TRAIN_BATCHES]
        out += [np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train])]
    if "test" in splits:
        out += list(_unpickle_batch(batches["test_batch"], "test_batch", origin))
    return tuple(out)


def _read_python_archive(path: Path, progress: bool, splits=("train", "test")):
    batches: Dict[str, bytes] = {}
    wanted = set(_batch_names(splits))
    try:
        with tarfile.open(path) as tar:
            for member in tar:
                base = os.path.basename(member.name)
                if member.isfile() and base in wanted:
                    batches[base] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataError(path, f"unreadable archive ({exc})") from exc
    return _join_batches(batches, path, splits)


def _read_python_folder(path: Path, progress: bool, splits=("train", "test")):
    if (path / "cifar-10-batches-py").is_dir():
        path = path / "cifar-10-batches-py"
    wanted = set(_batch_names(splits))
    batches = {p.name: p.read_bytes() for p in path.iterdir() if p.name in wanted}
    return _join_batches(batches, path, splits)


# --- image folders and zips --------------------------------------------------------------------

def _class_index(names: Iterable[str], origin: Path, split: str) -> Dict[str, int]:
    names = sorted(set(names))
    if len(names) != len(CLASSES):
        found = ", ".join(names) or "none"
        raise DataError(origin, f"{split}: found {len(names)} class folders ({found}), expected 10")
    if set(names) == set(CLASSES):
        return {c: i for i, c in enumerate(CLASSES)}
    return {c: i for i, c in enumerate(names)}  # unknown names: sorted order, like Keras' image_dataset_from_directory


def _decode(raw: bytes, name: str, origin: Path) -> np.ndarray:
    from PIL import Image  # lazy: only image-folder sources need Pillow

    try:
        with Image.open(io.BytesIO(raw)) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except Exception as exc:
        raise DataError(origin, f"{name}: unreadable image ({type(exc).__name__}: {exc})") from exc
    if arr.shape != IMAGE_SHAPE:
        raise DataError(origin, f"{name}: image is {arr.shape[1]}x{arr.shape[0]}, expected 32x32")
    return arr


def _split_entries(entries: List[str], origin: Path) -> Dict[str, List[Tuple[str, str]]]:
    """Group 'prefix/train/<class>/file.jpg' names into {'train': [(class, name)], 'test': [...]}."""
    out: Dict[str, List[Tuple[str, str]]] = {"train": [], "test": []}
    for name in entries:
        if not name.lower().endswith(IMAGE_SUFFIXES):
            continue
        parts = name.split("/")
        if len(parts) < 3 or parts[-3] not in out:
            continue
        out[parts[-3]].append((parts[-2], name))
    return out


def _read_tree(entries: List[str], read, origin: Path, progress: bool, splits=("train", "test")):
    grouped = _split_entries(entries, origin)
    arrays = []
    for split in splits:
        items = sorted(grouped[split], key=lambda t: t[1])
        if not items:
            raise DataError(origin, f"empty split: no images under {split}/<class>/")
        index = _class_index((c for c, _ in items), origin, split)
        x = np.empty((len(items),) + IMAGE_SHAPE, dtype=np.uint8)
        y = np.empty(len(items), dtype=np.int64)
        bar = _progress(len(items), f"decode {split}", progress)
        for i, (cls, name) in enumerate(items):
            x[i] = _decode(read(name), name, origin)
            y[i] = index[cls]
            bar.update(1)
        bar.close()
        arrays += [x, y]
    return tuple(arrays)


def _read_image_folder(path: Path, progress: bool, splits=("train", "test")):
    entries = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
    return _read_tree(entries, lambda n: (path / n).read_bytes(), path, progress, splits)


def _read_image_zip(path: Path, progress: bool, splits=("train", "test")):
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(path, f"unreadable zip ({exc})") from exc
    def read(name: str) -> bytes:
        import zlib

        try:
            return zf.read(name)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
            raise DataError(path, f"damaged zip member {name} ({exc}): the file is corrupt; copy or download it "
                                  f"again") from None

    with zf:
        return _read_tree(zf.namelist(), read, path, progress, splits)


_READERS = {
    "python-archive": _read_python_archive,
    "python-folder": _read_python_folder,
    "image-folder": _read_image_folder,
    "image-zip": _read_image_zip,
}


def _load_keras_download() -> Cifar10:
    try:
        import tensorflow as tf

        (x_train, y_train), (x_test, y_test) = tf.keras.datasets.cifar10.load_data()
    except Exception as exc:
        raise DataError(
            "keras:cifar10",
            f"download failed ({type(exc).__name__}: {exc}); offline, pass --data PATH "
            f"(cifar-10-python.tar.gz, cifar-10-batches-py/, or a train|test/<class>/ image folder or .zip) "
            f"or set ${DATA_ENV}",
        ) from exc
    return Cifar10(x_train, y_train.reshape(-1).astype(np.int64), x_test, y_test.reshape(-1).astype(np.int64),
                   "keras:cifar10", "keras-download", "keras-cifar10")


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, desc: str, enabled: bool):
    if not enabled or not sys.stderr.isatty():  # a bar redrawn with \r is noise in a log or a container's stream
        return _NoBar()
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar()
    return tqdm(total=total, desc=desc, unit="img", mininterval=1.0, leave=False)


def subset(x: np.ndarray, y: np.ndarray, limit: Optional[int], seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A class-balanced-in-expectation random subset of `limit` items (all of them when limit is None)."""
    if limit is None or limit >= len(x):
        return x, y
    idx = np.random.RandomState(seed).permutation(len(x))[:limit]
    idx.sort()
    return x[idx], y[idx]
