"""The workspace (issue 23) in Chromium: every view linked to every other through the shared selection store, each
linked update compared with a direct computation from the store's Arrow files (pyarrow and numpy, tests/oracle.py);
six combinations as small multiples with the oracle's checks; the URL round trip; the Fig. 7 and Fig. 8 links; a
390 px phone; the keyboard."""

from __future__ import annotations

import base64
import io
import json
from urllib.parse import quote, urljoin

import numpy as np
import oracle
import pyarrow.compute as pc
import pytest
from PIL import Image

pytestmark = pytest.mark.browser
WS = "views/lenet5/workspace/"
EVAL, LOCAL, PCP, GRID = (oracle.WS_VIEWS[k] for k in ("evaluation", "local", "pcp", "grid"))
# Four models on clean data, two on a corruption at severity 3 (v6.arrow: defocus_blur 3 in the fixture's slices).
SIX = [["lenet5/dense", "v0.arrow"], ["lenet5/magnitude/0.5", "v0.arrow"], ["lenet5/magnitude/0.8", "v0.arrow"],
       ["lenet5/random/0.3", "v0.arrow"], ["lenet5/dense", "v6.arrow"],
       ["lenet5/magnitude/0.8", "v6.arrow"]]  # fmt: skip

CELL_BOX = """([index, param, panel]) => {
  // Viewport box of the brushable plot of the facet cell `panel` (its datum) in view `index`.
  const view = window.lotterysiteRuntime.views[index].view;
  let found = null;
  const walk = (mark, x, y, inCell) => {
    if (found) return;
    if (inCell && mark.name === param + '_brush_bg' && mark.group) {
      found = {x, y, width: mark.group.width, height: mark.group.height};
      return;
    }
    if (mark.marktype === 'group') mark.items.forEach(g => {
      const here = inCell || (g.datum && g.datum.panel === panel && /_cell$/.test(mark.name || ''));
      (g.items || []).forEach(m => walk(m, x + (g.x || 0), y + (g.y || 0), here));
    });
  };
  walk(view.scenegraph().root, 0, 0, false);
  const canvas = view.container().querySelector('canvas').getBoundingClientRect();
  const [ox, oy] = view.origin();
  return found && {x: canvas.x + ox + found.x, y: canvas.y + oy + found.y, width: found.width, height: found.height};
}"""
# The combinations in the page's link now (decoded in the page: base64url JSON).
C_NOW = "JSON.parse(atob(new URLSearchParams(location.hash.slice(1)).get('c').replace(/-/g, '+').replace(/_/g, '/')))"


@pytest.fixture(scope="module")
def shared(site_store, site, serve):
    return oracle.Store(site_store), site, serve(site)


def ws_url(base, **state) -> str:
    parts = [f"{k}={oracle.ws_link(v) if k in ('c', 'b') else quote(str(v), safe='')}" for k, v in state.items()]
    return base + WS + "#" + "&".join(parts)


def drag(page, index, param, panel, frac=(0.05, 0.05, 0.7, 0.8), mid=None):
    """Drag a brush over cell `panel` of view `index`; `mid(page)` runs while the button is still down."""
    box = page.evaluate(CELL_BOX, [index, param, panel])
    assert box, f"no brushable cell {panel} in view {index}"
    page.evaluate("(y) => window.scrollTo(0, y - 200)", box["y"])
    box = page.evaluate(CELL_BOX, [index, param, panel])
    x0, y0, x1, y1 = frac
    page.mouse.move(box["x"] + box["width"] * x0, box["y"] + box["height"] * y0)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * x1, box["y"] + box["height"] * y1, steps=8)
    out = mid(page) if mid else None
    page.mouse.up()
    page.evaluate("window.lotterysiteRuntime.settled()")
    return out


def expected_local(page, store, site_data, state) -> set[int]:
    """The samples a local brush selects, from the store: of its class, its combination's length and angle to the
    true class inside its ranges (inclusive)."""
    b = state["b"]["l"]
    model, file = b["c"].split("|")
    rows = store.geometry(model, *oracle._slice(oracle.page_config(page), file))
    keep = oracle.in_sample_ids(site_data)
    (x0, x1), (y0, y1) = sorted(b["x"]), sorted(b["y"])
    return {i for i, r in rows.items() if i in keep and r["label"] == b["cls"] and x0 <= r["length"] <= x1
            and y0 <= r["angle_true"] <= y1}  # fmt: skip


def check_linked(page, store, site_data, want: set[int]):
    """Every view shows the selection `want`: the local and PCP marks' rows, the grid, the table's subset bars
    (subset accuracy recomputed from outcomes.arrow), the count on the page."""
    assert want, "the brush selected nothing: the test would prove little"
    assert oracle.ws_drawn_selection(page, LOCAL, want) == want
    pcp = oracle.ws_drawn_selection(page, PCP, want)
    cls = oracle.ws_state(page)["class"]
    assert pcp == {i for i in want if store_label(store, i) == int(cls)}
    # The PCP's painted lines at their store values, and its pixels: ink on them; on a sparse page every unselected
    # line is painted faint (on a dense page none is: the callers check the blank pixels there).
    ink = oracle.check_ws_pcp(page, store, site_data)
    assert ink["selected"] == len(pcp) * len(oracle.ws_state(page)["c"]), ink
    assert oracle.page_config(page).get("density") or "blank" not in ink, ink
    return ink
    # The grid: the selection's lowest-margin samples in order and its title's count, against numpy over the store.
    oracle.check_ws_grid(page, store, site_data, want)
    assert page.evaluate(oracle_grid_images(), GRID) == min(48, len(want))
    # The grid's thumbnails are the selected samples' own images (the store's bytes), fetched as their files; the
    # page never fetched the thumbnails of samples no grid showed (the first grid: the lowest-margin 48 of all).
    shown, fetched = oracle.check_thumbnails(page, store, GRID)
    assert shown <= want and len(shown) == min(48, len(want))
    assert shown <= fetched and len(fetched) <= 2 * 48 + 8, len(fetched)
    rows = page.evaluate(f"window.lotterysiteRuntime.views[{EVAL}].view.data('evaluation')")
    for r in rows:  # the subset bar and its interval, against float64 numpy over outcomes.arrow
        assert r["subset_accuracy"] is not None, r
        p, lo, hi = oracle.subset_interval(store, want, r["model_id"], r["variant_label"])
        got = [r[f] for f in ("subset_accuracy", "subset_lo", "subset_hi", "delta", "delta_lo", "delta_hi")]
        assert np.allclose(got, [p, lo, hi, p - r["accuracy"], lo - r["accuracy"], hi - r["accuracy"]],
                           rtol=0, atol=1e-9), (r, p, lo, hi)  # fmt: skip
        assert r["subset_lo"] < r["subset_hi"], r
    assert page.inner_text(".ls-ws-info").startswith(f"{len(want)} samples selected")
    checked = oracle.check_evaluation_ws(page, store, want)
    assert checked["deltas"] == len(rows), checked


_LABELS: dict[int, int] = {}


def store_label(store, sample_id: int) -> int:
    if not _LABELS:
        t = store.table("samples.arrow")
        _LABELS.update(zip(t["sample_id"].to_pylist(), t["label"].to_pylist(), strict=True))
    return _LABELS[sample_id]


