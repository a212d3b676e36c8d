"""The per-sample policy (lotterysite/store/sampling.py): a class-stratified uniform random sample, PIEs flagged on
it and outside it as extra rows; one function for the store's cut and the site's; unbiased class statistics."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pyarrow.compute as pc
import pytest

from lotterysite.store import sampling


def test_allocation_is_proportional_with_one_per_class_and_within_the_budget():
    assert sampling.allocate([100, 50, 10], 32).tolist() == [20, 10, 2]
    assert sampling.allocate([1000, 1, 1], 10).tolist() == [8, 1, 1]  # every class keeps one, the sum stays 10
    assert sampling.allocate([3, 3, 3], 2).tolist() == [1, 1, 1]  # one per class even past the budget
    assert sampling.allocate([5, 0, 5], 100).tolist() == [5, 0, 5]  # everything fits: everything
    assert sampling.allocate([7, 7, 7], 10).sum() == 10
    assert sampling.allocate([10, 10], 1, min_per_class=0).sum() == 1


def test_sample_is_seeded_nested_and_stratified():
    labels = np.repeat(np.arange(4), [400, 200, 100, 50])
    a = sampling.stratified_sample(labels, 75, seed=3)
    assert np.bincount(labels[a]).tolist() == [40, 20, 10, 5]  # the same fraction of every class
    assert a.tolist() == sampling.stratified_sample(labels, 75, seed=3).tolist()
    assert a.tolist() != sampling.stratified_sample(labels, 75, seed=4).tolist()
    assert set(a) <= set(sampling.stratified_sample(labels, 300, seed=3))  # a smaller sample is part of a larger one
    assert len(sampling.stratified_sample(labels, 10_000, seed=0)) == len(labels)


def test_every_member_of_a_class_is_equally_likely():
    labels = np.repeat(np.arange(3), [60, 30, 12])
    hits = np.zeros(len(labels))
    runs = 3000
    for seed in range(runs):
        hits[sampling.stratified_sample(labels, 17, seed=seed)] += 1
    for c, k in enumerate(sampling.allocate([60, 30, 12], 17)):
        p = k / (labels == c).sum()
        got = hits[labels == c] / runs
        # Binomial(runs, p) per member: 5 standard errors.
        assert np.abs(got - p).max() < 5 * np.sqrt(p * (1 - p) / runs), (c, p, got.min(), got.max())


def test_extra_rows_are_exemplars_outside_the_sample_within_the_budget():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(5), 100)
    pie = rng.random(len(labels)) < 0.1
    d = sampling.draw_samples(labels, pie, sample_size=50, budget=70, seed=0)
    assert len(d.index) == 70 and d.in_sample.sum() == 50
    assert np.all(np.diff(d.index) > 0)
    assert pie[d.index[~d.in_sample]].all()  # every extra row is an exemplar
    assert np.bincount(labels[d.index[d.in_sample]]).tolist() == [10] * 5  # the sample alone is stratified
    # No budget left: no extra rows; the exemplars the sample drew are still there (flagged by the caller).
    d = sampling.draw_samples(labels, pie, sample_size=50, budget=50, seed=0)
    assert d.in_sample.all() and len(d.index) == 50
    # A population: the site's cut draws only from the store's in-sample rows.
    population = np.arange(len(labels)) % 2 == 0
    d = sampling.draw_samples(labels, pie, sample_size=20, budget=20, seed=0, population=population)
    assert population[d.index].all()


def test_the_store_and_the_site_cut_with_the_one_policy():
    from lotterysite.precompute import tables
    from lotterysite.site import data

    # Both call sampling.draw_samples, and neither draws samples any other way.
    for module in (tables, data):
        text = inspect.getsource(module)
        assert "sampling.draw_samples(" in text, module.__name__
        assert not re.search(r"\.choice\(|\.permutation\(|default_rng", text), module.__name__
    assert not hasattr(__import__("lotterysite.precompute.aggregate").precompute.aggregate, "choose_shipped")


def test_the_site_cut_calls_the_policy_and_keeps_its_sample_uniform(site_store, monkeypatch):
    from lotterysite.site import data

    calls = []
    real = sampling.draw_samples

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(sampling, "draw_samples", spy)
    store = data.load_store(site_store)
    served = data.served_samples(store, 120)
    assert calls and calls[-1]["sample_size"] == 120 and calls[-1]["budget"] == 120
    assert calls[-1]["seed"] == store.manifest["dataset"]["shipping"]["seed"]
    assert len(served.ids) == 120 and served.in_sample.all()


def _class_means_agree(full: dict, served_ids: np.ndarray, z: float = 4.0) -> list[str]:
    """Every class mean of every field over `served_ids` within z standard errors (finite-population corrected) of
    the full set's; the mismatches."""
    bad = []
    for name, (ids, labels, values) in full.items():
        take = np.isin(ids, served_ids)
        for c in np.unique(labels):
            pop = values[labels == c]
            got = values[(labels == c) & take]
            N, n = len(pop), len(got)
            if n == 0 or n == N:
                continue
            se = pop.std(ddof=1) / np.sqrt(n) * np.sqrt(1 - n / N)
            if abs(got.mean() - pop.mean()) > z * se + 1e-9:
                bad.append(f"{name} class {c}: {got.mean():.3f} vs {pop.mean():.3f} (se {se:.3f}, n {n} of {N})")
    return bad


