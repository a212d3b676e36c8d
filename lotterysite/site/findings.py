"""What the store says, in numbers and in words: the home page's summary, Table 1 by architecture x method and the
Fig. 10 comparison, computed from the store's tables (never hard-coded), every claim checked against intervals.

Every comparison of two models is paired: both are scored on the same evaluation images, so the claims use the
paired bootstrap intervals of their differences (paired.arrow), never the overlap of two separate intervals. A
pruned model keeps dense's accuracy when the paired interval of its drop lies below an equivalence margin
(`equivalence_points`, a site option); two models are equally accurate when the interval of their difference lies
within ± the margin; a difference is claimed only where its paired interval excludes 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape

from .data import Store, method_label

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
HEADERS = {"rc_angle": "rc-angle", "rc_length": "rc-length", "rc_margin": "rc-margin<br><small>with bias</small>",
           "rc_margin_eq5": "rc-margin<br><small>eq. 5, no bias</small>"}  # fmt: skip
PAPER_COLUMN = {"rc_angle": 0, "rc_length": 1, "rc_margin_eq5": 2}  # PAPER_TABLE1's value of each of our columns


def metric_headers() -> str:
    """The <th> cells of Table 1's metrics, in METRICS order."""
    return "".join(f"<th>{HEADERS[k]}</th>" for k, _ in METRICS)


def paper_cells(values, digits: int) -> str:
    """The <td> cells of one PAPER_TABLE1 row under METRICS' columns: its margin under eq. 5's, and a dash under
    the margin with the bias, which the paper does not report."""
    return "".join(
        f"<td>{values[PAPER_COLUMN[k]]:+.{digits}f}</td>" if k in PAPER_COLUMN else "<td>—</td>" for k, _ in METRICS
    )


# Accuracy points within which a pruned model keeps dense's accuracy, and two models count as equally accurate
# (site_src/method.md, "Paired comparisons", says why 1).
EQUIVALENCE_POINTS = 1.0


def digits_for(values, start: int, cap: int = 6) -> int:
    """The fewest decimals (at least `start`, at most `cap`) at which every two distinct `values` print distinct:
    intervals that do not overlap never look as if they touched ([0.3498, 0.3502] is not printed [0.35, 0.35])."""
    # Equal to 6 significant digits is equal: a float32 0.01 (0.0099999998) is the margin 1 point, not beside it.
    vals = {float(f"{x:.6g}") for x in values if x is not None and math.isfinite(x)}
    d = start
    while d < cap and len({f"{x:.{d}f}" for x in vals}) < len(vals):
        d += 1
    return d


@dataclass(frozen=True)
class Value:
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

    def pct(self, digits: int = 1) -> str:
        d = digits
        return f"{self.v:.{d}%} [{self.lo:.{d}%}, {self.hi:.{d}%}]" if self.ok() else "n/a"

    def r(self, digits: int = 2) -> str:
        d = digits
        return f"{self.v:+.{d}f} [{self.lo:+.{d}f}, {self.hi:+.{d}f}]" if self.ok() else "n/a"


def pcts(*values: Value) -> list[str]:
    """Accuracies printed together, with one number of decimals at which their distinct ends print distinct."""
    d = digits_for([x * 100 for v in values for x in v.ends()], 1)
    return [v.pct(d) for v in values]


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

    def points(self, margin: float | None = None, start: int = 1, unit: str = " points") -> str:
        """A difference in points, "-2.0 points [-3.5, -0.8]", its ends distinct from each other, 0 and ± margin."""
        if not self.ok():
            return "n/a"
        ref = [0.0] + ([margin * 100, -margin * 100] if margin is not None else [])
        v, lo, hi = (x * 100 for x in (self.v, self.lo, self.hi))
        d = digits_for([v, lo, hi] + ref, start)
        return f"{signed(v, d)}{unit} [{signed(lo, d)}, {signed(hi, d)}]"

    def plain(self, start: int = 2) -> str:
        """A difference of plain numbers (Fig. 10's spread): "-0.04 [-0.07, -0.01]"."""
        if not self.ok():
            return "n/a"
        d = digits_for([self.v, self.lo, self.hi, 0.0], start)
        return f"{signed(self.v, d)} [{signed(self.lo, d)}, {signed(self.hi, d)}]"


def signed(x: float, digits: int) -> str:
    """+1.5, -1.5, and 0.0 for zero (never "-0.0": `digits_for` prints anything distinct from 0 as distinct)."""
    text = f"{x:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


