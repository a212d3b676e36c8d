"""The view model: every number the generated pages and static charts show, computed once from the store.

Data flows one way (issue 23 §5): store -> `build_view_model` -> pages, chart specs and data files. `render` calls
`build_view_model` once; `pages`, `findings` and `cost` only format what the model holds (Markdown, HTML, the
Arrow files of the static charts), so a number printed on two pages is the same number, computed in one place.

Every comparison of two models is paired: both are scored on the same evaluation images, so the claims use the
paired bootstrap intervals of their differences (paired.arrow), never the overlap of two separate intervals. A
pruned model keeps dense's accuracy when the paired interval of its drop lies below an equivalence margin
(`equivalence_points`, a site option); two models are equally accurate when the interval of their difference lies
within ± the margin; a difference is claimed only where its paired interval excludes 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from .budget import Cut, served_samples
from .charts import class_slots
from .data import (
    ArchData,
    SeverityCoverage,
    Store,
    axis_classes,
    densities,
    dot_samples,
    geometry_slices,
    method_label,
    pcp_axes,
    severity_coverage,
    shipped_summary,
)
from .options import SiteOptions

# Table 1 of the paper (CIFAR-10, dense models): Pearson r of per-sample robustness with angle, length, margin.
PAPER_TABLE1 = (
    ("ResNet18", -0.8148, 0.3401, 0.7794),
    ("VGG16", -0.8107, 0.5783, 0.8234),
    ("AlexNet", -0.8572, 0.5557, 0.7681),
)
# The margin both ways (site_src/method.md, "Margin"): ours adds the classifier's bias (the distance to the model's
# true boundaries), eq. 5 as the paper prints it has none. The paper reports one margin, eq. 5's.
METRICS = (("rc_angle", "angle"), ("rc_length", "length"), ("rc_margin", "margin"),
           ("rc_margin_eq5", "margin, eq. 5 (no bias)"))  # fmt: skip
PAPER_COLUMN = {"rc_angle": 0, "rc_length": 1, "rc_margin_eq5": 2}  # PAPER_TABLE1's value of each of our columns
NAN = float("nan")


@dataclass(frozen=True)
class Value:
    """A store value with its bootstrap interval (an accuracy, an r); NaN where the store has none."""

    v: float
    lo: float
    hi: float

    def ok(self) -> bool:
        return all(math.isfinite(x) for x in (self.v, self.lo, self.hi))

    def above(self, other: Value) -> bool:
        """Higher beyond the uncertainty: the intervals do not overlap."""
        return self.ok() and other.ok() and self.lo > other.hi

    def overlaps(self, other: Value) -> bool:
        return not (self.above(other) or other.above(self))

    def ends(self) -> tuple[float, float, float]:
        return self.v, self.lo, self.hi


@dataclass(frozen=True)
class Diff:
    """A paired difference, model minus ref, on the same evaluation images (a paired.arrow row): its value, paired
    bootstrap interval and McNemar's discordant counts (-1 where they do not apply)."""

    v: float
    lo: float
    hi: float
    better: int = -1
    worse: int = -1

    def ok(self) -> bool:
        return all(math.isfinite(x) for x in (self.v, self.lo, self.hi))

    def negated(self) -> Diff:
        return Diff(-self.v, -self.hi, -self.lo, self.worse, self.better)

    def above_zero(self) -> bool:
        return self.ok() and self.lo > 0

    def below_zero(self) -> bool:
        return self.ok() and self.hi < 0

    def not_below(self, margin: float) -> bool:
        """Non-inferiority: the whole interval lies above -margin (the drop's interval below the margin)."""
        return self.ok() and self.lo >= -margin

    def within(self, margin: float) -> bool:
        """Equivalence: the whole interval lies within ± margin."""
        return self.ok() and -margin <= self.lo and self.hi <= margin