def _full_values(store) -> dict:
    """Per model: (ids, labels, values) of clean margin, length and correctness over every stored sample."""
    from lotterysite.store import read_table
    from lotterysite.store.schema import store_geometry_schema

    out = {}
    for m in store.models.to_pylist():
        t = read_table(store.root / "geometry" / f"{m['model_key']}.arrow", store_geometry_schema(store.manifest))
        t = t.filter(pc.equal(t["variant"].cast("string"), "clean"))
        ids, labels = t["sample_id"].to_numpy(), t["label"].to_numpy()
        for f in ("margin", "length", "correct"):
            values = t[f].to_numpy(zero_copy_only=False).astype(np.float64)
            out[f"{m['model_id']} {f}"] = (ids, labels, values)
    return out


def test_served_class_means_are_within_sampling_error_of_the_full_evaluation_set(site_store):
    """The fixture store ships its whole evaluation set (400 images fit the row limit): its rows are the full set.
    The site's cut to 120 samples gives class means of margin, length and correctness within 4 standard errors of
    the full set's, for every model; the old exemplars-first cut, or the hardest samples, would not."""
    from lotterysite.site import data

    store = data.load_store(site_store)
    assert store.manifest["dataset"]["shipping"]["everything"]
    assert store.tables["samples.arrow"].num_rows == store.manifest["dataset"]["n_eval"]
    full = _full_values(store)
    served = data.served_samples(store, 120)
    assert _class_means_agree(full, served.ids[served.in_sample]) == []
    # The check has power: the 120 lowest-margin samples of the dense model fail it.
    ids, labels, margin = full["lenet5/dense margin"]
    hardest = ids[np.argsort(margin)[:120]]
    assert len(_class_means_agree(full, hardest)) > 10


