"""Aggregates over the full evaluation set, pure numpy: accuracy tables, robustness (eq. 6-7), Table 1
correlations, relative margin change (Fig. 10), pruning-identified exemplars (the shipped-sample draw is
lotterysite.store.sampling's).

Every accuracy and correlation comes with a bootstrap interval over the evaluation samples (`Bootstrap`): the
samples are resampled with replacement, the statistic recomputed on every resample, and the interval is the
central `level` share of those values (percentile bootstrap). One seeded set of resamples serves every model, so
two models' intervals come from the same resampled evaluation sets, and the difference of two models on each
resample gives the paired interval of their difference (`paired_rows`: both scored on the same images)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

# How far two stores of one recipe may differ when their workers ran with other CPU thread counts (Ray's one-CPU
# tasks, a local run with all cores): float32 sums are reduced in another order, so the last bits of every feature,
# and so of angles, lengths and margins, differ; predictions and accuracies agree. Per column (fnmatch pattern) an
# (absolute, relative) pair: a and b agree when |a - b| <= absolute + relative * |a|. Relative margin changes (and
# their densities) divide by the clean margin and may differ more for samples whose clean margin is near zero.
THREAD_TOLERANCE = {
    "correlations.arrow": {"rc_*": (1e-5, 0.0), "mc_abs_mean*": (0.0, 1e-3)},
    "geometry/*.arrow": {"angle*": (1e-3, 0.0), "length": (1e-6, 1e-5), "margin*": (1e-5, 1e-5),
                         "prob_true": (1e-5, 0.0), "loss": (1e-5, 1e-5)},
}  # fmt: skip


@dataclass
class Confusion:
    """Per true class c and class j, over every variant of one model: how often j was predicted for class-c samples
    (`count`, C x C; the diagonal counts correct predictions), the sum of the angles of class-c samples to class
    j's direction (`angle_sum`, C x C, degenerate samples left out) and how many sample-variants each class's sums
    are over (`angle_n`, C). What `confused_classes` needs of the V x N x C angles, accumulated batch by batch
    during evaluation: 16 MB at 1000 classes however many samples and variants (the angles themselves would be
    19 GB for ImageNet's 50 000 images x 96 variants)."""

    count: np.ndarray  # C x C int64
    angle_sum: np.ndarray  # C x C float64
    angle_n: np.ndarray  # C int64

    @classmethod
    def empty(cls, num_classes: int) -> Confusion:
        C = num_classes
        return cls(np.zeros((C, C), np.int64), np.zeros((C, C), np.float64), np.zeros(C, np.int64))

    def add(self, labels: np.ndarray, pred: np.ndarray, angle: np.ndarray) -> None:
        """Count one batch: labels and predictions (n), angles (n x C, NaN rows for degenerate samples)."""
        labels = np.asarray(labels, np.int64)
        np.add.at(self.count, (labels, np.asarray(pred, np.int64)), 1)
        ok = ~np.isnan(angle).any(axis=1)
        # Rows sorted by class: one reduceat sums each present class's rows (np.add.at on rows is ~10x slower).
        order = np.argsort(labels[ok], kind="stable")
        lab, rows = labels[ok][order], np.asarray(angle[ok], np.float64)[order]
        if len(lab):
            present, starts = np.unique(lab, return_index=True)
            self.angle_sum[present] += np.add.reduceat(rows, starts, axis=0)
            self.angle_n[present] += np.diff(np.append(starts, len(lab)))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"confusion_count": self.count, "confusion_angle_sum": self.angle_sum, "confusion_angle_n": self.angle_n}


