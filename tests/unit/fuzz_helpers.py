"""Malformed hand-off files for the loaders' fuzz tests (manifest, results): a good document with one field
at a time replaced by junk of the wrong type, or deleted, keeping only the ones the typed loader refuses."""
from __future__ import annotations

import copy
import json
import random
from typing import Any, Callable, Iterator, List, Sequence, Tuple

Path = Tuple[Any, ...]


def paths(obj: Any, prefix: Path = ()) -> Iterator[Path]:
    """Every key path in a JSON document, the root () first."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from paths(v, prefix + (i,))


def parent(doc: Any, path: Path) -> Any:
    for key in path[:-1]:
        doc = doc[key]
    return doc


def refused(from_dict: Callable[[Any], Any], doc: Any) -> bool:
    """True when the typed loader refuses `doc` (after a JSON round trip, as a file would be read)."""
    try:
        from_dict(json.loads(json.dumps(doc)))
    except Exception:
        return True
    return False


def one_field_broken(good: Any, candidates: Sequence[Path], junk: Sequence[Any], from_dict: Callable[[Any], Any],
                     n: int, seed: int, delete_share: float = 0.0, start: Sequence[str] = ()) -> List[str]:
    """`start` plus documents (JSON text) until there are `n`: each `good` with one of `candidates` set to a
    random `junk` value, or deleted (a `delete_share` of the time, where its parent is an object), and kept
    only where `from_dict` refuses it (junk can be valid somewhere, e.g. null for an optional field)."""
    rng = random.Random(seed)
    out = list(start)
    while len(out) < n:
        d = copy.deepcopy(good)
        p = rng.choice(list(candidates))
        target = parent(d, p)
        if delete_share and rng.random() < delete_share and isinstance(target, dict):
            del target[p[-1]]
        else:
            target[p[-1]] = rng.choice(list(junk))
        if refused(from_dict, d):
            out.append(json.dumps(d))
    return out


# --- property-based fuzzing (issue 20): hypothesis strategies and the per-loader count the CI log prints ---

#: loader -> {"inputs": n, "refused": n, "accepted": n}; printed by tests/unit/conftest.py's terminal summary
COUNTS: dict = {}


def record(loader: str, outcome: str) -> None:
    c = COUNTS.setdefault(loader, {"inputs": 0, "refused": 0, "accepted": 0})
    c["inputs"] += 1
    c[outcome] += 1


def numbers_in(obj: Any) -> Iterator[Any]:
    """Every number (not bool) anywhere in a loaded document: dicts, lists, dataclasses."""
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        obj = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        for v in obj.values():
            yield from numbers_in(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from numbers_in(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


def kind(v: Any) -> str:
    """A JSON value's kind, int and float alike ('number')."""
    if v is None or isinstance(v, bool):
        return repr(v) if v is None else "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__
