"""What a reader hit on the built site (issue: "Every mark a view draws is the store's data"), each checked in
Chromium against numbers computed here from the Arrow files with pyarrow/numpy, not with the site's own code."""

from __future__ import annotations

import json
import math
from pathlib import Path
from urllib.parse import parse_qs, quote

import numpy as np
import pyarrow.ipc as ipc
import pytest

pytestmark = pytest.mark.browser

M05, R03 = "lenet5/magnitude/0.5", "lenet5/random/0.3"


@pytest.fixture(scope="module")
def server(site, serve):
    return serve(site)


@pytest.fixture
def page(new_page, server):
    return new_page(server)


def _table(path: Path):
    with ipc.open_file(path) as f:
        return f.read_all()


def _hash(page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(page.evaluate("location.hash.slice(1)")).items()}


# Every stroke and fill colour of marks and legend symbols, per mark role (rules, ticks, legend symbols).
INKS = """(index) => {
  const out = [];
  const walk = (node, role) => {
    if (!node) return;
    const r = node.role || role;
    if (node.items) { node.items.forEach((i) => walk(i, r)); if (node.marktype) return; }
    if (node.marktype) return;
    if (node.stroke != null || node.fill != null)
      out.push([r, node.stroke || null, node.fill || null, node.strokeOpacity]);
  };
  walk(window.lotterysiteRuntime.views[index].view.scenegraph().root, null);
  return out;
}"""


def _dark(page):
    # Material keeps the palette in localStorage: the second page of a context opens dark already.
    if page.evaluate("document.body.getAttribute('data-md-color-scheme')") != "slate":
        page.locator("label[for='__palette_1']").first.click()
    page.wait_for_function("window.lotterysiteRuntime.views.every(v => v.scheme === 'slate')", timeout=30_000)
    page.evaluate("window.lotterysiteRuntime.settled()")


def test_dark_palette_has_no_black_ink(page, server, open_view):
    """Dark mode: the robustness legend's line symbols and Fig. 3's error bars were drawn black on the dark page."""
    black = {"black", "#000", "#000000", "rgb(0,0,0)"}
    for path, index in (("views/lenet5/samples/", 0), ("findings/", None)):
        open_view(page, server + path)
        _dark(page)
        views = range(page.evaluate("window.lotterysiteRuntime.views.length")) if index is None else [index]
        seen = 0
        for i in views:
            for role, stroke, _fill, _ in page.evaluate(INKS, i):
                if role in ("legend-symbol", "mark") and stroke is not None:
                    seen += 1
                    assert str(stroke).replace(" ", "").lower() not in black, (path, i, role)
        assert seen > 0
    assert page.problems == []


def test_fig3_caption_and_bars_follow_the_store(page, server, site, open_view):
    t = _table(site.parent / "store" / "curse.arrow").to_pydict()
    last = {}
    for study, d, m, s in zip(t["study"], t["dimension"], t["angle_mean"], t["angle_std"], strict=True):
        if study not in last or d > last[study][0]:
            last[study] = (d, m, s)
    open_view(page, server + "findings/")
    text = page.inner_text("article")
    assert "Both approach 90°" not in text  # the old claim, false for trained models (about 72° in the demo)
    for study, (d, m, s) in last.items():
        assert f"{study} {m:.1f}° ± {s:.1f}° at {d}" in text or (
            study == "random" and f"{m:.1f}° ± {s:.1f}° at {d} dimensions" in text
        ), study
    # The error bars: one shared 0-180° axis, clipped to the plot (mean ± std can pass 0° or 180°).
    fig3 = page.evaluate("window.lotterysiteRuntime.views.findIndex(v => (v.cfg.title || '').startsWith('Fig. 3'))")
    assert fig3 >= 0
    assert page.evaluate(f"window.lotterysiteRuntime.views[{fig3}].view.scale('ls_curse_y').domain()") == [0, 180]
    clipped = page.evaluate(
        # The error bars' rules are the vertical ones (y2 set); the dashed 90° line is horizontal.
        """(i) => { const out = []; const walk = (n) => { if (!n) return;
            if (n.marktype === 'rule' && n.role === 'mark' && n.items.some((it) => it.y2 != null && it.y2 !== it.y))
              out.push(!!n.clip);
            (n.items || []).forEach(walk); };
            walk(window.lotterysiteRuntime.views[i].view.scenegraph().root); return out; }""",
        fig3,
    )
    assert clipped and all(clipped)


