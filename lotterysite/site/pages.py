"""The generated pages: per architecture the four linked views, plus the findings page.

A page is Markdown holding a container and its configuration as inert JSON text in a hidden `<div>` (not a
`<script type="application/json">`: Material's instant navigation re-runs every inline script, stripped of its type);
`assets/lotterysite.js` turns it into charts. Every user-supplied string (class, model, recipe names) reaches
HTML only through `html.escape` or as JSON with `<`, `>` and `&` escaped, and the loader sets it as text.
"""

from __future__ import annotations

import functools
import json
import math
import posixpath
import warnings
from dataclasses import dataclass
from html import escape

from . import charts, findings
from . import cost as site_cost
from .data import (
    LOCAL_BINS,
    PCP_BINS,
    THUMBS,
    WS_ANGLES,
    WS_LOCAL,
    ArchData,
    SeverityCoverage,
    Store,
    amount_label,
    model_label,
)
from .model import ViewModel

VIEWS = (
    ("evaluation", "Evaluation table"),
    ("local", "Local geometry"),
    ("global", "Global geometry"),
    ("samples", "Sample examination"),
)
WORKSPACE = ("workspace", "Workspace")  # every view on one screen, live-linked (views/<arch>/workspace/)


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
        f'{intro}\n\n<div class="ls-view" data-ls-view="{escape(config["kind"])}">'
        f'<div class="ls-config" hidden>{to_json(config)}</div></div>\n'
    )


def _model_options(store: Store, arch: str) -> list[dict]:
    return [
        {"id": m["model_id"], "key": m["model_key"],
         "label": f"{model_label(m)} — clean {m['clean_accuracy']:.1%}"}
        for m in store.models_of(arch)
    ]  # fmt: skip


def _severities(levels) -> str:
    """(1, 3, 5) -> "severities 1, 3 and 5"; (2,) -> "severity 2"."""
    words = [str(s) for s in levels]
    if len(words) == 1:
        return f"severity {words[0]}"
    return f"severities {', '.join(words[:-1])} and {words[-1]}"


def severity_note(cov: SeverityCoverage | None) -> str:
    """What the geometry views can show of severities 1-5 (`cov`: the view model's `coverage`), and for each one they
    cannot, the recipe setting that adds it: never a severity left out without saying so. Empty for a store without
    corruptions (None)."""
    if cov is None:
        return ""
    if cov.complete:
        return "Per-sample rows: every corruption at every severity, 1 to 5."
    out = [f"Per-sample rows: every corruption at {_severities(cov.shipped)}." if cov.shipped
           else "Per-sample rows: clean data only, no corruption."]  # fmt: skip
    rerun = "and rerun `lotterysite precompute RECIPE`."
    if cov.not_shipped:
        one = len(cov.not_shipped) == 1
        it, was = ("it", "was") if one else ("them", "were")
        out.append(f"{_severities(cov.not_shipped).capitalize()} {was} evaluated (the evaluation table counts {it}) "
                   f"but not shipped: to draw {it} here, list {it} in the recipe's `ship.severities` (or remove that "
                   f"setting: its default ships every evaluated severity) {rerun}")  # fmt: skip
    if cov.not_evaluated:
        one = len(cov.not_evaluated) == 1
        it, was = ("it", "was") if one else ("them", "were")
        out.append(f"{_severities(cov.not_evaluated).capitalize()} {was} not evaluated: to add {it}, list {it} "
                   f"in the recipe's `corruptions.severities` (and in `ship.severities`, if the recipe sets it) "
                   f"{rerun}")  # fmt: skip
    return " ".join(out)


def arch_pages(view: ViewModel, arch: str) -> tuple[list[Page], dict]:
    """The four view pages of one architecture and its workspace, and their specs as {site path: spec dict}: the
    model's axes, panels and slices of `arch` (`view.archs`) and its served samples (`view.serving`)."""
    store = view.store
    am = view.archs[arch]
    data, axes, shown_classes, axis_fields = am.slices, am.axes, am.panels, am.axis_fields
    a = store.slug(arch)
    base = f"views/{a}"
    data_dir = f"data/{a}"
    # Panels of fixed classes (few classes), or slots whose class the reader picks (many: charts.class_slots).
    picking = any(isinstance(j, str) for j in shown_classes)
    served = view.serving.classes
    variants = _variants(store)
    specs = _arch_specs(store, data_dir, shown_classes, axis_fields, variants)
    common = _arch_common(view, arch, data, shown_classes, axis_fields, variants, view.serving.summary)
    intros = _view_intros(view, shown_classes, picking)
    pages = []
    for kind, title in VIEWS:
        uri = f"{base}/{kind}.md"
        cfg = _view_config(store, arch, data, kind, uri, common, shown_classes=shown_classes, axes=axes,
                           axis_fields=axis_fields, picking=picking, served=served,
                           confused=am.confused)  # fmt: skip
        heading = f"---\nhide:\n  - toc\n---\n\n# {escape(title)} — {escape(arch)}\n\n"
        intro = intros[kind]
        if kind != "evaluation" and severity_note(view.coverage):  # the views drawn from the per-sample slices
            intro += "\n\n" + severity_note(view.coverage)
        more = " All four views side by side, live-linked, any number of models: [the workspace]({}).".format(
            rel(uri, f"{base}/workspace/") + "/"  # a folder: its address ends in "/"
        )
        pages.append(Page(uri, f"{title}", heading + _container(cfg, intro + more)))
    ws_page, ws_specs = workspace_page(view, arch, common, served if picking else None)
    specs.update(ws_specs)
    return [ws_page, *pages], specs


