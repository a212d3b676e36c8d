"""The site's charts: one pure function per chart, each returning an Altair chart (paper §6, Figs. 3-10).

Every function takes its data as a pandas DataFrame (in a notebook) or, by default, a named placeholder that the
site's loader fills from the store's Arrow files in the browser. Field names are those of the rows documented on
each function; the site builds them from the store (`lotterysite.site.data`) and, for per-sample views, joins a
reference and a compared model's rows in the browser (`assets/lotterysite.js`).
"""

from __future__ import annotations

import warnings

import altair as alt

GRAY = "#8c8c8c"  # reference model / correct samples (paper §6.2)
RED = "#d62728"  # incorrect samples, "newly wrong"
YELLOW = "#e6b800"  # compared model
GREEN = "#2ca02c"
PURPLE = "#9467bd"
OUTCOMES = ["both wrong", "newly wrong", "newly right", "both right"]  # Fig. 4 ④ (c)-(f)
OUTCOME_COLORS = [PURPLE, RED, GREEN, GRAY]
AMOUNT_LABEL = "datum.value == 0 ? 'dense' : format(datum.value, '.0%')"
METRIC_DIFFS = (("d_angle", "Δ angle (°)"), ("d_length", "Δ length"), ("d_margin", "Δ margin"))


def _data(data, name: str):
    return alt.Data(name=name) if data is None else data


def evaluation_table(data=None, *, variants: list[str], columns: int = 7, methods: int = 5) -> alt.FacetChart:
    """Evaluation table: accuracy per method × amount, small multiples per corruption, methods ranked (Fig. 4 ①⑤).

    Rows: model_id, method_label, amount, amount_label, variant_label, rank (1 = best method of this variant),
    first (one row per cell, carries its label), accuracy, delta (subset minus overall accuracy, or null).
    Clicking a bar selects its model (param `model`) and highlights it in every cell; `delta` draws green/red bars.

    One wrapped facet over the variants, with the ranked methods stacked as bands inside each small multiple
    (a method's band is [rank - 1, rank] on a reversed y scale, its bars grow up from the band's floor): a single
    view, so the `model` selection is defined once and works in every cell.
    """
    model = alt.selection_point(name="model", fields=["model_id"], on="click", clear="dblclick")
    band = 0.8  # share of a band the bars may fill; the rest separates the methods
    y_scale = alt.Scale(domain=[0, methods], reverse=True, nice=False)
    base = alt.Chart().encode(
        x=alt.X("amount:O", title=None, axis=alt.Axis(labelAngle=0, labelExpr=AMOUNT_LABEL, labelFontSize=8)),
    )
    bars = (
        base.transform_calculate(top=f"datum.rank - {band} * datum.accuracy")
        .mark_bar(size=8)
        .encode(
            y=alt.Y("rank:Q", title=None, scale=y_scale, axis=None),
            y2="top:Q",
            color=alt.condition(model, alt.value("#4c78a8"), alt.value("#d0d0d0")),
            tooltip=[
                alt.Tooltip("model_id:N", title="model"),
                alt.Tooltip("variant_label:N", title="data"),
                alt.Tooltip("accuracy:Q", format=".1%"),
                alt.Tooltip("delta:Q", title="subset − overall", format="+.1%"),
            ],
        )
    )
    delta = (
        base.transform_filter("isValid(datum.delta)")
        .transform_calculate(
            top=f"datum.rank - {band} * datum.accuracy",
            tip=f"datum.rank - {band} * clamp(datum.accuracy + datum.delta, 0, 1)",
        )
        .mark_bar(size=4)
        .encode(
            y=alt.Y("top:Q", scale=y_scale, axis=None),
            y2="tip:Q",
            color=alt.condition("datum.delta >= 0", alt.value(GREEN), alt.value(RED)),
        )
    )
    label = (
        alt.Chart()
        .mark_text(align="left", baseline="top", dx=2, fontSize=9, color="#555")
        .transform_filter("datum.first")
        .transform_calculate(label_y=f"datum.rank - {band} - 0.18")
        .encode(text="method_label:N", x=alt.value(0), y=alt.Y("label_y:Q", scale=y_scale, axis=None))
    )
    return (
        alt.layer(bars, delta, label, data=_data(data, "evaluation"))
        .properties(height=44 * methods, width=130)
        .add_params(model)
        .facet(
            facet=alt.Facet("variant_label:N", sort=variants, title=None, header=alt.Header(labelFontWeight="bold")),
            columns=columns,
            spacing=10,
        )
    )


