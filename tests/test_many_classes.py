"""Many classes (1000 ImageNet classes, real photos): the store ships the angles to each class's most confused
classes, the local view picks its classes, the global view's axes are the paper's pre-selection, pages stay small.

Every expectation is computed here, independently: the confused classes by plain counting over the work files'
full-data predictions, the angles in float64 numpy from the model's features and classifier weights, the default
classes from accuracy.arrow."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pytest
import torch
from conftest import MANY_HOSTILE
from test_site_browser import BRUSH_BOX

K = 8  # the recipe's ship.confused_classes


def _read(path) -> pa.Table:
    with ipc.open_file(str(path)) as f:
        return f.read_all()


def _manifest(store: Path) -> dict:
    return json.loads((store / "manifest.json").read_text())


def _work_results(root: Path) -> dict[str, dict[str, np.ndarray]]:
    """model_id -> the full-data arrays precompute evaluated (pred, angle, labels), from the work files."""
    out = {}
    for m in _manifest(root / "store")["models"]:
        (path,) = (root / "store.work" / "results").glob(f"{m['model_key']}-*.npz")
        with np.load(path) as z:
            out[m["model_id"]] = {k: z[k] for k in ("pred", "angle", "labels")}
            # Angles to every class are kept for the shipped variants; this study ships all of its variants.
            assert json.loads(str(z["angle_variants"])) == list(range(z["pred"].shape[0]))
    return out


def test_store_ships_the_confused_classes_angles(many_store):
    store = many_store / "store"
    manifest = _manifest(store)
    classes = manifest["dataset"]["classes"]
    assert len(classes) == 1000 and manifest["dataset"]["confused_classes"] == K
    results = _work_results(many_store)
    labels = next(iter(results.values()))["labels"]
    # Independent: per true class, count every other class's predictions over all models and variants, mean angle.
    expected = {}
    for c in sorted(set(labels.tolist())):
        count, angles = {}, {}
        for r in results.values():
            for v in range(r["pred"].shape[0]):
                for i in np.flatnonzero(labels == c):
                    p = int(r["pred"][v, i])
                    if p != c:
                        count[p] = count.get(p, 0) + 1
                    for j in range(1000):
                        angles.setdefault(j, []).append(float(r["angle"][v, i, j]))
        ranked = sorted((j for j in range(1000) if j != c), key=lambda j: (-count.get(j, 0), np.mean(angles[j]), j))
        expected[c] = ranked[:K]
    confused = _read(store / "confused.arrow").to_pylist()
    got = {}
    for row in sorted(confused, key=lambda r: (r["class_id"], r["rank"])):
        got.setdefault(row["class_id"], []).append(row["confused_id"])
    assert got == expected
    # Every geometry file: K angle columns, each the angle to the row's class's r-th confused class.
    for m in manifest["models"]:
        g = _read(store / "geometry" / f"{m['model_key']}.arrow")
        angle_cols = [n for n in g.column_names if n.startswith("angle_")]
        assert angle_cols == ["angle_true"] + [f"angle_c{r}" for r in range(K)]
        res = results[m["model_id"]]
        variants = [("clean", 0)] + [(n, s) for n in manifest["corruptions"] for s in manifest["severities"]]
        for row in g.slice(0, 30).to_pylist():
            v = variants.index((row["variant"], row["severity"]))
            for r in range(K):
                want = res["angle"][v, row["sample_id"], expected[row["label"]][r]]
                assert row[f"angle_c{r}"] == pytest.approx(want, abs=1e-6)


# ---- the site, in a browser ----
SHOWN = """() => window.lotterysiteRuntime.views.map(v => {
  const texts = [];
  let marks = 0;
  const walk = (item) => {
    if (item.items) { item.items.forEach(walk); return; }
    marks++;
    if (item.text != null) texts.push([].concat(item.text).join(' '));
  };
  if (v.view) walk(v.view.scenegraph().root);
  return {texts: texts.sort(), marks,
          controls: Array.from(v.root.querySelectorAll('select')).map(s => s.value),
          chips: Array.from(v.root.querySelectorAll('.ls-chip')).map(b => b.textContent),
          current: Array.from(v.root.querySelectorAll('.ls-current')).map(e => e.textContent),
          info: Array.from(v.root.querySelectorAll('.ls-info')).map(e => e.textContent)};
})"""
SETTLE = "() => window.lotterysiteRuntime.settled()"
CHIPS = "() => Array.from(document.querySelectorAll('.ls-chip[data-class]')).map(b => Number(b.dataset.class))"
PANEL_LABELS = """() => {
  // The true classes of the scatter points drawn in the local view's panels (symbol marks), per panel.
  const out = new Set();
  const walk = (mark) => {
    // (Legend symbols carry text labels; the sample grid draws images, and diamonds only for exemplars: none here.)
    if (mark.marktype === 'symbol') mark.items.forEach(i => i.datum && typeof i.datum.label === 'number' &&
        out.add(i.datum.label));
    else if (mark.marktype === 'group') mark.items.forEach(g => (g.items || []).forEach(walk));
  };
  walk(window.lotterysiteRuntime.views[0].view.scenegraph().root);
  return Array.from(out).sort((a, b) => a - b);
}"""
AXIS_TITLES = """() => {
  const out = [];
  const walk = (mark) => {
    if (mark.marktype === 'text' && String(mark.name).startsWith('ls_axis_')) mark.items.forEach(i => out.push(i.text));
    else if (mark.marktype === 'group') mark.items.forEach(g => (g.items || []).forEach(walk));
  };
  walk(window.lotterysiteRuntime.views[0].view.scenegraph().root);
  return out;
}"""


@pytest.fixture(scope="module")
def site(many_site, serve, many_store):
    from lotterysite.site.data import slug

    manifest = _manifest(many_store / "store")
    arch = manifest["architectures"][0]
    return serve(many_site), f"views/{slug(arch)}", manifest


def _open(browser, url, open_view):
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    pg = context.new_page()
    pg.problems = []
    pg.on("console", lambda m: pg.problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.problems.append(f"page error: {e}"))
    pg.on("dialog", lambda d: pg.problems.append(f"dialog: {d.message}"))  # the hostile name must never run
    open_view(pg, url)
    pg.evaluate(SETTLE)
    return pg


def _fresh(browser, url, open_view):
    pg = _open(browser, url, open_view)
    shown, problems = pg.evaluate(SHOWN), pg.problems + pg.evaluate("window.lotterysiteRuntime.errors")
    pg.context.close()
    return shown, problems


def _accuracy(store: Path, model_id: str, variant: str, severity: int) -> dict[int, float]:
    t = _read(store / "accuracy.arrow")
    t = t.filter(pc.and_(pc.equal(t["model_id"].cast(pa.string()), model_id),
                         pc.equal(t["variant"].cast(pa.string()), variant)))  # fmt: skip
    t = t.filter(pc.and_(pc.equal(t["severity"], severity), pc.greater_equal(t["class_id"], 0)))
    return dict(zip(t["class_id"].to_pylist(), t["accuracy"].to_pylist(), strict=True))


@pytest.mark.browser
def test_default_classes_are_the_lowest_accuracy_or_most_changed(browser, site, many_store, open_view, shot):
    base, views, manifest = site
    store = many_store / "store"
    dense, pruned = (m["model_id"] for m in manifest["models"])
    served = sorted(set(_read(store / "samples.arrow")["label"].to_pylist()))
    # v1 is fog at severity 3 (the slices: clean, then the corruptions by name).
    fog = _accuracy(store, dense, "fog", 3)
    pg = _open(browser, f"{base}{views}/local/#refv=v1.arrow", open_view)
    assert pg.evaluate(CHIPS) == sorted(served, key=lambda c: (fog[c], c))[:8]
    shot(pg, "many_local_default")
    assert pg.problems == []
    pg.context.close()
    # Comparing: the largest change between the reference (dense, clean) and the compared (pruned, fog).
    clean, pruned_fog = _accuracy(store, dense, "clean", 0), _accuracy(store, pruned, "fog", 3)
    change = sorted(served, key=lambda c: (-abs(pruned_fog[c] - clean[c]), clean[c], c))[:8]
    pg = _open(browser, f"{base}{views}/local/#cmp={pruned}&cmpv=v1.arrow", open_view)
    assert pg.evaluate(CHIPS) == change
    assert pg.evaluate(PANEL_LABELS) == sorted(change)  # each panel draws its class's samples
    # A brush on the first panel selects within that panel's class; the link reopens the same selection.
    box = pg.evaluate(BRUSH_BOX, [0, "brush_slot0"])
    pg.evaluate("(y) => window.scrollTo(0, y - 200)", box["y"])
    box = pg.evaluate(BRUSH_BOX, [0, "brush_slot0"])
    pg.mouse.move(box["x"] + box["width"] * 0.03, box["y"] + box["height"] * 0.03)
    pg.mouse.down()
    pg.mouse.move(box["x"] + box["width"] * 0.97, box["y"] + box["height"] * 0.97, steps=5)
    pg.mouse.up()
    pg.wait_for_function("location.hash.includes('sel=')")
    pg.evaluate("async () => { for (const v of window.lotterysiteRuntime.views) if (v.view) await v.view.runAsync(); }")
    pg.evaluate(SETTLE)
    inside = pg.evaluate(
        """(c) => {
      const v = window.lotterysiteRuntime.views[0], b = v.view.signal('brush_slot0');
      const within = (x, r) => x >= Math.min(...r) && x <= Math.max(...r);
      return v.rows.filter(r => r.label === c && Object.keys(b).every(f => within(r[f], b[f]))).length;
    }""",
        change[0],
    )
    # (With a sample or two per class the points sit at the panel's padded corners: the count may be 0.)
    assert pg.inner_text(".ls-info").startswith(f"{inside} samples selected")
    here = pg.evaluate(SHOWN)
    there, problems = _fresh(browser, pg.url, open_view)
    assert not problems and here == there
    assert pg.problems == []
    pg.context.close()


@pytest.mark.browser
def test_picker_finds_a_class_by_typing_and_the_link_keeps_it(browser, site, many_store, open_view, shot):
    base, views, manifest = site
    classes = manifest["dataset"]["classes"]
    pg = _open(browser, f"{base}{views}/local/", open_view)
    before = pg.evaluate(CHIPS)
    strawberry = classes.index("strawberry")
    assert strawberry not in before
    box = pg.locator(".ls-picker input")
    box.focus()  # keyboard only: type part of the name, Enter
    pg.keyboard.type("strawb")
    pg.keyboard.press("Enter")
    pg.evaluate(SETTLE)
    chips = pg.evaluate(CHIPS)
    assert chips[0] == strawberry and chips[1:] == before[:7]
    assert pg.evaluate("window.lotterysiteRuntime.views[0].view.signal('slot0')") == strawberry
    assert strawberry in pg.evaluate(PANEL_LABELS)
    # The panel's header names it on a line of its own (the accuracy on the next: titles are never cut off).
    assert "strawberry" in pg.evaluate(SHOWN)[0]["texts"]
    assert f"classes={strawberry}" in pg.url
    shot(pg, "many_local_picked")
    here = pg.evaluate(SHOWN)
    there, problems = _fresh(browser, pg.url, open_view)
    assert not problems and here == there
    # A chip removes its class (a button, reachable by keyboard); the link follows.
    pg.locator(f".ls-chip[data-class='{before[0]}']").focus()
    pg.keyboard.press("Enter")
    pg.evaluate(SETTLE)
    assert before[0] not in pg.evaluate(CHIPS)
    here = pg.evaluate(SHOWN)
    there, problems = _fresh(browser, pg.url, open_view)
    assert not problems and here == there
    # The hostile class name is text everywhere: a chip shows it, nothing ran, no element came of it.
    hostile = classes.index(MANY_HOSTILE)
    box.fill(MANY_HOSTILE)
    pg.keyboard.press("Enter")
    pg.evaluate(SETTLE)
    assert pg.evaluate(CHIPS)[0] == hostile
    assert pg.locator(f".ls-chip[data-class='{hostile}']").inner_text().startswith(MANY_HOSTILE)
    assert pg.locator("img[src='x']").count() == 0
    assert pg.problems == [] and pg.evaluate("window.lotterysiteRuntime.errors") == []
    pg.context.close()


def _features(many_store: Path, model_id: str, sample_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """float64 features X (the classifier's input) and W, computed here from the model's checkpoint and images."""
    from lotterysite.checkpoint import load_checkpoint
    from lotterysite.data.imagefolder import load_imagefolder

    manifest = _manifest(many_store / "store")
    key = next(m["model_key"] for m in manifest["models"] if m["model_id"] == model_id)
    (path,) = (many_store / "store.work" / "models").glob(f"{key}-*.pt")
    model = load_checkpoint(path)[0].eval()
    images = load_imagefolder(many_store / "data", 32, classes=many_store / "data" / "classes.txt").test
    x = images.images_at(sample_ids).float() / 255
    seen = []
    hook = model.head.register_forward_hook(lambda m, i, o: seen.append(i[0].detach()))
    with torch.no_grad():
        model(x)
    hook.remove()
    return seen[0].double().numpy(), model.head.weight.detach().double().numpy()


@pytest.mark.browser
def test_pcp_axes_are_true_class_confused_classes_length_margin(browser, site, many_store, open_view, shot):
    base, views, manifest = site
    store = many_store / "store"
    classes = manifest["dataset"]["classes"]
    dense = manifest["models"][0]["model_id"]
    strawberry = classes.index("strawberry")
    pg = _open(browser, f"{base}{views}/global/#class={strawberry}", open_view)
    axes = pg.evaluate("window.lotterysiteRuntime.views[0].cfg.axes")
    assert axes == ["angle_true"] + [f"angle_c{r}" for r in range(K)] + ["length", "margin"]
    t = _read(store / "confused.arrow").to_pylist()
    confused = [r["confused_id"] for r in sorted(t, key=lambda r: r["rank"]) if r["class_id"] == strawberry]
    assert pg.evaluate(AXIS_TITLES) == ["strawberry (true)"] + [classes[j] for j in confused] + ["length", "margin"]
    # One shared angle scale over the 1 + K angle axes, length and margin on their own.
    domains = pg.evaluate("""(n) => Array.from({length: n}, (_, k) =>
        window.lotterysiteRuntime.views[0].view.scale('ls_axis_' + k + '_y').domain())""", len(axes))  # fmt: skip
    assert all(d == domains[0] for d in domains[: K + 1]) and domains[-1] != domains[0]
    # The angles on the axes, against float64 numpy from the model's features and W.
    rows = pg.evaluate(f"window.lotterysiteRuntime.views[0].rows.filter(r => r.label === {strawberry})")
    assert rows
    X, W = _features(many_store, dense, [r["sample_id"] for r in rows])
    cos = (X @ W.T) / np.linalg.norm(X, axis=1, keepdims=True) / np.linalg.norm(W, axis=1)
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    for i, r in enumerate(rows):
        assert r["ref_angle_true"] == pytest.approx(angle[i, strawberry], abs=1e-3)
        for k, j in enumerate(confused):
            assert r[f"ref_angle_c{k}"] == pytest.approx(angle[i, j], abs=1e-3)
    shot(pg, "many_global")
    # The class picker in place equals a fresh load of the page's own link.
    pg.locator(".ls-picker input").fill(MANY_HOSTILE)
    pg.keyboard.press("Enter")
    pg.evaluate(SETTLE)
    hostile = classes.index(MANY_HOSTILE)
    assert f"class={hostile}" in pg.url and pg.evaluate(AXIS_TITLES)[0] == MANY_HOSTILE + " (true)"
    here = pg.evaluate(SHOWN)
    there, problems = _fresh(browser, pg.url, open_view)
    assert not problems and here == there
    assert pg.problems == []
    pg.context.close()


@pytest.mark.browser
def test_evaluation_subset_class_found_by_typing(browser, site, open_view):
    base, views, manifest = site
    classes = manifest["dataset"]["classes"]
    pg = _open(browser, f"{base}{views}/evaluation/", open_view)
    # Many classes: the subset menu does not list a thousand classes; the picker finds one.
    assert pg.locator(".ls-controls select >> nth=1").locator("option").count() == 1
    pg.locator(".ls-picker input").fill("dalmat")
    pg.keyboard.press("Enter")
    pg.evaluate(SETTLE)
    dalmatian = classes.index("dalmatian")
    assert pg.locator(".ls-controls select >> nth=1").input_value() == f"class:{dalmatian}"
    assert f"subset=class%3A{dalmatian}" in pg.url
    deltas = pg.evaluate("window.lotterysiteRuntime.views[0].view.data('evaluation').filter(r => r.delta != null)")
    assert deltas  # the subset's accuracy beside each model's
    here = pg.evaluate(SHOWN)
    there, problems = _fresh(browser, pg.url, open_view)
    assert not problems and here == there
    assert pg.problems == []
    pg.context.close()


@pytest.mark.browser
@pytest.mark.parametrize("kind", ["evaluation", "local", "global", "samples", "workspace"])
def test_pages_stay_within_budget(browser, site, kind, open_view):
    base, views, _ = site
    pg = _open(browser, f"{base}{views}/{kind}/", open_view)
    size = pg.evaluate("""() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType(
        'resource')).reduce((a, e) => a + (e.decodedBodySize || e.transferSize || 0), 0)""")
    assert 0 < size <= 5_000_000, size
    assert pg.problems == []
    pg.context.close()


def test_class_names_reach_html_escaped(many_site):
    pages = list(many_site.rglob("*.html"))
    assert pages
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert MANY_HOSTILE not in text and "<img src=x" not in text, page
    # It is there, as JSON with the markup characters escaped, where the views' configs carry the class list.
    assert any("\\u003cimg src=x onerror=alert(1)\\u003e \\u0026" in p.read_text(encoding="utf-8") for p in pages)


def test_picked_classes_and_the_page_budget_are_site_options(many_store, tmp_path, monkeypatch):
    import re

    from click.testing import CliRunner
    from mkdocs.exceptions import PluginError

    from lotterysite.cli import main
    from lotterysite.site import plugin, render

    def slots(*extra) -> set[str]:
        docs = tmp_path / f"docs{len(extra)}"
        docs.mkdir()
        result = CliRunner().invoke(main, ["render", str(many_store / "store"), str(docs), *extra])
        assert result.exit_code == 0, result.output
        (spec,) = docs.glob("lotterysite/data/*/specs/local-single.json")
        return set(re.findall(r'"(slot\d+)"', spec.read_text()))

    assert slots() == {f"slot{i}" for i in range(8)}
    assert slots("--picked-classes", "3") == {"slot0", "slot1", "slot2"}
    bad = CliRunner().invoke(main, ["render", str(many_store / "store"), str(tmp_path), "--picked-classes", "0"])
    assert bad.exit_code != 0 and "--picked-classes" in bad.output
    # mkdocs.yml's plugin options reach the renderer too; a nonsense value is one line naming the option.
    seen = []
    monkeypatch.setattr(plugin, "render", lambda store, options, **kw: seen.append(options) or render.Rendered())
    p = plugin.LotterysitePlugin()
    p.load_config({"store": str(many_store / "store"), "picked_classes": 3, "page_bytes": 2_000_000})
    p.on_config(type("Cfg", (), {"config_file_path": None, "extra_javascript": [], "extra_css": []})())
    assert (seen[0].picked_classes, seen[0].page_bytes) == (3, 2_000_000)
    p.load_config({"store": str(many_store / "store"), "page_bytes": 0})
    with pytest.raises(PluginError, match="plugin options in mkdocs.yml: site option page_bytes = 0: must be"):
        p.on_config(type("Cfg", (), {"config_file_path": None, "extra_javascript": [], "extra_css": []})())


@pytest.mark.browser
def test_local_csv_carries_every_confused_class_angle_from_the_one_angle_file(browser, site, many_store, open_view):
    # Many classes: the angles are one file of every sample (all.arrow), fetched on the CSV click; each value must be
    # the store's own for that sample, model and data set (read here from the geometry file, not the site's data).
    base, views, manifest = site
    pg = _open(browser, f"{base}{views}/local/", open_view)
    with pg.expect_download() as info:
        pg.click("text=Download data (CSV)")
    rows = list(csv.DictReader(Path(info.value.path()).read_text().splitlines()))
    assert len(rows) > 10
    fields = ["angle_true"] + [f"angle_c{r}" for r in range(K)]
    assert all("ref_" + f in rows[0] for f in fields), list(rows[0])
    keys = {m["model_id"]: m["model_key"] for m in manifest["models"]}
    model = rows[0]["ref_model"]
    assert all(r["ref_model"] == model and r["ref_data"] == "clean" for r in rows)
    g = _read(many_store / "store" / "geometry" / f"{keys[model]}.arrow")
    g = g.filter(pc.equal(g["variant"].cast(pa.string()), "clean"))
    store = {r["sample_id"]: r for r in g.to_pylist()}
    for r in rows:
        want = store[int(r["sample_id"])]
        for f in fields:
            assert float(r["ref_" + f]) == pytest.approx(want[f], abs=1e-4), (r["sample_id"], f)
    assert pg.problems == []
    pg.context.close()
