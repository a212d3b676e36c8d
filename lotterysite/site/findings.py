"""What the store says, in numbers and in words: the home page's summary, Table 1 by architecture x method and the
Fig. 10 comparison, computed from the store's tables (never hard-coded), every claim checked against intervals.

Two numbers differ only where their bootstrap intervals (store columns `*_lo`, `*_hi`) do not overlap; where they
overlap, the text says the difference is within the uncertainty rather than naming a winner.
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
METRICS = (("rc_angle", "angle"), ("rc_length", "length"), ("rc_margin", "margin"))


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

    def pct(self) -> str:
        return f"{self.v:.1%} [{self.lo:.1%}, {self.hi:.1%}]" if self.ok() else "n/a"

    def r(self) -> str:
        return f"{self.v:+.2f} [{self.lo:+.2f}, {self.hi:+.2f}]" if self.ok() else "n/a"


def _value(row: dict, name: str) -> Value:
    def get(k):
        return float("nan") if row.get(k) is None else float(row[k])

    return Value(get(name), get(f"{name}_lo"), get(f"{name}_hi"))


def amount_text(amount: float) -> str:
    return f"{amount * 100:g} %"


def points(a: Value, b: Value) -> str:
    return f"{(a.v - b.v) * 100:+.1f} points"


def n_eval(store: Store) -> int:
    return int(store.manifest.get("dataset", {}).get("n_eval") or 0)


def _models(store: Store) -> list[dict]:
    return store.models.to_pylist()


def dense_of(store: Store, arch: str) -> dict | None:
    dense = [m for m in _models(store) if m["arch"] == arch and m["method"] == "dense"]
    return dense[0] if dense else None


def keeps_accuracy(store: Store, arch: str) -> list[tuple[str, float | None, dict | None]]:
    """Per method (retrained copies separate): the highest amount whose clean accuracy is not below dense's beyond
    the intervals, and that model; methods ranked by it (None: no amount keeps it)."""
    dense = dense_of(store, arch)
    if dense is None:
        return []
    d = _value(dense, "clean_accuracy")
    best: dict[str, tuple[float | None, dict | None]] = {}
    for m in _models(store):
        if m["arch"] != arch or m["method"] == "dense":
            continue
        label = method_label(m)
        best.setdefault(label, (None, None))
        if not d.above(_value(m, "clean_accuracy")) and (best[label][0] is None or m["amount"] > best[label][0]):
            best[label] = (m["amount"], m)
    return sorted(((k, a, m) for k, (a, m) in best.items()), key=lambda t: -(t[1] if t[1] is not None else -1))


def corruption_wins(store: Store, arch: str) -> tuple[list[tuple[dict, Value, Value]], int, int]:
    """Pruned models whose corruption-mean accuracy is above dense's beyond the intervals (largest gain first),
    the number clearly below dense, and the number of pruned models."""
    dense = dense_of(store, arch)
    if dense is None:
        return [], 0, 0
    d = _value(dense, "corrupted_accuracy")
    wins, worse, total = [], 0, 0
    for m in _models(store):
        if m["arch"] != arch or m["method"] == "dense":
            continue
        total += 1
        v = _value(m, "corrupted_accuracy")
        if v.above(d):
            wins.append((m, v, d))
        elif d.above(v):
            worse += 1
    return sorted(wins, key=lambda t: -(t[1].v - t[2].v)), worse, total


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
    i = [m for m, _ in METRICS].index(k) + 1
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
    comparable: bool  # clean accuracy intervals overlap: the paper's "same accuracy" condition
    verdict: str  # "less" (MPT margins move less, as in the paper), "more", "same", or "" (no comparison)


def fig10_pair(store: Store, arch: str) -> Fig10 | None:
    """The dense model and the MPT model (not retrained) closest to it in clean accuracy, and how their relative
    margin changes compare (mean |change|, intervals)."""
    dense = dense_of(store, arch)
    if dense is None:
        return None
    mpts = [m for m in _models(store) if m["arch"] == arch and m["method"] == "mpt" and not m["retrained"]]
    if not mpts:
        return Fig10(arch, dense, None, False, "")
    mpt = min(mpts, key=lambda m: (abs(m["clean_accuracy"] - dense["clean_accuracy"]), -m["amount"]))
    comparable = _value(mpt, "clean_accuracy").overlaps(_value(dense, "clean_accuracy"))
    corr = {r["model_id"]: r for r in _corr_rows(store)}
    if dense["model_id"] not in corr or mpt["model_id"] not in corr:
        return Fig10(arch, dense, mpt, comparable, "")
    a, b = _value(corr[mpt["model_id"]], "mc_abs_mean"), _value(corr[dense["model_id"]], "mc_abs_mean")
    verdict = "less" if b.above(a) else "more" if a.above(b) else "same"
    return Fig10(arch, dense, mpt, comparable, verdict)


def margin_spread(store: Store, model_id: str) -> Value:
    for r in _corr_rows(store):
        if r["model_id"] == model_id:
            return _value(r, "mc_abs_mean")
    return Value(float("nan"), float("nan"), float("nan"))


def summary(store: Store, *, views: dict[str, str] | None = None) -> str:
    """The home page's summary, Markdown/HTML, every number from the store and every claim checked against the
    intervals. `views` maps an architecture to the URL of its first view page."""
    n = n_eval(store)
    boot = store.manifest.get("bootstrap") or {}
    level = float(boot.get("level", 0.95))
    e = escape
    out = [
        (
            f"Every accuracy here is measured on **{n} evaluation images** (and each of their "
            f"{len(store.manifest.get('corruptions') or [])} corruptions × "
            f"{len(store.manifest.get('severities') or [])} "
            f"severities); brackets give the {level:.0%} bootstrap interval over those images. A difference is "
            "claimed only where two intervals do not overlap."
        )
    ]
    items = []
    for arch in store.archs:
        dense = dense_of(store, arch)
        if dense is None:
            continue
        d_clean, d_corr = _value(dense, "clean_accuracy"), _value(dense, "corrupted_accuracy")
        ranked = keeps_accuracy(store, arch)
        kept = [(label, a, m) for label, a, m in ranked if a is not None]
        head = f"<strong>{e(arch)}</strong> (dense: clean {d_clean.pct()}, corruption mean {d_corr.pct()})"
        if kept:
            top = kept[0][1]
            leaders = [(label, m) for label, a, m in kept if a == top]
            names = " and ".join(
                f"<strong>{e(label)}</strong> ({_value(m, 'clean_accuracy').pct()})" for label, m in leaders
            )
            rest = [f"{e(label)} {amount_text(a)}" for label, a, _ in kept[len(leaders) :]]
            never = [e(label) for label, a, _ in ranked if a is None]
            text = (f"{head}: {names} {'keep' if len(leaders) > 1 else 'keeps'} dense's clean accuracy (within the "
                    f"intervals) to the highest sparsity, {amount_text(top)} of the weights pruned")  # fmt: skip
            if rest:
                text += f"; then {', '.join(rest)}"
            if never:
                text += f"; {', '.join(never)} below dense at every amount"
            text += "."
        else:
            text = f"{head}: every pruned model is below dense's clean accuracy."
        wins, worse, total = corruption_wins(store, arch)
        if wins:
            m, v, d = wins[0]
            text += (
                f" Under corruption, {len(wins)} of {total} pruned models beat dense beyond the intervals; the largest "
                f"gain is {e(method_label(m))} at {amount_text(m['amount'])}: {v.pct()} vs {d.pct()}, "
                f"{points(v, d)}."
            )
        else:
            text += (
                " Under corruption, no pruned model beats dense beyond the intervals "
                f"({worse} of {total} are below it)."
            )
        items.append(text)
    out.append('<ul class="ls-summary">' + "".join(f"<li>{t}</li>" for t in items) + "</ul>")

    # Table 1, the dense models, next to the paper's values.
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
        rows.append(f"<tr><td>{e(arch)} (dense, this study)</td>{cells}</tr>")
    for name, *vals in PAPER_TABLE1:
        rows.append(f"<tr class=\"ls-paper\"><td>{name} (paper, CIFAR-10)</td>"
                    + "".join(f"<td>{v:+.2f}</td>" for v in vals) + "</tr>")  # fmt: skip
    if rows:
        out.append(
            "**Table 1: robustness against geometry.** Pearson r between a sample's robustness (its correct "
            "predictions over every corrupted version) and its clean angle to the true class, length and margin."
        )
        out.append(
            '<table class="ls-table1 ls-home-table1"><thead><tr><th>model</th><th>rc-angle</th><th>rc-length</th>'
            "<th>rc-margin</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
        )

    # Fig. 10
    verdicts = []
    for arch in store.archs:
        f = fig10_pair(store, arch)
        if f is None:
            continue
        if f.mpt is None:
            verdicts.append(f"{e(arch)}: no MPT model in this study.")
            continue
        dm, mm = _value(f.dense, "clean_accuracy"), _value(f.mpt, "clean_accuracy")
        a, b = margin_spread(store, f.mpt["model_id"]), margin_spread(store, f.dense["model_id"])
        pair = (f"MPT {amount_text(f.mpt['amount'])} (clean {mm.pct()}) against dense ({dm.pct()}); mean |relative "
                f"margin change| {a.r().replace('+', '')} vs {b.r().replace('+', '')}")  # fmt: skip
        if not f.comparable:
            verdicts.append(
                f"{e(arch)}: the closest MPT model, {pair}, is not as accurate as dense, so the paper's comparison of "
                "equally accurate models cannot be made."
            )
        elif f.verdict == "less":
            verdicts.append(
                f"{e(arch)}: {pair}: <strong>MPT's margins move less under corruption</strong>, as in the paper."
            )
        elif f.verdict == "more":
            verdicts.append(
                f"{e(arch)}: {pair}: <strong>MPT's margins move more under corruption</strong>, "
                "the opposite of the paper."
            )
        else:
            verdicts.append(f"{e(arch)}: {pair}: no difference beyond the intervals.")
    if verdicts:
        out.append(
            "**Fig. 10: does an MPT model's margin move less under corruption than an equally accurate dense "
            "model's?** (The paper: yes, for VGG16 on CIFAR-10-C.)"
        )
        out.append('<ul class="ls-fig10">' + "".join(f"<li>{v}</li>" for v in verdicts) + "</ul>")
    return "\n\n".join(out)


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


def default_pair(store: Store) -> tuple[str, str]:
    """Fig. 10's defaults: a dense model and the MPT model closest to it in clean accuracy, preferring the
    architecture where the two are equally accurate (intervals overlap), then the closest pair."""
    pairs = [f for f in (fig10_pair(store, a) for a in store.archs) if f is not None and f.mpt is not None]
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
