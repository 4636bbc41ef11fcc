"""What the harness checks before it measures anything, and refuses (BenchError) when it fails:

- the results file at --out: never overwrite one unless asked (--force, or --resume to continue it), never
  touch a file that is not an edgebench results file, a folder or an unwritable place (`check_out`);
- every artifact, and the model, against the export manifest's sha256 (`Provenance`): a file copied over
  another, or a different model.keras beside an old manifest, is refused naming both hashes, unless the
  request says `--allow-unverified` (then every row says so).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional

from edgebench.bench.errors import BenchError
from edgebench.util import sha256_path

#: a row's warning when the manifest check was overridden
UNVERIFIED = "unverified artifacts: the manifest check was overridden (--allow-unverified); this row may not " \
             "measure the model the manifest describes"


def _is_results_file(path: Path) -> Optional[str]:
    """None when `path` is an edgebench results file, else why not."""
    from edgebench import results

    try:
        results.load(path)
    except results.ResultsError as exc:
        return exc.reason
    return None


def check_out(out: Path, force: bool = False, resume: bool = False) -> None:
    """Refuse an --out that would destroy something or cannot be written, before anything is measured."""
    out = Path(out)
    if out.is_dir():
        raise BenchError(f"--out {out} is a folder; give the results file's name, e.g. {out / 'results.json'}")
    parent = out.parent
    if parent.exists() and not parent.is_dir():
        raise BenchError(f"--out {out}: {parent} is a file, not a folder")
    if out.exists():
        why = _is_results_file(out)
        if why is not None:
            raise BenchError(f"--out {out} exists and is not an edgebench results file ({why}); refusing to touch "
                             f"it: choose another --out")
        if not (force or resume):
            raise BenchError(f"--out {out} exists; refusing to overwrite it: pass --force to replace it, "
                             f"--resume to continue it, or choose another --out")
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(str(probe), os.W_OK | os.X_OK):
        raise BenchError(f"--out {out}: {probe} is not writable (read-only or no permission); choose another --out")
    if out.exists() and not os.access(str(out), os.W_OK):
        raise BenchError(f"--out {out} is not writable (no permission)")


def _get(obj: Any, name: str, default: Any = None) -> Any:
    """A field of a manifest record, whether the manifest is a dict or a typed object."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


class Provenance:
    """The export manifest of an artifacts folder, and the sha256 checks against it."""

    def __init__(self, artifacts: Path, allow_unverified: bool = False):
        from edgebench.export import manifest as manifest_mod

        self.artifacts = Path(artifacts)
        self.allow_unverified = allow_unverified
        self.notes: List[str] = []
        try:
            self.manifest = manifest_mod.load(self.artifacts)
        except LookupError as exc:  # ManifestError: none, unreadable, wrong schema
            if not allow_unverified:
                raise BenchError(f"{exc}; without a manifest the artifacts cannot be checked (export again, or "
                                 f"pass --allow-unverified to measure them unchecked; rows will say so)") from None
            self.manifest = None
            self.notes.append(f"no usable manifest ({exc})")

    def _expected(self, fmt: str, precision: str, path: Path) -> Optional[str]:
        if self.manifest is None:
            return None
        if fmt == "keras" and path.name == "model.keras":
            model = _get(self.manifest, "model")
            sha = _get(model, "sha256") if model is not None else None
            if sha:
                return sha
        for art in _get(self.manifest, "artifacts") or []:
            if _get(art, "format") == fmt and _get(art, "precision") == precision:
                return _get(art, "sha256")
        return None

    def verify(self, fmt: str, precision: str, path: Path, actual: Optional[str] = None) -> Dict[str, Any]:
        """sha256 of `path`, checked against the manifest; BenchError naming both hashes on a mismatch."""
        actual = actual or sha256_path(path)
        expected = self._expected(fmt, precision, Path(path))
        verified = expected is not None and expected == actual
        result = {"sha256": actual, "manifest_sha256": expected, "verified": verified}
        if result["verified"]:
            return result
        if expected is None:
            problem = f"{path}: the manifest of {self.artifacts} records no sha256 for {fmt}/{precision}"
        else:
            problem = (f"{path}: sha256 {actual} does not match the manifest's {expected} for {fmt}/{precision} "
                       f"(the file was replaced or changed after export)")
        if not self.allow_unverified:
            raise BenchError(f"{problem}; refusing to measure it: export again (`edgebench export`), or pass "
                             f"--allow-unverified to measure it anyway (its rows will say so)")
        self.notes.append(problem)
        return result

    def model_width(self) -> Optional[int]:
        """Output width the manifest records for the model, if it records one."""
        if self.manifest is None:
            return None
        model = _get(self.manifest, "model")
        for name in ("num_classes", "output_width", "classes"):
            v = _get(model, name) if model is not None else None
            if isinstance(v, int):
                return v
        return None
