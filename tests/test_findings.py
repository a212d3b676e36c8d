"""The home page's summary, Table 1 by method and the Fig. 10 pair: numbers from the store, words that follow them."""

from __future__ import annotations

import re

import numpy as np
import pytest
from pyarrow import ipc

from lotterysite.site import data, findings, model
from lotterysite.site.render import SiteOptions

DENSE, MAG5, MAG8, RAND = "lenet5/dense", "lenet5/magnitude/0.5", "lenet5/magnitude/0.8", "lenet5/random/0.3"


def acc(v: float, half: float = 0.02) -> dict:
    return {"v": v, "lo": v - half, "hi": v + half}


def model_numbers(clean: dict | None = None, corrupted: dict | None = None) -> dict:
    out = {}
    for name, a in (("clean_accuracy", clean), ("corrupted_accuracy", corrupted)):
        if a is not None:
            out[name], out[f"{name}_lo"], out[f"{name}_hi"] = a["v"], a["lo"], a["hi"]
    return out


def r(v, lo, hi):
    return {"v": v, "lo": lo, "hi": hi}


def corr(angle=None, spread=None):
    out = {}
    for name, value in (("rc_angle", angle), ("mc_abs_mean", spread)):
        if value is not None:
            out[name], out[f"{name}_lo"], out[f"{name}_hi"] = value["v"], value["lo"], value["hi"]
    return out


# Per-sample outcomes on the fixture's 400 evaluation images (two corrupted versions each), from which precompute's
# own aggregates compute models.arrow's accuracies and paired.arrow. Dense is right on the first 320 images.
N = 400


def right(*spans: tuple[int, int]) -> np.ndarray:
    out = np.zeros(N, bool)
    for lo, hi in spans:
        out[lo:hi] = True
    return out


DENSE_CLEAN = right((0, 320))
# Same 80 % as dense: the same images but one (drop 0, one image either way: the paired interval is about ±0.75
# points), or 40 images the other way each (drop 0, interval about ±4.4 points). Their unpaired intervals are equal.
NEAR = right((1, 321))
SHUFFLED = right((40, 360))


def outcomes(clean: np.ndarray, corrupted: np.ndarray, margin_change: float = 0.5) -> dict:
    # Clean margins 1, corrupted ones 1 - change x (a spread of 0.5 to 1.5 over the images): the mean |relative
    # margin change| is about `margin_change`.
    spread = np.linspace(0.5, 1.5, N)
    margin = np.vstack([np.ones(N), 1 - margin_change * spread, 1 - margin_change * spread])
    return {"clean": clean, "corrupted": np.vstack([corrupted, corrupted]), "margin": margin}


STORE_A = dict(
    outcomes={
        DENSE: outcomes(DENSE_CLEAN, right((0, 240))),
        MAG5: outcomes(NEAR, right((0, 240))),  # keeps dense's accuracy: drop interval within 1 point
        MAG8: outcomes(right((0, 280)), right((0, 220))),  # 10 points below
        RAND: outcomes(SHUFFLED, right((0, 280))),  # clean: inconclusive; corruption: +10 points, paired
    },
    correlations={DENSE: corr(angle=r(-0.5, -0.55, -0.45))},
)
STORE_B = dict(
    outcomes={
        DENSE: outcomes(DENSE_CLEAN, right((0, 240))),
        MAG5: outcomes(SHUFFLED, right((0, 240))),  # the same 80 % as in store A, but inconclusive
        MAG8: outcomes(NEAR, right((0, 236))),  # keeps dense's accuracy at 80 %
        RAND: outcomes(right((0, 319), (399, 400)), right((0, 240)), 0.3),  # equally accurate, margins move less
    },
    correlations={
        DENSE: corr(angle=r(-0.02, -0.10, 0.06), spread=r(0.5, 0.45, 0.55)),
        RAND: corr(spread=r(0.3, 0.25, 0.35)),
    },  # fmt: skip
    relabel={RAND: "mpt"},
)


