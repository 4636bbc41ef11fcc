"""The kit's one error base. Every family's exceptions derive from `EdgebenchError`, so an entry point (the
CLI, invoke's tasks) catches one class and prints one line, never a traceback.

An error may carry its context: the file (`path`), the device and the step it happened in. `str()` appends
whatever context the message does not already name, so a caller never has to format it again.
Families keep their builtin bases as well (`ValueError`, `LookupError`, ...) where callers rely on them.
"""
from __future__ import annotations

from typing import Any, Optional


class EdgebenchError(Exception):
    """Base of every error the kit raises on purpose."""

    def __init__(self, *args: Any, path: Optional[Any] = None, device: Optional[str] = None,
                 step: Optional[str] = None) -> None:
        super().__init__(*args)
        for name, value in (("path", path), ("device", device), ("step", step)):
            if value is not None or not hasattr(self, name):  # a subclass may have set it before super()
                setattr(self, name, value)

    def context(self) -> str:
        """'path: ..., device: ..., step: ...' for the context set (empty when none is)."""
        return self._context(lambda v: True)

    def _context(self, keep) -> str:
        parts = [(k, getattr(self, k, None)) for k in ("step", "device", "path")]
        return ", ".join(f"{k}: {v}" for k, v in parts if v not in (None, "") and keep(str(v)))

    def __str__(self) -> str:
        msg = super().__str__()
        ctx = self._context(lambda v: v not in msg)   # what the message does not already name
        if not ctx:
            return msg
        return f"{msg} ({ctx})" if msg else ctx


# What an entry point (cli/__init__.py main, cli/bench.py, tasks.py) turns into one line instead of a traceback:
# the kit's own errors and a missing or unwritable file (OSError). Input checks raise their family's error (which
# keeps its builtin base, ValueError or KeyError); tests/unit/test_errors.py fails on a plain builtin raise.
USER_ERRORS = (EdgebenchError, OSError)

__all__ = ["EdgebenchError", "USER_ERRORS"]