def _outcome_filter():
    return "outcome == 'all' || datum.outcome == outcome"


def _density(field_names: list[str], colors: list[str], *, vertical: bool, size: int):
    # One layer per field with a fixed colour: a shared colour scale would merge with the scatter's legend.
    layers = []
    for name, color in zip(field_names, colors):
        chart = alt.Chart().transform_density(name, as_=["value", "density"])
        if vertical:
            layers.append(chart.mark_area(opacity=0.5, color=color, orient="horizontal").encode(
                y=alt.Y("value:Q", axis=None, scale=alt.Scale(zero=False)), x=alt.X("density:Q", axis=None)))  # fmt: skip
        else:
            layers.append(chart.mark_area(opacity=0.5, color=color).encode(x=alt.X("value:Q", axis=None, scale=alt.Scale(zero=False)),
                                       y=alt.Y("density:Q", axis=None)))  # fmt: skip
    out = alt.layer(*layers)
    return out.properties(width=size) if vertical else out.properties(height=size)


def local_geometry(data=None, *, classes: list[tuple[int, str]], compare: bool, columns: int = 4) -> alt.VConcatChart:
    """Local geometry: per class, angle to the true class vs length with marginal densities and a margin density.

    Rows (one per sample): sample_id, label, class_name, image, ref_correct (0/1), ref_class_accuracy (full-data accuracy of the class), ref_angle_true, ref_length,
    ref_margin, and with `compare` the cmp_* twins plus d_angle, d_length, d_margin (compared minus reference) and
    outcome (one of OUTCOMES). Single model: gray correct, red incorrect (Fig. 4 ③). Compare: reference gray,
    compared yellow, trajectories coloured by outcome (Fig. 4 ④, Fig. 7), filtered by the outcome radio and the
    metric-difference ranges `d_angle`, `d_length`, `d_margin`. Brush `brush` (length × angle) selects samples.
    """
    brush = alt.selection_interval(name="brush", encodings=["x", "y"])
    params = [brush]
    diffs = []
    keep = [brush]
    if compare:
        outcome = alt.param(
            name="outcome", value="all", bind=alt.binding_radio(options=["all", *OUTCOMES], name="trajectories ")
        )
        diffs = [alt.selection_interval(name=name, encodings=["x"]) for name, _ in METRIC_DIFFS]
        params.append(outcome)
    panels = []
    for class_id, _name in classes:
        flt = f"datum.label == {class_id}"
        # Class accuracy on the full evaluation set (a per-row constant from accuracy.arrow), n = shipped samples.
        acc = "ref_class_accuracy"
        header = (
            alt.Chart()
            .transform_filter(flt)
            .transform_aggregate(ref=f"mean({acc})", cmp="mean(cmp_class_accuracy)" if compare else f"mean({acc})",
                                 n="count()", groupby=["class_name"])  # fmt: skip
            .transform_calculate(
                text="datum.class_name + '  ' + format(datum.ref, '.1%')"
                + (" + ' → ' + format(datum.cmp, '.1%')" if compare else "")
                # The accuracy is over every evaluation image of the class; the dots are the shipped subset.
                + " + '  (all eval. images; ' + datum.n + ' shown)'"
            )
            .mark_text(align="left", x=0, y=8, fontWeight="bold")
            .encode(text="text:N")
            .properties(height=16, width=170)
        )
        x = alt.X("ref_length:Q", title="length", scale=alt.Scale(zero=False))
        y = alt.Y("ref_angle_true:Q", title="angle to true class (°)", scale=alt.Scale(zero=False))
        tooltip = [alt.Tooltip("image:N"), "sample_id:Q", "class_name:N", alt.Tooltip("ref_pred_name:N", title="ref pred"),
                   alt.Tooltip("ref_angle_true:Q", format=".1f"), alt.Tooltip("ref_length:Q", format=".2f"),
                   alt.Tooltip("ref_margin:Q", format=".2f")]  # fmt: skip
        if compare:
            tooltip += [alt.Tooltip("cmp_pred_name:N", title="cmp pred"), "outcome:N",
                        alt.Tooltip("d_angle:Q", format="+.1f"), alt.Tooltip("d_length:Q", format="+.2f"),
                        alt.Tooltip("d_margin:Q", format="+.2f")]  # fmt: skip
            base = alt.Chart().transform_filter(flt)
            traj = (
                base.transform_filter(_outcome_filter())
                .transform_filter(brush)
                .mark_rule(opacity=0.6, strokeWidth=1)
                .encode(x=x, y=y, x2="cmp_length:Q", y2="cmp_angle_true:Q",
                        color=alt.Color("outcome:N", scale=alt.Scale(domain=OUTCOMES, range=OUTCOME_COLORS),
                                        legend=alt.Legend(orient="bottom", title=None)))  # fmt: skip
            )
            for d in diffs:
                traj = traj.transform_filter(d)
            ref = base.mark_circle(size=12, color=GRAY, opacity=0.7).encode(x=x, y=y, tooltip=tooltip)
            ref = ref.add_params(brush)
            cmp_ = base.mark_circle(size=12, color=YELLOW, opacity=0.8).encode(
                x="cmp_length:Q", y="cmp_angle_true:Q", tooltip=tooltip
            )
            scatter = alt.layer(ref, cmp_, traj)
            fields = (["ref_length", "cmp_length"], ["ref_angle_true", "cmp_angle_true"], ["ref_margin", "cmp_margin"])
            colors = [GRAY, YELLOW]
        else:
            scatter = (
                alt.Chart()
                .transform_filter(flt)
                .mark_circle(size=14)
                .encode(
                    x=x,
                    y=y,
                    color=alt.Color("ref_outcome:N", scale=alt.Scale(domain=["correct", "incorrect"], range=[GRAY, RED]),
                                    legend=alt.Legend(orient="bottom", title=None)),  # fmt: skip
                    opacity=alt.condition(brush, alt.value(0.8), alt.value(0.15)),
                    tooltip=tooltip,
                )
                .add_params(brush)
            )
            fields = (["ref_length"], ["ref_angle_true"], ["ref_margin"])
            colors = [GRAY]
        scatter = scatter.properties(width=170, height=170)
        top = _density(fields[0], colors, vertical=False, size=36).transform_filter(flt).properties(width=170)
        right = _density(fields[1], colors, vertical=True, size=36).transform_filter(flt).properties(height=170)
        margin = (
            _density(fields[2], colors, vertical=False, size=40)
            .transform_filter(flt)
            .properties(width=170, title=alt.TitleParams("margin density", fontSize=10, orient="bottom"))
        )
        panels.append(
            alt.vconcat(header, top, alt.hconcat(scatter, right, spacing=2), margin, spacing=2)
        )
    with warnings.catch_warnings():
        # One brush shared by every class panel is intended; Altair warns when it merges the identical params.
        warnings.simplefilter("ignore", UserWarning)
        rows = [alt.hconcat(*panels[i : i + columns], spacing=18) for i in range(0, len(panels), columns)]
    parts = [*rows]
    if compare:
        hists = []
        for (name, title), sel in zip(METRIC_DIFFS, diffs):
            hists.append(
                alt.Chart()
                .mark_bar(color=YELLOW)
                .encode(x=alt.X(f"{name}:Q", bin=alt.Bin(maxbins=40), title=title), y=alt.Y("count():Q", title=None))
                .add_params(sel)
                .properties(width=220, height=70)
            )
        parts.insert(0, alt.hconcat(*hists, title="metric difference (compared − reference): drag to select"))
    return alt.vconcat(*parts, data=_data(data, "pairs"), spacing=14).add_params(*[p for p in params if p is not brush])