def test_every_static_chart_is_named(page, server, open_view):
    for path in ("", "findings/"):
        open_view(page, server + path)
        page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
        labels = page.evaluate(
            "Array.from(document.querySelectorAll('.ls-figure')).map(f => f.getAttribute('aria-label'))"
        )
        assert labels and all(label and label != "chart" for label in labels), labels


# Page coordinates of the legend label `text` of the first view (a click there isolates that entry).
LEGEND_LABEL = """(text) => {
  const view = window.lotterysiteRuntime.views[0].view;
  let found = null;
  const walk = (node, x, y) => {
    if (found || !node) return;
    if (node.marktype) { (node.items || []).forEach((it) => walk(it, x, y)); return; }
    if (node.text === text && node.mark && node.mark.role === 'legend-label') {
      found = {x: x + (node.bounds.x1 + node.bounds.x2) / 2, y: y + (node.bounds.y1 + node.bounds.y2) / 2};
      return;
    }
    (node.items || []).forEach((m) => walk(m, x + (node.x || 0), y + (node.y || 0)));
  };
  walk(view.scenegraph().root, 0, 0);
  if (!found) return null;
  const canvas = view.container().querySelector('canvas').getBoundingClientRect();
  const [ox, oy] = view.origin();
  return {x: canvas.x + ox + found.x, y: canvas.y + oy + found.y};
}"""


def test_fig10_models_and_home_legend_isolation_are_in_the_link(page, server, browser, open_view):
    open_view(page, server + "findings/")
    fig10 = page.evaluate("window.lotterysiteRuntime.views.findIndex(v => (v.cfg.title || '').startsWith('Fig. 10'))")
    a = page.locator(".ls-fig10 .vega-bindings select").first
    options = a.locator("option").evaluate_all("os => os.map(o => o.value)")
    a.select_option(R03)
    page.evaluate("window.lotterysiteRuntime.settled()")
    assert _hash(page)["fig10a"] == R03
    # A fresh load of the link draws the same pair.
    other = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
    open_view(other, page.url)
    assert other.evaluate(f"window.lotterysiteRuntime.views[{fig10}].view.signal('mc_a')") == R03
    assert other.locator(".ls-fig10 .vega-bindings select").first.input_value() == R03
    # A stale or hostile value falls back to the default pair.
    open_view(other, server + "findings/#fig10a=" + quote("<b>nope</b>", safe=""))
    default_a = other.evaluate(f"window.lotterysiteRuntime.views[{fig10}].view.signal('mc_a')")
    assert default_a in options and default_a != "<b>nope</b>"
    other.context.close()

    # Home: a legend click isolates a method; the link keeps it, and a fresh load fades the others.
    open_view(page, server)
    box = page.evaluate(LEGEND_LABEL, "random")
    assert box, "no legend entry 'random'"
    page.mouse.click(box["x"], box["y"])
    page.evaluate("window.lotterysiteRuntime.settled()")
    assert json.loads(_hash(page)["hl"]) == ["random"]
    fresh = browser.new_context(viewport={"width": 1500, "height": 1000}).new_page()
    open_view(fresh, page.url)
    assert fresh.evaluate("window.lotterysiteRuntime.views[0].view.signal('hl_method')")["method"] == ["random"]
    opacities = fresh.evaluate(
        """() => { const out = {}; const walk = (n) => { if (!n) return; if (n.marktype === 'line') n.items.forEach(
            (it) => { if (it.datum) out[it.datum.method] = it.opacity; }); (n.items || []).forEach(walk); };
            walk(window.lotterysiteRuntime.views[0].view.scenegraph().root); return out; }"""
    )
    assert opacities["random"] == 1 and all(v < 0.5 for k, v in opacities.items() if k != "random"), opacities
    fresh.context.close()
    assert page.problems == []


