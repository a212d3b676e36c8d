"""One declaration per setting: a config dataclass field says its type (the annotation), default, range, choices and
help once, and everything else is derived from it: the recipe's parsing and one-line errors
(`precompute.recipe`), the Python API's checks (`validate`, from the configs' `__post_init__`), the JSON Schema of
the recipe format and the generated recipe reference (`precompute.declare`).

Why dataclass-field metadata and not pydantic, msgspec or cattrs: the rest of lotterysite consumes frozen
dataclasses (saved with `asdict` in every checkpoint and store), so a validation library would add a second model
of every config beside them, and its errors (several lines, its own wording) would have to be rewritten into the
recipe's one-line "FILE: field 'pruning[1].amounts[2]' ..." anyway; the checks it cannot express (an architecture
or method registry, subsets against the data) stay hand code either way. What is left for a library is reading
five kinds of value against a range or a list of choices, which the few functions below do.

Adding a setting is one declaration: a field on the config with `setting(...)`, e.g. in `PruneConfig`

    granularity: str = setting("weight", "what one pruning decision removes", choices=("weight", "channel"))

The recipe then reads and checks it, errors name it, the schema and the reference list it (regenerate them with
`python -m lotterysite.precompute.declare`; a test says when they are stale).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import MISSING, dataclass
from typing import Any

_SCALARS = {"int": int, "float": float, "bool": bool, "str": str}


def setting(
    default: Any = MISSING,
    help: str = "",
    *,
    factory: Any = MISSING,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    choices: tuple | None = None,
    out_of_range: str | None = None,
    recipe: bool = True,
    required: bool = False,
    default_text: str | None = None,
    table: str | None = None,
) -> Any:
    """A dataclass field carrying its declaration.

    `low` / `high`: the range of a number (of each item of a list), closed unless `low_open` / `high_open`;
    `choices`: the strings it may be (for `int | str`, the strings besides a number); `out_of_range`: the recipe's
    message for a number outside the range ("{value}" filled in), instead of "must be >= low, got value";
    `recipe`: False for a field the recipe does not set (it is set by the code); `required`: the recipe must give
    it even though the dataclass has a default; `default_text`: how the reference shows a default that is not a
    plain value ("the name"; with no `default`, the setting may be left out and the code fills it); `table`: the
    recipe table that holds it when that is not its class's own (Recipe.eval_subset sits in [data]).
    """
    meta = {"help": help, "low": low, "high": high, "low_open": low_open, "high_open": high_open, "choices": choices,
            "out_of_range": out_of_range, "recipe": recipe, "required": required, "default_text": default_text,
            "table": table}  # fmt: skip
    if factory is not MISSING:
        return dataclasses.field(default_factory=factory, metadata={"setting": meta})
    return dataclasses.field(default=default, metadata={"setting": meta})


@dataclass(frozen=True)
class Declared:
    """One declared setting: its name, what a TOML value must be, its default and its declaration."""

    name: str
    types: tuple[type, ...]  # accepted value types (of each item, for a list); () for a free-form table
    is_list: bool  # a TOML array of `types`
    optional: bool  # None allowed (absent from the recipe)
    default: Any  # MISSING when the recipe must give it
    help: str
    low: float | None
    high: float | None
    low_open: bool
    high_open: bool
    choices: tuple | None
    out_of_range: str | None
    default_text: str | None
    table: str | None

    @property
    def is_table(self) -> bool:
        return not self.types


def _types(annotation: str) -> tuple[tuple[type, ...], bool, bool]:
    """(types, is_list, optional) of an annotation such as "int | None", "tuple[int, ...]", "dict[str, Any]"."""
    parts = [p.strip() for p in annotation.split("|")]
    optional = "None" in parts
    parts = [p for p in parts if p != "None"]
    if len(parts) == 1 and parts[0].startswith("tuple["):
        return (_SCALARS[parts[0][len("tuple[") :].split(",")[0].strip()],), True, optional
    if parts and all(p in _SCALARS for p in parts):
        return tuple(_SCALARS[p] for p in parts), False, optional
    if len(parts) == 1 and parts[0].startswith("dict["):
        return (), False, optional
    raise TypeError(f"setting annotation {annotation!r} is not one a recipe can hold; declare it as int, float, "
                    "bool, str, tuple[T, ...] or dict, optionally | None")  # fmt: skip


def declared(cls, *, recipe: bool = True, table: str | None = None) -> list[Declared]:
    """The settings `cls` declares with `setting(...)`, in field order: only the recipe's (unless recipe=False),
    and of those only the ones its own table holds, or with `table`, the ones declared to sit in that table."""
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata.get("setting")
        if meta is None or (recipe and (not meta["recipe"] or meta["table"] != table)):
            continue
        types, is_list, optional = _types(str(f.type))
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = MISSING
        if meta["required"]:
            default = MISSING
        out.append(Declared(f.name, types, is_list, optional, default, meta["help"], meta["low"], meta["high"],
                            meta["low_open"], meta["high_open"], meta["choices"], meta["out_of_range"],
                            meta["default_text"], meta["table"]))  # fmt: skip
    return out


def type_name(d: Declared) -> str:
    return " or ".join(t.__name__ for t in d.types)


def value_error(d: Declared, value: Any) -> str | None:
    """Why one value (one item of a list setting) breaks the declaration, as the end of "field 'x' ...", or None.
    The value's type is already right."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    if isinstance(value, str) and d.choices is not None and value not in d.choices:
        return f"is {value!r}, not one of {', '.join(map(repr, d.choices))}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        too_low = d.low is not None and (value <= d.low if d.low_open else value < d.low)
        too_high = d.high is not None and (value >= d.high if d.high_open else value > d.high)
        if (too_low or too_high) and d.out_of_range:
            return d.out_of_range.format(value=value)
        if too_low:
            return f"must be {'>' if d.low_open else '>='} {d.low}, got {value}"
        if too_high:
            return f"must be {'<' if d.high_open else '<='} {d.high}, got {value}"
    return None


def validate(config) -> None:
    """The Python API's check of a config against its declarations (called from `__post_init__`): a ValueError
    naming the first setting whose value is out of its range or choices. Types are the caller's business."""
    for d in declared(type(config), recipe=False):
        value = getattr(config, d.name)
        for v in value if d.is_list and isinstance(value, tuple) else (value,):
            if v is None or isinstance(v, bool) or not isinstance(v, (int, float, str)):
                continue
            if isinstance(v, str) and d.choices is not None and v not in d.choices:
                raise ValueError(f"{d.name} {v!r} is not one of {', '.join(map(repr, d.choices))}")
            problem = None if isinstance(v, str) else value_error(dataclasses.replace(d, out_of_range=None), v)
            if problem is not None:
                raise ValueError(f"{d.name} is {v!r}; it {problem.rsplit(', got', 1)[0]}")
