"""The site's charts: one pure function per chart, each returning an Altair chart (paper §6, Figs. 3-10).

Every function takes its data as a pandas DataFrame (in a notebook) or, by default, a named placeholder that the
site's loader fills from the store's Arrow files in the browser. Field names are those of the rows documented on
each function; the site builds them from the store (`lotterysite.site.data`) and, for per-sample views, joins a
reference and a compared model's rows in the browser (`assets/lotterysite.js`).
"""

from __future__ import annotations

import json

import altair as alt

GRAY = "#8c8c8c"  # reference model / correct samples (paper §6.2)
RED = "#d62728"  # incorrect samples, "newly wrong"
YELLOW = "#e6b800"  # compared model
GREEN = "#2ca02c"
PURPLE = "#9467bd"
OUTCOMES = ["both wrong", "newly wrong", "newly right", "both right"]  # Fig. 4 ④ (c)-(f)
OUTCOME_COLORS = [PURPLE, RED, GREEN, GRAY]
CORRECTNESS = ["correct", "incorrect"]  # a single model's prediction, Fig. 4 ③
AMOUNT_LABEL = "datum.value == 0 ? 'dense' : format(datum.value, '.0%')"
METRIC_DIFFS = (("d_angle", "Δ angle (°)"), ("d_length", "Δ length"), ("d_margin", "Δ margin"))


def _data(data, name: str):
    return alt.Data(name=name) if data is None else data


EVAL_DELTA_HALF = 0.36  # half the Δ region's width, on the accuracy axis: ± the param ls_dmax (in accuracy / 1)
EVAL_DELTA_ZERO = 1.1 + EVAL_DELTA_HALF  # the subset − overall bars' zero, on the accuracy axis (right of 100 %)
EVAL_DOMAIN = [0, EVAL_DELTA_ZERO + EVAL_DELTA_HALF + 0.03]
EVAL_TEXT_INSIDE = 0.3  # accuracies from here print inside their bar (white), lower ones after it
EVAL_DMAX = "ls_dmax"  # the Δ region's half range; the loader sets it to fit every bar and interval shown
EVAL_SUB = "ls_sub"  # the subset's version: the page writes a new subset into the table's rows in place, bumps it
EVAL_FONT = 11  # px: the smallest text of the evaluation table


def _eval_sub(expr: str) -> str:
    """`expr` naming the subset's version (lsSub(version, x) = x, lotterysite.js): a layer whose marks show the
    subset re-encodes them when the page bumps it. A new subset changes no data, so the facet, the stack and the
    accuracy values and texts are not touched (a changeset of 7 fields on every row was most of a brush's table
    update, bench/RESULTS.md 2026-12-06)."""
    return f"lsSub({EVAL_SUB}, {expr})"


def _eval_delta_at(f: str) -> str:
    """Where field `f` (a difference: subset minus overall) lies on the accuracy axis: ± EVAL_DELTA_HALF around the
    Δ region's zero at ± ls_dmax; the zero itself without a subset."""
    z, h = EVAL_DELTA_ZERO, EVAL_DELTA_HALF
    return f"{z} + (isValid(datum.{f}) ? {h} * clamp(datum.{f} / {EVAL_DMAX}, -1, 1) : 0)"


def _eval_axis_values() -> tuple[list[float], str]:
    """Tick positions of the evaluation table's one x axis and the label expression that names them: 0–100 % for
    the accuracy bars, then the Δ region's own scale in points (−dmax, 0, +dmax), right of the dashed zero line."""
    z, h = EVAL_DELTA_ZERO, EVAL_DELTA_HALF
    # 100 % keeps its gridline but no label: it would run into the Δ region's first label.
    label = (
        f"datum.value < 1 ? format(datum.value, '.0%') : datum.value == 1 ? '' : "
        f"datum.value == {z} ? '0' : format(round((datum.value - {z}) / {h} * {EVAL_DMAX} * 100), '+d')"
    )
    return [0, 0.5, 1, z - h, z, z + h], label


def evaluation_table(data=None, *, variants: list[str], columns: int = 4) -> alt.FacetChart:
    """Evaluation table: accuracy per model, small multiples per data set, methods ranked (Fig. 4 ①⑤).

    Rows: model_id, model_label ("magnitude 50%"), method_label, amount, amount_label, variant_label, rank (1 = best
    method of this variant), order (rank, then amount: the rows' order in a cell), accuracy, accuracy_text (it
    printed, ".1%"), subset_accuracy, subset_lo / subset_hi (its 95 % interval; the loader computes it,
    lotterysite.store.sampling.mean_interval), delta, delta_lo, delta_hi (subset minus overall accuracy and its
    interval; null without a subset), subset_text (the subset's accuracy, interval and difference as the tooltip
    prints them). The page writes the texts once per row, and a new subset into the live view's rows in place, then
    bumps param ls_sub: only the layers that show the subset read it (`_eval_sub`) and re-encode. One
    horizontal bar per model on a shared 0-100 % axis with gridlines and the value printed; the subset − overall
    difference is its own diverging bar right of the dashed line, on its own labelled scale in points (green above,
    red below the model's accuracy), ± param ls_dmax, which the loader sets to hold every bar and interval shown (no
    clamp); the interval is a whisker. Every cell has its own x axis. Clicking a bar selects its model (param
    `model`) everywhere. The facet is named "ls_eval" (the loader sets its columns to the page width).
    """
    model = alt.selection_point(name="model", fields=["model_id"], on="click", clear="dblclick")
    x_scale = alt.Scale(domain=EVAL_DOMAIN, nice=False)
    y = alt.Y("model_label:N", title=None, sort=alt.EncodingSortField("order", op="min"),
              axis=alt.Axis(labelLimit=120, labelFontSize=EVAL_FONT, ticks=False, domain=False))  # fmt: skip
    # The rows' own texts (accuracy_text prints as ".1%" does), the subset's through its version: the bars re-encode
    # when the page bumps it.
    sub = _eval_sub("datum.subset_text")
    tooltip = alt.value(alt.ExprRef(
        f"{{'model': datum.model_id, 'data': datum.variant_label, 'accuracy': datum.accuracy_text, 'subset': {sub}}}"
    ))  # fmt: skip
    layers = alt.layer(
        *_eval_accuracy_layers(model, x_scale, y, tooltip),
        *_eval_delta_layers(x_scale, y, tooltip),
        data=_data(data, "evaluation"),
    )
    # ls_dmax covers every bar and whisker (the loader rounds it up to 5, 10, 20, 30, 40, 60, 80 or 100 points):
    # no clamp. The subset's ends are computed by the marks (`_eval_delta_at`), not by a transform: a new subset or
    # ls_dmax then changes no data.
    layers = layers.transform_calculate(d0=f"{EVAL_DELTA_ZERO}")
    dmax = alt.param(name=EVAL_DMAX, value=0.2)
    version = alt.param(name=EVAL_SUB, value=0)
    out = (
        layers.properties(width=180, height=alt.Step(15))
        .facet(
            facet=alt.Facet("variant_label:N", sort=variants, title=None,
                            header=alt.Header(labelFontWeight="bold", labelFontSize=EVAL_FONT + 1)),
            columns=columns,
            spacing={"row": 16, "column": 18},
        )
        .resolve_scale(y="independent")
        .resolve_axis(x="independent")  # every cell carries its own labelled axis, not only the bottom row
        .properties(name="ls_eval")
    )  # fmt: skip
    # A variable param lives at the top level (add_params would push it into the facet).
    out.params = [*out.params, dmax.param, version.param]
    return out


