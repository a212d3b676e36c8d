"""Issue 23 §5: no function over 80 lines, Python or JS. The JS is held to it by oxlint (scripts/test.sh,
.oxlintrc.json's max-lines-per-function); this holds the package's Python to the same rule."""

from __future__ import annotations

import ast
from pathlib import Path

import lotterysite

MOST = 80
PACKAGE = Path(lotterysite.__file__).parent


def long_functions(source: str, name: str = "<src>") -> list[str]:
    """`name:line function (n lines)` for every function or method of `source` longer than MOST lines, counted as
    oxlint counts them (from its `def` line to its last line, decorators left out; blank lines and comments in)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > MOST:
                out.append(f"{name}:{node.lineno} {node.name} ({n} lines)")
    return out


def test_no_function_of_the_package_is_over_80_lines():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20
    found = [hit for f in files for hit in long_functions(f.read_text(), str(f.relative_to(PACKAGE)))]
    assert found == [], found


def test_the_rule_finds_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(MOST))
    assert long_functions(f"def f():\n{body}\n") == ["<src>:1 f (81 lines)"]
    method = "\n".join("    " + line for line in f"def g(self):\n{body}".splitlines())
    assert long_functions(f"class A:\n{method}\n") == ["<src>:2 g (81 lines)"]
    short = "\n".join(f"    x{i} = {i}" for i in range(MOST - 1))
    assert long_functions(f"def f():\n{short}\n") == []
