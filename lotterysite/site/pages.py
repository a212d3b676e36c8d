"""The generated pages: per architecture the four linked views, plus the findings page.

A page is Markdown holding a container and its configuration as inert JSON text in a hidden `<div>` (not a
`<script type="application/json">`: Material's instant navigation re-runs every inline script, stripped of its type);
`assets/lotterysite.js` turns it into charts. Every user-supplied string (class, model, recipe names) reaches
HTML only through `html.escape` or as JSON with `<`, `>` and `&` escaped, and the loader sets it as text.
"""

from __future__ import annotations

import json
import posixpath
import warnings
from dataclasses import dataclass
from html import escape

from . import charts
from .data import ArchData, Store, model_label, slug

VIEWS = (
    ("evaluation", "Evaluation table"),
    ("local", "Local geometry"),
    ("global", "Global geometry"),
    ("samples", "Sample examination"),
)


@dataclass
class Page:
    src_uri: str  # e.g. "views/lenet5/local.md"
    title: str
    markdown: str


def to_json(obj) -> str:
    """JSON safe to place inside HTML: no "</script>", no markup characters."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def spec_dict(chart) -> dict:
    with warnings.catch_warnings():
        # A brush shared by every class panel is one selection on purpose: Altair says so when it merges them.
        warnings.simplefilter("ignore", UserWarning)
        # Schema validation of the large concatenated specs costs seconds per build; tests/test_site.py
        # validates every chart function instead.
        return chart.to_dict(validate=False)


def rel(page_uri: str, target: str) -> str:
    """URL of site path `target` from the page built from `page_uri` (directory URLs: a.md -> a/index.html)."""
    page_dir = posixpath.dirname(page_uri) if page_uri.endswith("index.md") else page_uri[: -len(".md")]
    return posixpath.relpath(target, page_dir or ".")


def _container(config: dict, intro: str) -> str:
    return (
        f"{intro}\n\n<div class=\"ls-view\" data-ls-view=\"{escape(config['kind'])}\">"
        f"<div class=\"ls-config\" hidden>{to_json(config)}</div></div>\n"
    )


def _model_options(store: Store, arch: str) -> list[dict]:
    return [
        {"id": m["model_id"], "key": m["model_key"],
         "label": f"{model_label(m)} — clean {m['clean_accuracy']:.1%}"}
        for m in store.models_of(arch)
    ]  # fmt: skip


def arch_pages(store: Store, arch: str, data: ArchData, axes: list[int], shown_classes: list[int],
               shipped: dict | None = None) -> tuple[list[Page], dict]:  # fmt: skip
    """The four view pages of one architecture, and their specs as {site path: spec dict}."""
    a = slug(arch)
    base = f"views/{a}"
    data_dir = f"data/{a}"
    specs: dict[str, dict] = {}
    classes = [(j, store.classes[j]) for j in shown_classes]
    # One angle axis per class (the true class's own axis among them, marked on the page); a "true class" axis
    # only when the classes had to be ranked down to max_axes and the chosen class may have none.
    axis_fields = [(f"angle_{j}", store.classes[j]) for j in axes]
    if len(axes) < len(store.classes):
        axis_fields.insert(0, ("angle_true", "true class"))
    axis_fields += [("length", "length"), ("margin", "margin")]
    for compare in (False, True):
        mode = "compare" if compare else "single"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the shared brush, see charts.local_geometry
            local = charts.local_geometry(classes=classes, compare=compare)
        grid = charts.sample_examination(filters=charts.local_filters(compare, shown_classes), compare=compare)
        specs[f"{data_dir}/specs/local-{mode}.json"] = spec_dict(alt_vconcat(local, grid))
        glob = charts.global_geometry(axes=axis_fields, compare=compare)
        grid = charts.sample_examination(filters=charts.global_filters(len(axis_fields)), compare=compare)
        specs[f"{data_dir}/specs/global-{mode}.json"] = spec_dict(alt_vconcat(glob, grid))
        specs[f"{data_dir}/specs/samples-{mode}.json"] = spec_dict(
            charts.sample_examination(filters=["datum.selected"], compare=compare, limit=120)
        )
    variants = _variants(store)
    specs[f"{data_dir}/specs/evaluation.json"] = spec_dict(charts.evaluation_table(variants=variants))

    pages = []
    common = {
        "arch": arch,
        "classes": store.classes,
        "models": _model_options(store, arch),
        "slices": data.slices,
        "shipped": shipped or {},
        "outcomes": charts.OUTCOMES,
        "correctness": charts.CORRECTNESS,
        # How the loader fits the charts to the page width: concats/facets by name -> [item px, most columns],
        # units by name prefix -> [least px, most px, count, px besides, param given the width], params ->
        # [item px, least, most] (the param gets the number of items that fit).
        "reflow": {"ls_panels": [272, len(shown_classes)], "ls_eval": [290, len(variants)], "ls_hists": [250, 3]},
        "shrink": {"ls_axis_": [20, 84, len(axis_fields), 90, "aw"]},
        "fit_params": {"gridcols": [charts.GRID_STEP, 3, 12]},
    }
    intros = {
        "evaluation": (
            "Accuracy of every model on clean data, on each corruption (mean over its severities) and on their "
            "mean (**R1**, paper Fig. 4 ①⑤). Each column is a data set; within a column the pruning methods are "
            "ranked top-down by their best accuracy, each cell's bars are its pruning amounts. Click a bar to select "
            "that model everywhere (double-click clears); it becomes the reference model of the geometry views. "
            "When samples are selected in another view, or a class is chosen below, the green/red bars right of the "
            "dashed line show the subset's accuracy (over every evaluated severity) minus the model's accuracy, "
            "clamped at ±20 points; the values are in the tooltip and the data table. A model can also be chosen "
            "with the \"reference model\" menu."
        ),
        "local": (
            "Per class, the angle to the true class direction against the length of the feature vector, with the "
            "density of each on the margins and the margin's density below (**R2**, Fig. 4 ③): gray correct, red "
            "incorrect. Choose a second model, or the same model on a corruption, to compare (**R3**, Fig. 4 ④, "
            "Fig. 7): reference gray, compared yellow, a trajectory per sample coloured by outcome. Drag on the "
            "metric-difference histograms to keep the samples whose Δangle, Δlength or Δmargin lies in a range, pick "
            "a trajectory outcome above them, drag on a class's scatter to select samples of that class. The "
            "selection travels to the other views and the link."
        ),
        "global": (
            "Parallel coordinates over n + 2 axes for one class: the angle to every class direction (one shared "
            "scale, so the axes compare: a low line is close to that class), the length and the margin on their own "
            "axes (**R2/R3**, Figs. 5, 8, 9). The class's own axis is marked \"(true)\". A line per sample, reference "
            "gray and compared yellow; each axis carries both densities. Drag along an axis to brush it: lines "
            "outside every brush are dimmed; a new class clears the brushes."
        ),
        "samples": (
            "The samples currently selected in the local or global geometry view (carried in the link), with "
            "their label, both models' predictions and their metrics (**R4**). A frame's colour is the prediction "
            "(gray correct, red incorrect; when comparing, the outcome colours of the local view), a dashed frame "
            "marks a sample no corruption left correctly classified, a blue diamond a pruning-identified exemplar "
            "(the pruned models' modal prediction differs from the dense model's)."
        ),
    }
    for kind, title in VIEWS:
        uri = f"{base}/{kind}.md"
        cfg = {**common, "kind": kind, "samples": rel(uri, "data/samples.arrow"),
               "slice_base": rel(uri, f"{data_dir}/g"),
               "links": {k: rel(uri, f"{base}/{k}/") for k, _ in VIEWS}}  # fmt: skip
        if kind == "evaluation":
            cfg["spec"] = rel(uri, f"{data_dir}/specs/evaluation.json")
            cfg["evaluation"] = rel(uri, f"{data_dir}/evaluation.arrow")
            cfg["correct"] = rel(uri, f"{data_dir}/correct.arrow")
            cfg["correct_columns"] = data.correct_columns
        else:
            cfg["specs"] = {m: rel(uri, f"{data_dir}/specs/{kind}-{m}.json") for m in ("single", "compare")}
            cfg["axes"] = [f for f, _ in axis_fields]
            cfg["axis_classes"] = axes
            cfg["panel_brushes"] = {charts.panel_brush(j): j for j in shown_classes} if kind == "local" else {}
            cfg["extents"] = {"local": charts.panel_extents(shown_classes), "global": charts.global_extents(axis_fields)}.get(kind, {})
        heading = f"---\nhide:\n  - toc\n---\n\n# {escape(title)} — {escape(arch)}\n\n"
        pages.append(Page(uri, f"{title}", heading + _container(cfg, intros[kind])))
    return pages, specs


def alt_vconcat(*charts_):
    import altair as alt

    return alt.vconcat(*charts_, spacing=24)


def _variants(store: Store) -> list[str]:
    from .data import variant_labels

    return variant_labels(store)


def findings_page(store: Store, gallery: bool) -> tuple[Page, dict]:
    """Table 1, the relative margin change densities (Fig. 10), the curse of dimensionality (Fig. 3), the gallery."""
    uri = "findings.md"
    specs = {
        "data/specs/margin_change.json": spec_dict(charts.margin_change_density()),
        "data/specs/correlations.json": spec_dict(charts.correlations()),
    }
    corr = store.tables["correlations.arrow"].to_pylist()
    rows = []
    by_arch: dict[str, list[dict]] = {}
    for r in corr:
        by_arch.setdefault(r["arch"], []).append(r)
    for arch, rs in by_arch.items():
        dense = [r for r in rs if r["method"] == "dense"] or rs
        mean = {k: sum(r[k] for r in dense) / len(dense) for k in ("rc_angle", "rc_length", "rc_margin")}
        rows.append(
            f"<tr><td>{escape(arch)}</td>"
            + "".join(f"<td>{mean[k]:.4f}</td>" for k in ("rc_angle", "rc_length", "rc_margin"))
            + f"<td>{len(dense)}</td></tr>"
        )
    recipe = escape(str(store.manifest.get("recipe", {}).get("name", "")))
    table = (
        "<table class=\"ls-table1\"><thead><tr><th>architecture</th><th>rc-angle</th><th>rc-length</th>"
        "<th>rc-margin</th><th>dense models</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )

    def chart(name, data_name, file):
        cfg = {"kind": "static", "spec": rel(uri, f"data/specs/{name}.json"),
               "datasets": {data_name: rel(uri, f"data/{file}")}}  # fmt: skip
        return f"<div class=\"ls-view\" data-ls-view=\"static\"><div class=\"ls-config\" hidden>{to_json(cfg)}</div></div>"

    if "curse.arrow" in store.tables:
        specs["data/specs/curse.json"] = spec_dict(charts.curse_of_dimensionality())
        curse_md = chart("curse", "curse", "curse.arrow")
    else:  # the recipe switched the study off ([curse] enabled = false)
        curse_md = "<p><em>This store has no curse.arrow: its recipe switched the study off.</em></p>"
    gallery_md = (
        f"<img class=\"ls-gallery\" src=\"{rel(uri, 'data/gallery.png')}\" alt=\"every corruption at every severity\">"
        if gallery
        else "<p><em>This store has no gallery.png.</em></p>"
    )
    md = f"""# Findings

Store: recipe <code>{recipe}</code>, {len(store.manifest.get('models', []))} models.

## Table 1: robustness and geometry

Pearson correlation, over the evaluation set, of each sample's robustness (eq. 7: its correct predictions over
every corrupted version) with its clean angle to the true class, length and margin (paper §5.3). The table
averages the dense models of each architecture; the chart shows every model.

{table}

{chart("correlations", "correlations", "correlations.arrow")}

## Relative margin change (Fig. 10)

Density of (m<sub>clean</sub> − m<sub>corrupted</sub>) / m<sub>clean</sub> per model, 0.5 % tails trimmed per model,
over every corruption and severity ("all") and per corruption. Click a legend entry to isolate a model.

{chart("margin_change", "margin_change", "margin_change.arrow")}

## The curse of dimensionality (Fig. 3)

Mean ± standard deviation of the angle between random vectors, and between samples and their class direction
in trained models, against the dimension (paper §5.4).

{curse_md}

## Corruption gallery

{gallery_md}
"""
    return Page(uri, "Findings", md), specs