def _eval_accuracy_layers(model, x_scale, y, tooltip) -> list:
    """The evaluation table's accuracy bars (with the axis and the model selection) and their printed values."""
    values, label_expr = _eval_axis_values()
    base = alt.Chart()
    bars = base.mark_bar(height={"band": 0.75}).encode(
        x=alt.X("accuracy:Q", scale=x_scale, title=None,
                # tickCount: Vega thins explicit values down to its default count (width / 40) otherwise.
                axis=alt.Axis(values=values, labelExpr=label_expr, grid=True, labelFontSize=EVAL_FONT,
                              domain=False, labelOverlap=False, tickCount=len(values))),
        y=y,
        color=alt.condition(model, alt.value("#4c78a8"), alt.value("#a9b4c2")),
        tooltip=tooltip,
    ).add_params(model)  # fmt: skip
    # The value prints inside a long bar and after a short one: the Δ region then starts right after 100 %.
    # The printed values and the whiskers carry no tooltip (the bar beside or under them has it, and a click on them
    # still selects their row's model): a subset swapped into the live table re-encodes every mark of its rows, and
    # their tooltips were a quarter of that (bench/RESULTS.md, 2026-12-05).
    inside = f"datum.accuracy >= {EVAL_TEXT_INSIDE}"
    text = dict(x=alt.X("accuracy:Q", scale=x_scale), y=y, text=alt.Text("accuracy_text:N"))
    text_in = base.mark_text(align="right", dx=-2, fontSize=EVAL_FONT - 1, color="white").encode(
        **text, opacity=alt.condition(inside, alt.value(1), alt.value(0))
    )
    text_out = base.mark_text(align="left", dx=2, fontSize=EVAL_FONT - 1).encode(
        **text, opacity=alt.condition(inside, alt.value(0), alt.value(1))
    )
    return [bars, text_in, text_out]


def _eval_delta_layers(x_scale, y, tooltip) -> list:
    """The evaluation table's Δ region: the dashed zero line (field d0, the table's transform), the subset − overall
    bar and its interval's whisker (their ends on the accuracy axis computed by the marks, `_eval_delta_at`). Each
    layer reads the subset through its version (`_eval_sub`)."""
    base = alt.Chart()
    # Every layer reads the same rows (no per-layer filter): rows without a subset draw zero-width marks.
    has = _eval_sub("isValid(datum.delta)")
    at = lambda f: alt.ExprRef(_eval_sub(_eval_delta_at(f)))  # noqa: E731
    zero = base.mark_rule(strokeDash=[2, 2]).encode(
        x=alt.X("d0:Q", scale=x_scale), opacity=alt.condition(has, alt.value(0.6), alt.value(0))
    )
    delta = base.mark_bar(height={"band": 0.75}).encode(
        x=alt.X("d0:Q", scale=x_scale),
        x2=alt.X2(datum=at("delta")),
        y=y,
        color=alt.condition(_eval_sub("datum.delta >= 0"), alt.value(GREEN), alt.value(RED)),
        tooltip=tooltip,
    )
    whisker = base.mark_rule(strokeWidth=1.2).encode(
        x=alt.X(datum=at("delta_lo"), type="quantitative", scale=x_scale), x2=alt.X2(datum=at("delta_hi")), y=y,
        opacity=alt.condition(has, alt.value(1), alt.value(0)),
    )  # fmt: skip
    return [zero, delta, whisker]


def _legend(title: str | None) -> alt.Legend:
    # One legend definition per meaning: Vega-Lite merges the legends of a field shared by several charts. The
    # offset leaves room above the charts for the sample grid's "showing n of m" line.
    return alt.Legend(orient="top", title=title, direction="horizontal", offset=28)


def _outcome_filter():
    return "outcome == 'all' || datum.outcome == outcome"


def _density(field_names: list[str], colors: list[str], *, vertical: bool, size: int, extent: tuple[str, list[float]],
             axis=None):  # fmt: skip
    """Densities of `field_names` (one layer each, a fixed colour: a shared colour scale would merge with the
    scatter's legend) over the range held by param extent[0] (its value extent[1]), on that range's scale, so that
    they line up with the chart they border and fall to zero inside it.

    The density's output field is named "v_<param>": the site's loader sets the estimate's extent of each such
    transform with the param (Vega-Lite's density takes numbers only).
    """
    param, value = extent
    layers = []
    scale = alt.Scale(domain=alt.ExprRef(param), nice=False, zero=False)
    out_field = f"v_{param}"
    for name, color in zip(field_names, colors, strict=True):
        chart = alt.Chart().transform_density(name, as_=[out_field, "density"], extent=value)
        if vertical:
            layers.append(chart.mark_area(opacity=0.5, color=color, orient="horizontal").encode(
                y=alt.Y(f"{out_field}:Q", axis=None, scale=scale), x=alt.X("density:Q", axis=None)))  # fmt: skip
        else:
            layers.append(chart.mark_area(opacity=0.5, color=color).encode(
                x=alt.X(f"{out_field}:Q", axis=axis, scale=scale), y=alt.Y("density:Q", axis=None)))  # fmt: skip
    out = alt.layer(*layers)
    return out.properties(width=size) if vertical else out.properties(height=size)


def _top_params(chart, params: list):
    """`chart` with variable `params` appended to its top-level params: the spec `chart.add_params(*params)` gives
    (Altair lifts variable params from the charts it pushes them into back to the top, after the selections already
    there), without pushing them through every nested chart: on the deep concats of the geometry views that costs
    Altair tens of seconds of copying per spec."""
    assert all(isinstance(p.param, alt.VariableParameter) for p in params), "selections need add_params (views)"
    have = [] if chart.params is alt.Undefined else list(chart.params)
    chart.params = have + [p.param for p in params]  # in place: `chart` is new (a copy would rebuild it all)
    return chart


def panel_brush(class_id: int | str) -> str:
    """Name of the brush on one class panel of the local view (each panel selects within its own class). A panel
    is a fixed class (an int), or a slot: the name of a param holding the class the page picked (many classes)."""
    return f"brush_{class_id}"


def class_slots(n: int) -> list[str]:
    """Params naming the classes of the local view's n panels when the reader picks them (many classes)."""
    return [f"slot{s}" for s in range(n)]


def panel_extents(class_ids: list[int | str]) -> dict[str, tuple[list[str], int | str]]:
    """The local view's axis ranges: {param: (fields, class)}, one per class and metric, over both models.

    The loader sets each from the rows it draws (padded), so a panel's scatter and its densities share one scale;
    by default every panel's param of a metric gets the same range (over all the panels' classes), or with the
    page's "axis ranges: per panel" (scales=panel in the link) its own class's.
    """
    return {f"ext_{j}_{m}": ([f], j) for j in class_ids for m, f in (("length", "length"), ("angle", "angle_true"),
                                                                          ("margin", "margin"))}  # fmt: skip


def _extent_values(data, params: dict[str, tuple[list[str], int | None]], cls: int | None = None) -> dict:
    """Initial values of extent params: from a DataFrame in a notebook, placeholders for the site's loader."""
    out = {}
    for name, (fields, class_id) in params.items():
        lo, hi = 0.0, 1.0
        if data is not None and hasattr(data, "columns") and not isinstance(class_id, str):
            rows = data[data["label"] == (cls if class_id is None else class_id)]
            cols = [c for f in fields for c in (f"ref_{f}", f"cmp_{f}") if c in rows.columns]
            if len(rows) and cols:
                lo, hi = float(rows[cols].min().min()), float(rows[cols].max().max())
                pad = (hi - lo) * 0.03 or 0.5
                lo, hi = lo - pad, hi + pad
        out[name] = [lo, hi]
    return out


HEADER_WIDTH = 202  # px a local panel's header may take: the scatter, its gap and the angle density beside it


def local_geometry(data=None, *, classes: list[tuple[int | str, str]], compare: bool,
                   columns: int = 4) -> alt.VConcatChart:  # fmt: skip
    """Local geometry: per class, angle to the true class vs length with marginal densities and a margin density.

    Rows (one per sample): sample_id, label, class_name, image, ref_correct (0/1), ref_outcome (CORRECTNESS),
    ref_class_accuracy (full-data accuracy of the class), ref_angle_true, ref_length, ref_margin, and with `compare`
    the cmp_* twins plus d_angle, d_length, d_margin (compared minus reference) and outcome (one of OUTCOMES).
    Single model: gray correct, red incorrect (Fig. 4 ③). Compare: reference gray, compared yellow, trajectories
    coloured by outcome (Fig. 4 ④, Fig. 7), filtered by the `outcome` param (the page's trajectory control) and
    the metric-difference ranges `d_angle`, `d_length`, `d_margin`. Each class panel has its own brush (length ×
    angle, `panel_brush(class_id)`) that selects samples of that class only. A panel's scatter and densities share
    the ranges of `panel_extents` (the page sets them: one range per metric over every panel by default, or each
    panel's own). The panels are one concat named "ls_panels" (the loader fits its columns).
    A class id given as a string (`class_slots`) is a param: the page sets which class that panel shows.
    """
    extents = _extent_values(data, panel_extents([j for j, _ in classes]))
    params = [alt.param(name=j, value=-1) for j, _ in classes if isinstance(j, str)]
    params += [alt.param(name=k, value=v) for k, v in extents.items()]
    diffs = []
    if compare:
        params.append(alt.param(name="outcome", value="all"))  # set by the page's trajectory control
        diffs = [alt.selection_interval(name=name, encodings=["x"]) for name, _ in METRIC_DIFFS]
    ids = [j for j, _ in classes]
    panels = [_local_panel(class_id, ids, extents, compare, diffs) for class_id, _ in classes]
    parts = [alt.concat(*panels, columns=columns, spacing=18, name="ls_panels")]
    if compare:
        parts.insert(0, _diff_histograms(diffs))
    out = alt.vconcat(*parts, data=_data(data, "pairs"), spacing=14)
    return _top_params(out, params)


