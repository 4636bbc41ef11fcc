"""The `edgebench:` section of invoke.yaml: its schema, checked when a task first reads an option (issue 20).

Every key is a path or a name (text) or null; an unknown key is refused with the known ones listed, so a typo
(`artefacts:`) is an error instead of a default silently used.
"""
from __future__ import annotations

from typing import Any, Dict

from edgebench.contracts.errors import ContractError
from edgebench.contracts.schema import Map, Null, SchemaProblem, Str, problems

PATH_KEYS = ("run", "model", "artifacts", "results", "reports", "data", "target", "device", "suite", "inventory")
SPEC = Map({k: Str(max_len=4096, pattern=r"^(?!\s*$)", hint="a non-blank path or name") | Null() for k in PATH_KEYS})


class ConfigError(ContractError, ValueError):
    """A bad `edgebench:` section: names invoke.yaml, the key and what it allows."""


def section(cfg: Any, source: str = "invoke.yaml") -> Dict[str, Any]:
    """The section as a plain dict (None -> {}); ConfigError on the first problem, as one line."""
    if cfg is None:
        return {}
    try:
        cfg = dict(cfg) if hasattr(cfg, "keys") and not isinstance(cfg, dict) else cfg
    except (TypeError, ValueError):  # pragma: no cover - an invoke DataProxy always converts
        pass
    found = problems(cfg, SPEC, "edgebench")
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ConfigError(f"{source}: {found[0]}{more}")
    return cfg


__all__ = ["ConfigError", "PATH_KEYS", "SPEC", "SchemaProblem", "section"]
