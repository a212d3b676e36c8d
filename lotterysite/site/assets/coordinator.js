/* The workspace's coordinator (issue 23 §5): builds the views and links them through the shared selection store
 * (selection.js). Each view is a module of its own that draws from the store and writes to it, never to another
 * view: ws-table.js (the evaluation table), ws-controls.js (the combination list, the menus, the links),
 * ws-panels.js (local geometry and the PCP), ws-grid.js (the sample grid); ws-parts.js holds what they share. The
 * rows and the selection come from workspace.js; the embedding, the redraw queue and the helpers from lotterysite.js
 * (`lib`). This module derives the two steps below (data from c, sel from b) and runs the linked updates.
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
  const W = () => LS.workspace, WS = LS.ws, V = WS.views;
  const LINKED = ["c", "class", "b", "focus", "layout", "scales", "traj", "sev"];
  const JSON_KEYS = ["c", "b"];

  // ---- the coordinator: the store, the views, and the two derived steps (data from c, sel from b) ----
  LS.kinds.workspace = async function (root, cfg, lib) {
    const store = LS.selection.createStore(W().initialState(cfg), LINKED, JSON_KEYS);
    const shared = { model: null };
    V.controls(root, cfg, lib, store, shared);
    const top = lib.el("div", { class: "ls-ws-top" });
    root.appendChild(top);
    const evaluation = V.evaluation(top, cfg, lib, store, shared);
    V.combinations(top, cfg, lib, store, shared);
    const geometry = [V.local(root, cfg, lib, store, shared), V.pcp(root, cfg, lib, store, shared),
      V.grid(root, cfg, lib, store, shared)];
    V.links(root, cfg, lib, store);
    const link = linker([evaluation, ...geometry]);
    V.bindSelection(store);
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
      WS.hold(views.map((v) => v.entry));
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
