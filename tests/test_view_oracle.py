"""The view oracle (tests/oracle.py) over every view: each mark a view draws is read back from Vega and compared
with the value recomputed from the store's Arrow files. On the session's site store and on a store whose geometry
is set by hand (values far apart on neighbouring axes, so that a line drawn through the wrong point shows)."""

from __future__ import annotations

import json

import numpy as np
import oracle
import pyarrow as pa
import pytest

pytestmark = pytest.mark.browser
M08 = "lenet5/magnitude/0.8"


def hand_set(root, make_store):
    """The site store with the dense model's clean geometry set by hand: sample i of a class sits at 70° or 110° on
    alternating angle axes (a line zig-zags across the whole axis height), at length 5 + i, at margin ±(0.2 + 0.1 i)."""
    from lotterysite.store import write_manifest, write_table

    root = make_store(root)
    path = root / "geometry/lenet5__dense.arrow"
    table = oracle.read_arrow(path)
    rows = table.to_pylist()
    rank: dict[int, int] = {}
    for r in rows:
        if r["variant"] != "clean":
            continue
        i = rank[r["label"]] = rank.get(r["label"], -1) + 1
        for j in range(10):
            r[f"angle_{j}"] = 70.0 + 40.0 * ((i + j) % 2) + 0.25 * i
        r["angle_true"] = r[f"angle_{r['label']}"]
        r["length"] = 5.0 + i
        r["margin"] = (-1) ** i * (0.2 + 0.1 * i)
    meta = {k.decode().removeprefix("lotterysite."): v.decode() for k, v in (table.schema.metadata or {}).items()
            if k != b"lotterysite.schema_version"}  # fmt: skip
    write_table(path, pa.Table.from_pylist(rows, schema=table.schema.remove_metadata()), metadata=meta)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest.pop("schema_version")
    write_manifest(root, manifest)
    return root


@pytest.fixture(scope="module")
def hand(tmp_path_factory, make_store, make_site, serve):
    work = tmp_path_factory.mktemp("hand-set")
    store = hand_set(work / "store", make_store)
    site = make_site(work, store)
    return oracle.Store(store), site, serve(site)


@pytest.fixture(scope="module")
def shared(site_store, site, serve):
    return oracle.Store(site_store), site, serve(site)


def test_hand_set_lines_pass_through_every_axis_at_their_values(hand, new_page, open_view):
    store, site, base = hand
    page = new_page(base)
    for cls in (0, 6):
        open_view(page, base + f"views/lenet5/global/#class={cls}")
        got = oracle.check_global(page, store, site / "data")
        assert got["lines"] >= 30 and got["points"] == got["lines"] * 22, got
    assert page.problems == []


@pytest.mark.parametrize("hash_", ["class=4", f"class=2&cmp={M08}&cmpv=v3.arrow"])
def test_global_view_draws_the_store(shared, new_page, open_view, hash_):
    store, site, base = shared
    page = new_page(base)
    open_view(page, base + "views/lenet5/global/#" + hash_)
    got = oracle.check_global(page, store, site / "data")
    assert got["lines"] > 30 * (2 if "cmp" in hash_ else 1), got
    assert page.problems == []


@pytest.mark.parametrize("path,checks", oracle.every_view(""), ids=lambda v: v if isinstance(v, str) else None)
def test_every_view_draws_the_store(shared, new_page, open_view, path, checks):
    """The MkDocs plugin's build (tests/test_render.py runs the same checks on `lotterysite render`'s)."""
    store, site, base = shared
    got = oracle.check_pages(new_page, open_view, base, store, site / "data", [(path, checks)])
    assert all(n for counts in got.values() for n in counts.values()), got


def test_kde_matches_a_plain_gaussian_sum():
    x = np.array([0.0, 1.0, 2.0, 10.0])
    at = np.array([0.5, 5.0])
    got = oracle.kde(x, at)
    assert got.shape == (2,) and got[0] > got[1] > 0