def local_filters(compare: bool) -> list:
    """The predicates that define the selected samples in the local view (used by the sample grid)."""
    out = [{"param": "brush"}]
    if compare:
        out += [{"param": name} for name, _ in METRIC_DIFFS] + [_outcome_filter()]
    return out


def global_geometry(data=None, *, axes: list[tuple[str, str]], compare: bool) -> alt.VConcatChart:
    """Global geometry: parallel coordinates over n + 2 axes (angle to each class, length, margin) for one class.

    Rows as for `local_geometry`, plus ref_<axis> (and cmp_<axis>) for every axis field, e.g. ref_angle_3.
    `axes` is [(field suffix, axis title)]; param `cls` (set by the page) picks the class. Every axis is brushable
    (params ax0, ax1, ...) and carries the density of the reference (gray) and compared (yellow) values on top
    (Figs. 5, 8, 9). Lines are drawn for the samples inside every brush.
    """
    cls = alt.param(name="cls", value=0)
    brushes = [alt.selection_interval(name=f"ax{k}", encodings=["y"]) for k in range(len(axes))]
    columns = []
    which = ["ref", "cmp"] if compare else ["ref"]
    colors = [GRAY, YELLOW][: len(which)]
    for (field, title), brush in zip(axes, brushes):
        density = _density([f"{w}_{field}" for w in which], colors, vertical=False, size=40).properties(width=60)
        strip = (
            alt.Chart()
            .mark_tick(color=GRAY, opacity=0.6, thickness=1)
            .encode(y=alt.Y(f"ref_{field}:Q", title=None, scale=alt.Scale(zero=False)),
                    tooltip=[alt.Tooltip("image:N"), "sample_id:Q", alt.Tooltip(f"ref_{field}:Q", format=".2f")])  # fmt: skip
            .add_params(brush)
            .properties(width=60, height=220)
        )
        if compare:
            strip = alt.layer(
                strip,
                alt.Chart().mark_tick(color=YELLOW, opacity=0.6, thickness=1, xOffset=8).encode(y=f"cmp_{field}:Q"),
            )
        columns.append(alt.vconcat(density, strip, spacing=2, title=alt.TitleParams(title, fontSize=11, anchor="middle")))
    fold = [f"{w}_{f}" for w in which for f, _ in axes]
    lines = alt.Chart()
    for brush in brushes:
        lines = lines.transform_filter(brush)
    order = [f for f, _ in axes]
    lines = (
        lines.transform_fold(fold, as_=["key", "value"])
        .transform_calculate(which="slice(datum.key, 0, 3)", axis="slice(datum.key, 4)", line="datum.sample_id + '-' + slice(datum.key, 0, 3)")
        .transform_joinaggregate(lo="min(value)", hi="max(value)", groupby=["axis"])
        .transform_calculate(norm="(datum.value - datum.lo) / max(1e-9, datum.hi - datum.lo)")
        .mark_line(opacity=0.35, strokeWidth=1)
        .encode(
            x=alt.X("axis:N", sort=order, title=None, axis=alt.Axis(labelExpr=_axis_label_expr(axes), labelAngle=0)),
            y=alt.Y("norm:Q", title="normalised per axis", axis=alt.Axis(format=".1f")),
            detail="line:N",
            color=alt.Color("which:N", scale=alt.Scale(domain=["ref", "cmp"], range=[GRAY, YELLOW]),
                            legend=alt.Legend(orient="bottom", title=None, labelExpr="datum.label == 'ref' ? 'reference' : 'compared'")),  # fmt: skip
        )
        .properties(width=64 * len(axes), height=220)
    )
    return (
        alt.vconcat(alt.hconcat(*columns, spacing=4), lines, data=_data(data, "pairs"), spacing=16)
        .transform_filter("datum.label == cls")
        .add_params(cls)
    )