@pytest.mark.parametrize("seed", range(3))
def test_sample_class_means_are_unbiased_over_seeds(seed):
    """Averaged over many draws, the sample's class means equal the population's (the draw is unbiased), and a
    single draw is within its sampling error."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 6, 900)
    values = rng.gamma(2.0, 1.0 + labels)  # skewed, class-dependent
    means = []
    for s in range(400):
        idx = sampling.stratified_sample(labels, 90, seed=s)
        means.append([values[idx][labels[idx] == c].mean() for c in range(6)])
    pop = np.array([values[labels == c].mean() for c in range(6)])
    sd = np.array([values[labels == c].std(ddof=1) for c in range(6)])
    n = sampling.allocate(np.bincount(labels), 90)
    se = sd / np.sqrt(n) * np.sqrt(1 - n / np.bincount(labels))
    assert np.all(np.abs(np.mean(means, axis=0) - pop) < 4 * se / np.sqrt(400))


def test_mean_interval_is_wilson_for_zero_one_values_and_covers():
    p, lo, hi = sampling.mean_interval([1] * 8 + [0] * 2)
    # Wilson score interval for 8 of 10 (textbook value: 0.490 to 0.943).
    assert p == 0.8 and abs(lo - 0.4902) < 1e-3 and abs(hi - 0.9433) < 1e-3
    p, lo, hi = sampling.mean_interval([1.0] * 5)
    assert p == 1 and lo < 1 and hi == 1
    assert all(np.isnan(sampling.mean_interval([])))
    # Equal shares (7 samples, each 1 of 5 predictions right): no spread, so the plain Wilson interval at n = 7 (the
    # Wilson interval of p = 0.2 at n = 7: 0.0455 to 0.5671), not the point a rounding-error variance made of it.
    p, lo, hi = sampling.mean_interval([0.2] * 7)
    assert abs(p - 0.2) < 1e-12 and abs(lo - 0.04555) < 1e-4 and abs(hi - 0.56705) < 1e-4
    # Coverage over repeated samples of per-sample shares (m = 6 correlated predictions each): about 95 %.
    rng = np.random.default_rng(1)
    difficulty = rng.beta(2, 1, 5000)
    truth = difficulty.mean()
    covered = 0
    for _ in range(400):
        idx = rng.choice(5000, 40, replace=False)
        shares = rng.binomial(6, difficulty[idx]) / 6
        _, lo, hi = sampling.mean_interval(shares)
        covered += lo <= truth <= hi
    assert 0.9 < covered / 400 <= 1.0


def test_a_given_stores_sample_matches_its_full_class_accuracies():
    """On a store named by LOTTERYSITE_ORACLE_STORE (the demo's: `LOTTERYSITE_ORACLE_STORE=store/demo pytest -k
    given_stores`): for every model and class, the clean accuracy over the shipped stratified sample (in_sample
    rows) lies within 4 standard errors (finite-population corrected) of the class accuracy accuracy.arrow holds
    for the full evaluation set; and the z-scores average near 0. Read with pyarrow only."""
    import os
    from pathlib import Path

    import oracle

    path = os.environ.get("LOTTERYSITE_ORACLE_STORE")
    if not path:
        pytest.skip("LOTTERYSITE_ORACLE_STORE is not set")
    store = oracle.Store(Path(path))
    samples = store.table("samples.arrow").to_pydict()
    inside = {i for i, keep in zip(samples["sample_id"], samples["in_sample"], strict=True) if keep}
    acc = store.table("accuracy.arrow").to_pylist()
    full = {(r["model_id"], r["class_id"]): (r["correct"], r["n"]) for r in acc
            if r["variant"] == "clean" and r["severity"] == 0 and r["class_id"] >= 0}  # fmt: skip
    zs, far, whole = [], [], 0
    for model in store.models:
        rows = [r for i, r in store.geometry(model, "clean", 0).items() if i in inside]
        for c in sorted({r["label"] for r in rows}):
            got = np.array([r["correct"] for r in rows if r["label"] == c], dtype=np.float64)
            hits, n = full[(model, c)]
            p, k = hits / n, len(got)
            if k >= n or p in (0.0, 1.0):
                assert got.mean() == pytest.approx(p), (model, c)  # the whole class, or no spread: equal
                whole += 1
                continue
            se = np.sqrt(p * (1 - p) / k * (1 - k / n))
            zs.append((got.mean() - p) / se)
            if abs(zs[-1]) > 4:
                far.append((model, c, got.mean(), p, k, n))
    assert far == [] and (zs or whole)
    assert not zs or abs(np.mean(zs)) < 0.5, np.mean(zs)  # a store that ships every sample has nothing to draw