@dataclass(frozen=True)
class Paired:
    """The store's paired differences (paired.arrow), looked up in either order (b - a is -(a - b))."""

    present: bool
    rows: dict[tuple[str, str, str], Diff]

    @classmethod
    def of(cls, store: Store) -> Paired:
        t = store.tables.get("paired.arrow")
        rows = {}
        for r in t.to_pylist() if t is not None else []:
            rows[r["model_id"], r["ref_id"], r["quantity"]] = Diff(
                *(NAN if r[k] is None else float(r[k]) for k in ("diff", "diff_lo", "diff_hi")),
                r["better"], r["worse"])  # fmt: skip
        return cls(t is not None, rows)

    def get(self, model_id: str, ref_id: str, quantity: str) -> Diff | None:
        """model minus ref; None where the store holds no such comparison."""
        if (model_id, ref_id, quantity) in self.rows:
            return self.rows[model_id, ref_id, quantity]
        other = self.rows.get((ref_id, model_id, quantity))
        return None if other is None or quantity == "corrupted_vs_clean" else other.negated()


def value_of(row: dict, name: str) -> Value:
    """Column `name` of a store row with its `_lo`/`_hi` interval."""

    def get(k):
        return NAN if row.get(k) is None else float(row[k])

    return Value(get(name), get(f"{name}_lo"), get(f"{name}_hi"))


@dataclass(frozen=True)
class Kept:
    """One method's row of the home page's verdict: the highest amount that keeps dense's clean accuracy (None: none
    is shown to keep it), that model, its clean accuracy and its paired drop below its dense parent."""

    label: str
    amount: float | None
    model: dict | None
    clean: Value | None = None
    drop: Diff | None = None


@dataclass(frozen=True)
class ArchVerdict:
    """One architecture's line of the home page's summary."""

    arch: str
    dense: dict
    clean: Value  # dense's clean accuracy
    corrupted: Value  # dense's corruption-mean accuracy
    corruption_cost: Diff | None  # dense on corruption minus clean, paired (None where not finite)
    ranked: tuple[Kept, ...]  # methods by their highest kept amount
    closest: tuple[dict, Diff] | None  # where none keeps: the pruned model with the smallest upper drop
    wins: tuple[tuple[dict, Diff], ...]  # corruption-mean gains over dense, interval above 0, largest first
    worse: int  # pruned models whose corruption-mean difference lies below 0
    total: int  # pruned models
    best_gain: tuple[Value, Value] | None  # the largest gain's corruption-mean accuracy and its dense parent's


@dataclass(frozen=True)
class Peer:
    """A model pruned to MPT's amount by another method: MPT minus it, spread and clean accuracy, paired."""

    model: dict
    spread: Diff
    clean: Diff | None


@dataclass(frozen=True)
class Fig10:
    arch: str
    dense: dict
    mpt: dict | None
    comparable: bool  # equally accurate: the paired interval of the clean-accuracy difference within ± the margin
    verdict: str  # "less" (MPT margins move less, as in the paper), "more", "same", or "" (no comparison)
    clean: Diff | None = None  # MPT minus dense, clean accuracy, paired
    spread: Diff | None = None  # MPT minus dense, mean |relative margin change|, paired
    mpt_clean: Value | None = None
    dense_clean: Value | None = None
    mpt_spread: Value | None = None  # mean |relative margin change| (correlations.arrow)
    dense_spread: Value | None = None
    peers: tuple[Peer, ...] = ()
    peers_less: int = 0  # peers whose margins move more than MPT's (paired interval below 0)


@dataclass(frozen=True)
class Readout:
    """Fig. 10's paired readout of one ordered pair of models: B minus A."""

    a: str
    b: str
    clean: Diff | None
    spread: Diff | None
    equal: bool  # the clean difference's interval within ± the margin
    moves: str  # B's margins move "less", "more", "neither more nor less", "" (no finite spread difference)


@dataclass(frozen=True)
class Figures:
    """The workspace states of the demo's Figs. 7 and 8 for one architecture: models and class."""

    dense: dict | None  # the architecture's dense model (else its first), the reference of both
    fig7: tuple[str, list[dict], int] | None  # method, its models by amount, the class it changes most
    fig8: tuple[list[dict], int] | None  # up to six models nearest dense in clean accuracy, dense's weakest class


@dataclass(frozen=True)
class Serving:
    """The samples the site serves, cut once to the page budget (`budget.served_samples`), and what the pages say
    of them."""

    cut: Cut  # the served samples, their samples.arrow, and the heaviest pages' bytes
    summary: dict  # `data.shipped_summary`: samples served, per class, exemplars, extra rows, what the store holds
    classes: list[int]  # the classes with served samples in the stratified sample: the class menus' choices
    dense: bool  # some class has more served samples than a workspace panel draws as marks: panels draw densities


