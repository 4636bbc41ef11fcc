"""The layering docs/architecture.md states is the layering the code has: every import of src/edgebench
(module-level and lazy ones inside functions, found with ast) goes to its own family or a lower floor.
The floors are parsed from the doc's table, so the doc and the code cannot drift apart."""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "edgebench"
DOC = ROOT / "docs" / "architecture.md"
ROOT_PACKAGE = "edgebench"   # `from edgebench import __version__`: the package's own __init__


def floors_from_doc() -> Dict[str, int]:
    """{family: floor} from the table between the layering markers of docs/architecture.md."""
    text = DOC.read_text()
    m = re.search(r"<!-- layering table -->(.*?)<!-- end layering table -->", text, re.S)
    assert m, f"{DOC} has no layering table between <!-- layering table --> markers"
    floors: Dict[str, int] = {}
    for floor, cell in re.findall(r"^\|\s*(\d+)\s*\|\s*([^|]+?)\s*\|", m.group(1), re.M):
        for fam in re.findall(r"`([\w.]+)`", cell):
            assert fam not in floors, f"{fam} is on two floors of the doc's table"
            floors[fam] = int(floor)
    assert floors, "the layering table lists no family"
    return floors


def family(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ROOT_PACKAGE


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> List[Tuple[str, int]]:
    """(imported edgebench module, line) for every import in the file, wherever it sits."""
    mod = module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([node.module] if node.module else []))
            if base == ROOT_PACKAGE:   # from edgebench import util, __version__
                out += [(f"{ROOT_PACKAGE}.{a.name}" if (SRC / a.name).exists() or (SRC / f"{a.name}.py").exists()
                         else ROOT_PACKAGE, node.lineno) for a in node.names]
            else:
                out.append((base, node.lineno))
    return [(m, line) for m, line in out if m == ROOT_PACKAGE or m.startswith(ROOT_PACKAGE + ".")]


def families_in_src() -> List[str]:
    names = {p.stem for p in SRC.glob("*.py") if p.stem != "__init__"}
    names |= {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    return sorted(names | {ROOT_PACKAGE})


def test_every_family_is_on_a_floor_of_the_doc():
    floors = floors_from_doc()
    missing = [f for f in families_in_src() if f not in floors]
    stale = [f for f in floors if f not in families_in_src()]
    assert missing == [] and stale == [], f"not in the doc's table: {missing}; in the table, not in src: {stale}"


def test_no_import_runs_against_the_layering():
    floors = floors_from_doc()
    against = []
    for path in sorted(SRC.rglob("*.py")):
        here = family(module_name(path))
        for target, line in imports(path):
            there = family(target)
            if there != here and floors.get(there, 0) <= floors.get(here, 0):
                against.append(f"{path.relative_to(SRC)}:{line}: {here} (floor {floors.get(here)}) imports "
                               f"{target} (floor {floors.get(there)})")
    assert against == [], "imports against docs/architecture.md's layering:\n" + "\n".join(against)


def test_the_scan_sees_lazy_imports():
    """The graph includes imports inside functions (the kind issue 9's check missed)."""
    found = {m for m, _ in imports(SRC / "cli" / "bench.py")}
    assert "edgebench.launchers.local" in found
