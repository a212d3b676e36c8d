"""The view oracle: every mark a view draws, read back from Vega's scenegraph, against the store.

A page is loaded in Chromium; `Scene` reads the marks it drew (absolute positions, colours and the few datum fields
that say which sample or model a mark stands for) and the scales behind them. Each `check_*` function recomputes
what the mark must show from the store's own Arrow files with pyarrow and numpy, never with lotterysite's site code,
and maps it to pixels through the view's scales (domain and range: a scale's *inversion*, the number a reader
reads off the axis). Positions must agree within `PX` pixels; a drawn axis within `TICK_PX` of its scale (Vega
rounds tick positions to whole pixels).

The datum fields are used as identities only (which sample, model, variant, class a mark is of); the value drawn
is judged by the mark's position.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PX = 0.5  # a mark must sit within half a pixel of where its store value maps
TICK_PX = 1.01  # Vega rounds axis tick positions to whole pixels (plus its half-pixel translate)
GRAY, YELLOW, RED = "#8c8c8c", "#e6b800", "#d62728"  # charts.GRAY, YELLOW, RED (the oracle may not import them)

# The datum fields the oracle reads (identities, and the fields a density's output carries).
KEEP = [
    "sample_id", "label", "model_id", "variant_label", "panel", "data", "study", "dimension", "metric", "which",
    "variant", "class_name", "density", "rank", "col", "row", "value", "text", "x", "r", "arch", "method",
    "role", "k", "index", "kind", "dot", "iy",
]  # fmt: skip

SCENE = """([keep, index]) => {
  // Every mark of view `index`: {groups: [{gid, parent, name, x, y, width, height, datum}], marks: [{gid, name,
  // type, role, items: [...]}], scales: {name: {type, domain, range}}}; positions absolute (view coordinates).
  const view = window.lotterysiteRuntime.views[index].view;
  const want = new Set(keep);
  const groups = [], marks = [];
  const pick = (d) => {
    if (!d || typeof d !== 'object') return null;
    const o = {};
    for (const k of Object.keys(d)) {
      if (!(want.has(k) || k.startsWith('v_'))) continue;
      let v = d[k];
      if (typeof v === 'bigint') v = Number(v);
      if (v != null && typeof v === 'object') continue;
      o[k] = v;
    }
    return o;
  };
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const item = (it, ox, oy) => ({
    x: num(it.x) == null ? null : ox + it.x, y: num(it.y) == null ? null : oy + it.y,
    x2: num(it.x2) == null ? null : ox + it.x2, y2: num(it.y2) == null ? null : oy + it.y2,
    width: num(it.width), height: num(it.height), fill: it.fill || null, stroke: it.stroke || null,
    opacity: num(it.opacity), text: it.text == null ? null : [].concat(it.text).join(' '), limit: num(it.limit),
    font: it.font || null, fontSize: num(it.fontSize), fontWeight: it.fontWeight == null ? null : String(it.fontWeight),
    defined: it.defined === false ? false : true, datum: pick(it.datum),
  });
  let next = 0;
  const walkMark = (m, ox, oy, gid) => {
    if (m.marktype === 'group') {
      for (const g of m.items || []) {
        const id = next++;
        const x = ox + (g.x || 0), y = oy + (g.y || 0);
        groups.push({gid: id, parent: gid, name: m.name || null, role: m.role || null, x, y,
                     width: num(g.width), height: num(g.height), datum: pick(g.datum)});
        for (const c of g.items || []) walkMark(c, x, y, id);
      }
      return;
    }
    marks.push({gid, name: m.name || null, type: m.marktype, role: m.role || null,
                items: (m.items || []).map((it) => item(it, ox, oy))});
  };
  walkMark(view.scenegraph().root, 0, 0, -1);
  const scales = {};
  for (const [name, s] of Object.entries(view._runtime.scales)) {
    const f = s.value;
    if (!f || typeof f.domain !== 'function') continue;
    const dom = f.domain();
    scales[name] = {type: f.type, domain: dom.every((d) => typeof d !== 'object') ? dom : null,
                    range: typeof f.range === 'function' ? f.range() : null};
  }
  // Scales of facet cells (a facet with independent scales keeps them in a subcontext per cell): with the
  // first row of the cell's data, which names the cell.
  const cells = [];
  const sub = (ctx) => {
    const own = Object.entries(ctx.scales || {});
    if (own.length) {
      let row = null;
      for (const d of Object.values(ctx.data || {})) {
        const v = d.values && d.values.value;
        if (v && v.length) { row = pick(v[0]); break; }
      }
      const sc = {};
      for (const [name, s] of own) sc[name] = {type: s.value.type, domain: s.value.domain(), range: s.value.range()};
      cells.push({row, scales: sc});
    }
    (ctx.subcontext || []).forEach(sub);
  };
  (view._runtime.subcontext || []).forEach(sub);
  // One string: Playwright validates a structured result value by value (seconds for a large view).
  return JSON.stringify({groups, marks, scales, cells});
}"""


@dataclass
class Linear:
    """A linear scale read from the view: value -> pixel (plus the offset of the group it is drawn in)."""

    domain: tuple[float, float]
    range: tuple[float, float]
    offset: float = 0.0
    log: bool = False

    def px(self, v):
        (d0, d1), (r0, r1) = self.domain, self.range
        v = np.asarray(v, dtype=float)
        if self.log:
            v, d0, d1 = np.log(v), math.log(d0), math.log(d1)
        return self.offset + r0 + (v - d0) / (d1 - d0) * (r1 - r0)

    def value(self, p):
        (d0, d1), (r0, r1) = self.domain, self.range
        return d0 + (np.asarray(p, dtype=float) - self.offset - r0) / (r1 - r0) * (d1 - d0)


def _linear(s: dict, name: str, offset: float) -> Linear:
    assert s["type"] in ("linear", "log"), (name, s["type"])
    return Linear(tuple(s["domain"]), tuple(s["range"]), offset, s["type"] == "log")


@dataclass
class Scene:
    groups: dict[int, dict]
    marks: list[dict]
    scales: dict[str, dict]
    cells: list[dict] = field(default_factory=list)
    children: dict[int, list[int]] = field(default_factory=dict)

    @classmethod
    def read(cls, page, index: int = 0) -> Scene:
        raw = json.loads(page.evaluate(SCENE, [KEEP, index]))
        groups = {g["gid"]: g for g in raw["groups"]}
        children = defaultdict(list)
        for g in raw["groups"]:
            children[g["parent"]].append(g["gid"])
        return cls(groups, raw["marks"], raw["scales"], raw["cells"], dict(children))

    def under(self, gid: int) -> list[dict]:
        """Marks drawn inside group item `gid`, at any depth."""
        todo, inside = [gid], set()
        while todo:
            g = todo.pop()
            inside.add(g)
            todo += self.children.get(g, [])
        return [m for m in self.marks if m["gid"] in inside]

    def named(self, name: str) -> list[dict]:
        """Group items of the group mark `name`."""
        return [g for g in self.groups.values() if g["name"] == name]

    def linear(self, name: str, offset: float = 0.0) -> Linear:
        return _linear(self.scales[name], name, offset)

    def cell_scale(self, cell: dict, channel: str) -> Linear:
        """The `channel` scale of facet cell `cell` (a group item whose datum names its facet value)."""
        (key, value), *_ = cell["datum"].items()
        for c in self.cells:
            if c["row"] and c["row"].get(key) == value:
                names = [n for n in c["scales"] if n.endswith("_" + channel)]
                if names:
                    return _linear(c["scales"][names[0]], names[0], cell["x" if channel == "x" else "y"])
        raise AssertionError(f"no {channel} scale for the cell {key} = {value!r}")

    def axis_ticks(self, gid: int) -> list[tuple[float, float, float]]:
        """(value, x, y) of the ticks of every axis drawn directly in group item `gid`."""
        out = []
        for a in (g for g in self.groups.values() if g["parent"] == gid and g["role"] == "axis"):
            for m in self.marks:
                if m["gid"] == a["gid"] and m["role"] == "axis-tick":
                    out += [(it["datum"]["value"], it["x"], it["y"]) for it in m["items"]]
        return out


def read_arrow(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as f:
        return pa.ipc.open_file(f).read_all()


class Store:
    """The store's own files, read with pyarrow only."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.manifest = json.loads((self.root / "manifest.json").read_text())
        self.models = {m["model_id"]: m for m in read_arrow(self.root / "models.arrow").to_pylist()}
        self._geometry: dict[str, pa.Table] = {}
        self._tables: dict[str, list[dict]] = {}

    def table(self, name: str) -> pa.Table:
        return read_arrow(self.root / name)

    def geometry(self, model_id: str, variant: str, severity: int) -> dict[int, dict]:
        """{sample_id: row} of one model on one variant."""
        key = self.models[model_id]["model_key"]
        if key not in self._geometry:
            self._geometry[key] = read_arrow(self.root / "geometry" / f"{key}.arrow")
        t = self._geometry[key]
        rows = t.filter(pc.and_(pc.equal(t["variant"], variant),
                                        pc.equal(t["severity"], severity))).to_pylist()  # fmt: skip
        return {r["sample_id"]: r for r in rows}

    def accuracy(self, model_id: str, variant: str, severity: int = 0, class_id: int = -1) -> float:
        if "accuracy" not in self._tables:
            self._tables["accuracy"] = self.table("accuracy.arrow").to_pylist()
        hits = [r for r in self._tables["accuracy"] if (r["model_id"], r["variant"], r["severity"], r["class_id"]) ==
                (model_id, variant, severity, class_id)]  # fmt: skip
        assert len(hits) == 1, (model_id, variant, severity, class_id, len(hits))
        return hits[0]["correct"] / hits[0]["n"]