@dataclass(frozen=True)
class ArchModel:
    """What one architecture's view pages are drawn from: the classes of its axes and panels, its slice files."""

    arch: str
    axes: list[int]  # classes with an angle axis in the parallel coordinates (`data.axis_classes`, max_axes)
    classes: list[int]  # the local view's class panels when they are fixed (max_classes; few classes)
    figures: Figures  # the workspace states of Figs. 7 and 8
    axis_fields: list[tuple[str, str | None]] = field(default_factory=list)  # the PCP's axes (`data.pcp_axes`)
    panels: list = field(default_factory=list)  # the local view's panels: `classes`, or slots the reader fills
    slices: ArchData | None = None  # the served samples' slice files (`data.geometry_slices`)
    density: dict | None = None  # where the panels draw densities: {"extents": per class} (`data.densities`)
    density_files: dict[str, bytes] = field(default_factory=dict)
    confused: dict[str, list[int]] = field(default_factory=dict)  # many classes: each served class's confused ones


@dataclass(frozen=True)
class ViewModel:
    """Every number the generated pages show, from one store (`build_view_model`)."""

    store: Store
    equivalence_points: float  # accuracy points
    margin: float  # the same as a fraction
    n_eval: int  # evaluation images
    coverage: SeverityCoverage | None
    paired_present: bool
    verdicts: tuple[ArchVerdict, ...]  # architectures with a dense model
    home_table1: tuple[tuple[str, dict], ...]  # (arch, dense's correlations row) per architecture
    paper_verdicts: dict[tuple[str, str], str]  # (arch, metric) -> how dense's r compares with the paper's
    table1: tuple[dict, ...]
    correlations: tuple[dict, ...]  # correlations.arrow's rows (every model, with intervals)
    pruned_vs_dense: tuple[dict, ...]
    fig10: tuple[Fig10, ...]
    readouts: tuple[Readout, ...]  # every ordered pair of models
    default_pair: tuple[str, str]
    method_labels: tuple[str, ...]
    headline: pa.Table  # the headline chart's rows, without their links (`pages.home_page` adds `href`)
    has_channel: bool  # channel-pruned models: the cost chart is shown
    cost: pa.Table | None  # the cost chart's rows, without their links
    feature_dim_changed: tuple[dict, ...]  # models whose feature dimension differs from their dense model's
    curse: dict[str, tuple[int, float, float]]  # study -> (largest dimension, angle mean, std) there
    serving: Serving  # the served samples (the page budget's cut)
    archs: dict[str, ArchModel] = field(default_factory=dict)  # by architecture, in the store's order


def build_view_model(store: Store, options: SiteOptions | None = None) -> ViewModel:
    """Every number the pages show, computed from the store's tables once (render calls it once per site)."""
    options = options or SiteOptions()
    points = options.equivalence_points
    margin = points / 100
    paired = Paired.of(store)
    models = store.models.to_pylist()
    corr = store.tables["correlations.arrow"].to_pylist()
    verdicts = tuple(
        arch_verdict(store, models, arch, dense, margin, paired)
        for arch in store.archs
        if (dense := dense_of(models, arch)) is not None
    )
    home = tuple((arch, r) for arch, r in _dense_corr(store, models, corr))
    fig10 = tuple(f for f in (fig10_pair(models, corr, a, margin, paired) for a in store.archs) if f)
    serving = serving_of(store, options)
    return ViewModel(
        store=store, equivalence_points=points, margin=margin,
        n_eval=int(store.manifest.get("dataset", {}).get("n_eval") or 0),
        coverage=severity_coverage(store.manifest), paired_present=paired.present, verdicts=verdicts,
        home_table1=home,
        paper_verdicts={(a, k): compare_to_paper(k, value_of(r, k)) for a, r in home for k, _ in METRICS},
        table1=tuple(table1(store, models, corr)), correlations=tuple(corr),
        pruned_vs_dense=tuple(pruned_vs_dense(models, paired, margin)), fig10=fig10,
        readouts=tuple(readouts(models, paired, margin)), default_pair=default_pair(store, fig10),
        method_labels=tuple(method_labels(models)), headline=headline_rows(store, models),
        has_channel=has_channel_models(store), cost=cost_rows(models) if has_channel_models(store) else None,
        feature_dim_changed=tuple(feature_dim_changed(store, models)), curse=curse_ends(store), serving=serving,
        archs={arch: arch_model(store, arch, options, serving) for arch in store.archs},
    )  # fmt: skip


