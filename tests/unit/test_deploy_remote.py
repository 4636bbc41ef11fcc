"""The remote launcher's artifact listing: what is synced, and its digest (hermetic)."""
from __future__ import annotations

from edgebench.launchers.remote import bench_files, tree_digest


def test_bench_files_leave_training_state_out_and_digest_follows_content(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "epoch1.keras").write_bytes(b"x" * 10)
    (tmp_path / "train_state.json").write_text("{}")
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    (tmp_path / "manifest.json").write_text("{}")
    (tmp_path / "saved_model").mkdir()
    (tmp_path / "saved_model" / "saved_model.pb").write_bytes(b"pb")
    files = bench_files(tmp_path)
    assert [n for n, _ in files] == ["manifest.json", "model.onnx", "saved_model/saved_model.pb"]
    digest, listing = tree_digest(files)
    assert listing.count("\n") == 3 and "  saved_model/saved_model.pb" in listing
    (tmp_path / "checkpoints" / "epoch2.keras").write_bytes(b"y")
    assert tree_digest(bench_files(tmp_path))[0] == digest, "training state does not change what is synced"
    (tmp_path / "model.onnx").write_bytes(b"onnx2")
    assert tree_digest(bench_files(tmp_path))[0] != digest