@dataclass
class ModelResults:
    """Every evaluation-set sample of one model on every variant (index 0 is clean).

    The angle to every class is kept only for the variants in `angle_variants` (the clean set and the shipped
    severities: the per-sample rows the store ships), every sample; everything else the aggregates need of the
    angles is the angle to the true class (`angle_true`) and the per-class sums in `confusion`. So the results
    grow with V x N, not V x N x C."""

    variants: list[tuple[str, int]]  # [("clean", 0), (corruption, severity), ...]
    labels: np.ndarray  # N int
    pred: np.ndarray  # V x N int16
    margin: np.ndarray  # V x N float32
    margin_eq5: np.ndarray  # V x N float32, the margin without the bias (the paper's eq. 5 as printed)
    length: np.ndarray  # V x N float32
    angle_true: np.ndarray  # V x N float32, angle to the sample's own class (NaN when degenerate)
    prob_true: np.ndarray  # V x N float32
    loss: np.ndarray  # V x N float32
    degenerate: np.ndarray  # V x N bool
    angle: np.ndarray  # K x N x C float32 (may be a read-only memmap): the variants in `angle_variants`
    angle_variants: list[int]  # which variants (indices into `variants`) `angle` holds, in order
    confusion: Confusion

    SMALL = ("labels", "pred", "margin", "margin_eq5", "length", "angle_true", "prob_true", "loss", "degenerate")

    @classmethod
    def from_angles(cls, variants, labels, pred, margin, length, angle, prob_true, loss, degenerate,
                    keep: list[int] | None = None, *, margin_eq5) -> ModelResults:  # fmt: skip
        """Results from the full V x N x C angles (small sets, tests): every variant's angles kept unless `keep`."""
        labels = np.asarray(labels, np.int64)
        angle = np.asarray(angle, np.float32)
        keep = list(range(len(variants))) if keep is None else list(keep)
        confusion = Confusion.empty(angle.shape[2])
        for v in range(len(variants)):
            confusion.add(labels, pred[v], angle[v])
        angle_true = np.take_along_axis(angle, labels[None, :, None], axis=2)[..., 0]
        return cls(variants=list(variants), labels=labels, pred=pred, margin=margin, margin_eq5=margin_eq5,
                   length=length,
                   angle_true=angle_true, prob_true=prob_true, loss=loss, degenerate=degenerate,
                   angle=angle[keep], angle_variants=keep, confusion=confusion)  # fmt: skip

    @property
    def correct(self) -> np.ndarray:
        return self.pred == self.labels[None, :]

    def angles(self, v: int) -> np.ndarray:
        """N x C: every sample's angle to every class on variant `v` (one of `angle_variants`)."""
        try:
            return self.angle[self.angle_variants.index(v)]
        except ValueError:
            raise KeyError(f"variant {self.variants[v]}: its angles to every class were not kept "
                           f"(kept: {[self.variants[i] for i in self.angle_variants]})") from None  # fmt: skip

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array, by the name it has in a results file."""
        return {k: getattr(self, k) for k in self.SMALL} | {"angle": self.angle} | self.confusion.arrays()


@dataclass(frozen=True)
class Bootstrap:
    """Percentile bootstrap over evaluation samples; recorded in the store's manifest under "bootstrap"."""

    resamples: int = 1000  # resampled evaluation sets
    seed: int = 0  # seeds the resampling (numpy default_rng)
    level: float = 0.95  # central share of the resampled values the interval spans

    def weights(self, n: int) -> np.ndarray:
        """resamples x n: how often each sample is drawn in each resample (each row sums to n)."""
        rng = np.random.default_rng(self.seed)
        idx = rng.integers(0, n, size=(self.resamples, n)) + np.arange(self.resamples)[:, None] * n
        return np.bincount(idx.ravel(), minlength=self.resamples * n).reshape(self.resamples, n).astype(np.float32)

    def interval(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lo, hi) over the last axis of `values` (rows x resamples); NaN resamples are left out."""
        q = [(1 - self.level) / 2, 1 - (1 - self.level) / 2]
        values = np.asarray(values, dtype=np.float64)
        if np.isnan(values).any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a statistic undefined on every resample: NaN
                lo, hi = np.nanquantile(values, q, axis=-1)
        else:
            lo, hi = np.quantile(values, q, axis=-1)
        return lo, hi

    def as_dict(self) -> dict:
        return {"resamples": self.resamples, "seed": self.seed, "level": self.level, "over": "evaluation samples"}


BOOTSTRAP = Bootstrap()  # what `precompute` uses; 1000 resamples of 500 samples cost ~0.1 s per model


def robustness(res: ModelResults) -> np.ndarray:
    """robustness_i: correct predictions over all corrupted versions of sample i (eq. 7)."""
    return res.correct[1:].sum(axis=0).astype(np.int16)


def accuracy_rows(
    model_id: str, res: ModelResults, num_classes: int, weights: np.ndarray | None = None, boot: Bootstrap | None = None
) -> dict[str, list]:
    """Accuracy per variant x severity x class (-1 = all), plus per-corruption and overall corrupted means.

    With bootstrap `weights` (`Bootstrap.weights(N)`), every row also gets accuracy_lo / accuracy_hi.
    """
    keys = ("model_id", "variant", "severity", "class_id", "n", "correct", "accuracy")
    rows: dict[str, list] = {k: [] for k in keys}
    correct = res.correct
    labels = res.labels
    class_masks = [(-1, np.ones_like(labels, dtype=bool))] + [(c, labels == c) for c in range(num_classes)]
    if weights is not None:
        boot = boot or Bootstrap()
        # Per class: resampled correct counts per variant (V x B) and resampled class sizes (B); every row below is
        # a sum of these, so one matrix product per class serves all ~V x (C + 1) rows.
        cf = correct.astype(np.float32)
        # Contiguous operands: a transposed, column-gathered weights slice sends numpy's matmul down a ~20x slower
        # path (0.3 s instead of 0.015 s per model at 96 variants x 500 samples x 1000 resamples).
        w_t = np.ascontiguousarray(weights.T)
        idx = {c: np.flatnonzero(m) for c, m in class_masks[1:]}
        k_b = {c: np.ascontiguousarray(cf[:, i]) @ w_t[i] for c, i in idx.items()}
        n_b = {c: w_t[i].sum(0) for c, i in idx.items()}
        k_b[-1], n_b[-1] = cf @ w_t, weights.sum(1)
        resampled = []

    def add(variant: str, severity: int, rows_idx: list[int]):
        for class_id, mask in class_masks:
            n = int(mask.sum()) * len(rows_idx)
            if n == 0:
                continue
            k = int(correct[rows_idx][:, mask].sum())
            for key, value in zip(keys, (model_id, variant, severity, class_id, n, k, k / n), strict=True):
                rows[key].append(value)
            if weights is not None:
                with np.errstate(invalid="ignore", divide="ignore"):
                    resampled.append(k_b[class_id][rows_idx].sum(0) / (len(rows_idx) * n_b[class_id]))

    add("clean", 0, [0])
    corrupted = list(range(1, len(res.variants)))
    by_name: dict[str, list[int]] = {}
    for v in corrupted:
        name, severity = res.variants[v]
        add(name, severity, [v])
        by_name.setdefault(name, []).append(v)
    for name, idx in by_name.items():
        add(name, 0, idx)
    if corrupted:
        add("corruption_mean", 0, corrupted)
    if weights is not None:
        lo, hi = boot.interval(np.stack(resampled)) if resampled else ([], [])
        rows["accuracy_lo"], rows["accuracy_hi"] = list(lo), list(hi)
    return rows


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r in float64; NaN when either side is constant or fewer than 3 finite pairs remain."""
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok].astype(np.float64), y[ok].astype(np.float64)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def correlations(res: ModelResults) -> tuple[float, float, float, float]:
    """Table 1: Pearson r of per-sample robustness with the clean angle to the true class, length, margin and the
    margin without the bias (the paper's eq. 5 as printed)."""
    rob = robustness(res).astype(np.float64)
    return tuple(pearson(x, rob) for x in table1_metrics(res).values())


