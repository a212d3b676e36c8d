"""Architecture (paper §5, issue 23): no function of the site's JavaScript runs over 80 lines.

A plain scan of the sources (strings, template literals, comments and regular expressions skipped; every `{` that
opens a function body matched to its `}`) measures each function as ESLint's max-lines-per-function does (first
line to last, comments and blank lines included, the file's wrapping IIFE exempt). oxlint, where installed, runs
the same rule from .oxlintrc.json (scripts/test.sh), and the two must agree."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

ASSETS = Path(__file__).resolve().parents[1] / "lotterysite" / "site" / "assets"
MOST = 80
KEYWORDS = {"if", "for", "while", "switch", "catch", "with", "function", "return", "typeof"}
REGEX_AFTER = set("(,=:[!&|?{};+-*%<>~^") | {""}


def _skip_string(src: str, i: int) -> int:
    q = src[i]
    i += 1
    while src[i] != q:
        i += 2 if src[i] == "\\" else 1
    return i + 1


def _skip_regex(src: str, i: int) -> int:
    i += 1
    in_class = False
    while in_class or src[i] != "/":
        if src[i] == "\\":
            i += 1
        elif src[i] == "[":
            in_class = True
        elif src[i] == "]":
            in_class = False
        i += 1
    return i + 1


def _name_before(code: str, open_paren: int) -> str | None:
    """The function a parameter list at `open_paren` belongs to: `function name(`, a method `name(`, else None."""
    head = code[:open_paren].rstrip()
    m = re.search(r"(?:\bfunction\s*\*?\s*([\w$]*)|([\w$]+))$", head)
    if not m:
        return None
    if m.group(2) is not None:
        return None if m.group(2) in KEYWORDS else m.group(2)
    return m.group(1) or "(anonymous)"


def functions(src: str) -> list[tuple[str, int, int]]:
    """(name, first line, last line) of every function with a block body in `src`."""
    code = []  # the source with strings, templates, comments and regexes blanked (same length, newlines kept)
    i, n = 0, len(src)
    template_depth: list[int] = []  # brace depth at each `${` inside a template literal
    depth = 0
    last = ""  # the last code character before this one, not blank: a `/` after an operator starts a regex
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.index("*/", i) + 2
        elif c in "'\"":
            j = _skip_string(src, i)
        elif c == "`" or (c == "}" and template_depth and template_depth[-1] == depth):
            if c == "}":
                template_depth.pop()
            j = i + 1
            while src[j] != "`" and not src.startswith("${", j):
                j += 2 if src[j] == "\\" else 1
            if src[j] == "`":
                j += 1
            else:
                j += 2
                template_depth.append(depth)
        elif c == "/" and (last in REGEX_AFTER or re.search(r"\breturn\s*$", src[max(0, i - 20) : i])):
            j = _skip_regex(src, i)
        else:
            depth += c == "{"
            depth -= c == "}"
            last = c if not c.isspace() else last
            code.append(c)
            i += 1
            continue
        code.append(re.sub(r"[^\n]", " ", src[i:j]))
        if src[i] in "'\"`" or (src[i] == "/" and src[i : i + 2] not in ("//", "/*")):
            last = "a"  # an operand: a `/` after it divides
        i = j
    text = "".join(code)
    out, stack = [], []
    parens: dict[int, int] = {}
    open_parens = []
    for k, ch in enumerate(text):
        if ch == "(":
            open_parens.append(k)
        elif ch == ")" and open_parens:
            parens[k] = open_parens.pop()
        elif ch == "{":
            before = text[:k].rstrip()
            start, name = None, None
            if before.endswith("=>"):
                arrow = before[:-2].rstrip()
                start = parens.get(len(arrow) - 1, len(arrow) - 1) if arrow.endswith(")") else len(arrow) - 1
                m = re.search(r"([\w$]+)\s*[:=]\s*(?:async\s*)?$", text[:start])
                name = m.group(1) if m else "(arrow)"
            elif before.endswith(")") and (len(before) - 1) in parens:
                op = parens[len(before) - 1]
                name = _name_before(text, op)
                start = op if name else None
            stack.append((name, start))
        elif ch == "}" and stack:
            name, start = stack.pop()
            if name is not None:
                out.append((name, text.count("\n", 0, start) + 1, text.count("\n", 0, k) + 1))
    return out


def too_long(path: Path) -> set[tuple[str, str]]:
    src = path.read_text()
    wrapper = re.compile(r"^\(function \(\) \{$")  # the file's IIFE (ESLint's IIFEs: false)
    lines = src.split("\n")
    return {(path.name, name) for name, a, b in functions(src)
            if b - a + 1 > MOST and not wrapper.match(lines[a - 1].strip())}  # fmt: skip


def test_the_scan_measures_functions_as_written():
    body = lambda k: "\n".join(f"  x{i} = '{{' + `${{a}}}}` + /[}}{{]/.source;" for i in range(k))  # noqa: E731
    src = (f"function short() {{\n{body(78)}\n}}\nconst arrow = (a) => {{\n{body(79)}\n}};\n"
           f"const o = {{ method(a) {{\n{body(10)}\n}} }};\n"
           f"// function fake() {{\nif (x) {{\n{body(90)}\n}}\n")  # fmt: skip
    got = {name: b - a + 1 for name, a, b in functions(src)}
    assert got == {"short": 80, "arrow": 81, "method": 12}, got


def test_no_javascript_function_is_over_80_lines():
    over = set().union(*(too_long(p) for p in sorted(ASSETS.glob("*.js"))))
    assert not over, f"functions over {MOST} lines: {sorted(over)}"


def test_oxlint_enforces_the_same_rule():
    exe = Path(sysconfig.get_path("scripts")) / "oxlint"
    exe = exe if exe.exists() else shutil.which("oxlint")
    if not exe:
        pytest.skip("oxlint is not installed (the test extra)")
    config = json.loads((ASSETS.parents[2] / ".oxlintrc.json").read_text())
    rule = config["rules"]["eslint/max-lines-per-function"]
    assert rule[0] == "error" and rule[1]["max"] == MOST  # a long function fails scripts/test.sh, not just warns
    run = subprocess.run([str(exe), "-f", "unix", str(ASSETS)], capture_output=True, text=True,
                         cwd=ASSETS.parents[2], check=False)  # fmt: skip
    flagged = {
        (Path(line.split(":")[0]).name, m.group(1))
        for line in run.stdout.splitlines()
        if (m := re.search(r"function `(\w+)` has too many lines", line))
    }
    scanned = set().union(*(too_long(p) for p in sorted(ASSETS.glob("*.js"))))
    assert flagged == scanned, (flagged, scanned)