class Paired:
    """The store's paired differences (paired.arrow), looked up in either order (b - a is -(a - b))."""

    def __init__(self, store: Store):
        t = store.tables.get("paired.arrow")
        self.present = t is not None
        self.rows: dict[tuple[str, str, str], Diff] = {}
        for r in t.to_pylist() if t is not None else []:
            self.rows[r["model_id"], r["ref_id"], r["quantity"]] = Diff(
                *(float("nan") if r[k] is None else float(r[k]) for k in ("diff", "diff_lo", "diff_hi")),
                r["better"], r["worse"])  # fmt: skip

    def get(self, model_id: str, ref_id: str, quantity: str) -> Diff | None:
        """model minus ref; None where the store holds no such comparison."""
        if (model_id, ref_id, quantity) in self.rows:
            return self.rows[model_id, ref_id, quantity]
        other = self.rows.get((ref_id, model_id, quantity))
        return None if other is None or quantity == "corrupted_vs_clean" else other.negated()


def _value(row: dict, name: str) -> Value:
    def get(k):
        return float("nan") if row.get(k) is None else float(row[k])

    return Value(get(name), get(f"{name}_lo"), get(f"{name}_hi"))


def amount_text(amount: float) -> str:
    return f"{amount * 100:g} %"


def n_eval(store: Store) -> int:
    return int(store.manifest.get("dataset", {}).get("n_eval") or 0)


def _models(store: Store) -> list[dict]:
    return store.models.to_pylist()


def dense_of(store: Store, arch: str) -> dict | None:
    dense = [m for m in _models(store) if m["arch"] == arch and m["method"] == "dense"]
    return dense[0] if dense else None


def parent_dense(store: Store, m: dict) -> dict | None:
    """The dense model a pruned model derives from: its architecture's, of its seed."""
    dense = [d for d in _models(store) if d["arch"] == m["arch"] and d["method"] == "dense"]
    return next((d for d in dense if d["seed"] == m["seed"]), dense[0] if dense else None)


def keeps_accuracy(store: Store, arch: str, margin: float = EQUIVALENCE_POINTS / 100,
                   paired: Paired | None = None) -> list[tuple[str, float | None, dict | None]]:  # fmt: skip
    """Per method (retrained copies separate): the highest amount that keeps dense's clean accuracy — the paired
    interval of the drop below its dense parent lies below `margin` (a fraction: 0.01 is 1 point) — and that model;
    methods ranked by it (None: no amount is shown to keep it)."""
    paired = paired or Paired(store)
    best: dict[str, tuple[float | None, dict | None]] = {}
    for m in _models(store):
        if m["arch"] != arch or m["method"] == "dense":
            continue
        label = method_label(m)
        best.setdefault(label, (None, None))
        dense = parent_dense(store, m)
        diff = paired.get(m["model_id"], dense["model_id"], "clean_accuracy") if dense else None
        if diff is not None and diff.not_below(margin) and (best[label][0] is None or m["amount"] > best[label][0]):
            best[label] = (m["amount"], m)
    return sorted(((k, a, m) for k, (a, m) in best.items()), key=lambda t: -(t[1] if t[1] is not None else -1))


def corruption_wins(store: Store, arch: str, paired: Paired | None = None) -> tuple[list[tuple[dict, Diff]], int, int]:
    """Pruned models whose corruption-mean accuracy is above their dense parent's, the paired interval of the
    difference above 0 (largest gain first), the number whose interval lies below 0, and the number of pruned
    models."""
    paired = paired or Paired(store)
    wins, worse, total = [], 0, 0
    for m in _models(store):
        if m["arch"] != arch or m["method"] == "dense":
            continue
        total += 1
        dense = parent_dense(store, m)
        diff = paired.get(m["model_id"], dense["model_id"], "corrupted_accuracy") if dense else None
        if diff is None:
            continue
        if diff.above_zero():
            wins.append((m, diff))
        elif diff.below_zero():
            worse += 1
    return sorted(wins, key=lambda t: -t[1].v), worse, total


def _corr_rows(store: Store) -> list[dict]:
    return store.tables["correlations.arrow"].to_pylist()