def kde(values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Gaussian kernel density with Scott's bandwidth as vega-statistics estimates it (1.06 min(sd, IQR / 1.34)
    n^-1/5), written out here so that it does not come from the page."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    sd = v.std(ddof=1) if n > 1 else 0.0
    q1, q3 = np.quantile(v, [0.25, 0.75])
    h = (q3 - q1) / 1.34
    s = min(sd, h) or sd or abs(q1) or 1.0
    bw = 1.06 * s * n**-0.2
    z = (np.asarray(at, dtype=float)[:, None] - v[None, :]) / bw
    return np.exp(-0.5 * z**2).sum(axis=1) / (n * bw * math.sqrt(2 * math.pi))


def near(a, b, tol=PX) -> bool:
    return abs(a - b) <= tol


# ---- views ----------------------------------------------------------------------------------------------------


def page_config(page, index: int = 0) -> dict:
    return page.evaluate(f"window.lotterysiteRuntime.views[{index}].cfg")


def served_ids(site_data: Path) -> set[int]:
    """The samples the site serves (its choice; the values drawn for them must be the store's)."""
    return set(read_arrow(site_data / "samples.arrow")["sample_id"].to_pylist())


def _slice(cfg: dict, file: str) -> tuple[str, int]:
    s = next(s for s in cfg["slices"] if s["file"] == file)
    return s["variant"], s["severity"]


def check_densities(scene: Scene, areas: list[dict], values: dict[str, np.ndarray], pos, *, vertical: bool,
                    what: str) -> int:  # fmt: skip
    """Area marks of densities: each point's density is the KDE of the store values of its colour (`values`:
    {fill: array}), drawn at the position `pos` maps its value to (the axis it borders). Returns points checked."""
    n = 0
    for m in areas:
        items = [it for it in m["items"] if it["defined"]]
        if not items:
            continue
        fill = items[0]["fill"]
        assert fill in values, (what, fill, list(values))
        vfield = next(k for k in items[0]["datum"] if k.startswith("v_"))
        at = np.array([it["datum"][vfield] for it in items])
        want = kde(values[fill], at)
        got = np.array([it["datum"]["density"] for it in items])
        assert np.allclose(got, want, rtol=1e-3, atol=1e-6 * max(want.max(), 1e-12)), (what, fill, got[:5], want[:5])
        drawn = np.array([it["y"] if vertical else it["x"] for it in items])
        expect = pos(at)
        worst = np.abs(drawn - expect).max()
        assert worst <= PX, f"{what}: a density point sits {worst:.2f} px off its value on the axis it borders"
        n += len(items)
    return n


def check_global(page, store: Store, site_data: Path) -> dict:
    """The PCP: every line passes through every axis at its sample's store value (within PX), runs on unbroken
    from axis to axis, and each axis's densities are those of the class's store values, on the axis's scale."""
    cfg = page_config(page)
    state = dict(p.split("=", 1) for p in page.evaluate("location.hash.slice(1)").split("&") if "=" in p)
    from urllib.parse import unquote

    state = {k: unquote(v) for k, v in state.items()}
    cls = int(state.get("class", cfg["axis_classes"][0]))
    models = {GRAY: (state["ref"], _slice(cfg, state["refv"]))}
    if state.get("cmp"):
        models[YELLOW] = (state["cmp"], _slice(cfg, state["cmpv"]))
    served = served_ids(site_data)
    rows = {c: {i: r for i, r in store.geometry(m, *v).items() if r["label"] == cls and i in served}
            for c, (m, v) in models.items()}  # fmt: skip
    scene = Scene.read(page)
    axes = cfg["axes"]
    segs = defaultdict(list)  # (colour, sample) -> [(x, y, x2, y2)]
    centres, edges = [], []
    checked = {"points": 0, "density_points": 0}
    for k, f in enumerate(axes):
        (unit,) = scene.named(f"ls_axis_{k}_group")
        aw = unit["width"]
        cx = unit["x"] + aw / 2
        centres.append(cx)
        edges.append(unit["x"] + aw)
        y = scene.linear(f"ls_axis_{k}_y", unit["y"])
        ticks = scene.axis_ticks(unit["gid"])
        assert ticks, f"axis {k} has no ticks"
        for value, tx, ty in ticks:
            assert abs(ty - float(y.px(value))) <= TICK_PX, (k, value, ty, float(y.px(value)))
            assert abs(tx - cx) <= TICK_PX, f"axis {k} drawn at x={tx}, its lines cross at {cx}"
        for rs in rows.values():
            vals = np.array([r[f] for r in rs.values()], dtype=float)
            lo, hi = y.domain
            assert (vals >= lo).all() and (vals <= hi).all(), f"axis {k} ({f}) clips values of class {cls}"
        marks = scene.under(unit["gid"])
        for m in marks:
            if m["type"] != "rule" or m["role"] != "mark":
                continue
            for it in m["items"]:
                c, sid = it["stroke"], it["datum"]["sample_id"]
                assert sid in rows[c], f"axis {k}: a line of sample {sid}, not a served sample of class {cls}"
                want = float(y.px(rows[c][sid][f]))
                # Every segment touches its axis at the sample's value there.
                ends = [(it["x"], it["y"]), (it["x2"], it["y2"])]
                at_axis = [e for e in ends if near(e[0], cx)]
                assert len(at_axis) == 1, (k, sid, ends, cx)
                gap = abs(at_axis[0][1] - want)
                assert gap <= PX, (
                    f"axis {k} ({f}): sample {sid}'s line crosses at y={at_axis[0][1]:.2f}, its value "
                    f"{rows[c][sid][f]:.4g} is at y={want:.2f} ({gap:.1f} px off)"
                )
                segs[c, sid].append((it["x"], it["y"], it["x2"], it["y2"]))
                checked["points"] += 1
        vals = {c: np.array([r[f] for r in rs.values()], dtype=float) for c, rs in rows.items()}
        areas = [m for m in marks if m["type"] == "area"]
        assert len(areas) == len(rows), (k, len(areas))
        checked["density_points"] += check_densities(scene, areas, vals, y.px, vertical=True, what=f"axis {k} ({f})")
    # Unbroken: at every cell edge the line leaving one axis meets the line entering the next.
    for (c, sid), ss in segs.items():
        assert sid in rows[c]
        assert len(ss) == 2 * len(axes) - 2, (c, sid, len(ss))
        for k in range(len(axes) - 1):
            e = edges[k]
            ys = [y2 for x, y, x2, y2 in ss if near(x2, e)] + [y for x, y, x2, y2 in ss if near(x, e)]
            assert len(ys) == 2, (sid, k, ys)
            assert abs(ys[0] - ys[1]) <= PX, f"sample {sid}'s line jumps {abs(ys[0] - ys[1]):.1f} px after axis {k}"
    for c, rs in rows.items():
        drawn = {sid for (cc, sid) in segs if cc == c}
        assert drawn == set(rs), f"lines drawn for {len(drawn)} samples, {len(rs)} served in class {cls}"
    checked["lines"] = len(segs)
    return checked


TEXT_WIDTH = """(items) => {
  // Width in px each text item needs at its font (what Vega's `limit` would cut it to, where it is narrower).
  const ctx = document.createElement('canvas').getContext('2d');
  return items.map((it) => {
    ctx.font = `${it.fontWeight || 'normal'} ${it.fontSize || 11}px ${it.font || 'sans-serif'}`;
    return ctx.measureText(it.text).width;
  });
}"""


def uncut(page, items: list[dict], what: str) -> None:
    """No text item is cut off by its `limit`."""
    widths = page.evaluate(TEXT_WIDTH, items)
    for it, w in zip(items, widths, strict=True):
        assert it["limit"] is None or w <= it["limit"], f"{what}: {it['text']!r} ({w:.0f} px) is cut at {it['limit']}"


def hash_state(page) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(page.evaluate("location.hash.slice(1)")))


