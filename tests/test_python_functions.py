"""Architecture (issue 23 §5, issue 24 §5): no function of the package's Python runs over 80 lines.

Measured as tests/test_js_functions.py measures the site's JavaScript: first line (the `def`, decorators aside)
to last, docstring, comments and blank lines included. A nested function counts on its own and inside its parent."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lotterysite"
MOST = 80


def too_long(path: Path, root: Path = PACKAGE.parent) -> set[tuple[str, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    name = path.relative_to(root).as_posix()
    return {(name, node.name) for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MOST}  # fmt: skip


def test_the_measure_counts_def_to_last_line(tmp_path):
    body = "\n".join(f"    x{i} = {i}  # a comment" for i in range(MOST - 1))
    (tmp_path / "m.py").write_text(f"def fits():\n{body}\n\n\ndef over():\n{body}\n\n    return 1\n")
    assert too_long(tmp_path / "m.py", tmp_path) == {("m.py", "over")}


def test_no_python_function_is_over_80_lines():
    over = set().union(*(too_long(p) for p in sorted(PACKAGE.rglob("*.py"))))
    assert not over, f"functions over {MOST} lines: {sorted(over)}"
