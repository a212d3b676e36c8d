/* The workspace's shared parts (issue 23): what every view module uses to build its section and chart and to
 * change its live Vega view. Each view is a module of its own (ws-table.js, ws-controls.js, ws-panels.js,
 * ws-grid.js) that registers itself in LS.ws.views; coordinator.js builds them and links them through the selection
 * store (selection.js).
 */
(function () {
  "use strict";
  const LS = (window.lotterysiteRuntime = window.lotterysiteRuntime || {});
  const WS = (LS.ws = LS.ws || { views: {} });
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

  Object.assign(WS, { section, chartEntry, specOf, modify, change, hold, focusOf });
})();