def table1(store: Store) -> list[dict]:
    """One row per architecture x method: mean r over the method's models (its amounts), their count, and for a
    single model (the dense row) its intervals."""
    models = {m["model_id"]: m for m in _models(store)}
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in _corr_rows(store):
        m = models.get(r["model_id"])
        label = method_label(m) if m else r["method"]
        groups.setdefault((r["arch"], label), []).append(r)
    out = []
    for (arch, label), rows in groups.items():
        row = {"arch": arch, "method": label, "models": len(rows),
               "amounts": sorted({float(r["amount"]) for r in rows})}  # fmt: skip
        for k, _ in METRICS:
            finite = [r[k] for r in rows if r[k] is not None and math.isfinite(r[k])]
            row[k] = sum(finite) / len(finite) if finite else float("nan")
            if len(rows) == 1:
                row[f"{k}_lo"], row[f"{k}_hi"] = rows[0][f"{k}_lo"], rows[0][f"{k}_hi"]
            else:  # the spread of the per-model values over amounts
                row[f"{k}_min"] = min(finite) if finite else float("nan")
                row[f"{k}_max"] = max(finite) if finite else float("nan")
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


@dataclass(frozen=True)
class Fig10:
    arch: str
    dense: dict
    mpt: dict | None
    comparable: bool  # equally accurate: the paired interval of the clean-accuracy difference within ± the margin
    verdict: str  # "less" (MPT margins move less, as in the paper), "more", "same", or "" (no comparison)
    clean: Diff | None = None  # MPT minus dense, clean accuracy, paired
    spread: Diff | None = None  # MPT minus dense, mean |relative margin change|, paired


def fig10_pair(store: Store, arch: str, margin: float = EQUIVALENCE_POINTS / 100,
               paired: Paired | None = None) -> Fig10 | None:  # fmt: skip
    """The dense model and the MPT model (not retrained) closest to it in clean accuracy; whether they are equally
    accurate (paired clean difference within ± `margin`), and how their relative margin changes compare (the
    paired interval of the difference of their mean |change|)."""
    dense = dense_of(store, arch)
    if dense is None:
        return None
    paired = paired or Paired(store)
    mpts = [m for m in _models(store) if m["arch"] == arch and m["method"] == "mpt" and not m["retrained"]]
    if not mpts:
        return Fig10(arch, dense, None, False, "")
    mpt = min(mpts, key=lambda m: (abs(m["clean_accuracy"] - dense["clean_accuracy"]), -m["amount"]))
    clean = paired.get(mpt["model_id"], dense["model_id"], "clean_accuracy")
    comparable = clean is not None and clean.within(margin)
    spread = paired.get(mpt["model_id"], dense["model_id"], "mc_abs_mean")
    if spread is None or not spread.ok():
        return Fig10(arch, dense, mpt, comparable, "", clean, spread)
    verdict = "less" if spread.below_zero() else "more" if spread.above_zero() else "same"
    return Fig10(arch, dense, mpt, comparable, verdict, clean, spread)


def margin_spread(store: Store, model_id: str) -> Value:
    for r in _corr_rows(store):
        if r["model_id"] == model_id:
            return _value(r, "mc_abs_mean")
    return Value(float("nan"), float("nan"), float("nan"))


def margin_text(points: float) -> str:
    return f"{points:g} point" + ("" if points == 1 else "s")


def _label(m: dict) -> str:
    return "dense" if m["method"] == "dense" else f"{method_label(m)} {amount_text(m['amount'])}"