def serving_of(store: Store, options: SiteOptions) -> Serving:
    """The served samples, cut to the page budget once (`budget.served_samples`), their per-class counts, the
    classes that have any, and whether a workspace panel draws densities (a class has more than `panel_marks`)."""
    cut = served_samples(store, options)
    summary = shipped_summary(store, cut.served)
    dense = not (dot_samples(store, cut.served, options.panel_marks) == cut.served.in_sample).all()
    return Serving(cut, summary, [j for j, n in enumerate(summary["per_class"]) if n], bool(dense))


def arch_model(store: Store, arch: str, options: SiteOptions, serving: Serving) -> ArchModel:
    """One architecture's axis and panel classes (ranked by `data.axis_classes`), its figure states, and the served
    samples' slice files and (where the panels draw densities) density files."""
    axes = axis_classes(store, arch, options.max_axes)
    classes = axis_classes(store, arch, options.max_classes)
    if len(store.classes) > options.max_classes:  # the reader picks the panels' classes (the page's link)
        panels = class_slots(max(1, min(options.picked_classes, len(serving.classes))))
    else:
        panels = classes
    axis_fields = pcp_axes(store, axes)
    served = serving.cut.served
    slices = geometry_slices(store, arch, served, axes)
    density, density_files = None, {}
    if serving.dense:
        density_files, extents = densities(store, arch, served, [f for f, _ in axis_fields], slices.slices)
        density = {"extents": extents}
    return ArchModel(arch, axes, classes, figure_states(store, arch), axis_fields, panels, slices, density,
                     density_files, store.confused_of(arch, serving.classes))  # fmt: skip


def dense_of(models: list[dict], arch: str) -> dict | None:
    dense = [m for m in models if m["arch"] == arch and m["method"] == "dense"]
    return dense[0] if dense else None


def parent_dense(models: list[dict], m: dict) -> dict | None:
    """The dense model a pruned model derives from: its architecture's, of its seed."""
    dense = [d for d in models if d["arch"] == m["arch"] and d["method"] == "dense"]
    return next((d for d in dense if d["seed"] == m["seed"]), dense[0] if dense else None)


def _drop(models: list[dict], paired: Paired, m: dict) -> Diff | None:
    """Dense parent minus `m`, clean accuracy, paired (positive: the pruned model is worse)."""
    parent = parent_dense(models, m)
    diff = paired.get(m["model_id"], parent["model_id"], "clean_accuracy") if parent else None
    return None if diff is None else diff.negated()


def keeps_accuracy(models: list[dict], arch: str, margin: float, paired: Paired) -> list[Kept]:
    """Per method (retrained copies separate): the highest amount that keeps dense's clean accuracy — the paired
    interval of the drop below its dense parent lies below `margin` (a fraction: 0.01 is 1 point) — and that model;
    methods ranked by it (amount None: no amount is shown to keep it)."""
    best: dict[str, tuple[float | None, dict | None]] = {}
    for m in models:
        if m["arch"] != arch or m["method"] == "dense":
            continue
        label = method_label(m)
        best.setdefault(label, (None, None))
        dense = parent_dense(models, m)
        diff = paired.get(m["model_id"], dense["model_id"], "clean_accuracy") if dense else None
        if diff is not None and diff.not_below(margin) and (best[label][0] is None or m["amount"] > best[label][0]):
            best[label] = (m["amount"], m)
    ranked = sorted(((k, a, m) for k, (a, m) in best.items()), key=lambda t: -(t[1] if t[1] is not None else -1))
    return [Kept(k, a, m, None if m is None else value_of(m, "clean_accuracy"),
                 None if m is None else _drop(models, paired, m)) for k, a, m in ranked]  # fmt: skip


def corruption_wins(models: list[dict], arch: str, paired: Paired) -> tuple[list[tuple[dict, Diff]], int, int]:
    """Pruned models whose corruption-mean accuracy is above their dense parent's, the paired interval of the
    difference above 0 (largest gain first), the number whose interval lies below 0, and the number of pruned
    models."""
    wins, worse, total = [], 0, 0
    for m in models:
        if m["arch"] != arch or m["method"] == "dense":
            continue
        total += 1
        dense = parent_dense(models, m)
        diff = paired.get(m["model_id"], dense["model_id"], "corrupted_accuracy") if dense else None
        if diff is None:
            continue
        if diff.above_zero():
            wins.append((m, diff))
        elif diff.below_zero():
            worse += 1
    return sorted(wins, key=lambda t: -t[1].v), worse, total