def scale_of(scene: Scene, gid: int, channel: str) -> str:
    """Name of the `channel` scale of the unit drawn in group item `gid`: Vega-Lite names a unit's scales after the
    unit (its first layer, or the facet around it), and its marks after the unit too."""
    stems = [m["name"][: -len("_marks")] for m in scene.under(gid) if m["name"] and m["name"].endswith("_marks")]
    for stem in stems:
        for cand in (stem, stem.rsplit("_layer_", 1)[0]):
            if f"{cand}_{channel}" in scene.scales:
                return f"{cand}_{channel}"
    # A facet's shared scales: named after the facet, a prefix of its unit's name.
    prefixes = [n[: -len(channel) - 1] for n in scene.scales if n.endswith("_" + channel)]
    hits = sorted((p for p in prefixes for stem in stems if stem.startswith(p + "_")), key=len)
    if hits:
        return f"{hits[-1]}_{channel}"
    raise AssertionError(f"no {channel} scale for group {gid}: {stems}")


def pct_reads(text: str, x: float) -> bool:
    """`text` ("70.7%") is `x` to one decimal (either way at a tie: the store keeps float32, 0.7075 is 0.70749998)."""
    return text.endswith("%") and abs(float(text[:-1]) - 100 * x) <= 0.05 + 1e-6


def fmt_pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def check_local(page, store: Store, site_data: Path) -> dict:
    """The local view: per class panel, every dot at its sample's (length, angle to the true class) from the store,
    coloured by its prediction (single) or model (compare); trajectories from the reference to the compared dot;
    the three densities those of the class's store values, lined up with the scatter they border; the header's
    accuracies those of accuracy.arrow and its count the served samples of the class, not cut off."""
    cfg = page_config(page)
    state = hash_state(page)
    models = {GRAY: (state["ref"], _slice(cfg, state["refv"]))}
    if state.get("cmp"):
        models[YELLOW] = (state["cmp"], _slice(cfg, state["cmpv"]))
    served = served_ids(site_data)
    geo = {c: {i: r for i, r in store.geometry(m, *v).items() if i in served} for c, (m, v) in models.items()}
    scene = Scene.read(page)
    panels = [g for g in scene.groups.values() if g["name"] and g["name"].startswith("ls_panels_concat_")
              and g["name"].count("concat") == 1]  # fmt: skip
    assert panels, "no class panels"
    checked = defaultdict(int)
    for panel in panels:
        marks = scene.under(panel["gid"])
        symbols = [m for m in marks if m["type"] == "symbol" and m["items"]]
        if not symbols:
            continue
        labels = {it["datum"]["label"] for m in symbols for it in m["items"]}
        assert len(labels) == 1, labels
        (j,) = labels
        rows = {c: {i: r for i, r in g.items() if r["label"] == j} for c, g in geo.items()}
        sgid = symbols[0]["gid"]
        unit = scene.groups[sgid]
        x = scene.linear(scale_of(scene, sgid, "x"), unit["x"])
        y = scene.linear(scale_of(scene, sgid, "y"), unit["y"])
        for rs in rows.values():
            for f, s in (("length", x), ("angle_true", y)):
                v = np.array([r[f] for r in rs.values()])
                assert s.domain[0] <= v.min() and v.max() <= s.domain[1], f"class {j}: {f} outside the panel's axis"
        for value, tx, ty in scene.axis_ticks(sgid):  # the drawn axes are those scales
            assert min(abs(tx - float(x.px(value))), abs(ty - float(y.px(value)))) <= TICK_PX, (j, value, tx, ty)
        for m in symbols:
            fills = {it["fill"] for it in m["items"]}
            compare_cmp = fills == {YELLOW}
            c = YELLOW if compare_cmp else GRAY
            ids = [it["datum"]["sample_id"] for it in m["items"]]
            assert sorted(ids) == sorted(rows[c]), f"class {j}: dots of {len(ids)} samples, {len(rows[c])} served"
            for it in m["items"]:
                r = rows[c][it["datum"]["sample_id"]]
                dx, dy = abs(it["x"] - float(x.px(r["length"]))), abs(it["y"] - float(y.px(r["angle_true"])))
                assert dx <= PX and dy <= PX, f"class {j}: sample {r['sample_id']}'s dot is {dx:.1f}, {dy:.1f} px off"
                if len(models) == 1:
                    assert it["fill"] == (GRAY if r["correct"] else RED), (j, r["sample_id"], it["fill"])
                checked["dots"] += 1
        for m in (m for m in marks if m["type"] == "rule" and m["role"] == "mark"):
            for it in m["items"]:
                a, b = rows[GRAY][it["datum"]["sample_id"]], rows[YELLOW][it["datum"]["sample_id"]]
                want = (x.px(a["length"]), y.px(a["angle_true"]), x.px(b["length"]), y.px(b["angle_true"]))
                got = (it["x"], it["y"], it["x2"], it["y2"])
                assert max(abs(float(p) - q) for p, q in zip(want, got, strict=True)) <= PX, (j, want, got)
                checked["trajectories"] += 1
        # Densities: the length density above the scatter on its x scale, the angle density beside it on its y
        # scale, the margin density below on its own axis.
        areas = [m for m in marks if m["type"] == "area"]
        by_field = defaultdict(list)
        for m in areas:
            items = [it for it in m["items"] if it["defined"]]
            if items:
                by_field[next(k for k in items[0]["datum"] if k.startswith("v_")).rsplit("_", 1)[1]].append(m)
        assert set(by_field) == {"length", "angle", "margin"}, set(by_field)
        vals = {f: {c: np.array([r[col] for r in rs.values()]) for c, rs in rows.items()}
                for f, col in (("length", "length"), ("angle", "angle_true"), ("margin", "margin"))}  # fmt: skip
        checked["density_points"] += check_densities(scene, by_field["length"], vals["length"], x.px, vertical=False,
                                                     what=f"class {j} length density")  # fmt: skip
        checked["density_points"] += check_densities(scene, by_field["angle"], vals["angle"], y.px, vertical=True,
                                                     what=f"class {j} angle density")  # fmt: skip
        mgid = by_field["margin"][0]["gid"]
        mx = scene.linear(scale_of(scene, mgid, "x"), scene.groups[mgid]["x"])
        for value, tx, _ in scene.axis_ticks(mgid):
            assert abs(tx - float(mx.px(value))) <= TICK_PX, (j, value, tx)
        checked["density_points"] += check_densities(scene, by_field["margin"], vals["margin"], mx.px,
                                                     vertical=False, what=f"class {j} margin density")  # fmt: skip
        # The header: class name, accuracy on every evaluation image of the class (accuracy.arrow), samples shown.
        texts = [it for m in marks if m["type"] == "text" and m["role"] == "mark" for it in m["items"]]
        header = " ".join(it["text"] for it in texts)
        assert store.manifest["dataset"]["classes"][j] in header, header
        printed = re.findall(r"\d+(?:\.\d)?%", header)
        assert len(printed) == len(models), header
        for text, (mid, (variant, sev)) in zip(printed, models.values(), strict=True):
            assert pct_reads(text, store.accuracy(mid, variant, sev, j)), (header, mid)
        assert f"{len(rows[GRAY])} shown" in header, header
        uncut(page, texts, f"class {j} header")
        checked["panels"] += 1
    return dict(checked)


def view_index(page, spec: str) -> int:
    """Index of the static view on the page whose spec file is named `spec` (e.g. "curse.json")."""
    specs = page.evaluate("window.lotterysiteRuntime.views.map(v => String(v.cfg.spec || ''))")
    hits = [i for i, s in enumerate(specs) if s.endswith("/" + spec)]
    assert len(hits) == 1, (spec, specs)
    return hits[0]


def top_scale(scene: Scene, gid: int, channel: str) -> Linear:
    """The `channel` scale of a unit (its own, or the view's shared one), offset by the unit's position."""
    g = scene.groups[gid]
    return scene.linear(scale_of(scene, gid, channel), g["x"] if channel == "x" else g["y"])


def tick_fit(scene: Scene, gid: int, channel: str) -> Linear:
    """A cell's scale read off its drawn axis (least squares over the ticks), for facet cells whose own scales
    Vega keeps inside the facet: good to a pixel (tick positions are rounded)."""
    for a in (g for g in scene.groups.values() if g["parent"] == gid and g["role"] == "axis"):
        ticks = [it for m in scene.marks if m["gid"] == a["gid"] and m["role"] == "axis-tick" for it in m["items"]]
        vals = np.array([it["datum"]["value"] for it in ticks], dtype=float)
        pos = np.array([it[channel] for it in ticks], dtype=float)
        if len(ticks) >= 2 and np.ptp(pos) > 0:
            b, a0 = np.polyfit(vals, pos, 1)
            return Linear((0.0, 1.0), (a0, a0 + b))
    raise AssertionError(f"no {channel} axis drawn in group {gid}")


def method_of(m: dict) -> str:
    return m["method"] + ("+retrain" if m.get("retrained") else "")


def method_amount_label(m: dict) -> str:
    return "dense" if m["amount"] == 0 else f"{method_of(m)} {m['amount'] * 100:g}%"


