/* lotterysite's loader: turns each generated page's `.ls-view` container into linked Vega-Lite charts.
 * (Its global is window.lotterysiteRuntime: window.lotterysite would be shadowed by an element with id "lotterysite".)
 *
 * Data come as Arrow files fetched here (a Vega `url` source with format "arrow" hands text to the parser in
 * Chromium), decoded with vega-loader-arrow and passed as values. The view state (models, variants, class,
 * brushes, selected samples) lives in the URL hash and in sessionStorage, so a shared link reopens the same
 * view and instant navigation carries it between pages. User strings only ever reach the DOM as textContent.
 */
(function () {
  "use strict";
  const LS = (window.lotterysiteRuntime = window.lotterysiteRuntime || { views: [], latencies: [], errors: [] });
  const cache = new Map();
  const SHARED = ["ref", "refv", "cmp", "cmpv", "class", "sel"];

  // ---- state: URL hash first (a shared link), then what this tab carried over from another page ----
  function readState() {
    const saved = JSON.parse(sessionStorage.getItem("lotterysite") || "{}");
    const hash = new URLSearchParams(location.hash.slice(1));
    const state = {};
    for (const k of SHARED) if (saved[k] != null) state[k] = saved[k];
    for (const [k, v] of hash) state[k] = v;
    return state;
  }
  function writeState(state) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(state)) if (v != null && v !== "") params.set(k, v);
    history.replaceState(history.state, "", "#" + params.toString());
    const shared = {};
    for (const k of SHARED) if (state[k] != null) shared[k] = state[k];
    sessionStorage.setItem("lotterysite", JSON.stringify(shared));
  }

  // ---- data ----
  // Copies the string-keyed fields only: Vega tags the tuples it ingests with a symbol id, and a copy carrying
  // it would be taken for the old tuple (a remove + insert of the same id changes nothing).
  function fields(row) {
    const out = {};
    for (const k of Object.keys(row)) out[k] = row[k];
    return out;
  }
  function plain(row) {
    return typeof row.toJSON === "function" ? row.toJSON() : Object.assign({}, row);
  }
  function fetchRows(url) {
    if (!cache.has(url)) {
      cache.set(url, fetch(url).then((r) => {
        if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
        return r.arrayBuffer();
      }).then((buf) => vega.format.arrow(new Uint8Array(buf)).map(plain)));
    }
    return cache.get(url);
  }
  function encodeSel(bits) {
    let s = "";
    for (let i = 0; i < bits.length; i += 8) {
      let b = 0;
      for (let j = 0; j < 8; j++) if (bits[i + j]) b |= 1 << j;
      s += String.fromCharCode(b);
    }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function decodeSel(text, n) {
    if (!text) return null;
    const s = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = (s.charCodeAt(i >> 3) >> (i & 7)) & 1;
    return out;
  }

  // ---- DOM helpers (textContent only) ----
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text != null) node.textContent = text;
    return node;
  }
  function select(label, options, value, onChange) {
    const wrap = el("label", { class: "ls-control" }, label + " ");
    const sel = el("select");
    for (const [v, text] of options) {
      const opt = el("option", { value: v }, text);
      if (String(v) === String(value)) opt.selected = true;
      sel.appendChild(opt);
    }
    sel.addEventListener("change", () => onChange(sel.value));
    wrap.appendChild(sel);
    return wrap;
  }
  function download(name, rows) {
    const cols = Object.keys(rows[0] || {}).filter((k) => k !== "image" && k !== "thumbnail");
    // OWASP CSV injection rule: a text cell starting with = + - @ (or tab / carriage return) would run as a
    // spreadsheet formula, so it gets a leading apostrophe; numbers (and BigInts) are left as they are.
    const guard = (v) => (typeof v === "string" && /^[=+\-@\t\r]/.test(v) ? "'" + v : String(v));
    const quote = (v) => {
      if (v == null) return "";
      const s = guard(v);
      return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    };
    const csv = [cols.map(quote).join(","), ...rows.map((r) => cols.map((c) => quote(r[c])).join(","))].join("\n");
    const a = el("a", { href: URL.createObjectURL(new Blob([csv], { type: "text/csv" })), download: name });
    document.body.appendChild(a);
    a.click();
    a.remove();
  }
  function toolbar(root, getRows, name) {
    const bar = el("div", { class: "ls-toolbar" });
    const dl = el("button", { type: "button", class: "md-button ls-download" }, "Download data (CSV)");
    dl.addEventListener("click", () => download(name, getRows()));
    const link = el("button", { type: "button", class: "md-button ls-link" }, "Copy link to this view");
    link.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(location.href));
    bar.append(dl, link);
    root.appendChild(bar);
    return bar;
  }

  async function embed(target, spec, datasets, entry) {
    spec = JSON.parse(JSON.stringify(spec));
    spec.datasets = Object.assign({}, spec.datasets || {}, datasets);
    const dark = document.body.getAttribute("data-md-color-scheme") === "slate";
    const result = await vegaEmbed(target, spec, {
      renderer: "canvas",
      theme: dark ? "dark" : undefined,
      actions: { export: true, source: false, compiled: false, editor: false },
    });
    if (LS.firstRender == null) LS.firstRender = performance.now();
    entry.view = result.view;
    return result.view;
  }

  function setInitial(spec, name, value) {
    for (const p of spec.params || []) if (p.name === name) p.value = value;
  }
  function restoreBrushes(spec, saved) {
    for (const p of spec.params || []) {
      const b = saved[p.name];
      if (!b || !p.select || p.select.type !== "interval") continue;
      const value = {};
      (p.select.encodings || []).forEach((enc, i) => { if (b[i]) value[enc] = b[i]; });
      p.value = value;
    }
  }
  function brushNames(spec) {
    return (spec.params || []).filter((p) => p.select && p.select.type === "interval").map((p) => p.name);
  }

  // ---- views ----
  async function staticView(root, cfg) {
    const spec = await (await fetch(cfg.spec)).json();
    const datasets = {};
    for (const [name, url] of Object.entries(cfg.datasets || {})) datasets[name] = await fetchRows(url);
    const entry = { kind: "static", root };
    LS.views.push(entry);
    const target = el("div", { class: "ls-chart" });
    root.appendChild(target);
    await embed(target, spec, datasets, entry);
    const first = Object.keys(datasets)[0];
    toolbar(root, () => datasets[first], first + ".csv");
  }

  async function evaluationView(root, cfg) {
    const state = readState();
    const [spec, base, correct, samples] = await Promise.all([
      fetch(cfg.spec).then((r) => r.json()), fetchRows(cfg.evaluation), fetchRows(cfg.correct), fetchRows(cfg.samples),
    ]);
    const entry = { kind: "evaluation", root, rows: base };
    LS.views.push(entry);
    const info = el("p", { class: "ls-info" });
    const controls = el("div", { class: "ls-controls" });
    const sel = decodeSel(state.sel, samples.length);
    const nsel = sel ? sel.reduce((a, b) => a + b, 0) : 0;
    const subsets = [["", "no subset"]];
    if (nsel) subsets.push(["sel", `samples selected in the geometry views (${nsel})`]);
    cfg.classes.forEach((c, j) => subsets.push(["class:" + j, "class: " + c]));
    let subset = state.subset || (nsel ? "sel" : "");
    controls.appendChild(select("subset", subsets, subset, (v) => { subset = v; update(); }));
    root.append(controls, info);
    const target = el("div", { class: "ls-chart" });
    root.appendChild(target);
    if (state.ref) setInitial(spec, "model", [{ model_id: state.ref }]);
    const view = await embed(target, spec, { evaluation: base }, entry);
    view.addSignalListener("model", (_, value) => {
      const id = value && value.model_id ? [].concat(value.model_id)[0] : null;
      const s = readState();
      if (id) s.ref = id; else delete s.ref;
      writeState(Object.assign(s, { subset }));
      info.textContent = id ? "reference model for the geometry views: " + id : "";
    });
    toolbar(root, () => entry.rows, "evaluation.csv");

    async function update() {
      const s = readState();
      s.subset = subset;
      writeState(s);
      let mask = null;
      if (subset === "sel" && sel) mask = sel;
      else if (subset.startsWith("class:")) {
        const j = Number(subset.slice(6));
        mask = Uint8Array.from(correct, (r) => (r.label === j ? 1 : 0));
      }
      const delta = new Map();
      if (mask) {
        const n = mask.reduce((a, b) => a + b, 0);
        for (const c of cfg.correct_columns) {
          let all = 0, sub = 0;
          for (let i = 0; i < correct.length; i++) {
            const v = correct[i][c.column];
            all += v;
            if (mask[i]) sub += v;
          }
          if (n) delta.set(c.model_id + "\u0000" + c.variant_label, sub / (n * c.members) - all / (correct.length * c.members));
        }
      }
      entry.rows = base.map((r) => Object.assign(fields(r), { delta: delta.has(r.model_id + "\u0000" + r.variant_label) ? delta.get(r.model_id + "\u0000" + r.variant_label) : null }));
      await view.data("evaluation", entry.rows).runAsync();
      entry.updated = performance.now();
    }
    await update();
  }

  function buildPairs(cfg, samples, ref, cmp, sel) {
    const byId = new Map(samples.map((s, i) => [s.sample_id, [s, i]]));
    const cmpById = cmp ? new Map(cmp.map((r) => [r.sample_id, r])) : null;
    const names = cfg.classes;
    const rows = [];
    for (const r of ref) {
      const [s, i] = byId.get(r.sample_id) || [null, -1];
      if (!s) continue;
      const o = {
        sample_id: r.sample_id, label: r.label, class_name: names[r.label], image: s.thumbnail, pie: !!s.pie,
        robustness: r.robustness, ref_correct: r.correct ? 1 : 0, ref_outcome: r.correct ? "correct" : "incorrect",
        ref_class_accuracy: r.class_accuracy,
        ref_pred_name: names[r.pred], selected: sel ? !!sel[i] : true, index: i,
      };
      for (const f of cfg.axes) o["ref_" + f] = r[f];
      if (cmpById) {
        const c = cmpById.get(r.sample_id);
        if (!c) continue;
        for (const f of cfg.axes) o["cmp_" + f] = c[f];
        o.cmp_correct = c.correct ? 1 : 0;
        o.cmp_class_accuracy = c.class_accuracy;
        o.cmp_pred_name = names[c.pred];
        o.d_angle = c.angle_true - r.angle_true;
        o.d_length = c.length - r.length;
        o.d_margin = c.margin - r.margin;
        o.outcome = r.correct ? (c.correct ? "both right" : "newly wrong") : c.correct ? "newly right" : "both wrong";
      }
      rows.push(o);
    }
    return rows;
  }

  async function geometryView(root, cfg) {
    const kind = cfg.kind;
    const state = readState();
    const models = cfg.models;
    const byId = new Map(models.map((m) => [m.id, m]));
    if (!byId.has(state.ref)) state.ref = models[0].id;
    if (state.cmp && !byId.has(state.cmp)) delete state.cmp;
    state.refv = state.refv || cfg.slices[0].file;
    state.cmpv = state.cmpv || cfg.slices[0].file;
    if (state.class == null) state.class = String(cfg.axis_classes[0] || 0);
    const brushKey = "b_" + kind;
    let brushes = {};
    try { brushes = JSON.parse(state[brushKey] || "{}"); } catch (e) { brushes = {}; }
    const entry = { kind, root, rows: [] };
    LS.views.push(entry);

    const controls = el("div", { class: "ls-controls" });
    const modelOpts = models.map((m) => [m.id, m.label]);
    const sliceOpts = cfg.slices.map((s) => [s.file, s.label]);
    const changed = (key) => (v) => { state[key] = v; if (key === "class") delete brushes.none; load(); };
    controls.append(
      select("reference", modelOpts, state.ref, changed("ref")),
      select("on", sliceOpts, state.refv, changed("refv")),
      select("compare with", [["", "— none —"], ...modelOpts], state.cmp || "", changed("cmp")),
      select("on", sliceOpts, state.cmpv, changed("cmpv")),
    );
    if (kind === "global") controls.append(select("class", cfg.classes.map((c, j) => [j, c]), state.class, changed("class")));
    const info = el("p", { class: "ls-info" });
    const nav = el("p", { class: "ls-links" });
    for (const [k, href] of Object.entries(cfg.links)) if (k !== kind) {
      const a = el("a", { href }, "→ " + k + " view");
      a.addEventListener("click", () => { a.href = href + location.hash; });
      nav.append(a, " ");
    }
    root.append(controls, info, nav);
    const target = el("div", { class: "ls-chart" });
    root.appendChild(target);
    toolbar(root, () => entry.rows, kind + ".csv");
    const specs = {};
    let mode = null, view = null;

    function selection() {
      // Recompute the selected samples from the brushes, as Vega-Lite's filters do (inclusive ranges).
      const active = Object.entries(entry.brushValues || {}).filter(([, v]) => v && Object.keys(v).length);
      const outcome = view && mode === "compare" && kind === "local" ? view.signal("outcome") : "all";
      if (!active.length && outcome === "all") return null;
      const bits = new Uint8Array(entry.samples.length);
      let n = 0;
      for (const r of entry.rows) {
        if (kind === "global" && String(r.label) !== String(state.class)) continue;
        if (outcome !== "all" && r.outcome !== outcome) continue;
        let ok = true;
        for (const [, v] of active) for (const [f, range] of Object.entries(v)) {
          const x = r[f], lo = Math.min(range[0], range[1]), hi = Math.max(range[0], range[1]);
          if (!(x >= lo && x <= hi)) ok = false;
        }
        if (ok) { bits[r.index] = 1; n++; }
      }
      return [bits, n];
    }
    function showSelection() {
      const sel = selection();
      if (sel) { state.sel = encodeSel(sel[0]); info.textContent = sel[1] + " samples selected (carried to the other views)"; }
      else { delete state.sel; info.textContent = ""; }
    }
    function onBrush(name, value) {
      entry.brushValues = Object.assign(entry.brushValues || {}, { [name]: value });
      const spec = specs[mode];
      const p = (spec.params || []).find((q) => q.name === name);
      const keys = Object.keys(value || {});
      brushes[name] = keys.length ? (p.select.encodings || []).map((_, i) => value[keys[i]]) : undefined;
      showSelection();
      state[brushKey] = JSON.stringify(brushes);
      writeState(state);
      const t0 = LS.lastInput;
      requestAnimationFrame(() => { if (t0 != null) LS.latencies.push(performance.now() - t0); LS.lastInput = null; });
    }
    target.addEventListener("pointermove", (e) => { if (e.buttons) LS.lastInput = e.timeStamp; }, true);
    target.addEventListener("pointerup", (e) => { LS.lastInput = e.timeStamp; }, true);

    async function load() {
      writeState(state);
      const want = state.cmp ? "compare" : "single";
      const [samples, ref, cmp] = await Promise.all([
        fetchRows(cfg.samples),
        fetchRows(`${cfg.slice_base}/${byId.get(state.ref).key}/${state.refv}`),
        state.cmp ? fetchRows(`${cfg.slice_base}/${byId.get(state.cmp).key}/${state.cmpv}`) : null,
      ]);
      entry.samples = samples;
      const sel = kind === "samples" ? decodeSel(state.sel, samples.length) : null;
      entry.rows = buildPairs(cfg, samples, ref, cmp, sel);
      if (kind === "samples") info.textContent = sel ? entry.rows.filter((r) => r.selected).length + " selected samples" : "No samples selected: brush in the local or global geometry view first. Showing the lowest-margin samples.";
      if (!specs[want]) specs[want] = await fetch(cfg.specs[want]).then((r) => r.json());
      if (want !== mode || kind === "global") {
        const spec = JSON.parse(JSON.stringify(specs[want]));
        restoreBrushes(spec, brushes);
        if (kind === "global") setInitial(spec, "cls", Number(state.class));
        if (view) view.finalize();
        target.textContent = "";
        mode = want;
        entry.brushValues = {};
        view = await embed(target, spec, { pairs: entry.rows }, entry);
        for (const name of brushNames(spec)) {
          entry.brushValues[name] = view.signal(name);
          view.addSignalListener(name, onBrush);
        }
        if (kind !== "samples" && Object.keys(brushes).length) {
          showSelection();
          writeState(state);
        }
      } else {
        await view.data("pairs", entry.rows).runAsync();
      }
      entry.updated = performance.now();
    }
    await load();
  }

  function initView(root) {
    // Called again for the same container (document$ and the direct call): hand back the first run.
    if (!root.lsPromise) root.lsPromise = drawView(root);
    return root.lsPromise;
  }
  async function drawView(root) {
    const cfg = JSON.parse(root.querySelector(".ls-config").textContent);
    try {
      if (cfg.kind === "static") await staticView(root, cfg);
      else if (cfg.kind === "evaluation") await evaluationView(root, cfg);
      else await geometryView(root, cfg);
    } catch (e) {
      LS.errors.push(String(e));
      root.appendChild(el("p", { class: "ls-error" }, "This view could not be drawn: " + e.message));
      console.error(e);
    }
  }

  function init() {
    for (const v of LS.views) if (v.view && !document.body.contains(v.root)) v.view.finalize();
    LS.views = LS.views.filter((v) => document.body.contains(v.root));
    LS.ready = Promise.all(Array.from(document.querySelectorAll(".ls-view")).map(initView));
  }
  // mkdocs-material's instant navigation swaps the page without reloading scripts: document$ emits per page.
  // It may have emitted the first page before this script subscribed, so initialise once directly too
  // (initView skips containers it has seen).
  if (window.document$ && typeof window.document$.subscribe === "function") window.document$.subscribe(init);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