def arch_verdict(store: Store, models: list[dict], arch: str, dense: dict, margin: float,
                 paired: Paired) -> ArchVerdict:  # fmt: skip
    """How far each method keeps dense's clean accuracy (paired), and whether a pruned model beats dense under
    corruption."""
    cost = paired.get(dense["model_id"], dense["model_id"], "corrupted_vs_clean")
    ranked = keeps_accuracy(models, arch, margin, paired)
    closest = None
    if not any(k.amount is not None for k in ranked):
        drops = [(m, _drop(models, paired, m)) for m in models if m["arch"] == arch and m["method"] != "dense"]
        drops = [(m, x) for m, x in drops if x is not None and x.ok()]
        closest = min(drops, key=lambda t: t[1].hi) if drops else None
    wins, worse, total = corruption_wins(models, arch, paired)
    best = None
    if wins:
        m = wins[0][0]
        best = (value_of(m, "corrupted_accuracy"), value_of(parent_dense(models, m), "corrupted_accuracy"))
    return ArchVerdict(arch, dense, value_of(dense, "clean_accuracy"), value_of(dense, "corrupted_accuracy"),
                       cost if cost is not None and cost.ok() else None, tuple(ranked), closest, tuple(wins), worse,
                       total, best)  # fmt: skip


def _dense_corr(store: Store, models: list[dict], corr: list[dict]) -> list[tuple[str, dict]]:
    """Each architecture's dense model's correlations row (Table 1 on the home page)."""
    by_id = {r["model_id"]: r for r in corr}
    out = []
    for arch in store.archs:
        dense = dense_of(models, arch)
        r = by_id.get(dense["model_id"]) if dense else None
        if r is not None:
            out.append((arch, r))
    return out


def table1(store: Store, models: list[dict], corr: list[dict]) -> list[dict]:
    """One row per architecture x method: mean r over the method's models (its amounts), their count, and for a
    single model (the dense row) its intervals."""
    by_id = {m["model_id"]: m for m in models}
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in corr:
        m = by_id.get(r["model_id"])
        label = method_label(m) if m else r["method"]
        groups.setdefault((r["arch"], label), []).append(r)
    out = []
    for (arch, label), rows in groups.items():
        row = {"arch": arch, "method": label, "models": len(rows),
               "amounts": sorted({float(r["amount"]) for r in rows})}  # fmt: skip
        for k, _ in METRICS:
            finite = [r[k] for r in rows if r[k] is not None and math.isfinite(r[k])]
            row[k] = sum(finite) / len(finite) if finite else NAN
            if len(rows) == 1:
                row[f"{k}_lo"], row[f"{k}_hi"] = rows[0][f"{k}_lo"], rows[0][f"{k}_hi"]
            else:  # the spread of the per-model values over amounts
                row[f"{k}_min"] = min(finite) if finite else NAN
                row[f"{k}_max"] = max(finite) if finite else NAN
        out.append(row)
    order = {a: i for i, a in enumerate(store.archs)}
    return sorted(out, key=lambda r: (order.get(r["arch"], 99), r["method"] != "dense", r["method"]))


def paper_range(k: str) -> tuple[float, float]:
    """The range of the paper's r for our column k; both our margins are compared with the paper's one margin."""
    i = PAPER_COLUMN["rc_margin_eq5" if k == "rc_margin" else k] + 1
    values = [row[i] for row in PAPER_TABLE1]
    return min(values), max(values)


def compare_to_paper(k: str, v: Value) -> str:
    """How this r compares with the paper's three architectures: sign, then strength, both beyond the interval."""
    lo, hi = paper_range(k)  # the paper's values share one sign
    if not v.ok():
        return "undefined here"
    if v.lo <= 0 <= v.hi:
        return "not distinguishable from 0"
    if (v.v > 0) != (lo > 0):
        return "opposite sign to the paper"
    p_min, p_max = sorted((abs(lo), abs(hi)))
    m_min, m_max = sorted((abs(v.lo), abs(v.hi)))
    if m_max < p_min:
        return "same sign, weaker than the paper's"
    if m_min > p_max:
        return "same sign, stronger than the paper's"
    return "same sign, as strong as the paper's"


