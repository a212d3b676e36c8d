/* The workspace's controls: the combination list ((model, data) pairs: add, remove, reorder, keyboard-operable),
 * the menus (class, local layout, axis ranges, trajectories), the selection's size, and the links to the single views.
 * They write to the selection store and redraw from it; none draws a chart.
 */
(function () {
  "use strict";
  const LS = (window.lotterysiteRuntime = window.lotterysiteRuntime || {});
  const WS = (LS.ws = LS.ws || { views: {} });
  const { section } = WS;
  const W = () => LS.workspace;

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

  Object.assign(WS.views, { combinations: combinationsView, controls: controlsView, links: linksView });
})();
