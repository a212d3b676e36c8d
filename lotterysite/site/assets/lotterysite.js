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
  // workspace.js loads first and may have made the runtime already (to register its view kind in LS.kinds).
  const LS = (window.lotterysiteRuntime = window.lotterysiteRuntime || {});
  for (const k of ["views", "latencies", "warnings"]) LS[k] = LS[k] || [];
  LS.kinds = LS.kinds || {};
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
  // A selection that does not decode to exactly the bytes n samples need (a link cut short in a chat, a link made
  // for another store) is dropped with a warning: a shorter one would silently select fewer samples.
  function decodeSel(text, n) {
    if (!text) return null;
    let s = null;
    try { s = atob(text.replace(/-/g, "+").replace(/_/g, "/")); } catch { s = null; }
    if (s == null || s.length !== Math.ceil(n / 8)) {
      LS.warnings.push(`sel: the link's selection is not one of ${n} samples (cut short?); ignored`);
      return null;
    }
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
  // A class picker for many classes: type to search (a datalist of the served classes), Enter or a pick from the
  // list chooses; keyboard-only works. Names reach the DOM as attribute values and text only.
  let pickers = 0;
  function classPicker(label, names, ids, onPick) {
    const id = "ls-classes-" + ++pickers;
    const wrap = el("label", { class: "ls-control ls-picker" }, label + " ");
    const input = el("input", { type: "search", list: id, autocomplete: "off", spellcheck: "false",
      placeholder: `type to search ${ids.length} classes` });
    const list = el("datalist", { id });
    for (const j of ids) list.appendChild(el("option", { value: names[j] }));
    const byName = new Map(ids.map((j) => [names[j], j]));
    const pick = (loose) => {
      const q = input.value.trim();
      let j = byName.get(input.value);
      if (j == null && loose && q) {
        // Enter on a partial name: the first class containing it (case-insensitive), as the list shows it.
        const low = q.toLowerCase();
        j = ids.find((c) => names[c].toLowerCase().includes(low));
      }
      if (j == null) return;
      input.value = "";
      onPick(j);
    };
    input.addEventListener("change", () => pick(false));
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); pick(true); } });
    wrap.append(input, list);
    return wrap;
  }
  // The classes worth looking at first: the lowest accuracy of the reference (model, data), or, when comparing,
  // the largest accuracy change between the two (ties: lower reference accuracy, then class id). Accuracies are
  // the slices' per-class accuracy on the full evaluation set.
  function defaultClasses(ref, cmp, n) {
    const accOf = (rows) => { const m = new Map(); for (const r of rows) m.set(r.label, r.class_accuracy); return m; };
    const a = accOf(ref), b = cmp ? accOf(cmp) : null;
    const num = (x) => (x == null || Number.isNaN(x) ? Infinity : x);
    const key = (j) => (b ? [num(-Math.abs(b.get(j) - a.get(j))), num(a.get(j)), j] : [num(a.get(j)), j]);
    const order = (x, y) => { const p = key(x), q = key(y); for (let i = 0; i < p.length; i++) if (p[i] !== q[i]) return p[i] < q[i] ? -1 : 1; return 0; };
    return [...a.keys()].sort(order).slice(0, n);
  }
  // `extra`: constant columns put first in every row (which models and data the rows are of).
  function download(name, rows, extra) {
    const lead = Object.keys(extra || {});
    rows = lead.length ? rows.map((r) => Object.assign({}, extra, r)) : rows;
    const cols = [...new Set([...lead, ...Object.keys(rows[0] || {})])].filter((k) => k !== "image" && k !== "thumbnail");
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
  // ---- errors: a view that fails says so on the page instead of silently keeping stale charts ----
  // `LS.errors` lists the failures of views on the page being read. A view on a page that instant navigation has
  // replaced does not count: this script can finish loading between the new address and the new content, and the
  // old page's view then fails for a page nobody reads (its relative paths resolve under the new address).
  const failures = [];
  Object.defineProperty(LS, "errors", {
    configurable: true,
    get: () => failures.filter((f) => !f.root || f.root.isConnected).map((f) => f.msg),
  });
  function fail(entry, e) {
    const msg = e && e.message ? e.message : String(e);
    failures.push({ root: entry.root, msg });
    entry.error.textContent = "This view failed and may not match its controls (" + msg + "). Reload the page to redraw it.";
    entry.error.hidden = false;
    console.error(e);
  }
  // Vega logs dataflow errors instead of throwing them: a logger routes them to the view's error element.
  function logger(entry) {
    const base = vega.logger(vega.Warn);
    const out = {
      level(l) { if (l === undefined) return base.level(); base.level(l); return out; },
      error(...a) { fail(entry, a.find((x) => x instanceof Error) || new Error(a.map(String).join(" "))); return out; },
      warn(...a) { LS.warnings.push(a.map(String).join(" ")); base.warn(...a); return out; },
      info(...a) { base.info(...a); return out; },
      debug(...a) { base.debug(...a); return out; },
    };
    return out;
  }

  // ---- theme: the charts take the page's palette (mkdocs-material sets data-md-color-scheme on <body>) ----
  function scheme() {
    return document.body.getAttribute("data-md-color-scheme") || "default";
  }
  function themeConfig(width) {
    const dark = scheme() === "slate";
    const css = getComputedStyle(document.body);
    const v = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
    const bg = v("--md-default-bg-color", dark ? "#1e2129" : "#ffffff");
    const fg = v("--md-default-fg-color", dark ? "#e2e4e9" : "#222222");
    const fg2 = v("--md-default-fg-color--light", dark ? "#a9acb5" : "#666666");
    const grid = dark ? "#3a3f4b" : "#e3e3e3";
    const axis = { labelColor: fg, titleColor: fg, domainColor: fg2, tickColor: fg2, gridColor: grid };
    return {
      dark,
      config: {
        background: bg,
        axis, header: { labelColor: fg, titleColor: fg },
        // Legends stack (one per line) and wrap their entries on a narrow page instead of widening the chart.
        legend: Object.assign({ labelColor: fg, titleColor: fg, layout: { top: { direction: "vertical", anchor: "start" } } },
          width < 700 ? { columns: width < 480 ? 1 : 2 } : {}),
        title: { color: fg, subtitleColor: fg2 }, text: { color: fg }, view: { stroke: grid },
        // Vega-Lite draws rules and ticks (error bars, legend symbols of stroke-only marks) black by default:
        // invisible on the dark palette.
        rule: { color: fg2 }, tick: { color: fg2 },
        style: { "guide-label": { fill: fg }, "guide-title": { fill: fg }, "group-title": { fill: fg } },
      },
    };
  }

  // ---- toolbar: data, picture, link (with feedback) ----
  function toolbar(root, entry, name) {
    const bar = el("div", { class: "ls-toolbar" });
    const dl = el("button", { type: "button", class: "md-button ls-download" }, "Download data (CSV)");
    // A view that shows chosen models names them in the file's name and in its first columns (entry.csv).
    const fileName = () => (entry.csv ? entry.csv().name : name);
    dl.addEventListener("click", async () => {
      try { // entry.csvRows: rows completed for the file (the geometry pages: every class angle), fetched on the click
        download(fileName(), entry.csvRows ? await entry.csvRows() : entry.rows || [], entry.csv ? entry.csv().columns : {});
      } catch (e) { fail(entry, e); }
    });
    const png = el("button", { type: "button", class: "md-button ls-png" }, "Save chart (PNG)");
    png.addEventListener("click", async () => {
      if (!entry.view) return;
      // entry.image: a view with a layer of its own (the workspace PCP's lines, lines.js) paints it in.
      const href = entry.image ? await entry.image() : await entry.view.toImageURL("png", 2);
      const a = el("a", { href, download: fileName().replace(/\.csv$/, ".png") });
      document.body.appendChild(a);
      a.click();
      a.remove();
    });
    const link = el("button", { type: "button", class: "md-button ls-link" }, "Copy link to this view");
    const status = el("span", { class: "ls-status", role: "status", "aria-live": "polite" });
    link.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(location.href);
        status.textContent = "Link copied";
      } catch {
        status.textContent = "Could not copy: the link is in the address bar";
      }
      clearTimeout(status.timer);
      status.timer = setTimeout(() => { status.textContent = ""; }, 4000);
    });
    bar.append(dl, png, link, status);
    root.appendChild(bar);
    return bar;
  }

  // ---- specs: the loader fills in what depends on the page (state, width) before embedding ----
  function setParam(spec, name, value) {
    for (const p of spec.params || []) if (p.name === name) { p.value = value; return true; }
    return false;
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
  // An axis range shared by a chart and its densities: the param, and the extent of every density estimated on it
  // (its output field is named "v_<param>", see charts._density).
  function setExtent(spec, name, range) {
    setParam(spec, name, range);
    const walk = (node) => {
      if (Array.isArray(node)) { node.forEach(walk); return; }
      if (!node || typeof node !== "object") return;
      if (node.density != null && Array.isArray(node.as) && node.as[0] === "v_" + name) node.extent = range;
      for (const k of Object.keys(node)) if (k !== "datasets") walk(node[k]);
    };
    walk(spec);
  }
  function brushNames(spec) {
    return (spec.params || []).filter((p) => p.select && p.select.type === "interval").map((p) => p.name);
  }
  // Fit to the page: a concat/facet named in cfg.reflow gets as many columns as fit (item width in px), a param
  // named in cfg.fit_params gets the number of items of that width that fit, units named in cfg.shrink get a width
  // between their minimum and maximum so that their count fits, legends with columns get as many as fit
  // (cfg.legend: entry width in px).
  function fitToWidth(spec, cfg, width) {
    const reflow = cfg.reflow || {};
    const shrink = cfg.shrink || {};
    const widths = {};
    const walk = (node) => {
      if (Array.isArray(node)) { node.forEach(walk); return; }
      if (!node || typeof node !== "object") return;
      if (node.name in reflow && node.columns != null) {
        const [item, most] = reflow[node.name];
        node.columns = Math.max(1, Math.min(most, Math.floor(width / item)));
      }
      if (cfg.legend && node.legend && node.legend.columns != null) {
        node.legend.columns = Math.max(1, Math.min(node.legend.columns, Math.floor(width / cfg.legend)));
      }
      if (typeof node.name === "string") for (const [prefix, [lo, hi, count, extra, param]] of Object.entries(shrink)) {
        if (!node.name.startsWith(prefix)) continue;
        node.width = Math.max(lo, Math.min(hi, Math.floor((width - extra) / count)));
        if (param) widths[param] = node.width;
      }
      for (const k of Object.keys(node)) if (k !== "datasets" && k !== "data") walk(node[k]);
    };
    walk(spec);
    for (const [name, w] of Object.entries(widths)) setParam(spec, name, w);
    for (const [name, [item, least, most]] of Object.entries(cfg.fit_params || {})) {
      setParam(spec, name, Math.max(least, Math.min(most, Math.floor(width / item))));
    }
  }

  // The width a view may fill: its own, or (inside a closed <details>, which has none) its nearest laid-out
  // ancestor's.
  function roomOf(node) {
    for (let n = node; n; n = n.parentElement) if (n.clientWidth) return n.clientWidth;
    return window.innerWidth;
  }

  // `patch`: vega-embed's, a change to the compiled Vega spec (the workspace's panels: ws-panels.js).
  async function embed(entry, spec0, datasets, patch) {
    const room = roomOf(entry.root);
    const theme = themeConfig(room);
    const target = entry.target;
    // Hold the height while the new view draws, so the page does not jump.
    target.style.minHeight = target.offsetHeight + "px";
    let width = room;
    let result = null;
    for (let attempt = 0; attempt < 3; attempt++) {
      const spec = JSON.parse(JSON.stringify(spec0));
      spec.datasets = Object.assign({}, spec.datasets || {}, datasets);
      fitToWidth(spec, entry.cfg, width);
      if (entry.view) entry.view.finalize();
      entry.view = null;
      result = await vegaEmbed(target, spec, {
        renderer: "canvas",
        config: theme.config,
        actions: false, // the toolbar below the chart exports; vega-embed's menu covered titles and legends
        logger: logger(entry),
        tooltip: { theme: theme.dark ? "dark" : "light" },
        ...(patch ? { patch } : {}),
      });
      entry.view = result.view;
      // Axis labels and legends are not in the estimate: when the chart came out wider than the page, fit again.
      const drawn = result.view.container().querySelector("canvas");
      const over = drawn ? drawn.getBoundingClientRect().width - room : 0;
      if (over <= 1) break;
      width -= over + 8;
    }
    target.style.minHeight = "";
    if (LS.firstRender == null) LS.firstRender = performance.now();
    entry.scheme = scheme();
    entry.width = entry.root.clientWidth;
    return result.view;
  }

  // Every view redraws through one queue: a load fetches its data at once, but draws only after the loads before
  // it, and not at all when a newer choice came meanwhile. A draw embeds a fresh view: swapping data into a live
  // Vega-Lite view leaves interval brushes bound to the old scales (TypeErrors, stale charts).
  function newEntry(kind, root, cfg) {
    const entry = { kind, root, cfg, rows: [], view: null, shown: null };
    entry.error = el("p", { class: "ls-error", role: "alert", hidden: "" });
    // vega-embed owns the chart's element (its role and aria attributes): the figure around it carries ours.
    entry.target = el("div", { class: "ls-chart" });
    entry.summary = el("p", { class: "ls-summary", id: "ls-summary-" + (LS.views.length + 1) });
    entry.figure = el("figure", { class: "ls-figure", role: "figure", tabindex: "0", "aria-describedby": entry.summary.id });
    entry.figure.appendChild(entry.target);
    let token = 0;
    let chain = Promise.resolve();
    entry.settled = chain;
    entry.queue = (prepare, draw) => {
      const mine = ++token;
      const data = prepare();
      data.catch(() => {}); // reported when its turn comes
      // `settled` waits for the fetches of a draw a newer one drops too (its files could land after the newer draw);
      // the newer draw does not.
      LS.track(data);
      chain = chain.then(async () => {
        if (mine !== token) return;
        const got = await data;
        if (mine !== token) return;
        entry.error.hidden = true;
        await draw(got);
      }).catch((e) => fail(entry, e));
      entry.settled = chain;
      return chain;
    };
    LS.views.push(entry);
    return entry;
  }
  // Work in flight outside a view's draw chain, for `settled`: a queued draw's fetches (dropped or not), and work
  // that comes before any view's draw is queued (the workspace's new combinations' files: its views queue their
  // draws once those are in). A page read right after a change would otherwise see the old views.
  const busy = new Set();
  LS.track = (p) => {
    busy.add(p);
    const done = () => busy.delete(p);
    p.then(done, done);
    return p;
  };
  LS.settled = async () => {
    // Wait until no view has work queued (a draw may queue another) and nothing tracked is in flight.
    for (;;) {
      const pending = LS.views.map((v) => v.settled), tracked = [...busy];
      await Promise.all([...pending, ...tracked.map((p) => p.catch(() => null))]);
      if (!busy.size && LS.views.every((v, i) => v.settled === pending[i])) return;
    }
  };
  function describe(entry, label, summary) {
    entry.figure.setAttribute("aria-label", label);
    entry.summary.textContent = summary;
  }
  function tableOf(caption, header, rows) {
    const details = el("details", { class: "ls-table" });
    details.appendChild(el("summary", {}, caption));
    const table = el("table");
    const head = el("tr");
    for (const h of header) head.appendChild(el("th", { scope: "col" }, h));
    table.appendChild(el("thead")).appendChild(head);
    const body = el("tbody");
    for (const r of rows) {
      const tr = el("tr");
      r.forEach((c, i) => tr.appendChild(el(i ? "td" : "th", i ? {} : { scope: "row" }, c)));
      body.appendChild(tr);
    }
    table.appendChild(body);
    details.appendChild(table);
    return details;
  }
  const pct = (x) => (x == null || Number.isNaN(x) ? "—" : (100 * x).toFixed(1) + " %");
  // [mean, lo, hi] of the shares of correct predictions of n samples, from their counts' sum and sum of squares (each
  // sample's count of `members` predictions): a 95 % Wilson score interval at the effective sample size
  // max(n, n p (1 - p) / s^2), s^2 the shares' variance (n - 1 in the denominator). The same rule as
  // lotterysite.store.sampling.mean_interval. Sums of integer counts are exact in doubles (n * sumSq < 2^53 up to
  // 10^5 samples of 95 predictions), so s^2 is 0 exactly when every share is equal.
  function subsetInterval(n, sum, sumSq, members) {
    if (!n) return [null, null, null];
    const p = sum / (n * members);
    const s2 = n > 1 ? (n * sumSq - sum * sum) / (n * (n - 1) * members * members) : 0;
    const m = s2 <= 0 || p === 0 || p === 1 ? n : Math.max(n, (n * p * (1 - p)) / s2);
    const z = 1.959964, z2 = z * z;
    const centre = (p + z2 / (2 * m)) / (1 + z2 / m);
    const half = (z / (1 + z2 / m)) * Math.sqrt((p * (1 - p)) / m + z2 / (4 * m * m));
    return [p, Math.max(0, centre - half), Math.min(1, centre + half)];
  }

  // ---- views ----
  // A static chart's reader-set params (cfg.keep: param -> link key) live in the link: a select's value (one of its
  // options), or a legend selection's values (JSON list, each one of its scale's domain). Anything else is dropped.
  function keptValue(p, text) {
    if (p.select) {
      let values = null;
      try { values = JSON.parse(text); } catch { values = null; }
      const field = (p.select.fields || [])[0];
      return Array.isArray(values) && field ? values.filter((v) => typeof v === "string").map((v) => ({ [field]: v })) : null;
    }
    const options = p.bind && p.bind.options;
    return options && options.includes(text) ? text : null;
  }
  function restoreKept(spec, keep, state) {
    for (const p of spec.params || []) {
      const key = keep[p.name];
      if (!key || state[key] == null) continue;
      const v = keptValue(p, state[key]);
      if (v != null && !(Array.isArray(v) && !v.length)) p.value = v;
    }
  }
  function watchKept(view, spec, keep) {
    for (const p of spec.params || []) {
      const key = keep[p.name];
      if (!key) continue;
      view.addSignalListener(p.name, (_, value) => {
        const st = readState();
        let text = value;
        if (p.select) {
          const vals = value && value[(p.select.fields || [])[0]];
          text = vals && vals.length ? JSON.stringify(vals) : null;
        }
        if (text == null || text === "") delete st[key]; else st[key] = text;
        writeState(st);
      });
    }
  }
  async function staticView(root, cfg) {
    const entry = newEntry("static", root, cfg);
    root.append(entry.error, entry.figure, entry.summary);
    toolbar(root, entry, Object.keys(cfg.datasets || { data: 0 })[0] + ".csv");
    const keep = cfg.keep || {};
    entry.refresh = () => entry.queue(async () => {
      const spec = await (await fetch(cfg.spec)).json();
      const datasets = {};
      for (const [name, url] of Object.entries(cfg.datasets || {})) datasets[name] = await fetchRows(url);
      return [spec, datasets];
    }, async ([spec, datasets]) => {
      const first = Object.keys(datasets)[0];
      entry.rows = datasets[first] || [];
      const state = readState();
      restoreKept(spec, keep, state);
      const view = await embed(entry, spec, datasets);
      watchKept(view, spec, keep);
      entry.shown = {};
      describe(entry, cfg.title, cfg.title + ": " + entry.rows.length + " rows; download them as CSV below.");
    });
    await entry.refresh();
  }

  // ---- the evaluation table's subsets: per-sample correct counts as typed arrays, summed over the subset ----
  // correct.arrow (site/data.py correct_table): per served sample (samples.arrow's order) its label, in_sample and
  // `counts`, its correct predictions per stored column packed at cfg.correct_bits bits (4: two a byte, the even slot
  // in the low nibble; 16: little-endian). A column of cfg.correct_columns is stored (`slot`) or the sum of slots
  // (`sum`: the corruption mean). Decoded once per file into one typed array per column.
  const countCache = new Map();
  function fetchCounts(cfg) {
    if (!countCache.has(cfg.correct)) {
      countCache.set(cfg.correct, fetchRows(cfg.correct).then((rows) => decodeCounts(cfg, rows)));
    }
    return countCache.get(cfg.correct);
  }
  function unpackSlots(url, rows, slots, bits) {
    const n = rows.length, Type = bits > 8 ? Uint16Array : Uint8Array;
    const out = Array.from({ length: slots }, () => new Type(n));
    for (let i = 0; i < n; i++) {
      const b = rows[i].counts;
      if (!b || b.length * 8 < slots * bits) throw new Error(`${url}: counts of row ${i} hold fewer than ${slots} columns`);
      if (bits === 4) for (let k = 0; k < slots; k++) out[k][i] = (b[k >> 1] >> ((k & 1) << 2)) & 15;
      else if (bits === 8) for (let k = 0; k < slots; k++) out[k][i] = b[k];
      else for (let k = 0; k < slots; k++) out[k][i] = b[2 * k] | (b[2 * k + 1] << 8);
    }
    return out;
  }
  function decodeCounts(cfg, rows) {
    const columns = cfg.correct_columns, n = rows.length;
    const slots = columns.reduce((a, c) => (c.slot == null ? a : Math.max(a, c.slot + 1)), 0);
    const stored = unpackSlots(cfg.correct, rows, slots, cfg.correct_bits || 8);
    const values = columns.map((c) => {
      if (c.slot != null) return stored[c.slot];
      const out = new (c.members > 65535 ? Uint32Array : c.members > 255 ? Uint16Array : Uint8Array)(n);
      for (const k of c.sum) { const v = stored[k]; for (let i = 0; i < n; i++) out[i] += v[i]; }
      return out;
    });
    return { n, values, label: Int32Array.from(rows, (r) => r.label),
      inSample: Uint8Array.from(rows, (r) => (r.in_sample === false ? 0 : 1)) };
  }
  // The subset's samples: those of the stratified sample (in_sample: extra exemplar rows would pull a subset toward
  // hard samples, method page "Which samples the views show") that `keep(i)` takes, as an index list.
  function subsetIndex(counts, keep) {
    const idx = new Int32Array(counts.n);
    let k = 0;
    for (let i = 0; i < counts.n; i++) if (counts.inSample[i] && keep(i)) idx[k++] = i;
    return idx.subarray(0, k);
  }
  // The evaluation table's rows with the subset's accuracy (its 95 % interval) and its difference from each model's
  // accuracy; `idx`: the subset's samples (subsetIndex) or null (no subset). One pass per column over the subset,
  // summing the counts and their squares. Returns [rows, subset size].
  function subsetRows(base, counts, columns, idx) {
    const sub = new Map();
    const n = idx ? idx.length : 0;
    if (n) columns.forEach((c, j) => {
      const v = counts.values[j];
      let sum = 0, sq = 0;
      for (let t = 0; t < n; t++) { const x = v[idx[t]]; sum += x; sq += x * x; }
      sub.set(c.model_id + "\u0000" + c.variant_label, subsetInterval(n, sum, sq, c.members));
    });
    const rows = base.map((r) => {
      const [s, lo, hi] = sub.get(r.model_id + "\u0000" + r.variant_label) || [null, null, null];
      const d = (x) => (x == null ? null : x - r.accuracy);
      return Object.assign(fields(r), { subset_accuracy: s, subset_lo: lo, subset_hi: hi, delta: d(s),
        delta_lo: d(lo), delta_hi: d(hi), accuracy_text: pct1(r.accuracy),
        subset_text: s == null ? "no subset chosen" : `${pct1(s)} [${pct1(lo)}, ${pct1(hi)}] (${signed(d(s))} from all)` });
    });
    return [rows, n];
  }
  // The table's printed values, as its spec's format ".1%" and "+.1%" print them (d3-format: toFixed of the
  // percentage, U+2212 for a minus): made here once per row, not by Vega's format for every mark a swap re-encodes.
  const pct1 = (x) => (100 * x).toFixed(1) + "%";
  const signed = (x) => { const t = pct1(Math.abs(x)); return (x < 0 && parseFloat(t) !== 0 ? "\u2212" : "+") + t; };
  // A new subset into the live table: its fields written in place into the rows the marks read and the view's own
  // (`tableRows`), its version (cfg.sub_param) bumped with the Δ range, then one dataflow run. No changeset: the facet,
  // the stack and the accuracy bars' positions and texts are not touched, only the layers that read the version
  // re-encode (charts._eval_sub); a changeset of these 7 fields on every row was most of a brush's table update
  // (bench/RESULTS.md 2026-12-06). No dataflow operator computes anything of them, so that none holds a stale value.
  const SUBSET_FIELDS = ["subset_accuracy", "subset_lo", "subset_hi", "delta", "delta_lo", "delta_hi", "subset_text"];
  vega.expressionFunction("lsSub", (version, x) => x);
  function swapSubset(entry, rows, cfg) {
    const view = entry.view, byKey = new Map(rows.map((r) => [r.model_id + "\u0000" + r.variant_label, r]));
    for (const d of tableRows(view)) {
      const r = byKey.get(d.model_id + "\u0000" + d.variant_label);
      for (const f of SUBSET_FIELDS) d[f] = r[f];
    }
    view.signal(cfg.dmax_param, deltaRange(rows));
    view.signal(cfg.sub_param, (view.signal(cfg.sub_param) || 0) + 1);
    return view.runAsync();
  }
  // The table's rows as the view holds them (view.data) and every copy its marks read: Vega's transforms that write a
  // field (the facet's sort index, the stack) work on copies of their input rows. Found once per view in its marks.
  const rowCache = new WeakMap();
  function tableRows(view) {
    if (!rowCache.has(view)) {
      const out = new Set(view.data("evaluation"));
      const walk = (node) => {
        for (const it of node.items || []) {
          if (it.datum && "delta" in it.datum) out.add(it.datum);
          walk(it);
        }
      };
      walk(view.scenegraph().root);
      rowCache.set(view, [...out]);
    }
    return rowCache.get(view);
  }
  // Marks whose update reads a version the page bumps (`marker`: lsSub here, lsSel in the workspace's panels) encode
  // on a bump only the channels `keep(k, update)` names, the rest once, as they enter: Vega-Lite encodes every
  // channel on every update, and a bump re-encodes every mark of these. Their rows and scales change only with a
  // new view.
  function encodeOnce(spec, marker, keep) {
    const walk = (m) => {
      const e = m.encode, up = e && e.update;
      if (up && JSON.stringify(up).includes(marker)) {
        e.enter = Object.assign({}, e.enter);
        for (const k of Object.keys(up)) if (!keep(k, up)) { e.enter[k] = up[k]; delete up[k]; }
      }
      (m.marks || []).forEach(walk);
    };
    walk(spec);
    return spec;
  }
  // The table's subset marks (charts._eval_sub) keep the channels that read the subset or the model selection (its
  // store). A position's channels stay together: Vega makes a rect's width of x and x2 only within one encoding set.
  const SPATIAL = [["x", "x2", "xc", "width"], ["y", "y2", "yc", "height"]];
  function subsetOnce(spec) {
    const reads = (up, k) => up[k] != null && /lsSub\(|model_store/.test(JSON.stringify(up[k]));
    const keep = (k, up) => reads(up, k) || SPATIAL.some((g) => g.includes(k) && g.some((c) => reads(up, c)));
    return encodeOnce(spec, "lsSub(", keep);
  }
  // The Δ region's half range: the smallest of 5, 10, 20, 30, 40, 60, 80, 100 points that holds every subset bar and
  // interval, so that none is cut.
  function deltaRange(rows) {
    let most = 0;
    for (const r of rows) if (r.delta != null) most = Math.max(most, Math.abs(r.delta_lo), Math.abs(r.delta_hi), Math.abs(r.delta));
    return [0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1].find((d) => most <= d + 1e-12) || 1;
  }

  // The evaluation page's controls: the reference model, the subset menu (the selection carried from the geometry
  // views, a class) and, with many classes, a class picker. `on`: {ref(id), subset(value)}.
  function evaluationControls(cfg, state, nsel, on) {
    const controls = el("div", { class: "ls-controls" });
    const subsets = [["", "no subset"]];
    if (nsel) subsets.push(["sel", `samples selected in the geometry views (${nsel})`]);
    // Many classes: the menu offers the class in the link only; the picker finds any class with served samples.
    const picking = Array.isArray(cfg.picker);
    const linked = /^class:\d+$/.test(state.subset || "") ? Number(state.subset.slice(6)) : null;
    const classOptions = picking ? cfg.picker.filter((j) => j === linked) : cfg.classes.map((_, j) => j);
    classOptions.forEach((j) => subsets.push(["class:" + j, "class: " + cfg.classes[j]]));
    const subset = subsets.some(([v]) => v === state.subset) ? state.subset : nsel ? "sel" : "";
    const refSelect = select("reference model", [["", "— none —"], ...cfg.models.map((m) => [m.id, m.label])],
      state.ref || "", on.ref);
    const subsetSelect = select("subset", subsets, subset, on.subset);
    controls.append(refSelect, subsetSelect);
    if (picking) {
      controls.append(classPicker("class subset", cfg.classes, cfg.picker, (j) => {
        const menu = subsetSelect.querySelector("select");
        for (const o of Array.from(menu.options)) if (o.value.startsWith("class:")) o.remove();
        menu.appendChild(el("option", { value: "class:" + j }, "class: " + cfg.classes[j]));
        menu.value = "class:" + j;
        on.subset(menu.value);
      }));
    }
    return { controls, subset, refMenu: refSelect.querySelector("select") };
  }
  // The evaluation table's data table (accuracy, with the subset's and its interval) and its description.
  function evaluationSummary(entry, table, models, rows, subset) {
    const name = (id) => (models.has(id) ? models.get(id).label : id);
    const variants = [...new Set(rows.map((r) => r.variant_label))];
    const byModel = new Map();
    for (const r of rows) {
      if (!byModel.has(r.model_id)) byModel.set(r.model_id, {});
      byModel.get(r.model_id)[r.variant_label] = r;
    }
    const cell = (r) => (r ? pct(r.accuracy) + (r.delta == null ? "" :
      ` (subset ${pct(r.subset_accuracy)}, 95 % ${pct(r.subset_lo)}–${pct(r.subset_hi)})`) : "—");
    table.replaceChildren(tableOf("Data table: accuracy per model and data set", ["model", ...variants],
      [...byModel].map(([id, vs]) => [name(id), ...variants.map((v) => cell(vs[v]))])));
    const best = rows.filter((r) => r.variant_label === variants[0]).sort((a, b) => b.accuracy - a.accuracy)[0];
    describe(entry, "Evaluation table: accuracy of " + byModel.size + " models on " + variants.length + " data sets",
      `${byModel.size} models on ${variants.length} data sets; best on ${variants[0]}: ` + (best ? name(best.model_id) : "—") +
      (subset ? `. Subset: ${entry.subsetSize || 0} samples.` : "."));
  }

  async function evaluationView(root, cfg) {
    const state = readState();
    const models = new Map(cfg.models.map((m) => [m.id, m]));
    if (state.ref && !models.has(state.ref)) delete state.ref;
    // correct.arrow holds one record per served sample, in samples.arrow's order: it sizes the selection, so
    // samples.arrow is not needed here.
    const [spec, base, counts] = await Promise.all([
      fetch(cfg.spec).then((r) => r.json()), fetchRows(cfg.evaluation), fetchCounts(cfg),
    ]);
    const entry = newEntry("evaluation", root, cfg);
    const info = (entry.info = el("p", { class: "ls-info", "aria-live": "polite" }));
    const sel = decodeSel(state.sel, counts.n);
    const nsel = sel ? sel.reduce((a, b) => a + b, 0) : 0;
    let subset = "";
    const ui = evaluationControls(cfg, state, nsel, {
      ref: (v) => { if (v) state.ref = v; else delete state.ref; update(false); },
      subset: (v) => { subset = v; update(true); },
    });
    subset = ui.subset;
    root.append(ui.controls, info, entry.error, entry.figure, entry.summary);
    const table = el("div");
    root.appendChild(table);
    toolbar(root, entry, "evaluation.csv");
    const showRef = () => {
      info.textContent = state.ref ? "Reference model for the geometry views: " + models.get(state.ref).label
        : "Click a bar (or choose above) to pick the reference model for the geometry views.";
    };
    function rowsFor(subsetValue) {
      let idx = null;
      if (subsetValue === "sel" && sel) idx = subsetIndex(counts, (i) => sel[i] === 1);
      else if (subsetValue.startsWith("class:")) {
        const j = Number(subsetValue.slice(6));
        idx = subsetIndex(counts, (i) => counts.label[i] === j);
      }
      const [rows, n] = subsetRows(base, counts, cfg.correct_columns, idx);
      if (idx) entry.subsetSize = n;
      return rows;
    }
    async function embedTable(rows, ref) {
      const spec2 = JSON.parse(JSON.stringify(spec));
      if (ref) setParam(spec2, "model", [{ model_id: ref }]);
      setParam(spec2, cfg.dmax_param, deltaRange(rows));
      const view = await embed(entry, spec2, { evaluation: rows }, subsetOnce);
      view.addSignalListener("model", (_, value) => {
        const id = value && value.model_id ? [].concat(value.model_id)[0] : null;
        const st = readState();
        if (id) { st.ref = id; state.ref = id; } else { delete st.ref; delete state.ref; }
        writeState(Object.assign(st, { subset }));
        ui.refMenu.value = id || "";
        showRef();
      });
    }
    // swap: a new subset only, drawn into the live view (the reference model, a new width or palette re-embed).
    function update(swap) {
      const s = readState();
      if (state.ref) s.ref = state.ref; else delete s.ref;
      s.subset = subset;
      writeState(s);
      const ref = state.ref;
      return entry.queue(async () => rowsFor(subset), async (rows) => {
        entry.rows = rows;
        if (swap && entry.view) await swapSubset(entry, rows, cfg);
        else await embedTable(rows, ref);
        entry.shown = { ref: ref || null, subset };
        showRef();
        evaluationSummary(entry, table, models, rows, subset);
      });
    }
    entry.refresh = () => update(false);
    await update(false);
  }

  // A sample's thumbnail: a file of its own (data/thumbs/<id>.<format>), so the browser fetches only the images a
  // grid or a tooltip shows (an image mark loads its url when drawn).
  function thumbUrl(cfg, s) {
    return s.thumb ? cfg.thumbs + s.sample_id + "." + s.thumb : null;
  }
  function buildPairs(cfg, samples, ref, cmp, sel) {
    const byId = new Map(samples.map((s, i) => [s.sample_id, [s, i]]));
    const cmpById = cmp ? new Map(cmp.map((r) => [r.sample_id, r])) : null;
    const names = cfg.classes;
    const [wrong, newlyWrong, newlyRight, right] = cfg.outcomes;
    const metrics = [...new Set(["angle_true", "length", "margin", ...cfg.axes])];
    const rows = [];
    for (const r of ref) {
      const [s, i] = byId.get(r.sample_id) || [null, -1];
      if (!s) continue;
      // Extra exemplar rows (outside the stratified sample) are for the sample view only: in a scatter, a density
      // or a class statistic they would pull the class toward its hard samples.
      const inSample = s.in_sample !== false;
      if (!inSample && cfg.kind !== "samples") continue;
      const o = {
        sample_id: r.sample_id, label: r.label, class_name: names[r.label], image: thumbUrl(cfg, s), pie: !!s.pie,
        in_sample: inSample,
        robustness: r.robustness, ref_correct: r.correct ? 1 : 0, ref_outcome: r.correct ? cfg.correctness[0] : cfg.correctness[1],
        ref_class_accuracy: r.class_accuracy,
        ref_pred_name: names[r.pred], selected: sel ? !!sel[i] : true, index: i,
      };
      // A slice file holds the class angles only where a view fetched them (the global view: its class's samples).
      for (const f of metrics) if (f in r) o["ref_" + f] = r[f];
      if (cmpById) {
        const c = cmpById.get(r.sample_id);
        if (!c) continue;
        for (const f of metrics) if (f in c) o["cmp_" + f] = c[f];
        o.cmp_correct = c.correct ? 1 : 0;
        o.cmp_class_accuracy = c.class_accuracy;
        o.cmp_pred_name = names[c.pred];
        o.d_angle = c.angle_true - r.angle_true;
        o.d_length = c.length - r.length;
        o.d_margin = c.margin - r.margin;
        o.outcome = r.correct ? (c.correct ? right : newlyWrong) : c.correct ? newlyRight : wrong;
      }
      rows.push(o);
    }
    return rows;
  }

  // Selecting samples without a mouse: a form that names every brush of the chart drawn and sets its range by
  // typing. The range takes the path a brush restored from a link takes (restoreBrushes), so the chart draws the
  // same brush, and the selection, the link and the other views follow as after a drag. An empty bound is the
  // data's own end (the brush then covers every sample on that side).
  function brushForm(onApply) {
    const form = el("form", { class: "ls-kbd", "aria-label": "select samples by value (keyboard)" });
    const legend = el("span", { class: "ls-kbd-title" }, "Select by value:");
    const which = el("select", { "aria-label": "brush" });
    const inputs = el("span", { class: "ls-kbd-ranges" });
    const apply = el("button", { type: "submit" }, "select");
    const clear = el("button", { type: "button" }, "clear");
    form.append(legend, which, inputs, apply, clear);
    let brushes = [];
    const fill = () => {
      const b = brushes.find((x) => x.name === which.value);
      inputs.replaceChildren();
      if (!b) return;
      b.fields.forEach(([title, lo, hi, now], i) => {
        for (const [end, bound, cur] of [["from", lo, now && now[0]], ["to", hi, now && now[1]]]) {
          const input = el("input", { type: "number", step: "any", "data-enc": String(i), "data-end": end,
            "aria-label": `${title} ${end}`, placeholder: Number.isFinite(bound) ? String(+bound.toPrecision(4)) : "" });
          if (cur != null) input.value = String(cur);
          const label = el("label", { class: "ls-control" }, `${title} ${end} `);
          label.appendChild(input);
          inputs.append(label);
        }
      });
    };
    which.addEventListener("change", fill);
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const b = brushes.find((x) => x.name === which.value);
      if (!b) return;
      const read = (i, end, bound) => {
        const v = inputs.querySelector(`input[data-enc="${i}"][data-end="${end}"]`).value.trim();
        return v === "" || !Number.isFinite(Number(v)) ? bound : Number(v);
      };
      onApply(b.name, b.fields.map(([, lo, hi], i) => [read(i, "from", lo), read(i, "to", hi)].sort((x, y) => x - y)));
    });
    clear.addEventListener("click", () => { if (which.value) onApply(which.value, null); });
    // brushes: [{name, label, fields: [[title, data min, data max, current range or null], ...]}]
    // The brush offered first follows the state alone (the first brush with a range, else the first), so a view
    // changed in place shows what a fresh load of its link shows.
    form.update = (list) => {
      brushes = list;
      which.replaceChildren(...list.map((b) => el("option", { value: b.name }, b.label)));
      const set = list.find((b) => b.fields.some((f) => f[3] != null));
      if (set) which.value = set.name;
      form.hidden = !list.length;
      fill();
    };
    return form;
  }
  // The brushes of a chart spec, named for a reader: the unit each brush lives in gives its fields and titles.
  function brushList(spec, rows, saved, nameOf) {
    const units = new Map();
    const walk = (node) => {
      if (Array.isArray(node)) { node.forEach(walk); return; }
      if (!node || typeof node !== "object") return;
      if (typeof node.name === "string" && node.encoding) units.set(node.name, node.encoding);
      for (const v of Object.values(node)) if (v && typeof v === "object") walk(v);
    };
    walk(spec);
    const out = [];
    for (const p of spec.params || []) {
      if (!p.select || p.select.type !== "interval") continue;
      const enc = units.get((p.views || [])[0]);
      if (!enc) continue;
      const named = nameOf(p.name);
      if (!named) continue;
      const fields = (p.select.encodings || []).map((e, i) => {
        const f = enc[e] && enc[e].field;
        let lo = Infinity, hi = -Infinity;
        for (const r of rows) if (named.keep(r) && Number.isFinite(r[f])) { lo = Math.min(lo, r[f]); hi = Math.max(hi, r[f]); }
        const title = (enc[e] && typeof enc[e].title === "string" && enc[e].title) || named.titleOf(f);
        return [title, lo, hi, saved[p.name] ? saved[p.name][i] : null];
      });
      out.push({ name: p.name, label: named.label, fields });
    }
    return out;
  }

  // Axis ranges the charts share (one angle scale for every class axis; a panel's scatter and densities), over both
  // models, padded by 4 %: `params` is {param: [fields, class or null for the page's class]}, `classOf` names the
  // class a param's rows are of. `shared`: the params on the same fields (the local panels' length, angle, margin)
  // take one range over all their classes, so that the panels compare on the same axes.
  function axisExtents(params, rows, classOf, shared) {
    const span = {};
    for (const [param, [fieldsOf, cls]] of Object.entries(params)) {
      const want = classOf(cls);
      let lo = Infinity, hi = -Infinity;
      for (const r of rows) {
        if (String(r.label) !== want) continue;
        for (const f of fieldsOf) for (const w of ["ref_", "cmp_"]) {
          const x = r[w + f];
          if (x != null && Number.isFinite(x)) { lo = Math.min(lo, x); hi = Math.max(hi, x); }
        }
      }
      span[param] = [lo, hi];
    }
    const group = (param) => (shared ? JSON.stringify(params[param][0]) : param);
    const joined = {};
    for (const [param, [lo, hi]] of Object.entries(span)) {
      const g = joined[group(param)] || (joined[group(param)] = [Infinity, -Infinity]);
      g[0] = Math.min(g[0], lo); g[1] = Math.max(g[1], hi);
    }
    const out = {};
    for (const param of Object.keys(span)) {
      let [lo, hi] = joined[group(param)];
      if (!(hi >= lo)) { lo = 0; hi = 1; }
      const pad = (hi - lo) * 0.04 || 0.5;
      out[param] = [lo - pad, hi + pad];
    }
    return out;
  }

  // ---- the single geometry pages (local, global, samples), in named parts that share one context `g` ----
  // Who writes what in `g` (every part reads it): g.state, the page's link: the controls (g.changed, then
  // loadGeometry), the trajectory menu, onBrush (the brush ranges, sel); g.brushes, the link's brush ranges
  // ({param: [range per encoding]}): onBrush and the keyboard form; g.shownClasses, the local panels' classes:
  // drawGeometry; g.entry: the drawn view (rows, samples, mode, brushValues, drawn, shown): drawGeometry and onBrush.
  // A change never calls another view: the other pages read the link and sessionStorage (writeState) when opened.
  function geometryContext(root, cfg) {
    const g = { cfg, kind: cfg.kind, state: readState(), byId: new Map(cfg.models.map((m) => [m.id, m])),
      slices: new Map(cfg.slices.map((s) => [s.file, s])), picking: Array.isArray(cfg.picker), slots: cfg.slots || [],
      shownClasses: [], brushKey: "b_" + cfg.kind, specs: {}, formPending: false, traj: null, kbd: null };
    // A panel's class: a fixed class id, or a slot (many classes) holding the class shown in it (-1: none).
    g.slotClass = (v) => {
      const i = typeof v === "string" ? g.slots.indexOf(v) : -2;
      return i === -2 ? v : i >= 0 && g.shownClasses[i] != null ? g.shownClasses[i] : -1;
    };
    checkState(g);
    try { g.brushes = JSON.parse(g.state[g.brushKey] || "{}"); } catch { g.brushes = {}; }
    g.entry = newEntry(g.kind, root, cfg);
    g.entry.brushValues = {};
    g.info = g.entry.info = el("p", { class: "ls-info", "aria-live": "polite" });
    g.changed = (key) => (v) => {
      if (v === "") delete g.state[key]; else g.state[key] = v;
      if (key === "class" || key === "classes") { g.brushes = {}; delete g.state[g.brushKey]; }
      loadGeometry(g);
    };
    return g;
  }
  // The link's values checked against the page: anything unknown is dropped or set to the page's default.
  function checkState(g) {
    const { cfg, state, kind } = g;
    if (!g.byId.has(state.ref)) state.ref = cfg.models[0].id;
    if (state.cmp && !g.byId.has(state.cmp)) delete state.cmp;
    if (!g.slices.has(state.refv)) state.refv = cfg.slices[0].file;
    if (!g.slices.has(state.cmpv)) state.cmpv = cfg.slices[0].file;
    // Many classes: a picker instead of a class menu, the local view's panels are slots whose classes the reader
    // picks (state.classes, in the link) or the defaults derived from the models shown.
    const pickable = new Set(g.picking ? cfg.picker : []);
    const explicit = () => (state.classes || "").split(",").filter((x) => x !== "").map(Number)
      .filter((j, i, all) => pickable.has(j) && all.indexOf(j) === i).slice(0, g.slots.length);
    if (g.picking) {
      if (state.class != null && !pickable.has(Number(state.class))) delete state.class; // the page picks one
      if (state.classes != null) { const e = explicit(); if (e.length) state.classes = e.join(","); else delete state.classes; }
    } else if (state.class == null || !cfg.classes[Number(state.class)]) state.class = String(cfg.axis_classes[0] || 0);
    if (state.traj && !cfg.outcomes.includes(state.traj)) delete state.traj;
    if (kind !== "local" || state.scales !== "panel") delete state.scales; // shared axis ranges: the default
  }

  function geometryControls(g) {
    const { cfg, kind, state } = g;
    const controls = el("div", { class: "ls-controls" });
    const modelOpts = cfg.models.map((m) => [m.id, m.label]);
    const sliceOpts = cfg.slices.map((s) => [s.file, s.label]);
    const refGroup = el("fieldset", { class: "ls-group ls-ref" });
    refGroup.append(el("legend", {}, "reference"), select("model", modelOpts, state.ref, g.changed("ref")),
      select("on", sliceOpts, state.refv, g.changed("refv")));
    const cmpGroup = el("fieldset", { class: "ls-group ls-cmp" });
    cmpGroup.append(el("legend", {}, "compare with"), select("model", [["", "— none —"], ...modelOpts], state.cmp || "", g.changed("cmp")),
      select("on", sliceOpts, state.cmpv, g.changed("cmpv")));
    controls.append(refGroup, cmpGroup);
    g.current = el("span", { class: "ls-current" });
    g.chips = el("div", { class: "ls-chips", role: "group", "aria-label": "classes shown" });
    if (kind === "global" && g.picking) {
      controls.append(classPicker("class", cfg.classes, cfg.picker, (j) => g.changed("class")(String(j))), g.current);
    } else if (kind === "global") controls.append(select("class", cfg.classes.map((c, j) => [j, c]), state.class, g.changed("class")));
    if (kind === "local" && g.slots.length) {
      controls.append(classPicker("add a class", cfg.classes, cfg.picker, (j) => {
        const now = g.shownClasses.filter((c) => c >= 0);
        g.changed("classes")([j, ...now.filter((c) => c !== j)].slice(0, g.slots.length).join(","));
      }));
    }
    if (kind === "local") {
      g.traj = trajectoryControl(g);
      // The class panels' axes: one range per metric over every panel (compare the classes), or each its own.
      controls.append(select("axis ranges", [["shared", "shared by every panel"], ["panel", "per panel"]],
        state.scales || "shared", (v) => g.changed("scales")(v === "panel" ? v : "")));
    }
    return controls;
  }
  // The local page's trajectory menu: in compare mode it filters the drawn view in place (a signal), else reloads.
  function trajectoryControl(g) {
    const { cfg, state, entry } = g;
    const traj = select("trajectories", [["all", "all"], ...cfg.outcomes.map((o) => [o, o])], state.traj || "all", (v) => {
      if (v === "all") delete state.traj; else state.traj = v;
      writeState(state);
      // Through the view's queue, so that the page counts as settled only once the filtered view (and its image
      // marks, fetched as files) is drawn and the selection line says what it selects.
      if (entry.view && entry.mode === "compare") {
        entry.queue(async () => null, async () => {
          entry.view.signal("outcome", v);
          await entry.view.runAsync();
          showSelection(g); writeState(state); entry.shown = shownState(g);
        });
      } else loadGeometry(g);
    });
    traj.classList.add("ls-traj");
    return traj;
  }
  // The local view's classes: one button each (removes it), and a way back to the defaults.
  function showChips(g) {
    const { cfg } = g;
    const items = [];
    g.shownClasses.forEach((j) => {
      if (j < 0) return;
      const b = el("button", { type: "button", class: "ls-chip", "data-class": String(j),
        "aria-label": "remove class " + cfg.classes[j] }, cfg.classes[j] + " ×");
      b.addEventListener("click", () => g.changed("classes")(g.shownClasses.filter((c) => c >= 0 && c !== j).join(",")));
      items.push(b);
    });
    if (g.state.classes) {
      const reset = el("button", { type: "button", class: "ls-chip ls-reset" }, "default classes");
      reset.addEventListener("click", () => g.changed("classes")(""));
      items.push(reset);
    }
    g.chips.replaceChildren(...items);
  }
  function navLinks(cfg, kind) {
    const nav = el("p", { class: "ls-links" });
    for (const [k, href] of Object.entries(cfg.links)) if (k !== kind) {
      const a = el("a", { href }, "→ " + k + " view");
      a.addEventListener("click", () => { a.href = href + location.hash; });
      nav.append(a, " ");
    }
    return nav;
  }
  // Which samples the page serves (cfg.shipped), in words.
  function shippedNote(cfg, kind, picking) {
    const sh = cfg.shipped || {};
    // Many classes: most have no evaluation sample at all (ImageNet photos of a few classes): count those that have.
    const perClass = picking ? (sh.per_class || []).filter((n) => n > 0) : sh.per_class || [];
    return el("p", { class: "ls-shipped" }, !sh.served ? "" : (sh.everything
      ? `All ${sh.evaluated} evaluated samples` : `A class-stratified random sample of ${sh.sample} of the ${sh.evaluated} evaluated samples`) +
      `: ${Math.min(...perClass)}–${Math.max(...perClass)} per class` + (picking ? ` in ${perClass.length} of ${cfg.classes.length} classes` : "") +
      `, ${sh.exemplars_in_sample} of them pruning-identified exemplars` +
      (sh.extra ? (kind === "samples" ? `; plus ${sh.extra} more exemplars outside the sample, shown here only.`
        : `; ${sh.extra} more exemplars outside the sample are in the sample view only.`) : "."));
  }

  // ---- the keyboard form: how it names a brush (its panel's class, the difference histogram or the PCP axis,
  // and which rows its placeholders, the data's range, come from) ----
  function fieldTitle(g, f) {
    const m = /^(ref|cmp)_angle_(true|c?\d+)$/.exec(f);
    if (!m) return f.replace(/^ref_/, "");
    if (m[2] === "true") return "angle to true class";
    const j = m[2][0] === "c" ? ((g.cfg.confused || {})[String(g.state.class)] || [])[Number(m[2].slice(1))] : Number(m[2]);
    return "angle to " + (g.cfg.classes[j] == null ? "class ?" : g.cfg.classes[j]);
  }
  function brushNameOf(g, name) {
    const { cfg, state } = g;
    const titleOf = (f) => fieldTitle(g, f);
    if (name in cfg.panel_brushes) {
      const j = g.slotClass(cfg.panel_brushes[name]);
      return j < 0 ? null : { label: `${cfg.classes[j]} panel`, keep: (r) => r.label === j, titleOf };
    }
    if (g.kind === "global") return { label: "axis " + name.slice(2), keep: (r) => String(r.label) === String(state.class), titleOf };
    return { label: "histogram", keep: () => true, titleOf };
  }
  // The form lists the brushes of the chart drawn with their ranges (from a link, a drag or the form itself).
  function syncForm(g, spec, rows, saved) {
    if (!g.kbd) return;
    g.kbd.update(brushList(spec, rows, saved, (name) => brushNameOf(g, name)).map((b) => (
      Object.assign(b, { label: b.label === "histogram" || b.label.startsWith("axis") ? b.fields[0][0] : b.label }))));
  }
  function keyboardForm(g) {
    if (g.kind === "samples") return null;
    return brushForm((name, ranges) => {
      if (ranges) g.brushes[name] = ranges; else delete g.brushes[name];
      if (Object.keys(g.brushes).length) g.state[g.brushKey] = JSON.stringify(g.brushes); else delete g.state[g.brushKey];
      loadGeometry(g);
    });
  }
  // The CSV's file name and first columns name the models and data of the rows drawn (entry.drawn), not a newer choice.
  function csvNaming(g) {
    const d = g.entry.drawn;
    const columns = { ref_model: d.ref, ref_data: g.slices.get(d.refv).label };
    if (d.compare) Object.assign(columns, { cmp_model: d.cmp || d.ref, cmp_data: g.slices.get(d.cmpv).label });
    const part = (m, v) => m + "-" + v;
    const who = [part(columns.ref_model, columns.ref_data)];
    if (columns.cmp_model) who.push("vs", part(columns.cmp_model, columns.cmp_data));
    return { name: `${g.kind}-${who.join("-")}.csv`.replace(/[^\w.+-]+/g, "_"), columns };
  }

  async function geometryView(root, cfg) {
    const g = geometryContext(root, cfg);
    const { kind, entry } = g;
    root.append(geometryControls(g));
    if (kind === "local" && g.slots.length) root.append(g.chips);
    root.append(g.info, navLinks(cfg, kind), shippedNote(cfg, kind, g.picking));
    g.kbd = keyboardForm(g);
    if (g.kbd) root.append(g.kbd);
    if (g.traj) root.append(g.traj); // right above the chart, whose first row is the metric-difference histograms
    root.append(entry.error, entry.figure, entry.summary);
    g.table = el("div");
    root.appendChild(g.table);
    toolbar(root, entry, kind + ".csv");
    entry.csv = () => csvNaming(g);
    entry.csvRows = () => csvRows(g);
    entry.target.addEventListener("pointermove", (e) => { if (e.buttons) LS.lastInput = e.timeStamp; }, true);
    entry.target.addEventListener("pointerup", (e) => { LS.lastInput = e.timeStamp; }, true);
    entry.refresh = () => loadGeometry(g);
    await loadGeometry(g);
  }

  // ---- the selection: the brushes -> the selected samples (sel, in the link: the other pages read it) ----
  function shownState(g) {
    const s = Object.assign({}, g.state);
    delete s.sel; // derived from the brushes
    return s;
  }
  // Recompute the selected samples from the brushes, as the charts' filters do (inclusive ranges): a panel's brush
  // selects within its class (a union over brushed panels), every other brush narrows the selection.
  function selectedSamples(g) {
    const { cfg, kind, state, entry } = g;
    const active = Object.entries(entry.brushValues).filter(([, v]) => v && Object.keys(v).length);
    const outcome = entry.mode === "compare" && kind === "local" ? state.traj || "all" : "all";
    if (!active.length && outcome === "all") return null;
    const panels = active.filter(([name]) => name in cfg.panel_brushes);
    const others = active.filter(([name]) => !(name in cfg.panel_brushes));
    const inside = (r, v) => Object.entries(v).every(([f, range]) => {
      const x = r[f], lo = Math.min(range[0], range[1]), hi = Math.max(range[0], range[1]);
      return x >= lo && x <= hi;
    });
    const bits = new Uint8Array(entry.samples.length);
    let n = 0;
    for (const r of entry.rows) {
      if (kind === "global" && String(r.label) !== String(state.class)) continue;
      if (outcome !== "all" && r.outcome !== outcome) continue;
      if (panels.length && !panels.some(([name, v]) => g.slotClass(cfg.panel_brushes[name]) === r.label && inside(r, v))) continue;
      if (!others.every(([, v]) => inside(r, v))) continue;
      bits[r.index] = 1;
      n++;
    }
    return [bits, n];
  }
  function showSelection(g) {
    if (g.kind === "samples") return;
    const sel = selectedSamples(g);
    if (sel) { g.state.sel = encodeSel(sel[0]); g.info.textContent = sel[1] + " samples selected (carried to the other views)"; }
    else { delete g.state.sel; g.info.textContent = "Drag on a chart, or type a range under “Select by value”, to select samples."; }
  }
  // A brush moved: its range into the link, the selection recomputed, the keyboard form once a frame.
  function onBrush(g, name, value) {
    const { entry, brushes, state } = g;
    entry.brushValues[name] = value;
    const p = (g.specs[entry.mode].params || []).find((q) => q.name === name);
    const keys = Object.keys(value || {});
    brushes[name] = keys.length ? (p.select.encodings || []).map((_, i) => value[keys[i]]) : undefined;
    if (!keys.length) delete brushes[name];
    showSelection(g);
    if (Object.keys(brushes).length) state[g.brushKey] = JSON.stringify(brushes); else delete state[g.brushKey];
    writeState(state);
    entry.shown = shownState(g);
    if (g.kbd && !g.formPending) { // once a frame during a drag
      g.formPending = true;
      requestAnimationFrame(() => { g.formPending = false; syncForm(g, g.specs[entry.mode], entry.rows, g.brushes); });
    }
    const t0 = LS.lastInput;
    requestAnimationFrame(() => { if (t0 != null) LS.latencies.push(performance.now() - t0); LS.lastInput = null; });
  }

  // ---- a load: fetch the slices (at once), then draw through the entry's queue (newest choice wins) ----
  function loadGeometry(g) {
    writeState(g.state);
    const want = g.state.cmp ? "compare" : "single";
    const snap = JSON.parse(JSON.stringify(g.state));
    const saved = JSON.parse(JSON.stringify(g.brushes));
    return g.entry.queue(() => fetchGeometry(g, snap, want), (data) => drawGeometry(g, snap, saved, want, data));
  }
  // The workspace's slice files (cfg.local_base: a (model, data set)'s local columns, no class angles); the global
  // view adds the angles of the class it shows (withAngles), fetched when that class is shown.
  async function fetchGeometry(g, snap, want) {
    const { cfg } = g;
    const slice = (id, file) => fetchRows(`${cfg.local_base}/${g.byId.get(id).key}/${file}`);
    const [samples, ref, cmp] = await Promise.all([
      fetchRows(cfg.samples), slice(snap.ref, snap.refv), snap.cmp ? slice(snap.cmp, snap.cmpv) : null,
    ]);
    // Many classes: the class picked by default is the one pickClasses shows (the same defaults, from these rows).
    const cls = g.kind !== "global" ? null : snap.class != null ? Number(snap.class) : defaultClasses(ref, cmp, 1)[0];
    const got = await Promise.all([samples, withAngles(g, ref, snap.ref, snap.refv, cls),
      cmp && withAngles(g, cmp, snap.cmp, snap.cmpv, cls)]);
    if (!g.specs[want]) g.specs[want] = await fetch(cfg.specs[want]).then((r) => r.json());
    return got;
  }
  // The rows of a slice with the angle columns of class `cls`'s samples (cfg.angles: a file per class, or with many
  // classes one of every sample); new row objects, so the cached slice stays as fetched. The local and sample pages
  // (no class: `cls` null), and a class without samples, keep the rows as they are.
  async function withAngles(g, rows, id, file, cls) {
    const a = g.cfg.angles;
    if (cls == null || !a.fields.length || (a.by_class && !rows.some((r) => r.label === cls))) return rows;
    const byId = await anglesOf(g, id, file, [cls]);
    return rows.map((r) => (byId.has(r.sample_id) ? Object.assign({}, r, byId.get(r.sample_id)) : r));
  }
  // {sample_id: its angle row} of a (model, data set), over the angle files of `classes` (with many classes, the one
  // file of every sample).
  async function anglesOf(g, id, file, classes) {
    const key = g.byId.get(id).key, urls = g.cfg.angles.by_class ? classes.map((c) => angleUrl(g.cfg, key, file, c))
      : [angleUrl(g.cfg, key, file, null)];
    const got = await Promise.all(urls.map(fetchRows));
    return new Map(got.flat().map((r) => [r.sample_id, r]));
  }
  // The angle file of class `cls` of a (model key, slice file), as data.workspace_files names it: c<class>.arrow, or
  // with many classes (cfg.angles.by_class false) all.arrow of every sample. The workspace reads the same files.
  function angleUrl(cfg, key, file, cls) {
    const a = cfg.angles;
    return `${a.base}/${key}/${file.replace(/\.arrow$/, "")}/${a.by_class ? "c" + cls : "all"}.arrow`;
  }
  // The CSV's rows: the rows drawn with every class angle of both models (ref_angle_<j>, cmp_angle_<j>), as the
  // slices held them before the angles moved to files of their own.
  async function csvRows(g) {
    const { entry } = g, d = entry.drawn, rows = entry.rows || [];
    const fields = g.cfg.angles.fields;
    if (!fields.length || !rows.length) return rows;
    const classes = [...new Set(rows.map((r) => r.label))];
    const ref = await anglesOf(g, d.ref, d.refv, classes);
    const cmp = d.compare ? await anglesOf(g, d.cmp, d.cmpv, classes) : null;
    return rows.map((r) => {
      const o = Object.assign({}, r), a = ref.get(r.sample_id), c = cmp && cmp.get(r.sample_id);
      for (const f of fields) {
        if (a) o["ref_" + f] = a[f];
        if (c) o["cmp_" + f] = c[f];
      }
      return o;
    });
  }
  // Many classes: the class (global) or the panels' classes (local) from the link, else the defaults.
  function pickClasses(g, snap, ref, cmp) {
    if (!g.picking) return;
    const defaults = defaultClasses(ref, cmp, Math.max(1, g.slots.length));
    if (g.kind === "global" && snap.class == null) { snap.class = g.state.class = String(defaults[0]); }
    const shown = snap.classes ? snap.classes.split(",").map(Number) : defaults;
    g.shownClasses = g.slots.map((_, i) => (shown[i] == null ? -1 : shown[i]));
    if (g.kind === "global") g.current.textContent = "showing " + g.cfg.classes[Number(snap.class)];
    else if (g.kind === "local") showChips(g);
  }
  // The chart's spec for this load: brushes from the link, classes, axis names, trajectory filter, axis ranges.
  function geometrySpec(g, want, snap, saved, rows) {
    const { cfg } = g;
    const spec = JSON.parse(JSON.stringify(g.specs[want]));
    restoreBrushes(spec, saved);
    setParam(spec, "cls", Number(snap.class));
    g.slots.forEach((name, i) => setParam(spec, name, g.shownClasses[i]));
    if (cfg.axis_titles) {
      const c = Number(snap.class), conf = cfg.confused[String(c)] || [];
      setParam(spec, "axis_names", cfg.axis_titles.map((t, k) => {
        if (t != null) return t;
        const f = cfg.axes[k];
        if (f === "angle_true") return cfg.classes[c]; // the chart marks it " (true)"
        const j = conf[Number(f.slice("angle_c".length))];
        return j == null ? "" : cfg.classes[j];
      }));
    }
    setParam(spec, "outcome", snap.traj || "all");
    const ranges = axisExtents(cfg.extents || {}, rows, (cls) => String(cls == null ? g.state.class : g.slotClass(cls)),
      g.kind === "local" && g.state.scales !== "panel");
    for (const [name, ext] of Object.entries(ranges)) setExtent(spec, name, ext);
    return spec;
  }
  async function drawGeometry(g, snap, saved, want, [samples, ref, cmp]) {
    const { entry, kind } = g;
    entry.samples = samples;
    pickClasses(g, snap, ref, cmp);
    const sel = kind === "samples" ? decodeSel(snap.sel, samples.length) : null;
    const rows = buildPairs(g.cfg, samples, ref, cmp, sel);
    const spec = geometrySpec(g, want, snap, saved, rows);
    entry.mode = want;
    entry.rows = rows;
    entry.drawn = { ref: snap.ref, refv: snap.refv, cmp: snap.cmp, cmpv: snap.cmpv, compare: want === "compare" };
    entry.brushValues = {};
    const view = await embed(entry, spec, { pairs: rows });
    syncForm(g, spec, rows, saved);
    for (const name of brushNames(spec)) {
      const v = view.signal(name);
      if (v && Object.keys(v).length) entry.brushValues[name] = v;
      view.addSignalListener(name, (n, value) => onBrush(g, n, value));
    }
    if (g.traj) g.traj.hidden = want !== "compare";
    if (kind === "samples") {
      const n = sel ? rows.filter((r) => r.selected).length : 0;
      g.info.textContent = sel ? `${n} selected samples` : "No samples selected: brush in the local or global geometry view first. Showing the lowest-margin samples.";
    } else {
      showSelection(g);
      writeState(g.state);
    }
    entry.shown = shownState(g);
    summarize(g, rows, cmp != null);
  }

  // ---- the summary: the chart's description and the per-class data table ----
  function classTable(g, rows, compare) {
    const { cfg, kind, state } = g;
    const mean = (rs, f) => rs.reduce((a, r) => a + r[f], 0) / (rs.length || 1);
    const header = ["class", "samples", "ref accuracy", "ref mean angle (°)", "ref mean length", "ref mean margin"]
      .concat(compare ? ["cmp accuracy", "cmp mean angle (°)", "cmp mean length", "cmp mean margin"] : []);
    const body = [];
    // Many classes: the table lists the classes on show (the selected samples' on the samples page, at most 50).
    const only = !g.picking ? null : new Set(kind === "local" ? g.shownClasses : kind === "global" ? [Number(state.class)]
      : [...new Set(state.sel ? rows.filter((r) => r.selected).map((r) => r.label) : [])].slice(0, 50));
    cfg.classes.forEach((name, j) => {
      if (only && !only.has(j)) return;
      const rs = rows.filter((r) => r.label === j && r.in_sample); // class statistics: the sample only
      if (!rs.length) return;
      const line = [name, String(rs.length), pct(rs[0].ref_class_accuracy), mean(rs, "ref_angle_true").toFixed(1),
        mean(rs, "ref_length").toFixed(2), mean(rs, "ref_margin").toFixed(2)];
      if (compare) line.push(pct(rs[0].cmp_class_accuracy), mean(rs, "cmp_angle_true").toFixed(1),
        mean(rs, "cmp_length").toFixed(2), mean(rs, "cmp_margin").toFixed(2));
      body.push(line);
    });
    return { header, body, only };
  }
  function summarize(g, rows, compare) {
    const { kind, state, cfg } = g;
    const refM = g.byId.get(state.ref), refS = g.slices.get(state.refv);
    const cmpM = compare ? g.byId.get(state.cmp) : null, cmpS = compare ? g.slices.get(state.cmpv) : null;
    const what = `${refM.label.split(" — ")[0]} on ${refS.label}` + (compare ? ` vs ${cmpM.label.split(" — ")[0]} on ${cmpS.label}` : "");
    const titles = { local: "Local geometry", global: "Global geometry", samples: "Sample examination" };
    const { header, body, only } = classTable(g, rows, compare);
    const scope = kind === "global" ? `, class ${cfg.classes[Number(state.class)]}` : "";
    const counted = only && kind !== "samples" ? body.reduce((a, line) => a + Number(line[1]), 0) : rows.length;
    describe(g.entry, `${titles[kind]}: ${what}${scope}`, `${titles[kind]} of ${what}${scope}: ${counted} samples ` +
      `in ${body.length} classes. ${g.info.textContent}`);
    g.table.replaceChildren(tableOf("Data table: per-class summary", header, body));
  }

  // What the views of other modules (workspace.js) draw with: the same embedding, queue, data and helpers.
  LS.lib = { el, select, fetchRows, fields, embed, newEntry, describe, tableOf, pct, subsetInterval, buildPairs,
    setParam, toolbar, decodeSel, encodeSel, fail, brushNames, fetchCounts, subsetIndex, subsetRows, swapSubset,
    encodeOnce, subsetOnce, deltaRange, thumbUrl, angleUrl };

  function initView(root) {
    // Called again for the same container (document$ and the direct call): hand back the first run.
    if (!root.lsPromise) root.lsPromise = drawView(root);
    return root.lsPromise;
  }
  // Paths in a page's config are relative to that page. Resolve them once, now: a load still in flight when
  // instant navigation moves on to another page must fetch what this page meant, not a path under the new one.
  const isPath = (v) => (typeof v === "string" ? /(\.arrow|\.json|\/)$/.test(v)
    : !!v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length > 0 && Object.values(v).every(isPath));
  function absolute(value, base) {
    if (typeof value === "string") return new URL(value, base).href;
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = absolute(v, base);
    return out;
  }
  async function drawView(root) {
    const cfg = JSON.parse(root.querySelector(".ls-config").textContent);
    for (const k of Object.keys(cfg)) {
      if (isPath(cfg[k]) || k.endsWith("_base")) cfg[k] = absolute(cfg[k], document.baseURI);
    }
    try {
      if (cfg.kind === "static") await staticView(root, cfg);
      else if (cfg.kind === "evaluation") await evaluationView(root, cfg);
      else if (LS.kinds[cfg.kind]) await LS.kinds[cfg.kind](root, cfg, LS.lib);
      else await geometryView(root, cfg);
    } catch (e) {
      failures.push({ root, msg: String(e) });
      root.appendChild(el("p", { class: "ls-error", role: "alert" }, "This view could not be drawn: " + e.message));
      console.error(e);
    }
  }

  // Redraw every view when the palette changes (no reload) or the page width changes their layout.
  function redraw(test) {
    for (const v of LS.views) if (v.refresh && v.view && test(v)) v.refresh();
    LS.ready = LS.settled();
  }
  new MutationObserver(() => redraw((v) => v.scheme !== scheme()))
    .observe(document.body, { attributes: true, attributeFilter: ["data-md-color-scheme"] });
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => redraw((v) => Math.abs(v.root.clientWidth - v.width) > 40), 250);
  });
  // A view drawn inside a closed <details> had no width of its own: fit it when the details opens.
  document.addEventListener("toggle", (e) => {
    if (e.target.open) redraw((v) => e.target.contains(v.root) && Math.abs(v.root.clientWidth - v.width) > 40);
  }, true);

  function init() {
    for (const v of LS.views) if (v.view && !document.body.contains(v.root)) v.view.finalize();
    LS.views = LS.views.filter((v) => document.body.contains(v.root));
    LS.ready = Promise.all(Array.from(document.querySelectorAll(".ls-view")).map(initView)).then(() => LS.settled());
  }
  // mkdocs-material's instant navigation swaps the page without reloading scripts: document$ emits per page.
  // It may have emitted the first page before this script subscribed, so initialise once directly too
  // (initView skips containers it has seen).
  if (window.document$ && typeof window.document$.subscribe === "function") window.document$.subscribe(init);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