@pytest.mark.parametrize("kind", ["evaluation", "samples"])
def test_a_truncated_selection_in_a_link_is_ignored_not_a_crash(page, server, open_view, kind):
    # A link cut short: a valid selection's base64 with characters missing (and one that is not base64 at all).
    for bad in ("AAAAAAAAAAA", "%%%", "A"):
        open_view(page, server + f"views/lenet5/{kind}/#sel={bad}")
        assert page.evaluate("window.lotterysiteRuntime.errors") == []
        assert any(w.startswith("sel:") for w in page.evaluate("window.lotterysiteRuntime.warnings"))
    assert page.problems == []


def test_downloaded_csv_names_its_models(page, server, open_view):
    open_view(page, server + f"views/lenet5/local/#ref={quote(M05, safe='')}&cmp={quote(R03, safe='')}")
    with page.expect_download() as info:
        page.click("text=Download data (CSV)")
    name = info.value.suggested_filename
    assert "magnitude" in name and "random" in name and name.endswith(".csv"), name
    lines = Path(info.value.path()).read_text().strip().splitlines()
    header = lines[0].split(",")
    assert header[:4] == ["ref_model", "ref_data", "cmp_model", "cmp_data"]
    first = lines[1].split(",")
    assert first[0] == M05 and first[2] == R03 and first[1] == first[3] == "clean"


