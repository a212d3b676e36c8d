/* The workspace's geometry panels as small multiples, one per combination, one brush each: the local view (length
 * and angle to the true class, R2/R3) and the global PCP (R4; its lines painted by lines.js). A brush writes its box
 * to the store; a linked update redraws the marks' opacity from the selection, with no data changed.
 */
(function () {
  "use strict";
  const LS = (window.lotterysiteRuntime = window.lotterysiteRuntime || {});
  const WS = (LS.ws = LS.ws || { views: {} });
  const { section, chartEntry, specOf, modify, focusOf } = WS;
  const W = () => LS.workspace;

  // The local panels' marks read the selection through the expression function lsSel (charts.workspace_local): a
  // brush changes none of their data, it bumps their signal ls_sel, and Vega only re-encodes the marks and repaints.
  // A changeset of the rows whose selection changed cost Vega's dataflow (facet key maps, pulse passes, relay copies)
  // most of a linked update (bench/RESULTS.md, "A brush changes no data"). lsSel(index, dot): 1 where the sample is
  // selected; with no selection, the row's `dot` (1: drawn when nothing is selected, 0: drawn only when selected).
  let selState = () => null;
  const bindSelection = (store) => { selState = () => store.get().sel; }; // the coordinator's store
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
  // The marks drawn through lsSel (charts.WS_SHOWN) encode everything but their opacity once, as they enter (each
  // dot's tooltip an object and two d3-formats, re-encoded per brush), bench/RESULTS.md 2026-12-06. Their rows never change (a redraw embeds a new view) but for `focus`, which they do
  // not encode, and their scales are fixed once drawn.
  const opacityOnly = (lib) => (spec) => lib.encodeOnce(spec, "lsSel(", (k) => k === "opacity");

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
        const view = await lib.embed(entry, spec, { [p.data]: rows }, opacityOnly(lib));
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
        W().rangesNote(c, st), ...W().densityLine(c, m, W().PCP_LAYOUT, st.class)],
      read: (c, view, value, panels) => W().pcpBrush(c, view, value, panels),
      drawn: (entry, rows) => { LS.lines.attach(entry, LS.lines.of(rows)); paintLines(entry); }, select: paintLines });
    // The lines run no Vega on a brush or a focus: their layer is repainted from the store's selection.
    function paintLines(entry) {
      if (entry.repaint) entry.repaint(store.get().sel, store.get().focus);
      return Promise.resolve();
    }
  }

  Object.assign(WS.views, { local: localView, pcp: pcpView, bindSelection });
})();
