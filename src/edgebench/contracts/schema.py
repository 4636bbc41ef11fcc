"""Checks shared by the two hand-off files (the export manifest and the results document).

`check_header` is the one place a schema name and version are checked; `need` checks one field's type.
Both raise `SchemaProblem` (a message without a path): the loader of each file turns it into its own error
type (ManifestError, ResultsError) with the file's path. Nothing here imports a framework.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple


class SchemaProblem(ValueError):
    """A hand-off file that does not follow its schema: says which field and what is wrong."""


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


KINDS: Dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "int": _is_int,
    "num": _is_num,
    "finite": lambda v: _is_num(v) and math.isfinite(v),
    "bool": lambda v: isinstance(v, bool),
    "dict": lambda v: isinstance(v, dict),
    "list": lambda v: isinstance(v, list),
}


def describe(v: Any) -> str:
    text = repr(v)
    return f"{type(v).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def need(obj: Mapping[str, Any], key: str, kind: str, where: str, required: bool = True,
         none_ok: bool = False, choices: Optional[Sequence[Any]] = None) -> Any:
    """obj[key], checked to be of `kind` (see KINDS); None allowed where none_ok, absence where not required."""
    if key not in obj:
        if required:
            raise SchemaProblem(f"{where}: lacks {key!r}")
        return None
    value = obj[key]
    if value is None and (none_ok or not required):
        return None
    if not KINDS[kind](value):
        raise SchemaProblem(f"{where}.{key}: expected {kind}{' or null' if none_ok else ''}, got {describe(value)}")
    if choices is not None and value not in choices:
        raise SchemaProblem(f"{where}.{key}: {value!r} is not one of {', '.join(map(str, choices))}")
    return value


def numbers(values: Any, where: str) -> None:
    """A list of numbers (raw latencies, per-pass seconds)."""
    if not isinstance(values, list) or not all(_is_num(v) for v in values):
        raise SchemaProblem(f"{where}: expected a list of numbers, got {describe(values)}")


def numeric_dict(d: Any, where: str, lists: Tuple[str, ...] = ()) -> None:
    """A dict of figures: each value a number, null, a string (a unit or a label), or (for `lists`) numbers."""
    if d is None:
        return
    if not isinstance(d, dict):
        raise SchemaProblem(f"{where}: expected an object or null, got {describe(d)}")
    for k, v in d.items():
        if k in lists and isinstance(v, list):
            numbers(v, f"{where}.{k}")
        elif not (v is None or _is_num(v) or isinstance(v, (str, bool, dict, list))):
            raise SchemaProblem(f"{where}.{k}: unexpected {describe(v)}")


def check_header(doc: Any, schema: str, version: int, what: str) -> int:
    """The schema name and version of a hand-off file: the one place both are checked.

    Returns the file's version (<= `version`: an older version is for the caller to upgrade)."""
    if not isinstance(doc, dict) or doc.get("schema") != schema:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise SchemaProblem(f"not an edgebench {what} (no \"schema\": \"{schema}\"; found {found!r})")
    found_version = doc.get("schema_version")
    if not _is_int(found_version) or found_version < 1:
        raise SchemaProblem(f"{what} schema_version {found_version!r} is not a version this kit reads ({version})")
    if found_version > version:
        raise SchemaProblem(f"{what} schema_version {found_version} is newer than this kit understands "
                            f"({version}); upgrade edgebench to read it")
    return found_version