def fig10_text(store: Store, f: Fig10, margin: float) -> str:
    """Fig. 10's verdict for one architecture: which two models, whether they are equally accurate, how their
    margins compare — every comparison paired."""
    e = escape
    if f.mpt is None:
        return f"{e(f.arch)}: no MPT model in this study."
    dm, mm = _value(f.dense, "clean_accuracy"), _value(f.mpt, "clean_accuracy")
    m_txt, d_txt = pcts(mm, dm)
    names = (
        f"<strong>MPT {amount_text(f.mpt['amount'])}</strong> (<code>{e(f.mpt['model_id'])}</code>, clean {m_txt}) "
        f"with <strong>dense</strong> (<code>{e(f.dense['model_id'])}</code>, clean {d_txt})"
    )
    pts = margin_text(margin * 100)
    if f.clean is None or not f.clean.ok():
        acc = "their paired accuracy difference is not in this store"
    elif f.comparable:
        acc = f"MPT minus dense {f.clean.points(margin)}, within ±{pts}: equally accurate"
    else:
        acc = (f"MPT minus dense {f.clean.points(margin)}, <strong>not within ±{pts}</strong>: the two are not shown "
               "to be equally accurate, so this is not the paper's comparison of equally accurate models")  # fmt: skip
    a, b = margin_spread(store, f.mpt["model_id"]), margin_spread(store, f.dense["model_id"])
    d = digits_for([*a.ends(), *b.ends()], 2)
    spread = f"mean |relative margin change| {a.r(d).replace('+', '')} vs {b.r(d).replace('+', '')}"
    if f.spread is not None and f.spread.ok():
        spread += f", MPT minus dense {f.spread.plain()}"
    if f.verdict == "less":
        claim = "<strong>MPT's margins move less under corruption</strong>" + (
            ", as in the paper." if f.comparable else ", but the models differ in accuracy."
        )
    elif f.verdict == "more":
        claim = "<strong>MPT's margins move more under corruption</strong>" + (
            ", the opposite of the paper." if f.comparable else ", but the models differ in accuracy."
        )
    elif f.verdict == "same":
        claim = "no difference in how their margins move (the paired interval includes 0)."
    else:
        claim = "their margins cannot be compared (no finite relative margin change)."
    return f"{e(f.arch)}: compares {names}; {acc}. {spread} (paired): {claim}" + _peers_text(store, f)


def _peers_text(store: Store, f: Fig10) -> str:
    """Whether MPT's margins move less than those of the other models pruned to its amount (paired): is it MPT, or
    pruning to that sparsity?"""
    paired = Paired(store)
    peers = [m for m in _models(store) if m["arch"] == f.arch and m["method"] not in ("dense", "mpt")
             and abs(m["amount"] - f.mpt["amount"]) < 1e-6]  # fmt: skip
    diffs = [(m, paired.get(f.mpt["model_id"], m["model_id"], "mc_abs_mean")) for m in peers]
    diffs = [(m, d) for m, d in diffs if d is not None and d.ok()]
    if not diffs:
        return ""
    listed = []
    for m, d in diffs:
        clean = paired.get(m["model_id"], f.mpt["model_id"], "clean_accuracy")
        acc = f" (its clean accuracy {clean.points()} against MPT's)" if clean is not None and clean.ok() else ""
        listed.append(f"{escape(method_label(m))} {d.plain()}{acc}")
    less = sum(d.below_zero() for _, d in diffs)
    return (
        f" Against the other models pruned to {amount_text(f.mpt['amount'])} (mean |relative margin change|, MPT "
        f"minus each, paired): {'; '.join(listed)}. MPT's margins move less than those of {less} of these "
        f"{len(diffs)}."
    )


def summary(
    store: Store, *, views: dict[str, str] | None = None, equivalence_points: float = EQUIVALENCE_POINTS
) -> str:
    """The home page's summary, Markdown/HTML, every number from the store and every comparison of two models
    paired. `equivalence_points`: the margin, in accuracy points, within which a pruned model keeps dense's accuracy
    and two models are equally accurate. `views` maps an architecture to the URL of its first view page."""
    margin = equivalence_points / 100
    paired = Paired(store)
    out = [_summary_intro(store, equivalence_points)]
    if not paired.present:
        out.append(
            "<em>This store has no paired.arrow (it was made before store schema 1.3), so no comparison of two "
            "models is claimed below; rerun <code>lotterysite precompute RECIPE</code>.</em>"
        )
    items = [
        _arch_verdict(store, arch, dense, margin, margin_text(equivalence_points), paired)
        for arch in store.archs
        if (dense := dense_of(store, arch)) is not None
    ]
    out.append('<ul class="ls-summary">' + "".join(f"<li>{t}</li>" for t in items) + "</ul>")
    out += _home_table1(store)
    verdicts = fig10_verdicts(store, margin, paired)
    if verdicts:
        out.append(
            "**Fig. 10: does an MPT model's margin move less under corruption than an equally accurate dense "
            "model's?** (The paper: yes, for VGG16 on CIFAR-10-C.)"
        )
        out.append('<ul class="ls-fig10">' + "".join(f"<li>{v}</li>" for v in verdicts) + "</ul>")
    return "\n\n".join(out)


