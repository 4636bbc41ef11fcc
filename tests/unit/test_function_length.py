"""No function in src/ is over 80 lines (new code aims for 60): a long function mixes jobs that belong in
named steps."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "edgebench"
LIMIT = 80


def long_functions(limit: int):
    out = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    out.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name}: {lines} lines")
    return out


def test_no_function_in_src_is_over_80_lines():
    assert long_functions(LIMIT) == [], f"functions over {LIMIT} lines (split them into named steps)"


def test_the_count_sees_nested_functions_and_methods():
    found = {line.split()[1] for line in long_functions(0)}
    assert {"run_bench:", "launch_impl:", "finish:"} <= found