def _axis_label_expr(axes: list[tuple[str, str]]) -> str:
    # Titles are user class names: pass them as a JSON lookup, never spliced into an expression unquoted.
    import json

    mapping = json.dumps({f: t for f, t in axes})
    return f"{mapping}[datum.value]"


def global_filters(n_axes: int) -> list:
    return [{"param": f"ax{k}"} for k in range(n_axes)] + ["datum.label == cls"]


def sample_examination(data=None, *, filters: list, compare: bool, columns: int = 12, limit: int = 48) -> alt.Chart:
    """Sample examination (R4): thumbnails of the selected samples with label, predictions and metrics.

    Rows as for `local_geometry`, plus pie (a pruning-identified exemplar) and robustness (eq. 7, of the
    reference model). `filters` are the predicates of the other views' selections; the first `limit` samples
    that pass, ordered by margin (most at risk first), are shown. PIEs are framed in red, non-robust samples
    (robustness 0) in orange.
    """
    chart = alt.Chart(_data(data, "pairs"))
    for f in filters:
        chart = chart.transform_filter(f)
    chart = (
        chart.transform_window(rank="row_number()", sort=[alt.SortField("ref_margin", order="ascending")])
        .transform_filter(f"datum.rank <= {limit}")
        .transform_calculate(
            col=f"(datum.rank - 1) % {columns}",
            row=f"floor((datum.rank - 1) / {columns})",
            frame="datum.pie ? 'PIE' : datum.robustness == 0 ? 'not robust' : 'other'",
            caption="datum.class_name + ' → ' + datum.ref_pred_name" + (" + ' / ' + datum.cmp_pred_name" if compare else ""),
        )
    )
    x = alt.X("col:O", axis=None, scale=alt.Scale(domain=list(range(columns))))
    y = alt.Y("row:O", axis=None)
    tooltip = [alt.Tooltip("image:N"), "sample_id:Q", "class_name:N", alt.Tooltip("ref_pred_name:N", title="ref pred"),
               alt.Tooltip("ref_angle_true:Q", format=".1f"), alt.Tooltip("ref_length:Q", format=".2f"),
               alt.Tooltip("ref_margin:Q", format=".2f"), "robustness:Q", "pie:N"]  # fmt: skip
    if compare:
        tooltip += [alt.Tooltip("cmp_pred_name:N", title="cmp pred"), "outcome:N"]
    frame = chart.mark_rect(filled=False, strokeWidth=3).encode(
        x=x, y=y,
        stroke=alt.Stroke("frame:N", scale=alt.Scale(domain=["PIE", "not robust", "other"], range=[RED, "#ff7f0e", "#bbbbbb"]),
                          legend=alt.Legend(orient="top", title=None)),
    )  # fmt: skip
    image = chart.mark_image(width=44, height=44).encode(x=x, y=y, url="image:N", tooltip=tooltip)
    caption = chart.mark_text(dy=30, fontSize=8).encode(x=x, y=y, text="caption:N")
    return alt.layer(frame, image, caption).properties(width=62 * columns, height=alt.Step(72), title="selected samples, lowest reference margin first")


