/* The workspace's sample grid (R4): the selected samples' thumbnails, lowest margin first, at most cfg.grid_limit;
 * a sample picked (click or menu) is marked in every panel.
 */
(function () {
  "use strict";
  const LS = (window.lotterysiteRuntime = window.lotterysiteRuntime || {});
  const WS = (LS.ws = LS.ws || { views: {} });
  const { section, chartEntry, specOf, change } = WS;

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

  Object.assign(WS.views, { grid: gridView });
})();
