/* The workspace PCP's lines, painted on a canvas of their own over the Vega view (HiPlot's way): Vega draws the axes,
 * the densities, the titles and the brush, and keeps every line row in its dataset (the CSV, the tooltips' neighbours),
 * but draws none of them. A brush then repaints this layer from the selection bits, and runs no Vega: as Vega rules,
 * each brush re-encoded and repainted up to 66 000 marks, half of a linked update (bench/RESULTS.md, "PCP lines on a
 * canvas"). The positions come from the Vega view itself (its facet cells, its x and y scales, its origin), so the
 * lines sit on Vega's axes and move with them; entry.lines() gives what was painted, for the oracle.
 *
 *   LS.lines.of(rows)             the dataset's line rows as lines: one per (panel, sample), its values axis by axis
 *   LS.lines.attach(entry, lines) a layer on entry.view's canvas; then entry.repaint(bits, focus), entry.lines(),
 *                                 entry.image() (the view and the layer as one PNG)
 */
(function () {
  "use strict";
  const LS = (window.lotterysiteRuntime = window.lotterysiteRuntime || {});

  // pcpRows writes a sample's rows axis after axis, panel after panel: one pass groups them.
  function of(rows) {
    const out = [];
    let cur = null;
    for (const r of rows) {
      if (r.kind !== "line") continue;
      if (!cur || cur.panel !== r.panel || cur.sample_id !== r.sample_id) {
        cur = { panel: r.panel, sample_id: r.sample_id, index: r.index, label: r.label, role: r.role, dot: r.dot, v: [], y: [] };
        out.push(cur);
      }
      cur.v[r.k] = r.v;
      cur.y[r.k] = r.y == null || !Number.isFinite(r.y) ? NaN : r.y;
    }
    return out;
  }

  // The facet cells (group marks named "<facet>_cell"), each with its panel key and its place in view coordinates.
  function cellsOf(view) {
    const cells = new Map();
    const walk = (mark, ox, oy) => {
      if (mark.marktype !== "group") return;
      const cell = /(^|_)cell$/.test(mark.name || "");
      for (const g of mark.items || []) {
        const x = ox + (g.x || 0), y = oy + (g.y || 0);
        if (cell && g.datum && g.datum.panel != null) cells.set(g.datum.panel, { x, y, width: g.width, height: g.height });
        for (const m of g.items || []) walk(m, x, y);
      }
    };
    walk(view.scenegraph().root, 0, 0);
    return cells;
  }
  // The lines' shared x (axis index) and y (0..1 along an axis) scales: the page maps values to y itself.
  function scalesOf(view) {
    const names = Object.keys(view._runtime.scales);
    const pick = (ch) => view.scale(names.find((n) => n.endsWith("_" + ch)));
    return [pick("x"), pick("y")];
  }

  // Each line's points in view coordinates and how it is drawn: context (unselected, faint), selected, focus.
  function layout(view, lines, bits, focus) {
    const style = view.signal("ws_lines"), faint = view.signal("ws_faint") ? style.faint : 0;
    const cells = cellsOf(view), [sx, sy] = scalesOf(view), out = [];
    for (const l of lines) {
      const cell = cells.get(l.panel);
      if (!cell) continue;
      const on = bits ? bits[l.index] === 1 : l.dot === 1;
      const alpha = on ? style.selected : bits && l.dot === 1 ? faint : 0;
      const points = l.y.map((y, k) => (Number.isNaN(y) ? null : [cell.x + sx(k), cell.y + sy(y)]));
      const rec = { panel: l.panel, sample_id: l.sample_id, label: l.label, role: l.role, dot: l.dot, v: l.v, alpha,
        pass: on ? "selected" : "context", points, cell };
      if (alpha > 0) out.push(rec);
      if (focus != null && l.sample_id === focus) out.push(Object.assign({}, rec, { alpha: 1, pass: "focus" }));
    }
    const order = { context: 0, selected: 1, focus: 2 };
    return out.sort((a, b) => order[a.pass] - order[b.pass]);
  }

  function paint(ctx, recs, style) {
    for (const r of recs) {
      ctx.save();
      ctx.beginPath();
      ctx.rect(r.cell.x, r.cell.y, r.cell.width, r.cell.height);
      ctx.clip(); // as the rules' clip: a value outside a panel's range leaves its frame
      ctx.globalAlpha = r.alpha;
      ctx.lineWidth = r.pass === "focus" ? style.focus_width : style.width;
      ctx.strokeStyle = r.pass === "focus" ? style.focus : style.colors[r.role] || style.focus;
      ctx.beginPath();
      let open = false; // a missing value breaks the line
      for (const p of r.points) {
        if (!p) { open = false; continue; }
        if (open) ctx.lineTo(p[0], p[1]); else ctx.moveTo(p[0], p[1]);
        open = true;
      }
      ctx.stroke();
      ctx.restore();
    }
  }

  // Draws `recs` on `canvas`, a copy of the view's canvas in size: its pixel ratio, then the view's origin.
  function draw(canvas, view, recs, ratio) {
    const ctx = canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const [ox, oy] = view.origin();
    ctx.setTransform(ratio, 0, 0, ratio, ratio * ox, ratio * oy);
    paint(ctx, recs, view.signal("ws_lines"));
  }

  function attach(entry, lines) {
    const view = entry.view, drawn = view.container() && view.container().querySelector("canvas");
    if (!drawn) return;
    const host = drawn.parentElement;
    host.querySelectorAll(":scope > canvas.ls-lines").forEach((c) => c.remove());
    if (getComputedStyle(host).position === "static") host.style.position = "relative";
    const layer = document.createElement("canvas");
    layer.className = "ls-lines";
    layer.setAttribute("aria-hidden", "true");
    host.appendChild(layer);
    let recs = [], last = [null, null];
    entry.layer = layer;
    entry.repaint = (bits, focus) => {
      if (entry.view !== view) return; // redrawn meanwhile: the new view has its own layer
      last = [bits, focus];
      const css = parseFloat(drawn.style.width) || drawn.clientWidth || drawn.width;
      Object.assign(layer.style, { left: drawn.offsetLeft + "px", top: drawn.offsetTop + "px",
        width: drawn.style.width || css + "px", height: drawn.style.height || drawn.clientHeight + "px" });
      if (layer.width !== drawn.width) layer.width = drawn.width;
      if (layer.height !== drawn.height) layer.height = drawn.height;
      recs = layout(view, lines, bits, focus);
      draw(layer, view, recs, drawn.width / css);
    };
    // A view that changes size (the page fits the facet's columns to its width) moves the cells: paint again once
    // Vega has drawn them.
    view.addResizeListener(() => requestAnimationFrame(() => entry.repaint(...last)));
    entry.lines = () => recs.map((r) => ({ panel: r.panel, sample_id: r.sample_id, label: r.label, role: r.role,
      dot: r.dot, v: r.v, alpha: r.alpha, pass: r.pass, points: r.points }));
    // The PNG: the view at twice its size and the lines over it, at the same scale.
    entry.image = async () => {
      const canvas = await view.toCanvas(2);
      const ctx = canvas.getContext("2d");
      const [ox, oy] = view.origin();
      ctx.setTransform(2, 0, 0, 2, 2 * ox, 2 * oy);
      paint(ctx, recs, view.signal("ws_lines"));
      return canvas.toDataURL("image/png");
    };
  }

  LS.lines = { of, attach };
})();
