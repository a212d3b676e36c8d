"""Per-sample data for every severity 1-5, or the site says, per missing severity, which recipe setting adds it
(issue 23 §2). The default ships every evaluated severity: a page fetches one slice per model it draws, so more
shipped severities add files to the site, never bytes to a page."""

from __future__ import annotations

import html as html_lib
import json
import re
from types import SimpleNamespace

import pytest

from lotterysite.precompute.recipe import ShipConfig, parse_recipe
from lotterysite.site.data import severity_coverage
from lotterysite.site.pages import severity_note

RECIPE = """
name = "t"
[data]
name = "fashion_mnist"
eval_subset = 100
[[architectures]]
arch = "lenet5"
[corruptions]
names = ["fog", "contrast"]
{sev}
{ship}
"""


def _recipe(sev: str = "", ship: str = ""):
    return parse_recipe(RECIPE.format(sev=sev, ship=ship), "t.toml")


def test_ship_severities_default_to_every_evaluated_severity():
    assert _recipe().ship.severities == (1, 2, 3, 4, 5) == ShipConfig.severities
    assert _recipe("severities = [4, 2]").ship.severities == (2, 4)
    # A recipe that lists fewer keeps its choice.
    assert _recipe("severities = [1, 3]", "[ship]\nseverities = [3]").ship.severities == (3,)
    # The default row limit holds the default sample (50 per class, 10 classes) at 19 corruptions x 5 severities.
    assert ShipConfig.max_rows_per_model >= 50 * 10 * (1 + 19 * 5)


def _store(severities, shipped, corruptions=("fog",)):
    return SimpleNamespace(manifest={"corruptions": list(corruptions), "severities": severities,
                                     "shipped_severities": shipped})  # fmt: skip


@pytest.mark.parametrize(
    "evaluated, shipped, want",
    [
        ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], ((1, 2, 3, 4, 5), (), ())),
        ([1, 3], [1, 3], ((1, 3), (), (2, 4, 5))),
        ([1, 3, 5], [3], ((3,), (1, 5), (2, 4))),
        ([2], [], ((), (2,), (1, 3, 4, 5))),
    ],
)
def test_coverage_splits_severities_1_to_5_into_shipped_unshipped_and_unevaluated(evaluated, shipped, want):
    cov = severity_coverage(_store(evaluated, shipped).manifest)
    assert (cov.shipped, cov.not_shipped, cov.not_evaluated) == want
    # Every severity 1-5 is in exactly one group: none dropped silently.
    assert sorted(cov.shipped + cov.not_shipped + cov.not_evaluated) == [1, 2, 3, 4, 5]
    assert cov.complete == (want[0] == (1, 2, 3, 4, 5))


def test_note_names_the_setting_for_each_missing_severity():
    assert severity_note(severity_coverage(_store([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]).manifest)) == (
        "Per-sample rows: every corruption at every severity, 1 to 5."
    )
    note = severity_note(severity_coverage(_store([1, 3, 5], [3]).manifest))
    assert note.startswith("Per-sample rows: every corruption at severity 3. ")
    assert "Severities 1 and 5 were evaluated (the evaluation table counts them) but not shipped" in note
    assert "list them in the recipe's `ship.severities`" in note
    assert "Severities 2 and 4 were not evaluated: to add them, list them in the recipe's `corruptions.severities`" in (
        note
    )
    one = severity_note(severity_coverage(_store([1, 2, 3, 4], [1, 2, 3, 4]).manifest))
    assert "Severity 5 was not evaluated: to add it, list it in the recipe's `corruptions.severities`" in one
    assert "ship.severities`, if the recipe sets it" in one and "not shipped" not in one
    assert severity_note(severity_coverage(_store([1, 2], [], corruptions=()).manifest)) == ""
    assert severity_coverage({"corruptions": []}) is None


def _visible(page: str) -> str:
    """The page's text as a reader sees it: the hidden view configuration and the markup left out."""
    page = re.sub(r'<div class="ls-config" hidden>.*?</div>', "", page)
    return html_lib.unescape(re.sub(r"<[^>]+>", "", page))


def _config(page: str) -> dict:
    return json.loads(re.search(r'class="ls-config" hidden>(.*?)</div>', page).group(1))


def test_fixture_site_ships_every_evaluated_severity_and_names_the_setting_for_the_rest(site):
    manifest = json.loads((site.parent / "store" / "manifest.json").read_text())
    # The site fixture's recipe leaves ship.severities to its default: every evaluated severity ships.
    assert manifest["shipped_severities"] == manifest["severities"] == [1, 3]
    for kind in ("local", "global", "samples"):
        page = (site / f"views/lenet5/{kind}/index.html").read_text()
        cfg = _config(page)
        # A slice per corruption x shipped severity, plus clean.
        keys = {(s["variant"], s["severity"]) for s in cfg["slices"]}
        assert keys == {("clean", 0)} | {(c, s) for c in manifest["corruptions"] for s in (1, 3)}
        assert cfg["severity_coverage"]["not_evaluated"] == [2, 4, 5]
        text = _visible(page)
        assert "Per-sample rows: every corruption at severities 1 and 3." in text, kind
        assert (
            "Severities 2, 4 and 5 were not evaluated: to add them, list them in the recipe's corruptions.severities"
            in text
        ), kind
    # The evaluation table counts every evaluated severity already: no note there.
    assert "Per-sample rows" not in _visible((site / "views/lenet5/evaluation/index.html").read_text())