def oracle_grid_images() -> str:
    return """(index) => {
      let n = 0;
      const walk = (m) => { if (m.marktype === 'image') n += m.items.length;
        else if (m.marktype === 'group') m.items.forEach(g => (g.items || []).forEach(walk)); };
      walk(window.lotterysiteRuntime.views[index].view.scenegraph().root);
      return n;
    }"""


def test_local_brush_links_every_view_during_the_drag(shared, new_page, open_view):
    store, site, base = shared
    page = new_page(base)
    open_view(page, ws_url(base, c=SIX[:3], **{"class": 2}))
    during = drag(page, LOCAL, "ws_lbrush", "p1", mid=lambda p: (
        p.wait_for_function("(window.lotterysiteRuntime.linkLatencies || []).length > 0"),
        p.evaluate(f"window.lotterysiteRuntime.views[{EVAL}].view.data('evaluation')"
                   ".filter(r => r.subset_accuracy != null && r.delta != null).length"),
        oracle.ws_state(p).get("b")))  # fmt: skip
    # Before the button came up, the table already showed the brushed samples' subset bars.
    assert during[1] == 40 and during[2] and "l" in during[2]
    state = oracle.ws_state(page)
    assert state["b"]["l"]["c"] == "lenet5/magnitude/0.5|v0.arrow" and state["b"]["l"]["cls"] == 2
    check_linked(page, store, site / "data", expected_local(page, store, site / "data", state))
    assert page.problems == []


# Thumbnails (data/thumbs/) load `window.slowThumbs` ms late once it is set: a slow network, in the page.
SLOW_THUMBS = """(() => {
  const d = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, 'src');
  Object.defineProperty(HTMLImageElement.prototype, 'src', { configurable: true, get() { return d.get.call(this); },
    set(v) {
      const ms = window.slowThumbs;
      if (ms && String(v).includes('/thumbs/')) setTimeout(() => d.set.call(this, v), ms); else d.set.call(this, v);
    } });
})();"""
# A brush set through the store with thumbnails 1.5 s late: the grid's image items (sample, image loaded) before,
# when the linked update is done, and once the page has settled; the update's and the thumbnails' latencies.
LATE = f"""async (l) => {{
  const LS = window.lotterysiteRuntime, ws = LS.workspaceView, out = [];
  const walk = (m) => {{
    if (m.marktype === 'image') for (const it of m.items) out.push([it.datum.sample_id,
      !!(it.image && it.image.complete && it.image.naturalWidth)]);
    else if (m.marktype === 'group') m.items.forEach((g) => (g.items || []).forEach(walk));
  }};
  const items = () => {{ out.length = 0; walk(LS.views[{GRID}].view.scenegraph().root); return out.slice(); }};
  const before = items();
  window.slowThumbs = 1500;
  LS.linkLatencies = [];
  LS.thumbLatencies = [];
  ws.store.set({{ b: {{ l }} }}, 'test');
  while (!LS.linkLatencies.length) await new Promise((r) => setTimeout(r, 5));
  const now = items();
  await LS.settled();
  await new Promise((r) => setTimeout(r, 50));
  return [before, now, items(), LS.linkLatencies[0], LS.thumbLatencies[0]];
}}"""