def _arch_specs(store: Store, data_dir: str, shown_classes: list, axis_fields: list, variants: list[str]) -> dict:
    """The view pages' chart specs, single and compare, by site path."""
    classes = [(j, "" if isinstance(j, str) else store.classes[j]) for j in shown_classes]
    specs: dict[str, dict] = {}
    for compare in (False, True):
        mode = "compare" if compare else "single"
        specs[f"{data_dir}/specs/local-{mode}.json"] = view_spec("local", compare, tuple(classes))
        specs[f"{data_dir}/specs/global-{mode}.json"] = view_spec("global", compare, tuple(axis_fields))
        specs[f"{data_dir}/specs/samples-{mode}.json"] = view_spec("samples", compare, ())
    specs[f"{data_dir}/specs/evaluation.json"] = view_spec("evaluation", False, tuple(variants))
    return specs


def _arch_common(view: ViewModel, arch: str, data: ArchData, shown_classes: list, axis_fields: list,
                 variants: list[str], shipped: dict | None) -> dict:  # fmt: skip
    """The page configuration every view page (and the workspace) of one architecture shares."""
    store = view.store
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
    coverage = view.coverage
    if coverage is not None:  # which severities the slices hold, and the note naming the setting for the rest
        common["severity_coverage"] = {
            "shipped": list(coverage.shipped),
            "not_shipped": list(coverage.not_shipped),
            "not_evaluated": list(coverage.not_evaluated),
            "note": severity_note(coverage),
        }
    return common


def _view_intros(view: ViewModel, shown_classes: list, picking: bool) -> dict[str, str]:
    """Each view page's introduction: what it shows, in the paper's terms, and how to use it."""
    store = view.store
    k = store.confused_k
    return {
        "evaluation": (
            f"Accuracy, over all {view.n_eval} evaluation images, of every model on clean data, on each "
            "corruption (mean over its severities) and on their "
            "mean (**R1**, paper Fig. 4 ①⑤). Each column is a data set; within a column the pruning methods are "
            "ranked top-down by their best accuracy, each cell's bars are its pruning amounts. Click a bar to select "
            "that model everywhere (double-click clears); it becomes the reference model of the geometry views. "
            "When samples are selected in another view, or a class is chosen below, the green/red bars right of the "
            "dashed line show the subset's accuracy (over every evaluated severity) minus the model's accuracy, on "
            "their own scale in points, with the subset's 95 % interval as a whisker (Wilson, over the subset's "
            "samples); a bar or whisker beyond ±25 points is cut there and ends in an arrow (▸ ◂). The values are in "
            "the tooltip and the data table. A model can also be chosen "
            'with the "reference model" menu.'
        ),
        "local": (
            "Per class, the angle to the true class direction against the length of the feature vector, with the "
            "density of each on the margins and the margin's density below (**R2**, Fig. 4 ③): gray correct, red "
            "incorrect. Choose a second model, or the same model on a corruption, to compare (**R3**, Fig. 4 ④, "
            "Fig. 7): reference gray, compared yellow, a trajectory per sample coloured by outcome. Drag on the "
            "metric-difference histograms to keep the samples whose Δangle, Δlength or Δmargin lies in a range, pick "
            "a trajectory outcome above them, drag on a class's scatter to select samples of that class. The "
            "selection travels to the other views and the link. The panels share their axis ranges, so that the "
            "classes compare on the same axes; “axis ranges: per panel” gives each class its own."
            + (
                f" With {len(store.classes)} classes the view shows {len(shown_classes)} at a time: by default the "
                "classes with the lowest accuracy of the reference model, or, when comparing, those whose accuracy "
                "changes most between the two; type a class name to add it, × removes one."
                if picking
                else ""
            )
        ),
        "global": (
            "Parallel coordinates over n + 2 axes for one class: the angle to every class direction (one shared "
            "scale, so the axes compare: a low line is close to that class), the length and the margin on their own "
            'axes (**R2/R3**, Figs. 5, 8, 9). The class\'s own axis is marked "(true)". A line per sample, reference '
            "gray and compared yellow; each axis carries both densities. Drag along an axis to brush it: lines "
            "outside every brush are dimmed; a new class clears the brushes."
            if k is None
            else f"Parallel coordinates for one class (**R2/R3**, Fig. 5): with {len(store.classes)} classes, the "
            'paper\'s pre-selection: the angle to the true class (marked "(true)"), then to the '
            f"{k} classes its samples are most often confused with (predicted for them most often over the full "
            "evaluation set, every model of this architecture and every corruption; ties by the smaller mean angle), "
            "on one shared scale, then the length and the margin on their own axes. A line per sample, reference "
            "gray and compared yellow; each axis carries both densities. Type a class name to pick the class. Drag "
            "along an axis to brush it: lines outside every brush are dimmed; a new class clears the brushes."
        ),
        "samples": (
            "The samples currently selected in the local or global geometry view (carried in the link), with "
            "their label, both models' predictions and their metrics (**R4**). A frame's colour is the prediction "
            "(gray correct, red incorrect; when comparing, the outcome colours of the local view), a dashed frame "
            "marks a sample no corruption left correctly classified, a blue diamond a pruning-identified exemplar "
            "(the pruned models' modal prediction differs from the dense model's). Where the store holds exemplars "
            "outside the random sample, they are shown here too (never in the other views' densities or class "
            "statistics), and the table below counts the sample only."
        ),
    }