def _summary_intro(store: Store, equivalence_points: float) -> str:
    """What every number on the home page is measured on, and how two models are compared."""
    n = n_eval(store)
    level = float((store.manifest.get("bootstrap") or {}).get("level", 0.95))
    pts = margin_text(equivalence_points)
    return (
        f"Every accuracy here is measured on **{n} evaluation images** (and each of their "
        f"{len(store.manifest.get('corruptions') or [])} corruptions × "
        f"{len(store.manifest.get('severities') or [])} "
        f"severities); brackets after an accuracy give its {level:.0%} bootstrap interval over those images. "
        "Two models are always scored on the same images, so every comparison is **paired**: a difference's "
        f"brackets are the {level:.0%} paired bootstrap interval (both models resampled on the same images), and "
        "a difference is claimed only where that interval excludes 0. A pruned model **keeps dense's accuracy** "
        f"when the paired interval of its drop lies below the equivalence margin of **{pts}**; two models are "
        f"equally accurate when the interval of their difference lies within ±{pts}."
    )


def _arch_verdict(store: Store, arch: str, dense: dict, margin: float, pts: str, paired: Paired) -> str:
    """One architecture's line of the home page: how far each method keeps dense's clean accuracy (paired), and
    whether any pruned model beats dense under corruption."""
    e = escape
    d_clean, d_corr = _value(dense, "clean_accuracy"), _value(dense, "corrupted_accuracy")
    head = f"<strong>{e(arch)}</strong> (dense: clean {d_clean.pct()}, corruption mean {d_corr.pct()}"
    cost = paired.get(dense["model_id"], dense["model_id"], "corrupted_vs_clean")
    if cost is not None and cost.ok():
        head += f"; corruption changes it by {cost.points()}, paired"
    head += ")"
    ranked = keeps_accuracy(store, arch, margin, paired)
    kept = [(label, a, m) for label, a, m in ranked if a is not None]

    def drop(m: dict) -> Diff | None:
        parent = parent_dense(store, m)
        diff = paired.get(m["model_id"], parent["model_id"], "clean_accuracy") if parent else None
        return None if diff is None else diff.negated()

    if kept:
        top = kept[0][1]
        leaders = [(label, m) for label, a, m in kept if a == top]
        names = " and ".join(
            f"<strong>{e(label)}</strong> ({_value(m, 'clean_accuracy').pct()}; drop {drop(m).points(margin)})"
            for label, m in leaders
        )
        rest = [f"{e(label)} {amount_text(a)}" for label, a, _ in kept[len(leaders) :]]
        never = [e(label) for label, a, _ in ranked if a is None]
        text = (f"{head}: {names} {'keep' if len(leaders) > 1 else 'keeps'} dense's clean accuracy (paired drop "
                f"below {pts}) to the highest sparsity, {amount_text(top)} of the weights pruned")  # fmt: skip
        if rest:
            text += f"; then {', '.join(rest)}"
        if never:
            text += f"; {', '.join(never)}: no amount shown to keep it"
        text += "."
    else:
        text = f"{head}: no pruned model is shown to keep dense's clean accuracy within {pts}"
        drops = [(m, drop(m)) for m in _models(store) if m["arch"] == arch and m["method"] != "dense"]
        drops = [(m, x) for m, x in drops if x is not None and x.ok()]
        if drops:
            m, x = min(drops, key=lambda t: t[1].hi)
            text += f" (closest: {e(_label(m))}, drop {x.points(margin)})"
        text += "."
    return text + _corruption_verdict(store, arch, paired)


def _corruption_verdict(store: Store, arch: str, paired: Paired) -> str:
    """' Under corruption, …': how many pruned models beat dense (paired interval above 0), and the largest gain."""
    wins, worse, total = corruption_wins(store, arch, paired)
    if not wins:
        return f" Under corruption, no pruned model beats dense ({worse} of {total} are below it, paired)."
    m, diff = wins[0]
    v_txt, d_txt = pcts(_value(m, "corrupted_accuracy"), _value(parent_dense(store, m), "corrupted_accuracy"))
    return (
        f" Under corruption, {len(wins)} of {total} pruned models beat dense (paired interval above 0); the "
        f"largest gain is {escape(method_label(m))} at {amount_text(m['amount'])}: {v_txt} vs {d_txt}, "
        f"{diff.points()}."
    )