def _local_header(flt: str, compare: bool) -> alt.LayerChart:
    """A local panel's header: three short lines, each within the panel's width: the class, its accuracy (over every
    evaluation image of the class, a per-row constant from accuracy.arrow), the number of shipped samples drawn."""
    acc = "ref_class_accuracy"
    head = (
        alt.Chart()
        .transform_filter(flt)
        .transform_aggregate(
            ref=f"mean({acc})",
            cmp="mean(cmp_class_accuracy)" if compare else f"mean({acc})",
            n="count()",
            groupby=["class_name"],
        )  # fmt: skip
        .transform_calculate(
            acc="'accuracy ' + format(datum.ref, '.1%')" + (" + ' → ' + format(datum.cmp, '.1%')" if compare else ""),
            shown="'(all eval. images; ' + datum.n + ' shown)'",
        )
    )
    line = dict(align="left", baseline="middle", x=0, limit=HEADER_WIDTH)
    return alt.layer(
        head.mark_text(y=7, fontWeight="bold", **line).encode(text="class_name:N", tooltip="class_name:N"),
        head.mark_text(y=20, fontSize=10, **line).encode(text="acc:N"),
        head.mark_text(y=32, fontSize=10, **line).encode(text="shown:N"),
    ).properties(height=40, width=170)


def _local_tooltip(compare: bool) -> list:
    tooltip = [
        alt.Tooltip("image:N"),
        "sample_id:Q",
        "class_name:N",
        alt.Tooltip("ref_pred_name:N", title="ref pred"),
        alt.Tooltip("ref_angle_true:Q", format=".1f"),
        alt.Tooltip("ref_length:Q", format=".2f"),
        alt.Tooltip("ref_margin:Q", format=".2f"),
    ]
    if compare:
        tooltip += [alt.Tooltip("cmp_pred_name:N", title="cmp pred"), "outcome:N",
                    alt.Tooltip("d_angle:Q", format="+.1f"), alt.Tooltip("d_length:Q", format="+.2f"),
                    alt.Tooltip("d_margin:Q", format="+.2f")]  # fmt: skip
    return tooltip


def _compare_scatter(flt: str, chosen: str, x, y, brush, diffs: list, tooltip: list) -> alt.LayerChart:
    """Reference dots (gray, brushable), compared dots (yellow) and the trajectories between them."""
    base = alt.Chart().transform_filter(flt)
    traj = (
        base.transform_filter(_outcome_filter())
        .transform_filter(chosen)
        .mark_rule(opacity=0.6, strokeWidth=1, clip=True)
        .encode(
            x=x,
            y=y,
            x2="cmp_length:Q",
            y2="cmp_angle_true:Q",
            color=alt.Color(
                "outcome:N", scale=alt.Scale(domain=OUTCOMES, range=OUTCOME_COLORS), legend=_legend("outcome")
            ),
        )  # fmt: skip
    )
    for d in diffs:
        traj = traj.transform_filter(d)
    ref = base.mark_circle(size=12, color=GRAY, opacity=0.7, clip=True).encode(x=x, y=y, tooltip=tooltip)
    ref = ref.add_params(brush)
    cmp_ = base.mark_circle(size=12, color=YELLOW, opacity=0.8, clip=True).encode(
        x="cmp_length:Q", y="cmp_angle_true:Q", tooltip=tooltip
    )
    return alt.layer(ref, cmp_, traj)


def _single_scatter(flt: str, chosen: str, x, y, brush, tooltip: list) -> alt.Chart:
    """One model's dots: gray correct, red incorrect; faded outside the selection."""
    return (
        alt.Chart()
        .transform_filter(flt)
        .mark_circle(size=14, clip=True)
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "ref_outcome:N",
                scale=alt.Scale(domain=CORRECTNESS, range=[GRAY, RED]),
                legend=_legend("prediction"),
            ),  # fmt: skip
            opacity=alt.condition(chosen, alt.value(0.8), alt.value(0.15)),
            tooltip=tooltip,
        )
        .add_params(brush)
    )


def _local_panel(class_id: int | str, ids: list[int | str], extents: dict, compare: bool, diffs: list):
    """One class panel: header, length density, scatter with the angle density beside it, margin density."""
    brush = alt.selection_interval(name=panel_brush(class_id), encodings=["x", "y"])
    flt = f"datum.label == {class_id}"
    # Selected as the sample grid selects (`local_filters`): in this panel's brush, or every sample while no
    # panel has one. (The brush alone would select all of an unbrushed panel while another panel has a brush.)
    chosen = _panel_selected(class_id, ids)
    ext = {m: (f"ext_{class_id}_{m}", extents[f"ext_{class_id}_{m}"]) for m in ("length", "angle", "margin")}
    dom = {m: alt.ExprRef(param) for m, (param, _) in ext.items()}
    x = alt.X("ref_length:Q", title="length", scale=alt.Scale(domain=dom["length"], nice=False))
    y = alt.Y("ref_angle_true:Q", title="angle to true class (°)", scale=alt.Scale(domain=dom["angle"], nice=False))
    tooltip = _local_tooltip(compare)
    if compare:
        scatter = _compare_scatter(flt, chosen, x, y, brush, diffs, tooltip)
        fields = (["ref_length", "cmp_length"], ["ref_angle_true", "cmp_angle_true"], ["ref_margin", "cmp_margin"])
        colors = [GRAY, YELLOW]
    else:
        scatter = _single_scatter(flt, chosen, x, y, brush, tooltip)
        fields = (["ref_length"], ["ref_angle_true"], ["ref_margin"])
        colors = [GRAY]
    scatter = scatter.properties(width=170, height=170)
    top = _density(fields[0], colors, vertical=False, size=30, extent=ext["length"]).transform_filter(flt)
    right = _density(fields[1], colors, vertical=True, size=30, extent=ext["angle"]).transform_filter(flt)
    margin_axis = alt.Axis(title="margin (density)", labelFontSize=9, titleFontSize=10, tickCount=4)
    margin = (
        _density(fields[2], colors, vertical=False, size=30, extent=ext["margin"], axis=margin_axis)
        .transform_filter(flt)
        .properties(width=170)
    )
    # Flush bounds: the densities line up with the scatter's plot area, not with its axis labels.
    # (Properties of a concat go to its constructor: `.properties` would copy the whole nested chart, which costs
    # Altair seconds here; the spec is the same.)
    inner = alt.vconcat(
        _local_header(flt, compare),
        top.properties(width=170),
        alt.hconcat(scatter, right.properties(height=170), spacing=2),
        spacing=2,
        bounds="flush",
    )
    return alt.vconcat(inner, margin, spacing=6)


def _diff_histograms(diffs: list) -> alt.ConcatChart:
    """Compare mode: the compared − reference histograms of angle, length and margin, each brushable on x."""
    hists = []
    for (name, title), sel in zip(METRIC_DIFFS, diffs, strict=True):
        hists.append(
            alt.Chart()
            .mark_bar(color=YELLOW)
            .encode(x=alt.X(f"{name}:Q", bin=alt.Bin(maxbins=40), title=title), y=alt.Y("count():Q", title=None))
            .add_params(sel)
            .properties(width=200, height=60)
        )
    return alt.concat(*hists, columns=len(hists), title=alt.TitleParams(
        "compared − reference: drag to select", anchor="start"), name="ls_hists")  # fmt: skip


def _panel_selected(class_id: int | str, class_ids: list[int | str]) -> str:
    """Whether a sample of panel `class_id` is selected: inside that panel's brush, or no panel has a brush."""
    store = f"{panel_brush(class_id)}_store"
    any_brush = " || ".join(f"length(data('{panel_brush(j)}_store'))" for j in class_ids)
    return f"!({any_brush}) || (length(data('{store}')) > 0 && vlSelectionTest('{store}', datum))"