def _view_config(store: Store, arch: str, data: ArchData, kind: str, uri: str, common: dict, *, shown_classes: list,
                 axes: list[int], axis_fields: list, picking: bool, served: list[int],
                 confused: dict) -> dict:  # fmt: skip
    """One view page's configuration (the page's JSON): what it fetches and how it draws."""
    base, data_dir = f"views/{store.slug(arch)}", f"data/{store.slug(arch)}"
    k = store.confused_k
    cfg = {**common, "kind": kind, "links": {v: rel(uri, f"{base}/{v}/") for v, _ in VIEWS}}
    cfg["links"]["workspace"] = rel(uri, f"{base}/workspace/")
    if kind == "evaluation":
        cfg["spec"] = rel(uri, f"{data_dir}/specs/evaluation.json")
        cfg["evaluation"] = rel(uri, f"{data_dir}/evaluation.arrow")
        cfg["correct"] = rel(uri, f"{data_dir}/correct.arrow")
        cfg["correct_columns"] = data.correct_columns
        cfg["correct_bits"] = data.correct_bits
        cfg["dmax_param"] = charts.EVAL_DMAX
        cfg["sub_param"] = charts.EVAL_SUB
        if picking:
            cfg["picker"] = served  # many classes: a class subset is found by typing
    else:
        cfg["samples"] = rel(uri, "data/samples.arrow")  # the labels and flags: only the geometry views need it
        cfg["thumbs"] = rel(uri, f"data/{THUMBS}") + "/"  # <sample_id>.<thumb>: fetched per image shown
        cfg["specs"] = {m: rel(uri, f"{data_dir}/specs/{kind}-{m}.json") for m in ("single", "compare")}
        # The workspace's slice files (data.workspace_files), each per-sample value written once: the local slice of
        # every view; the class angles for the global view's class (fetched when it is shown) and for a CSV download.
        cfg["local_base"] = rel(uri, f"{data_dir}/{WS_LOCAL}")
        cfg["angles"] = {"base": rel(uri, f"{data_dir}/{WS_ANGLES}"), "fields": data.angle_fields,
                         "by_class": data.by_class}  # fmt: skip
        cfg["axes"] = [f for f, _ in axis_fields]
        cfg["axis_classes"] = axes
        if picking:  # many classes: a class picker, the panels' classes picked on the page (local view)
            cfg["picker"] = served
            cfg["slots"] = shown_classes if kind == "local" else []
        if k is not None and kind == "global":
            cfg["axis_titles"] = [t for _, t in axis_fields]  # None: named by the page per class
            cfg["confused"] = confused
        cfg["panel_brushes"] = {charts.panel_brush(j): j for j in shown_classes} if kind == "local" else {}
        cfg["extents"] = {
            "local": charts.panel_extents(shown_classes),
            "global": charts.global_extents(axis_fields),
        }.get(kind, {})
    return cfg


WS_INTRO = (
    "The paper's system on one screen (Fig. 4): the evaluation table (**R1**), the combinations, the local geometry "
    "(**R2/R3**), the global parallel coordinates and the sample grid (**R4**), all linked. A combination is a model "
    "on one data set (clean, or a corruption at one severity); the first is the reference the others are compared "
    "with (reference gray, compared yellow, a trajectory per sample coloured by outcome). Add one with the picker "
    "or by clicking a bar of the table; ↑ ↓ reorder, × removes. Drag a box on any local or parallel-coordinates "
    "panel: it selects the samples whose values of that panel's combination lie inside it, and while you drag every "
    "other view follows: the other panels, the sample grid, and the table's subset bars (the selected samples' "
    "accuracy minus the model's, with its 95 % interval). Double-click a panel to clear its box. Pick a sample in "
    "the grid (click, or the sample menu) to mark it in every panel. Everything is in the link."
)