def check_home(page, store: Store, site_data: Path | None = None) -> dict:
    """The headline chart: every point at its model's (fraction pruned, clean or corruption-mean accuracy) from
    models.arrow, in the panel of its architecture and data, and every band from its interval."""
    scene = Scene.read(page, view_index(page, "headline.json"))
    checked = defaultdict(int)
    seen = defaultdict(set)
    for cell in (g for g in scene.groups.values() if g["datum"] and "panel" in g["datum"]):
        x, y = top_scale(scene, cell["gid"], "x"), top_scale(scene, cell["gid"], "y")
        for m in scene.under(cell["gid"]):
            if m["role"] != "mark":
                continue
            for it in m["items"]:
                d = it["datum"]
                if not d or "model_id" not in d:
                    continue
                model = store.models[d["model_id"]]
                col = "clean_accuracy" if d["data"] == "clean" else "corrupted_accuracy"
                assert cell["datum"]["panel"] == f"{model['arch']} · {d['data']}", (cell["datum"], d)
                assert abs(it["x"] - float(x.px(model["amount"]))) <= PX, (d, it["x"], float(x.px(model["amount"])))
                if m["type"] == "area":  # the interval band: y the lower end, y2 the upper
                    lo, hi = float(y.px(model[col + "_lo"])), float(y.px(model[col + "_hi"]))
                    assert abs(it["y"] - lo) <= PX and abs(it["y2"] - hi) <= PX, (d, it["y"], it["y2"], lo, hi)
                else:
                    want = float(y.px(model[col]))
                    assert abs(it["y"] - want) <= PX, f"{d['model_id']} {d['data']}: y={it['y']:.1f}, want {want:.1f}"
                    seen[m["type"]].add((d["model_id"], d["data"]))
                checked[m["type"]] += 1
    every = {(mid, d) for mid in store.models for d in ("clean", "corruption mean")}
    assert seen["symbol"] == every, every ^ seen["symbol"]
    return dict(checked)


def _variant_of(label: str) -> str:
    return "corruption_mean" if label == "corruption mean" else label


def subset_shares(store: Store, ids: set[int], model_id: str, label: str) -> np.ndarray:
    """Per served sample of `ids`, its share of correct predictions of `model_id` in an evaluation-table column
    (clean: 0/1; a corruption: over its severities; the corruption mean: over every corruption and severity), from
    outcomes.arrow, float64."""
    if "outcomes" not in store._tables:
        store._tables["outcomes"] = store.table("outcomes.arrow").to_pylist()
    rows = [r for r in store._tables["outcomes"] if r["model_id"] == model_id and r["sample_id"] in ids]
    sev = len(store.manifest["severities"])
    if label == "clean":
        hits, members = [r["correct_clean"] for r in rows], 1
    elif label == "corruption mean":
        hits, members = [r["robustness"] for r in rows], sev * len(store.manifest["corruptions"])
    else:
        hits, members = [r[f"c_{label}"] for r in rows], sev
    return np.asarray(hits, dtype=np.float64) / members


def subset_accuracy(store: Store, ids: set[int], model_id: str, label: str) -> float:
    """Accuracy of `model_id` on the served samples `ids` for an evaluation-table column, from outcomes.arrow."""
    return float(subset_shares(store, ids, model_id, label).mean())


def subset_interval(store: Store, ids: set[int], model_id: str, label: str) -> tuple[float, float, float]:
    """(accuracy, lo, hi) of the subset `ids` as the table's subset bar and whisker should show it, in float64 numpy:
    the 95 % Wilson score interval at the effective sample size max(n, n p (1 - p) / s^2), s^2 the shares' variance
    (ddof 1; exactly 0 when every share is equal), the rule the page states (method page, lotterysite.js)."""
    v = subset_shares(store, ids, model_id, label)
    n, p = len(v), float(v.mean())
    s2 = float(v.var(ddof=1)) if n > 1 and np.ptp(v) > 0 else 0.0
    m = n if s2 == 0 or p in (0.0, 1.0) else max(n, n * p * (1 - p) / s2)
    z = 1.959964
    centre = (p + z * z / (2 * m)) / (1 + z * z / m)
    half = z / (1 + z * z / m) * np.sqrt(p * (1 - p) / m + z * z / (4 * m * m))
    return p, max(0.0, centre - half), min(1.0, centre + half)


def check_evaluation_ws(page, store: Store, ids: set[int]) -> dict:
    """The workspace's evaluation table (its first view) with the subset `ids` (the selected samples)."""
    return check_evaluation(page, store, None, ids=ids)


def check_ws_evaluation(page, store: Store, site_data: Path) -> dict:
    """The workspace's evaluation table with no brush: its subset bars are the class's (the page's `class`)."""
    cls = int(ws_state(page)["class"])
    labels = dict(zip(*(store.table("samples.arrow")[k].to_pylist() for k in ("sample_id", "label")), strict=True))
    return check_evaluation_ws(page, store, {i for i in in_sample_ids(site_data) if labels[i] == cls})


def check_evaluation(page, store: Store, site_data: Path | None, ids: set[int] | None = None) -> dict:
    """The evaluation table: every bar from 0 to its model's accuracy on its data set (accuracy.arrow), in the row
    its axis labels with the model's method and amount, the printed value the same; with a class subset, every
    subset − overall bar as long as the difference recomputed from outcomes.arrow over the served samples, its
    interval's whisker at the interval recomputed there (`subset_interval`), and the subset's tooltip on every bar
    (`check_subset_tooltips`). Without a subset: no bar, no whisker and no zero line drawn."""
    state = hash_state(page)
    sub = state.get("subset", "")
    if ids is None and sub.startswith("class:"):
        j = int(sub.split(":")[1])
        samples = store.table("samples.arrow").to_pylist()
        ids = {r["sample_id"] for r in samples if r["label"] == j} & served_ids(site_data)
    scene = Scene.read(page)
    # The Δ region's half range (param ls_dmax, set by the loader): ± it spans ± EVAL_DELTA_HALF of the accuracy axis.
    dmax = page.evaluate(
        "(() => { for (const e of window.lotterysiteRuntime.views) { try { return e.view.signal('ls_dmax'); }"
        " catch (err) { /* not the evaluation table */ } } return null; })()"
    )
    checked = defaultdict(int)
    for cell in (g for g in scene.groups.values() if g["datum"] and "variant_label" in g["datum"]):
        label = cell["datum"]["variant_label"]
        x = top_scale(scene, cell["gid"], "x")
        marks = scene.under(cell["gid"])
        ylabels = [it for m in marks if m["role"] == "axis-label" for it in m["items"]]
        for m in (m for m in marks if m["role"] == "mark"):
            for it in m["items"]:
                d = it["datum"]
                if not d or "model_id" not in d:
                    continue
                model = store.models[d["model_id"]]
                acc = store.accuracy(d["model_id"], _variant_of(label))
                if m["type"] == "rect" and it["fill"] not in (GREEN_DELTA, RED):
                    lo, hi = sorted((it["x"], it["x2"]))
                    assert abs(lo - float(x.px(0))) <= PX and abs(hi - float(x.px(acc))) <= PX, (label, d, lo, hi)
                    cy = it["y"] + it["height"] / 2
                    row = min(ylabels, key=lambda t: abs(t["y"] - cy))
                    assert abs(row["y"] - cy) <= TICK_PX and row["text"] == method_amount_label(model), (row, d)
                    checked["bars"] += 1
                elif m["type"] == "text":
                    assert pct_reads(it["text"], acc), (label, d, it["text"], acc)
                    checked["values"] += 1
                elif m["type"] == "rect":  # subset − overall, from the zero line (none without a subset)
                    zero = float(x.px(EVAL_DELTA_ZERO))
                    drawn = sorted((it["x"], it["x"] + it["width"]))
                    if ids is None:
                        assert all(abs(e - zero) <= PX for e in drawn), (label, d, drawn)
                        continue
                    delta = subset_accuracy(store, ids, d["model_id"], label) - acc
                    assert abs(delta) <= dmax + 1e-12, (label, d, delta, dmax)  # no bar is cut at the scale's end
                    end = float(x.px(EVAL_DELTA_ZERO + EVAL_DELTA_HALF * delta / dmax))
                    assert drawn == pytest_approx(sorted((zero, end))), (label, d, delta, drawn, zero, end)
                    if abs(delta) > 1e-9:
                        assert it["fill"] == (GREEN_DELTA if delta >= 0 else RED), (label, d, delta, it["fill"])
                    checked["deltas"] += 1
                elif m["type"] == "rule":
                    checked[_check_delta_rule(store, ids, it, x, label, acc, dmax)] += 1
    if ids is not None:
        checked["tooltips"] = check_subset_tooltips(page, store, ids)
    return dict(checked)


def _check_delta_rule(store: Store, ids: set[int] | None, it: dict, x: Linear, label: str, acc: float,
                      dmax: float) -> str:  # fmt: skip
    """The Δ region's dashed zero line (vertical) or the subset's interval whisker (horizontal, x to x2)."""
    d, zero = it["datum"], float(x.px(EVAL_DELTA_ZERO))
    if it["x2"] is None:
        assert abs(it["x"] - zero) <= PX and it["opacity"] == (0 if ids is None else 0.6), (label, d, it)
        return "zero lines"
    if ids is None:
        assert it["opacity"] == 0, (label, d, it)
        return "whiskers"
    _, lo, hi = subset_interval(store, ids, d["model_id"], label)
    want = sorted(float(x.px(EVAL_DELTA_ZERO + EVAL_DELTA_HALF * (v - acc) / dmax)) for v in (lo, hi))
    assert sorted((it["x"], it["x2"])) == pytest_approx(want) and it["opacity"] == 1, (label, d, it, want)
    return "whiskers"