def margin_spread(corr: list[dict], model_id: str) -> Value:
    """A model's mean |relative margin change| with its interval (correlations.arrow)."""
    for r in corr:
        if r["model_id"] == model_id:
            return value_of(r, "mc_abs_mean")
    return Value(NAN, NAN, NAN)


def fig10_pair(models: list[dict], corr: list[dict], arch: str, margin: float, paired: Paired) -> Fig10 | None:
    """The dense model and the MPT model (not retrained) closest to it in clean accuracy; whether they are equally
    accurate (paired clean difference within ± `margin`), and how their relative margin changes compare (the
    paired interval of the difference of their mean |change|)."""
    dense = dense_of(models, arch)
    if dense is None:
        return None
    mpts = [m for m in models if m["arch"] == arch and m["method"] == "mpt" and not m["retrained"]]
    if not mpts:
        return Fig10(arch, dense, None, False, "")
    mpt = min(mpts, key=lambda m: (abs(m["clean_accuracy"] - dense["clean_accuracy"]), -m["amount"]))
    clean = paired.get(mpt["model_id"], dense["model_id"], "clean_accuracy")
    comparable = clean is not None and clean.within(margin)
    spread = paired.get(mpt["model_id"], dense["model_id"], "mc_abs_mean")
    verdict = ""
    if spread is not None and spread.ok():
        verdict = "less" if spread.below_zero() else "more" if spread.above_zero() else "same"
    peers = _peers(models, paired, arch, mpt)
    return Fig10(arch, dense, mpt, comparable, verdict, clean, spread, value_of(mpt, "clean_accuracy"),
                 value_of(dense, "clean_accuracy"), margin_spread(corr, mpt["model_id"]),
                 margin_spread(corr, dense["model_id"]), peers,
                 sum(p.spread.below_zero() for p in peers))  # fmt: skip


def _peers(models: list[dict], paired: Paired, arch: str, mpt: dict) -> tuple[Peer, ...]:
    """The other models pruned to MPT's amount, MPT minus each (paired): is it MPT, or pruning to that sparsity?"""
    peers = [m for m in models if m["arch"] == arch and m["method"] not in ("dense", "mpt")
             and abs(m["amount"] - mpt["amount"]) < 1e-6]  # fmt: skip
    diffs = [(m, paired.get(mpt["model_id"], m["model_id"], "mc_abs_mean")) for m in peers]
    return tuple(Peer(m, d, paired.get(m["model_id"], mpt["model_id"], "clean_accuracy"))
                 for m, d in diffs if d is not None and d.ok())  # fmt: skip


def pruned_vs_dense(models: list[dict], paired: Paired, margin: float) -> list[dict]:
    """Every pruned model against its dense parent, paired: clean and corruption-mean drops with intervals, and
    the verdict on clean accuracy: "keeps" (drop interval below `margin`), "below" (drop interval above `margin`:
    shown to lose more than the margin) or "inconclusive"."""
    out = []
    for m in models:
        dense = parent_dense(models, m) if m["method"] != "dense" else None
        if dense is None:
            continue
        clean = paired.get(m["model_id"], dense["model_id"], "clean_accuracy")
        corrupted = paired.get(m["model_id"], dense["model_id"], "corrupted_accuracy")
        drop = None if clean is None else clean.negated()
        verdict = (
            "n/a" if drop is None or not drop.ok()
            else "keeps" if drop.hi <= margin else "below" if drop.lo > margin else "inconclusive"
        )  # fmt: skip
        corrupted_drop = None if corrupted is None else corrupted.negated()
        out.append({"model": m, "dense": dense, "drop": drop, "corrupted_drop": corrupted_drop, "verdict": verdict})
    return out


def readout(paired: Paired, a: str, b: str, margin: float) -> Readout:
    """Fig. 10's picker readout of B minus A, paired on the same images."""
    clean = paired.get(b, a, "clean_accuracy")
    spread = paired.get(b, a, "mc_abs_mean")
    moves = ""
    if spread is not None and spread.ok():
        moves = "less" if spread.below_zero() else "more" if spread.above_zero() else "neither more nor less"
    return Readout(a, b, clean, spread, clean is not None and clean.within(margin), moves)


