"""Which samples carry per-sample rows: one policy, written once, for the store's cut (precompute, from the full
evaluation set) and the site's cut (from the store's rows, when a page cannot hold them all). Pure numpy: the site
uses it without torch.

The policy: a class-stratified uniform random sample. Each class gets a share of the sample proportional to its
size (largest remainder; at least one sample of every class that has any), drawn uniformly at random within the
class from a permutation seeded by (seed, class), so a smaller sample of the same seed is a subset of a larger
one. The sample is therefore self-weighting: a class mean, and a mean over all classes, of any per-sample value
(margin, length, correctness) is an unbiased estimate of the full set's. Where everything fits, everything is
taken. Pruning-identified exemplars (PIEs) in the sample are flagged (samples.arrow `pie`); PIEs outside it may
fill the budget the sample leaves as extra rows (`in_sample` false), drawn the same way (without a minimum per
class). The extra rows serve the sample view only: densities and class statistics leave them out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POLICY = "class-stratified uniform random sample, proportional allocation; PIEs outside it as extra rows"
EXTRA_SEED = 1  # the extra PIE rows' draw is seeded with seed + EXTRA_SEED (independent of the sample's)


def allocate(counts, n: int, *, min_per_class: int = 1) -> np.ndarray:
    """Per-class sample sizes for `n` samples from classes of `counts` members: proportional to the counts
    (Hamilton's largest remainder, ties to the lower class), each class with members at least `min_per_class`
    (even where that passes `n`), none more than it has."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if n >= total:
        return counts.copy()
    quota = counts * (n / total) if total else np.zeros(len(counts))
    floor = np.minimum(counts, min_per_class)
    alloc = np.maximum(np.floor(quota).astype(np.int64), floor)
    # A minimum can push the sum past n: take back from the classes most above their quota.
    while alloc.sum() > max(n, int(floor.sum())):
        over = np.where(alloc > floor, alloc - quota, -np.inf)
        alloc[int(np.argmax(over))] -= 1
    # Largest remainders first; lexsort's last key is the primary one.
    for c in np.lexsort((np.arange(len(counts)), -(quota - alloc))):
        if alloc.sum() >= n:
            break
        if alloc[c] < counts[c]:
            alloc[c] += 1
    return alloc


def stratified_sample(labels, n: int, *, seed: int, min_per_class: int = 1) -> np.ndarray:
    """Positions in `labels` of a class-stratified uniform random sample of about `n` (`allocate`), sorted."""
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    alloc = allocate(counts, n, min_per_class=min_per_class)
    picked = []
    for c, k in zip(classes, alloc, strict=True):
        members = np.flatnonzero(labels == c)
        # Seeded per class: a class's draw does not depend on which other classes exist, and is nested in n.
        order = np.random.default_rng([int(seed), int(c)]).permutation(len(members))
        picked.append(members[order[:k]])
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


@dataclass(frozen=True)
class Draw:
    index: np.ndarray  # positions in the labels given, sorted
    in_sample: np.ndarray  # bool per position: in the stratified sample (False: an extra PIE row)


def draw_samples(labels, pie, *, sample_size: int, budget: int, seed: int, population=None) -> Draw:
    """The policy (module docstring): a stratified sample of `sample_size` from `population` (a bool mask; default
    every position), then PIEs outside it as extra rows up to `budget` rows in all.

    The store calls it on the full evaluation set; the site on the store's rows, with `population` the store's
    in-sample rows (a uniform sample of a uniform sample is a uniform sample of the full set)."""
    labels = np.asarray(labels)
    pie = np.asarray(pie, dtype=bool)
    pool = np.arange(len(labels)) if population is None else np.flatnonzero(np.asarray(population, dtype=bool))
    sample = pool[stratified_sample(labels[pool], sample_size, seed=seed)]
    left = budget - len(sample)
    extra = np.setdiff1d(np.flatnonzero(pie), sample)
    if left > 0 and len(extra):
        extra = extra[stratified_sample(labels[extra], left, seed=seed + EXTRA_SEED, min_per_class=0)]
    else:
        extra = extra[:0]
    index = np.concatenate([sample, extra])
    order = np.argsort(index, kind="stable")
    return Draw(index[order].astype(np.int64), np.isin(index[order], sample))


def mean_interval(values, z: float = 1.959964) -> tuple[float, float, float]:
    """(mean, lo, hi) of per-sample values in [0, 1] (a sample's share of correct predictions): a Wilson score
    interval at the effective sample size max(n, n·p(1−p)/s²): for 0/1 values the plain Wilson interval; for a
    sample's share of m correlated predictions (every corruption and severity) the spread between samples sets
    the width, never narrower than n independent samples would give. The evaluation table's JavaScript
    (`subsetInterval` in lotterysite.js) computes the same for any subset of served samples."""
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    p = float(v.mean())
    # Equal shares have no spread: s² is 0 exactly (the float mean of 7 × 0.2 is not 0.2, and a variance of 1e-33
    # would make n_eff huge and the interval a point); the browser's integer sums give 0 there too.
    s2 = float(v.var(ddof=1)) if n > 1 and v.max() > v.min() else 0.0
    n_eff = n if s2 == 0 or p in (0.0, 1.0) else max(n, n * p * (1 - p) / s2)
    z2 = z * z
    centre = (p + z2 / (2 * n_eff)) / (1 + z2 / n_eff)
    half = z / (1 + z2 / n_eff) * np.sqrt(p * (1 - p) / n_eff + z2 / (4 * n_eff * n_eff))
    return p, float(max(0.0, centre - half)), float(min(1.0, centre + half))