# The tooltips of the table's bars: (model_id, variant_label, its "subset" line) per accuracy and Δ bar.
TABLE_TOOLTIPS = """(index) => {
  const out = [];
  const walk = (m) => {
    for (const it of m.items || []) {
      if (m.marktype === 'group') (it.items || []).forEach(walk);
      else if (it.tooltip && typeof it.tooltip === 'object' && 'subset' in it.tooltip)
        out.push([it.datum.model_id, it.datum.variant_label, it.tooltip.subset]);
    }
  };
  walk(window.lotterysiteRuntime.views[index].view.scenegraph().root);
  return out;
}"""
SUBSET_TIP = re.compile(r"(-?[\d.]+)% \[([\d.]+)%, ([\d.]+)%\] \(([+\u2212])([\d.]+)% from all\)")


def check_subset_tooltips(page, store: Store, ids: set[int], index: int = 0) -> int:
    """Every bar's tooltip line "subset" of the table in view `index` prints the subset `ids`' accuracy, interval and
    difference from the model's accuracy as recomputed from outcomes.arrow (to a tenth of a point)."""
    n = 0
    for model_id, label, text in page.evaluate(TABLE_TOOLTIPS, index):
        found = SUBSET_TIP.fullmatch(text)
        assert found, (model_id, label, text)
        p, lo, hi = subset_interval(store, ids, model_id, label)
        acc = store.accuracy(model_id, _variant_of(label))
        sign = -1 if found.group(4) == "\u2212" else 1
        got = [float(found.group(k)) for k in (1, 2, 3)] + [sign * float(found.group(5))]
        assert all(abs(g - 100 * w) <= 0.05 + 1e-6 for g, w in zip(got, (p, lo, hi, p - acc), strict=True)), (text, p)
        n += 1
    return n


GREEN_DELTA = "#2ca02c"
EVAL_DELTA_HALF = 0.36  # the difference bars' half range on the accuracy axis (± the view's ls_dmax)
EVAL_DELTA_ZERO = 1.1 + EVAL_DELTA_HALF  # their origin on the accuracy axis


def check_correlations(page, store: Store, site_data: Path | None = None) -> dict:
    """Table 1 as a chart: one cell per model and metric, in the row and column its axis labels name, holding the
    store's r; and the Table 1 on the page: per architecture and method the mean r over its models."""
    scene = Scene.read(page, view_index(page, "correlations.json"))
    corr = {r["model_id"]: r for r in store.table("correlations.arrow").to_pylist()}
    labels = [it for m in scene.marks if m["role"] == "axis-label" for it in m["items"]]
    n = 0
    for m in (m for m in scene.marks if m["role"] == "mark" and m["type"] == "rect"):
        for it in m["items"]:
            d = it["datum"]
            want = corr[d["model_id"]][d["metric"]]
            assert abs(d["r"] - want) <= 1e-6, (d, want)
            cx, cy = it["x"] + it["width"] / 2, it["y"] + it["height"] / 2
            col = min(labels, key=lambda t: abs(t["x"] - cx) + (1e9 if t["y"] < cy else 0))
            row = min(labels, key=lambda t: abs(t["y"] - cy) + (1e9 if t["x"] > cx else 0))
            assert col["text"] == d["metric"].removeprefix("rc_") and row["text"] == d["model_id"], (d, col, row)
            n += 1
    assert n == 4 * len(corr), n  # angle, length and the margin both ways (with the bias, eq. 5 without)
    return {"cells": n}


def check_table1(page, store: Store, site_data: Path | None = None) -> dict:
    """The Table 1 on the findings page: per architecture and method, the mean r over the method's models."""
    models = store.models
    groups = defaultdict(list)
    for r in store.table("correlations.arrow").to_pylist():
        m = models[r["model_id"]]
        groups[m["arch"], method_amount_label({**m, "amount": 1}).rsplit(" ", 1)[0] if m["amount"] else "dense"].append(
            r
        )
    rows = page.eval_on_selector_all(
        "table.ls-table1:not(.ls-home-table1) tbody tr:not(.ls-paper)",
        "trs => trs.map(tr => Array.from(tr.cells).map(td => td.childNodes[0].textContent.trim()))",
    )
    assert len(rows) == len(groups), (rows, list(groups))
    for arch, method, _amounts, *rs in rows:
        members = groups[arch, method]
        for text, k in zip(rs, ("rc_angle", "rc_length", "rc_margin", "rc_margin_eq5"), strict=True):
            want = np.mean([r[k] for r in members])
            assert text == f"{want:+.2f}", (arch, method, k, text, want)
    return {"rows": len(rows)}


def check_curse(page, store: Store, site_data: Path | None = None) -> dict:
    """Fig. 3: every point and line vertex at its study's mean angle for its dimension (curse.arrow), its error bar
    from mean − std to mean + std, the dashed reference at 90°, each study in its own panel, dimension rightwards."""
    scene = Scene.read(page, view_index(page, "curse.json"))
    curse = {(r["study"], r["dimension"]): r for r in store.table("curse.arrow").to_pylist()}
    seen, n = set(), defaultdict(int)
    for cell in (g for g in scene.groups.values() if g["name"] == "ls_curse_cell"):
        y, x = top_scale(scene, cell["gid"], "y"), scene.cell_scale(cell, "x")
        for m in (m for m in scene.under(cell["gid"]) if m["role"] == "mark"):
            xs = []
            for it in m["items"]:
                d = it["datum"]
                r = curse[d["study"], d["dimension"]]
                assert d["study"] == cell["datum"]["study"], (d, cell["datum"])
                lo, hi = (float(y.px(r["angle_mean"] + s * r["angle_std"])) for s in (-1, 1))
                if m["type"] == "rule" and it["y2"] is None:  # the reference line
                    assert abs(it["y"] - float(y.px(90))) <= PX, it
                    continue
                if m["type"] == "rule":  # the error bar
                    assert sorted((it["y"], it["y2"])) == pytest_approx(sorted((lo, hi))), (d, it, lo, hi)
                elif m["type"] == "rect":  # the bar's end ticks
                    mid = it["y"] + it["height"] / 2
                    assert min(abs(mid - lo), abs(mid - hi)) <= PX, (d, mid, lo, hi)
                else:
                    want = float(y.px(r["angle_mean"]))
                    assert abs(it["y"] - want) <= PX, f"{d}: mean angle drawn at {it['y']:.1f}, want {want:.1f}"
                    seen.add((d["study"], d["dimension"]))
                cx = it["x"] + (it["width"] or 0) / 2
                if m["type"] != "rule":  # (the error bar's x is checked with its ticks)
                    assert abs(cx - float(x.px(d["dimension"]))) <= PX, (d, cx, float(x.px(d["dimension"])))
                xs.append((d["dimension"], cx))
                n[m["type"]] += 1
            xs.sort()
            assert all(a[1] < b[1] for a, b in zip(xs, xs[1:], strict=False) if a[0] < b[0]), xs
    assert seen == set(curse), set(curse) ^ seen
    return dict(n)


def pytest_approx(values, tol=PX):
    """A list equal to `values` within `tol` px (pytest.approx, without importing pytest here)."""

    class Approx(list):
        def __eq__(self, other):
            return len(other) == len(self) and all(abs(a - b) <= tol for a, b in zip(self, other, strict=True))

    return Approx(values)


def check_fig10(page, store: Store, site_data: Path | None = None) -> dict:
    """Fig. 10: the two chosen models' relative margin change densities, every point at (x, density) of
    margin_change.arrow, pooled and per corruption, model A blue and model B orange."""
    idx = view_index(page, "margin_change.json")
    a, b = page.evaluate(f"[window.lotterysiteRuntime.views[{idx}].view.signal('mc_a'), "
                         f"window.lotterysiteRuntime.views[{idx}].view.signal('mc_b')]")  # fmt: skip
    scene = Scene.read(page, idx)
    mc = defaultdict(dict)
    for r in store.table("margin_change.arrow").to_pylist():
        mc[r["model_id"], r["variant"]][round(r["x"], 5)] = r["density"]
    colours = {a: "#1f77b4", b: "#ff7f0e"}
    n, drawn = 0, set()
    for m in (m for m in scene.marks if m["role"] == "mark" and m["type"] == "line"):
        if m["items"][0]["datum"].get("variant") == "all":  # the pooled chart
            x, y = top_scale(scene, m["gid"], "x"), top_scale(scene, m["gid"], "y")
            tol = PX
        else:  # a corruption's cell: the shared x scale, its own y scale (read off its axis)
            cell = scene.groups[scene.groups[m["gid"]]["parent"]]
            x, y = scene.linear("ls_fig10_per_x", cell["x"]), scene.cell_scale(cell, "y")
            tol = PX
        for it in m["items"]:
            d = it["datum"]
            want = mc[d["model_id"], d["variant"]][round(d["x"], 5)]
            assert it["stroke"] == colours[d["model_id"]], (d, it["stroke"])
            assert abs(it["x"] - float(x.px(d["x"]))) <= tol, (d, it["x"])
            assert abs(it["y"] - float(y.px(want))) <= tol, f"{d}: y={it['y']:.1f}, density {want} at {y.px(want)}"
            drawn.add((d["model_id"], d["variant"], round(d["x"], 5)))
            n += 1
    want = {(mid, v, x) for (mid, v), xs in mc.items() if mid in (a, b) for x in xs if -2 <= x <= 3}
    assert drawn == want, len(drawn ^ want)
    return {"points": n}


