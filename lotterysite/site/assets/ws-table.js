/* The workspace's evaluation table (issue 23, R1): every model's accuracy per data slice, and the subset bars of the
 * selection (or of the class), swapped into the live view on every linked update. A click on a bar adds its model.
 */
(function () {
  "use strict";
  const LS = (window.lotterysiteRuntime = window.lotterysiteRuntime || {});
  const WS = (LS.ws = LS.ws || { views: {} });
  const { section, chartEntry, specOf } = WS;

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

  Object.assign(WS.views, { evaluation: evaluationView });
})();