def workspace_page(view: ViewModel, arch: str, common: dict, picker: list[int] | None = None) -> tuple[Page, dict]:
    """The workspace of one architecture (views/<arch>/workspace/) and its chart specs; `picker`: with many classes,
    the classes that have served samples (the class menu's choices). Where a class has more served samples than a
    panel draws as marks (the model's `density`, {"extents": per class, data.densities}), the panels draw the
    density of every sample and a uniform random subsample (samples.arrow's `dot`) as marks."""
    store = view.store
    arch_model = view.archs[arch]
    data, axes, axis_fields, density = arch_model.slices, arch_model.axes, arch_model.axis_fields, arch_model.density
    a = store.slug(arch)
    uri, data_dir = f"views/{a}/workspace.md", f"data/{a}"
    spec_paths = {
        "evaluation": f"{data_dir}/specs/evaluation.json",
        "local_shared": f"{data_dir}/specs/ws-local-shared.json",
        "local_panel": f"{data_dir}/specs/ws-local-panel.json",
        "pcp": f"{data_dir}/specs/ws-pcp.json",
        "grid_single": f"{data_dir}/specs/ws-grid-single.json",
        "grid_compare": f"{data_dir}/specs/ws-grid-compare.json",
    }
    specs = {
        spec_paths["local_shared"]: spec_dict(charts.workspace_local(shared=True)),
        spec_paths["local_panel"]: spec_dict(charts.workspace_local(shared=False)),
        spec_paths["pcp"]: spec_dict(charts.workspace_pcp(n_axes=len(axis_fields))),
        # The page ranks the grid's samples (ws-grid.js, gridView) and hands the spec the shown ones only.
        spec_paths["grid_single"]: spec_dict(charts.sample_examination(filters=[], compare=False, ranked=True)),
        spec_paths["grid_compare"]: spec_dict(charts.sample_examination(filters=[], compare=True, ranked=True)),
    }
    k = store.confused_k
    cfg = {
        **common,
        "kind": "workspace",
        "specs": {name: rel(uri, path) for name, path in spec_paths.items()},
        # The workspace's own slices (data.workspace_files): the local columns per combination, and the PCP's angles
        # per class, fetched when the class is shown.
        "local_base": rel(uri, f"{data_dir}/{WS_LOCAL}"),
        "angles": {"base": rel(uri, f"{data_dir}/{WS_ANGLES}"), "fields": data.angle_fields, "by_class": data.by_class},
        "samples": rel(uri, "data/samples.arrow"),
        "thumbs": rel(uri, f"data/{THUMBS}") + "/",
        "evaluation": rel(uri, f"{data_dir}/evaluation.arrow"),
        "correct": rel(uri, f"{data_dir}/correct.arrow"),
        "correct_columns": data.correct_columns,
        "correct_bits": data.correct_bits,
        "dmax_param": charts.EVAL_DMAX,
        "sub_param": charts.EVAL_SUB,
        "dots": charts.WS_DOTS,
        "grid_limit": charts.GRID_LIMIT,
        "axes": [f for f, _ in axis_fields],
        "axis_titles": [t for _, t in axis_fields],
        "axis_classes": axes,
        "confused": arch_model.confused if k is not None else {},
        "default": workspace_default(store, arch),
        "links": {kind: rel(uri, f"views/{a}/{kind}/") for kind, _ in VIEWS},
        "reflow": {
            "ls_eval": common["reflow"]["ls_eval"],
            "ws_local": [190, 8],
            "ws_pcp": [len(axis_fields) * 34 + 40, 4],
        },
        "fit_params": {"gridcols": [charts.GRID_STEP, 3, 12]},
    }
    if picker is not None:
        cfg["picker"] = picker
    if density is not None:
        cfg["density"] = {"base": rel(uri, f"{data_dir}/d"), "bins": list(LOCAL_BINS), "pcp_bins": PCP_BINS,
                          "extents": density["extents"], "pool": charts.WS_POOL}  # fmt: skip
    heading = f"---\nhide:\n  - toc\n---\n\n# {escape(WORKSPACE[1])} — {escape(arch)}\n\n"
    return Page(uri, WORKSPACE[1], heading + _container(cfg, WS_INTRO)), specs


def workspace_default(store: Store, arch: str) -> list[list[str]]:
    """The combinations a bare workspace link opens with: the dense model (or the first) on clean data, then the
    first pruned model on clean data (a comparison, as the paper's views open)."""
    models = store.models_of(arch)
    return [[m["model_id"], "v0.arrow"] for m in models[:2]]


def link_value(value) -> str:
    """An object as the workspace's link holds it (assets/selection.js `encode`): base64url of its JSON."""
    import base64

    return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()