def _wilson(p: float, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _interval(shares) -> tuple[float, float, float]:
    # A subset's per-sample shares of correct predictions: a Wilson interval at the effective sample size
    # max(n, n p (1 - p) / s^2) (for 0/1 shares this is the plain Wilson interval; the page's documented rule).
    v = np.asarray(shares, dtype=np.float64)
    n, p = len(v), float(v.mean())
    s2 = float(v.var(ddof=1)) if n > 1 else 0.0
    m = n if s2 == 0 or p in (0.0, 1.0) else max(n, n * p * (1 - p) / s2)
    lo, hi = _wilson(p, m)
    return p, lo, hi


# Each Δ bar and whisker as drawn: model, data set, and its two ends inverted through the view's x scale.
DELTA_MARKS = """() => {
  const v = window.lotterysiteRuntime.views[0].view, out = [];
  const x = v.scale(Object.keys(v._runtime.scales).find((k) => k === 'x' || k.endsWith('_x')));
  const walk = (n) => {
    if (!n) return;
    if ((n.marktype === 'rect' || n.marktype === 'rule') && n.role === 'mark') for (const it of n.items) {
      const d = it.datum;
      if (!d || d.delta == null) continue;
      const x2 = it.x2 != null ? it.x2 : it.x + (it.width || 0);
      out.push([n.marktype, d.model_id, d.variant_label, x.invert(it.x), x.invert(x2), it.opacity]);
    }
    (n.items || []).forEach(walk);
  };
  walk(v.scenegraph().root);
  return out;
}"""


def test_evaluation_subset_bars_have_a_scale_an_interval_and_no_hidden_clamp(page, server, site, open_view):
    from lotterysite.site import charts

    served = _table(site / "data" / "samples.arrow").to_pydict()
    labels = dict(zip(served["sample_id"], served["label"], strict=True))
    cls = 6  # Shirt: the hard class, whose differences ran into the old ±20-point clamp
    outcomes = _table(site.parent / "store" / "outcomes.arrow").to_pydict()
    manifest = json.loads((site.parent / "store" / "manifest.json").read_text())
    n_sev = len(manifest["severities"])
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    open_view(page, server + f"views/lenet5/evaluation/#subset=class%3A{cls}")
    assert not any(u.endswith("/samples.arrow") for u in requested)  # the thumbnails are not needed here
    rows = {(r["model_id"], r["variant_label"]): r for r in page.evaluate(
        "window.lotterysiteRuntime.views[0].view.data('evaluation')")}  # fmt: skip
    dmax = page.evaluate(f"window.lotterysiteRuntime.views[0].view.signal('{charts.EVAL_DMAX}')")
    # Independent subset accuracies: outcomes.arrow's per-sample counts over the served samples of the class.
    expected = {}
    for i, model in enumerate(outcomes["model_id"]):
        if labels.get(outcomes["sample_id"][i]) != cls:
            continue
        for col, values in outcomes.items():
            if col == "correct_clean":
                key, hits, members = "clean", float(values[i]), 1
            elif col.startswith("c_"):
                key, hits, members = col[2:], float(values[i]), n_sev
            else:
                continue
            expected.setdefault((model, key), []).append(hits / members)
    checked = 0
    most = 0.0
    for (model, key), shares in expected.items():
        if (model, key) not in rows:
            continue
        r = rows[(model, key)]
        p, lo, hi = _interval(shares)
        assert r["subset_accuracy"] == pytest.approx(p, abs=1e-9)
        assert r["delta"] == pytest.approx(p - r["accuracy"], abs=1e-9)
        assert (r["delta_lo"], r["delta_hi"]) == pytest.approx((lo - r["accuracy"], hi - r["accuracy"]), abs=1e-7)
        most = max(most, abs(r["delta_lo"]), abs(r["delta_hi"]))
        checked += 1
    assert checked >= len(rows) - 13  # every clean and per-corruption column (the corruption mean has no outcome)
    assert most <= dmax and dmax in (0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1)  # nothing cut
    # The marks: each Δ bar runs from the zero line to its delta, each whisker over its interval, on the Δ scale.
    z, h = charts.EVAL_DELTA_ZERO, charts.EVAL_DELTA_HALF
    px = (
        page.evaluate(
            "(() => { const v = window.lotterysiteRuntime.views[0].view;"
            " const k = Object.keys(v._runtime.scales).find((k) => k === 'x' || k.endsWith('_x'));"
            " return v.scale(k).range()[1]; })()"
        )
        / charts.EVAL_DOMAIN[1]
    )
    tol = 0.5 / px / h * dmax  # half a pixel, in accuracy units of the Δ scale
    bars = whiskers = 0
    for kind, model, key, x0, x1, opacity in page.evaluate(DELTA_MARKS):
        r = rows[(model, key)]
        ends = sorted(((x0 - z) / h * dmax, (x1 - z) / h * dmax))
        if kind == "rect" and abs(min(abs(ends[0]), abs(ends[1]))) < tol:  # a Δ bar: one end on the zero line
            want = sorted((0.0, r["delta"]))
            bars += 1
        elif kind == "rule" and opacity == 1 and ends[1] - ends[0] > tol:
            want = [r["delta_lo"], r["delta_hi"]]
            whiskers += 1
        else:
            continue
        assert ends == pytest.approx(want, abs=tol), (kind, model, key)
    assert bars >= len(rows) // 2 and whiskers >= len(rows) // 2
    # A labelled scale in every cell (not only the bottom row), no text under 11 px.
    cells = len({k for _, k in rows})  # one facet cell per data set
    texts = page.evaluate(
        """() => { const out = []; const walk = (n, role) => { if (!n) return; const r = n.role || role;
        if (n.items) { n.items.forEach((i) => walk(i, r)); return; }
        if (n.text != null) out.push([r, String(n.text), n.fontSize]); };
        walk(window.lotterysiteRuntime.views[0].view.scenegraph().root, null); return out; }"""
    )
    labels_drawn = [t for role, t, _ in texts if role == "axis-label"]
    assert labels_drawn.count("0%") == cells and labels_drawn.count("0") == cells
    assert labels_drawn.count(f"+{round(dmax * 100)}") == cells
    assert min(size for _, _, size in texts if size) >= 10  # the printed values; labels are 11 px
    assert min(size for role, _, size in texts if role == "axis-label" and size) >= 11
    assert page.problems == []


def _class_shares(site: Path, cls: int) -> dict[tuple[str, str], np.ndarray]:
    """Per (model, evaluation-table column) the shares of correct predictions of the served in-sample samples of
    class `cls`, from outcomes.arrow (the corruption mean: every corruption and severity), float64."""
    served = _table(site / "data" / "samples.arrow").to_pydict()
    rows = zip(served["sample_id"], served["label"], served["in_sample"], strict=True)
    keep = {i for i, c, flag in rows if c == cls and flag}
    outcomes = _table(site.parent / "store" / "outcomes.arrow").to_pydict()
    manifest = json.loads((site.parent / "store" / "manifest.json").read_text())
    n_sev, corr = len(manifest["severities"]), manifest["corruptions"]
    out: dict[tuple[str, str], list[float]] = {}
    for i, model in enumerate(outcomes["model_id"]):
        if outcomes["sample_id"][i] not in keep:
            continue
        out.setdefault((model, "clean"), []).append(float(outcomes["correct_clean"][i]))
        for c in corr:
            out.setdefault((model, c), []).append(outcomes[f"c_{c}"][i] / n_sev)
        out.setdefault((model, "corruption mean"), []).append(
            sum(outcomes[f"c_{c}"][i] for c in corr) / (n_sev * len(corr))
        )
    return {k: np.asarray(v) for k, v in out.items()}


def test_evaluation_subset_menu_swaps_the_new_subset_into_the_live_view(page, server, site, open_view):
    # A subset change redraws no view: the new subset's bars and intervals are swapped into the live table, each the
    # float64 numpy Wilson interval of the class's samples (every column, the corruption mean included), and the
    # drawn Δ bars follow; "no subset" empties them.
    from lotterysite.site import charts

    open_view(page, server + "views/lenet5/evaluation/#subset=class%3A6")
    page.evaluate("window.lotterysiteRuntime.views[0].view.__before = true")
    for value, cls in (("class:2", 2), ("", None)):
        page.locator("select").nth(1).select_option(value)
        page.evaluate("window.lotterysiteRuntime.settled()")
        assert page.evaluate("window.lotterysiteRuntime.views[0].view.__before") is True  # the same view
        assert _hash(page).get("subset", "") == value
        rows = page.evaluate("window.lotterysiteRuntime.views[0].view.data('evaluation')")
        if cls is None:
            assert all(r[f] is None for r in rows for f in ("subset_accuracy", "subset_lo", "delta_hi"))
            continue
        shares = _class_shares(site, cls)
        assert {(r["model_id"], r["variant_label"]) for r in rows} <= set(shares)
        for r in rows:
            p, lo, hi = _interval(shares[(r["model_id"], r["variant_label"])])
            assert (r["subset_accuracy"], r["subset_lo"], r["subset_hi"]) == pytest.approx((p, lo, hi), abs=1e-7)
            assert r["delta"] == pytest.approx(p - r["accuracy"], abs=1e-12)
        dmax = page.evaluate(f"window.lotterysiteRuntime.views[0].view.signal('{charts.EVAL_DMAX}')")
        z, h = charts.EVAL_DELTA_ZERO, charts.EVAL_DELTA_HALF
        by = {(r["model_id"], r["variant_label"]): r for r in rows}
        bars = 0
        for kind, model, key, x0, x1, _ in page.evaluate(DELTA_MARKS):
            ends = sorted(((x0 - z) / h * dmax, (x1 - z) / h * dmax))
            if kind == "rect" and min(abs(e) for e in ends) < 1e-3:  # a Δ bar (the accuracy bars start at 0 %)
                assert ends == pytest.approx(sorted((0.0, by[(model, key)]["delta"])), abs=1e-3), (model, key)
                bars += 1
        assert bars == len(rows)
    assert page.problems == []


def test_subset_bars_agree_with_a_fresh_numpy_wilson_at_the_extremes():
    # The interval the page draws, at p = 0 and 1 and tiny n, has the Wilson score interval's known values.
    lo, hi = _wilson(0.0, 10)
    assert lo == 0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = _wilson(1.0, 5)
    assert hi == 1 and lo == pytest.approx(0.5655, abs=1e-4)
    assert np.isclose(sum(_wilson(0.5, 100)) / 2, 0.5)
    # 0/1 shares give the plain Wilson interval; shares of several predictions that vary less between samples give
    # a narrower one (each sample carries more than one 0/1 outcome), never a wider one than n independent samples.
    assert _interval([0] * 7 + [1] * 3)[1:] == pytest.approx(_wilson(0.3, 10))
    assert _interval([0.0, 0.6, 0.0, 0.6, 0.0, 0.6])[2] < _wilson(0.3, 6)[1]
    assert _interval([0, 1, 0, 1, 0, 1])[2] == pytest.approx(_wilson(0.5, 6)[1])


def _decode_sel(text: str, n: int) -> set[int]:
    # The link's selection: base64url of a bit set, bit j of byte i = sample 8 i + j in samples.arrow's order.
    import base64

    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    return {i for i in range(n) if raw[i // 8] >> (i % 8) & 1}


@pytest.mark.parametrize("kind", ["local", "global"])
def test_samples_can_be_selected_with_the_keyboard(page, server, site, open_view, kind):
    # No mouse: Tab to the "select by value" form, pick a brush with the arrow keys, type a range, press Enter. The
    # chart draws that brush, and the selection carried to the other views is exactly the samples in the range,
    # recomputed here from the store's geometry file.
    from oracle import Store, hash_state

    store = Store(site.parent / "store")
    served = _table(site / "data" / "samples.arrow").to_pylist()
    cls = 6
    open_view(page, server + f"views/lenet5/{kind}/#class={cls}")
    ref = page.evaluate("window.lotterysiteRuntime.views[0].cfg.models[0].id")
    geo = store.geometry(ref, "clean", 0)
    target = "brush_6" if kind == "local" else "ax10"  # the Shirt panel; the PCP's length axis
    page.focus(".ls-kbd select")
    for _ in range(30):
        if page.evaluate("document.activeElement.value") == target:
            break
        page.keyboard.press("ArrowDown")
    assert page.evaluate("document.activeElement.value") == target
    in_class = [geo[s["sample_id"]] for s in served if s["in_sample"] and s["label"] == cls]
    lengths = np.array([r["length"] for r in in_class])
    lo, hi = (float(round(q, 3)) for q in np.quantile(lengths, [0.25, 0.75]))
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "length from"
    page.keyboard.type(str(lo))
    page.keyboard.press("Tab")
    page.keyboard.type(str(hi))
    page.keyboard.press("Enter")  # submits; any further bound left empty covers the data
    page.wait_for_function("location.hash.includes('sel=')")
    page.evaluate("window.lotterysiteRuntime.ready")
    page.wait_for_function(f"(() => {{ try {{ const v = window.lotterysiteRuntime.views[0].view.signal('{target}');"
                           " return v && Object.keys(v).length > 0; } catch (e) { return false; } })()")  # fmt: skip
    state = hash_state(page)
    chosen = _decode_sel(state["sel"], len(served))
    want = {i for i, s in enumerate(served) if s["in_sample"] and s["label"] == cls
            and lo <= geo[s["sample_id"]]["length"] <= hi}  # fmt: skip
    assert chosen == want and 0 < len(want) < len(in_class)
    drawn = page.evaluate(f"window.lotterysiteRuntime.views[0].view.signal('{target}')")
    assert drawn["ref_length"] == pytest.approx([lo, hi])
    assert f"{len(want)} samples selected" in page.text_content(".ls-info")
    assert page.problems == []