MARGIN_CHANGE_RANGE = (-2.0, 3.0)  # x range of Fig. 10: 0 unchanged, 1 margin gone, > 1 flipped to wrong
PAIR_COLORS = ["#1f77b4", "#ff7f0e"]  # the paper's Fig. 10: blue the dense model, orange the MPT model


def headline(data=None, *, methods: list[str]) -> alt.FacetChart:
    """The finding at a glance: accuracy against the fraction of weights pruned, one line per method (dense at 0
    starts every line), clean and the corruption mean side by side, one row per architecture, bootstrap intervals
    as bands. Clicking a point opens that model in the views (`href`); clicking a legend entry isolates a method.

    Rows: model_id, arch, method (label, e.g. "magnitude+retrain"), amount, data ("clean" / "corruption mean"),
    accuracy, lo, hi, seed, href.
    """
    pick = alt.selection_point(name="hl_method", fields=["method"], bind="legend")
    x = alt.X("amount:Q", title="fraction of weights pruned", scale=alt.Scale(domain=[0, 1], nice=False),
              axis=alt.Axis(format=".0%", values=[0, 0.25, 0.5, 0.75, 1]))  # fmt: skip
    y = alt.Y("accuracy:Q", title="accuracy", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%"))
    color = alt.Color("method:N", title="method", scale=alt.Scale(domain=methods),
                      legend=alt.Legend(orient="bottom", columns=min(len(methods), 6), symbolOpacity=1))  # fmt: skip
    fade = alt.condition(pick, alt.value(1), alt.value(0.12))
    base = alt.Chart().encode(x=x, color=color, detail="seed:N")
    band = base.mark_area(opacity=0.15).encode(y="lo:Q", y2="hi:Q", opacity=alt.condition(pick, alt.value(0.18), alt.value(0.03)))
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
        .properties(width=280, height=200)
        .facet(row=alt.Row("arch:N", title=None, header=alt.Header(labelFontSize=13, labelFontWeight="bold")),
               column=alt.Column("data:N", title=None, sort=["clean", "corruption mean"],
                                 header=alt.Header(labelFontSize=13)))  # fmt: skip
    )


