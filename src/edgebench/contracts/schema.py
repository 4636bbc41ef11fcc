"""Checks shared by the two hand-off files (the export manifest and the results document).

`check_header` is the one place a schema name and version are checked; `need` checks one field's type.
Both raise `SchemaProblem` (a message without a path): the loader of each file turns it into its own error
type (ManifestError, ResultsError) with the file's path. Nothing here imports a framework.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from edgebench.contracts.errors import ContractError


class SchemaProblem(ContractError, ValueError):
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


# --- declarative specs (issue 20): one spec per input file, one validator -----------------------------------
# A spec says the type, required / optional keys, a lower AND an upper bound for every number, the allowed
# values of an enum and cross-field rules. `problems(value, spec, where)` lists every mismatch with its key
# path and the allowed range; `check` raises the first of them as one SchemaProblem line. Plain Python (no
# dependency): the same code runs on the Jetson image's 3.8 and on 3.10 / 3.11 (pydantic 2 cannot install next
# to TF 2.12's typing_extensions cap; jsonschema would add attrs/pyrsistent/importlib_resources to every image
# and gives no key path in its one-line message).


class Spec:
    def walk(self, v: Any, path: str, out: list) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def __or__(self, other: "Spec") -> "Spec":
        return OneOf(self, other)


class Int(Spec):
    def __init__(self, lo: int, hi: int):
        self.lo, self.hi = lo, hi

    def walk(self, v, path, out):
        if not _is_int(v) or not self.lo <= v <= self.hi:
            out.append(f"{path}: must be an integer in [{self.lo}, {self.hi}], not {describe(v)}")


class Num(Spec):
    def __init__(self, lo: float, hi: float):
        self.lo, self.hi = lo, hi

    def walk(self, v, path, out):
        if not _is_num(v) or not math.isfinite(v) or not self.lo <= v <= self.hi:
            out.append(f"{path}: must be a number in [{self.lo:g}, {self.hi:g}], not {describe(v)}")


class Str(Spec):
    def __init__(self, choices: Optional[Sequence[str]] = None, pattern: Optional[str] = None,
                 max_len: int = 4096, hint: str = ""):
        import re

        self.choices = tuple(choices) if choices is not None else None
        self.pattern = re.compile(pattern) if pattern else None
        self.max_len, self.hint = max_len, hint

    def walk(self, v, path, out):
        if not isinstance(v, str) or len(v) > self.max_len:
            out.append(f"{path}: must be text (at most {self.max_len} characters), not {describe(v)}")
        elif self.choices is not None and v not in self.choices:
            out.append(f"{path}: {v!r} is not one of {', '.join(self.choices)}")
        elif self.pattern is not None and not self.pattern.match(v):
            out.append(f"{path}: {v!r} is not {self.hint or 'of the form ' + self.pattern.pattern}")


class Bool(Spec):
    def walk(self, v, path, out):
        if not isinstance(v, bool):
            out.append(f"{path}: must be true or false, not {describe(v)}")


class Null(Spec):
    def walk(self, v, path, out):
        if v is not None:
            out.append(f"{path}: must be null, not {describe(v)}")


class Anything(Spec):
    """An opaque value (a free-form note, another tool's output): any JSON value, checked for nothing."""

    def walk(self, v, path, out):
        return None


class Const(Spec):
    def __init__(self, value: Any):
        self.value = value

    def walk(self, v, path, out):
        if type(v) is not type(self.value) or v != self.value:
            out.append(f"{path}: must be {self.value!r}, not {describe(v)}")


class OneOf(Spec):
    def __init__(self, *specs: Spec):
        self.specs = specs

    def walk(self, v, path, out):
        first: list = []
        for s in self.specs:
            got: list = []
            s.walk(v, path, got)
            if not got:
                return
            first = first or got
        own = first[0].startswith(f"{path}: ")  # the value itself, not something inside it, is wrong
        out.append(f"{first[0]} (or {'; or '.join(_expects(s) for s in self.specs[1:])})" if own else first[0])


def _expects(s: Spec) -> str:
    got: list = []
    s.walk(_NOTHING, "", got)
    return got[0].split("must be ", 1)[-1].rsplit(", not ", 1)[0] if got else type(s).__name__


_NOTHING = object()


class List_(Spec):
    def __init__(self, item: Spec, lo: int = 0, hi: int = 10_000_000):
        self.item, self.lo, self.hi = item, lo, hi

    def walk(self, v, path, out):
        if not isinstance(v, list) or not self.lo <= len(v) <= self.hi:
            out.append(f"{path}: must be a list of {self.lo} to {self.hi} items, not {describe(v)}")
            return
        for i, x in enumerate(v):
            self.item.walk(x, f"{path}[{i}]", out)


class Map(Spec):
    """A mapping with named keys. `fields`: key -> spec; `required`: keys that must be there; `extra`: a spec
    for keys not named (None: an unknown key is refused); `rules`: cross-field checks, each a function of the
    mapping returning a problem (its path relative to this mapping) or None, run when the keys are valid."""

    def __init__(self, fields: Mapping[str, Spec], required: Sequence[str] = (), extra: Optional[Spec] = None,
                 rules: Sequence[Callable[[Mapping[str, Any]], Optional[str]]] = (), max_keys: int = 100_000):
        self.fields, self.required, self.extra, self.rules = dict(fields), tuple(required), extra, tuple(rules)
        self.max_keys = max_keys

    def walk(self, v, path, out):
        if not isinstance(v, dict) or len(v) > self.max_keys:
            out.append(f"{path}: must be a mapping, not {describe(v)}")
            return
        n = len(out)
        for k in self.required:
            if k not in v:
                out.append(f"{path}: lacks {k!r}")
        for k, x in v.items():
            spec = self.fields.get(k, self.extra) if isinstance(k, str) else None
            if spec is None:
                known = ", ".join(sorted(self.fields)) or "none"
                out.append(f"{_join(path, k)}: unknown key (known: {known})")
            else:
                spec.walk(x, _join(path, k), out)
        if len(out) == n:
            for rule in self.rules:
                msg = rule(v)
                if msg:
                    out.append(_join(path, msg) if not msg.startswith(path) else msg)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def problems(value: Any, spec: Spec, where: str = "") -> List[str]:
    """Every way `value` differs from `spec`, each 'key.path: what is wrong (allowed range)'."""
    out: List[str] = []
    spec.walk(value, where, out)
    return out


def check(value: Any, spec: Spec, where: str = "") -> Any:
    """`value`, or SchemaProblem with the first problem (and how many more) as one line."""
    found = problems(value, spec, where)
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise SchemaProblem(found[0] + more)
    return value


def load_yaml(text: str) -> Any:
    """YAML through a SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one).

    Raises yaml.YAMLError (a duplicate key is a yaml.constructor.ConstructorError with its line)."""
    import yaml

    return yaml.load(text, Loader=_unique_loader())  # noqa: S506 - a SafeLoader subclass


_LOADER: List[Any] = []


def _unique_loader() -> Any:
    if _LOADER:
        return _LOADER[0]
    import yaml
    from yaml.constructor import ConstructorError

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    raise ConstructorError("while constructing a mapping", node.start_mark,
                                           "found an unhashable key", key_node.start_mark) from None
                if key in seen:
                    raise ConstructorError("while constructing a mapping", node.start_mark,
                                           f"found key {key!r} twice (first on line {seen[key] + 1}): a key may "
                                           f"be given once", key_node.start_mark)
                seen[key] = key_node.start_mark.line
            return super().construct_mapping(node, deep=deep)

    _LOADER.append(UniqueKeyLoader)
    return UniqueKeyLoader


def yaml_problem(exc: Exception) -> str:
    """A yaml.YAMLError as one line: 'line N, column M: what' (PyYAML's own text spans several lines)."""
    mark = getattr(exc, "problem_mark", None)
    what = " ".join(str(getattr(exc, "problem", None) or exc).split())
    return f"line {mark.line + 1}, column {mark.column + 1}: {what}" if mark is not None else what