def vm(store, equivalence_points: float = 1.0) -> model.ViewModel:
    """The view model the site's pages are written from (`model.build_view_model`)."""
    return model.build_view_model(store, SiteOptions(equivalence_points=equivalence_points))


@pytest.fixture(scope="module")
def stores(tmp_path_factory, make_derived_store):
    root = tmp_path_factory.mktemp("findings")
    return {k: data.load_store(make_derived_store(root / k, **spec)) for k, spec in (("a", STORE_A), ("b", STORE_B))}


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


KEPT = "keeps dense's clean accuracy (paired drop below 1 point) to the highest sparsity"


def test_summary_follows_store_a(stores):
    s = text(findings.summary(vm(stores["a"])))
    assert "400 evaluation images" in s and "equivalence margin of **1 point**" in s
    assert "lenet5 (dense: clean 80.0% [" in s and "corruption changes it by -20.0 points [" in s
    assert re.search(
        rf"magnitude \(80\.0% \[[^]]+\]; drop 0\.0 points \[-0\.\d, \+0\.\d\]\) {re.escape(KEPT)}, 50 %", s
    )
    assert "random: no amount shown to keep it" in s
    assert re.search(
        r"1 of 3 pruned models beat dense \(paired interval above 0\); the largest gain is random at 30 %: "
        r"70\.0% \[[^]]+\] vs 60\.0% \[[^]]+\], \+10\.0 points \[\+\d", s)  # fmt: skip
    assert "no MPT model in this study" in s
    assert "-0.50 [-0.55, -0.45]" in s and "same sign, weaker than the paper's" in s


def test_summary_follows_store_b(stores):
    s = text(findings.summary(vm(stores["b"])))
    assert re.search(rf"magnitude \(80\.0% \[[^]]+\]; drop 0\.0 points \[[^]]+\]\) {re.escape(KEPT)}, 80 %", s)
    assert "no pruned model beats dense (1 of 3 are below it, paired)" in s and "beat dense" not in s
    assert "not distinguishable from 0" in s
    assert "compares MPT 30 % (lenet5/random/0.3, clean 80.0% [" in s and "with dense (lenet5/dense, clean 80.0%" in s
    assert "within ±1 point: equally accurate" in s
    assert "MPT's margins move less under corruption, as in the paper" in s
    assert "0.30 [0.25, 0.35] vs 0.50 [0.45, 0.55], MPT minus dense -0.2" in s


def test_equal_accuracies_different_verdicts_because_the_data_are_paired(stores):
    """magnitude 50 % is right on 80 % of the images in both stores and its own interval is the same; in store a it
    differs from dense on 2 images, in store b on 80: only the paired interval tells that one keeps dense's accuracy
    and the other cannot be told apart from a 4-point drop."""
    mag = {k: next(m for m in st.models.to_pylist() if m["model_id"] == MAG5) for k, st in stores.items()}
    assert mag["a"]["clean_accuracy"] == mag["b"]["clean_accuracy"] == pytest.approx(0.8)
    dense = {k: next(m for m in st.models.to_pylist() if m["model_id"] == DENSE) for k, st in stores.items()}
    for k in ("a", "b"):  # unpaired, the two stores look alike: each interval overlaps dense's
        value = model.value_of(mag[k], "clean_accuracy")
        assert value.overlaps(model.value_of(dense[k], "clean_accuracy")) and value.hi - value.lo > 0.07
    rows = {k: {r["model"]["model_id"]: r for r in vm(st).pruned_vs_dense} for k, st in stores.items()}
    assert rows["a"][MAG5]["verdict"] == "keeps" and rows["b"][MAG5]["verdict"] == "inconclusive"
    assert rows["a"][MAG8]["verdict"] == "below" and rows["b"][MAG8]["verdict"] == "keeps"
    drop_a, drop_b = rows["a"][MAG5]["drop"], rows["b"][MAG5]["drop"]
    assert (drop_a.better, drop_a.worse) == (1, 1) and (drop_b.better, drop_b.worse) == (40, 40)
    assert drop_a.hi < 0.01 < drop_b.hi and drop_b.hi > 0.03
    # A wider margin makes store b's magnitude 50 % keep too; the margin is named on the page.
    s = text(findings.summary(vm(stores["b"], 5)))
    assert "equivalence margin of **5 points**" in s and "paired drop below 5 points" in s