def workspace_hash(combos: list[list[str]], cls: int, layout: str = "class") -> str:
    """The address part after `#` of a workspace state: combinations [[model_id, slice file], ...] (slice files as
    in the page config's `slices`, "v0.arrow" is clean), the class, the local panels' layout."""
    from urllib.parse import urlencode

    return urlencode({"c": link_value(combos), "class": cls, "layout": layout})


def figure_states(view: ViewModel, arch: str) -> dict[str, dict]:
    """The workspace states of the demo's Figs. 7 and 8 for `arch` (the view model's, `model.figure_states` says how
    they are chosen): {fig: {"hash", "text"}}."""
    figures = view.archs[arch].figures if arch in view.archs else None
    out = {}
    if figures is not None and figures.fig7 is not None:
        method, chosen, cls = figures.fig7
        combos = [[m["model_id"], "v0.arrow"] for m in [figures.dense, *chosen]]
        amounts = ", ".join(amount_label(m["amount"]) for m in chosen)
        out["fig7"] = {"hash": workspace_hash(combos, cls),
                       "text": f"{method} at {amounts} against dense, class {view.store.classes[cls]}"}  # fmt: skip
    if figures is not None and figures.fig8 is not None:
        near, cls = figures.fig8
        out["fig8"] = {"hash": workspace_hash([[m["model_id"], "v0.arrow"] for m in near], cls),
                       "text": f"{len(near)} models, class {view.store.classes[cls]}"}  # fmt: skip
    return out


def _figure_links(view: ViewModel, uri: str) -> str:
    """Links to the workspace states of Figs. 7 and 8, per architecture (`figure_states`)."""
    store = view.store
    items = []
    for arch in store.archs:
        target = rel(uri, f"views/{store.slug(arch)}/workspace/") + "/"  # a folder: its address ends in "/"
        states = figure_states(view, arch)
        for fig, words in (("fig7", "Fig. 7: one method at every amount against dense"),
                           ("fig8", "Fig. 8: the parallel coordinates of one class across models")):  # fmt: skip
            if fig in states:
                st = states[fig]
                items.append(f'<li><a class="ls-{fig}" href="{escape(target)}#{escape(st["hash"])}">{words}</a> '
                             f"({escape(arch)}: {escape(st['text'])})</li>")  # fmt: skip
    if not items:
        return "<p><em>No models in this store.</em></p>"
    return (
        "<p>The paper compares several models side by side: magnitude pruning and MPT at rising amounts against "
        "dense (Fig. 7) and one class's parallel coordinates across six models (Fig. 8). These links open the "
        "workspace on this store's counterparts, chosen from the store: the method with most amounts and the "
        "class it changes most; the models closest to dense in clean accuracy and dense's least accurate class.</p>"
        '<ul class="ls-figures">' + "".join(items) + "</ul>"
    )


def view_spec(kind: str, compare: bool, args: tuple) -> dict:
    """The spec of a view page's chart (`kind`: local, global, samples, evaluation) as a new dict.

    `args` is all the chart depends on besides `compare`: the local view's (class id, name) panels, the global
    view's (field, title) axes, the evaluation table's variants. Altair takes seconds to minutes for the geometry
    views' nested concatenations, and every build of a store with the same classes, axes and variants (a second
    architecture, `mkdocs serve` rebuilding, the test session's sites) asks for the same specs: they are made once
    per process (and per Altair theme, which `to_dict` merges in).
    """
    import altair as alt

    return json.loads(_view_spec_json(kind, compare, args, alt.theme.active))


@functools.lru_cache(maxsize=64)
def _view_spec_json(kind: str, compare: bool, args: tuple, theme: str) -> str:
    if kind == "local":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the shared brush, see charts.local_geometry
            local = charts.local_geometry(classes=list(args), compare=compare)
        grid = charts.sample_examination(filters=charts.local_filters(compare, [j for j, _ in args]), compare=compare)
        chart = alt_vconcat(local, grid)
    elif kind == "global":
        glob = charts.global_geometry(axes=list(args), compare=compare)
        grid = charts.sample_examination(filters=charts.global_filters(len(args)), compare=compare)
        chart = alt_vconcat(glob, grid)
    elif kind == "samples":
        chart = charts.sample_examination(filters=["datum.selected"], compare=compare, limit=120)
    elif kind == "evaluation":
        chart = charts.evaluation_table(variants=list(args))
    else:
        raise ValueError(f"unknown view {kind!r}")
    return json.dumps(spec_dict(chart))


def alt_vconcat(*charts_):
    import altair as alt

    return alt.vconcat(*charts_, spacing=24)


def _variants(store: Store) -> list[str]:
    from .data import variant_labels

    return variant_labels(store)


HOME_URI = "index.md"
HOME_MARKER = "<!-- lotterysite:headline -->"  # where site_src/index.md takes the generated headline and summary


