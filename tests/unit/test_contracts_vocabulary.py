"""Each shared fact has one home (contracts.vocabulary): the runtimes, exporters and targets cannot drift from it."""
from __future__ import annotations

import re
from pathlib import Path

from edgebench import runtimes
from edgebench.contracts import vocabulary as v
from edgebench.export import parity, registry
from edgebench.export.base import Exporter

SRC = Path(__file__).resolve().parents[2] / "src" / "edgebench"


def test_runtime_registry_is_the_vocabulary():
    assert [n for n in runtimes.names() if n in v.BACKENDS] == list(v.BACKENDS)
    for name, (fmt, device) in v.BACKENDS.items():
        cls = runtimes.get(name)
        assert cls.name == name, name
        assert cls.artifact_for("fp32")[0] == fmt, name
        assert cls.device == device, name
        assert set(cls.precisions) <= set(v.PRECISIONS), name
    assert v.REFERENCE_BACKEND in v.BACKENDS and v.REFERENCE_BACKEND_NO_TF in v.BACKENDS


def test_exporters_write_only_vocabulary_formats_and_precisions():
    seen = set()
    for name in registry.ARTIFACTS[1:]:
        cls = registry.exporter_class(name)
        assert issubclass(cls, Exporter) and cls.artifact_name() == name
        assert cls.format in v.FORMATS and cls.precision in v.EXPORT_PRECISIONS, name
        if cls.runtime:
            assert cls.runtime in v.BACKENDS, name
        seen.add(cls.format)
    assert seen | {"keras"} == set(v.FORMATS)
    assert set(v.FORMAT_BACKEND) == set(v.FORMATS)
    assert all(b in v.BACKENDS for b in v.FORMAT_BACKEND.values())


def test_every_precision_has_a_parity_threshold():
    assert set(v.PARITY_THRESHOLDS) == set(v.PRECISIONS)
    assert set(parity.thresholds()) == set(v.PRECISIONS)
    assert parity.thresholds()["bf16"]["max_rel_diff"] > parity.thresholds()["fp16"]["max_rel_diff"]


def test_targets_know_exactly_the_vocabulary_backends():
    from edgebench.docker import targets

    assert set(targets.KNOWN_BACKENDS) == set(v.BACKENDS)
    for name in targets.available():
        t = targets.load(name)
        assert set(t.backends) <= set(v.BACKENDS), name


# each shared name, as a pattern for its spelling outside contracts/vocabulary.py
RESPELLED = {
    "input shape": r"\(32, 32, 3\)|32 \* 32 \* 3|[nb], 32, 32, 3|\[1, 32, 32, 3\]",
    "a vocabulary name assigned": r"^(INPUT_NAME|INPUT_SHAPE|NUM_CLASSES|IMAGE_SHAPE|KNOWN_BACKENDS)\s*=\s*[\"'(0-9]",
    "an image/target/revision env var": r"[\"']EDGEBENCH_(IMAGE|IMAGE_ID|IMAGE_DIGEST|TARGET|GIT_REVISION)[\"']",
    "a shared results key": r"[\"'](resolved_threads|tf32_effective)[\"']",
    "training's file names": r"[\"'](train_state\.json|checkpoints)[\"']",
    "the calibration default": r"calib_images[\"']?\s*[:=]\s*(int\s*=\s*)?500\b|CALIB_IMAGES = 500",
    "a precision list": r"^PRECISIONS\s*=\s*\(",
}


def test_no_module_in_src_respells_the_shared_facts():
    """The shared names (input shape, env vars, results keys, file names, defaults) are spelled only in the
    vocabulary: every module of src/ is scanned, not a list."""
    home = SRC / "contracts" / "vocabulary.py"
    found = []
    for f in sorted(SRC.rglob("*.py")):
        if f == home:
            continue
        text = f.read_text()
        for what, pattern in RESPELLED.items():
            for m in re.finditer(pattern, text, re.M):
                line = text[:m.start()].count("\n") + 1
                found.append(f"{f.relative_to(SRC)}:{line}: {what} ({m.group(0)!r})")
    assert found == [], "re-spelled outside contracts/vocabulary.py:\n" + "\n".join(found)


def test_git_revision_has_one_home(monkeypatch, tmp_path):
    from edgebench import util

    monkeypatch.setenv("EDGEBENCH_GIT_REVISION", "abc1234")
    assert util.git_revision() == "abc1234"
    assert util.git_revision(use_env=False) != "abc1234"
    monkeypatch.delenv("EDGEBENCH_GIT_REVISION")
    rev = util.git_revision(short=12)
    assert rev is None or re.fullmatch(r"[0-9a-f]{12}(-dirty)?", rev)
    assert util.git_revision(tmp_path) is None  # outside git