def test_fig10_says_when_the_pair_is_not_equally_accurate(tmp_path, make_derived_store):
    spec = dict(STORE_B, outcomes={**STORE_B["outcomes"], RAND: outcomes(right((20, 320)), right((0, 240)), 0.3)})
    s = text(findings.summary(vm(data.load_store(make_derived_store(tmp_path / "c", **spec)))))
    assert "compares MPT 30 % (lenet5/random/0.3, clean 75.0% [" in s
    assert re.search(r"MPT minus dense -5\.0 points \[-\d\.\d, -\d\.\d\], not within ±1 point: the two are not "
                     r"shown to be equally accurate, so this is not the paper's comparison", s)  # fmt: skip
    assert "MPT's margins move less under corruption, but the models differ in accuracy" in s
    assert "as in the paper" not in s and "Against the other models pruned" not in s  # none at 30 %


def test_fig10_sets_mpt_against_the_other_models_pruned_to_its_amount(tmp_path, make_derived_store):
    """Is it MPT, or any pruning to that sparsity? magnitude moved to 30 % beside MPT 30 %: its margins move as
    much as dense's (0.5), MPT's less (0.3)."""
    spec = dict(STORE_B, models={MAG5: {"amount": 0.3}}, outcomes={**STORE_B["outcomes"],
                MAG5: outcomes(NEAR, right((0, 240)), 0.5)})  # fmt: skip
    s = text(findings.summary(vm(data.load_store(make_derived_store(tmp_path / "d", **spec)))))
    assert re.search(r"Against the other models pruned to 30 % \(mean \|relative margin change\|, MPT minus each, "
                     r"paired\): magnitude -0\.2\d* \[-0\.2\d*, -0\.\d+\] \(its clean accuracy [-+]?\d\.\d points "
                     r"\[[^]]+\] against MPT's\)\. MPT's margins move less than those of 1 of these 1\.",
                     s)  # fmt: skip


def test_digits_grow_until_distinct_ends_print_distinct():
    assert findings.digits_for([0.31, 0.35, 0.42], 2) == 2
    assert findings.digits_for([0.3101, 0.3498, 0.3502, 0.42], 2) == 4
    a, b = findings.Value(0.33, 0.3101, 0.3498), findings.Value(0.38, 0.3502, 0.42)
    d = findings.digits_for([*a.ends(), *b.ends()], 2)
    assert findings.r_text(a, d) == "+0.3300 [+0.3101, +0.3498]"
    assert findings.r_text(b, d) == "+0.3800 [+0.3502, +0.4200]"
    assert findings.pcts(findings.Value(0.8, 0.7601, 0.8), findings.Value(0.7, 0.6, 0.7599)) == [
        "80.00% [76.01%, 80.00%]", "70.00% [60.00%, 75.99%]"]  # fmt: skip
    # A difference's ends stay distinct from 0 and from the margin: +0.96 is not printed "+1.0"
    assert findings.points(findings.Diff(0.002, -0.0004, 0.0096), 0.01) == "+0.20 points [-0.04, +0.96]"
    assert findings.points(findings.Diff(0.0, 0.0, 0.0), 0.01) == "0.0 points [0.0, 0.0]"
    # float32 noise is no difference: a stored 0.01 is the 1-point margin
    f32 = float(np.float32(0.01))
    assert findings.points(findings.Diff(f32, -0.006, 0.026), 0.01) == "+1.0 points [-0.6, +2.6]"
    assert findings.points(findings.Diff(-0.0, -0.0, 0.0).negated()) == "0.0 points [0.0, 0.0]"


