"""The home page's summary, Table 1 by method and the Fig. 10 pair: numbers from the store, words that follow them."""

from __future__ import annotations

import re

import pytest
from pyarrow import ipc

from lotterysite.site import data, findings

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
    correlations={
        DENSE: corr(angle=r(-0.02, -0.10, 0.06), spread=r(0.5, 0.45, 0.55)),
        RAND: corr(spread=r(0.3, 0.25, 0.35)),
    },  # fmt: skip
    relabel={RAND: "mpt"},
)


@pytest.fixture(scope="module")
def stores(tmp_path_factory, make_derived_store):
    root = tmp_path_factory.mktemp("findings")
    return {k: data.load_store(make_derived_store(root / k, **spec)) for k, spec in (("a", STORE_A), ("b", STORE_B))}


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def test_summary_follows_store_a(stores):
    s = text(findings.summary(stores["a"]))
    assert "400 evaluation images" in s
    assert "lenet5 (dense: clean 80.0 % [78.0 %, 82.0 %]".replace(" %", "%") in s
    assert (
        "magnitude (79.0% [77.0%, 81.0%]) keeps dense's clean accuracy (within the intervals) to the highest sparsity, "
        "50 % of the weights pruned" in s
    )
    assert "then random 30 %" in s
    assert (
        "1 of 3 pruned models beat dense beyond the intervals; the largest gain is random at 30 %: "
        "70.0% [68.0%, 72.0%] vs 60.0% [58.0%, 62.0%], +10.0 points" in s
    )
    assert "no MPT model in this study" in s
    assert "-0.50 [-0.55, -0.45]" in s and "same sign, weaker than the paper's" in s


def test_summary_follows_store_b(stores):
    s = text(findings.summary(stores["b"]))
    kept = "keeps dense's clean accuracy (within the intervals) to the highest sparsity"
    assert f"magnitude (81.0% [79.0%, 83.0%]) {kept}, 80 %" in s
    assert "no pruned model beats dense beyond the intervals (1 of 3 are below it)" in s
    assert "beat dense beyond" not in s
    assert "not distinguishable from 0" in s
    assert "MPT's margins move less under corruption" in s and "as in the paper" in s
    assert "0.30 [0.25, 0.35] vs 0.50 [0.45, 0.55]" in s


def test_fig10_needs_equally_accurate_models(tmp_path, make_derived_store):
    spec = dict(STORE_B, models={**STORE_B["models"], RAND: model_numbers(acc(0.60), acc(0.50))})
    s = text(findings.summary(data.load_store(make_derived_store(tmp_path / "c", **spec))))
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
    kept = "keeps dense's clean accuracy (within the intervals) to the highest sparsity"
    assert f"{kept}, 50 % of the weights pruned" in a and f"{kept}, 80 % of the weights pruned" in b
    assert "the largest gain is random at 30 %" in a and "+10.0 points" in a
    assert "no pruned model beats dense beyond the intervals" in b and "largest gain" not in b
    assert "no MPT model in this study" in a and "MPT's margins move less under corruption" in b
    assert "400 evaluation images" in a and "400 evaluation images" in b


@pytest.mark.browser
def test_fig10_picker_defaults_to_dense_and_closest_mpt_and_switches(page, servers, open_view, shot):
    open_view(page, servers["b"] + "findings/")
    index = page.evaluate("window.lotterysiteRuntime.views.findIndex(v => v.root.classList.contains('ls-fig10'))")
    view = f"window.lotterysiteRuntime.views[{index}].view"
    assert page.evaluate(f"[{view}.signal('mc_a'), {view}.signal('mc_b')]") == [DENSE, RAND]
    assert page.evaluate(DRAWN_MODELS, index) == sorted([DENSE, RAND])
    selects = page.locator(".ls-fig10 select")
    assert selects.count() == 2 and selects.nth(1).locator("option").count() == 4
    selects.nth(1).select_option(MAG5)
    page.wait_for_function(f"{view}.signal('mc_b') === {MAG5!r}")
    page.evaluate(f"{view}.runAsync().then(() => 0)")
    assert page.evaluate(DRAWN_MODELS, index) == sorted([DENSE, MAG5])
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
    paper = {r[0]: r[3:6] for r in rows if "paper" in r[1]}
    assert paper["VGG16"] == ["-0.8107", "+0.5783", "+0.8234"] and set(paper) == {"ResNet18", "VGG16", "AlexNet"}
    assert rows[0][3].startswith("-0.50") and "[-0.55, -0.45]" in rows[0][3]
    details = page.locator("details.ls-details")
    details.locator("summary").first.click()
    assert details.locator("table.ls-per-model tbody tr").count() == 4
    assert "400 evaluation images" in page.inner_text("article")
    shot(page, "findings-a")