def local_filters(compare: bool, class_ids: list[int | str]) -> list:
    """The predicates that define the selected samples in the local view (used by the sample grid).

    A sample is selected by the brush of its own class panel; while no panel is brushed, every sample is.
    """
    stores = [f"data('{panel_brush(j)}_store')" for j in class_ids]
    any_brush = " || ".join(f"length({s})" for s in stores) or "false"
    own = " || ".join(f"(datum.label == {j} && vlSelectionTest('{panel_brush(j)}_store', datum))" for j in class_ids)
    out = [f"!({any_brush})" + (f" || {own}" if own else "")]
    if any(isinstance(j, str) for j in class_ids):  # picked classes (many): the grid shows theirs only
        out.insert(0, " || ".join(f"datum.label == {j}" for j in class_ids))
    if compare:
        out += [{"param": name} for name, _ in METRIC_DIFFS] + [_outcome_filter()]
    return out


def axis_extent(field: str) -> str:
    """The param holding an axis's range in the global view: one for every angle axis, one each for length, margin."""
    return "ext_angle" if field.startswith("angle") else f"ext_{field}"


def global_extents(axes: list[tuple[str, str]]) -> dict[str, tuple[list[str], None]]:
    """The global view's axis ranges: {param: (fields, None)}; None = the page's current class."""
    out: dict[str, tuple[list[str], None]] = {}
    for field, _ in axes:
        out.setdefault(axis_extent(field), ([], None))[0].append(field)
    return out


def global_geometry(data=None, *, axes: list[tuple[str, str]], compare: bool, axis_width: int = 76,
                    height: int = 260, cls: int = 0) -> alt.HConcatChart:  # fmt: skip
    """Global geometry: parallel coordinates over n + 2 axes (angle to each class, length, margin) for one class.

    Rows as for `local_geometry`, plus ref_<axis> (and cmp_<axis>) for every axis field, e.g. ref_angle_3; `axes`
    is [(field, title)]. As in Fig. 5: every angle axis shares one scale (param `ext_angle`), length and margin have
    their own (`ext_length`, `ext_margin`); a line per sample runs through the axes, reference gray and compared
    yellow; each axis carries the densities of both. Every axis is brushable (params ax0, ax1, ...); lines outside
    the brushes are dimmed, not removed. Param `cls` (set by the page) picks the class; its own axis is marked.
    Each axis is a unit named "ls_axis_<k>" whose width the loader fits to the page. An axis whose title is None
    takes its title from param `axis_names` (element k), which the page sets per class: with many classes the
    angle axes are the class's most confused classes (`angle_c<r>`), different for every class.
    """
    extents = _extent_values(data, global_extents(axes), cls)
    params = [alt.param(name="cls", value=cls)] + [alt.param(name=k, value=v) for k, v in extents.items()]
    if any(title is None for _, title in axes):
        params.append(alt.param(name="axis_names", value=[t or f for f, t in axes]))
    brushes = [alt.selection_interval(name=f"ax{k}", encodings=["y"]) for k in range(len(axes))]
    inside = brushes[0]
    for b in brushes[1:]:
        inside = inside & b
    which = [("ref", GRAY), ("cmp", YELLOW)] if compare else [("ref", GRAY)]
    # Positions inside a unit come from param `aw` (the unit's width; Vega's `width` signal is the whole view's):
    # the axis at aw / 2, the lines to the next axis leave at aw. The loader fits both to the page.
    params.append(alt.param(name="aw", value=axis_width))
    units = [_pcp_unit(axes, k, brush, inside, which, extents, axis_width, height) for k, brush in enumerate(brushes)]
    # Flush: the units abut, so each sample's line runs on unbroken from one axis to the next.
    out = alt.hconcat(*units, spacing=0, data=_data(data, "pairs"), bounds="flush")
    return _top_params(out.transform_filter("datum.label == cls"), params)


def _pcp_at(axes: list[tuple[str, str]], k: int, w: str) -> str:
    """Axis k's value of a row, as a position on an axis's scale: (v - lo_k) / (hi_k - lo_k) on the shared
    height."""
    e = axis_extent(axes[k][0])
    return f"(datum.{w}_{axes[k][0]} - {e}[0]) / ({e}[1] - {e}[0])"


def _pcp_unit(axes, k: int, brush, inside, which, extents: dict, axis_width: int, height: int) -> alt.LayerChart:
    """Axis k of the PCP: both models' densities on it, each sample's line halves to the neighbouring axes, the
    brush, the axis name."""
    field, title = axes[k]
    e = axis_extent(field)
    scale = alt.Scale(domain=alt.ExprRef(e), nice=False, zero=False)
    is_angle = field.startswith("angle")
    axis = alt.Axis(offset=alt.ExprRef("-aw / 2"), labels=k == 0 or not is_angle, title=None, tickCount=5,
                    labelFontSize=9, grid=False, zindex=1,
                    labelExpr="datum.label + '°'" if is_angle else "datum.label")  # fmt: skip
    to_here = f"{e}[0] + ({e}[1] - {e}[0]) * "
    calc = {}
    for w, _ in which:
        if k > 0:
            calc[f"{w}_in"] = to_here + f"({_pcp_at(axes, k - 1, w)} + {_pcp_at(axes, k, w)}) / 2"
        if k < len(axes) - 1:
            calc[f"{w}_out"] = to_here + f"({_pcp_at(axes, k, w)} + {_pcp_at(axes, k + 1, w)}) / 2"
    base = alt.Chart().transform_calculate(**calc) if calc else alt.Chart()
    layers = []
    for w, color in which:
        layers.append(
            alt.Chart()
            .transform_density(f"{w}_{field}", as_=[f"v_{e}", "density"], extent=extents[e])
            .mark_area(orient="horizontal", color=color, opacity=0.35)
            .encode(
                y=alt.Y(f"v_{e}:Q", scale=scale, axis=axis),
                x=alt.X(
                    "density:Q", axis=None, scale=alt.Scale(range=[alt.ExprRef("aw / 2"), alt.ExprRef("aw * 0.95")])
                ),
            )
        )
    for w, color in which:
        opacity = alt.condition(inside, alt.value(0.55), alt.value(0.06))
        # Each half starts at the axis (x, y: the sample's value there) and ends at the cell edge (x2, y2: the
        # midpoint with the neighbouring axis), so the incoming half runs leftwards from the axis.
        for half, (x0, x1) in (("in", ("aw / 2", "0")), ("out", ("aw / 2", "aw"))):
            if f"{w}_{half}" not in calc:
                continue
            layers.append(
                base.mark_rule(color=color, strokeWidth=1).encode(
                    x=alt.value(alt.ExprRef(x0)),
                    x2=alt.value(alt.ExprRef(x1)),
                    y=alt.Y(f"{w}_{field}:Q", scale=scale, axis=axis),
                    y2=f"{w}_{half}:Q",
                    opacity=opacity,
                    tooltip=[alt.Tooltip("image:N"), "sample_id:Q", alt.Tooltip(f"{w}_{field}:Q", format=".2f")],
                )
            )
    # The brush lives on an invisible layer spanning the unit: an axis is brushable on both its sides.
    layers.append(
        alt.Chart().mark_tick(opacity=0).encode(y=alt.Y(f"ref_{field}:Q", scale=scale, axis=axis)).add_params(brush)
    )
    layers.append(_pcp_label(field, title, k, axis_width))
    return alt.layer(*layers).properties(width=axis_width, height=height, name=f"ls_axis_{k}",
                                         view=alt.ViewBackground(stroke=None))  # fmt: skip


def _pcp_label(field: str, title: str | None, k: int, axis_width: int) -> alt.Chart:
    """An axis's name above it, bold (and " (true)") on the class's own axis."""
    name = json.dumps(title) if title is not None else f"axis_names[{k}]"
    own = f"{json.dumps(field)} == 'angle_' + cls"
    if title is None:  # the page's names mark the true class's axis (" (true)"); bold here
        own = "true" if field == "angle_true" else "false"
    return (
        alt.Chart()
        .transform_aggregate(n="count()")
        # Narrow axes (a phone) turn their names up so that they do not run into each other.
        .mark_text(baseline="bottom", fontSize=11, limit=axis_width + 20,
                   text=alt.ExprRef(f"{name} + ({own} ? ' (true)' : '')"),
                   fontWeight=alt.ExprRef(f"{own} ? 'bold' : 'normal'"),
                   angle=alt.ExprRef("aw < 60 ? 300 : 0"), align=alt.ExprRef("aw < 60 ? 'left' : 'center'"))
        .encode(x=alt.value(alt.ExprRef("aw / 2")), y=alt.value(-6))
    )  # fmt: skip