def check_samples(page, store: Store, site_data: Path) -> dict:
    """The sample grid: the served samples of lowest reference margin (store values), in that order row by row."""
    cfg = page_config(page)
    state = hash_state(page)
    served = served_ids(site_data)
    ref = {i: r for i, r in store.geometry(state["ref"], *_slice(cfg, state["refv"])).items() if i in served}
    scene = Scene.read(page)
    images = [it for m in scene.marks if m["type"] == "image" for it in m["items"]]
    assert images
    order = sorted(ref, key=lambda i: (ref[i]["margin"], i))[: len(images)]
    drawn = sorted(images, key=lambda it: (round(it["y"]), it["x"]))
    assert [it["datum"]["sample_id"] for it in drawn] == order, "the grid is not the lowest-margin samples in order"
    texts = [it["text"] for m in scene.marks if m["type"] == "text" for it in m["items"] if it["text"]]
    assert any(t.startswith(f"showing {len(images)} of {len(ref)}") for t in texts), texts
    # The thumbnails drawn are the samples' own, and the page fetched those files and no others.
    shown, fetched = check_thumbnails(page, store)
    assert shown == set(order) and fetched == shown, (sorted(shown), sorted(fetched))
    return {"images": len(images)}


THUMBS = """async (index) => {
  // Every image item of view `index`: its sample, its url, whether the image loaded, and the file's bytes (base64);
  // and every thumbnail file the page fetched before this call (the browser's resource timing).
  const fetched = performance.getEntriesByType('resource').map((e) => e.name).filter((n) => n.includes('/thumbs/'));
  const view = window.lotterysiteRuntime.views[index].view;
  const items = [];
  const walk = (m) => { if (m.marktype === 'image') items.push(...m.items);
    else if (m.marktype === 'group') m.items.forEach((g) => (g.items || []).forEach(walk)); };
  walk(view.scenegraph().root);
  const loaded = (it) => !!(it.image && it.image.complete && it.image.naturalWidth > 0 && it.image.url === it.url);
  for (let t = 0; t < 50 && !items.every(loaded); t++) await new Promise((r) => setTimeout(r, 100));
  const out = [];
  for (const it of items) {
    const buf = new Uint8Array(await (await fetch(it.url)).arrayBuffer());
    let s = '';
    for (const b of buf) s += String.fromCharCode(b);
    out.push({sample_id: it.datum.sample_id, url: it.url, loaded: loaded(it), b64: btoa(s)});
  }
  return JSON.stringify({items: out, fetched});
}"""


def check_thumbnails(page, store: Store, index: int = 0) -> tuple[set[int], set[int]]:
    """Every thumbnail the grid of view `index` draws is its sample's image as the store holds it (the file's bytes
    equal the store's data URI decoded; the image loaded); returns (the samples shown, the samples whose thumbnail
    file the page fetched)."""
    got = json.loads(page.evaluate(THUMBS, index))
    t = store.table("samples.arrow")
    uris = dict(zip(t["sample_id"].to_pylist(), t["thumbnail"].to_pylist(), strict=True))
    for it in got["items"]:
        uri = uris[it["sample_id"]]
        kind, payload = uri.split(";base64,", 1)
        assert it["url"].endswith(f"/thumbs/{it['sample_id']}.{kind.removeprefix('data:image/')}"), it["url"]
        assert it["b64"] == payload, f"the thumbnail of sample {it['sample_id']} is not its image in the store"
        assert it["loaded"], it["url"]
    fetched = {int(u.rsplit("/", 1)[1].split(".")[0]) for u in got["fetched"]}
    return {it["sample_id"] for it in got["items"]}, fetched


M08 = "lenet5/magnitude/0.8"


def every_view(home: str = "", arch: str = "lenet5", cmp: str = M08) -> list[tuple[str, list]]:
    """(page path, checks) for every view of a site's pages; `home` is the page with the headline chart (the
    plugin fills the author's home page, `lotterysite render` writes summary.md); `arch` and `cmp` (a model of it)
    default to the site fixture's."""
    return [
        (home, [check_home]),
        ("findings/", [check_table1, check_correlations, check_curse, check_fig10]),
        (f"views/{arch}/evaluation/#subset=class:3", [check_evaluation]),
        (f"views/{arch}/local/#cmp={cmp}", [check_local]),
        (f"views/{arch}/global/#class=4&cmp={cmp}", [check_global]),
        (f"views/{arch}/samples/#cmp={cmp}", [check_samples]),
        # Six combinations on the fixture; on another store its default combinations.
        (
            f"views/{arch}/workspace/#class=3" + (f"&c={WS_SIX}" if (arch, cmp) == ("lenet5", M08) else ""),
            [check_ws_evaluation, check_ws_local, check_ws_pcp, check_ws_grid],
        ),
    ]


def check_pages(new_page, open_view, base: str, store: Store, site_data: Path, views: list[tuple[str, list]]) -> dict:
    """Open each page in a fresh tab and run its checks; returns what each check counted."""
    out = {}
    for path, checks in views:
        page = new_page(base)
        open_view(page, base + path)
        for check in checks:
            out[f"{path} {check.__name__}"] = check(page, store, site_data)
        assert page.problems == [], (path, page.problems)
    return out


# ---- the workspace (views/<arch>/workspace/) --------------------------------------------------------------------
WS_VIEWS = {"evaluation": 0, "local": 1, "pcp": 2, "grid": 3}  # the workspace's views, in the page's order


def ws_link(value) -> str:
    """An object as the workspace's link holds it: base64url of its JSON (written here, not taken from the site)."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def ws_state(page) -> dict:
    """The workspace's link: c (combinations) and b (brushes) decoded (base64url JSON), the rest as text."""
    state = hash_state(page)
    for k in ("c", "b"):
        if k in state:
            text = state[k]
            state[k] = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    return state


def in_sample_ids(site_data: Path) -> set[int]:
    """The served samples of the stratified sample (the views' densities and selections; no extra exemplar rows)."""
    t = read_arrow(site_data / "samples.arrow")
    return {i for i, s in zip(t["sample_id"].to_pylist(), t["in_sample"].to_pylist(), strict=True) if s}


def ws_combos(page, store: Store, site_data: Path) -> list[dict[int, dict]]:
    """Per combination of the page's link, {sample_id: store geometry row} of the stratified sample."""
    cfg = page_config(page)
    keep = in_sample_ids(site_data)
    return [{i: r for i, r in store.geometry(m, *_slice(cfg, f)).items() if i in keep} for m, f in ws_state(page)["c"]]


def _cell_of(scene: Scene, gid: int) -> dict:
    g = scene.groups[gid]
    while g["name"] not in ("ws_local_cell", "ws_pcp_cell"):
        g = scene.groups[g["parent"]]
    return g


def check_ws_local(page, store: Store, site_data: Path) -> dict:
    """The workspace's local panels (layout "class": panel p<k> is combination k, one class): every dot at its
    sample's (length, angle to the true class) of the combination its role names (reference: the first, else the
    panel's), on the panels' shared scales; every trajectory from the reference's dot to the compared one."""
    state = ws_state(page)
    assert state.get("layout", "class") == "class" and state.get("scales", "shared") == "shared", state
    cls = int(state["class"])
    geo = ws_combos(page, store, site_data)
    scene = Scene.read(page, WS_VIEWS["local"])
    checked = defaultdict(int)
    panels = set()
    for m in (m for m in scene.marks if m["role"] == "mark" and m["type"] in ("symbol", "rule")):
        for it in m["items"]:
            d = it["datum"]
            cell = _cell_of(scene, m["gid"])
            k = int(cell["datum"]["panel"][1:])
            panels.add(k)
            x, y = scene.linear("ws_local_x", cell["x"]), scene.linear("ws_local_y", cell["y"])
            own = geo[0 if d["role"] == "reference" else k][d["sample_id"]]
            assert own["label"] == cls, (d, own["label"], cls)
            want = (float(x.px(own["length"])), float(y.px(own["angle_true"])))
            if m["type"] == "rule":  # a trajectory: from the reference's dot to the panel's
                ref = geo[0][d["sample_id"]]
                start = (float(x.px(ref["length"])), float(y.px(ref["angle_true"])))
                assert near(it["x"], start[0]) and near(it["y"], start[1]), (d, it, start)
                assert near(it["x2"], want[0]) and near(it["y2"], want[1]), (d, it, want)
                checked["trajectories"] += 1
                continue
            assert near(it["x"], want[0]) and near(it["y"], want[1]), (
                f"panel {k}: {d} at {it['x'], it['y']}, want {want}"
            )
            checked["focus" if it["fill"] is None or m["name"].endswith("layer_2_marks") else "dots"] += 1
    assert panels == set(range(len(geo))), (panels, len(geo))
    n = sum(1 for r in geo[0].values() if r["label"] == cls)
    assert checked["dots"] == n * (2 * len(geo) - 1), (checked, n, len(geo))
    return dict(checked, panels=len(panels))


