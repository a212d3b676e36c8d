"""What the store says, in words: the home page's summary, Table 1's cells and the Fig. 10 comparison, written from
the view model (`model.build_view_model`, where every number and every verdict is computed); this module only
formats them. How decimals are chosen is formatting too: every two distinct ends of an interval print distinct.
"""

from __future__ import annotations

import math
from html import escape

from .data import method_label
from .model import (
    METRICS,
    PAPER_COLUMN,
    PAPER_TABLE1,
    ArchVerdict,
    Diff,
    Fig10,
    Readout,
    Value,
    ViewModel,
    value_of,
)

HEADERS = {"rc_angle": "rc-angle", "rc_length": "rc-length", "rc_margin": "rc-margin<br><small>with bias</small>",
           "rc_margin_eq5": "rc-margin<br><small>eq. 5, no bias</small>"}  # fmt: skip


def metric_headers() -> str:
    """The <th> cells of Table 1's metrics, in METRICS order."""
    return "".join(f"<th>{HEADERS[k]}</th>" for k, _ in METRICS)


def paper_cells(values, digits: int) -> str:
    """The <td> cells of one PAPER_TABLE1 row under METRICS' columns: its margin under eq. 5's, and a dash under
    the margin with the bias, which the paper does not report."""
    return "".join(
        f"<td>{values[PAPER_COLUMN[k]]:+.{digits}f}</td>" if k in PAPER_COLUMN else "<td>—</td>" for k, _ in METRICS
    )


def digits_for(values, start: int, cap: int = 6) -> int:
    """The fewest decimals (at least `start`, at most `cap`) at which every two distinct `values` print distinct:
    intervals that do not overlap never look as if they touched ([0.3498, 0.3502] is not printed [0.35, 0.35])."""
    # Equal to 6 significant digits is equal: a float32 0.01 (0.0099999998) is the margin 1 point, not beside it.
    vals = {float(f"{x:.6g}") for x in values if x is not None and math.isfinite(x)}
    d = start
    while d < cap and len({f"{x:.{d}f}" for x in vals}) < len(vals):
        d += 1
    return d


def pct(value: Value, digits: int = 1) -> str:
    """An accuracy with its interval: "80.0% [76.0%, 84.0%]"."""
    d = digits
    return f"{value.v:.{d}%} [{value.lo:.{d}%}, {value.hi:.{d}%}]" if value.ok() else "n/a"


def r_text(value: Value, digits: int = 2) -> str:
    """A correlation with its interval: "+0.50 [+0.45, +0.55]"."""
    d = digits
    return f"{value.v:+.{d}f} [{value.lo:+.{d}f}, {value.hi:+.{d}f}]" if value.ok() else "n/a"


def pcts(*values: Value) -> list[str]:
    """Accuracies printed together, with one number of decimals at which their distinct ends print distinct."""
    d = digits_for([x * 100 for v in values for x in v.ends()], 1)
    return [pct(v, d) for v in values]


def points(diff: Diff, margin: float | None = None, start: int = 1, unit: str = " points") -> str:
    """A difference in points, "-2.0 points [-3.5, -0.8]", its ends distinct from each other, 0 and ± margin."""
    if not diff.ok():
        return "n/a"
    ref = [0.0] + ([margin * 100, -margin * 100] if margin is not None else [])
    v, lo, hi = (x * 100 for x in (diff.v, diff.lo, diff.hi))
    d = digits_for([v, lo, hi] + ref, start)
    return f"{signed(v, d)}{unit} [{signed(lo, d)}, {signed(hi, d)}]"


def plain(diff: Diff, start: int = 2) -> str:
    """A difference of plain numbers (Fig. 10's spread): "-0.04 [-0.07, -0.01]"."""
    if not diff.ok():
        return "n/a"
    d = digits_for([diff.v, diff.lo, diff.hi, 0.0], start)
    return f"{signed(diff.v, d)} [{signed(diff.lo, d)}, {signed(diff.hi, d)}]"


def signed(x: float, digits: int) -> str:
    """+1.5, -1.5, and 0.0 for zero (never "-0.0": `digits_for` prints anything distinct from 0 as distinct)."""
    text = f"{x:+.{digits}f}"
    return text[1:] if float(text) == 0 else text


def amount_text(amount: float) -> str:
    return f"{amount * 100:g} %"


def margin_text(points: float) -> str:
    return f"{points:g} point" + ("" if points == 1 else "s")


def _label(m: dict) -> str:
    return "dense" if m["method"] == "dense" else f"{method_label(m)} {amount_text(m['amount'])}"