def _home_table1(store: Store) -> list[str]:
    """Table 1 for the home page: the dense models' r next to the paper's values."""
    corr = {r["model_id"]: r for r in _corr_rows(store)}
    rows = []
    for arch in store.archs:
        dense = dense_of(store, arch)
        r = corr.get(dense["model_id"]) if dense else None
        if r is None:
            continue
        cells = "".join(
            f"<td>{_value(r, k).r()}<br><small>{compare_to_paper(k, _value(r, k))}</small></td>" for k, _ in METRICS
        )
        rows.append(f"<tr><td>{escape(arch)} (dense, this study)</td>{cells}</tr>")
    for name, *vals in PAPER_TABLE1:
        rows.append(f'<tr class="ls-paper"><td>{name} (paper, CIFAR-10)</td>{paper_cells(vals, 2)}</tr>')
    if not rows:
        return []
    return [
        "**Table 1: robustness against geometry.** Pearson r between a sample's robustness (its correct "
        "predictions over every corrupted version) and its clean angle to the true class, length and margin "
        "(with the classifier's bias, and without it as the paper's eq. 5 prints it).",
        '<table class="ls-table1 ls-home-table1"><thead><tr><th>model</th>'
        + metric_headers()
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>",  # fmt: skip
    ]


def fig10_verdicts(store: Store, margin: float = EQUIVALENCE_POINTS / 100, paired: Paired | None = None) -> list[str]:
    """Fig. 10's verdict per architecture (HTML), for the home page and the findings page."""
    paired = paired or Paired(store)
    return [fig10_text(store, f, margin) for f in (fig10_pair(store, a, margin, paired) for a in store.archs) if f]


def pruned_vs_dense(store: Store, margin: float = EQUIVALENCE_POINTS / 100) -> list[dict]:
    """Every pruned model against its dense parent, paired: clean and corruption-mean drops with intervals, and
    the verdict on clean accuracy: "keeps" (drop interval below `margin`), "below" (drop interval above `margin`:
    shown to lose more than the margin) or "inconclusive"."""
    paired = Paired(store)
    out = []
    for m in _models(store):
        dense = parent_dense(store, m) if m["method"] != "dense" else None
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


READOUT_LINES = 4  # lines of Fig. 10's paired readout: columns t0..t3 of fig10_paired.arrow


def pair_text(paired: Paired, a: str, b: str, margin: float) -> list[str]:
    """Short lines for Fig. 10's picker (a phone's width): model B minus model A, paired on the same images."""
    if a == b:
        return ["A and B are the same model."]
    clean = paired.get(b, a, "clean_accuracy")
    spread = paired.get(b, a, "mc_abs_mean")
    if clean is None or not clean.ok():
        return ["No paired comparison of these two models", "in this store."]
    same = "equally accurate" if clean.within(margin) else "not shown equally accurate"
    lines = [f"clean accuracy {clean.points(margin)}", f"{same} (margin ±{margin_text(margin * 100)})"]
    if spread is not None and spread.ok():
        moves = "less" if spread.below_zero() else "more" if spread.above_zero() else "neither more nor less"
        lines += [f"mean |rel. margin change| {spread.plain()}", f"B's margins move {moves}"]
    return lines


def pair_texts(store: Store, margin: float = EQUIVALENCE_POINTS / 100) -> bytes:
    """Fig. 10 picker's paired readout, one row per ordered pair of models: a, b and the lines t0..t3 ("" where
    there are fewer). Grows with the square of the models: about 110 KB for 25."""
    import pyarrow as pa

    from .data import arrow_bytes

    paired = Paired(store)
    ids = [m["model_id"] for m in _models(store)]
    names = [f"t{i}" for i in range(READOUT_LINES)]
    cols: dict[str, list] = {k: [] for k in ("a", "b", *names)}
    for a in ids:
        for b in ids:
            lines = pair_text(paired, a, b, margin)
            for k, v in zip(("a", "b", *names), (a, b, *lines, *[""] * (READOUT_LINES - len(lines))), strict=True):
                cols[k].append(v)
    return arrow_bytes(pa.table(cols, schema=pa.schema([(k, pa.string()) for k in cols])))


def method_labels(store: Store) -> list[str]:
    """The pruning methods' labels in the store's order (retrained copies after their method)."""
    rows = sorted((m for m in _models(store) if m["method"] != "dense"), key=lambda m: (m["method"], m["retrained"]))
    return list(dict.fromkeys(method_label(m) for m in rows))


