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


# Families whose errors still have more than one class directly under EdgebenchError, with the reason.
SEVERAL_ROOTS = {
    "bench": "BenchError is a RuntimeError and SuiteError a ValueError that the suite loader's callers catch; "
             "not merged under one bench root yet",
}


def test_each_family_has_one_error_root():
    roots = {}
    for mod, cls in _exception_classes():
        if EdgebenchError in cls.__bases__:
            roots.setdefault(mod.split(".")[1], []).append(f"{mod}.{cls.__name__}")
    several = {fam: names for fam, names in roots.items() if len(names) > 1 and fam not in SEVERAL_ROOTS}
    assert several == {}, f"families with more than one class directly under EdgebenchError: {several}"


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


# A plain builtin raise an entry point would have to catch by name; each one left has its reason here.
# (module path under src/edgebench, enclosing function, builtin): why it stays a builtin
PLAIN_BUILTINS = ("ValueError", "RuntimeError", "TypeError", "KeyError")
ALLOWED_PLAIN_RAISES = {
    ("util.py", "_json_default", "TypeError"):
        "json.dumps's `default` hook protocol: json expects a TypeError for an object it cannot serialize",
}
IN_FLIGHT: dict = {}   # files another change is rewriting at the moment (none now)


def _plain_raises(src: Path = SRC):
    """(path, function, builtin, line) for every `raise ValueError(...)`-style raise of a plain builtin in src/."""
    found = []
    for path in sorted((src / "edgebench").rglob("*.py")):
        rel = path.relative_to(src / "edgebench").as_posix()
        tree = ast.parse(path.read_text())
        for func in [tree] + [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            body = func.body if func is tree else [func]
            for node in (n for b in body for n in ast.walk(b)):
                if not isinstance(node, ast.Raise) or node.exc is None:
                    continue
                exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(exc, ast.Name) and exc.id in PLAIN_BUILTINS:
                    found.append((rel, getattr(func, "name", "<module>"), exc.id, node.lineno))
    # a raise inside a nested function is seen from each enclosing one: keep the innermost (the last seen)
    innermost = {}
    for rel, name, builtin, line in found:
        innermost[(rel, line)] = (rel, name, builtin, line)
    return sorted(innermost.values(), key=lambda r: (r[0], r[3]))


def test_no_plain_builtin_raise_outside_the_allow_list():
    raises = _plain_raises()
    stray = [f"{rel}:{line} raise {b} in {fn}()" for rel, fn, b, line in raises
             if rel not in IN_FLIGHT and (rel, fn, b) not in ALLOWED_PLAIN_RAISES]
    assert stray == [], ("raise the family's own error (deriving from EdgebenchError and the same builtin) "
                         f"instead, or add the raise to ALLOWED_PLAIN_RAISES with its reason: {stray}")
    used = {(rel, fn, b) for rel, fn, b, _ in raises}
    assert set(ALLOWED_PLAIN_RAISES) <= used, f"allow-list entries no raise needs: {set(ALLOWED_PLAIN_RAISES) - used}"
    assert all(reason.strip() for reason in ALLOWED_PLAIN_RAISES.values())


def test_the_scan_sees_a_plain_raise(tmp_path):
    """The scan itself finds `raise ValueError(...)` and `raise KeyError` (so the test above can fail)."""
    pkg = tmp_path / "edgebench"
    pkg.mkdir()
    (pkg / "m.py").write_text("def f(x):\n    if x:\n        raise ValueError('bad')\n    raise KeyError\n")
    found = [(r, f, b) for r, f, b, _ in _plain_raises(tmp_path)]
    assert found == [("m.py", "f", "ValueError"), ("m.py", "f", "KeyError")]


def test_user_errors_are_the_base_and_os_errors():
    from edgebench.errors import USER_ERRORS

    assert USER_ERRORS == (EdgebenchError, OSError)