# The workspace panels' opacities (charts.workspace_local, workspace_pcp), drawn as selected and not: a dot (a pool row,
# `dot` 0, is not drawn unless selected), a trajectory, a PCP line.
WS_OPACITY = {"dot": (0.8, 0.07), "trajectory": (0.55, 0.0), "line": (0.45, 0.04)}


def ws_drawn_selection(page, index: int, want: set[int] | None) -> set[int]:
    """The samples that workspace panel view `index` (local or PCP) draws as selected, read from its scenegraph
    (the page changes no data on a brush: the marks' encoded opacity is the selection). Checks every dot, trajectory
    and line against `want` (None: nothing selected, the subsample's dots drawn): a mark of a sample in `want` at
    its selected opacity, any other at its faint one (a pool row's at 0; with a selection on a panel view that draws
    densities, every unselected mark's at 0: the density is the context). Returns the samples with such marks."""
    scene = Scene.read(page, index)
    shown: set[int] = set()
    dense = any(it["datum"].get("kind") == "density" for m in scene.marks if m["type"] == "rect" for it in m["items"])
    if index == WS_VIEWS["pcp"]:
        return _ws_drawn_lines(page, index, want, dense)
    for m in (m for m in scene.marks if m["role"] == "mark" and m["type"] in ("symbol", "rule")):
        name = m["name"] or ""
        if name.endswith("layer_3_marks"):  # the focus layer (local: the ring; PCP: the bold line): not the selection
            continue
        if m["type"] == "symbol":  # local: the dots
            kinds = [("dot", it) for it in m["items"]]
        elif name.endswith("layer_2_marks"):  # local: the trajectories; PCP: the lines' rules
            kinds = [("trajectory" if "ws_local" in name else "line", it) for it in m["items"]]
        else:
            continue
        for kind, it in kinds:
            d = it["datum"]
            if d.get("sample_id") is None:
                continue
            on = d["dot"] == 1 if want is None else d["sample_id"] in want
            selected, faint = WS_OPACITY[kind]
            expect = selected if on else faint if d["dot"] == 1 and not (dense and want is not None) else 0.0
            assert it["opacity"] is not None and abs(it["opacity"] - expect) < 1e-9, (kind, d, it["opacity"], expect)
            if on:
                shown.add(d["sample_id"])
    return shown


# The workspace PCP's lines are painted by the page on a canvas over the Vega view (lines.js), not as Vega marks:
# what it painted (every line's points in view coordinates, its opacity and pass), and the line rows of its dataset.
WS_LINES = """(i) => JSON.stringify(window.lotterysiteRuntime.views[i].lines())"""
WS_LINE_ROWS = """(i) => JSON.stringify(window.lotterysiteRuntime.views[i].view.data('ws_pcp')
  .filter((d) => d.kind === 'line').map((d) => [d.panel, d.sample_id, d.dot]))"""


def ws_lines(page, index: int) -> list[dict]:
    return json.loads(page.evaluate(WS_LINES, index))


def _ws_drawn_lines(page, index: int, want: set[int] | None, dense: bool) -> set[int]:
    """ws_drawn_selection for the PCP: every line of the dataset painted at the opacity its selection state gives
    (WS_OPACITY "line"; a line at opacity 0 is not painted), and no line painted twice in a pass."""
    rows = {(p, sid): dot for p, sid, dot in json.loads(page.evaluate(WS_LINE_ROWS, index))}
    painted = defaultdict(list)
    for r in ws_lines(page, index):
        if r["pass"] != "focus":
            painted[(r["panel"], r["sample_id"])].append(r["alpha"])
    selected, faint = WS_OPACITY["line"]
    shown: set[int] = set()
    for key, dot in rows.items():
        on = dot == 1 if want is None else key[1] in want
        expect = selected if on else faint if dot == 1 and want is not None and not dense else 0.0
        got = painted.pop(key, [])
        assert got == ([expect] if expect else []), ("line", key, dot, got, expect)
        if on:
            shown.add(key[1])
    assert not painted, f"lines painted that the dataset does not hold: {sorted(painted)[:5]}"
    return shown


# The pixels of the PCP's line layer: that it lies exactly over the Vega view's canvas, and the highest alpha in the
# 3 x 3 device pixels around each point (view coordinates: the view's origin and pixel ratio applied here).
WS_INK = """([i, points]) => {
  const entry = window.lotterysiteRuntime.views[i], view = entry.view, layer = entry.layer;
  const drawn = view.container().querySelector('canvas:not(.ls-lines)');
  const a = layer.getBoundingClientRect(), b = drawn.getBoundingClientRect();
  const over = ['left', 'top', 'width', 'height'].every((k) => Math.abs(a[k] - b[k]) < 0.01);
  const ratio = layer.width / a.width, [ox, oy] = view.origin();
  const px = layer.getContext('2d').getImageData(0, 0, layer.width, layer.height).data;
  const alpha = points.map(([x, y]) => {
    const cx = Math.round((x + ox) * ratio), cy = Math.round((y + oy) * ratio);
    let most = 0;
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
      const u = cx + dx, v = cy + dy, inside = u >= 0 && v >= 0 && u < layer.width && v < layer.height;
      if (inside) most = Math.max(most, px[4 * (v * layer.width + u) + 3]);
    }
    return most;
  });
  return {over, ratio, size: [layer.width, layer.height, drawn.width, drawn.height], alpha};
}"""


def _segments(lines: list[dict]) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for r in lines:
        pts = r["points"]
        out += [(np.array(a, float), np.array(b, float)) for a, b in zip(pts, pts[1:], strict=False) if a and b]
    return out


