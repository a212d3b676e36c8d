/* The workspace's views (issue 23): one function per view, each drawing from the shared selection store
 * (selection.js) and writing to it, never to another view. The rows and the selection come from workspace.js;
 * the embedding, the redraw queue and the helpers from lotterysite.js (`lib`).
 *
 *   store key   set by                                   drawn by
 *   c           the combination list, a table bar click  every view (new data)
 *   class       the class menu                           local, PCP (new rows); the table (class subset)
 *   layout, scales, traj   their menus                   local, PCP
 *   b           a brush in a local or PCP panel          -> sel (derived here)
 *   sel         derived from b                           every view, during the drag (no redraw)
 *   focus       the sample grid (click or menu)          local, PCP, the grid's detail line
 */
(function () {
  "use strict";
  const LS = (window.lotterysiteRuntime = window.lotterysiteRuntime || {});
  LS.kinds = LS.kinds || {};
  const W = () => LS.workspace;
  const LINKED = ["c", "class", "b", "focus", "layout", "scales", "traj", "sev"];
  const JSON_KEYS = ["c", "b"];

  function section(parent, lib, cls, title) {
    const s = lib.el("section", { class: "ls-ws-section " + cls });
    s.appendChild(lib.el("h2", {}, title));
    parent.appendChild(s);
    return s;
  }
  function chartEntry(lib, kind, sec, cfg) {
    const entry = lib.newEntry(kind, sec, cfg);
    sec.append(entry.error, entry.figure, entry.summary);
    return entry;
  }
  const specCache = new Map();
  function specOf(url) {
    if (!specCache.has(url)) specCache.set(url, fetch(url).then((r) => r.json()));
    return specCache.get(url).then((s) => JSON.parse(JSON.stringify(s)));
  }
  // One field of the rows of dataset `name` whose value changes, in place: the view keeps its scales and its brush,
  // and only the marks of those rows are re-encoded (a brush moving by a few pixels changes a few samples; every row
  // modified cost every mark's encoding per frame, bench/RESULTS.md 2026-12-06). A redraw would drop the brush.
  function modify(entry, name, field, value) {
    return change(entry, name, () => vega.changeset().modify((d) => d[field] !== value(d), field, value));
  }
  // The panels' marks read the selection through the expression function lsSel (charts.workspace_local, _pcp): a
  // brush changes none of their data, it bumps their signal ls_sel, and Vega only re-encodes the marks and repaints.
  // A changeset of the rows whose selection changed cost Vega's dataflow (facet key maps, pulse passes, relay copies)
  // most of a linked update (bench/RESULTS.md, "A brush changes no data"). lsSel(index, dot): 1 where the sample is
  // selected; with no selection, the row's `dot` (1: drawn when nothing is selected, 0: drawn only when selected).
  let selState = () => null;
  vega.expressionFunction("lsSel", (i, dot) => {
    const bits = selState();
    return bits ? bits[i] : dot;
  });
  function reselect(entry) {
    const view = entry.view;
    if (!view) return Promise.resolve();
    view.signal("ls_sel", (view.signal("ls_sel") || 0) + 1);
    return view.runAsync();
  }
  // The marks drawn through lsSel (charts.WS_SHOWN) encode everything but their opacity once, as they enter: Vega-Lite
  // encodes every channel on every update, and a brush re-encodes every mark of these (a PCP's 66 000 rules at 10 000
  // samples; each dot's tooltip an object and two d3-formats), bench/RESULTS.md 2026-12-06. Their rows never change
  // (a redraw embeds a new view) but for `focus`, which they do not encode, and their scales are fixed once drawn.
  function encodeOnce(spec) {
    const walk = (m) => {
      const e = m.encode, up = e && e.update;
      if (up && up.opacity && JSON.stringify(up.opacity).includes("lsSel")) {
        e.enter = Object.assign({}, e.enter);
        for (const k of Object.keys(up)) if (k !== "opacity") { e.enter[k] = up[k]; delete up[k]; }
      }
      (m.marks || []).forEach(walk);
    };
    walk(spec);
    return spec;
  }
  // A changeset into the live view, one at a time per view: the changeset is made (from the state then) only once
  // the view's previous change has run, as a second change of a dataset before the run would replace the first
  // (Vega keeps one pending changeset per dataset), and a difference from a dropped one would never be made good.
  function change(entry, name, changes) {
    const view = entry.view;
    if (!view) return Promise.resolve();
    const run = (entry.changing || Promise.resolve()).then(() => {
      if (entry.view !== view) return null; // redrawn meanwhile: the new view has the state
      view.change(name, changes());
      return view.runAsync();
    });
    entry.changing = run.catch(() => null);
    return run;
  }
  // A linked update never shrinks a view: a page growing shorter under a drag would scroll, and move the brush. Every
  // view's height is read first and then held, once per update before any view changes: a read after another view's
  // change forced a layout of the page per view (bench/RESULTS.md, "PCP lines on a canvas").
  function hold(entries) {
    const heights = entries.map((e) => e.target.offsetHeight);
    entries.forEach((e, i) => {
      if (heights[i] > (parseFloat(e.target.style.minHeight) || 0)) e.target.style.minHeight = heights[i] + "px";
    });
  }
  const focusOf = (store) => (d) => (d.sample_id === store.get().focus ? 1 : 0);

  // ---- the evaluation table: accuracies, and the subset bars of the selection (or the class) ----
  function evaluationView(parent, cfg, lib, store, shared) {
    const sec = section(parent, lib, "ls-ws-eval", "Evaluation table");
    const note = lib.el("p", { class: "ls-info ls-ws-subset", "aria-live": "polite" });
    sec.appendChild(note);
    const entry = chartEntry(lib, "evaluation", sec, cfg);
    lib.toolbar(sec, entry, "evaluation.csv");
    let base = null, counts = null;
    function rows() {
      const st = store.get(), bits = st.sel;
      const idx = lib.subsetIndex(counts, bits ? (i) => bits[i] === 1 : (i) => counts.label[i] === st.class);
      const [out, n] = lib.subsetRows(base, counts, cfg.correct_columns, idx);
      note.textContent = (bits ? `Subset: the ${n} selected samples` : `Subset: class ${cfg.classes[st.class]} (${n} samples)`) +
        "; bars right of the dashed line: its accuracy minus the model's (95 % interval). Click a bar to add its model.";
      entry.rows = out;
      return out;
    }
    function draw() {
      return entry.queue(async () => {
        if (!base) [base, counts] = await Promise.all([lib.fetchRows(cfg.evaluation), lib.fetchCounts(cfg)]);
        return specOf(cfg.specs.evaluation);
      }, async (spec) => {
        const rs = rows();
        lib.setParam(spec, cfg.dmax_param, lib.deltaRange(rs));
        lib.setParam(spec, "model", [...new Set(store.get().c.map((c) => c[0]))].map((m) => ({ model_id: m })));
        const view = await lib.embed(entry, spec, { evaluation: rs }, lib.subsetOnce);
        view.addEventListener("click", (e, item) => {
          const d = item && item.datum;
          if (d && d.model_id && d.variant_label) shared.add(d.model_id, d.variant_label);
        });
        lib.describe(entry, "Evaluation table", note.textContent);
      });
    }
    async function select() {
      if (!entry.view || !base) return;
      const rs = rows();
      await lib.swapSubset(entry, rs, cfg);
    }
    return { entry, draw, select, focus: () => null };
  }

  // ---- the combination list: (model, data) pairs; add, remove, reorder; keyboard-operable buttons ----
  function combinationsView(parent, cfg, lib, store, shared) {
    const sec = section(parent, lib, "ls-ws-combos", "Combinations");
    sec.appendChild(lib.el("p", { class: "ls-info" }, "The first is the reference: the others are compared with it."));
    const list = lib.el("ol", { class: "ls-ws-list", "aria-label": "combinations" });
    const status = lib.el("p", { class: "ls-status", role: "status", "aria-live": "polite" });
    sec.append(list, pickerOf(cfg, lib, store, shared), status);
    let again = null; // [combination, button class]: the button keyboard focus returns to after the list redraws
    const set = (c, text) => { status.textContent = text; store.set({ c }, "combinations"); };
    function act(c, i, what) {
      const name = W().comboLabel(cfg, c[i], i).replace(/^\d+\. /, "");
      if (what === "ls-remove") return set(c.filter((_, j) => j !== i), `Removed ${name}`);
      const j = i + (what === "ls-up" ? -1 : 1), next = c.slice();
      [next[i], next[j]] = [next[j], next[i]];
      set(next, `${name} is now number ${j + 1}`);
    }
    function draw() {
      const c = store.get().c;
      list.replaceChildren(...c.map((x, i) => {
        const name = W().comboLabel(cfg, x, i);
        const li = lib.el("li", { class: i ? "ls-ws-cmp" : "ls-ws-ref", "data-combo": W().key(x) });
        li.appendChild(lib.el("span", { class: "ls-ws-name" }, name.replace(/^\d+\. /, "") + (i ? "" : " (reference)")));
        for (const [cls, text, words, off] of [["ls-up", "↑", "move up", i === 0], ["ls-down", "↓", "move down",
          i === c.length - 1], ["ls-remove", "×", "remove", c.length === 1]]) {
          const b = lib.el("button", { type: "button", class: "ls-chip " + cls, "aria-label": `${words}: ${name}` }, text);
          b.disabled = off;
          b.addEventListener("click", () => { again = [W().key(x), cls]; act(store.get().c, i, cls); });
          li.appendChild(b);
        }
        return li;
      }));
      if (!again) return;
      const li = Array.from(list.children).find((n) => n.dataset.combo === again[0]);
      const b = li && li.querySelector("." + again[1]);
      (b && !b.disabled ? b : list.querySelector("button:not([disabled])") || sec.querySelector(".ls-ws-addbtn")).focus();
      again = null;
    }
    store.subscribe(["c"], draw);
    draw();
  }
  function pickerOf(cfg, lib, store, shared) {
    const box = lib.el("div", { class: "ls-controls ls-ws-add" });
    const variants = [...new Set(cfg.slices.map((s) => s.variant))];
    const sevs = W().severities(cfg);
    let model = cfg.models[0].id, variant = variants[0];
    const sliceFor = (v) => (cfg.slices.find((s) => s.variant === v && (s.severity === 0 || s.severity === store.get().sev)) ||
      cfg.slices.find((s) => s.variant === v) || cfg.slices[0]).file;
    shared.add = (m, label) => {
      const file = sliceFor(variants.includes(label) ? label : variants[0]);
      const c = store.get().c;
      if (!c.some((x) => x[0] === m && x[1] === file)) store.set({ c: [...c, [m, file]] }, "add");
    };
    const add = lib.el("button", { type: "button", class: "md-button ls-ws-addbtn" }, "Add combination");
    add.addEventListener("click", () => shared.add(model, variant));
    box.append(lib.select("model", cfg.models.map((m) => [m.id, m.label]), model, (v) => { model = v; }),
      lib.select("data", variants.map((v) => [v, v]), variant, (v) => { variant = v; }));
    if (sevs.length) box.append(lib.select("severity", sevs.map((s) => [s, String(s)]), store.get().sev, (v) => store.set({ sev: Number(v) }, "picker")));
    box.append(add);
    return box;
  }

  // ---- the menus: class, local layout, axis ranges, trajectories; the selection's size; clear ----
  function controlsView(root, cfg, lib, store, shared) {
    const bar = lib.el("div", { class: "ls-controls ls-ws-controls" });
    const st = store.get();
    bar.append(
      lib.select("class", W().classChoices(cfg).map((j) => [j, cfg.classes[j]]), st.class, (v) => store.set({ class: Number(v), b: null }, "menu")),
      lib.select("local panels", W().LAYOUTS, st.layout, (v) => store.set({ layout: v }, "menu")),
      lib.select("axis ranges", [["shared", "shared by every panel"], ["panel", "per panel"]], st.scales, (v) => store.set({ scales: v }, "menu")),
      lib.select("trajectories", [["all", "all"], ...cfg.outcomes.map((o) => [o, o])], st.traj, (v) => store.set({ traj: v }, "menu")));
    const clear = lib.el("button", { type: "button", class: "md-button ls-ws-clear" }, "Clear selection");
    clear.addEventListener("click", () => store.set({ b: null }, "menu"));
    bar.appendChild(clear);
    const info = lib.el("p", { class: "ls-info ls-ws-info", "aria-live": "polite" });
    root.append(bar, info);
    const show = (s) => {
      const n = s.sel ? s.sel.reduce((a, b) => a + b, 0) : 0;
      info.textContent = s.sel ? `${n} samples selected (${W().brushText(cfg, s)}): in every view; the table's bars are their subset` +
        (shared.model ? W().unmarked(cfg, shared.model, s.sel) : "")
        : "Drag a box on any local or parallel-coordinates panel to select samples.";
    };
    store.subscribe(["sel"], show);
    show(st);
  }

  // ---- local geometry and the PCP: small multiples, one brush each, linked through the store ----
  function panelsView(parent, cfg, lib, store, shared, p) {
    const sec = section(parent, lib, p.cls, p.title);
    const drawn = lib.el("p", { class: "ls-info ls-ws-drawn" });
    sec.appendChild(drawn);
    const entry = chartEntry(lib, p.kind, sec, cfg);
    lib.toolbar(sec, entry, p.kind + ".csv");
    let panels = [];
    const dense = (st) => (p.which === "p" ? !!cfg.density : W().dense(cfg, st));
    function draw() {
      const st = store.get(), model = shared.model;
      // p.prepare: what the panels need fetched first (the PCP: its class's angles, W().loadClass).
      return entry.queue(async () => {
        if (p.prepare) await p.prepare(model, st);
        return specOf(cfg.specs[p.spec(st)]);
      }, async (spec) => {
        drawn.textContent = dense(st) ? "Each panel draws every sample of its class as a density (rectangles: the " +
          "store's exact counts per bin, darker = more) and, as marks, a uniform random subsample (the same samples " +
          "in every panel) and every selected sample; its title gives the numbers. A box selects among all samples; " +
          "while samples are selected, the marks are the selected ones only and the density shows the rest." : "";
        panels = p.panels(cfg, model, st);
        const rows = p.rows(cfg, model, panels, st);
        lib.setParam(spec, p.titles, Object.fromEntries(panels.map((q) => [q.key, p.title_of(cfg, model, q, st)])));
        // A dense panel's context under a selection is its density, not faint marks (charts.WS_FAINT).
        lib.setParam(spec, "ws_faint", dense(st) ? 0 : 1);
        entry.rows = rows;
        const view = await lib.embed(entry, spec, { [p.data]: rows }, encodeOnce);
        if (p.drawn) p.drawn(entry, rows); // the PCP: its lines' own layer (lines.js)
        await drawBox(view, p.brush, W().boxOf(cfg, p.which, (store.get().b || {})[p.which], panels));
        view.addSignalListener(p.brush, (_, value) => shared.brush(p.which, p.read(cfg, view, value, panels)));
        lib.describe(entry, p.title, `${p.title}: ${panels.length} panels of ${st.c.length} combinations, class ` +
          `${cfg.classes[st.class]}; download the drawn rows as CSV below.`);
      });
    }
    // p.select: how a selection or a focus reaches the panels when they are not Vega's marks (the PCP).
    if (p.select) return { entry, draw, select: () => p.select(entry), focus: () => p.select(entry) };
    return { entry, draw, select: () => reselect(entry), focus: () => modify(entry, p.data, "focus", focusOf(store)) };
  }
  // A brush restored from the link, drawn: Vega-Lite cannot start a facet's interval brush from a value (its
  // initial store would not name the cell), so the box's pixel signals are set in the cell's dataflow, as a drag
  // sets them; the brush then reads its data ranges back and selects as after that drag.
  function drawBox(view, name, box) {
    if (!box) return;
    const cell = cellContext(view._runtime, name, box.panel);
    if (!cell) return;
    // The cell's `facet` signal names the brush's unit (Vega-Lite sets it on the first pointer move in the cell).
    if (cell.signals.facet) view.update(cell.signals.facet, cell.signals.parent.value);
    const fields = cell.signals[name + "_tuple_fields"].value;
    const data = new Set(fields.map((f) => name + "_" + f.field));
    for (const { channel } of fields) {
      // The pixel signal: <name>_<channel>, renamed <name>_<channel>_1 when a field has that name already.
      const px = [name + "_" + channel, name + "_" + channel + "_1"].find((s) => !data.has(s) && cell.signals[s]);
      const scale = scaleOf(cell, view._runtime, channel);
      if (!px || !scale) return;
      view.update(cell.signals[px], box[channel].map((v) => scale(v)));
    }
    return view.runAsync();
  }
  // The facet cell whose parent datum is panel `key` (Vega's runtime: a subcontext per cell, its `parent` signal
  // the cell's facet datum).
  function cellContext(ctx, name, key) {
    for (const sub of ctx.subcontext || []) {
      const parent = sub.signals && sub.signals.parent;
      if (parent && parent.value && parent.value.panel === key && sub.signals[name + "_tuple_fields"]) return sub;
      const found = cellContext(sub, name, key);
      if (found) return found;
    }
    return null;
  }
  // The cell's own scale of a channel (per-panel ranges), else the facet's shared one.
  function scaleOf(cell, top, channel) {
    for (const scales of [cell.scales || {}, top.scales || {}]) {
      const hit = Object.keys(scales).find((n) => n.endsWith("_" + channel) && typeof scales[n].value === "function");
      if (hit) return scales[hit].value;
    }
    return null;
  }
  function localView(parent, cfg, lib, store, shared) {
    return panelsView(parent, cfg, lib, store, shared, { cls: "ls-ws-local", title: "Local geometry", kind: "ws-local",
      data: "ws_local", brush: "ws_lbrush", titles: "ws_titles", which: "l",
      spec: (st) => (st.scales === "panel" ? "local_panel" : "local_shared"), panels: W().localPanels,
      rows: W().localRows, title_of: (c, m, q, st) => W().panelTitle(c, m, q, st, lib.pct),
      read: (c, view, value, panels) => W().localBrush(view, value, panels) });
  }
  function pcpView(parent, cfg, lib, store, shared) {
    return panelsView(parent, cfg, lib, store, shared, { cls: "ls-ws-pcp", title: "Global geometry", kind: "ws-pcp",
      data: "ws_pcp", brush: "ws_pbrush", titles: "ws_ptitles", which: "p", spec: () => "pcp",
      panels: W().pcpPanels, rows: W().pcpRows,
      prepare: (m, st) => W().loadClass(cfg, lib, m, st.class),
      title_of: (c, m, q, st) => [W().comboLabel(c, st.c[q.k], q.k), `${c.classes[st.class]}: ${lib.pct(m.combos[q.k].classAcc.get(st.class))}` +
        (st.scales === "panel" && !c.density ? " (own ranges)" : ""), ...W().densityLine(c, m, W().PCP_LAYOUT, st.class)],
      read: (c, view, value, panels) => W().pcpBrush(c, view, value, panels),
      drawn: (entry, rows) => { LS.lines.attach(entry, LS.lines.of(rows)); paintLines(entry); }, select: paintLines });
    // The lines run no Vega on a brush or a focus: their layer is repainted from the store's selection.
    function paintLines(entry) {
      if (entry.repaint) entry.repaint(store.get().sel, store.get().focus);
      return Promise.resolve();
    }
  }

  // ---- the sample grid: the selected samples, lowest margin first; a sample picked (click or menu) is marked ----
  // The page picks the grid's samples and hands Vega those only, each with its `rank` and `total` (how many the
  // selection holds; the title says "showing k of total"), charts.sample_examination(ranked=True): a spec that
  // filtered and ranked every served row (joinaggregate, window) reran over all of them on every brush to show 48.
  // `order`: the rows sorted once per draw, by the reference's margin, ties by sample id (one order, whatever the
  // sort's stability; the oracle computes the same).
  function rankRows(rows) {
    return rows.slice().sort((a, b) => a.ref_margin - b.ref_margin || a.sample_id - b.sample_id);
  }
  function gridShown(order, sel, limit) {
    const shown = [];
    let total = 0;
    for (const r of order) {
      if (sel && !sel[r.index]) continue;
      if (++total <= limit) shown.push(r);
    }
    return shown.map((r, i) => Object.assign({}, r, { rank: i + 1, total }));
  }
  // The new rows swapped into the live view: the samples that left removed, those that came inserted, the ones
  // that stayed given their new rank and total; at most the shown rows change, and only new thumbnails load.
  function swapGrid(entry, shown) {
    return change(entry, "pairs", () => {
      const next = new Map(shown.map((r) => [r.sample_id, r]));
      const now = new Map(entry.view.data("pairs").map((d) => [d.sample_id, d]));
      const changes = vega.changeset().remove((d) => !next.has(d.sample_id))
        .insert(shown.filter((r) => !now.has(r.sample_id)));
      for (const r of shown) {
        const d = now.get(r.sample_id);
        if (d && d.rank !== r.rank) changes.modify(d, "rank", r.rank);
        if (d && d.total !== r.total) changes.modify(d, "total", r.total);
      }
      return changes;
    });
  }
  // The grid's linked update is drawn without waiting for its new thumbnails: Vega draws the marks at once, and each
  // thumbnail as it arrives (its renderer redraws when its images load), as a page's lazy images do. A brush's update
  // waited on up to 48 image fetches (6 at a time per host over HTTP/1.1) before it counted as done. `settled` (the
  // tests, the bench) still waits for them; LS.thumbLatencies records when they are in (linker).
  function lazyImages(entry) {
    const r = entry.view._renderer, render = r.renderAsync;
    r.renderAsync = function (scene, types) {
      const loaded = render.call(this, scene, types);
      entry.images = loaded;
      entry.settled = Promise.all([entry.settled, loaded]);
      return Promise.resolve(this);
    };
  }
  function gridView(parent, cfg, lib, store, shared) {
    const sec = section(parent, lib, "ls-ws-grid", "Sample examination");
    const menu = lib.select("examine sample", [["", "— none —"]], "", (v) => store.set({ focus: v === "" ? null : Number(v) }, "grid"));
    const detail = lib.el("p", { class: "ls-info ls-ws-focus", "aria-live": "polite" });
    sec.append(menu, detail);
    const entry = chartEntry(lib, "ws-grid", sec, cfg);
    lib.toolbar(sec, entry, "samples.csv");
    let order = [];
    function draw() {
      const model = shared.model, two = model.combos.length > 1;
      return entry.queue(async () => specOf(cfg.specs[two ? "grid_compare" : "grid_single"]), async (spec) => {
        const like = { classes: cfg.classes, outcomes: cfg.outcomes, correctness: cfg.correctness, axes: [], kind: "workspace",
          thumbs: cfg.thumbs };
        order = rankRows(lib.buildPairs(like, model.samples, model.combos[0].rows, two ? model.combos[1].rows : null, null));
        entry.rows = gridShown(order, store.get().sel, cfg.grid_limit);
        const view = await lib.embed(entry, spec, { pairs: entry.rows });
        lazyImages(entry);
        view.addEventListener("click", (e, item) => {
          if (item && item.datum && item.datum.sample_id != null) store.set({ focus: item.datum.sample_id }, "grid");
        });
        listShown(); showFocus();
      });
    }
    function select() {
      if (!entry.view) return Promise.resolve();
      entry.rows = gridShown(order, store.get().sel, cfg.grid_limit);
      listShown();
      return swapGrid(entry, entry.rows);
    }
    function listShown() {
      // The grid's samples in its order, as a menu: keyboard selection.
      const sel = menu.querySelector("select"), focus = store.get().focus;
      sel.replaceChildren(lib.el("option", { value: "" }, "— none —"), ...entry.rows.map((r) =>
        lib.el("option", { value: String(r.sample_id) }, `#${r.sample_id} ${r.class_name} → ${r.ref_pred_name}` +
          (r.cmp_pred_name ? ` / ${r.cmp_pred_name}` : "") + `, margin ${r.ref_margin.toFixed(2)}`)));
      sel.value = entry.rows.some((r) => r.sample_id === focus) ? String(focus) : "";
    }
    function showFocus() {
      const st = store.get(), model = shared.model, i = model.samples.findIndex((s) => s.sample_id === st.focus);
      if (i < 0) { detail.textContent = "Click a sample, or pick one from the menu, to mark it in every panel."; return; }
      detail.textContent = `Sample #${st.focus}, ${cfg.classes[model.label[i]]}: ` + model.combos.map((c, k) =>
        `${k + 1}. ${c.pred[i] >= 0 ? cfg.classes[c.pred[i]] : "—"} (margin ${c.values.margin[i].toFixed(2)})`).join("; ");
    }
    return { entry, draw, select, focus: () => { showFocus(); if (entry.view) listShown(); } };
  }

  // ---- the single views, opened on the workspace's first two combinations ----
  function linksView(root, cfg, lib, store) {
    const nav = lib.el("p", { class: "ls-links" });
    root.appendChild(nav);
    const draw = () => {
      const st = store.get(), p = new URLSearchParams({ ref: st.c[0][0], refv: st.c[0][1], class: String(st.class) });
      if (st.c[1]) { p.set("cmp", st.c[1][0]); p.set("cmpv", st.c[1][1]); }
      nav.replaceChildren("Single views of combinations 1 and 2: ", ...Object.entries(cfg.links).flatMap(([k, href]) =>
        [lib.el("a", { href: href + "#" + p.toString() }, "→ " + k + " view"), " "]));
    };
    store.subscribe(["c", "class"], draw);
    draw();
  }

  // ---- the coordinator: the store, the views, and the two derived steps (data from c, sel from b) ----
  LS.kinds.workspace = async function (root, cfg, lib) {
    const store = LS.selection.createStore(W().initialState(cfg), LINKED, JSON_KEYS);
    const shared = { model: null };
    controlsView(root, cfg, lib, store, shared);
    const top = lib.el("div", { class: "ls-ws-top" });
    root.appendChild(top);
    const evaluation = evaluationView(top, cfg, lib, store, shared);
    combinationsView(top, cfg, lib, store, shared);
    const geometry = [localView(root, cfg, lib, store, shared), pcpView(root, cfg, lib, store, shared),
      gridView(root, cfg, lib, store, shared)];
    linksView(root, cfg, lib, store);
    const link = linker([evaluation, ...geometry]);
    selState = () => store.get().sel;
    shared.brush = (which, brush) => {
      const b = Object.assign({}, store.get().b || {});
      if (W().sameBrush(b[which], brush)) return; // a box redrawn from the link: its ranges read back
      if (brush) b[which] = brush; else delete b[which];
      store.set({ b: Object.keys(b).length ? b : null }, which);
    };
    let loads = 0;
    async function reload() {
      const mine = ++loads, model = await LS.track(W().loadModel(cfg, lib, store.get().c, store.get().class));
      if (mine !== loads) return;
      shared.model = model;
      store.set({ sel: W().selectedBits(model, store.get().b, cfg) }, "data");
      await Promise.all([evaluation.draw(), ...geometry.map((v) => v.draw())]);
    }
    store.subscribe(["c"], (st) => {
      const keys = new Set(st.c.map(W().key)), b = Object.assign({}, st.b || {});
      for (const k of Object.keys(b)) if (!keys.has(b[k].c)) delete b[k];
      store.set({ b: Object.keys(b).length ? b : null }, "combinations");
      reload();
    });
    store.subscribe(["class", "layout", "scales", "traj"], () => shared.model && geometry.slice(0, 2).forEach((v) => v.draw()));
    store.subscribe(["b"], (st) => shared.model && store.set({ sel: W().selectedBits(shared.model, st.b, cfg) }, "brush"));
    store.subscribe(["sel", "class"], link);
    store.subscribe(["focus"], () => geometry.forEach((v) => v.focus()));
    LS.workspaceView = { store, shared, views: { evaluation, local: geometry[0], pcp: geometry[1], grid: geometry[2] } };
    await reload();
  };

  // The selection's linked update: at most one at a time and at most one per frame. Changes that come while an
  // update runs are coalesced into one more update, from the state at its start (the newest brush supersedes the
  // ones before it: no backlog of stale updates, each a full pass over every view). LS.linkLatencies: ms from the
  // first change an update shows to the last view's rerun.
  function linker(views) {
    let t0 = null, busy = null;
    const settle = (p) => { for (const v of views) v.entry.settled = Promise.all([v.entry.settled, p]); };
    async function update() {
      await new Promise((r) => requestAnimationFrame(r));
      const start = t0;
      t0 = null;
      hold(views.map((v) => v.entry));
      // A view that fails shows its error and the others still update (a rejection would stop every later update).
      await Promise.all(views.map((v) => Promise.resolve().then(() => v.select()).catch((e) => LS.lib.fail(v.entry, e))));
      (LS.linkLatencies = LS.linkLatencies || []).push(performance.now() - start);
      // And once the grid's new thumbnails have loaded too (lazyImages): LS.thumbLatencies.
      const images = views.map((v) => v.entry.images);
      Promise.all(images).then(() => (LS.thumbLatencies = LS.thumbLatencies || []).push(performance.now() - start));
      busy = t0 == null ? null : update(); // changes during this update: one more, from the newest state
      return busy;
    }
    return function () {
      if (t0 == null) t0 = performance.now();
      if (busy) return;
      busy = update();
      settle(busy);
    };
  }
})();