def readouts(models: list[dict], paired: Paired, margin: float) -> list[Readout]:
    """Every ordered pair of models (grows with their square: 625 for 25)."""
    ids = [m["model_id"] for m in models]
    return [readout(paired, a, b, margin) for a in ids for b in ids]


def method_labels(models: list[dict]) -> list[str]:
    """The pruning methods' labels in the store's order (retrained copies after their method)."""
    rows = sorted((m for m in models if m["method"] != "dense"), key=lambda m: (m["method"], m["retrained"]))
    return list(dict.fromkeys(method_label(m) for m in rows))


def default_pair(store: Store, fig10: tuple[Fig10, ...]) -> tuple[str, str]:
    """Fig. 10's defaults: a dense model and the MPT model closest to it in clean accuracy, preferring the
    architecture where the two are equally accurate (paired difference within ± the margin), then the closest pair;
    without MPT the first two models of the Fig. 10 selects."""
    pairs = [f for f in fig10 if f.mpt]
    if pairs:
        f = min(pairs, key=lambda f: (not f.comparable, abs(f.mpt["clean_accuracy"] - f.dense["clean_accuracy"])))
        return f.dense["model_id"], f.mpt["model_id"]
    ids = [m["model_id"] for arch in store.archs for m in store.models_of(arch)]
    return (ids[0], ids[1] if len(ids) > 1 else ids[0]) if ids else ("", "")


HEADLINE_SCHEMA = pa.schema([("model_id", pa.string()), ("arch", pa.string()), ("method", pa.string()),
                             ("amount", pa.float32()), ("data", pa.string()), ("panel", pa.string()),
                             ("accuracy", pa.float32()), ("lo", pa.float32()), ("hi", pa.float32()),
                             ("seed", pa.int32()), ("n", pa.int32())])  # fmt: skip


def headline_rows(store: Store, models: list[dict]) -> pa.Table:
    """The headline chart's rows: every model on clean data and on the corruption mean, dense repeated at 0 for every
    method so each line starts there (`pages.home_page` adds each row's link)."""
    n = int(store.manifest.get("dataset", {}).get("n_eval") or 0)
    cols: dict[str, list] = {k: [] for k in HEADLINE_SCHEMA.names}
    labels = method_labels(models)

    def add(m: dict, label: str, amount: float):
        for data, name in (("clean", "clean_accuracy"), ("corruption mean", "corrupted_accuracy")):
            v = value_of(m, name)
            if not math.isfinite(v.v):
                continue
            row = {"model_id": m["model_id"], "arch": m["arch"], "method": label, "amount": amount, "data": data,
                   "panel": f"{m['arch']} · {data}", "accuracy": v.v, "lo": v.lo, "hi": v.hi, "seed": m["seed"],
                   "n": n}  # fmt: skip
            for k in cols:
                cols[k].append(row[k])

    for m in models:
        if m["method"] == "dense":
            present = {method_label(p) for p in models if p["arch"] == m["arch"] and p["method"] != "dense"}
            for label in labels:
                if label in present:
                    add(m, label, 0.0)
        else:
            add(m, method_label(m), float(m["amount"]))
    return pa.table(cols, schema=HEADLINE_SCHEMA)


def has_channel_models(store: Store) -> bool:
    return "granularity" in store.models.column_names and "channel" in store.models.column("granularity").to_pylist()


COST_SCHEMA = pa.schema([("model_id", pa.string()), ("arch", pa.string()), ("method", pa.string()),
                         ("amount", pa.float32()), ("macs", pa.float64()), ("speedup", pa.float32()),
                         ("parameters", pa.int32()), ("data", pa.string()), ("panel", pa.string()),
                         ("accuracy", pa.float32()), ("seed", pa.int32())])  # fmt: skip