def _distance(p: np.ndarray, segs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    a = np.array([s[0] for s in segs]).reshape(-1, 2)
    d = np.array([s[1] - s[0] for s in segs]).reshape(-1, 2)
    t = np.clip(((p - a) * d).sum(1) / np.maximum((d * d).sum(1), 1e-12), 0, 1)
    return float(np.min(np.hypot(*(a + t[:, None] * d - p).T))) if len(segs) else math.inf


def check_ws_ink(page, index: int, geo_points: dict[tuple[str, int], list]) -> dict:
    """The painted pixels: ink at the middle of every painted line's segments, and none at the middle of a segment of
    a line not painted (`geo_points`: every line's points, from the store) more than 4 px from any painted one."""
    lines = ws_lines(page, index)
    segs = _segments(lines)
    mids = [((a + b) / 2).tolist() for a, b in segs]
    painted = {(r["panel"], r["sample_id"]) for r in lines}
    blank = []
    for key, pts in geo_points.items():
        if key in painted:
            continue
        for a, b in zip(pts, pts[1:], strict=False):
            m = (np.array(a, float) + np.array(b, float)) / 2
            if _distance(m, segs) > 4:  # a 1 px stroke, its anti-aliasing and the 3 x 3 read
                blank.append(m.tolist())
    blank = blank[:400]
    got = page.evaluate(WS_INK, [index, mids + blank])
    assert got["over"], f"the line layer is not over the view's canvas: {got['size']}"
    alpha = got["alpha"]
    assert all(a > 0 for a in alpha[: len(mids)]), "a painted line left no ink at one of its segments"
    bad = [(p, a, _distance(np.array(p), segs)) for p, a in zip(blank, alpha[len(mids) :], strict=True) if a]
    assert not bad, f"ink where no line is painted: {bad[:5]} ({len(bad)} of {len(blank)})"
    # "blank" only where a line was left unpainted: with nothing selected, every line of a sparse page is painted.
    return {"inked": len(mids), **({"blank": len(blank)} if blank else {})}


def ws_pcp_extents(geo: list[dict[int, dict]], axes: list[str], cls: int, which: list[int]) -> dict[str, tuple]:
    """The PCP's ranges as the page states them: every angle axis one range, length and margin their own, over the
    class's samples of the combinations `which`, padded by 4 % of the range."""
    out: dict[str, list[float]] = {}
    for k in which:
        for r in geo[k].values():
            if r["label"] != cls:
                continue
            for f in axes:
                g = "angle" if f.startswith("angle") else f
                lo, hi = out.get(g, (math.inf, -math.inf))
                out[g] = [min(lo, r[f]), max(hi, r[f])]
    return {g: (lo - ((hi - lo) * 0.04 or 0.5), hi + ((hi - lo) * 0.04 or 0.5)) for g, (lo, hi) in out.items()}


def ws_dense_extents(store: Store, cfg: dict, cls: int, served: set[int]) -> dict[str, tuple]:
    """A dense page's PCP ranges: its density's, over the class's served samples of every model of the page and every
    shipped variant (clean, each corruption at each shipped severity), padded as ws_pcp_extents pads."""
    variants = [("clean", 0)] + [
        (c, s) for c in store.manifest["corruptions"] for s in store.manifest["shipped_severities"]
    ]
    out: dict[str, list[float]] = {}
    for m in (m["id"] for m in cfg["models"]):
        for v in variants:
            rows = store.geometry(m, *v)
            for f in cfg["axes"]:
                vals = np.array([rows[i][f] for i in served if rows[i]["label"] == cls], np.float64)
                g = "angle" if f.startswith("angle") else f
                lo, hi = out.get(g, (math.inf, -math.inf))
                out[g] = [min(lo, vals.min()), max(hi, vals.max())]
    return {g: (lo - ((hi - lo) * 0.04 or 0.5), hi + ((hi - lo) * 0.04 or 0.5)) for g, (lo, hi) in out.items()}


def check_ws_pcp_density(page, cfg: dict, dense: dict[str, tuple], ranges: list[dict[str, tuple]]) -> int:
    """A dense PCP's density bars: bar iy of axis j of panel q<k> spans the store's bin iy of the density extent
    (`dense`, split in cfg.density.pcp_bins) on the panel's range (`ranges[k]`: 0 at its low end, 1 at its high
    end), in the rows and in the drawn rects. Returns how many bars."""
    nb = cfg["density"]["pcp_bins"]
    index = WS_VIEWS["pcp"]

    def want(d: dict) -> tuple[float, float]:
        g = "angle" if cfg["axes"][d["k"]].startswith("angle") else cfg["axes"][d["k"]]
        edges = np.linspace(*dense[g], nb + 1)
        lo, hi = ranges[int(d["panel"][1:])][g]
        return (edges[d["iy"]] - lo) / (hi - lo), (edges[d["iy"] + 1] - lo) / (hi - lo)

    rows = page.evaluate(f"window.lotterysiteRuntime.views[{index}].view.data('ws_pcp')")
    rows = [d for d in rows if d.get("kind") == "density"]
    assert rows, "a dense PCP without density bars"
    for d in rows:
        assert np.allclose([d["y_lo"], d["y_hi"]], want(d), rtol=1e-9, atol=1e-12), (d, want(d))
    scene = Scene.read(page, index)
    cells = {g["datum"]["panel"]: g for g in scene.named("ws_pcp_cell")}
    rects = [it for m in scene.marks if m["type"] == "rect" for it in m["items"]]
    drawn = [it for it in rects if (it["datum"] or {}).get("kind") == "density"]
    for it in drawn:
        d = it["datum"]
        y = scene.linear("ws_pcp_y", cells[d["panel"]]["y"])
        top, bottom = sorted(float(y.px(t)) for t in want(d))
        assert near(it["y"], top) and near(it["y"] + it["height"], bottom), (d, it, top, bottom)
    assert len(drawn) == len(rows), (len(drawn), len(rows))
    return len(rows)


def check_ws_pcp(page, store: Store, site_data: Path) -> dict:
    """The workspace's PCP panels (q<k>: combination k): every line passes through axis j at its sample's store value
    of that combination, on the ranges shared by every panel (or each panel's own, scales=panel); on a dense page the
    shared ranges are the density's, and every density bar lies at the store's bin edges on its panel's range."""
    state = ws_state(page)
    cls = int(state["class"])
    cfg = page_config(page)
    axes = cfg["axes"]
    geo = ws_combos(page, store, site_data)
    shared = state.get("scales", "shared") == "shared"
    dense = ws_dense_extents(store, cfg, cls, in_sample_ids(site_data)) if cfg.get("density") else None
    index = WS_VIEWS["pcp"]
    ranges = [
        dense if dense and shared else ws_pcp_extents(geo, axes, cls, list(range(len(geo))) if shared else [k])
        for k in range(len(geo))
    ]
    scene = Scene.read(page, index)
    cells = {g["datum"]["panel"]: g for g in scene.named("ws_pcp_cell")}
    checked = defaultdict(int)
    if dense:
        checked["density"] = check_ws_pcp_density(page, cfg, dense, ranges)
    lines: dict[int, set] = defaultdict(set)
    where: dict[tuple[str, int], list] = {}  # every served line of the class, as the store places it: the ink check
    for k, g in enumerate(geo):
        cell = cells[f"q{k}"]
        ext = ranges[k]
        x, y = scene.linear("ws_pcp_x", cell["x"]), scene.linear("ws_pcp_y", cell["y"])
        for sid, r in g.items():
            if r["label"] != cls:
                continue
            pts = []
            for j, f in enumerate(axes):
                lo, hi = ext["angle" if f.startswith("angle") else f]
                pts.append([float(x.px(j)), float(y.px((r[f] - lo) / (hi - lo)))])
            where[(f"q{k}", sid)] = pts
    # Each painted line passes through axis j at its sample's store value of the panel's combination, on the panels'
    # shared ranges (or its own), placed by the view's own cell and scales.
    for rec in ws_lines(page, index):
        k = int(rec["panel"][1:])
        r = geo[k][rec["sample_id"]]
        assert r["label"] == cls and rec["label"] == cls, (rec["panel"], rec["sample_id"], r["label"])
        assert np.allclose(rec["v"], [r[f] for f in axes], rtol=1e-6, atol=0), (rec["sample_id"], rec["v"])
        for j, (got, want) in enumerate(zip(rec["points"], where[(rec["panel"], rec["sample_id"])], strict=True)):
            assert near(got[0], want[0]) and near(got[1], want[1]), (
                f"panel {k}, axis {axes[j]}: sample {rec['sample_id']} at {got}, want {want}"
            )
            checked["points"] += 1
        checked[rec["pass"]] += 1
        lines[k].add(rec["sample_id"])
    if not state.get("b"):  # nothing selected: every panel paints its class's samples marked as dots
        dots = {r["sample_id"] for r in read_arrow(site_data / "samples.arrow").to_pylist() if r["dot"]}
        for k, g in enumerate(geo):
            assert lines[k] >= {i for i, r in g.items() if r["label"] == cls and i in dots}, f"panel {k} misses lines"
    checked.update(check_ws_ink(page, index, where))
    return dict(checked, panels=len(lines))


GRID_ROWS = "(i) => window.lotterysiteRuntime.views[i].view.data('pairs').map((d) => [d.sample_id, d.rank, d.total])"


def check_ws_grid(page, store: Store, site_data: Path, want: set[int] | None = None) -> dict:
    """The workspace's sample grid, read back from the browser: its thumbnails' samples in reading order (row by row,
    left to right) are the selected samples (`want`; None: no selection, every served sample of the stratified
    sample) of lowest margin of the first combination (the store's values; ties: the lower sample id first), at most
    the page's limit of them, and its title says "showing k of N" with k the thumbnails and N all that passed."""
    cfg = page_config(page)
    model, file = ws_state(page)["c"][0]
    keep = in_sample_ids(site_data) if want is None else want & in_sample_ids(site_data)
    geo = store.geometry(model, *_slice(cfg, file))
    ids = np.array(sorted(keep), dtype=np.int64)
    margins = np.array([geo[i]["margin"] for i in ids], dtype=np.float64)
    order = ids[np.lexsort((ids, margins))][: cfg["grid_limit"]].tolist()
    scene = Scene.read(page, WS_VIEWS["grid"])
    images = [it for m in scene.marks if m["type"] == "image" for it in m["items"]]
    drawn = [it["datum"]["sample_id"] for it in sorted(images, key=lambda it: (round(it["y"]), it["x"]))]
    assert drawn == order, f"the grid shows {drawn}, want the lowest-margin samples {order}"
    texts = [it["text"] for m in scene.marks if m["type"] == "text" for it in m["items"] if it["text"]]
    titles = [t for t in texts if isinstance(t, str) and t.startswith("showing ")]
    if not ids.size:
        assert titles == [], titles
        return {"images": 0, "total": 0}
    assert titles == [f"showing {len(order)} of {ids.size}, lowest margin first"], titles
    # Every row the view holds, not only the one the title reads: its rank and the selection's size (a row that stayed
    # through a brush keeps a stale `total` unless the page updates it).
    rows = page.evaluate(GRID_ROWS, WS_VIEWS["grid"])
    assert sorted(rows, key=lambda r: r[1]) == [[i, k + 1, int(ids.size)] for k, i in enumerate(order)], rows
    return {"images": len(order), "total": int(ids.size)}


# Six combinations of the site fixture (four models on clean data, two on defocus_blur at severity 3), as a link.
WS_SIX = ws_link([["lenet5/dense", "v0.arrow"], ["lenet5/magnitude/0.5", "v0.arrow"], [M08, "v0.arrow"],
                   ["lenet5/random/0.3", "v0.arrow"], ["lenet5/dense", "v6.arrow"], [M08, "v6.arrow"]])  # fmt: skip
