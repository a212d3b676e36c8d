"""The docs are tested: every command, model, data set, metric and recipe field is documented in the README."""

import dataclasses
import re
from pathlib import Path

import pytest

from lotterysite.cli import main
from lotterysite.data import list_datasets
from lotterysite.geometry import METRICS
from lotterysite.models import list_models
from lotterysite.precompute import recipe as recipe_module
from lotterysite.pruning import list_methods

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    first = README.split("```bash", 1)[1].split("```", 1)[0].strip().splitlines()
    assert first[0].startswith("bash scripts/demo.sh") and first[1].startswith("bash scripts/test.sh")
    assert README.index("```bash") < 40  # the very first lines


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in ci


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_is_documented(command):
    assert f"`lotterysite {command}" in README


@pytest.mark.parametrize("name", list_models())
def test_every_model_is_documented(name):
    assert f"| `{name}` |" in README


@pytest.mark.parametrize("name", list_datasets())
def test_every_data_set_is_documented(name):
    assert f"`{name}`" in README


@pytest.mark.parametrize("name", METRICS)
def test_every_metric_is_documented(name):
    assert re.search(rf"`{name}`", README)


@pytest.mark.parametrize("name", list_methods())
def test_every_pruning_method_is_documented(name):
    assert name in README.split("## Recipes", 1)[1]


def recipe_fields():
    from lotterysite.config import DataConfig, TrainConfig
    from lotterysite.pruning import PruneConfig

    names = set()
    for cls in (recipe_module.CorruptionConfig, recipe_module.ShipConfig, recipe_module.CurseConfig, DataConfig,
                TrainConfig):  # fmt: skip
        names |= {f.name for f in dataclasses.fields(cls)}
    names |= {f.name for f in dataclasses.fields(PruneConfig)} - {"amount", "progress"}
    names |= {"amounts", "eval_subset", "checkpoint", "options", "seeds", "title", "batch_size"}
    return sorted(names - {"seed", "name"})


@pytest.mark.parametrize("field", recipe_fields())
def test_every_recipe_field_is_documented(field):
    """In the generated reference the README points to (tests/test_recipe_schema.py checks each is in its table)."""
    reference = (ROOT / "docs" / "recipe-reference.md").read_text()
    assert "docs/recipe-reference.md" in README.split("## Recipes", 1)[1].split("## The store", 1)[0]
    assert re.search(rf"^\| `{field}` \|", reference, flags=re.M), field


def test_publish_walkthrough_recipe_parses():
    """site_src/publish.md's step 4 is the recipe a newcomer copies: it must parse as written (files and folders
    are checked when it runs), with its commented `classes` line working when uncommented."""
    from lotterysite.precompute import parse_recipe

    md = (ROOT / "site_src" / "publish.md").read_text()
    block = md.split("4. **The recipe**", 1)[1].split("`precompute/imagenet-resnet.toml`", 1)[0]
    text = "\n".join(line[8:] for line in block.splitlines()[1:] if line.startswith("        ") or not line.strip())
    recipe = parse_recipe(text, "my-study.toml")
    assert recipe.data.name == "imagefolder" and recipe.data.image_size == 224 and recipe.data.classes is None
    assert [a.model.arch for a in recipe.architectures] == ["tv:resnet18"] and recipe.architectures[0].weights
    assert [m.label for m in recipe.models] == ["their-method"]
    uncommented = parse_recipe(text.replace('# classes = "classes.txt"', 'classes = "classes.txt"'), "my-study.toml")
    assert uncommented.data.classes.endswith("classes.txt")


@pytest.mark.parametrize("path", sorted((ROOT / "precompute").glob("*.toml")), ids=lambda p: p.name)
def test_every_example_recipe_parses(path):
    """The shipped recipes are what users copy: each parses as it stands (its data and weights are checked when it
    runs, on the machine that has them)."""
    from lotterysite.precompute import load_recipe

    recipe = load_recipe(path)
    assert recipe.architectures and recipe.name == path.stem
    if recipe.data.name == "imagefolder":  # published ImageNet weights: their evaluation transform and normalisation
        assert (recipe.data.resize, recipe.data.image_size) == (256, 224)
        assert all(a.model.options.get("input_norm") == "imagenet" for a in recipe.architectures if a.weights)


def test_every_site_option_is_documented_for_the_plugin_and_the_command():
    """Each SiteOptions field is a `lotterysite render` flag and a plugin option, and publish.md names it both ways."""
    from click.testing import CliRunner

    from lotterysite.cli import main
    from lotterysite.site import plugin
    from lotterysite.site.render import SiteOptions

    md = (ROOT / "site_src" / "publish.md").read_text()
    plugin_block = md.split("## The MkDocs plugin", 1)[1].split("Builders that run", 1)[0]
    help_text = CliRunner().invoke(main, ["render", "--help"]).output
    for f in dataclasses.fields(SiteOptions):
        flag = "--" + f.name.replace("_", "-")
        assert flag in help_text and f"`{flag}`" in md, flag
        assert hasattr(plugin.LotterysiteConfig, f.name), f.name
        assert re.search(rf"^\s+{f.name}: ", plugin_block, flags=re.M), f.name