def global_filters(n_axes: int) -> list:
    """The predicates that define the selected samples in the global view: inside every axis brush, of the class."""
    return [{"param": f"ax{k}"} for k in range(n_axes)] + ["datum.label == cls"]


GRID_STEP = 86  # px per thumbnail tile of the sample grids (caption lines are limited to fit)
GRID_LIMIT = 48  # samples a grid shows at most by default (the workspace's: the page ranks them, cfg["grid_limit"])
PIE_COLOR = "#1f77b4"


def sample_examination(
    data=None, *, filters: list, compare: bool, columns: int = 10, limit: int = GRID_LIMIT, ranked: bool = False
) -> alt.LayerChart:
    """Sample examination (R4): thumbnails of the selected samples with label, predictions and metrics.

    Rows as for `local_geometry`, plus pie (a pruning-identified exemplar) and robustness (eq. 7, of the
    reference model). `filters` are the predicates of the other views' selections; the first `limit` samples
    that pass, ordered by margin (most at risk first), are shown, and the title says how many passed. A frame's
    colour is the prediction (single model: correct gray / incorrect red; compare: the outcome colours of the
    trajectories), a dashed frame marks a sample no corruption left correctly classified (robustness 0), a blue
    diamond a pruning-identified exemplar (PIE). Param `gridcols` (the loader fits it to the page) sets the columns.
    `ranked`: the rows are the shown samples already, each with its `rank` (1 first) and `total` (how many passed
    the selection), as the workspace's page picks them; the spec then neither filters nor ranks.
    """
    chart = _grid_cells(data, filters, compare, limit, ranked)
    gridcols = alt.param(name="gridcols", value=columns)
    x = alt.X("col:O", axis=None, scale=alt.Scale(domain=alt.ExprRef("sequence(0, gridcols)"), paddingInner=0.08))
    y = alt.Y("row:O", axis=None, scale=alt.Scale(paddingInner=0.08))
    tooltip, stroke = _grid_tooltip_and_stroke(compare)
    pie = (
        chart.transform_filter("datum.pie")
        .mark_point(
            shape="diamond", filled=True, size=70, color=PIE_COLOR, xOffset=GRID_STEP * 0.36, yOffset=-GRID_STEP * 0.36
        )
        .encode(x=x, y=y, shape=alt.Shape("pie_mark:N", scale=alt.Scale(range=["diamond"]), legend=_legend(None)))
    )
    image = chart.mark_image(width=44, height=44, yOffset=-8).encode(x=x, y=y, url="image:N", tooltip=tooltip)
    caption = [
        chart.mark_text(dy=dy, fontSize=9, limit=GRID_STEP - 8).encode(x=x, y=y, text=f"{field}:N")
        for field, dy in (("line1", 22), ("line2", 33))
    ]
    title = (
        chart.transform_filter("datum.rank == 1")
        .transform_calculate(
            text=f"'showing ' + min(datum.total, {limit}) + ' of ' + datum.total + ', lowest margin first'"
        )
        .mark_text(align="left", baseline="bottom", fontWeight="bold", x=0, y=-10)
        .encode(text="text:N")
    )
    return (
        alt.layer(*_grid_frames(chart, x, y, stroke), image, *caption, pie, title)
        .properties(width=alt.Step(GRID_STEP), height=alt.Step(GRID_STEP))
        .add_params(gridcols)
    )


def _grid_cells(data, filters: list, compare: bool, limit: int, ranked: bool) -> alt.Chart:
    """The grid's rows: the samples passing every filter, ranked by margin, the first `limit` placed in cells
    (`ranked`: the rows come ranked and cut, with `rank` and `total`)."""
    chart = alt.Chart(_data(data, "pairs"))
    for f in filters:
        chart = chart.transform_filter(f)
    if not ranked:
        chart = (
            chart.transform_joinaggregate(total="count()")
            .transform_window(rank="row_number()", sort=[alt.SortField("ref_margin", order="ascending")])
            .transform_filter(f"datum.rank <= {limit}")
        )
    return chart.transform_calculate(
        col="(datum.rank - 1) % gridcols",
        row="floor((datum.rank - 1) / gridcols)",
        robust="datum.robustness == 0 ? 'never correct under corruption' : 'correct under some corruption'",
        pie_mark="datum.pie ? 'pruning-identified exemplar (PIE)' : null",
        line1="datum.class_name",
        line2="'→ ' + datum.ref_pred_name" + (" + ' / ' + datum.cmp_pred_name" if compare else ""),
    )


def _grid_tooltip_and_stroke(compare: bool) -> tuple[list, alt.Stroke]:
    """A cell's tooltip, and its frame's colour: the prediction, or in compare mode the trajectory's outcome."""
    tooltip = [alt.Tooltip("image:N"), "sample_id:Q", "class_name:N", alt.Tooltip("ref_pred_name:N", title="ref pred"),
               alt.Tooltip("ref_angle_true:Q", format=".1f"), alt.Tooltip("ref_length:Q", format=".2f"),
               alt.Tooltip("ref_margin:Q", format=".2f"), "robustness:Q", "pie:N"]  # fmt: skip
    if compare:
        tooltip += [alt.Tooltip("cmp_pred_name:N", title="cmp pred"), "outcome:N"]
        return tooltip, alt.Stroke(
            "outcome:N", scale=alt.Scale(domain=OUTCOMES, range=OUTCOME_COLORS), legend=_legend("outcome")
        )
    return tooltip, alt.Stroke(
        "ref_outcome:N", scale=alt.Scale(domain=CORRECTNESS, range=[GRAY, RED]), legend=_legend("prediction")
    )


def _grid_frames(chart: alt.Chart, x, y, stroke) -> list:
    """The cells' frames, solid or dashed by robustness, and the legend of the dashes."""
    robust = ["correct under some corruption", "never correct under corruption"]
    # Vega-Lite has no dash channel for rects: dashed and solid frames are two layers, the legend comes from a
    # zero-length rule that encodes the same meaning.
    frames = [
        chart.transform_filter(f"datum.robust == '{kind}'")
        .mark_rect(filled=False, strokeWidth=2.5, strokeDash=dash)
        .encode(x=x, y=y, stroke=stroke)
        for kind, dash in zip(robust, ([1, 0], [4, 3]), strict=True)
    ]
    dash_legend = chart.transform_filter("datum.rank == 1").mark_rule(strokeWidth=2).encode(
        x=alt.value(0), x2=alt.value(0), y=alt.value(0), y2=alt.value(0),
        strokeDash=alt.StrokeDash("robust:N", scale=alt.Scale(domain=robust, range=[[1, 0], [4, 3]]),
                                  legend=_legend("robustness")),
    )  # fmt: skip
    return [*frames, dash_legend]


MARGIN_CHANGE_RANGE = (-2.0, 3.0)  # x range of Fig. 10: 0 unchanged, 1 margin gone, > 1 flipped to wrong
PAIR_COLORS = ["#1f77b4", "#ff7f0e"]  # the paper's Fig. 10: blue the dense model, orange the MPT model