def test_table1_has_one_row_per_arch_and_method(stores):
    rows = vm(stores["a"]).table1
    assert [(x["arch"], x["method"], x["models"]) for x in rows] == [
        ("lenet5", "dense", 1), ("lenet5", "magnitude", 2), ("lenet5", "random", 1)]  # fmt: skip
    mag = rows[1]
    per_model = [c for c in stores["a"].tables["correlations.arrow"].to_pylist() if c["method"] == "magnitude"]
    assert mag["rc_margin"] == pytest.approx(sum(c["rc_margin"] for c in per_model) / 2)
    assert mag["rc_margin_eq5"] == pytest.approx(sum(c["rc_margin_eq5"] for c in per_model) / 2)
    assert rows[0]["rc_angle"] == pytest.approx(-0.5) and rows[0]["rc_angle_lo"] == pytest.approx(-0.55)


def test_table1_compares_both_margins_with_the_papers_one():
    """The paper reports one margin, eq. 5's (no bias): its values sit under that column, a dash under ours, and
    both our margins are judged against them."""
    assert [k for k, _ in findings.METRICS] == ["rc_angle", "rc_length", "rc_margin", "rc_margin_eq5"]
    assert model.paper_range("rc_margin") == model.paper_range("rc_margin_eq5") == (0.7681, 0.8234)
    assert model.paper_range("rc_length") == (0.3401, 0.5783)
    cells = re.findall(r"<td>([^<]*)</td>", findings.paper_cells((-0.8107, 0.5783, 0.8234), 2))
    assert cells == ["-0.81", "+0.58", "—", "+0.82"]
    strong = findings.Value(0.9, 0.88, 0.92)
    assert model.compare_to_paper("rc_margin", strong) == model.compare_to_paper("rc_margin_eq5", strong)
    assert model.compare_to_paper("rc_margin_eq5", strong) == "same sign, stronger than the paper's"


def test_default_fig10_pair_is_dense_and_the_closest_mpt(stores):
    assert vm(stores["b"]).default_pair == (DENSE, RAND)  # RAND is labelled mpt in store b


def test_headline_rows_start_every_method_at_dense(stores):
    views = {"lenet5": "views/lenet5/local/"}
    table = ipc.open_file(findings.headline_table(vm(stores["a"]), views)).read_all().to_pylist()
    dense = [t for t in table if t["model_id"] == DENSE]
    assert {(t["method"], t["data"]) for t in dense} == {
        (m, d) for m in ("magnitude", "random") for d in ("clean", "corruption mean")}  # fmt: skip
    assert all(t["amount"] == 0 for t in dense)
    rand = next(t for t in table if t["model_id"] == RAND and t["data"] == "corruption mean")
    model = next(m for m in stores["a"].models.to_pylist() if m["model_id"] == RAND)
    assert rand["accuracy"] == pytest.approx(0.70) and rand["lo"] == pytest.approx(model["corrupted_accuracy_lo"])
    assert rand["n"] == 400
    assert rand["href"] == "views/lenet5/local/#ref=lenet5%2Frandom%2F0.3"


def test_new_chart_functions_compile_to_vega_lite():
    from lotterysite.site import charts

    head = charts.headline(methods=["magnitude", "mpt"]).to_dict()
    assert head["$schema"].startswith("https://vega.github.io/schema/vega-lite/")
    assert head["spec"]["layer"][2]["encoding"]["href"]["field"] == "href"  # the click-through
    pair = charts.margin_change_pair(models=[("a", "A"), ("b", "B")], a="a", b="b").to_dict()
    assert [(p["name"], p["value"], p.get("bind", {}).get("input")) for p in pair["params"]] == [
        ("mc_a", "a", "select"), ("mc_b", "b", "select"), ("fig10_w", 520, None)]  # fmt: skip
    readout = pair["vconcat"][0]
    assert readout["data"] == {"name": "fig10_paired"} and readout["mark"]["limit"] == {"expr": "fig10_w"}
    curse = charts.curse_of_dimensionality().to_dict()
    assert curse["resolve"]["scale"]["y"] == "shared"  # one angle scale across the panels


def test_chart_functions_take_dataframes_in_a_notebook(stores):
    pd = pytest.importorskip("pandas")
    from lotterysite.site import charts

    rows = ipc.open_file(findings.headline_table(vm(stores["a"]), {"lenet5": "x/"})).read_all().to_pandas()
    spec = charts.headline(rows, methods=list(vm(stores["a"]).method_labels)).to_dict()
    assert len(next(iter(spec["datasets"].values()))) == len(rows)
    assert isinstance(rows, pd.DataFrame)


