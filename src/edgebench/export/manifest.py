"""manifest.json: what `edgebench export` wrote, with sizes, hashes, tool versions and parity.

    {"schema": "edgebench.manifest", "schema_version": 1, "created": ISO-8601 UTC,
     "model": {"path", "sha256", "name"}, "data": {"source", "checksum"} | null,
     "options": {...}, "artifacts": [ {name, format, precision, path (relative to the manifest),
       size_bytes, sha256, tools, applied, options, export_seconds, status, error, parity}, ... ]}

`load(dir)` reads and checks it; `resolve(dir, format, precision)` gives the path of one artifact
that exported and passed parity, or raises ManifestError saying why not (the benchmark uses these).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from edgebench import util

SCHEMA = "edgebench.manifest"
SCHEMA_VERSION = 1
FILENAME = "manifest.json"


class ManifestError(LookupError):
    """A manifest that is missing or unreadable, or an artifact it lacks or marks failed."""


def new(model_path: Path, model_name: Optional[str], model_sha256: Optional[str],
        data: Optional[Dict[str, Any]], options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {"path": str(model_path), "sha256": model_sha256, "name": model_name},
        "data": data,
        "options": options or {},
        "artifacts": [],
    }


def write(directory: Union[str, Path], manifest: Dict[str, Any]) -> Path:
    path = Path(directory) / FILENAME
    util.atomic_write_json(path, manifest)
    return path


def _manifest_path(directory: Union[str, Path]) -> Path:
    p = Path(directory)
    return p if p.name.endswith(".json") and p.is_file() else p / FILENAME


def load(directory: Union[str, Path]) -> Dict[str, Any]:
    """Read `directory/manifest.json` (or a manifest file given directly) and check its schema."""
    path = _manifest_path(directory)
    if not path.exists():
        raise ManifestError(f"{path}: no export manifest (run `edgebench export MODEL.keras` first)")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{path}: unreadable manifest: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ManifestError(f"{path}: not an edgebench manifest (schema {data.get('schema') if isinstance(data, dict) else None!r})")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise ManifestError(f"{path}: manifest schema_version {data.get('schema_version')} is not "
                            f"{SCHEMA_VERSION} (export again with this kit)")
    if not isinstance(data.get("artifacts"), list):
        raise ManifestError(f"{path}: manifest has no artifacts list")
    return data


def find(manifest: Dict[str, Any], fmt: str, precision: str) -> Optional[Dict[str, Any]]:
    for art in manifest.get("artifacts", []):
        if art.get("format") == fmt and art.get("precision") == precision:
            return art
    return None


def resolve(directory: Union[str, Path], fmt: str, precision: str, require_parity: bool = True) -> Path:
    """Absolute path of the artifact `fmt`/`precision` listed in the manifest; ManifestError when it is
    not listed, failed to export, failed parity (unless require_parity=False) or is gone from disk."""
    mpath = _manifest_path(directory)
    manifest = load(mpath)
    art = find(manifest, fmt, precision)
    if art is None:
        have = ", ".join(f"{a.get('format')}/{a.get('precision')}" for a in manifest["artifacts"]) or "none"
        raise ManifestError(f"{mpath}: no {fmt}/{precision} artifact (it lists: {have})")
    if art.get("status") != "ok":
        raise ManifestError(f"{mpath}: {fmt}/{precision} artifact {art.get('status')}: {art.get('error')}")
    parity = art.get("parity")
    if require_parity and parity is not None and not parity.get("passed", False):
        raise ManifestError(f"{mpath}: {fmt}/{precision} artifact failed parity: {parity.get('reason')}")
    path = Path(art["path"])
    if not path.is_absolute():
        path = mpath.parent / path
    if not path.exists():
        raise ManifestError(f"{mpath}: {fmt}/{precision} artifact {path} is listed but missing on disk")
    return path


def failed(manifest: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Artifacts that failed export or parity."""
    return [a for a in manifest.get("artifacts", [])
            if a.get("status") != "ok" or (a.get("parity") is not None and not a["parity"].get("passed", False))]
