"""One kit-wide error base: every exception class defined in src/edgebench derives from EdgebenchError."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from edgebench.errors import EdgebenchError

SRC = Path(__file__).resolve().parents[2] / "src"
# A BaseException that is not an Exception on purpose: `except Exception` must not swallow Ctrl-C.
NOT_EXCEPTIONS = {"edgebench.bench.errors.BenchInterrupted"}


def _exception_classes():
    """(module, class) for every class in src/ that is an exception (imported, so subclassing is real)."""
    found = []
    for path in sorted((SRC / "edgebench").rglob("*.py")):
        mod = ".".join(path.relative_to(SRC).with_suffix("").parts).replace(".__init__", "")
        tree = ast.parse(path.read_text())
        names = [n.name for n in tree.body if isinstance(n, ast.ClassDef) and n.bases]
        if not names:
            continue
        try:
            module = importlib.import_module(mod)
        except ImportError:   # a framework this venv lacks (torch): then no class there may look like an error
            looks = [n.name for n in tree.body if isinstance(n, ast.ClassDef)
                     and any(getattr(b, "id", getattr(b, "attr", "")).endswith(("Error", "Exception", "Interrupt"))
                            for b in n.bases)]
            assert looks == [], f"{mod} cannot be imported here to check {looks}"
            continue
        found += [(mod, getattr(module, n)) for n in names
                  if isinstance(getattr(module, n), type) and issubclass(getattr(module, n), BaseException)]
    return found


def test_every_exception_class_in_src_derives_from_edgebench_error():
    classes = _exception_classes()
    assert len(classes) > 30, "the scan found too few exception classes"
    stray = [f"{m}.{c.__name__}" for m, c in classes
             if not issubclass(c, EdgebenchError) and f"{m}.{c.__name__}" not in NOT_EXCEPTIONS]
    assert stray == [], f"not under edgebench.errors.EdgebenchError: {stray}"


def test_interrupt_stays_a_keyboard_interrupt():
    from edgebench.bench.errors import BenchInterrupted

    assert issubclass(BenchInterrupted, KeyboardInterrupt) and not issubclass(BenchInterrupted, Exception)


def test_family_errors_keep_their_builtin_bases():
    from edgebench.deploy.errors import InventoryError
    from edgebench.export.manifest import ManifestError
    from edgebench.results import ResultsError

    assert issubclass(ResultsError, ValueError) and issubclass(ManifestError, LookupError)
    assert issubclass(InventoryError, ValueError) and issubclass(InventoryError, RuntimeError)


def test_context_is_printed_once():
    assert str(EdgebenchError("no such image", device="orin-01", step="pull")) == \
        "no such image (step: pull, device: orin-01)"
    from edgebench.results import ResultsError

    exc = ResultsError("/r/x.json", "not JSON")
    assert exc.path == "/r/x.json" and str(exc) == "/r/x.json: not JSON", "a path the message names is not repeated"
    with pytest.raises(EdgebenchError):
        raise ResultsError("/r/x.json", "bad")