def fig10_text(f: Fig10, margin: float) -> str:
    """Fig. 10's verdict for one architecture: which two models, whether they are equally accurate, how their
    margins compare — every comparison paired."""
    e = escape
    if f.mpt is None:
        return f"{e(f.arch)}: no MPT model in this study."
    m_txt, d_txt = pcts(f.mpt_clean, f.dense_clean)
    names = (
        f"<strong>MPT {amount_text(f.mpt['amount'])}</strong> (<code>{e(f.mpt['model_id'])}</code>, clean {m_txt}) "
        f"with <strong>dense</strong> (<code>{e(f.dense['model_id'])}</code>, clean {d_txt})"
    )
    pts = margin_text(margin * 100)
    if f.clean is None or not f.clean.ok():
        acc = "their paired accuracy difference is not in this store"
    elif f.comparable:
        acc = f"MPT minus dense {points(f.clean, margin)}, within ±{pts}: equally accurate"
    else:
        acc = (f"MPT minus dense {points(f.clean, margin)}, <strong>not within ±{pts}</strong>: the two are not "
               "shown to be equally accurate, so this is not the paper's comparison of equally accurate "
               "models")  # fmt: skip
    a, b = f.mpt_spread, f.dense_spread
    d = digits_for([*a.ends(), *b.ends()], 2)
    spread = f"mean |relative margin change| {r_text(a, d).replace('+', '')} vs {r_text(b, d).replace('+', '')}"
    if f.spread is not None and f.spread.ok():
        spread += f", MPT minus dense {plain(f.spread)}"
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
    return f"{e(f.arch)}: compares {names}; {acc}. {spread} (paired): {claim}" + _peers_text(f)


def _peers_text(f: Fig10) -> str:
    """Whether MPT's margins move less than those of the other models pruned to its amount (paired): is it MPT, or
    pruning to that sparsity?"""
    if not f.peers:
        return ""
    listed = []
    for p in f.peers:
        acc = f" (its clean accuracy {points(p.clean)} against MPT's)" if p.clean is not None and p.clean.ok() else ""
        listed.append(f"{escape(method_label(p.model))} {plain(p.spread)}{acc}")
    return (
        f" Against the other models pruned to {amount_text(f.mpt['amount'])} (mean |relative margin change|, MPT "
        f"minus each, paired): {'; '.join(listed)}. MPT's margins move less than those of {f.peers_less} of these "
        f"{len(f.peers)}."
    )


def summary(view: ViewModel) -> str:
    """The home page's summary, Markdown/HTML, every number from the view model and every comparison of two models
    paired, within the model's equivalence margin."""
    out = [_summary_intro(view)]
    if not view.paired_present:
        out.append(
            "<em>This store has no paired.arrow (it was made before store schema 1.3), so no comparison of two "
            "models is claimed below; rerun <code>lotterysite precompute RECIPE</code>.</em>"
        )
    items = [_arch_verdict(v, view.margin, margin_text(view.equivalence_points)) for v in view.verdicts]
    out.append('<ul class="ls-summary">' + "".join(f"<li>{t}</li>" for t in items) + "</ul>")
    out += _home_table1(view)
    verdicts = fig10_verdicts(view)
    if verdicts:
        out.append(
            "**Fig. 10: does an MPT model's margin move less under corruption than an equally accurate dense "
            "model's?** (The paper: yes, for VGG16 on CIFAR-10-C.)"
        )
        out.append('<ul class="ls-fig10">' + "".join(f"<li>{v}</li>" for v in verdicts) + "</ul>")
    return "\n\n".join(out)


def _summary_intro(view: ViewModel) -> str:
    """What every number on the home page is measured on, and how two models are compared."""
    manifest = view.store.manifest
    level = float((manifest.get("bootstrap") or {}).get("level", 0.95))
    pts = margin_text(view.equivalence_points)
    return (
        f"Every accuracy here is measured on **{view.n_eval} evaluation images** (and each of their "
        f"{len(manifest.get('corruptions') or [])} corruptions × "
        f"{len(manifest.get('severities') or [])} "
        f"severities); brackets after an accuracy give its {level:.0%} bootstrap interval over those images. "
        "Two models are always scored on the same images, so every comparison is **paired**: a difference's "
        f"brackets are the {level:.0%} paired bootstrap interval (both models resampled on the same images), and "
        "a difference is claimed only where that interval excludes 0. A pruned model **keeps dense's accuracy** "
        f"when the paired interval of its drop lies below the equivalence margin of **{pts}**; two models are "
        f"equally accurate when the interval of their difference lies within ±{pts}."
    )


def _arch_verdict(v: ArchVerdict, margin: float, pts: str) -> str:
    """One architecture's line of the home page: how far each method keeps dense's clean accuracy (paired), and
    whether any pruned model beats dense under corruption."""
    e = escape
    head = f"<strong>{e(v.arch)}</strong> (dense: clean {pct(v.clean)}, corruption mean {pct(v.corrupted)}"
    if v.corruption_cost is not None:
        head += f"; corruption changes it by {points(v.corruption_cost)}, paired"
    head += ")"
    kept = [k for k in v.ranked if k.amount is not None]
    if kept:
        top = kept[0].amount
        leaders = [k for k in kept if k.amount == top]
        names = " and ".join(
            f"<strong>{e(k.label)}</strong> ({pct(k.clean)}; drop {points(k.drop, margin)})" for k in leaders
        )
        rest = [f"{e(k.label)} {amount_text(k.amount)}" for k in kept[len(leaders) :]]
        never = [e(k.label) for k in v.ranked if k.amount is None]
        text = (f"{head}: {names} {'keep' if len(leaders) > 1 else 'keeps'} dense's clean accuracy (paired drop "
                f"below {pts}) to the highest sparsity, {amount_text(top)} of the weights pruned")  # fmt: skip
        if rest:
            text += f"; then {', '.join(rest)}"
        if never:
            text += f"; {', '.join(never)}: no amount shown to keep it"
        text += "."
    else:
        text = f"{head}: no pruned model is shown to keep dense's clean accuracy within {pts}"
        if v.closest is not None:
            m, x = v.closest
            text += f" (closest: {e(_label(m))}, drop {points(x, margin)})"
        text += "."
    return text + _corruption_verdict(v)