# How each static chart fits a narrow page (lotterysite.js `fitToWidth`): facets named in `reflow` get as many
# columns as fit ([item px, most]), units named in `shrink` a width in [lo, hi] ([lo, hi, count, extra px]),
# legends with columns as many columns as fit (`legend`: item px).
FIT = {
    "headline": {"reflow": {"ls_hl": [370, 2]}, "shrink": {"ls_hl_unit": [180, 280, 1, 80]}, "legend": 150},
    "margin_change": {
        "shrink": {"ls_fig10_pooled": [180, 520, 1, 70, "fig10_w"], "ls_fig10_cell": [100, 140, 4, 200]},
        "reflow": {"ls_fig10_per": [160, 4]},
    },
    "curse": {"reflow": {"ls_curse": [380, 2]}, "shrink": {"ls_curse_unit": [180, 300, 1, 70]}},
    "correlations": {"shrink": {"ls_corr_unit": [160, 320, 1, 200]}},
    "cost": {"reflow": {"ls_cost": [370, 2]}, "shrink": {"ls_cost_unit": [180, 280, 1, 80]}, "legend": 150},
}


# The params of a static chart that a reader sets (a select, a legend click) and the link key each is kept under.
KEPT_PARAMS = {
    "headline": {"hl_method": "hl"},
    "margin_change": {"mc_a": "fig10a", "mc_b": "fig10b"},
}


def _static(uri: str, spec: str, datasets: dict[str, str], css: str = "", *, title: str) -> str:
    """A chart with no controls of its own but the ones in its spec; `title` names it to screen readers."""
    name = next(iter(datasets), "")
    cfg = {"kind": "static", "spec": rel(uri, spec), "datasets": {k: rel(uri, v) for k, v in datasets.items()},
           "title": title, "keep": KEPT_PARAMS.get(name, {})}  # fmt: skip
    cfg.update(FIT.get(name, {}))
    # The config in a hidden div, not a <script>: Material's instant navigation re-runs inline scripts.
    return (f"<div class=\"ls-view {css}\" data-ls-view=\"static\"><div class=\"ls-config\" "
            f"hidden>{to_json(cfg)}</div></div>")  # fmt: skip


def home_page(view: ViewModel, uri: str = HOME_URI) -> tuple[str, dict, dict]:
    """The home page's headline chart and summary (Markdown for `HOME_MARKER` of page `uri`), its spec and data."""
    store = view.store
    methods = list(view.method_labels)
    specs = {"data/specs/headline.json": spec_dict(charts.headline(methods=methods, archs=list(store.archs)))}
    views = {arch: rel(uri, f"views/{store.slug(arch)}/local") + "/" for arch in store.archs}
    files = {"data/headline.arrow": findings.headline_table(view, views)}
    n = view.n_eval
    md = (
        "## What this study found\n\n"
        f"Accuracy against the fraction of weights pruned, per architecture, on clean images and averaged over every "
        f"corruption; bands are each model's own 95 % bootstrap interval over the {n} evaluation images (whether two "
        "bands overlap is no test: the summary below compares models paired, on the same images). Click a point to "
        "open that model in the views; click a legend entry to isolate a method.\n\n"
        + _static(
            uri,
            "data/specs/headline.json",
            {"headline": "data/headline.arrow"},
            "ls-headline",
            title="Accuracy against the fraction of weights pruned, per method and architecture",
        )
        + "\n\n"
        + findings.summary(view)
        + "\n"
    )
    if view.has_channel:  # structured pruning: accuracy against what the models cost to run
        specs["data/specs/cost.json"] = spec_dict(charts.accuracy_vs_cost(methods=methods, archs=list(store.archs)))
        files["data/cost.arrow"] = site_cost.cost_table(view, views)
        to_findings = posixpath.relpath("findings.md", posixpath.dirname(uri) or ".")  # a Markdown link's target
        md += ("\n## Accuracy against cost\n\nMasks leave a network's size and speed as they were; channel "
               "pruning removes whole channels. Multiply-accumulates per image; the tooltip gives the measured "
               "speed-up over the dense model.\n\n" + site_cost.feature_dim_note(view, to_findings)
               + _static(uri, "data/specs/cost.json", {"cost": "data/cost.arrow"}, "ls-headline",
                         title="Accuracy against multiply-accumulates per image, per method and architecture")
               + "\n")  # fmt: skip
    return md, specs, files


def insert_home(markdown: str, fragment: str) -> str:
    """Put the generated fragment at HOME_MARKER, or right under the page's first heading when there is none."""
    if HOME_MARKER in markdown:
        return markdown.replace(HOME_MARKER, fragment, 1)
    lines = markdown.split("\n")
    at = next((i + 1 for i, line in enumerate(lines) if line.startswith("# ")), 0)
    return "\n".join(lines[:at] + ["", fragment, ""] + lines[at:])


def _fmt_r(v) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:+.2f}"