# -- in Chromium: the home chart and its click-through, the summary on two stores, the Fig. 10 picker, Table 1 --

# The first plotted point with a link (a pruned model, not dense at 0), in page coordinates.
HEADLINE_POINT = """(index) => {
  const view = window.lotterysiteRuntime.views[index].view;
  let found = null;
  const walk = (mark, x, y) => {
    if (found) return;
    if (mark.marktype === 'symbol') {
      for (const it of mark.items) if (it.href && it.datum && it.datum.amount > 0) {
        found = {x: x + it.x, y: y + it.y, href: it.href, id: it.datum.model_id}; return;
      }
    }
    if (mark.marktype === 'group') mark.items.forEach(g => (g.items || []).forEach(m => walk(m, x + (g.x || 0),
        y + (g.y || 0))));
  };
  walk(view.scenegraph().root, 0, 0);
  const canvas = view.container().querySelector('canvas').getBoundingClientRect();
  const [ox, oy] = view.origin();
  const pad = view.padding();  // origin() leaves out the padding
  return found && {x: canvas.x + ox + (pad.left || 0) + found.x, y: canvas.y + oy + (pad.top || 0) + found.y,
                   href: found.href, id: found.id};
}"""
# The lines of Fig. 10's paired readout, as drawn.
READOUT = """(index) => {
  const lines = [];
  const walk = (mark) => {
    if (mark.marktype === 'text') mark.items.forEach(it => it.datum && 'b' in it.datum && lines.push(it.text));
    else if (mark.marktype === 'group') mark.items.forEach(g => (g.items || []).forEach(walk));
  };
  walk(window.lotterysiteRuntime.views[index].view.scenegraph().root);
  return lines;
}"""
# Model ids of the lines Fig. 10 draws.
DRAWN_MODELS = """(index) => {
  const ids = new Set();
  const walk = (mark) => {
    if (mark.marktype === 'line') mark.items.forEach(it => it.datum && ids.add(it.datum.model_id));
    else if (mark.marktype === 'group') mark.items.forEach(g => (g.items || []).forEach(walk));
  };
  walk(window.lotterysiteRuntime.views[index].view.scenegraph().root);
  return Array.from(ids).sort();
}"""