def _corruption_verdict(v: ArchVerdict) -> str:
    """' Under corruption, …': how many pruned models beat dense (paired interval above 0), and the largest gain."""
    if not v.wins:
        return f" Under corruption, no pruned model beats dense ({v.worse} of {v.total} are below it, paired)."
    m, diff = v.wins[0]
    v_txt, d_txt = pcts(*v.best_gain)
    return (
        f" Under corruption, {len(v.wins)} of {v.total} pruned models beat dense (paired interval above 0); the "
        f"largest gain is {escape(method_label(m))} at {amount_text(m['amount'])}: {v_txt} vs {d_txt}, "
        f"{points(diff)}."
    )


def _home_table1(view: ViewModel) -> list[str]:
    """Table 1 for the home page: the dense models' r next to the paper's values."""
    rows = []
    for arch, r in view.home_table1:
        cells = "".join(
            f"<td>{r_text(value_of(r, k))}<br><small>{view.paper_verdicts[arch, k]}</small></td>" for k, _ in METRICS
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


def fig10_verdicts(view: ViewModel) -> list[str]:
    """Fig. 10's verdict per architecture (HTML), for the home page and the findings page."""
    return [fig10_text(f, view.margin) for f in view.fig10]


READOUT_LINES = 4  # lines of Fig. 10's paired readout: columns t0..t3 of fig10_paired.arrow


def pair_text(r: Readout, margin: float) -> list[str]:
    """Short lines for Fig. 10's picker (a phone's width): model B minus model A, paired on the same images."""
    if r.a == r.b:
        return ["A and B are the same model."]
    if r.clean is None or not r.clean.ok():
        return ["No paired comparison of these two models", "in this store."]
    same = "equally accurate" if r.equal else "not shown equally accurate"
    lines = [f"clean accuracy {points(r.clean, margin)}", f"{same} (margin ±{margin_text(margin * 100)})"]
    if r.moves:
        lines += [f"mean |rel. margin change| {plain(r.spread)}", f"B's margins move {r.moves}"]
    return lines


def pair_texts(view: ViewModel) -> bytes:
    """Fig. 10 picker's paired readout, one row per ordered pair of models: a, b and the lines t0..t3 ("" where
    there are fewer). Grows with the square of the models: about 110 KB for 25."""
    import pyarrow as pa

    from .data import arrow_bytes

    names = [f"t{i}" for i in range(READOUT_LINES)]
    cols: dict[str, list] = {k: [] for k in ("a", "b", *names)}
    for r in view.readouts:
        lines = pair_text(r, view.margin)
        for k, v in zip(("a", "b", *names), (r.a, r.b, *lines, *[""] * (READOUT_LINES - len(lines))), strict=True):
            cols[k].append(v)
    return arrow_bytes(pa.table(cols, schema=pa.schema([(k, pa.string()) for k in cols])))


def headline_table(view: ViewModel, views: dict[str, str]) -> bytes:
    """The headline chart's file: the model's headline rows with each row's link to the view that opens its model
    (`views` maps an architecture to that view's URL)."""
    from .data import arrow_bytes

    return arrow_bytes(with_links(view.headline, views))


def with_links(table, views: dict[str, str]):
    """`table` with an `href` column last: the view of the row's architecture, opened on the row's model."""
    from urllib.parse import quote

    import pyarrow as pa

    hrefs = [f"{views.get(a, '')}#ref={quote(m, safe='')}"
             for a, m in zip(table["arch"].to_pylist(), table["model_id"].to_pylist(), strict=True)]  # fmt: skip
    return table.append_column(pa.field("href", pa.string()), pa.array(hrefs, pa.string()))


def model_options(view: ViewModel) -> list[tuple[str, str]]:
    """(model_id, label) of every model for the Fig. 10 selects, by architecture, dense first."""
    out = []
    for arch in view.store.archs:
        for m in view.store.models_of(arch):
            amount = "dense" if m["method"] == "dense" else f"{method_label(m)} {amount_text(m['amount'])}"
            out.append((m["model_id"], f"{arch} · {amount} — clean {m['clean_accuracy']:.1%}"))
    return out


def curse_caption(view: ViewModel) -> str:
    """Fig. 3's caption: what the random vectors and each trained study reach at their largest dimension. The
    paper's point (§5.4) is that random angles concentrate at 90°; trained models need not follow, so the text says
    where each one ends rather than claiming that all approach 90°."""
    last = view.curse

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