@pytest.mark.parametrize("hash_", ["", f"cmp={M08}&refv=v3.arrow"])
def test_local_view_draws_the_store(shared, new_page, open_view, hash_):
    store, site, base = shared
    page = new_page(base)
    open_view(page, base + "views/lenet5/local/#" + hash_)
    got = oracle.check_local(page, store, site / "data")
    assert got["panels"] == 10 and got["dots"] >= 300 * (2 if hash_ else 1), got
    # The trajectory menu shows in compare mode only (it does nothing in single mode).
    assert page.locator(".ls-traj").is_visible() == bool(hash_)
    assert page.problems == []


def test_hand_set_local_dots_sit_at_their_values(hand, new_page, open_view):
    store, site, base = hand
    page = new_page(base)
    open_view(page, base + "views/lenet5/local/")
    assert oracle.check_local(page, store, site / "data")["panels"] == 10
    assert page.problems == []


PANEL_OPACITY = """() => {
  // Mean opacity of each class panel's dots (single mode: selected dots are opaque, the rest faded).
  const out = {};
  const walk = (mark) => {
    if (mark.marktype === 'symbol' && mark.role === 'mark' && mark.items.length && mark.items[0].shape === 'circle')
      out[mark.items[0].datum.label] = mark.items.reduce((a, i) => a + i.opacity, 0) / mark.items.length;
    else if (mark.marktype === 'group') mark.items.forEach(g => (g.items || []).forEach(walk));
  };
  walk(window.lotterysiteRuntime.views[0].view.scenegraph().root);
  return out;
}"""


BRUSH_3 = """() => {
  // Viewport box of the Dress panel's brushable scatter (brush_3).
  const v = window.lotterysiteRuntime.views[0].view;
  let f = null;
  const walk = (m, x, y) => {
    if (f) return;
    if (m.name === 'brush_3_brush_bg' && m.group) {
      f = {x: x, y: y, width: m.group.width, height: m.group.height};
      return;
    }
    if (m.marktype === 'group') m.items.forEach(g => (g.items || []).forEach(c => walk(c, x + (g.x || 0),
        y + (g.y || 0))));
  };
  walk(v.scenegraph().root, 0, 0);
  const c = v.container().querySelector('canvas').getBoundingClientRect(), [ox, oy] = v.origin();
  return {x: c.x + ox + f.x, y: c.y + oy + f.y, width: f.width, height: f.height};
}"""


def test_a_brush_in_one_panel_fades_the_unbrushed_panels(shared, new_page, open_view):
    _, _, base = shared
    page = new_page(base)
    open_view(page, base + "views/lenet5/local/")
    before = page.evaluate(PANEL_OPACITY)
    assert len(before) == 10 and all(abs(v - 0.8) < 1e-6 for v in before.values()), before  # all selected
    box = page.evaluate(BRUSH_3)
    page.evaluate("(y) => window.scrollTo(0, y - 200)", box["y"])
    box = page.evaluate(BRUSH_3)  # in the viewport now
    page.mouse.move(box["x"] + box["width"] * 0.05, box["y"] + box["height"] * 0.05)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.95, box["y"] + box["height"] * 0.95, steps=5)
    page.mouse.up()
    page.wait_for_function("location.hash.includes('sel=')")
    # The drag's last pointer events run the view's dataflow after mouse.up returns (under load, the link already
    # held an earlier step's selection): the run in flight, then the page's own updates.
    page.evaluate("async () => { await window.lotterysiteRuntime.views[0].view.runAsync(); "
                  "await window.lotterysiteRuntime.settled(); }")  # fmt: skip
    opacity = page.evaluate(PANEL_OPACITY)
    assert opacity["3"] > 0.5 and all(abs(v - 0.15) < 1e-6 for k, v in opacity.items() if k != "3"), opacity
    assert page.problems == []


@pytest.fixture(scope="module")
def given(tmp_path_factory, make_site, serve):
    """A store named by LOTTERYSITE_ORACLE_STORE (the demo's: `LOTTERYSITE_ORACLE_STORE=store/demo pytest -k
    given`), its site built by the plugin; skipped when unset (CI has no demo store)."""
    import os
    from pathlib import Path

    path = os.environ.get("LOTTERYSITE_ORACLE_STORE")
    if not path:
        pytest.skip("LOTTERYSITE_ORACLE_STORE is not set")
    store = Path(path).resolve()
    site = make_site(tmp_path_factory.mktemp("given"), store)
    return oracle.Store(store), site, serve(site)


