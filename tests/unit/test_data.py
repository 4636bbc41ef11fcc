import io
import pickle
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from edgebench import data
from edgebench.data import CLASSES, DataError


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEBENCH_CACHE", str(tmp_path / "cache"))


def _batch(n, seed):
    rng = np.random.RandomState(seed)
    return {b"data": rng.randint(0, 256, size=(n, 3072), dtype=np.uint8), b"labels": list(rng.randint(0, 10, n))}


def _write_python_folder(root):
    root.mkdir(parents=True)
    for i in range(1, 6):
        (root / f"data_batch_{i}").write_bytes(pickle.dumps(_batch(4, i)))
    (root / "test_batch").write_bytes(pickle.dumps(_batch(3, 9)))
    return root


def _png(arr):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _write_image_tree(root, classes=CLASSES, size=32, per_class=1):
    for split in ("train", "test"):
        for c, name in enumerate(classes):
            d = root / split / name
            d.mkdir(parents=True)
            for k in range(per_class):
                arr = np.full((size, size, 3), c * 20 + k, dtype=np.uint8)
                (d / f"{k:04d}.png").write_bytes(_png(arr))
    return root


def test_python_folder_and_archive_agree(tmp_path):
    folder = _write_python_folder(tmp_path / "cifar-10-batches-py")
    a = data.load_cifar10(str(folder), progress=False)
    assert a.x_train.shape == (20, 32, 32, 3) and a.x_test.shape == (3, 32, 32, 3) and a.kind == "python-folder"
    raw = pickle.loads((folder / "test_batch").read_bytes())[b"data"][0]
    assert np.array_equal(a.x_test[0][..., 0].reshape(-1), raw[:1024])  # channel planes -> NHWC
    tgz = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tgz, "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    b = data.load_cifar10(str(tgz), progress=False)
    assert b.kind == "python-archive"
    assert np.array_equal(a.x_train, b.x_train) and np.array_equal(a.y_test, b.y_test)
    assert data.load_cifar10(str(tmp_path), progress=False).kind == "python-folder"  # parent of the folder


def test_image_folder_zip_and_cache(tmp_path):
    tree = _write_image_tree(tmp_path / "imgs")
    a = data.load_cifar10(str(tree), progress=False)
    assert a.x_train.shape == (10, 32, 32, 3) and sorted(a.y_train.tolist()) == list(range(10))
    # labels follow the official class order, whatever the file order
    assert a.x_train[list(a.y_train).index(3)][0, 0, 0] == 60
    z = tmp_path / "imgs.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(tree.rglob("*.png")):
            zf.write(p, "cifar10/" + p.relative_to(tree).as_posix())  # a top folder inside the zip is fine
    b = data.load_cifar10(str(z), progress=False)
    assert np.array_equal(a.x_test, b.x_test) and np.array_equal(a.y_test, b.y_test)
    cached = list((tmp_path / "cache").glob("*.npz"))
    assert len(cached) == 2
    c = data.load_cifar10(str(z), progress=False)  # second load comes from the cache
    assert np.array_equal(b.x_train, c.x_train) and c.checksum == b.checksum


@pytest.mark.parametrize("case,message", [
    ("missing", "no such file or folder"),
    ("unknown-file", "unknown file type"),
    ("unknown-layout", "unknown layout"),
    ("not-32", "image is 16x16, expected 32x32"),
    ("classes", "found 3 class folders"),
    ("empty", "empty split"),
    ("unreadable", "unreadable image"),
    ("bad-zip", "unreadable zip"),
    ("missing-batch", "missing batch files: test_batch"),
])
def test_bad_input_names_file_and_problem(tmp_path, case, message):
    target = tmp_path / "src"
    if case == "unknown-file":
        target = tmp_path / "data.csv"
        target.write_text("x")
    elif case == "unknown-layout":
        target.mkdir()
        (target / "readme.txt").write_text("x")
    elif case == "not-32":
        _write_image_tree(target, size=16)
    elif case == "classes":
        _write_image_tree(target, classes=("a", "b", "c"))
    elif case == "empty":
        (target / "train").mkdir(parents=True)
        (target / "test").mkdir()
    elif case == "unreadable":
        _write_image_tree(target)
        (target / "train" / "cat" / "0000.png").write_bytes(b"not an image")
    elif case == "bad-zip":
        target = tmp_path / "broken.zip"
        target.write_bytes(b"PK\x03\x04 garbage")
    elif case == "missing-batch":
        _write_python_folder(target / "cifar-10-batches-py")
        (target / "cifar-10-batches-py" / "test_batch").unlink()
        target = target / "cifar-10-batches-py"
    with pytest.raises(DataError, match=message) as info:
        data.load_cifar10(str(target), progress=False)
    assert str(tmp_path) in str(info.value)


def test_subset_is_deterministic():
    x = np.arange(100).reshape(100, 1)
    y = np.arange(100)
    a = data.subset(x, y, 10, seed=3)
    b = data.subset(x, y, 10, seed=3)
    assert np.array_equal(a[0], b[0]) and len(a[0]) == 10 and np.array_equal(a[0][:, 0], a[1])
    assert data.subset(x, y, None)[0] is x


def test_test_split_only_decodes_test_images(tmp_path, monkeypatch):
    """The benchmark reads only the split it needs (a container bench decoded all 50,000 training images)."""
    tree = _write_image_tree(tmp_path / "imgs", per_class=2)
    decoded = []
    real = data._decode
    monkeypatch.setattr(data, "_decode", lambda raw, name, origin: decoded.append(name) or real(raw, name, origin))
    t = data.load_cifar10_test(str(tree), progress=False)
    assert t.x_test.shape == (20, 32, 32, 3) and len(t.x_train) == 0
    assert decoded and all("/test/" in "/" + n for n in decoded) and len(decoded) == 20
    assert [p.name for p in (tmp_path / "cache").glob("*-test.npz")]  # cached per split
    decoded.clear()
    again = data.load_cifar10_test(str(tree), progress=False)
    assert not decoded and np.array_equal(again.x_test, t.x_test) and again.checksum == t.checksum
    full = data.load_cifar10(str(tree), progress=False)
    assert np.array_equal(full.x_test, t.x_test) and np.array_equal(full.y_test, t.y_test)


def test_test_split_from_python_folder_without_training_batches(tmp_path):
    folder = _write_python_folder(tmp_path / "cifar-10-batches-py")
    for i in range(1, 6):
        (folder / f"data_batch_{i}").unlink()  # not needed for the test split
    t = data.load_cifar10_test(str(folder), progress=False)
    assert t.x_test.shape == (3, 32, 32, 3)
