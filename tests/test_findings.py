"""The home page's summary, Table 1 by method and the Fig. 10 pair: numbers from the store, words that follow them."""

from __future__ import annotations

import re

import pytest
from findings_store import acc, derive_store, model_numbers
from pyarrow import ipc

from lotterysite.site import data, findings

DENSE, MAG5, MAG8, RAND = "lenet5/dense", "lenet5/magnitude/0.5", "lenet5/magnitude/0.8", "lenet5/random/0.3"


def r(v, lo, hi):
    return {"v": v, "lo": lo, "hi": hi}


def corr(angle=None, spread=None):
    out = {}
    for name, value in (("rc_angle", angle), ("mc_abs_mean", spread)):
        if value is not None:
            out[name], out[f"{name}_lo"], out[f"{name}_hi"] = value["v"], value["lo"], value["hi"]
    return out


STORE_A = dict(
    models={
        DENSE: model_numbers(acc(0.80), acc(0.60)),
        MAG5: model_numbers(acc(0.79), acc(0.61)),
        MAG8: model_numbers(acc(0.70), acc(0.55)),
        RAND: model_numbers(acc(0.78), acc(0.70)),  # corruption: 0.68 > 0.62, beyond the intervals
    },
    correlations={DENSE: corr(angle=r(-0.5, -0.55, -0.45))},
)
STORE_B = dict(
    models={
        DENSE: model_numbers(acc(0.80), acc(0.60)),
        MAG5: model_numbers(acc(0.66), acc(0.50)),
        MAG8: model_numbers(acc(0.81), acc(0.59)),  # keeps dense's accuracy at 80 %
        RAND: model_numbers(acc(0.79), acc(0.63)),  # corruption: intervals overlap, no claim
    },
    correlations={DENSE: corr(angle=r(-0.02, -0.10, 0.06), spread=r(0.5, 0.45, 0.55)),
                  RAND: corr(spread=r(0.3, 0.25, 0.35))},  # fmt: skip
    relabel={RAND: "mpt"},
)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("findings")
    return {k: data.load_store(derive_store(root / k, **spec)) for k, spec in (("a", STORE_A), ("b", STORE_B))}


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def test_summary_follows_store_a(stores):
    s = text(findings.summary(stores["a"]))
    assert "400 evaluation images" in s
    assert "lenet5 (dense: clean 80.0 % [78.0 %, 82.0 %]".replace(" %", "%") in s
    assert "magnitude (79.0% [77.0%, 81.0%]) keeps dense's clean accuracy to the highest sparsity, 50 % of the weights pruned" in s
    assert "then random 30 %" in s
    assert "1 of 3 pruned models beat dense beyond the intervals; the largest gain is random at 30 %: 70.0% [68.0%, 72.0%] vs 60.0% [58.0%, 62.0%], +10.0 points" in s
    assert "no MPT model in this study" in s
    assert "-0.50 [-0.55, -0.45]" in s and "same sign, weaker than the paper's" in s


def test_summary_follows_store_b(stores):
    s = text(findings.summary(stores["b"]))
    assert "magnitude (81.0% [79.0%, 83.0%]) keeps dense's clean accuracy to the highest sparsity, 80 %" in s
    assert "no pruned model beats dense beyond the intervals (1 of 3 are below it)" in s
    assert "beat dense beyond" not in s
    assert "not distinguishable from 0" in s
    assert "MPT's margins move less under corruption" in s and "as in the paper" in s
    assert "0.30 [0.25, 0.35] vs 0.50 [0.45, 0.55]" in s


def test_fig10_needs_equally_accurate_models(tmp_path):
    spec = dict(STORE_B, models={**STORE_B["models"], RAND: model_numbers(acc(0.60), acc(0.50))})
    s = text(findings.summary(data.load_store(derive_store(tmp_path / "c", **spec))))
    assert "is not as accurate as dense, so the paper's comparison of equally accurate models cannot be made" in s
    assert "margins move less" not in s


def test_table1_has_one_row_per_arch_and_method(stores):
    rows = findings.table1(stores["a"])
    assert [(x["arch"], x["method"], x["models"]) for x in rows] == [
        ("lenet5", "dense", 1), ("lenet5", "magnitude", 2), ("lenet5", "random", 1)]  # fmt: skip
    mag = rows[1]
    per_model = [c for c in stores["a"].tables["correlations.arrow"].to_pylist() if c["method"] == "magnitude"]
    assert mag["rc_margin"] == pytest.approx(sum(c["rc_margin"] for c in per_model) / 2)
    assert rows[0]["rc_angle"] == pytest.approx(-0.5) and rows[0]["rc_angle_lo"] == pytest.approx(-0.55)


def test_default_fig10_pair_is_dense_and_the_closest_mpt(stores):
    assert findings.default_pair(stores["b"]) == (DENSE, RAND)  # RAND is labelled mpt in store b


def test_headline_rows_start_every_method_at_dense(stores):
    views = {"lenet5": "views/lenet5/local/"}
    table = ipc.open_file(findings.headline_table(stores["a"], views)).read_all().to_pylist()
    dense = [t for t in table if t["model_id"] == DENSE]
    assert {(t["method"], t["data"]) for t in dense} == {
        (m, d) for m in ("magnitude", "random") for d in ("clean", "corruption mean")}  # fmt: skip
    assert all(t["amount"] == 0 for t in dense)
    rand = next(t for t in table if t["model_id"] == RAND and t["data"] == "corruption mean")
    assert rand["accuracy"] == pytest.approx(0.70) and rand["lo"] == pytest.approx(0.68) and rand["n"] == 400
    assert rand["href"] == "views/lenet5/local/#ref=lenet5%2Frandom%2F0.3"


def test_new_chart_functions_compile_to_vega_lite():
    from lotterysite.site import charts

    head = charts.headline(methods=["magnitude", "mpt"]).to_dict()
    assert head["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    assert head["spec"]["layer"][2]["encoding"]["href"]["field"] == "href"  # the click-through
    pair = charts.margin_change_pair(models=[("a", "A"), ("b", "B")], a="a", b="b").to_dict()
    assert [(p["name"], p["value"], p["bind"]["input"]) for p in pair["params"]] == [
        ("mc_a", "a", "select"), ("mc_b", "b", "select")]  # fmt: skip
    curse = charts.curse_of_dimensionality().to_dict()
    assert curse["resolve"]["scale"]["y"] == "shared"  # one angle scale across the panels


def test_chart_functions_take_dataframes_in_a_notebook(stores):
    pd = pytest.importorskip("pandas")
    from lotterysite.site import charts

    rows = ipc.open_file(findings.headline_table(stores["a"], {"lenet5": "x/"})).read_all().to_pandas()
    spec = charts.headline(rows, methods=findings.method_labels(stores["a"])).to_dict()
    assert len(next(iter(spec["datasets"].values()))) == len(rows)
    assert isinstance(rows, pd.DataFrame)