def _table1_html(view: ViewModel) -> str:
    rows = []
    for r in view.table1:
        cells = []
        for k, _ in findings.METRICS:
            if r["models"] == 1 and r.get(f"{k}_lo") is not None:
                extra = f"[{_fmt_r(r[f'{k}_lo'])}, {_fmt_r(r[f'{k}_hi'])}]"
            else:
                extra = f"range {_fmt_r(r.get(f'{k}_min'))} … {_fmt_r(r.get(f'{k}_max'))}"
            cells.append(f"<td>{_fmt_r(r[k])}<br><small>{extra}</small></td>")
        amounts = ", ".join(amount_label(a) for a in r["amounts"])
        rows.append(
            f"<tr><td>{escape(r['arch'])}</td><td>{escape(r['method'])}</td><td>{amounts}</td>{''.join(cells)}</tr>"
        )
    for name, *vals in findings.PAPER_TABLE1:
        rows.append(f"<tr class=\"ls-paper\"><td>{name}</td><td>dense (paper, CIFAR-10)</td><td>dense</td>"
                    + findings.paper_cells(vals, 4) + "</tr>")  # fmt: skip
    return (
        '<div class="ls-scroll"><table class="ls-table1"><thead><tr><th>architecture</th><th>method</th>'
        "<th>amounts</th>" + findings.metric_headers()
        + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>"
    )  # fmt: skip