def test_every_view_of_a_given_store_draws_it(given, new_page, open_view):
    """Every view of every architecture of the given store, against a pruned model of the same architecture."""
    from lotterysite.site.data import unique_slugs

    store, site, base = given
    views = []
    names = store.manifest["architectures"]
    for name, slug in unique_slugs(names).items():  # the pages' folder names (the site's choice)
        pruned = sorted(m for m, r in store.models.items() if r["arch"] == name and r["method"] != "dense")
        views += oracle.every_view("", slug, pruned[len(pruned) // 2])[2:]
    views = oracle.every_view("")[:2] + views
    got = oracle.check_pages(new_page, open_view, base, store, site / "data", views)
    assert all(n for counts in got.values() for n in counts.values()), got


def brush_boxes(page, names: list[str]) -> dict[str, list[dict]]:
    """The drawn box of each brush named in `names` (view 0): for every `<name>_brush` rect with a size, its bounds
    read back from the scenegraph and inverted through the scales of the unit it is drawn in, {channel: (lo, hi)}
    (a brush on one channel spans the other: that one is left out)."""
    scene = oracle.Scene.read(page)
    out: dict[str, list[dict]] = {}
    for m in scene.marks:
        name = (m["name"] or "").removesuffix("_brush")
        if name not in names or not m["name"].endswith("_brush"):
            continue
        g = scene.groups[m["gid"]]
        for it in (it for it in m["items"] if (it["width"] or 0) > 0 and (it["height"] or 0) > 0):
            read = {}
            for c, a, b in (("x", it["x"], it["x"] + it["width"]), ("y", it["y"], it["y"] + it["height"])):
                try:
                    s = scene.linear(oracle.scale_of(scene, m["gid"], c), g[c])
                except AssertionError:  # no scale on that channel in this unit
                    continue
                read[c] = tuple(sorted(float(v) for v in s.value([a, b])))
            out.setdefault(name, []).append(read)
    return out


@pytest.mark.parametrize("cmp", ["", M08])
def test_a_brush_from_the_link_is_drawn_on_the_single_views(shared, new_page, open_view, cmp):
    """A link's brushes are drawn on the local and global pages: each box, read back from the scenegraph through
    its unit's scales, spans the link's ranges (chosen inside the store's values of the class)."""
    from urllib.parse import quote

    store, site, base = shared
    page = new_page(base)
    open_view(page, base + "views/lenet5/local/")
    state = oracle.hash_state(page)
    served = oracle.served_ids(site / "data")
    geo = store.geometry(state["ref"], *oracle._slice(oracle.page_config(page), state["refv"]))
    rows = [r for i, r in geo.items() if i in served and r["label"] == 3]

    def q(f, a, b):
        return [float(v) for v in np.quantile([r[f] for r in rows], [a, b])]

    local = {"brush_3": [q("length", 0.2, 0.7), q("angle_true", 0.1, 0.9)]}
    extra = f"cmp={quote(cmp, safe='')}&" if cmp else ""
    page = new_page(base)  # a fresh tab: a link that differs in its hash only would not reload the page
    open_view(page, base + f"views/lenet5/local/#{extra}b_local={quote(json.dumps(local))}")
    boxes = brush_boxes(page, [f"brush_{j}" for j in range(10)])
    assert list(boxes) == ["brush_3"] and len(boxes["brush_3"]) == 1, boxes
    got = boxes["brush_3"][0]
    assert np.allclose(got["x"], local["brush_3"][0], rtol=1e-9), (got, local)
    assert np.allclose(got["y"], local["brush_3"][1], rtol=1e-9), (got, local)
    assert int(page.inner_text(".ls-info").split()[0]) > 0
    assert page.problems == []

    glob = {"ax0": [q("angle_0", 0.2, 0.8)], "ax1": [q("angle_1", 0.1, 0.6)]}  # the axes' fields (10 classes)
    page = new_page(base)
    open_view(page, base + f"views/lenet5/global/#{extra}class=3&b_global={quote(json.dumps(glob))}")
    boxes = brush_boxes(page, [f"ax{k}" for k in range(12)])
    assert sorted(boxes) == ["ax0", "ax1"], boxes
    for k, (rng,) in glob.items():
        assert np.allclose(boxes[k][0]["y"], rng, rtol=1e-9), (k, boxes[k], rng)
    assert page.problems == []


def panel_domains(page) -> dict[int, dict[str, tuple]]:
    """Per class panel of the local view: the x (length) and y (angle) domains of its scatter, and the x domain of
    its margin density, as the view's scales hold them."""
    scene = oracle.Scene.read(page)
    out = {}
    for panel in scene.groups.values():
        if not (panel["name"] or "").startswith("ls_panels_concat_") or panel["name"].count("concat") != 1:
            continue
        marks = scene.under(panel["gid"])
        symbols = [m for m in marks if m["type"] == "symbol" and m["role"] == "mark" and m["items"]]
        areas = [m for m in marks if m["type"] == "area" and any(it["defined"] for it in m["items"])]
        margin = [m for m in areas if any(k.endswith("_margin") for it in m["items"] for k in it["datum"] or {})]
        if not symbols or not margin:
            continue
        (j,) = {it["datum"]["label"] for m in symbols for it in m["items"]}
        dom = lambda gid, c: tuple(scene.scales[oracle.scale_of(scene, gid, c)]["domain"])  # noqa: E731
        out[j] = {"length": dom(symbols[0]["gid"], "x"), "angle_true": dom(symbols[0]["gid"], "y"),
                  "margin": dom(margin[0]["gid"], "x")}  # fmt: skip
    return out


def padded(values) -> tuple[float, float]:
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = (hi - lo) * 0.04 or 0.5
    return lo - pad, hi + pad


@pytest.mark.parametrize("cmp", ["", M08])
def test_local_panels_share_their_axis_ranges_unless_asked_per_panel(shared, new_page, open_view, cmp):
    """By default every class panel of the local page has the same length, angle and margin ranges: those of the
    shown classes' samples of both models (from the store, padded by 4 %); with "axis ranges: per panel" (scales=panel
    in the link) each panel has its class's own, and they differ."""
    from urllib.parse import quote

    store, site, base = shared
    hash_ = f"cmp={quote(cmp, safe='')}" if cmp else ""
    page = new_page(base)
    open_view(page, base + "views/lenet5/local/#" + hash_)
    cfg, state = oracle.page_config(page), oracle.hash_state(page)
    keep = oracle.in_sample_ids(site / "data")
    models = [(state["ref"], state["refv"])] + ([(cmp, state["cmpv"])] if cmp else [])
    geo = [[r for i, r in store.geometry(m, *oracle._slice(cfg, v)).items() if i in keep] for m, v in models]
    got = panel_domains(page)
    assert sorted(got) == list(range(10)), got
    want = {f: padded([r[f] for g in geo for r in g]) for f in ("length", "angle_true", "margin")}
    for j, doms in got.items():
        for f, d in doms.items():
            assert np.allclose(d, want[f], rtol=1e-6), (j, f, d, want[f])
    assert page.locator(".ls-controls select").nth(4).input_value() == "shared"

    page.locator(".ls-controls select").nth(4).select_option("panel")
    page.evaluate("window.lotterysiteRuntime.settled()")
    assert oracle.hash_state(page)["scales"] == "panel"
    again = new_page(base)
    open_view(again, page.url)  # the option is in the link
    for p in (page, again):
        got = panel_domains(p)
        for j, doms in got.items():
            for f, d in doms.items():
                own = padded([r[f] for g in geo for r in g if r["label"] == j])
                assert np.allclose(d, own, rtol=1e-6), (j, f, d, own)
        assert len({doms["length"] for doms in got.values()}) == 10  # every class its own range
    assert again.locator(".ls-controls select").nth(4).input_value() == "panel"
    assert page.problems == [] and again.problems == []


def test_single_pages_fetch_the_workspace_slice_files_once_each(shared, new_page, open_view):
    """The local, global and sample pages read the workspace's slice files (each per-sample value is written once,
    tests/test_site.py): per model shown its local slice (`w/`), and the global page the angles of the class it shows
    (`p/`), fetched once per class; the lines then drawn are the store's values (oracle.check_global)."""
    store, site, base = shared
    key = {m["model_id"]: m["model_key"] for m in store.models.values()}
    ref, cmp = "lenet5/dense", M08
    local = {f"data/lenet5/w/{key[ref]}/v0.arrow", f"data/lenet5/w/{key[cmp]}/v3.arrow"}
    angles = {c: {f"data/lenet5/p/{key[ref]}/v0/c{c}.arrow", f"data/lenet5/p/{key[cmp]}/v3/c{c}.arrow"} for c in (2, 6)}
    for kind in ("local", "samples", "global"):
        page = new_page(base)  # a fresh page: nothing cached from the page before
        got: set[str] = set()
        page.on("requestfinished", lambda r, got=got: got.add(r.url[len(base):].split("?")[0])
                if r.url.startswith(base + "data/") and r.url.split("?")[0].endswith(".arrow") else None)  # fmt: skip
        open_view(page, f"{base}views/lenet5/{kind}/#ref={ref}&cmp={cmp}&cmpv=v3.arrow&class=2")
        want = {"data/samples.arrow"} | local | (angles[2] if kind == "global" else set())
        assert got == want, (kind, sorted(got ^ want))
    assert oracle.check_global(page, store, site / "data")["lines"] > 0
    got.clear()
    page.locator(".ls-controls select >> nth=4").select_option("6")  # the class: its two angle files only
    page.evaluate("window.lotterysiteRuntime.settled()")
    assert got == angles[6], sorted(got)
    assert oracle.check_global(page, store, site / "data")["lines"] > 0
    got.clear()
    page.locator(".ls-controls select >> nth=4").select_option("2")  # back to a class seen: nothing fetched again
    page.evaluate("window.lotterysiteRuntime.settled()")
    assert not got, sorted(got)
    assert page.problems == []


def test_workspace_grid_orders_tied_margins_by_sample_id(hand, new_page, open_view):
    """The hand-set margins repeat across classes (sample i of every class at ±(0.2 + 0.1 i)): the workspace's grid
    (oracle.check_ws_grid, numpy over the store) shows a box's samples, then, the box cleared (the rows swapped into
    the live view), every sample's lowest margins with the ties in sample-id order."""
    store, site, base = hand
    page = new_page(base)
    c = [["lenet5/dense", "v0.arrow"]]
    ws = base + "views/lenet5/workspace/#class=3&c=" + oracle.ws_link(c)
    open_view(page, ws)
    cfg = oracle.page_config(page)
    keep = oracle.in_sample_ids(site / "data")
    geo = {i: r for i, r in store.geometry(c[0][0], *oracle._slice(cfg, c[0][1])).items() if i in keep}
    lowest = sorted(r["margin"] for r in geo.values())[: cfg["grid_limit"]]
    assert len(set(lowest)) < len(lowest), "no tied margins among the grid's samples: the test would prove little"
    cls = {i: r for i, r in geo.items() if r["label"] == 3}
    # The box holds the class's lowest margins (its longest samples, at the odd ranks): samples that stay in the
    # grid when the box is cleared, at another rank.
    xs = np.quantile([r["length"] for r in cls.values()], [0.5, 1.0])
    ys = np.quantile([r["angle_true"] for r in cls.values()], [0.0, 1.0])
    b = {"l": {"c": "|".join(c[0]), "cls": 3, "x": [float(v) for v in xs], "y": [float(v) for v in ys]}}
    open_view(page, ws + "&b=" + oracle.ws_link(b))
    assert oracle.ws_state(page)["b"] == b
    want = {i for i, r in cls.items() if xs[0] <= r["length"] <= xs[1] and ys[0] <= r["angle_true"] <= ys[1]}
    assert oracle.check_ws_grid(page, store, site / "data", want)["total"] == len(want) > 0
    rank = {i: k for k, i in enumerate(sorted(geo, key=lambda i: (geo[i]["margin"], i)))}
    boxed = sorted(want, key=rank.get)
    assert any(rank[i] < len(lowest) and rank[i] != k for k, i in enumerate(boxed[: len(lowest)])), "none moves"
    page.locator(".ls-ws-clear").click()
    page.evaluate("window.lotterysiteRuntime.settled()")
    assert oracle.check_ws_grid(page, store, site / "data")["total"] == len(geo)
    assert page.problems == []