def headline(data=None, *, methods: list[str], archs: list[str] | None = None) -> alt.FacetChart:
    """The finding at a glance: accuracy against the fraction of weights pruned, one line per method (dense at 0
    starts every line), clean and the corruption mean side by side, one row per architecture (`archs`, in that
    order), bootstrap intervals as bands. Clicking a point opens that model in the views (`href`); clicking a legend
    entry isolates a method. The panels wrap (facet named "ls_hl"): one column on a phone.

    Rows: model_id, arch, method (label, e.g. "magnitude+retrain"), amount, data ("clean" / "corruption mean"),
    panel ("<arch> · <data>"), accuracy, lo, hi, seed, href.
    """
    panels = [f"{a} · {d}" for a in archs for d in ("clean", "corruption mean")] if archs else "ascending"
    pick = alt.selection_point(name="hl_method", fields=["method"], bind="legend")
    x = alt.X("amount:Q", title="fraction of weights pruned", scale=alt.Scale(domain=[0, 1], nice=False),
              axis=alt.Axis(format=".0%", values=[0, 0.25, 0.5, 0.75, 1]))  # fmt: skip
    y = alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%"))
    color = alt.Color("method:N", title="method", scale=alt.Scale(domain=methods),
                      legend=alt.Legend(orient="bottom", columns=min(len(methods), 6), symbolOpacity=1))  # fmt: skip
    fade = alt.condition(pick, alt.value(1), alt.value(0.12))
    base = alt.Chart().encode(x=x, color=color, detail="seed:N")
    band = base.mark_area(opacity=0.15).encode(
        y="lo:Q", y2="hi:Q", opacity=alt.condition(pick, alt.value(0.18), alt.value(0.03))
    )
    line = base.mark_line(strokeWidth=2).encode(y=y, opacity=fade)
    dots = base.mark_point(filled=True, size=55, cursor="pointer").encode(
        y=y, opacity=fade, href="href:N",
        tooltip=[alt.Tooltip("model_id:N", title="model"), alt.Tooltip("data:N"),
                 alt.Tooltip("accuracy:Q", format=".1%"), alt.Tooltip("lo:Q", title="interval from", format=".1%"),
                 alt.Tooltip("hi:Q", title="interval to", format=".1%"), alt.Tooltip("n:Q", title="evaluation images")],
    )  # fmt: skip
    return (
        alt.layer(band, line, dots, data=_data(data, "headline"))
        .add_params(pick)
        .properties(width=280, height=200, name="ls_hl_unit")
        .facet(
            facet=alt.Facet("panel:N", title=None, sort=panels, header=alt.Header(labelFontSize=13,
                                                                               labelFontWeight="bold")),
            columns=2,
        )
        .properties(name="ls_hl")
    )  # fmt: skip


def margin_change_pair(data=None, *, models: list[tuple[str, str]], a: str, b: str, paired=None) -> alt.VConcatChart:
    """Fig. 10 as the paper draws it: the relative margin change (m_clean − m_corrupted) / m_clean of two models,
    0.5 % tails trimmed per model, over every corruption pooled, then per corruption for the same two models; above
    them, the two models compared paired (B minus A on the same images).

    Rows as for `margin_change_density`; `paired` (dataset "fig10_paired"): a, b and lines t0..t3, the readout of
    every ordered pair (`findings.pair_texts`). `models` is [(model_id, label)] for the two selects (params mc_a
    and mc_b, defaults `a` and `b`); blue is model A, orange model B.
    """
    ids = [m for m, _ in models]
    labels = [label for _, label in models]
    pa_ = alt.param(name="mc_a", value=a, bind=alt.binding_select(options=ids, labels=labels, name="model A (blue) "))
    pb_ = alt.param(name="mc_b", value=b, bind=alt.binding_select(options=ids, labels=labels, name="model B (orange) "))
    lo, hi = MARGIN_CHANGE_RANGE

    def chart():
        return (
            alt.Chart(_data(data, "margin_change"))
            .transform_filter("datum.model_id == mc_a || datum.model_id == mc_b")
            .transform_filter(f"datum.x >= {lo} && datum.x <= {hi}")
            # The same model in both selects is drawn once, as A.
            .transform_calculate(which="datum.model_id == mc_a ? 'A' : 'B'")
            .mark_line(interpolate="monotone")
            .encode(
                x=alt.X("x:Q", title="relative margin change", scale=alt.Scale(domain=[lo, hi])),
                y=alt.Y("density:Q", title="density"),
                color=alt.Color("which:N", scale=alt.Scale(domain=["A", "B"], range=PAIR_COLORS), legend=None),
                tooltip=["model_id:N", alt.Tooltip("x:Q", format=".2f"), alt.Tooltip("density:Q", format=".2f")],
            )
        )

    pooled = (
        chart().transform_filter("datum.variant == 'all'")
        .properties(width=520, height=200, title="all corruptions and severities pooled", name="ls_fig10_pooled")
    )  # fmt: skip
    per = (
        chart()
        .transform_filter("datum.variant != 'all'")
        .properties(width=140, height=80, name="ls_fig10_cell")
        .facet(facet=alt.Facet("variant:N", title=None, header=alt.Header(labelFontSize=11)), columns=4)
        .resolve_scale(y="independent")
        .properties(name="ls_fig10_per")
    )
    # Short lines, cut at the chart's width (param fig10_w, set with it when the page fits the chart to a phone).
    width = alt.param(name="fig10_w", value=520)
    readout = (
        alt.Chart(_data(paired, "fig10_paired"))
        .transform_filter("datum.a == mc_a && datum.b == mc_b")
        .transform_fold(["t0", "t1", "t2", "t3"], as_=["line", "text"])
        .mark_text(align="left", baseline="middle", fontSize=12, limit=alt.ExprRef("fig10_w"))
        .encode(x=alt.value(0), y=alt.Y("line:O", axis=None), text="text:N")
        .properties(width=520, height=4 * 16, name="ls_fig10_pooled_readout", view=alt.ViewBackground(stroke=None),
                    title=alt.Title("B minus A, paired on the same images", anchor="start", fontSize=12))
    )  # fmt: skip
    # Variable params live at the top level; add_params would try to push them into the facet and fail.
    out = alt.vconcat(readout, pooled, per, spacing=12)
    out.params = [pa_.param, pb_.param, width.param]
    return out


def margin_change_density(data=None) -> alt.FacetChart:
    """Relative margin change (m_clean − m_corrupted) / m_clean per model, 0.5 % tails trimmed (Fig. 10).

    Rows: model_id, variant ("all" or a corruption), x, density.
    """
    model = alt.selection_point(name="mc_model", fields=["model_id"], bind="legend")
    return (
        alt.Chart(_data(data, "margin_change"))
        # A model that is at chance (heavily pruned without retraining) has margins near 0, so its relative
        # changes reach into the hundreds: show the range where working models differ, as in the paper's Fig. 10.
        .transform_filter(f"datum.x >= {MARGIN_CHANGE_RANGE[0]} && datum.x <= {MARGIN_CHANGE_RANGE[1]}")
        .mark_line()
        .encode(
            x=alt.X("x:Q", title="relative margin change", scale=alt.Scale(domain=list(MARGIN_CHANGE_RANGE))),
            # Clipped: a model at chance piles its mass in one narrow bin and would flatten every other curve.
            y=alt.Y("density:Q", title="density (clipped at 4)", scale=alt.Scale(domain=[0, 4], clamp=True)),
            color=alt.Color("model_id:N", title="model"),
            opacity=alt.condition(model, alt.value(1), alt.value(0.15)),
            tooltip=["model_id:N", alt.Tooltip("x:Q", format=".2f"), alt.Tooltip("density:Q", format=".2f")],
        )
        .add_params(model)
        .properties(width=240, height=140)
        .facet(facet=alt.Facet("variant:N", title=None), columns=3)
        .resolve_axis(x="independent")
    )


def curse_of_dimensionality(data=None) -> alt.FacetChart:
    """The curse of dimensionality (Fig. 3): mean ± std of angles vs dimension, random vectors and trained models.

    Rows: study ("random" or an architecture), dimension, angle_mean, angle_std, accuracy. The panels share one
    angle scale, 0-180° (random angles concentrate at 90°, trained ones need not); the log dimension axis labels
    powers of 4 only, so
    neighbouring labels never run together.
    """
    base = alt.Chart().transform_calculate(
        lo="datum.angle_mean - datum.angle_std", hi="datum.angle_mean + datum.angle_std"
    )
    x = alt.X("dimension:Q", scale=alt.Scale(type="log", base=2), title="dimension",
              axis=alt.Axis(values=[2 ** k for k in range(0, 17, 2)], format="~s", labelOverlap="greedy"))  # fmt: skip
    # Angles lie in [0°, 180°]; mean ± std can pass either end at small dimensions: the axis shows all of [0, 180]
    # and the bars are clipped to the plot instead of running over the panel titles.
    band = base.mark_errorbar(ticks=True, clip=True).encode(
        x=x,
        y=alt.Y("lo:Q", title="angle (°)", scale=alt.Scale(domain=[0, 180]),
                axis=alt.Axis(values=[0, 30, 60, 90, 120, 150, 180])),
        y2="hi:Q",
    )  # fmt: skip
    rule = alt.Chart().mark_rule(strokeDash=[4, 3], color=GRAY).encode(y=alt.datum(90))
    line = base.mark_line(point=True).encode(
        x=x,
        y="angle_mean:Q",
        tooltip=[
            "study:N",
            "dimension:Q",
            alt.Tooltip("angle_mean:Q", format=".1f"),
            alt.Tooltip("angle_std:Q", format=".1f"),
            alt.Tooltip("accuracy:Q", format=".1%"),
        ],
    )
    return (
        alt.layer(rule, band, line, data=_data(data, "curse"))
        .properties(width=300, height=180, name="ls_curse_unit")
        .facet(facet=alt.Facet("study:N", title=None, header=alt.Header(labelFontSize=12)), columns=2)
        .resolve_scale(x="independent", y="shared")
        .properties(name="ls_curse")
    )