def _per_model_html(view: ViewModel) -> str:
    rows = []
    for r in view.correlations:
        cells = "".join(
            f"<td>{_fmt_r(r[k])} [{_fmt_r(r[f'{k}_lo'])}, {_fmt_r(r[f'{k}_hi'])}]</td>" for k, _ in findings.METRICS
        )
        m = r["mc_abs_mean"]
        spread = (
            "n/a" if m is None or math.isnan(m) else f"{m:.2f} [{r['mc_abs_mean_lo']:.2f}, {r['mc_abs_mean_hi']:.2f}]"
        )
        rows.append(f"<tr><td>{escape(r['model_id'])}</td>{cells}<td>{spread}</td></tr>")
    return (
        '<div class="ls-scroll"><table class="ls-per-model"><thead><tr><th>model</th>'
        + findings.metric_headers()
        + "<th>mean |rel. margin change|</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def _paired_html(view: ViewModel) -> str:
    """Every pruned model against its dense parent, paired: the clean and corruption-mean drops and the verdict."""
    margin = view.margin
    words = {"keeps": "keeps dense's accuracy", "below": f"below by more than {findings.margin_text(margin * 100)}",
             "inconclusive": "inconclusive", "n/a": "n/a"}  # fmt: skip
    rows = []
    for r in view.pruned_vs_dense:
        m = r["model"]
        drops = [findings.points(d, margin, unit="") if d is not None else "n/a"
                 for d in (r["drop"], r["corrupted_drop"])]  # fmt: skip
        rows.append(
            f'<tr data-verdict="{r["verdict"]}"><td>{escape(m["model_id"])}</td><td>{escape(r["dense"]["model_id"])}'
            f"</td><td>{drops[0]}</td><td>{drops[1]}</td><td>{words[r['verdict']]}</td></tr>"
        )
    if not rows:
        return "<p><em>No pruned model in this store.</em></p>"
    return (
        '<div class="ls-scroll"><table class="ls-paired"><thead><tr><th>model</th><th>dense parent</th>'
        "<th>clean drop (points)</th><th>corruption-mean drop (points)</th><th>clean accuracy</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></div>"
    )


def findings_page(view: ViewModel, gallery: str | None) -> tuple[Page, dict, dict]:
    """Table 1 by architecture x method beside the paper's, the paired drops of every pruned model, the Fig. 10
    two-model comparison, Fig. 3, the gallery; returns the page, its chart specs and its data files."""
    uri = "findings.md"
    options = findings.model_options(view)
    pair = view.default_pair
    specs = {
        "data/specs/margin_change.json": spec_dict(
            charts.margin_change_pair(models=options, a=pair[0], b=pair[1])
            if options
            else charts.margin_change_density()
        ),
        "data/specs/correlations.json": spec_dict(charts.correlations()),
    }
    md = _findings_head(view, uri) + _findings_tail(view, uri, gallery, specs, bool(options))
    data = {"data/fig10_paired.arrow": findings.pair_texts(view)} if options else {}
    return Page(uri, "Findings", md), specs, data


def _findings_head(view: ViewModel, uri: str) -> str:
    """The findings page up to Fig. 10: the store's provenance, Table 1 and the paired drops."""
    store = view.store
    recipe = escape(str(store.manifest.get("recipe", {}).get("name", "")))
    n = view.n_eval
    boot = store.manifest.get("bootstrap") or {}
    return f"""# Findings

Store: recipe <code>{recipe}</code>, {len(store.manifest.get("models", []))} models. Every number on this page is
computed over the **{n} evaluation images** (and all their corrupted versions); intervals in brackets are
{float(boot.get("level", 0.95)):.0%} bootstrap intervals over those images ({boot.get("resamples", "?")} resamples,
seed {boot.get("seed", "?")}).

## Table 1: robustness and geometry

Pearson correlation, over the evaluation set, of each sample's robustness (eq. 7: its correct predictions over
every corrupted version) with its clean angle to the true class, length and margin (paper §5.3). The margin is
shown both ways: with the classifier's bias (the distance to the model's true decision boundaries, what every other
view shows) and without it, as the paper's eq. 5 prints it and as its Table 1 reports it; with a zero bias the two
agree (the Method page works an example). One row per
architecture and method: the mean r over the method's pruning amounts (below it, the smallest and largest r over
those amounts); the dense row is a single model, with its interval. The paper's values (dense models on CIFAR-10)
are the last rows.

{_table1_html(view)}

<details class="ls-details"><summary>Every model's correlations, with intervals</summary>

<p><a href="{rel(uri, "data/store/correlations.arrow")}" download>Download correlations.arrow</a> (Arrow IPC: pandas
<code>read_feather</code>, DuckDB, pyarrow).</p>

{_per_model_html(view)}

{
        _static(
            uri,
            "data/specs/correlations.json",
            {"correlations": "data/correlations.arrow"},
            title="Table 1 per model: Pearson r of robustness with angle, length and margin",
        )
    }

</details>

## Pruned against dense, paired

Both models of a comparison are scored on the same {n} images, so each pruned model is compared with its dense
parent image by image: a drop is dense's accuracy minus the pruned model's (positive: the pruned model is worse),
with its {float(boot.get("level", 0.95)):.0%} paired bootstrap interval (the same resampled images for both models).
A model **keeps dense's accuracy** when the whole interval of its clean drop lies below the equivalence margin of
**{findings.margin_text(view.equivalence_points)}**; it is **below** when the whole interval lies above it; otherwise
{n} images cannot tell (inconclusive). The rows, and the clean vs corrupted difference of every model, are in
<a href="{rel(uri, "data/store/paired.arrow")}" download>paired.arrow</a>.

{_paired_html(view)}

"""


def _findings_tail(view: ViewModel, uri: str, gallery: str | None, specs: dict, pair: bool) -> str:
    """The findings page from Fig. 10 on: the two-model margin change, Fig. 3 (its spec added to `specs`), the
    workspace case studies, the gallery."""
    store = view.store
    verdicts = findings.fig10_verdicts(view)
    fig10_data = {"margin_change": "data/margin_change.arrow"}
    if pair:
        fig10_data["fig10_paired"] = "data/fig10_paired.arrow"
    fig10_md = (
        ('<ul class="ls-fig10-verdict">' + "".join(f"<li>{v}</li>" for v in verdicts) + "</ul>") if verdicts else ""
    )
    curse_words = ""
    if "curse.arrow" in store.tables:
        curse_words = findings.curse_caption(view)
        specs["data/specs/curse.json"] = spec_dict(charts.curse_of_dimensionality())
        curse_md = _static(
            uri,
            "data/specs/curse.json",
            {"curse": "data/curse.arrow"},
            title="Fig. 3: angles against the dimension, random vectors and trained models",
        )
    else:  # the recipe switched the study off ([curse] enabled = false)
        curse_md = "<p><em>This store has no curse.arrow: its recipe switched the study off.</em></p>"
    gallery_md = (
        f'<div class="ls-gallery-wrap"><img class="ls-gallery" src="{rel(uri, f"data/{gallery}")}" '
        'alt="every corruption at every severity"></div>'
        if gallery
        else "<p><em>This store has no gallery.png.</em></p>"
    )
    return f"""## Relative margin change (Fig. 10)

The paper compares a dense VGG16 with an MPT model **of the same clean accuracy**: the MPT model's relative margin
change (m<sub>clean</sub> − m<sub>corrupted</sub>) / m<sub>clean</sub> is more concentrated, i.e. its margins move
less under corruption. Here the defaults are the dense model and the MPT model closest to it in clean accuracy;
pick any two models with the two selects under the charts. Densities are over every sample and corrupted version,
each model's 0.5 % smallest and largest values trimmed as in the paper; the pooled chart first, then one panel per
corruption. The defaults, compared paired (equally accurate: the paired interval of the clean-accuracy difference
within ±{findings.margin_text(view.equivalence_points)}):

{fig10_md}

{
        _static(
            uri,
            "data/specs/margin_change.json",
            fig10_data,
            "ls-fig10",
            title="Fig. 10: relative margin change of two models under corruption",
        )
    }

## The curse of dimensionality (Fig. 3)

Mean ± standard deviation of the angle between random vectors, and between samples and their class direction
in trained models, against the dimension (paper §5.4). {curse_words}

{curse_md}

## The case studies in the workspace (Figs. 7 and 8)

{_figure_links(view, uri)}

## Corruption gallery

{gallery_md}
"""
