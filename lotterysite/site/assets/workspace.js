/* The workspace (issue 23, paper Fig. 4): the evaluation table, the combination list, the local geometry, the
 * global parallel coordinates and the sample grid of one architecture on one page, linked through the shared
 * selection store of selection.js. Each view subscribes to the store keys it draws from; a brush anywhere sets the
 * store's brushes, the store's subscribers derive the selected samples and every view follows during the drag.
 *
 * Registered as the "workspace" view kind of lotterysite.js (which draws it with the helpers in `lib`). User
 * strings reach the DOM as textContent and attribute values only.
 */
(function () {
  "use strict";
  const LS = (window.lotterysiteRuntime = window.lotterysiteRuntime || {});
  LS.kinds = LS.kinds || {};
  const LINKED = ["c", "class", "b", "focus", "layout", "scales", "traj", "sev"];
  const JSON_KEYS = ["c", "b"];
  const LAYOUTS = [["class", "one class, every combination (Fig. 7)"], ["classes", "every class, every combination"],
    ["outcomes", "outcome subsets b–f of combinations 1 → 2 (Fig. 4 ④)"]];
  const MOST_CLASSES = 10; // panels per combination in the "every class" layout
  const key = (c) => c[0] + "|" + c[1];
  const inRange = (v, r) => v >= Math.min(r[0], r[1]) && v <= Math.max(r[0], r[1]);

  // ---- state: the link's, checked against the page (anything unknown is dropped, never guessed) ----
  function initialState(cfg) {
    const raw = LS.selection.readHash(LINKED, JSON_KEYS);
    const models = new Set(cfg.models.map((m) => m.id));
    const files = new Set(cfg.slices.map((s) => s.file));
    const ok = (c) => Array.isArray(c) && c.length === 2 && models.has(c[0]) && files.has(c[1]);
    let c = Array.isArray(raw.c) ? raw.c.filter(ok) : [];
    // A link from a single-view page carries its reference and compared models: they become the combinations.
    if (!c.length && models.has(raw.ref)) {
      c = [[raw.ref, files.has(raw.refv) ? raw.refv : cfg.slices[0].file]];
      if (models.has(raw.cmp)) c.push([raw.cmp, files.has(raw.cmpv) ? raw.cmpv : cfg.slices[0].file]);
    }
    if (!c.length) c = cfg.default.filter(ok);
    c = c.filter((x, i) => c.findIndex((y) => key(y) === key(x)) === i);
    const classes = classChoices(cfg);
    const cls = classes.includes(Number(raw.class)) && raw.class !== "" ? Number(raw.class) : classes[0];
    const sevs = severities(cfg);
    const st = { c, class: cls, layout: LAYOUTS.some(([v]) => v === raw.layout) ? raw.layout : "class",
      scales: raw.scales === "panel" ? "panel" : "shared", traj: cfg.outcomes.includes(raw.traj) ? raw.traj : "all",
      sev: sevs.includes(Number(raw.sev)) ? Number(raw.sev) : sevs[0] };
    if (Number.isInteger(Number(raw.focus)) && raw.focus !== "") st.focus = Number(raw.focus);
    const b = validBrushes(raw.b, c, cfg, cls);
    if (b) st.b = b;
    return st;
  }
  function classChoices(cfg) {
    // Many classes: those with served samples (the page's picker list); else every class.
    return Array.isArray(cfg.picker) ? cfg.picker : cfg.classes.map((_, j) => j);
  }
  function severities(cfg) {
    return [...new Set(cfg.slices.filter((s) => s.severity > 0).map((s) => s.severity))].sort((a, b) => a - b);
  }
  function validBrushes(b, combos, cfg, cls) {
    if (!b || typeof b !== "object") return null;
    const keys = new Set(combos.map(key));
    const range = (r) => Array.isArray(r) && r.length === 2 && r.every((v) => typeof v === "number" && Number.isFinite(v));
    const out = {};
    const l = b.l;
    if (l && keys.has(l.c) && Number.isInteger(l.cls) && range(l.x) && range(l.y) && (l.o == null || cfg.outcomes.includes(l.o))) out.l = l;
    const p = b.p;
    if (p && keys.has(p.c) && p.cls === cls && p.ranges && Object.entries(p.ranges).every(([k, r]) => cfg.axes[k] && range(r))) out.p = p;
    return Object.keys(out).length ? out : null;
  }

  // ---- data: every combination's slice, aligned by sample (samples.arrow's order) ----
  // Per combination its local slice (cfg.local_base: no class angles); the PCP's angles of class `cls` come from
  // their own files (loadClass), as do another class's when it is shown.
  async function loadModel(cfg, lib, combos, cls) {
    const byId = new Map(cfg.models.map((m) => [m.id, m]));
    // The table's counts load alongside (decoded once, cached: the table's draw finds them ready).
    const [samples, correct, ...slices] = await Promise.all([lib.fetchRows(cfg.samples), lib.fetchCounts(cfg),
      ...combos.map(([m, f]) => lib.fetchRows(`${cfg.local_base}/${byId.get(m).key}/${f}`))]);
    const densities = cfg.density ? await Promise.all(combos.map(([m, f]) =>
      lib.fetchRows(`${cfg.density.base}/${byId.get(m).key}/${f}`))) : combos.map(() => []);
    const n = samples.length;
    const index = new Map(samples.map((s, i) => [s.sample_id, i]));
    const label = Int32Array.from(samples, (s) => s.label);
    const inSample = Uint8Array.from(samples, (s) => (s.in_sample !== false ? 1 : 0));
    const dot = Uint8Array.from(samples, (s) => (s.dot === false ? 0 : 1));
    const pool = poolOf(cfg, label, inSample, dot);
    const fieldsOf = [...new Set(["length", "angle_true", "margin", ...cfg.axes])];
    const angles = new Set(cfg.angles.fields), local = fieldsOf.filter((f) => !angles.has(f));
    const data = slices.map((rows, k) => {
      const values = {};
      for (const f of fieldsOf) values[f] = new Float64Array(n).fill(NaN);
      const right = new Uint8Array(n), pred = new Int32Array(n).fill(-1), classAcc = new Map();
      for (const r of rows) {
        const i = index.get(r.sample_id);
        if (i == null) continue;
        for (const f of local) values[f][i] = r[f];
        right[i] = r.correct ? 1 : 0;
        pred[i] = r.pred;
        if (!classAcc.has(r.label)) classAcc.set(r.label, r.class_accuracy);
      }
      // The store's counts per (class, axis): axis -1 the local density, k the PCP's axis k (data.densities).
      const density = new Map();
      for (const d of densities[k]) {
        const at = d.cls + "|" + d.k;
        if (!density.has(at)) density.set(at, []);
        density.get(at).push(d);
      }
      return { key: key(combos[k]), model: combos[k][0], file: combos[k][1], mkey: byId.get(combos[k][0]).key, values,
        right, pred, classAcc, rows, density, loaded: new Set() };
    });
    return loadClass(cfg, lib, { samples, correct, n, index, label, inSample, dot, pool, combos: data }, cls);
  }
  // The PCP's angles of class `cls` into every combination's values, fetched once per combination and class: a file
  // per class (cfg.angles.by_class: that class's samples only), or, with many classes, one of every sample.
  async function loadClass(cfg, lib, model, cls) {
    const a = cfg.angles, name = a.by_class ? "c" + cls : "all";
    if (!a.fields.length || (a.by_class && !model.label.includes(cls))) return model;
    const todo = model.combos.filter((c) => !c.loaded.has(name));
    const got = await Promise.all(todo.map((c) => lib.fetchRows(lib.angleUrl(cfg, c.mkey, c.file, cls))));
    todo.forEach((c, k) => {
      for (const r of got[k]) {
        const i = model.index.get(r.sample_id);
        if (i != null) for (const f of a.fields) if (f in c.values) c.values[f][i] = r[f];
      }
      c.loaded.add(name);
    });
    return model;
  }
  function outcomeOf(cfg, ref, cmp, i) {
    const [wrong, newlyWrong, newlyRight, right] = cfg.outcomes;
    return ref.right[i] ? (cmp.right[i] ? right : newlyWrong) : cmp.right[i] ? newlyRight : wrong;
  }

  // ---- the selection: the samples inside every brush (each on its own combination's values) ----
  function selectedBits(model, b, cfg) {
    const l = b && b.l, p = b && b.p;
    if (!l && !p) return null;
    const find = (k) => model.combos.find((c) => c.key === k);
    const lc = l && find(l.c), pc = p && find(p.c), ref = model.combos[0];
    const bits = new Uint8Array(model.n);
    for (let i = 0; i < model.n; i++) {
      if (!model.inSample[i]) continue;
      if (l && (!lc || model.label[i] !== l.cls || !inRange(lc.values.length[i], l.x) ||
        !inRange(lc.values.angle_true[i], l.y) || (l.o && outcomeOf(cfg, ref, lc, i) !== l.o))) continue;
      if (p && (!pc || model.label[i] !== p.cls ||
        !Object.entries(p.ranges).every(([k, r]) => inRange(pc.values[cfg.axes[k]][i], r)))) continue;
      bits[i] = 1;
    }
    return bits;
  }

  // ---- labels ----
  function comboLabel(cfg, c, k) {
    const m = cfg.models.find((x) => x.id === c[0]);
    const s = cfg.slices.find((x) => x.file === c[1]);
    return `${k + 1}. ${m ? m.label.split(" — ")[0] : c[0]} · ${s ? s.label : c[1]}`;
  }
  function panelTitle(cfg, model, p, st, pct) {
    const name = cfg.classes[p.cls];
    const ref = model.combos[0], me = model.combos[p.k];
    if (p.o !== undefined && st.layout === "outcomes") {
      const letter = "bcdef"[p.idx] || "";
      return [`${letter}. ${p.o || "all trajectories"}`, `${comboLabel(cfg, st.c[0], 0).split(". ")[0]} → ${p.k + 1} · ${name}`];
    }
    const acc = pct(me.classAcc.get(p.cls));
    return [comboLabel(cfg, st.c[p.k], p.k), p.k ? `${name}: ${pct(ref.classAcc.get(p.cls))} → ${acc}` : `${name}: ${acc}`,
      ...densityLine(cfg, model, st, p.cls)];
  }

  // What the boxes select on, in words.
  function brushText(cfg, st) {
    const b = st.b || {}, out = [];
    const name = (c) => { const i = st.c.findIndex((x) => key(x) === c); return i < 0 ? c : comboLabel(cfg, st.c[i], i); };
    if (b.l) out.push(`local box on ${name(b.l.c)}, ${cfg.classes[b.l.cls]}${b.l.o ? ", " + b.l.o : ""}`);
    if (b.p) {
      const ks = Object.keys(b.p.ranges).map(Number).sort((x, y) => x - y);
      out.push(`parallel-coordinates box on ${name(b.p.c)}, ${ks.length} ax${ks.length > 1 ? "es" : "is"}`);
    }
    return out.join("; ");
  }

  // ---- densities: where a class has more served samples than a panel draws as marks (cfg.density) ----
  // The panels then draw the store's exact counts of every sample (rects, data.densities), the uniform random
  // subsample of samples.arrow's `dot` as marks, and every selected sample as a mark: each panel's rows hold its
  // class's samples up to cfg.density.pool (the pool: the subsample first), the others drawn only while selected
  // (lsSel in charts.workspace_local and _pcp), so that a brush changes no data. A selected sample beyond the pool is
  // in the density only, and the page says how many (selectionText). The selection itself is computed over every
  // sample (selectedBits), never the marks.
  const dense = (cfg, st) => !!cfg.density && st.layout !== "outcomes";
  const PCP_LAYOUT = { layout: "class" };
  // Per sample, whether the dense panels have it as a mark: its class's subsample, then its other samples in
  // samples.arrow's order up to cfg.density.pool a class.
  function poolOf(cfg, label, inSample, dot) {
    const n = label.length, out = new Uint8Array(n), left = new Map();
    const most = cfg.density ? cfg.density.pool : Infinity;
    for (let i = 0; i < n; i++) if (inSample[i] && dot[i]) { out[i] = 1; left.set(label[i], (left.get(label[i]) || 0) + 1); }
    for (let i = 0; i < n; i++) {
      if (!inSample[i] || dot[i] || (left.get(label[i]) || 0) >= most) continue;
      out[i] = 1;
      left.set(label[i], (left.get(label[i]) || 0) + 1);
    }
    return out;
  }
  // Which samples a panel has as marks, and how: 1 a dot (drawn when nothing is selected), 0 a pool row (drawn only
  // while selected), -1 none (a dense panel's samples beyond its pool).
  function marked(cfg, model, st) {
    if (!dense(cfg, st)) return () => 1;
    return (i) => (model.dot[i] ? 1 : model.pool[i] ? 0 : -1);
  }
  // The selected samples that no panel draws as a mark (beyond the pool: in the density only), in words; "" if none.
  function unmarked(cfg, model, bits) {
    if (!cfg.density || !bits) return "";
    let n = 0;
    for (let i = 0; i < model.n; i++) if (bits[i] && !model.pool[i]) n++;
    return n ? `; ${n} of them beyond the ${cfg.density.pool} marks a panel holds: in its density only` : "";
  }
  // What a dense panel draws, for its subtitle: every sample of the class (N), the subsample's (n) and, where the
  // class has more samples than the pool, the pool's (the samples a selection can show as marks).
  function drawnCounts(model, cls) {
    let all = 0, dots = 0, pool = 0;
    for (let i = 0; i < model.n; i++) {
      if (model.inSample[i] && model.label[i] === cls) { all++; dots += model.dot[i]; pool += model.pool[i]; }
    }
    return [all, dots, pool];
  }
  function densityLine(cfg, model, st, cls) {
    if (!dense(cfg, st)) return [];
    const [all, dots, pool] = drawnCounts(model, cls);
    return [`density of all ${all};`, `dots: a uniform random ${dots}`, ...(pool < all ? [`selected drawn of the first ${pool}`] : [])];
  }
  const binEdge = (r, b, m) => r[0] + (b * (r[1] - r[0])) / m;
  // A panel's density cells: the store's bins on the class's density extent. `own` (per-panel ranges): the panel's
  // own {x, y} range, the cells cut to it, so that its scales (computed from its rows) span its own values only.
  function localDensity(cfg, me, p, own) {
    const [nx, ny] = cfg.density.bins, e = cfg.density.extents[String(p.cls)], cells = me.density.get(p.cls + "|-1") || [];
    const top = cells.reduce((a, c) => Math.max(a, c.n), 1);
    const cut = own ? (v, r) => Math.min(Math.max(v, r[0]), r[1]) : (v) => v;
    return cells.map((c) => ({ kind: "density", panel: p.key, panel_order: p.idx, label: p.cls, n: c.n, ix: c.ix, iy: c.iy,
      x: cut(binEdge(e.x, c.ix, nx), own && own.x), x2: cut(binEdge(e.x, c.ix + 1, nx), own && own.x),
      y: cut(binEdge(e.y, c.iy, ny), own && own.y), y2: cut(binEdge(e.y, c.iy + 1, ny), own && own.y),
      o: 0.12 + (0.6 * c.n) / top }));
  }
  // A dense panel's own ranges (scales=panel): x (length) and y (angle) over its combination's values of every
  // served sample of its class and the dots it draws (a compared panel: the reference's too, of its marks), the span
  // its scales would have if every sample were a mark that the density stands for.
  function localOwn(model, p, mark) {
    const me = model.combos[p.k], ref = model.combos[0], x = [Infinity, -Infinity], y = [Infinity, -Infinity];
    const add = (c, i) => {
      const a = c.values.length[i], b = c.values.angle_true[i];
      if (Number.isFinite(a)) { x[0] = Math.min(x[0], a); x[1] = Math.max(x[1], a); }
      if (Number.isFinite(b)) { y[0] = Math.min(y[0], b); y[1] = Math.max(y[1], b); }
    };
    for (let i = 0; i < model.n; i++) {
      if (!model.inSample[i] || model.label[i] !== p.cls) continue;
      add(me, i);
      if (p.k && mark(i) >= 0) add(ref, i);
    }
    return x[0] <= x[1] && y[0] <= y[1] ? { x, y } : null;
  }

  // ---- local geometry: panels and their rows ----
  function localPanels(cfg, model, st) {
    const present = [...new Set(Array.from(model.label).filter((_, i) => model.inSample[i]))].sort((a, b) => a - b);
    const classes = st.layout === "classes" ? present.slice(0, MOST_CLASSES) : [st.class];
    const out = [];
    if (st.layout === "outcomes" && model.combos.length > 1) {
      for (const o of [null, ...cfg.outcomes]) out.push({ k: 1, cls: st.class, o });
    } else for (let k = 0; k < model.combos.length; k++) for (const cls of classes) out.push({ k, cls, o: null });
    return out.map((p, i) => Object.assign(p, { idx: i, key: "p" + i, c: model.combos[p.k].key }));
  }
  function localRows(cfg, model, panels, st) {
    const ref = model.combos[0];
    const [correct, incorrect, reference, compared] = cfg.dots;
    const rows = [], mark = marked(cfg, model, st);
    for (const p of panels) {
      const me = model.combos[p.k];
      if (dense(cfg, st)) rows.push(...localDensity(cfg, me, p, st.scales === "panel" ? localOwn(model, p, mark) : null));
      for (let i = 0; i < model.n; i++) {
        const dot = mark(i);
        if (!model.inSample[i] || model.label[i] !== p.cls || dot < 0) continue;
        const o = p.k ? outcomeOf(cfg, ref, me, i) : null;
        if (p.o && o !== p.o) continue;
        const s = model.samples[i];
        const base = { panel: p.key, panel_order: p.idx, sample_id: s.sample_id, index: i, label: p.cls,
          class_name: cfg.classes[p.cls], image: LS.lib.thumbUrl(cfg, s), dot, focus: s.sample_id === st.focus ? 1 : 0 };
        const at = (c) => ({ x: c.values.length[i], y: c.values.angle_true[i] });
        if (!p.k) { rows.push(Object.assign(base, at(me), { role: me.right[i] ? correct : incorrect, traj: 0 })); continue; }
        rows.push(Object.assign({}, base, at(ref), { role: reference, traj: 0, outcome: o }));
        rows.push(Object.assign(base, at(me), { role: compared, outcome: o, x0: ref.values.length[i],
          y0: ref.values.angle_true[i], traj: st.traj === "all" || st.traj === o ? 1 : 0 }));
      }
    }
    return rows;
  }

  // ---- the PCP: ranges (shared or per panel), axis names, rows ----
  const group = (f) => (f.startsWith("angle") ? "angle" : f);
  function pcpRanges(cfg, model, cls, ks) {
    const out = {};
    for (const k of ks) for (const f of cfg.axes) {
      const g = group(f), v = model.combos[k].values[f];
      const r = out[g] || (out[g] = [Infinity, -Infinity]);
      for (let i = 0; i < model.n; i++) {
        if (!model.inSample[i] || model.label[i] !== cls || !Number.isFinite(v[i])) continue;
        if (v[i] < r[0]) r[0] = v[i];
        if (v[i] > r[1]) r[1] = v[i];
      }
    }
    for (const [g, [lo, hi]] of Object.entries(out)) {
      // Padded by 4 % of the range (±0.5 for a single value), as the global view's axes.
      const ok = hi >= lo, pad = ok ? (hi - lo) * 0.04 || 0.5 : 0.5;
      out[g] = ok ? [lo - pad, hi + pad] : [0, 1];
    }
    return out;
  }
  function axisNames(cfg, cls) {
    const conf = (cfg.confused || {})[String(cls)] || [];
    return cfg.axes.map((f, k) => {
      const t = cfg.axis_titles[k];
      if (f === "angle_true") return cfg.classes[cls] + " (true)";
      if (t == null) { const j = conf[Number(f.slice("angle_c".length))]; return j == null ? "" : cfg.classes[j]; }
      return f === "angle_" + cls ? t + " (true)" : t;
    });
  }
  // One panel per combination; shared ranges span every combination's values of the class, per-panel ranges its own.
  // Dense: the density's bins (`bins`) span the class's values over every model (data.densities); the shared axes
  // show that range, per-panel axes their own (the bins drawn at the store's edges on them, cut by the panel's clip).
  function pcpPanels(cfg, model, st) {
    const bins = cfg.density ? cfg.density.extents[String(st.class)] : null;
    const shared = bins || pcpRanges(cfg, model, st.class, model.combos.map((_, k) => k));
    return model.combos.map((c, k) => ({ k, idx: k, key: "q" + k, c: c.key, cls: st.class, bins,
      ranges: st.scales === "panel" ? pcpRanges(cfg, model, st.class, [k]) : shared }));
  }
  // The PCP panel title's note on its ranges (workspace-views.js pcpView).
  const rangesNote = (cfg, st) => (st.scales === "panel" ? " (own ranges)" : "");
  function pcpRows(cfg, model, panels, st) {
    const names = axisNames(cfg, st.class);
    const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
    const [correct, incorrect] = cfg.correctness;
    // The PCP draws one class whatever the local layout: dense wherever the page has densities.
    const rows = [], mark = marked(cfg, model, PCP_LAYOUT);
    for (const p of panels) {
      const me = model.combos[p.k];
      cfg.axes.forEach((f, k) => {
        const [lo, hi] = p.ranges[group(f)];
        rows.push({ kind: "axis", panel: p.key, panel_order: p.idx, k, name: names[k], lo: fmt(lo), hi: fmt(hi) });
        if (!cfg.density) return;
        // The axis's density: a bar per bin, as wide as its count (the widest bin of the axis: 0.84 of the axes' gap),
        // its edges the store's (on the density extent) placed on the panel's range.
        const cells = me.density.get(st.class + "|" + k) || [], nb = cfg.density.pcp_bins, r = p.bins[group(f)];
        const top = cells.reduce((a, c) => Math.max(a, c.n), 1);
        for (const c of cells) rows.push({ kind: "density", panel: p.key, panel_order: p.idx, k, n: c.n, iy: c.iy,
          k_lo: k - (0.42 * c.n) / top, k_hi: k + (0.42 * c.n) / top,
          y_lo: (binEdge(r, c.iy, nb) - lo) / (hi - lo), y_hi: (binEdge(r, c.iy + 1, nb) - lo) / (hi - lo) });
      });
      for (let i = 0; i < model.n; i++) {
        const dot = mark(i);
        if (!model.inSample[i] || model.label[i] !== st.class || dot < 0) continue;
        const sid = model.samples[i].sample_id;
        const role = me.right[i] ? correct : incorrect;
        cfg.axes.forEach((f, k) => {
          const [lo, hi] = p.ranges[group(f)], v = me.values[f][i];
          rows.push({ kind: "line", panel: p.key, panel_order: p.idx, k, sample_id: sid, index: i, label: st.class,
            role, v, y: (v - lo) / (hi - lo), dot, focus: sid === st.focus ? 1 : 0 });
        });
      }
    }
    return rows;
  }

  // ---- brushes: the brushed panel from the brush's store (Vega-Lite names a facet cell's unit by its value) ----
  function brushedPanel(view, name, panels) {
    const tuples = view.data(name + "_store") || [];
    const unit = tuples.length ? String(tuples[0].unit) : "";
    const m = unit.match(/([pq]\d+)$/);
    return m ? panels.find((p) => p.key === m[1]) : null;
  }
  function localBrush(view, value, panels) {
    const p = value && value.x && value.y ? brushedPanel(view, "ws_lbrush", panels) : null;
    return p ? { c: p.c, cls: p.cls, o: p.o || null, x: value.x, y: value.y } : null;
  }
  // The PCP's brush is drawn on rects spanning each axis (fields k_lo: x, y_lo: y, on the lines' scales).
  function pcpBrush(cfg, view, value, panels) {
    const ks = value && value.k_lo, ys = value && value.y_lo;
    const p = ks && ys ? brushedPanel(view, "ws_pbrush", panels) : null;
    if (!p) return null;
    const ranges = {};
    const [a, b] = [Math.min(...ks), Math.max(...ks)];
    cfg.axes.forEach((f, k) => {
      if (k < a || k > b) return;
      const [lo, hi] = p.ranges[group(f)];
      ranges[k] = ys.map((t) => lo + t * (hi - lo)).sort((x, y) => x - y);
    });
    return Object.keys(ranges).length ? { c: p.c, cls: p.cls, ranges } : null;
  }

  // ---- a brush from the link, as the box to draw: its panel and its data ranges per channel ----
  // The local box is its x (length) and y (angle) ranges. The PCP box spans the axes it selects on: x from half an
  // axis step before the first to past the last (pcpBrush keeps the axes whose k lies in x), y the first axis's
  // range on that axis's 0–1 scale (one y range serves every axis: pcpBrush maps it onto each axis's range).
  function boxOf(cfg, which, brush, panels) {
    if (!brush) return null;
    const p = panels.find((q) => q.c === brush.c && q.cls === brush.cls && (which === "p" || (q.o || null) === (brush.o || null)));
    if (!p) return null;
    if (which === "l") return { panel: p.key, x: brush.x, y: brush.y };
    const ks = Object.keys(brush.ranges).map(Number).sort((a, b) => a - b);
    const [lo, hi] = p.ranges[group(cfg.axes[ks[0]])];
    const y = brush.ranges[ks[0]].map((v) => (v - lo) / (hi - lo));
    return { panel: p.key, x: [ks[0] - 0.4, ks[ks.length - 1] + 0.4], y };
  }
  // Whether two brushes select the same (a box redrawn from the link reads back its ranges with rounding error).
  function sameBrush(a, b) {
    if (!a || !b) return a === b;
    const close = (r, s) => Array.isArray(r) && Array.isArray(s) && r.length === s.length &&
      r.every((v, i) => Math.abs(v - s[i]) <= 1e-9 * Math.max(1, Math.abs(v)));
    if (a.c !== b.c || a.cls !== b.cls || (a.o || null) !== (b.o || null)) return false;
    if (a.ranges || b.ranges) {
      const ka = Object.keys(a.ranges || {}).sort(), kb = Object.keys(b.ranges || {}).sort();
      return ka.join() === kb.join() && ka.every((k) => close([...a.ranges[k]].sort((x, y) => x - y), [...b.ranges[k]].sort((x, y) => x - y)));
    }
    return close(a.x, b.x) && close(a.y, b.y);
  }

  LS.workspace = { initialState, boxOf, sameBrush, loadModel, loadClass, selectedBits, localPanels, localRows, pcpPanels, pcpRows,
    localBrush, pcpBrush, panelTitle, brushText, comboLabel, outcomeOf, severities, classChoices, LAYOUTS, key,
    dense, densityLine, poolOf, unmarked, rangesNote, PCP_LAYOUT };
})();