def table1_metrics(res: ModelResults) -> dict[str, np.ndarray]:
    """The clean per-sample values Table 1 correlates with robustness, by their correlations.arrow column."""
    return {"rc_angle": res.angle_true[0], "rc_length": res.length[0], "rc_margin": res.margin[0],
            "rc_margin_eq5": res.margin_eq5[0]}  # fmt: skip


def pearson_resampled(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Pearson r of x and y on every bootstrap resample (rows of `weights`), vectorised; NaN where undefined."""
    ok = np.isfinite(x) & np.isfinite(y)
    x = np.where(ok, x, 0).astype(np.float64)
    y = np.where(ok, y, 0).astype(np.float64)
    if ok.any():  # centred: no cancellation in the sums of squares
        x, y = x - x[ok].mean(), y - y[ok].mean()
    w = weights.astype(np.float64) * ok
    s = w.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = w @ x / s, w @ y / s
        cxy = w @ (x * y) / s - mx * my
        cxx = w @ (x * x) / s - mx * mx
        cyy = w @ (y * y) / s - my * my
        r = cxy / np.sqrt(cxx * cyy)
    r[(s < 3) | ~(cxx > 1e-12) | ~(cyy > 1e-12)] = np.nan
    return np.clip(r, -1, 1)


def correlation_intervals(res: ModelResults, weights: np.ndarray, boot: Bootstrap | None = None) -> dict[str, float]:
    """Bootstrap intervals of the four Table 1 correlations: {"rc_angle_lo": ..., "rc_angle_hi": ..., ...}."""
    boot = boot or Bootstrap()
    rob = robustness(res).astype(np.float64)
    metrics = table1_metrics(res)
    values = np.stack([pearson_resampled(m.astype(np.float64), rob, weights) for m in metrics.values()])
    lo, hi = boot.interval(values)
    out = {}
    for k, a, b in zip(metrics, lo, hi, strict=True):
        out[f"{k}_lo"], out[f"{k}_hi"] = float(a), float(b)
    return out


def relative_margin_change(res: ModelResults) -> np.ndarray:
    """(m_orig - m_corr) / m_orig for every corrupted variant x sample (V-1 x N); NaN where m_orig is 0 or inf."""
    m0 = res.margin[0].astype(np.float64)
    ok = np.isfinite(m0) & (m0 != 0)
    safe = np.where(ok, m0, 1.0)
    out = (m0[None, :] - res.margin[1:].astype(np.float64)) / safe[None, :]
    out[:, ~ok] = np.nan
    return out.astype(np.float32)


def margin_change_density(model_id: str, res: ModelResults, *, bins: int = 40, trim: float = 0.005) -> dict[str, list]:
    """Density of the relative margin change over all corruptions ("all") and per corruption (Fig. 10).

    The 0.5% smallest and largest values of the model (over all corruptions) are trimmed, as in the paper; the
    per-corruption densities use the same bins so they compare on one axis.
    """
    rows: dict[str, list] = {"model_id": [], "variant": [], "x": [], "density": []}
    rel = relative_margin_change(res)
    finite = rel[np.isfinite(rel)]
    if finite.size == 0:
        return rows
    lo, hi = np.quantile(finite, [trim, 1 - trim])
    if hi - lo < 1e-3:
        # A model whose margins barely move (e.g. one that predicts a constant class): widen the bins to a
        # readable range, or a histogram over a 1e-6-wide interval reports densities in the millions.
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    groups = {"all": list(range(rel.shape[0]))}
    for v, (name, _) in enumerate(res.variants[1:]):
        groups.setdefault(name, []).append(v)
    for name, idx in groups.items():
        values = rel[idx].ravel()
        values = values[np.isfinite(values) & (values >= lo) & (values <= hi)]
        if values.size == 0:
            continue
        density, _ = np.histogram(values, bins=edges, density=True)
        rows["model_id"] += [model_id] * bins
        rows["variant"] += [name] * bins
        rows["x"] += centres.tolist()
        rows["density"] += density.tolist()
    return rows


def margin_change_per_sample(res: ModelResults, *, trim: float = 0.005) -> tuple[np.ndarray, np.ndarray] | None:
    """Per evaluation sample: the sum of |relative margin change| over its corrupted versions and how many were
    summed, the model's 0.5% smallest and largest values (over every sample and variant) left out as in the paper;
    None when no change is finite. The mean |change| over any resampled set is sum(sums) / sum(counts)."""
    rel = relative_margin_change(res).astype(np.float64)
    finite = np.isfinite(rel)
    if not finite.any():
        return None
    lo, hi = np.quantile(rel[finite], [trim, 1 - trim])
    keep = finite & (rel >= lo) & (rel <= hi)
    return np.where(keep, np.abs(rel), 0).sum(0), keep.sum(0).astype(np.float64)


def margin_change_spread(res: ModelResults, weights: np.ndarray, boot: Bootstrap | None = None, *, trim: float = 0.005):
    """Fig. 10 as one number: mean |relative margin change| over every corruption and severity, the model's 0.5%
    smallest and largest values trimmed as in the paper; returns (value, lo, hi), the interval over resampled
    evaluation samples (a sample carries all its corrupted versions)."""
    boot = boot or Bootstrap()
    per_sample = margin_change_per_sample(res, trim=trim)
    if per_sample is None:
        return float("nan"), float("nan"), float("nan")
    sums, counts = per_sample
    w = weights.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        resampled = (w @ sums) / (w @ counts)
    a, b = boot.interval(resampled[None, :])
    return float(sums.sum() / counts.sum()), float(a[0]), float(b[0])


@dataclass
class PairedInputs:
    """What paired comparisons need of one model, per evaluation sample (a few vectors of length N, so every model
    of a study fits in memory at once, unlike its V x N results)."""

    clean: np.ndarray  # N bool: correct on the clean image
    corrupted: np.ndarray  # N int16: correct predictions over its corrupted versions (robustness, eq. 7)
    variants: int  # corrupted variants evaluated (0: clean only)
    corrupted_bits: np.ndarray  # (V-1) x ceil(N/8) uint8: np.packbits of the corrupted outcomes (N/8 bytes a variant)
    mc_sum: np.ndarray | None  # N: sum of |relative margin change| kept (`margin_change_per_sample`); None: no data
    mc_count: np.ndarray | None  # N: how many changes the sum holds

    @classmethod
    def of(cls, res: ModelResults) -> PairedInputs:
        corr = res.correct
        mc = margin_change_per_sample(res) if len(res.variants) > 1 else None
        # Padding bits are 0 for every model, so a & ~b never counts them.
        return cls(clean=corr[0].copy(), corrupted=corr[1:].sum(0).astype(np.int16), variants=len(res.variants) - 1,
                   corrupted_bits=np.packbits(corr[1:], axis=1),
                   mc_sum=None if mc is None else mc[0], mc_count=None if mc is None else mc[1])  # fmt: skip

    def resampled(self, weights: np.ndarray) -> dict[str, tuple[float, np.ndarray]]:
        """quantity -> (value on the full evaluation set, value on every bootstrap resample (rows of `weights`))."""
        w = np.asarray(weights, np.float64)  # no copy when the caller already holds float64 (paired_rows does)
        n, s = len(self.clean), w.sum(1)
        out = {"clean_accuracy": (self.clean.mean(), w @ self.clean / s)}
        if self.variants:
            k = self.corrupted.astype(np.float64)
            out["corrupted_accuracy"] = (k.sum() / (n * self.variants), w @ k / (s * self.variants))
        if self.mc_sum is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                out["mc_abs_mean"] = (self.mc_sum.sum() / self.mc_count.sum(), (w @ self.mc_sum) / (w @ self.mc_count))
        return out


def paired_rows(pairs: Iterable[tuple[str, str]], inputs: dict[str, PairedInputs], weights: np.ndarray,
                boot: Bootstrap | None = None) -> dict[str, list]:  # fmt: skip
    """Paired differences on the same evaluation images, with paired bootstrap intervals.

    For a pair (model, ref) of two models: clean accuracy, corruption-mean accuracy and mean |relative margin
    change|, each as model minus ref. Both models are scored on the same images, so a resample draws the same
    image indices for both (the rows of `weights`, shared by every model) and the interval is the central
    `boot.level` share of the resampled differences: the variation the two models share (hard images are hard for
    both) cancels, which two separate intervals cannot show. For a pair (model, model): the model's corruption-mean
    accuracy minus its clean accuracy ("corrupted_vs_clean"), each image against its own corrupted versions.

    `better` / `worse` count the images (sample x corrupted variant for the corrupted quantities) the model gets
    right and ref wrong, and the reverse (McNemar's discordant pairs): the accuracy difference is
    (better - worse) / n_compared. NaN / -1 where a quantity does not apply (no corruptions, no finite margin change).
    """
    boot = boot or Bootstrap()
    weights = np.asarray(weights, np.float64)  # once, not per model (1000 x N: 400 MB for 50 000 images)
    keys = ("model_id", "ref_id", "quantity", "n", "diff", "diff_lo", "diff_hi", "better", "worse")
    rows: dict[str, list] = {k: [] for k in keys}
    cache: dict[str, dict] = {}

    def stats(mid: str) -> dict:
        if mid not in cache:
            cache[mid] = inputs[mid].resampled(weights)
        return cache[mid]

    diffs = []

    def add(mid, ref, quantity, value, resampled, better, worse):
        row = {"model_id": mid, "ref_id": ref, "quantity": quantity, "n": len(inputs[mid].clean),
               "diff": float(value), "better": int(better), "worse": int(worse)}  # fmt: skip
        for k in keys[:5] + keys[7:]:
            rows[k].append(row[k])
        diffs.append(resampled)

    for mid, ref in pairs:
        a = inputs[mid]
        if mid == ref:
            if a.variants:
                acc = stats(mid)
                (c0, c_b), (k0, k_b) = acc["clean_accuracy"], acc["corrupted_accuracy"]
                k, c = a.corrupted.astype(np.int64), a.clean.astype(np.int64)
                # Per image: its corrupted versions right while the clean one is wrong, and the reverse.
                better = int(((1 - c) * k).sum())
                worse = int((c * (a.variants - k)).sum())
                add(mid, ref, "corrupted_vs_clean", k0 - c0, k_b - c_b, better, worse)
            continue
        b = inputs[ref]
        if len(b.clean) != len(a.clean):
            raise ValueError(f"paired comparison of {mid} and {ref}: {len(a.clean)} vs {len(b.clean)} samples")
        sa, sb = stats(mid), stats(ref)
        for quantity in ("clean_accuracy", "corrupted_accuracy", "mc_abs_mean"):
            if quantity not in sa or quantity not in sb:
                continue
            if quantity == "clean_accuracy":
                better, worse = int((a.clean & ~b.clean).sum()), int((~a.clean & b.clean).sum())
            elif quantity == "corrupted_accuracy":
                if a.variants != b.variants:
                    continue
                better = int(np.unpackbits(a.corrupted_bits & ~b.corrupted_bits).sum())
                worse = int(np.unpackbits(~a.corrupted_bits & b.corrupted_bits).sum())
            else:
                better = worse = -1
            add(mid, ref, quantity, sa[quantity][0] - sb[quantity][0], sa[quantity][1] - sb[quantity][1],
                better, worse)  # fmt: skip
    lo, hi = boot.interval(np.stack(diffs)) if diffs else ([], [])
    rows["diff_lo"], rows["diff_hi"] = [float(x) for x in lo], [float(x) for x in hi]
    return rows


def modal(preds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column-wise mode of M x N predictions (ties to the smaller class) and the fraction agreeing with it."""
    preds = np.asarray(preds, dtype=np.int64)
    k = int(preds.max()) + 1 if preds.size else 1
    counts = np.zeros((k, preds.shape[1]), dtype=np.int64)
    for row in preds:
        counts[row, np.arange(preds.shape[1])] += 1
    mode = counts.argmax(axis=0)
    return mode, counts.max(axis=0) / preds.shape[0]


def pruning_identified_exemplars(dense_preds: np.ndarray, pruned_preds: np.ndarray):
    """Hooker et al.'s PIEs: samples where the pruned models' modal prediction differs from the dense models'.

    Returns (sample indices, dense modal prediction, pruned modal prediction, pruned agreement) for the PIEs.
    """
    dense_mode, _ = modal(dense_preds)
    pruned_mode, agreement = modal(pruned_preds)
    idx = np.flatnonzero(dense_mode != pruned_mode)
    return idx, dense_mode[idx], pruned_mode[idx], agreement[idx]


def confused_classes(results: Iterable[ModelResults], num_classes: int, k: int) -> tuple[np.ndarray, np.ndarray,
                                                                                       np.ndarray]:  # fmt: skip
    """For every true class c, the k classes its samples are most confused with, over every model and variant given
    (one architecture's models: every model then gets the same axes): most predictions of class j for samples of
    class c first, ties broken by the smaller mean angle of those samples to class j's direction, then by j.

    Always on the full evaluation set (from each model's `Confusion`, counted during evaluation). Returns (ids,
    wrong, mean_angle), each C x k: row c holds the confused class ids, how often each was predicted for class-c
    samples, and the mean angle (degrees); -1 / 0 / NaN for a class without samples.
    """
    C = num_classes
    wrong = np.zeros((C, C), np.int64)
    angle_sum = np.zeros((C, C), np.float64)
    angle_n = np.zeros(C, np.int64)
    present = np.zeros(0, np.int64)
    for res in results:  # any iterable: a lazily read model's arrays are dropped before the next is read
        present = np.union1d(present, np.unique(res.labels))
        wrong += res.confusion.count
        angle_sum += res.confusion.angle_sum
        angle_n += res.confusion.angle_n
    np.fill_diagonal(wrong, 0)  # a correct prediction is no confusion
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = angle_sum / angle_n[:, None]
    ids = np.full((C, k), -1, np.int64)
    count = np.zeros((C, k), np.int64)
    mean_k = np.full((C, k), np.nan, np.float32)
    for c in present:
        others = np.delete(np.arange(C), c)
        m = np.where(np.isnan(mean[c, others]), np.inf, mean[c, others])
        # lexsort: the last key is the primary one.
        pick = others[np.lexsort((others, m, -wrong[c, others]))[:k]]
        ids[c], count[c], mean_k[c] = pick, wrong[c, pick], mean[c, pick]
    return ids, count, mean_k
