"""manifest.json: what `edgebench export` wrote, with sizes, hashes, tool versions and parity.

    {"schema": "edgebench.manifest", "schema_version": 1, "created": ISO-8601 UTC,
     "model": {"path", "sha256", "name"}, "data": {"source", "checksum"} | null,
     "options": {...}, "artifacts": [ {name, format, precision, path (relative to the manifest),
       size_bytes, sha256, tools, applied, options, export_seconds, status, error, parity}, ... ]}

`load(dir)` reads and checks it; `resolve(dir, format, precision)` gives the path of one artifact
that exported and passed parity, or raises ManifestError saying why not (the benchmark uses these).

Typed in code: `Manifest` and `ArtifactRecord` (dataclasses with to_dict/from_dict); `load` checks every
field (the schema name and version through contracts.schema.check_header, the one place for both), so a
malformed manifest is a ManifestError naming the file and the field, never a raw KeyError or TypeError.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from edgebench import util
from edgebench.contracts.schema import (
    Anything,
    Int,
    List_,
    Map,
    Null,
    Num,
    SchemaProblem,
    Str,
    check,
    check_header,
    need,
)
from edgebench.contracts.vocabulary import FORMATS, PRECISIONS
from edgebench.export.errors import ExportFamilyError

SCHEMA = "edgebench.manifest"
SCHEMA_VERSION = 1
FILENAME = "manifest.json"


ARTIFACT_STATUSES = ("ok", "failed")


class ManifestError(ExportFamilyError, LookupError):
    """A manifest that is missing or unreadable, or an artifact it lacks or marks failed."""


@dataclass
class ArtifactRecord:
    """One row of the manifest's `artifacts` list."""

    name: str
    format: str
    precision: str
    path: str
    status: str = "ok"
    error: Optional[str] = None
    size_bytes: Optional[int] = None
    sha256: Optional[str] = None
    tools: Dict[str, Optional[str]] = field(default_factory=dict)
    applied: List[str] = field(default_factory=list)
    options: Dict[str, Any] = field(default_factory=dict)
    export_seconds: Optional[float] = None
    parity: Optional[Dict[str, Any]] = None

    def to_dict(self) -> Dict[str, Any]:
        return {
            "name": self.name, "format": self.format, "precision": self.precision, "path": self.path,
            "size_bytes": self.size_bytes, "sha256": self.sha256, "tools": dict(self.tools),
            "applied": list(self.applied), "options": dict(self.options),
            "export_seconds": self.export_seconds, "status": self.status, "error": self.error,
            "parity": self.parity,
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "artifact") -> "ArtifactRecord":
        if not isinstance(d, dict):
            raise SchemaProblem(f"{where}: expected an object, got {type(d).__name__}")
        where = f"{where} ({d['name']})" if isinstance(d.get("name"), str) else where
        rec = cls(name=need(d, "name", "str", where), format=need(d, "format", "str", where, choices=FORMATS),
                  precision=need(d, "precision", "str", where, choices=PRECISIONS), path=need(d, "path", "str", where),
                  status=need(d, "status", "str", where, choices=ARTIFACT_STATUSES),
                  error=need(d, "error", "str", where, required=False, none_ok=True),
                  size_bytes=need(d, "size_bytes", "int", where, required=False, none_ok=True),
                  sha256=need(d, "sha256", "str", where, required=False, none_ok=True),
                  tools=need(d, "tools", "dict", where, required=False, none_ok=True) or {},
                  applied=need(d, "applied", "list", where, required=False, none_ok=True) or [],
                  options=need(d, "options", "dict", where, required=False, none_ok=True) or {},
                  export_seconds=need(d, "export_seconds", "num", where, required=False, none_ok=True),
                  parity=need(d, "parity", "dict", where, required=False, none_ok=True))
        if not rec.path.strip():
            raise SchemaProblem(f"{where}.path: empty")
        if rec.parity is not None:
            need(rec.parity, "passed", "bool", f"{where}.parity", required=False, none_ok=True)
            need(rec.parity, "reason", "str", f"{where}.parity", required=False, none_ok=True)
        check(d, ARTIFACT_SPEC, where)
        return rec


# Ranges of an artifact record's numbers (issue 20): a lower and an upper bound each
_N = Null()
ARTIFACT_SPEC = Map({
    "size_bytes": Int(0, 1 << 44) | _N, "export_seconds": Num(0, 1e7) | _N,
    "applied": List_(Str(max_len=2000), 0, 1000) | _N,   # what the exporter did, in words
    "sha256": Str(pattern=r"^[0-9a-f]{64}$", hint="64 hex digits") | _N,
    "parity": Map({"images": Int(0, 10 ** 8) | _N, "seconds": Num(0, 1e7) | _N, "top1": Num(0, 1) | _N,
                   "top1_agreement": Num(0, 1) | _N, "max_abs_logit_diff": Num(0, 1e30) | _N,
                   "rel_diff": Num(0, 1e30) | _N}, extra=Anything()) | _N,
}, extra=Anything())


@dataclass
class Manifest:
    """manifest.json in code: the model exported, the data used, the options and one record per artifact."""

    model: Dict[str, Any]
    created: str = ""
    data: Optional[Dict[str, Any]] = None
    options: Dict[str, Any] = field(default_factory=dict)
    artifacts: List[ArtifactRecord] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: Any) -> "Manifest":
        check_header(d, SCHEMA, SCHEMA_VERSION, "manifest")
        model = need(d, "model", "dict", "manifest", required=False, none_ok=True) or {}
        for key in ("path", "sha256", "name"):
            need(model, key, "str", "manifest.model", required=False, none_ok=True)
        arts = d.get("artifacts")
        if not isinstance(arts, list):
            raise SchemaProblem("manifest has no artifacts list")
        return cls(model=model, created=need(d, "created", "str", "manifest", required=False, none_ok=True) or "",
                   data=need(d, "data", "dict", "manifest", required=False, none_ok=True),
                   options=need(d, "options", "dict", "manifest", required=False, none_ok=True) or {},
                   artifacts=[ArtifactRecord.from_dict(a, f"artifact {i}") for i, a in enumerate(arts)])

    def to_dict(self) -> Dict[str, Any]:
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "created": self.created, "model": self.model,
                "data": self.data, "options": self.options, "artifacts": [a.to_dict() for a in self.artifacts]}


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
    """Check `manifest` and write it atomically; ManifestError (nothing written) when it is malformed."""
    path = Path(directory) / FILENAME
    try:
        Manifest.from_dict(manifest)
    except SchemaProblem as exc:
        raise ManifestError(f"{path}: refusing to write a malformed manifest: {exc}") from None
    util.atomic_write_json(path, manifest)
    return path


def _manifest_path(directory: Union[str, Path]) -> Path:
    p = Path(directory)
    return p if p.name.endswith(".json") and p.is_file() else p / FILENAME


def load(directory: Union[str, Path]) -> Dict[str, Any]:
    """Read `directory/manifest.json` (or a manifest file given directly) and check every field."""
    return load_typed(directory).to_dict()


def load_typed(directory: Union[str, Path]) -> Manifest:
    path = _manifest_path(directory)
    if not path.exists():
        raise ManifestError(f"{path}: no export manifest (run `edgebench export MODEL.keras` first)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise ManifestError(f"{path}: unreadable manifest: {exc}") from exc
    try:
        return Manifest.from_dict(data)
    except SchemaProblem as exc:
        raise ManifestError(f"{path}: {exc}") from None


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