def cost_rows(models: list[dict]) -> pa.Table:
    """The cost chart's rows (`charts.accuracy_vs_cost`): every model on clean data and on the corruption mean, its
    MACs, parameters and speed-up over the dense model of its architecture and seed (median latencies, large batch);
    `pages.home_page` adds each row's link."""
    dense = {(m["arch"], m["seed"]): m for m in models if m["method"] == "dense"}
    cols: dict[str, list] = {k: [] for k in COST_SCHEMA.names}
    for m in models:
        ref = dense.get((m["arch"], m["seed"]))
        own, base = m.get("latency_batch_ms"), ref and ref.get("latency_batch_ms")
        speedup = base / own if own and base else NAN
        labels = [method_label(p) for p in models if p["arch"] == m["arch"] and p["method"] != "dense"]
        for label in dict.fromkeys(labels) if m["method"] == "dense" else [method_label(m)]:
            for data, column in (("clean", "clean_accuracy"), ("corruption mean", "corrupted_accuracy")):
                if m[column] is None or m[column] != m[column]:
                    continue
                row = {"model_id": m["model_id"], "arch": m["arch"], "method": label, "amount": float(m["amount"]),
                       "macs": m["macs"], "speedup": speedup, "parameters": m["parameters"], "data": data,
                       "panel": f"{m['arch']} · {data}", "accuracy": m[column], "seed": m["seed"]}  # fmt: skip
                for k in cols:
                    cols[k].append(row[k])
    return pa.table(cols, schema=COST_SCHEMA)


def feature_dim_changed(store: Store, models: list[dict]) -> list[dict]:
    """The models whose feature dimension differs from their dense model's (structured pruning of its input)."""
    if "feature_dim" not in store.models.column_names:
        return []
    return [m for m in models if m["dense_feature_dim"] > 0 and m["feature_dim"] != m["dense_feature_dim"]]


def curse_ends(store: Store) -> dict[str, tuple[int, float, float]]:
    """Per study of curse.arrow: its largest dimension with a finite mean angle, that mean and its std (Fig. 3's
    caption says where each one ends rather than claiming that all approach 90°)."""
    if "curse.arrow" not in store.tables:
        return {}
    t = store.tables["curse.arrow"].to_pydict()
    last: dict[str, tuple[int, float, float]] = {}
    for study, d, m, s in zip(t["study"], t["dimension"], t["angle_mean"], t["angle_std"], strict=True):
        if math.isfinite(m) and (study not in last or d > last[study][0]):
            last[study] = (int(d), float(m), float(s))
    return last


def class_accuracy(store: Store, model_id: str) -> dict[int, float]:
    """A model's clean accuracy per class (accuracy.arrow)."""
    t = store.accuracy.filter(pc.and_(pc.equal(store.accuracy["model_id"].cast(pa.string()), model_id),
                                      pc.equal(store.accuracy["severity"], 0)))  # fmt: skip
    return {r["class_id"]: r["accuracy"] for r in t.to_pylist() if r["class_id"] >= 0 and r["variant"] == "clean"}


def figure_states(store: Store, arch: str) -> Figures:
    """The workspace states of the demo's Figs. 7 and 8 for `arch`, from the store.

    Fig. 7: one method at every amount against dense, on clean data, for the class whose accuracy that method
    changes most (the method with most amounts; MPT first, as the paper's bottom row, then magnitude). Fig. 8: the
    PCP of one class across up to six models of the most similar clean accuracy to dense (dense included), for
    dense's least accurate class."""
    models = store.models_of(arch)
    dense = next((m for m in models if m["method"] == "dense"), models[0] if models else None)
    if dense is None:
        return Figures(None, None, None)
    fig7 = None
    by_method: dict[str, list[dict]] = {}
    for m in models:
        if m["method"] != "dense":
            by_method.setdefault(method_label(m), []).append(m)
    if by_method:
        pref = {"mpt": 0, "magnitude": 1}
        method = min(by_method, key=lambda k: (-len(by_method[k]), pref.get(k, 2), k))
        chosen = sorted(by_method[method], key=lambda m: m["amount"])
        base, last = class_accuracy(store, dense["model_id"]), class_accuracy(store, chosen[-1]["model_id"])
        cls = max(base, key=lambda j: (abs(last.get(j, 0) - base[j]), -j)) if base else 0
        fig7 = (method, chosen, cls)
    near = sorted(models, key=lambda m: (abs(m["clean_accuracy"] - dense["clean_accuracy"]), m["model_id"]))[:6]
    near = [dense, *[m for m in near if m["model_id"] != dense["model_id"]]][:6]
    base = class_accuracy(store, dense["model_id"])
    return Figures(dense, fig7, (near, min(base, key=lambda j: (base[j], j)) if base else 0))