def test_the_grids_update_is_drawn_before_its_thumbnails_load(shared, new_page, open_view):
    """A linked update does not wait for the network: the grid shows the selection's samples (their rows, places and
    ranks) as soon as the update is done, and each new thumbnail when it arrives; `settled` waits for them."""
    store, site, base = shared
    page = new_page(base)
    page.add_init_script(SLOW_THUMBS)
    open_view(page, ws_url(base, c=SIX[:3], **{"class": 2}))
    model, file = SIX[1]
    rows = store.geometry(model, *oracle._slice(oracle.page_config(page), file))
    keep = oracle.in_sample_ids(site / "data")
    lengths = sorted(r["length"] for i, r in rows.items() if i in keep and r["label"] == 2)
    box = {"c": "|".join(SIX[1]), "cls": 2, "o": None, "x": [lengths[len(lengths) // 2], lengths[-1]], "y": [-1e9, 1e9]}
    before, now, after, update_ms, thumbs_ms = page.evaluate(LATE, box)
    assert [i for i, _ in now] == [i for i, _ in after]  # the grid's rows were in place when the update was done
    new = {i for i, _ in after} - {i for i, _ in before}
    assert new, "the brush showed no new samples: the test would prove little"
    assert not any(ok for i, ok in now if i in new) and all(ok for _, ok in after), (now, after)
    assert update_ms < 1500 <= thumbs_ms, (update_ms, thumbs_ms)
    oracle.check_ws_grid(page, store, site / "data", expected_local(page, store, site / "data", oracle.ws_state(page)))
    assert page.problems == []


def test_pcp_brush_links_every_view_on_its_own_combination(shared, new_page, open_view):
    store, site, base = shared
    page = new_page(base)
    open_view(page, ws_url(base, c=SIX[:3], **{"class": 4}))
    drag(page, PCP, "ws_pbrush", "q2", frac=(0.02, 0.25, 0.15, 0.65))  # across axes 0 and 1, the middle values
    state = oracle.ws_state(page)
    p = state["b"]["p"]
    assert p["c"] == "lenet5/magnitude/0.8|v0.arrow" and p["cls"] == 4 and set(p["ranges"]) == {"0", "1"}
    cfg = oracle.page_config(page)
    geo = oracle.ws_combos(page, store, site / "data")
    # The stored ranges are the brush's box read on the shared axes (recomputed here from the store's values).
    ext = oracle.ws_pcp_extents(geo, cfg["axes"], 4, [0, 1, 2])
    lo, hi = ext["angle"]
    box = page.evaluate(f"window.lotterysiteRuntime.views[{PCP}].view.signal('ws_pbrush')")
    for r in p["ranges"].values():
        assert np.allclose(sorted(r), [lo + t * (hi - lo) for t in sorted(box["y_lo"])], rtol=1e-9)
    want = {i for i, r in geo[2].items() if r["label"] == 4
            and all(min(v) <= r[cfg["axes"][int(k)]] <= max(v) for k, v in p["ranges"].items())}  # fmt: skip
    assert 0 < len(want) < sum(1 for r in geo[2].values() if r["label"] == 4)  # some of the class, not all
    check_linked(page, store, site / "data", want)
    assert page.problems == []


def test_table_bar_adds_a_combination_and_the_panels_follow(shared, new_page, open_view):
    store, site, base = shared
    page = new_page(base)
    open_view(page, ws_url(base, c=SIX[:1], **{"class": 1}))
    assert len(oracle.ws_state(page)["c"]) == 1
    point = page.evaluate(
        """(index) => {
      const view = window.lotterysiteRuntime.views[index].view;
      let found = null;
      const walk = (m, x, y) => {
        if (found) return;
        if (m.marktype === 'rect' && m.role === 'mark') for (const it of m.items) {
          if (it.datum && it.datum.model_id === 'lenet5/magnitude/0.8' && it.datum.variant_label === 'clean'
              && it.width > 20) { found = {x: x + it.x + it.width / 2, y: y + it.y + it.height / 2}; return; }
        }
        if (m.marktype === 'group') m.items.forEach(g => (g.items || []).forEach(c => walk(c, x + (g.x || 0),
          y + (g.y || 0))));
      };
      walk(view.scenegraph().root, 0, 0);
      const c = view.container().querySelector('canvas').getBoundingClientRect(), [ox, oy] = view.origin();
      return found && {x: c.x + ox + found.x, y: c.y + oy + found.y};
    }""",
        EVAL,
    )
    assert point, "no bar of magnitude 80 % on clean"
    page.evaluate("(y) => window.scrollTo(0, y - 300)", point["y"])
    page.mouse.click(point["x"], point["y"] - page.evaluate("window.scrollY"))
    page.wait_for_function(f"{C_NOW}.length === 2")
    page.evaluate("window.lotterysiteRuntime.settled()")
    assert oracle.ws_state(page)["c"] == [SIX[0], ["lenet5/magnitude/0.8", "v0.arrow"]]
    assert page.locator(".ls-ws-list li").count() == 2
    got = oracle.check_ws_local(page, store, site / "data")
    assert got["panels"] == 2 and got["trajectories"] > 0, got
    assert oracle.check_ws_pcp(page, store, site / "data")["panels"] == 2
    assert page.problems == []


def test_a_sample_picked_with_the_keyboard_is_marked_in_every_view(shared, new_page, open_view):
    store, site, base = shared
    page = new_page(base)
    open_view(page, ws_url(base, c=SIX[:2], **{"class": 0}))
    menu = page.locator(".ls-ws-grid select")
    menu.focus()
    page.keyboard.press("ArrowDown")  # the first sample of the grid (the lowest margin)
    page.wait_for_function("location.hash.includes('focus=')")
    page.evaluate("window.lotterysiteRuntime.settled()")
    sid = int(oracle.ws_state(page)["focus"])
    geo = oracle.ws_combos(page, store, site / "data")
    lowest = min((r["margin"], i) for i, r in geo[0].items())[1]
    assert sid == lowest
    assert page.inner_text(".ls-ws-focus").startswith(f"Sample #{sid}")
    focus = page.evaluate(f"""window.lotterysiteRuntime.views[{LOCAL}].view.data('ws_local')
        .filter(r => r.focus == 1).map(r => r.sample_id)""")
    label = geo[0][sid]["label"]
    if label == 0:  # drawn in the local and PCP panels (one class) only when it is of the class shown
        assert set(focus) == {sid} and oracle.check_ws_local(page, store, site / "data")["focus"] >= 2
    assert page.problems == []


def test_class_menu_redraws_the_panels_and_the_tables_class_subset(shared, new_page, open_view):
    store, site, base = shared
    page = new_page(base)
    open_view(page, ws_url(base, c=SIX[:2]))
    page.locator(".ls-ws-controls select").first.select_option("5")
    page.wait_for_function("location.hash.includes('class=5')")
    page.evaluate("window.lotterysiteRuntime.settled()")
    assert oracle.check_ws_local(page, store, site / "data")["panels"] == 2
    assert oracle.check_ws_pcp(page, store, site / "data")["points"] > 0
    keep = oracle.in_sample_ids(site / "data")
    want = {i for i in keep if store_label(store, i) == 5}
    rows = page.evaluate(f"window.lotterysiteRuntime.views[{EVAL}].view.data('evaluation')")
    for r in rows:
        assert abs(r["subset_accuracy"] - oracle.subset_accuracy(store, want, r["model_id"], r["variant_label"])) < 1e-6
    assert page.problems == []


def test_six_combinations_as_small_multiples_on_shared_scales(shared, new_page, open_view, shot):
    store, site, base = shared
    page = new_page(base)
    open_view(page, ws_url(base, c=SIX, **{"class": 3}))
    local = oracle.check_ws_local(page, store, site / "data")
    assert local["panels"] == 6 and local["trajectories"] > 0, local
    pcp = oracle.check_ws_pcp(page, store, site / "data")
    assert pcp["panels"] == 6, pcp
    shot(page, "workspace_six")
    # Per-panel ranges: every PCP panel on its own combination's ranges, and the local panels' scales differ.
    page.locator(".ls-ws-controls select").nth(2).select_option("panel")
    page.wait_for_function("location.hash.includes('scales=panel')")
    page.evaluate("window.lotterysiteRuntime.settled()")
    assert oracle.check_ws_pcp(page, store, site / "data")["panels"] == 6
    domains = {
        json.dumps(c["scales"].get("ws_local_child_x", {}).get("domain")) for c in oracle.Scene.read(page, LOCAL).cells
    }
    assert len(domains) == 6, domains
    assert page.problems == []


# The PCP's saved picture, and the view's own (Vega's, without the line layer), both at twice the view's size.
PNGS = f"""async () => {{
  const entry = window.lotterysiteRuntime.views[{PCP}];
  return [await entry.image(), await entry.view.toImageURL('png', 2), entry.view.origin(), entry.lines()];
}}"""


def test_the_pcps_saved_picture_holds_its_painted_lines(shared, new_page, open_view):
    """The PCP's "Save chart (PNG)": Vega's picture of the view with the painted lines over it, where they are painted
    (the page's lines are not Vega marks, and Vega's own picture would have none)."""
    store, site, base = shared
    page = new_page(base)
    open_view(page, ws_url(base, c=SIX[:2], **{"class": 3}))
    with page.expect_download() as dl:
        page.locator(".ls-ws-pcp .ls-png").click()
    saved = Image.open(dl.value.path()).convert("RGBA")
    with_lines, bare, (ox, oy), lines = page.evaluate(PNGS)
    png = lambda url: Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGBA")  # noqa: E731
    img, vega = png(with_lines), png(bare)
    assert saved.tobytes() == img.tobytes() and img.size == vega.size
    a, b = np.asarray(img, np.int16), np.asarray(vega, np.int16)
    changed = np.abs(a - b).sum(axis=2) > 0
    assert lines and changed.any()
    for r in lines[:50]:  # each painted segment's middle differs from Vega's picture (the line's ink)
        for p, q in zip(r["points"], r["points"][1:], strict=False):
            x, y = (round(2 * ((p[0] + q[0]) / 2 + ox)), round(2 * ((p[1] + q[1]) / 2 + oy)))
            assert changed[y - 2 : y + 3, x - 2 : x + 3].any(), (r["panel"], r["sample_id"], x, y)
    # Nothing else changed: every changed pixel lies within a line's width of a painted segment.
    segs = oracle._segments(lines)
    ys, xs = np.nonzero(changed)
    pick = np.random.default_rng(0).choice(len(xs), size=min(300, len(xs)), replace=False)
    far = [oracle._distance(np.array([xs[i] / 2 - ox, ys[i] / 2 - oy]), segs) for i in pick]
    assert max(far) < 3, max(far)
    assert page.problems == []


def test_outcome_layout_shows_subsets_b_to_f_of_the_first_two(shared, new_page, open_view):
    store, site, base = shared
    page = new_page(base)
    open_view(page, ws_url(base, c=SIX[:3], layout="outcomes", **{"class": 6}))
    cfg = oracle.page_config(page)
    geo = oracle.ws_combos(page, store, site / "data")
    rows = page.evaluate(f"window.lotterysiteRuntime.views[{LOCAL}].view.data('ws_local')")
    panels = {}
    for r in rows:
        panels.setdefault(r["panel"], set()).add(r["sample_id"])
    assert sorted(panels) == ["p0", "p1", "p2", "p3", "p4"]
    wrong, newly_wrong, newly_right, right = cfg["outcomes"]

    def outcome(i):
        a, b = geo[0][i]["correct"], geo[1][i]["correct"]
        return right if a and b else newly_wrong if a else newly_right if b else wrong

    cls = {i for i, r in geo[0].items() if r["label"] == 6}
    assert panels["p0"] == cls
    for key, o in zip(["p1", "p2", "p3", "p4"], cfg["outcomes"], strict=True):
        assert panels.get(key, set()) == {i for i in cls if outcome(i) == o}, o
    assert page.problems == []


def test_url_round_trip(shared, new_page, open_view):
    store, site, base = shared
    page = new_page(base)
    open_view(page, ws_url(base, c=SIX[:4], layout="class", traj="newly wrong", **{"class": 2}))
    drag(page, LOCAL, "ws_lbrush", "p0")
    page.locator(".ls-ws-grid select").focus()
    page.keyboard.press("ArrowDown")
    page.wait_for_function("location.hash.includes('focus=')")
    page.evaluate("window.lotterysiteRuntime.settled()")
    state = oracle.ws_state(page)
    table = page.evaluate(f"window.lotterysiteRuntime.views[{EVAL}].view.data('evaluation').map(r => r.delta)")
    info, focus = page.inner_text(".ls-ws-info"), page.inner_text(".ls-ws-focus")
    again = new_page(base)
    open_view(again, page.url)  # a reload, or the link shared
    assert oracle.ws_state(again) == state
    assert again.evaluate(f"window.lotterysiteRuntime.views[{EVAL}].view.data('evaluation').map(r => r.delta)") == table
    assert again.inner_text(".ls-ws-info") == info and again.inner_text(".ls-ws-focus") == focus
    assert [again.locator(".ls-ws-controls select").nth(i).input_value() for i in range(4)] == [
        "2",
        "class",
        "shared",
        "newly wrong",
    ]
    check_linked(again, store, site / "data", expected_local(again, store, site / "data", state))
    assert page.problems == [] and again.problems == []


def test_fig7_and_fig8_links_open_their_workspace_states(shared, new_page, open_view):
    store, site, base = shared
    page = new_page(base)
    open_view(page, base + "findings/")
    models = store.table("models.arrow").to_pylist()
    by_method = {}
    for m in models:
        if m["method"] != "dense":
            by_method.setdefault(m["method"], []).append(m)
    method = max(by_method, key=lambda k: (len(by_method[k]), k == "magnitude"))  # the fixture: magnitude 50, 80 %
    want7 = [["lenet5/dense", "v0.arrow"]] + [
        [m["model_id"], "v0.arrow"] for m in sorted(by_method[method], key=lambda m: m["amount"])
    ]
    acc = store.table("accuracy.arrow")
    clean = acc.filter(pc.and_(pc.equal(acc["variant"], "clean"), pc.greater_equal(acc["class_id"], 0)))
    per = {(r["model_id"], r["class_id"]): r["correct"] / r["n"] for r in clean.to_pylist()}
    last = want7[-1][0]
    cls7 = max(range(10), key=lambda j: (abs(per[last, j] - per["lenet5/dense", j]), -j))
    cls8 = min(range(10), key=lambda j: (per["lenet5/dense", j], j))
    for css, combos, cls in (("a.ls-fig7", want7, cls7), ("a.ls-fig8", None, cls8)):
        href = page.get_attribute(css, "href")
        target = new_page(base)
        url = urljoin(base + "findings/", href)
        assert url.startswith(base + WS + "#"), url
        open_view(target, url)
        state = oracle.ws_state(target)
        if combos:
            assert state["c"] == combos, state["c"]
        else:  # Fig. 8: six models where the store has them (the fixture has four), dense first, all clean
            assert len(state["c"]) == min(6, len(models)) and state["c"][0] == ["lenet5/dense", "v0.arrow"]
            assert {m for m, _ in state["c"]} == {m["model_id"] for m in models}
        assert int(state["class"]) == cls
        assert oracle.check_ws_pcp(target, store, site / "data")["panels"] == len(state["c"])
        assert oracle.check_ws_local(target, store, site / "data")["panels"] == len(state["c"])
        assert target.problems == []


def test_phone_width_has_no_horizontal_overflow(shared, browser, open_view, shot):
    _, _, base = shared
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    open_view(page, ws_url(base, c=SIX, **{"class": 1}))
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    for sel in (".ls-ws-list li button", ".ls-ws-addbtn", ".ls-ws-grid select"):
        box = page.locator(sel).first.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, (sel, box)
    counts = page.evaluate("window.lotterysiteRuntime.views.map(v => v.view ? 1 : 0)")
    assert counts == [1, 1, 1, 1]
    shot(page, "workspace_phone")
    context.close()


def test_keyboard_adds_reorders_and_removes_combinations(shared, new_page, open_view):
    _, _, base = shared
    page = new_page(base)
    open_view(page, ws_url(base, c=SIX[:2]))
    model = page.locator(".ls-ws-add select").first
    model.focus()
    page.keyboard.press("End")  # the last model of the menu
    page.keyboard.press("Tab")  # data
    page.keyboard.press("ArrowDown")  # the first corruption
    page.keyboard.press("Tab")  # severity
    page.keyboard.press("Tab")  # the add button
    assert page.evaluate("document.activeElement.textContent") == "Add combination"
    page.keyboard.press("Enter")
    page.wait_for_function(f"{C_NOW}.length === 3")
    added = oracle.ws_state(page)["c"][2]
    cfg = oracle.page_config(page)
    assert added[0] == cfg["models"][-1]["id"] and added[1] == next(
        s["file"]
        for s in cfg["slices"]
        if s["variant"] == sorted({s["variant"] for s in cfg["slices"]} - {"clean"})[0] and s["severity"] == 1
    )
    # Move it up twice with the keyboard: focus stays on its "move up" button.
    page.locator(".ls-ws-list li").nth(2).locator(".ls-up").focus()
    page.keyboard.press("Enter")
    page.wait_for_function(f"{C_NOW}[1][1] !== 'v0.arrow'")
    assert "move up" in page.evaluate("document.activeElement.getAttribute('aria-label')")
    page.keyboard.press("Enter")
    page.wait_for_function(f"{C_NOW}[0][1] !== 'v0.arrow'")
    assert oracle.ws_state(page)["c"][0] == added
    assert page.locator(".ls-ws-list li").first.inner_text().endswith("(reference)") or "(reference)" in (
        page.locator(".ls-ws-list li").first.inner_text()
    )
    # Remove it.
    page.locator(".ls-ws-list li").first.locator(".ls-remove").focus()
    page.keyboard.press("Enter")
    page.wait_for_function(f"{C_NOW}.length === 2")
    assert oracle.ws_state(page)["c"] == SIX[:2]
    page.evaluate("window.lotterysiteRuntime.settled()")
    assert page.evaluate("window.lotterysiteRuntime.errors") == [] and page.problems == []


def test_single_view_pages_link_to_the_workspace_with_their_models(shared, new_page, open_view):
    _, site, base = shared
    page = new_page(base)
    open_view(page, base + "views/lenet5/local/#cmp=lenet5/magnitude/0.8")
    href = page.get_attribute("a:text('→ workspace view')", "href")
    page.click("a:text('→ workspace view')")
    page.wait_for_function(
        "window.lotterysiteRuntime && window.lotterysiteRuntime.workspaceView && window.lotterysiteRuntime.ready"
    )
    page.evaluate("window.lotterysiteRuntime.ready")
    page.evaluate("window.lotterysiteRuntime.settled()")
    assert href.rstrip("/").endswith("workspace")
    assert oracle.ws_state(page)["c"] == [["lenet5/dense", "v0.arrow"], ["lenet5/magnitude/0.8", "v0.arrow"]]
    nav = page.locator("nav.md-nav--primary").inner_text()
    assert "Workspace" in nav
    assert (site / WS / "index.html").is_file()


def test_every_class_layout_shares_its_axes_across_class_panels(shared, new_page, open_view):
    store, site, base = shared
    page = new_page(base)
    open_view(page, ws_url(base, c=SIX[:2], layout="classes"))
    geo = oracle.ws_combos(page, store, site / "data")
    rows = page.evaluate(f"window.lotterysiteRuntime.views[{LOCAL}].view.data('ws_local')")
    panels: dict[str, set] = {}
    for r in rows:
        panels.setdefault(r["panel"], set()).add((r["label"], r["sample_id"]))
    assert len(panels) == 2 * 10
    for key, members in panels.items():  # combination k's panels, class by class: every sample of the class
        k, j = divmod(int(key[1:]), 10)
        assert members == {(j, i) for i, r in geo[k].items() if r["label"] == j}, key
    scene = oracle.Scene.read(page, LOCAL)
    assert "ws_local_x" in scene.scales and not scene.cells  # one x and one y scale for all 20 panels
    lo, hi = scene.scales["ws_local_x"]["domain"]
    lengths = [r["length"] for g in geo for r in g.values()]
    assert lo <= min(lengths) and max(lengths) <= hi
    assert page.problems == []


BRUSH_MARK = """([index, name, panel]) => {
  // Bounds of the brush box drawn in each facet cell of view `index` (cell key -> [x, y, x2, y2], the cell's frame):
  // the `<name>_brush` rect of the cell, where it has a size.
  const view = window.lotterysiteRuntime.views[index].view;
  const out = {};
  const walk = (mark, cell) => {
    if (cell && mark.name === name + '_brush') {
      for (const it of mark.items) {
        if (it.width > 0 && it.height > 0) out[cell] = [it.x, it.y, it.x + it.width, it.y + it.height];
      }
      return;
    }
    if (mark.marktype === 'group') mark.items.forEach(g => {
      const here = cell || (g.datum && /_cell$/.test(mark.name || '') ? g.datum.panel : null);
      (g.items || []).forEach(m => walk(m, here));
    });
  };
  walk(view.scenegraph().root, null);
  return out;
}"""


@pytest.mark.parametrize("scales", ["shared", "panel"])
def test_a_brush_from_the_link_is_drawn_where_its_ranges_are(shared, new_page, open_view, scales):
    """A reloaded or shared link draws its boxes: the local box's rect, read back from the scenegraph and inverted
    through its panel's scales, spans the link's ranges; the PCP box spans the link's axes and, on the first, its
    value range (ranges recomputed from the store). The selection and the link stay those of the link."""
    store, site, base = shared
    page = new_page(base)
    open_view(page, ws_url(base, c=SIX[:3], scales=scales, **{"class": 2}))
    geo = oracle.ws_combos(page, store, site / "data")
    cls = [r for r in geo[1].values() if r["label"] == 2]
    # A box over the middle of combination 2's class-2 dots, and a PCP box over axes 1-2 of combination 1.
    xs = np.quantile([r["length"] for r in cls], [0.2, 0.75])
    ys = np.quantile([r["angle_true"] for r in cls], [0.1, 0.8])
    cfg = oracle.page_config(page)
    ext = oracle.ws_pcp_extents(geo, cfg["axes"], 2, [0, 1, 2] if scales == "shared" else [0])
    lo, hi = ext["angle" if cfg["axes"][1].startswith("angle") else cfg["axes"][1]]
    b = {"l": {"c": "|".join(SIX[1]), "cls": 2, "x": [float(xs[1]), float(xs[0])], "y": [float(v) for v in ys]}}
    local = expected_local(page, store, site / "data", {"b": b})
    # The PCP box: from the lowest of the local box's samples on axes 1 and 2 (combination 1) to their median.
    seen = sorted((geo[0][i][cfg["axes"][k]] - lo) / (hi - lo) for i in local for k in (1, 2))
    t = [seen[0] - 0.01, seen[len(seen) // 2]]
    b["p"] = {"c": "|".join(SIX[0]), "cls": 2, "ranges": {str(k): [lo + v * (hi - lo) for v in t] for k in (1, 2)}}
    if cfg["axes"][2].startswith("angle") != cfg["axes"][1].startswith("angle"):
        pytest.skip("axes 1 and 2 of the fixture are on different ranges")
    url = ws_url(base, c=SIX[:3], b=b, scales=scales, **{"class": 2})
    open_view(page, url)
    scene = oracle.Scene.read(page, LOCAL)
    boxes = page.evaluate(BRUSH_MARK, [LOCAL, "ws_lbrush"])
    assert set(boxes) == {"p1"}, boxes  # drawn in its own panel only
    cell = next(g for g in scene.groups.values() if g["name"] == "ws_local_cell" and g["datum"]["panel"] == "p1")
    if scales == "shared":
        x, y = scene.linear("ws_local_x"), scene.linear("ws_local_y")
    else:
        x, y = (scene.cell_scale(cell, c) for c in "xy")
        x.offset = y.offset = 0.0  # the box's bounds are in the cell's frame
    x0, y0, x1, y1 = boxes["p1"]
    assert np.allclose(sorted(x.value([x0, x1])), sorted(b["l"]["x"]), rtol=1e-9)
    assert np.allclose(sorted(y.value([y0, y1])), sorted(b["l"]["y"]), rtol=1e-9)
    pboxes = page.evaluate(BRUSH_MARK, [PCP, "ws_pbrush"])
    assert set(pboxes) == {"q0"}, pboxes
    pscene = oracle.Scene.read(page, PCP)
    px, py = pscene.linear("ws_pcp_x"), pscene.linear("ws_pcp_y")
    k0, ty0, k1, ty1 = pboxes["q0"]
    ks = sorted(px.value([k0, k1]))
    assert [k for k in range(len(cfg["axes"])) if ks[0] <= k <= ks[1]] == [1, 2], ks
    assert np.allclose(sorted(py.value([ty0, ty1])), t, rtol=1e-9)
    # The selection is the link's: the link unchanged, every view showing the store's samples in both boxes.
    assert oracle.ws_state(page)["b"] == b
    pcp = {i for i, r in geo[0].items() if r["label"] == 2
           and all(min(v) <= r[cfg["axes"][int(k)]] <= max(v) for k, v in b["p"]["ranges"].items())}  # fmt: skip
    assert 0 < len(local & pcp) < len(local)
    check_linked(page, store, site / "data", local & pcp)


# -- more samples than a panel draws as marks: the store's density of all, a labelled subsample, the selection ----
PANEL_MARKS = 12  # the fixture has about 40 samples a class: every panel is dense


def fetched_files(page, base: str) -> dict[str, int]:
    """Record every response of `page` under the site's data/ from now on: {path under the site: body bytes}."""
    got: dict[str, int] = {}
    page.on("requestfinished", lambda r: got.__setitem__(r.url[len(base):].split("?")[0], r.sizes()["responseBodySize"])
            if r.url.startswith(base + "data/") else None)  # fmt: skip
    return got


def quiet(page, got: dict, ms: int = 250) -> None:
    """The page settled (nothing queued or in flight) and `got` no longer growing: Playwright reports a finished
    response to Python a little after the page has its body (seen once under load: two of six files missing)."""
    page.evaluate("window.lotterysiteRuntime.settled()")
    last = -1
    for _ in range(40):
        if len(got) == last:
            return
        last = len(got)
        page.wait_for_timeout(ms)


def test_workspace_fetches_what_its_budget_says_and_a_class_its_own_angles(shared, site_store, new_page, open_view):
    """Six combinations: the page fetches samples.arrow, the table's rows and counts, per combination its local slice
    (no class angles) and the shown class's angle file, and nothing else of the slices; each file's bytes
    are the built file's, within the budget's estimate (budget.workspace_parts, from the columns' widths), and the
    page's bytes within budget.workspace_estimate. A class change fetches that class's angle files and nothing else,
    and the PCP then draws the store's values (float64 from the store's Arrow files)."""
    from lotterysite.site import budget, data, render

    store, site, base = shared
    page = new_page(base)
    everything: dict[str, int] = {}
    page.on("requestfinished", lambda r: everything.__setitem__(r.url, r.sizes()["responseBodySize"]))
    got = fetched_files(page, base)
    open_view(page, ws_url(base, c=SIX, **{"class": 3}))
    cfg = oracle.page_config(page)
    key = {m["id"]: m["key"] for m in cfg["models"]}
    local = {f"data/lenet5/w/{key[m]}/{f}" for m, f in SIX}
    angles = {c: {f"data/lenet5/p/{key[m]}/{f.removesuffix('.arrow')}/c{c}.arrow" for m, f in SIX} for c in (3, 5)}
    tables = {"data/samples.arrow", "data/lenet5/correct.arrow", "data/lenet5/evaluation.arrow"}
    arrows = {k for k in got if k.endswith(".arrow")}
    assert arrows == tables | local | angles[3], sorted(arrows ^ (tables | local | angles[3]))
    assert all(n == (site / k).stat().st_size for k, n in got.items()), "a file's bytes differ from the built file's"
    # The budget's estimate of the same files: exact where it takes the built bytes, within 5 % from the widths.
    st = data.load_store(site_store)
    options = render.SiteOptions()
    cut = budget.served_samples(st, options)
    served, samples = cut.served, cut.samples
    assert samples == (site / "data/samples.arrow").read_bytes()
    parts = budget.workspace_parts(st, served, samples, options, combos=len(SIX))
    assert got["data/samples.arrow"] == parts["samples.arrow"]
    assert got["data/lenet5/evaluation.arrow"] == parts["evaluation.arrow"]
    labels = oracle.read_arrow(site / "data/samples.arrow")["label"].to_numpy()
    one_local, one_angles = data.workspace_slice_bytes(st, options.max_axes, len(labels), int((labels == 3).sum()))
    for name, files, want in (("correct.arrow", {"data/lenet5/correct.arrow"}, parts["correct.arrow"]),
                              ("local slices", local, parts["local slices"]),
                              ("class 3's angles", angles[3], len(SIX) * one_angles)):  # fmt: skip
        n = sum(got[k] for k in files)
        assert abs(n - want) <= 0.05 * want, (name, n, want)
    assert sum(got[k] for k in angles[3]) <= parts["class angles"]  # the largest class's
    assert sum(everything.values()) <= budget.workspace_estimate(st, served, samples, options, combos=len(SIX))
    # A class change: that class's angle files only, and the PCP draws the store's values.
    got.clear()
    page.locator(".ls-ws-controls select").first.select_option("5")
    page.wait_for_function("location.hash.includes('class=5')")
    quiet(page, got)
    assert {k for k in got if k.endswith(".arrow")} == angles[5]
    assert oracle.check_ws_pcp(page, store, site / "data")["panels"] == len(SIX)
    lines = [d for d in page.evaluate(f"window.lotterysiteRuntime.views[{PCP}].view.data('ws_pcp')")
             if d.get("kind") == "line"]  # fmt: skip
    assert {d["label"] for d in lines} == {5}
    keep = oracle.in_sample_ids(site / "data")
    for k, (model, file) in enumerate(SIX):
        rows = store.geometry(model, *oracle._slice(cfg, file))
        mine = [d for d in lines if d["panel"] == f"q{k}"]
        assert {d["sample_id"] for d in mine} == {i for i in keep if rows[i]["label"] == 5}
        want = np.array([rows[d["sample_id"]][cfg["axes"][d["k"]]] for d in mine], np.float64)
        assert np.allclose([d["v"] for d in mine], want, rtol=1e-6, atol=0), k
    # Back to a class shown before: its angles are kept, nothing is fetched again.
    got.clear()
    page.locator(".ls-ws-controls select").first.select_option("3")
    page.wait_for_function("location.hash.includes('class=3')")
    quiet(page, got)
    assert not {k for k in got if k.endswith(".arrow")}, sorted(got)
    assert oracle.check_ws_pcp(page, store, site / "data")["panels"] == len(SIX)
    assert page.problems == []


@pytest.fixture(scope="module")
def dense(site_store, tmp_path_factory, serve):
    """The site of the fixture store built with `panel_marks: 12` (the plugin's option)."""
    from pathlib import Path

    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    repo = Path(__file__).resolve().parents[1]
    work = tmp_path_factory.mktemp("dense")
    text = (repo / "mkdocs.yml").read_text(encoding="utf-8")
    for old, new in (("store: store/demo", f"store: {site_store}\n      panel_marks: {PANEL_MARKS}"),
                     ("docs_dir: site_src", f"docs_dir: {repo / 'site_src'}"),
                     ("site_dir: site", f"site_dir: {work / 'site'}")):  # fmt: skip
        assert old in text, old
        text = text.replace(old, new)
    (work / "mkdocs.yml").write_text(text, encoding="utf-8")
    build(load_config(str(work / "mkdocs.yml")))
    return oracle.Store(site_store), work / "site", serve(work / "site")


def padded(values) -> tuple[float, float]:
    """The axes' padding, written out: 4 % of the range each side (±0.5 for a single value)."""
    lo, hi = float(np.min(values)), float(np.max(values))
    pad = (hi - lo) * 0.04 or 0.5
    return lo - pad, hi + pad


def histogram(values, extent, m) -> np.ndarray:
    """Counts in m equal bins of `extent`, each bin [lo + b w, lo + (b + 1) w), the last closed (float64)."""
    lo, hi = extent
    return np.histogram(np.asarray(values, np.float64), bins=np.linspace(lo, hi, m + 1))[0]


def test_dense_panels_draw_the_store_density_and_a_labelled_subsample(dense, new_page, open_view):
    store, site, base = dense
    page = new_page(base)
    cls = 2
    open_view(page, ws_url(base, c=SIX[:3], **{"class": cls}))
    cfg = oracle.page_config(page)
    nx, ny = cfg["density"]["bins"]
    nb = cfg["density"]["pcp_bins"]
    samples = oracle.read_arrow(site / "data/samples.arrow").to_pylist()
    served = [r["sample_id"] for r in samples if r["in_sample"] and r["label"] == cls]
    dots = {r["sample_id"] for r in samples if r["dot"] and r["label"] == cls}
    assert 0 < len(dots) <= PANEL_MARKS + 1 < len(served)
    assert all(r["in_sample"] for r in samples if r["dot"])
    # The bins span the class's values over every model and variant of the architecture (the store's, float64).
    values = {"length": [], "angle_true": [], "angle": [], "margin": []}
    severities = store.manifest["shipped_severities"]
    variants = [("clean", 0)] + [(c, s) for c in store.manifest["corruptions"] for s in severities]
    for m in store.models:
        for v, s in variants:
            rows = store.geometry(m, v, s)
            for i in served:
                r = rows[i]
                values["length"].append(r["length"])
                values["angle_true"].append(r["angle_true"])
                values["margin"].append(r["margin"])
                values["angle"] += [r[f] for f in cfg["axes"] if f.startswith("angle")]
    ex, ey = padded(values["length"]), padded(values["angle_true"])
    local = page.evaluate(f"window.lotterysiteRuntime.views[{LOCAL}].view.data('ws_local')")
    titles = page.evaluate(f"window.lotterysiteRuntime.views[{LOCAL}].view.signal('ws_titles')")
    for k, (model, file) in enumerate(SIX[:3]):
        rows = store.geometry(model, *oracle._slice(cfg, file))
        want = np.histogram2d([rows[i]["length"] for i in served], [rows[i]["angle_true"] for i in served],
                              bins=[np.linspace(*ex, nx + 1), np.linspace(*ey, ny + 1)])[0]  # fmt: skip
        got = np.zeros((nx, ny))
        for d in (d for d in local if d["panel"] == f"p{k}" and d.get("kind") == "density"):
            got[d["ix"], d["iy"]] = d["n"]
            assert abs(d["x"] - (ex[0] + d["ix"] * (ex[1] - ex[0]) / nx)) < 1e-9
            assert abs(d["y2"] - (ey[0] + (d["iy"] + 1) * (ey[1] - ey[0]) / ny)) < 1e-9
        assert (got == want).all() and got.sum() == len(served), k
        # The marks: every sample of the class (all within the pool here), the subsample (`dot`: the same samples in
        # every panel) drawn, nothing selected yet; the title says so.
        marks = {d["sample_id"]: d["dot"] for d in local if d["panel"] == f"p{k}" and d.get("kind") != "density"}
        assert set(marks) == set(served) and {i for i, dot in marks.items() if dot} == dots
        assert titles[f"p{k}"][-2:] == [f"density of all {len(served)};", f"dots: a uniform random {len(dots)}"]
    # The PCP: per axis the counts of every sample of the class on the shared bins of its group.
    pcp = page.evaluate(f"window.lotterysiteRuntime.views[{PCP}].view.data('ws_pcp')")
    model, file = SIX[1]
    rows = store.geometry(model, *oracle._slice(cfg, file))
    for k, f in enumerate(cfg["axes"]):
        ext = padded(values["angle" if f.startswith("angle") else f])
        want = histogram([rows[i][f] for i in served], ext, nb)
        got = np.zeros(nb)
        for d in (d for d in pcp if d["panel"] == "q1" and d.get("kind") == "density" and d["k"] == k):
            got[d["iy"]] = d["n"]
        assert (got == want).all(), (f, got, want)
    lines = {d["sample_id"]: d["dot"] for d in pcp if d["panel"] == "q1" and d.get("kind") == "line"}
    assert set(lines) == set(served) and {i for i, dot in lines.items() if dot} == dots
    assert oracle.ws_drawn_selection(page, LOCAL, None) == dots == oracle.ws_drawn_selection(page, PCP, None)
    ptitles = page.evaluate(f"window.lotterysiteRuntime.views[{PCP}].view.signal('ws_ptitles')")
    assert ptitles["q1"][-2:] == [f"density of all {len(served)};", f"dots: a uniform random {len(dots)}"]
    # A box selects among every sample, not the marks: the brushed samples outside the subsample are drawn.
    drag(page, LOCAL, "ws_lbrush", "p1", frac=(0.3, 0.3, 0.95, 0.95))
    state = oracle.ws_state(page)
    want = expected_local(page, store, site / "data", state)
    assert want - dots, "the box selected only subsample samples: the test would prove little"
    check_linked(page, store, site / "data", want)
    # A few samples selected: the PCP paints those only, and no pixel of the other lines (where no painted one passes).
    lengths = sorted(r["length"] for i, r in store.geometry(*SIX[1][:1], *oracle._slice(cfg, SIX[1][1])).items()
                     if i in set(served))  # fmt: skip
    box = {"c": "|".join(SIX[1]), "cls": cls, "o": None, "x": [lengths[0], lengths[4]], "y": [-1e9, 1e9]}
    page.evaluate("(l) => window.lotterysiteRuntime.workspaceView.store.set({ b: { l } }, 'test')", box)
    page.evaluate("window.lotterysiteRuntime.settled()")
    few = expected_local(page, store, site / "data", oracle.ws_state(page))
    assert len(few) == 5
    ink = check_linked(page, store, site / "data", few)
    assert ink["blank"] > 100 and ink["selected"] == 15 and "context" not in ink, ink
    assert page.problems == []


def test_dense_panels_on_their_own_ranges_keep_the_store_bins(dense, new_page, open_view):
    """Axis ranges "per panel" on a dense page (issue 23): each PCP panel's axes span its own combination's values
    of the class (padded as the shared ranges are), its density bars at the store's bin edges of the density extent
    placed on that range (cut by the panel's clip); each local panel's scales span its own values, its density cells
    the store's bins cut to them."""
    from lotterysite.site import charts

    store, site, base = dense
    page = new_page(base)
    cls = 2
    open_view(page, ws_url(base, c=SIX[:3], scales="panel", **{"class": cls}))
    cfg = oracle.page_config(page)
    geo = oracle.ws_combos(page, store, site / "data")
    got = oracle.check_ws_pcp(page, store, site / "data")
    assert got["panels"] == 3 and got["density"] > 0, got
    # The ranges differ panel by panel (as printed on the axes), none the density's.
    pcp = page.evaluate(f"window.lotterysiteRuntime.views[{PCP}].view.data('ws_pcp')")
    printed = [
        tuple((d["lo"], d["hi"]) for d in pcp if d.get("kind") == "axis" and d["panel"] == f"q{k}") for k in range(3)
    ]
    assert len(set(printed)) == 3, printed
    dense_ext = oracle.ws_dense_extents(store, cfg, cls, oracle.in_sample_ids(site / "data"))
    for k in range(3):
        assert oracle.ws_pcp_extents(geo, cfg["axes"], cls, [k]) != dense_ext, k
    bars = [d for d in pcp if d.get("kind") == "density"]
    assert any(d["y_lo"] < 0 or d["y_hi"] > 1 for d in bars), "no bar reaches past its panel: the clip is untested"
    unit = charts.workspace_pcp(n_axes=len(cfg["axes"])).to_dict()["spec"]["layer"]
    assert [layer["mark"]["clip"] for layer in unit if "density" in json.dumps(layer.get("transform", []))] == [True]
    assert page.evaluate("window.lotterysiteRuntime.workspace.rangesNote({}, {scales: 'panel'})") == " (own ranges)"
    ptitles = page.evaluate(f"window.lotterysiteRuntime.views[{PCP}].view.signal('ws_ptitles')")
    assert all(ptitles[f"q{k}"][1].endswith(" (own ranges)") for k in range(3)), ptitles  # the panels say so
    # The local panels: each one's scales span its own lengths and angles (its combination's, and the reference's it
    # draws), 6 px in from the plot's edges; its density cells are the store's bins cut to that span.
    nx, ny = cfg["density"]["bins"]
    ext = {"x": None, "y": None}
    values = {"length": [], "angle_true": []}
    served = [i for i, r in geo[0].items() if r["label"] == cls]
    variants = [("clean", 0)] + [
        (c, s) for c in store.manifest["corruptions"] for s in store.manifest["shipped_severities"]
    ]
    for m in store.models:
        for v in variants:
            rows = store.geometry(m, *v)
            for f in values:
                values[f] += [rows[i][f] for i in served]
    ext["x"], ext["y"] = padded(values["length"]), padded(values["angle_true"])
    local = page.evaluate(f"window.lotterysiteRuntime.views[{LOCAL}].view.data('ws_local')")
    scene = oracle.Scene.read(page, LOCAL)
    spans, cut = [], 0
    for k in range(3):
        own = {c: [geo[j][i][f] for j in {0, k} for i in served] for c, f in (("x", "length"), ("y", "angle_true"))}
        own = {c: (min(v), max(v)) for c, v in own.items()}
        spans.append(own)
        cell = next(g for g in scene.groups.values() if g["name"] == "ws_local_cell" and g["datum"]["panel"] == f"p{k}")
        x, y = (scene.cell_scale(cell, c) for c in "xy")
        pad = 6
        assert oracle.near(x.px(own["x"][0]), cell["x"] + pad) and oracle.near(
            x.px(own["x"][1]), cell["x"] + charts.WS_CELL - pad
        )
        assert oracle.near(y.px(own["y"][1]), cell["y"] + pad) and oracle.near(
            y.px(own["y"][0]), cell["y"] + charts.WS_CELL - pad
        )
        cells = [d for d in local if d["panel"] == f"p{k}" and d.get("kind") == "density"]
        assert sum(d["n"] for d in cells) == len(served)
        for d in cells:
            for c, i, m in (("x", d["ix"], nx), ("y", d["iy"], ny)):
                edges = np.linspace(*ext[c], m + 1)
                want = np.clip([edges[i], edges[i + 1]], *own[c])
                assert np.allclose([d[c], d[c + "2"]], want, rtol=1e-12, atol=1e-12), (k, c, d, want)
                cut += not np.allclose(want, [edges[i], edges[i + 1]])
    assert len({json.dumps(s) for s in spans}) == 3 and cut, (spans, cut)
    assert page.problems == []


# A burst of brushes, one a frame, none waited for: each view runs one linked update at a time (a newer brush
# supersedes the ones that came during it), and what the views end on is the last brush's selection.
BURST = """async (boxes) => {
  const LS = window.lotterysiteRuntime, ws = LS.workspaceView, most = {};
  for (const [name, v] of Object.entries(ws.views)) {
    const orig = v.select;
    let now = 0;
    most[name] = 0;
    v.select = function () {
      most[name] = Math.max(most[name], ++now);
      return Promise.resolve(orig.apply(this, arguments)).finally(() => { now--; });
    };
  }
  LS.linkLatencies = [];
  for (const l of boxes) {
    ws.store.set({ b: { l } }, "test");
    await new Promise((r) => requestAnimationFrame(r));
  }
  await LS.settled();
  return [most, LS.linkLatencies.length];
}"""


# The panels' datasets as they are now (every row, every field), one string per view.
DATA_NOW = f"""() => [[{LOCAL}, 'ws_local'], [{PCP}, 'ws_pcp']].map(([i, name]) =>
  JSON.stringify(window.lotterysiteRuntime.views[i].view.data(name)))"""


def test_a_burst_of_brushes_ends_on_the_last_brushs_selection(dense, new_page, open_view):
    store, site, base = dense
    page = new_page(base)
    cls = 2
    open_view(page, ws_url(base, c=SIX[:3], **{"class": cls}))
    model, file = SIX[1]
    rows = store.geometry(model, *oracle._slice(oracle.page_config(page), file))
    keep = oracle.in_sample_ids(site / "data")
    before = page.evaluate(DATA_NOW)
    lengths = np.array([r["length"] for i, r in rows.items() if i in keep and r["label"] == cls])
    q = lambda a: float(np.quantile(lengths, a))  # noqa: E731
    # Grown, shrunk, moved: samples come in and go out of the selection (and of the extra marks) between brushes.
    spans = [(0.1, 0.3), (0.1, 0.9), (0.4, 0.6), (0.0, 0.5), (0.5, 1.0), (0.2, 0.75)]
    boxes = [{"c": "|".join(SIX[1]), "cls": cls, "o": None, "x": [q(a), q(b)], "y": [-1e9, 1e9]} for a, b in spans]
    most, updates = page.evaluate(BURST, boxes)
    assert all(n == 1 for n in most.values()), most  # never two updates of a view at once
    assert 1 <= updates <= len(boxes)
    state = oracle.ws_state(page)
    assert state["b"]["l"]["x"] == boxes[-1]["x"]
    want = expected_local(page, store, site / "data", state)
    samples = oracle.read_arrow(site / "data/samples.arrow").to_pylist()
    dots = {r["sample_id"] for r in samples if r["dot"] and r["label"] == cls}
    assert want - dots and dots - want, "the last box must select samples in and out of the subsample"
    check_linked(page, store, site / "data", want)
    # The brushes changed no data of the panels: the same rows, every field as before (the selection is drawn through
    # lsSel and a signal); each sample once per panel, role and (PCP) axis.
    assert page.evaluate(DATA_NOW) == before
    local = page.evaluate(f"window.lotterysiteRuntime.views[{LOCAL}].view.data('ws_local')")
    marks = [(d["panel"], d["role"], d["sample_id"]) for d in local if d.get("kind") != "density"]
    assert len(marks) == len(set(marks))
    pcp = page.evaluate(f"window.lotterysiteRuntime.views[{PCP}].view.data('ws_pcp')")
    lines = [(d["panel"], d["k"], d["sample_id"]) for d in pcp if d.get("kind") == "line"]
    assert len(lines) == len(set(lines))
    assert page.problems == []


POOL = """(most) => {
  const LS = window.lotterysiteRuntime, m = LS.workspaceView.shared.model, W = LS.workspace;
  const cfg = { density: { pool: most } };
  const pool = W.poolOf(cfg, m.label, m.inSample, m.dot);
  const bits = Uint8Array.from(m.inSample); // every sample selected (a selection holds in-sample ones only)
  return [Array.from(pool), Array.from(m.label), Array.from(m.inSample), Array.from(m.dot),
          W.unmarked(cfg, Object.assign({}, m, { pool }), bits)];
}"""


def test_a_selection_beyond_a_panels_marks_is_counted_on_the_page(dense, new_page, open_view):
    """A dense panel holds its class's subsample and then its other samples up to the pool as marks (drawn only while
    selected); a selected sample beyond the pool is in the density only, and the selection's line says how many."""
    store, site, base = dense
    page = new_page(base)
    open_view(page, ws_url(base, c=SIX[:2], **{"class": 2}))
    most = PANEL_MARKS + 3
    pool, label, in_sample, dot, text = page.evaluate(POOL, most)
    beyond = 0
    for cls in set(label):
        mine = [i for i in range(len(label)) if label[i] == cls and in_sample[i]]
        others = [i for i in mine if not dot[i]]
        room = max(0, most - sum(dot[i] for i in mine))
        want = {i for i in mine if dot[i]} | set(others[:room])
        assert {i for i in mine if pool[i]} == want, cls
        beyond += len(mine) - len(want)
    assert not any(pool[i] for i in range(len(label)) if not in_sample[i])
    assert beyond > 0, "no class has more samples than the pool: the test would prove little"
    assert text == f"; {beyond} of them beyond the {most} marks a panel holds: in its density only"
