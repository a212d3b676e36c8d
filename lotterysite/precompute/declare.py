"""The recipe format's JSON Schema and its reference page, both derived from the settings' declarations
(`lotterysite.settings`, the `setting(...)` fields of the configs) and the recipe's tables (`recipe.TABLES`).

    python -m lotterysite.precompute.declare          # rewrite both files
    python -m lotterysite.precompute.declare --check  # exit 1 when either is stale (a test runs this check)

The schema ships in the wheel (`lotterysite/precompute/recipe.schema.json`) for editors: Even Better TOML / taplo
complete and check a recipe that starts with `#:schema <path or URL of recipe.schema.json>` (README, "Recipes").
"""

from __future__ import annotations

import json
import sys
from dataclasses import MISSING
from pathlib import Path

from ..settings import Declared
from .recipe import TABLES, Table, table_settings

SCHEMA_FILE = Path(__file__).with_name("recipe.schema.json")
REFERENCE_FILE = Path(__file__).resolve().parents[2] / "docs" / "recipe-reference.md"
_JSON_TYPES = {int: "integer", float: "number", bool: "boolean", str: "string"}


def _one(d: Declared, t: type) -> dict:
    out: dict = {"type": _JSON_TYPES[t]}
    if t is str and d.choices is not None:
        out["enum"] = list(d.choices)
    if t in (int, float):  # draft 4's bounds: an open one is the bound plus a true exclusive flag
        if d.low is not None:
            out["minimum"] = d.low
            if d.low_open:
                out["exclusiveMinimum"] = True
        if d.high is not None:
            out["maximum"] = d.high
            if d.high_open:
                out["exclusiveMaximum"] = True
    return out


def setting_schema(d: Declared) -> dict:
    """The JSON Schema of one setting's TOML value."""
    if d.is_table:  # free-form keyword options: scalars only
        out: dict = {"type": "object", "additionalProperties": {"type": ["integer", "number", "string", "boolean"]}}
    else:
        alternatives = [_one(d, t) for t in d.types]
        item = alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}
        out = {"type": "array", "items": item, "uniqueItems": True} if d.is_list else item
        if d.is_list and d.default_text == '"all"':  # corruptions.names: the string "all" or a list of names
            out = {"anyOf": [{"enum": ["all"]}, out]}
    out["description"] = d.help
    if d.default is not MISSING and d.default is not None:
        out["default"] = list(d.default) if isinstance(d.default, tuple) else d.default
    return out


def _table_schema(table: Table) -> dict:
    settings = table_settings(table.where)
    properties = {d.name: setting_schema(d) for d in settings}
    for sub in TABLES:  # tables inside this one: [architectures.train]
        if sub.where.rpartition(".")[0] == table.where and sub.where and "." in sub.where:
            properties[sub.where.rpartition(".")[2]] = _table_schema(sub)
    out: dict = {"type": "object", "description": table.help, "properties": properties, "additionalProperties": False}
    required = [d.name for d in settings if d.default is MISSING and d.default_text is None]
    if required:
        out["required"] = required
    return out


def recipe_schema() -> dict:
    """The JSON Schema of a recipe, in draft 4 (the newest draft taplo, and so Even Better TOML, reads): every
    table and setting, with types, ranges, choices, defaults and help. It checks what a setting alone can say;
    what needs the registries or several settings at once (an arch's options, a label not another method's,
    ship.severities evaluated) is the parser's."""
    top = _table_schema(TABLES[0])
    required = list(top.get("required", []))
    for table in TABLES[1:]:
        if "." in table.where:
            continue
        schema = _table_schema(table)
        if table.array:
            schema = {"type": "array", "description": table.help, "items": schema, "minItems": int(table.required)}
        top["properties"][table.where] = schema
        if table.required:
            required.append(table.where)
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "title": "lotterysite recipe",
        **top,
        "description": "A lotterysite precompute recipe (TOML). Generated from the settings' declarations by "
        "python -m lotterysite.precompute.declare; the reference is docs/recipe-reference.md.",
        "required": required,
    }


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _kind(d: Declared) -> str:
    if d.is_table:
        return "table"
    names = " or ".join({int: "integer", float: "number", bool: "boolean", str: "string"}[t] for t in d.types)
    return f"list of {names}s" if d.is_list else names


def _limits(d: Declared) -> str:
    parts = []
    if d.low is not None and d.high is not None:
        parts.append(f"{'(' if d.low_open else '['}{d.low}, {d.high}{')' if d.high_open else ']'}")
    elif d.low is not None:
        parts.append(f"{'>' if d.low_open else '≥'} {d.low}")
    elif d.high is not None:
        parts.append(f"{'<' if d.high_open else '≤'} {d.high}")
    if d.choices is not None:
        parts.append(", ".join(f"`{_toml(c)}`" for c in d.choices))
    return "; ".join(parts)


def _default(d: Declared) -> str:
    if d.default_text is not None:  # a TOML value ("all") in code type, words ("the name") as they are
        return f"`{d.default_text}`" if d.default_text.startswith('"') else d.default_text
    if d.default is MISSING:
        return "**required**"
    if d.default is None:
        return "unset"
    return f"`{_toml(d.default)}`" if not d.is_table else "`{}`"


def _heading(table: Table) -> str:
    if not table.where:
        return "Top level"
    return f"`[[{table.where}]]`" if table.array else f"`[{table.where}]`"


def recipe_reference() -> str:
    """docs/recipe-reference.md: every table and setting, with its type, default, range or choices and help."""
    lines = [
        "# Recipe reference",
        "",
        "<!-- Generated by `python -m lotterysite.precompute.declare` from the settings' declarations "
        "(lotterysite/settings.py); do not edit by hand. -->",
        "",
        "Every setting a recipe can hold, table by table, generated from its one declaration (the `setting(...)` "
        "field of the config it parses into), as are the recipe parser's checks and the JSON Schema "
        "`lotterysite/precompute/recipe.schema.json` (shipped in the wheel; start a recipe with "
        "`#:schema <its path>` and Even Better TOML / taplo complete and check it). Ranges are inclusive `[a, b]`, "
        "exclusive `(a, b)`; a list's range holds for each item, and a list names each value once. Paths are "
        "relative to the recipe's folder. `precompute/cifar10-paper.toml` sets most of them, each with the section "
        "of the paper it follows.",
        "",
    ]
    for table in TABLES:
        lines += [f"## {_heading(table)}", "", table.help[0].upper() + table.help[1:] + ".", ""]
        subs = [t for t in TABLES if "." in t.where and t.where.rpartition(".")[0] == table.where and table.where]
        lines += ["| setting | type | default | range / choices | meaning |", "| --- | --- | --- | --- | --- |"]
        for d in table_settings(table.where):
            help_text = d.help.replace("|", "\\|").replace("<", "&lt;")
            lines.append(f"| `{d.name}` | {_kind(d)} | {_default(d)} | {_limits(d)} | {help_text} |")
        for sub in subs:
            name = sub.where.rpartition(".")[2]
            lines.append(f"| `{name}` | table | | | see `[{sub.where}]` below |")
        lines.append("")
    return "\n".join(lines)


def schema_text() -> str:
    return json.dumps(recipe_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    outputs = {SCHEMA_FILE: schema_text(), REFERENCE_FILE: recipe_reference()}
    if "--check" in argv:
        stale = [str(p) for p, text in outputs.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
        if stale:
            print(f"stale: {', '.join(stale)}; run python -m lotterysite.precompute.declare", file=sys.stderr)
            return 1
        return 0
    for p, text in outputs.items():
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