def margin_change_pair(data=None, *, models: list[tuple[str, str]], a: str, b: str) -> alt.VConcatChart:
    """Fig. 10 as the paper draws it: the relative margin change (m_clean − m_corrupted) / m_clean of two models,
    0.5 % tails trimmed per model, over every corruption pooled, then per corruption for the same two models.

    Rows as for `margin_change_density`. `models` is [(model_id, label)] for the two selects (params mc_a and mc_b,
    defaults `a` and `b`); blue is model A, orange model B.
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
        .properties(width=520, height=200, title="all corruptions and severities pooled")
    )  # fmt: skip
    per = (
        chart().transform_filter("datum.variant != 'all'")
        .properties(width=140, height=80)
        .facet(facet=alt.Facet("variant:N", title=None, header=alt.Header(labelFontSize=11)), columns=4)
        .resolve_scale(y="independent")
    )
    # Variable params live at the top level; add_params would try to push them into the facet and fail.
    out = alt.vconcat(pooled, per, spacing=20)
    out.params = [pa_.param, pb_.param]
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
    angle scale (the paper's point is that both approach 90°); the log dimension axis labels powers of 4 only, so
    neighbouring labels never run together.
    """
    base = alt.Chart().transform_calculate(lo="datum.angle_mean - datum.angle_std", hi="datum.angle_mean + datum.angle_std")
    x = alt.X("dimension:Q", scale=alt.Scale(type="log", base=2), title="dimension",
              axis=alt.Axis(values=[2 ** k for k in range(0, 17, 2)], format="~s", labelOverlap="greedy"))  # fmt: skip
    band = base.mark_errorbar(ticks=True).encode(
        x=x, y=alt.Y("lo:Q", title="angle (°)", scale=alt.Scale(domain=[0, 120]), axis=alt.Axis(values=[0, 30, 60, 90, 120])), y2="hi:Q"
    )  # fmt: skip
    rule = alt.Chart().mark_rule(strokeDash=[4, 3], color=GRAY).encode(y=alt.datum(90))
    line = base.mark_line(point=True).encode(
        x=x, y="angle_mean:Q", tooltip=["study:N", "dimension:Q", alt.Tooltip("angle_mean:Q", format=".1f"),
                                        alt.Tooltip("angle_std:Q", format=".1f"), alt.Tooltip("accuracy:Q", format=".1%")]
    )  # fmt: skip
    return (
        alt.layer(rule, band, line, data=_data(data, "curse"))
        .properties(width=300, height=180)
        .facet(facet=alt.Facet("study:N", title=None, header=alt.Header(labelFontSize=12)), columns=2)
        .resolve_scale(x="independent", y="shared")
    )


def correlations(data=None) -> alt.Chart:
    """Table 1 as a chart: Pearson r of per-sample robustness with angle, length and margin, per model (§5.3).

    Rows: model_id, arch, method, amount, rc_angle, rc_length, rc_margin.
    """
    return (
        alt.Chart(_data(data, "correlations"))
        .transform_fold(["rc_angle", "rc_length", "rc_margin"], as_=["metric", "r"])
        .mark_rect()
        .encode(
            x=alt.X("metric:N", title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("model_id:N", title=None),
            color=alt.Color("r:Q", scale=alt.Scale(scheme="redblue", domain=[-1, 1]), title="Pearson r"),
            tooltip=["model_id:N", "metric:N", alt.Tooltip("r:Q", format=".3f")],
        )
        .properties(width=240)
    )