def correlations(data=None) -> alt.Chart:
    """Table 1 as a chart: Pearson r of per-sample robustness with angle, length and margin, per model (§5.3); the
    margin both ways, side by side: with the bias (`margin`) and without it, the paper's eq. 5 (`margin_eq5`).

    Rows: model_id, arch, method, amount, rc_angle, rc_length, rc_margin, rc_margin_eq5.
    """
    return (
        alt.Chart(_data(data, "correlations"))
        .transform_fold(["rc_angle", "rc_length", "rc_margin", "rc_margin_eq5"], as_=["metric", "r"])
        .mark_rect()
        .encode(
            x=alt.X("metric:N", title=None, axis=alt.Axis(labelAngle=0, labelExpr="replace(datum.label, 'rc_', '')")),
            y=alt.Y("model_id:N", title=None),
            color=alt.Color("r:Q", scale=alt.Scale(scheme="redblue", domain=[-1, 1]), title="Pearson r"),
            tooltip=["model_id:N", "metric:N", alt.Tooltip("r:Q", format=".3f")],
        )
        .properties(width=320, name="ls_corr_unit")
    )


def accuracy_vs_cost(data=None, *, methods: list[str], archs: list[str] | None = None) -> alt.FacetChart:
    """Accuracy against what a model costs to run: multiply-accumulates per image (log axis), one line per method,
    clean and the corruption mean side by side, one row per architecture. Masked models sit at their dense model's
    cost (masks do not shrink a network); channel-pruned ones move left. The tooltip gives the measured speed-up.

    Rows: model_id, arch, method, amount, macs, speedup (dense latency / this model's, at the large batch),
    parameters, data ("clean" / "corruption mean"), panel ("<arch> · <data>"), accuracy, seed, href.
    """
    panels = [f"{a} · {d}" for a in archs for d in ("clean", "corruption mean")] if archs else "ascending"
    pick = alt.selection_point(name="cost_method", fields=["method"], bind="legend")
    color = alt.Color("method:N", title="method", scale=alt.Scale(domain=methods),
                      legend=alt.Legend(orient="bottom", columns=min(len(methods), 6), symbolOpacity=1))  # fmt: skip
    base = alt.Chart().encode(
        x=alt.X("macs:Q", title="multiply-accumulates per image", scale=alt.Scale(type="log"),
                axis=alt.Axis(format="~s")),
        y=alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%")),
        color=color, detail="seed:N", opacity=alt.condition(pick, alt.value(1), alt.value(0.12)),
    )  # fmt: skip
    line = base.mark_line(strokeWidth=2).encode(order="amount:Q")
    dots = base.mark_point(filled=True, size=55, cursor="pointer").encode(
        href="href:N",
        tooltip=[alt.Tooltip("model_id:N", title="model"), alt.Tooltip("data:N"),
                 alt.Tooltip("accuracy:Q", format=".1%"), alt.Tooltip("amount:Q", title="pruned", format=".0%"),
                 alt.Tooltip("macs:Q", title="MACs", format=".3~s"),
                 alt.Tooltip("parameters:Q", format=".3~s"),
                 alt.Tooltip("speedup:Q", title="measured speed-up", format=".2f")],
    )  # fmt: skip
    return (
        alt.layer(line, dots, data=_data(data, "cost"))
        .add_params(pick)
        .properties(width=280, height=200, name="ls_cost_unit")
        .facet(facet=alt.Facet("panel:N", title=None, sort=panels,
                               header=alt.Header(labelFontSize=13, labelFontWeight="bold")), columns=2)
        .properties(name="ls_cost")
    )  # fmt: skip


# ---- the workspace: every combination side by side (paper Fig. 4, Figs. 7 and 8) -------------------------------
WS_DOTS = [*CORRECTNESS, "reference", "compared"]  # a dot's role: a single combination's prediction, or a pair's
WS_DOT_COLORS = [GRAY, RED, GRAY, YELLOW]
WS_CELL = 150  # px of a workspace panel's plot area (the loader fits the facets' columns to the page)
WS_SEL = "ls_sel"  # the panels' selection version: the page bumps it per brush, and their marks re-encode
# Whether a panel's mark is drawn as selected: the page's expression function lsSel reads the shared selection (with
# none, the row's `dot`), so that a brush changes no data (ws-panels.js, bench/RESULTS.md 2026-12-06).
WS_SHOWN = f"lsSel(datum.index, datum.dot, {WS_SEL})"
WS_POOL = 2000  # samples of a class a dense panel holds as marks (the subsample first): the selection's marks
# Whether unselected dots are drawn faint while a selection is active (1), or not at all (0: a dense panel, whose
# density of every sample is the context). A dense PCP's faint context was 26 400 strokes repainted per brush at
# CIFAR scale, most of its update (bench/RESULTS.md, "Dense context").
WS_FAINT = "ws_faint"
# How the page paints a PCP's lines (lines.js): opacity selected and as faint context, stroke widths, the focused
# sample's colour, a colour per role (the legend's).
WS_LINES = {"selected": 0.45, "faint": 0.04, "width": 1, "focus_width": 3, "focus": "#000000",
            "colors": dict(zip(CORRECTNESS, (GRAY, RED), strict=True))}  # fmt: skip


def _ws_opacity(selected: float, faint: float) -> dict:
    """A panel mark's opacity: `selected` while drawn as selected (WS_SHOWN), else `faint` on a dot where the page
    draws the unselected context (WS_FAINT), and none on a pool row (a dense panel's sample outside the subsample: a
    mark only while selected)."""
    drawn = [{"test": WS_SHOWN, "value": selected}, {"test": f"datum.dot == 1 && {WS_FAINT}", "value": faint}]
    return {"condition": drawn, "value": 0}


def _ws_titles(param: str, limit: int = WS_CELL + 40) -> alt.Header:
    # A panel's header comes from the page (param `param`: [line, line] per panel key), never from the facet value:
    # the facet value is the short key the brush's store names its cell by (parsed by the page).
    return alt.Header(title=None, labelExpr=f"{param}[datum.value] || datum.value", labelFontSize=11,
                      labelLimit=limit, labelAnchor="start", labelAlign="left")  # fmt: skip


