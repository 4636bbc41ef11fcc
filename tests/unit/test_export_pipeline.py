"""The export pipeline's own steps that need no framework: its private temp folder, data refusal wording,
the package's public names (tasks.py imports export_all from edgebench.export)."""
from __future__ import annotations

import os
import tempfile

import pytest

from edgebench.export import pipeline


def test_private_tempdir_is_cleaned_before_and_after(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", "/somewhere")
    left = tmp_path / pipeline.TMP_DIRNAME / "tmp_killed_export"
    left.mkdir(parents=True)
    (left / "variables.data").write_bytes(b"x" * 10)
    before = tempfile.gettempdir()
    with pipeline.private_tempdir(tmp_path) as tmp:
        assert tmp == tmp_path / pipeline.TMP_DIRNAME and not left.exists()
        assert os.environ["TMPDIR"] == str(tmp) and tempfile.gettempdir() == str(tmp)
        with tempfile.NamedTemporaryFile() as f:
            assert f.name.startswith(str(tmp))
    assert not (tmp_path / pipeline.TMP_DIRNAME).exists()
    assert os.environ["TMPDIR"] == "/somewhere" and tempfile.gettempdir() == before


def test_private_tempdir_restores_even_when_the_export_raises(tmp_path, monkeypatch):
    monkeypatch.delenv("TMPDIR", raising=False)
    with pytest.raises(RuntimeError):
        with pipeline.private_tempdir(tmp_path):
            raise RuntimeError("converter crashed")
    assert "TMPDIR" not in os.environ and not (tmp_path / pipeline.TMP_DIRNAME).exists()


def test_data_error_says_nothing_was_exported_and_how_to_fix_it():
    err = pipeline.ExportDataError("/data/nope.zip", "DataError: no such file")
    assert isinstance(err, ValueError)  # the CLI turns it into one line and exit 2
    text = str(err)
    assert "/data/nope.zip" in text and "no such file" in text and "nothing was exported" in text
    assert "--parity-images 0" in text


def test_package_keeps_its_public_names():
    import edgebench.export as export

    for name in ("export_all", "select", "exporters", "exporter_class", "ExportError", "ModelError",
                 "ExportDataError", "DEFAULT_FORMATS", "DEFAULT_CALIB_IMAGES", "ARTIFACTS", "FORMATS"):
        assert hasattr(export, name), name