def headline_table(store: Store, views: dict[str, str]) -> bytes:
    """The headline chart's rows: every model on clean data and on the corruption mean, dense repeated at 0 for every
    method so each line starts there; `views` maps an architecture to the URL of the view that opens a model."""
    from urllib.parse import quote

    import pyarrow as pa

    from .data import arrow_bytes

    n = n_eval(store)
    cols = {
        k: []
        for k in ("model_id", "arch", "method", "amount", "data", "panel", "accuracy", "lo", "hi", "seed", "n", "href")
    }
    models = _models(store)
    labels = method_labels(store)

    def add(m: dict, label: str, amount: float):
        for data, name in (("clean", "clean_accuracy"), ("corruption mean", "corrupted_accuracy")):
            v = _value(m, name)
            if not math.isfinite(v.v):
                continue
            for k, x in (
                ("model_id", m["model_id"]),
                ("arch", m["arch"]),
                ("method", label),
                ("amount", amount),
                ("data", data),
                ("panel", f"{m['arch']} · {data}"),
                ("accuracy", v.v),
                ("lo", v.lo),
                ("hi", v.hi),
                ("seed", m["seed"]),
                ("n", n),
                ("href", f"{views.get(m['arch'], '')}#ref={quote(m['model_id'], safe='')}"),
            ):
                cols[k].append(x)

    for m in models:
        if m["method"] == "dense":
            present = {method_label(p) for p in models if p["arch"] == m["arch"] and p["method"] != "dense"}
            for label in labels:
                if label in present:
                    add(m, label, 0.0)
        else:
            add(m, method_label(m), float(m["amount"]))
    schema = pa.schema([("model_id", pa.string()), ("arch", pa.string()), ("method", pa.string()),
                        ("amount", pa.float32()), ("data", pa.string()), ("panel", pa.string()),
                        ("accuracy", pa.float32()),
                        ("lo", pa.float32()), ("hi", pa.float32()), ("seed", pa.int32()), ("n", pa.int32()),
                        ("href", pa.string())])  # fmt: skip
    return arrow_bytes(pa.table(cols, schema=schema))


def model_options(store: Store) -> list[tuple[str, str]]:
    """(model_id, label) of every model for the Fig. 10 selects, by architecture, dense first."""
    out = []
    for arch in store.archs:
        for m in store.models_of(arch):
            amount = "dense" if m["method"] == "dense" else f"{method_label(m)} {amount_text(m['amount'])}"
            out.append((m["model_id"], f"{arch} · {amount} — clean {m['clean_accuracy']:.1%}"))
    return out


def default_pair(store: Store, margin: float = EQUIVALENCE_POINTS / 100) -> tuple[str, str]:
    """Fig. 10's defaults: a dense model and the MPT model closest to it in clean accuracy, preferring the
    architecture where the two are equally accurate (paired difference within ± `margin`), then the closest pair."""
    paired = Paired(store)
    pairs = [f for f in (fig10_pair(store, a, margin, paired) for a in store.archs) if f is not None and f.mpt]
    if pairs:
        f = min(pairs, key=lambda f: (not f.comparable, abs(f.mpt["clean_accuracy"] - f.dense["clean_accuracy"])))
        return f.dense["model_id"], f.mpt["model_id"]
    ids = [m for m, _ in model_options(store)]
    return (ids[0], ids[1] if len(ids) > 1 else ids[0]) if ids else ("", "")


def curse_caption(store: Store) -> str:
    """Fig. 3's caption, from curse.arrow: what the random vectors and each trained study reach at their largest
    dimension. The paper's point (§5.4) is that random angles concentrate at 90°; trained models need not follow,
    so the text says where each one ends rather than claiming that all approach 90°."""
    t = store.tables["curse.arrow"].to_pydict()
    last: dict[str, tuple[int, float, float]] = {}
    for study, d, m, s in zip(t["study"], t["dimension"], t["angle_mean"], t["angle_std"], strict=True):
        if math.isfinite(m) and (study not in last or d > last[study][0]):
            last[study] = (int(d), float(m), float(s))

    def at(study: str) -> str:
        d, m, s = last[study]
        return f"{m:.1f}° ± {s:.1f}° at {d}"

    parts = []
    if "random" in last:
        parts.append(f"Random vectors concentrate at 90° (dashed) as the dimension grows: {at('random')} dimensions.")
    trained = [s for s in last if s != "random"]
    if trained:
        parts.append(
            "The models' samples, angle to their class direction at the widest feature layer: "
            + "; ".join(f"{escape(s)} {at(s)}" for s in trained)
            + "."
        )
    return " ".join(parts)