def workspace_local(data=None, *, shared: bool = True, columns: int = 6) -> alt.FacetChart:
    """Local geometry as small multiples: one panel per (combination, class) or per outcome subset, chosen by the
    page (Fig. 7: one class across the combinations; Fig. 4 ④: outcome subsets b–f of two combinations).

    Rows (dataset "ws_local", one per dot): panel (short key, e.g. "p3"), sample_id, index (the sample's place in
    samples.arrow), label, class_name, role (WS_DOTS), x (length) and y (angle to the true class) of the dot's
    combination, x0 / y0 (the reference combination's, on a compared dot: its trajectory's start), outcome (OUTCOMES,
    compared dots), traj (1: draw its trajectory, if drawn as selected), dot (1: drawn when nothing is selected; 0: a
    dense panel's pool row, drawn only while selected), focus (1: the sample picked in the grid); rows kind
    "density" (a dense page: a class with more samples than a panel draws as marks) are a bin of the store's
    density of every sample (x..x2, y..y2; n its count, o its opacity). Param `ws_titles` holds each panel's header
    lines; param `ls_sel` the selection's version (`WS_SHOWN`: a brush changes no rows). One interval brush
    (`ws_lbrush`, on x and y) over every panel; the page reads the panel from its store. `shared`: one x and one y
    scale for every panel (the default); else each panel has its own ranges.
    """
    # 6 px of padding: a dot at the data's end is drawn whole, not cut in half by the panel's clip.
    x = alt.X("x:Q", title="length", scale=alt.Scale(zero=False, nice=False, padding=6))
    y = alt.Y("y:Q", title="angle to true class (°)", scale=alt.Scale(zero=False, nice=False, padding=6))
    brush = alt.selection_interval(name="ws_lbrush", encodings=["x", "y"])
    tooltip = [alt.Tooltip("image:N"), "sample_id:Q", "class_name:N", "role:N", "outcome:N",
               alt.Tooltip("x:Q", title="length", format=".2f"),
               alt.Tooltip("y:Q", title="angle", format=".1f")]  # fmt: skip
    base = alt.Chart()
    traj = (
        base.transform_filter("datum.traj == 1")
        .mark_rule(strokeWidth=1, clip=True)
        .encode(
            x="x0:Q", y="y0:Q", x2="x:Q", y2="y:Q", opacity=_ws_opacity(0.55, 0),
            stroke=alt.Stroke("outcome:N", scale=alt.Scale(domain=OUTCOMES, range=OUTCOME_COLORS),
                              legend=_legend("trajectory")),
        )
    )  # fmt: skip
    # Where a class has more samples than a panel draws as marks (the page's densities), the density of every
    # sample: one rect per non-empty bin (rows kind "density": x..x2, y..y2 the bin, n its count, o its opacity).
    density = (
        base.transform_filter("datum.kind == 'density'")
        .mark_rect(clip=True, color=GRAY)
        .encode(x="x:Q", x2="x2:Q", y="y:Q", y2="y2:Q", opacity=alt.Opacity("o:Q", scale=None),
                tooltip=[alt.Tooltip("n:Q", title="samples in this bin")])
    )  # fmt: skip
    dots = (
        base.transform_filter("datum.kind != 'density'")
        .mark_circle(size=14, clip=True)
        .encode(
            x=x,
            y=y,
            fill=alt.Fill("role:N", scale=alt.Scale(domain=WS_DOTS, range=WS_DOT_COLORS), legend=_legend("dot")),
            opacity=_ws_opacity(0.8, 0.07),
            tooltip=tooltip,
        )
    )
    dots = dots.add_params(brush)
    focus = (
        base.transform_filter("datum.focus == 1")
        .mark_point(size=130, strokeWidth=2, color="#000000", filled=False, clip=True)
        .encode(x=x, y=y)
    )
    layers = alt.layer(density, dots, traj, focus).properties(width=WS_CELL, height=WS_CELL)
    out = layers.facet(facet=alt.Facet("panel:N", header=_ws_titles("ws_titles"), sort=alt.SortField("panel_order")),
                       columns=columns, data=_data(data, "ws_local"), spacing={"row": 12, "column": 14})  # fmt: skip
    if not shared:
        out = out.resolve_scale(x="independent", y="independent").resolve_axis(x="independent", y="independent")
    out = out.properties(name="ws_local")
    out.params = [*out.params, alt.param(name="ws_titles", value={}).param, alt.param(name=WS_SEL, value=0).param,
                  alt.param(name=WS_FAINT, value=1).param]  # fmt: skip
    return out


def workspace_pcp(data=None, *, n_axes: int, columns: int = 3, axis_step: int = 34) -> alt.FacetChart:
    """The global PCP as small multiples: one panel per combination, one class, on the same normalised axes.

    Rows (dataset "ws_pcp"): kind "line" (one per sample and axis) or "axis" (one per panel and axis); panel,
    panel_order, k (axis index, left to right), and on lines sample_id, index, label, role (CORRECTNESS of the
    panel's combination), v (the store value), y (v on the axis's range: 0 at its low end, 1 at its high end), dot,
    focus (as `workspace_local`'s), painted by the page (lines.js), not by this spec; on axes name, lo and hi (the
    range, as text); kind "density" (a dense page): a bin of the store's density of every sample of the
    class on axis k (k_lo..k_hi its width, y_lo..y_hi the bin, n its count).
    The page sets the ranges: every angle axis shares one, length and margin their own, over every panel (shared,
    the default; a dense page: the density's, the class's values over every model) or per panel (then the panels'
    ranges differ and each panel's axes print theirs; a dense page's bars keep the density's bins, on the panel's
    range, cut by its clip): the spec is the same either way. `n_axes` axes, `axis_step`
    px apart. One interval brush (`ws_pbrush`, x over axes and y over
    values) per page: it selects the samples whose values lie in its value range on every axis it spans, of the
    brushed panel's combination (the page reads the panel from the brush's store).
    """
    xscale = alt.Scale(domain=[-0.5, n_axes - 0.5], nice=False, zero=False)
    x = alt.X("k:Q", axis=None, scale=xscale)
    yscale = alt.Scale(domain=[0, 1], nice=False, zero=False)
    y = alt.Y("y:Q", axis=None, scale=yscale)
    brush = alt.selection_interval(name="ws_pbrush", encodings=["x", "y"])
    # The lines are painted by the page on a canvas of its own over this view (lines.js), from the rows' y and these
    # scales, in the style of the param `ws_lines` (WS_LINES): as Vega marks, a brush re-encoded and repainted every
    # line, 66 000 rules at CIFAR scale (bench/RESULTS.md, "PCP lines on a canvas"). The legend stays Vega's: a layer
    # of no rows whose stroke scale has the roles as its domain.
    legend = (
        alt.Chart().transform_filter("datum.kind == 'legend'")
        .mark_rule(strokeWidth=1)
        .encode(x=x, y=y, stroke=alt.Stroke("role:N", scale=alt.Scale(domain=CORRECTNESS, range=[GRAY, RED]),
                                            legend=_legend("line")))
    )  # fmt: skip
    # Every layer's y is on the lines' scale with no axis of its own (a layer with an axis would merge with none).
    axes = alt.Chart().transform_filter("datum.kind == 'axis'").transform_calculate(y_lo="0", y_hi="1")
    lo, hi = (alt.Y(f"{f}:Q", axis=None, scale=yscale) for f in ("y_lo", "y_hi"))
    rules = axes.mark_rule(color=GRAY, strokeWidth=1).encode(x=x, y=lo, y2="y_hi:Q")
    text = dict(fontSize=9, align="center")
    # Names on two staggered lines, so that neighbouring axes' names do not run into each other.
    names = [
        axes.transform_filter(f"datum.k % 2 == {odd}")
        .mark_text(baseline="bottom", dy=-14 - 11 * odd, limit=axis_step * 2 - 4, **text)
        .encode(x=x, y=hi, text="name:N")
        for odd in (0, 1)
    ]
    his = axes.mark_text(baseline="bottom", dy=-3, **text).encode(x=x, y=hi, text="hi:N")
    los = axes.mark_text(baseline="top", dy=3, **text).encode(x=x, y=lo, text="lo:N")
    # The brush lives on invisible rects over the whole plot, drawn last: a drag starts on them wherever it starts.
    pad = axes.transform_calculate(k_lo="datum.k - 0.5", k_hi="datum.k + 0.5")
    catch = pad.mark_rect(opacity=0).encode(x=alt.X("k_lo:Q", axis=None, scale=xscale), x2="k_hi:Q", y=lo, y2="y_hi:Q")
    # The density of every sample of the class (the page's densities, where a class has more samples than a panel
    # draws as lines): per axis a bar per non-empty bin, as wide as its count (rows kind "density").
    density = (
        alt.Chart().transform_filter("datum.kind == 'density'")
        .mark_rect(color=GRAY, opacity=0.45, clip=True)
        .encode(x=alt.X("k_lo:Q", axis=None, scale=xscale), x2="k_hi:Q", y=lo, y2="y_hi:Q",
                tooltip=[alt.Tooltip("n:Q", title="samples in this bin")])
    )  # fmt: skip
    unit = alt.layer(density, rules, legend, *names, his, los, catch.add_params(brush)).properties(
        width=n_axes * axis_step, height=170
    )
    header = _ws_titles("ws_ptitles", n_axes * axis_step)
    out = unit.facet(facet=alt.Facet("panel:N", header=header, sort=alt.SortField("panel_order")),
                     columns=columns, data=_data(data, "ws_pcp"), spacing={"row": 40, "column": 18})  # fmt: skip
    out = out.properties(name="ws_pcp")
    out.params = [*out.params, alt.param(name="ws_ptitles", value={}).param, alt.param(name=WS_FAINT, value=1).param,
                  alt.param(name="ws_lines", value=WS_LINES).param]  # fmt: skip
    return out
