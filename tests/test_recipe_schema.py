"""Issue 24, item 5: one declaration per recipe setting, and what is derived from it: the JSON Schema shipped in the
wheel (checked with the `jsonschema` package, an independent validator) and the generated recipe reference."""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest

from lotterysite.precompute import declare
from lotterysite.precompute import recipe as recipe_module

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads(declare.SCHEMA_FILE.read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft4Validator(SCHEMA)


def test_schema_and_reference_are_current():
    """Both files are what the declarations generate now: `python -m lotterysite.precompute.declare` rewrites
    them after a setting is added or changed."""
    assert declare.main(["--check"]) == 0
    jsonschema.Draft4Validator.check_schema(SCHEMA)


def test_schema_ships_in_the_wheel_and_the_readme_names_it():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["lotterysite.precompute"]
    assert "recipe.schema.json" in data
    readme = (ROOT / "README.md").read_text()
    assert "recipe.schema.json" in readme and "#:schema" in readme and "docs/recipe-reference.md" in readme


def _recipes() -> dict[str, str]:
    import conftest
    import test_precompute
    import test_precompute_safety

    out = {p.name: p.read_text() for p in sorted((ROOT / "precompute").glob("*.toml"))}
    out |= {"TINY_RECIPE": conftest.TINY_RECIPE, "SITE_RECIPE": conftest.SITE_RECIPE,
            "test_precompute_safety.SMALL": test_precompute_safety.SMALL,
            "test_precompute.LABELLED": test_precompute.LABELLED}  # fmt: skip
    return out


@pytest.mark.parametrize("name", sorted(_recipes()))
def test_every_recipe_validates_against_the_schema(name):
    text = _recipes()[name]
    recipe_module.parse_recipe(text, name)  # the parser takes it too
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(tomllib.loads(text))]
    assert not errors, errors


# What the schema cannot say, by design: names in registries (architectures, methods, a factory's options), one
# setting against another (ship.severities evaluated, eval_subset within test_subset), and non-finite floats (JSON
# Schema compares NaN with nothing). The parser checks these; every other broken recipe the tests use, the schema
# rejects.
PARSER_ONLY = (
    "not a known architecture", "not a pruning method", "which is not evaluated", "is not an option of",
    "not a registered architecture", "no feature_dim option", "must be a finite number", "more than test_subset",
)  # fmt: skip


def _broken() -> list[tuple[str, str]]:
    import conftest
    import test_precompute
    import test_precompute_safety

    cases = [(edit(conftest.TINY_RECIPE), message) for edit, message in test_precompute.BROKEN]
    cases += [(test_precompute_safety.SMALL.replace(*edit), message) for edit, message in test_precompute_safety.HOLES]
    return cases


@pytest.mark.parametrize("case", range(len(_broken())))
def test_schema_rejects_the_broken_recipes(case):
    text, message = _broken()[case]
    with pytest.raises(recipe_module.RecipeError, match=message):
        recipe_module.parse_recipe(text, "tiny.toml")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return  # not TOML at all: the editor's TOML parser says so before any schema
    errors = list(VALIDATOR.iter_errors(doc))
    if any(p in message for p in PARSER_ONLY):
        assert not errors, f"the schema now checks {message!r} too: move it out of PARSER_ONLY"
    else:
        assert errors, f"the schema accepts a recipe the parser refuses with {message!r}"


def test_schema_requires_the_required_tables_and_knows_every_setting():
    minimal = {"name": "x", "data": {"name": "cifar10"}, "architectures": [{"arch": "vgg16"}]}
    assert VALIDATOR.is_valid(minimal)
    for key in ("name", "data", "architectures"):
        assert not VALIDATOR.is_valid({k: v for k, v in minimal.items() if k != key}), key
    assert not VALIDATOR.is_valid({**minimal, "architectures": [{"options": {}}]})  # arch is required
    assert VALIDATOR.is_valid({**minimal, "pruning": [{"method": "taylor", "amounts": [0.5], "taylor_batches": "all"}]})
    assert not VALIDATOR.is_valid({**minimal, "pruning": [{"method": "taylor", "amounts": [0.5],
                                                           "taylor_batches": "some"}]})  # fmt: skip
    pruning = SCHEMA["properties"]["pruning"]["items"]["properties"]
    train = SCHEMA["properties"]["architectures"]["items"]["properties"]["train"]["properties"]
    assert pruning["retrain_schedule"]["enum"] == ["cosine", "step", "constant"]
    assert train["crop_padding"] == {"type": "integer", "minimum": 0, "default": 2,
                                     "description": train["crop_padding"]["description"]}  # fmt: skip
    assert SCHEMA["properties"]["corruptions"]["properties"]["severities"]["default"] == [1, 2, 3, 4, 5]


def _recipe_fields() -> dict[str, set[str]]:
    """Every field a recipe table holds, from the dataclasses themselves (not the declarations): the reference must
    list them all under their table."""
    from lotterysite.config import DataConfig, ModelConfig, TrainConfig
    from lotterysite.pruning import PruneConfig

    def names(cls, drop=()):
        return {f.name for f in dataclasses.fields(cls)} - set(drop)

    r = recipe_module
    return {
        "Top level": {"name", "title", "seeds", "batch_size"},
        "`[data]`": names(DataConfig) | {"eval_subset"},
        "`[[architectures]]`": names(ModelConfig) | names(r.ArchConfig, ("model",)),
        "`[architectures.train]`": names(TrainConfig),
        "`[[models]]`": names(r.ExternalModel),
        "`[[pruning]]`": names(r.PruneSweep, ("options",))
        | names(PruneConfig, ("method", "amount", "seed", "progress")),  # fmt: skip
        "`[corruptions]`": names(r.CorruptionConfig),
        "`[ship]`": names(r.ShipConfig),
        "`[curse]`": names(r.CurseConfig),
    }


def test_reference_lists_every_setting_under_its_table():
    text = declare.REFERENCE_FILE.read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## ([^\n]+)\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S))
    fields = _recipe_fields()
    assert list(sections) == list(fields)
    for heading, expected in fields.items():
        listed = set(re.findall(r"^\| `([a-z_]+)` \|", sections[heading], flags=re.M))
        assert listed == expected, heading