@pytest.fixture(scope="module")
def servers(tmp_path_factory, make_site, make_derived_store, serve):
    out = {}
    for name, spec in (("a", STORE_A), ("b", STORE_B)):
        root = tmp_path_factory.mktemp(f"site-{name}")
        out[name] = serve(make_site(root, make_derived_store(root / "store", **spec)))
    return out


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.problems = []
    pg.on("pageerror", lambda e: pg.problems.append(f"page error: {e}"))
    pg.on("console", lambda m: pg.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    yield pg
    context.close()


def summary_text(page) -> str:
    return re.sub(r"\s+", " ", page.inner_text("article"))


@pytest.mark.browser
def test_headline_chart_comes_first_and_a_click_opens_the_model(page, servers, open_view, shot):
    open_view(page, servers["a"])
    # The chart is the first thing of the page: before the summary and before the page's own introduction.
    order = page.evaluate("""() => Array.from(
        document.querySelectorAll('article .ls-headline, article .ls-summary, article h2')
    ).map(e => e.classList.contains('ls-headline') ? 'chart'
             : e.classList.contains('ls-summary') ? 'summary' : e.textContent)""")
    assert order[:3] == ["What this study found", "chart", "summary"], order
    shot(page, "home-a")
    point = page.evaluate(HEADLINE_POINT, 0)
    assert point and point["href"].endswith("#ref=" + point["id"].replace("/", "%2F")), point
    page.mouse.click(point["x"], point["y"])
    page.wait_for_url(re.compile(r".*/views/lenet5/local/#ref="), timeout=20_000)
    page.wait_for_function("window.lotterysiteRuntime && window.lotterysiteRuntime.ready", timeout=30_000)
    page.evaluate("window.lotterysiteRuntime.ready")
    reference = page.locator("fieldset.ls-ref select").first.input_value()
    assert reference == point["id"]
    assert page.problems == []


@pytest.mark.browser
def test_summary_follows_the_data_on_two_stores(page, servers, open_view, shot):
    open_view(page, servers["a"])
    a = summary_text(page)
    open_view(page, servers["b"])
    b = summary_text(page)
    shot(page, "home-b")
    assert f"{KEPT}, 50 % of the weights pruned" in a and f"{KEPT}, 80 % of the weights pruned" in b
    assert "the largest gain is random at 30 %" in a and "+10.0 points" in a
    assert "no pruned model beats dense (1 of 3 are below it, paired)" in b and "largest gain" not in b
    assert "no MPT model in this study" in a and "MPT's margins move less under corruption" in b
    assert "400 evaluation images" in a and "400 evaluation images" in b


@pytest.mark.browser
def test_fig10_picker_defaults_to_dense_and_closest_mpt_and_switches(page, servers, open_view, shot):
    open_view(page, servers["b"] + "findings/")
    index = page.evaluate("window.lotterysiteRuntime.views.findIndex(v => v.root.classList.contains('ls-fig10'))")
    view = f"window.lotterysiteRuntime.views[{index}].view"
    assert page.evaluate(f"[{view}.signal('mc_a'), {view}.signal('mc_b')]") == [DENSE, RAND]
    assert page.evaluate(DRAWN_MODELS, index) == sorted([DENSE, RAND])
    lines = page.evaluate(READOUT, index)
    assert lines[0].startswith("clean accuracy 0.0 points [") and lines[1] == "equally accurate (margin ±1 point)"
    assert lines[2].startswith("mean |rel. margin change| -0.2") and lines[3] == "B's margins move less"
    # The verdict under the chart says the same, naming both models.
    verdict = re.sub(r"\s+", " ", page.inner_text("ul.ls-fig10-verdict"))
    assert f"compares MPT 30 % ({RAND}" in verdict and f"with dense ({DENSE}" in verdict
    selects = page.locator(".ls-fig10 select")
    assert selects.count() == 2 and selects.nth(1).locator("option").count() == 4
    selects.nth(1).select_option(MAG5)
    page.wait_for_function(f"{view}.signal('mc_b') === {MAG5!r}")
    page.evaluate(f"{view}.runAsync().then(() => 0)")
    assert page.evaluate(DRAWN_MODELS, index) == sorted([DENSE, MAG5])
    lines = page.evaluate(READOUT, index)  # right on the same 80 %, but 80 images apart: not shown equal
    assert lines[0].startswith("clean accuracy 0.0 points [")
    assert lines[1] == "not shown equally accurate (margin ±1 point)"
    shot(page, "findings-b")
    assert page.problems == []


@pytest.mark.browser
def test_table1_sits_beside_the_papers_values(page, servers, open_view, shot):
    open_view(page, servers["a"] + "findings/")
    rows = page.eval_on_selector_all(
        "table.ls-table1 tbody tr", "rs => rs.map(r => Array.from(r.cells).map(c => c.innerText))"
    )
    ours = [(r[0], r[1]) for r in rows if "paper" not in r[1]]
    assert ours == [("lenet5", "dense"), ("lenet5", "magnitude"), ("lenet5", "random")]
    paper = {r[0]: r[3:7] for r in rows if "paper" in r[1]}
    # The paper reports one margin, eq. 5's (no bias): under that column, a dash under ours (with the bias).
    assert paper["VGG16"] == ["-0.8107", "+0.5783", "—", "+0.8234"] and set(paper) == {"ResNet18", "VGG16", "AlexNet"}
    assert rows[0][3].startswith("-0.50") and "[-0.55, -0.45]" in rows[0][3]
    details = page.locator("details.ls-details")
    details.locator("summary").first.click()
    assert details.locator("table.ls-per-model tbody tr").count() == 4
    assert "400 evaluation images" in page.inner_text("article")
    shot(page, "findings-a")
