"""Aggregates of precompute, against direct hand computations."""

import numpy as np
import pytest

from lotterysite.precompute import aggregate as agg


def make_results(seed=0, N=60, C=3, variants=(("clean", 0), ("fog", 1), ("fog", 2), ("snow", 1), ("snow", 2))):
    rng = np.random.default_rng(seed)
    V = len(variants)
    labels = rng.integers(0, C, N)
    pred = rng.integers(0, C, (V, N)).astype(np.int16)
    pred[0, : N // 2] = labels[: N // 2]  # half the clean predictions right
    return agg.ModelResults(
        variants=list(variants),
        labels=labels,
        pred=pred,
        margin=rng.normal(size=(V, N)).astype(np.float32),
        length=rng.uniform(1, 5, (V, N)).astype(np.float32),
        angle=rng.uniform(20, 120, (V, N, C)).astype(np.float32),
        prob_true=rng.uniform(size=(V, N)).astype(np.float32),
        loss=rng.uniform(size=(V, N)).astype(np.float32),
        degenerate=np.zeros((V, N), bool),
    )


def test_accuracy_rows_match_direct_counts():
    res = make_results()
    rows = agg.accuracy_rows("m", res, 3)
    table = {
        (v, s, c): (n, k, a)
        for v, s, c, n, k, a in zip(
            rows["variant"],
            rows["severity"],
            rows["class_id"],
            rows["n"],
            rows["correct"],
            rows["accuracy"],
            strict=True,
        )
    }
    correct = res.pred == res.labels[None]
    assert table[("clean", 0, -1)] == (60, int(correct[0].sum()), pytest.approx(correct[0].mean()))
    sel = res.labels == 2
    assert table[("fog", 2, 2)][:2] == (int(sel.sum()), int(correct[2, sel].sum()))
    # A corruption's severity-0 row pools its severities; corruption_mean pools every corrupted variant.
    assert table[("snow", 0, -1)][:2] == (120, int(correct[3:5].sum()))
    assert table[("corruption_mean", 0, -1)][:2] == (240, int(correct[1:].sum()))


def test_robustness_is_eq_7():
    res = make_results()
    correct = res.pred == res.labels[None]
    assert agg.robustness(res).tolist() == correct[1:].sum(0).tolist()


def test_correlations_are_pearson_with_robustness():
    res = make_results(1)
    rob = (res.pred[1:] == res.labels[None]).sum(0).astype(float)
    angle_true = res.angle[0, np.arange(60), res.labels]
    ra, rl, rm = agg.correlations(res)
    assert ra == pytest.approx(np.corrcoef(angle_true, rob)[0, 1])
    assert rl == pytest.approx(np.corrcoef(res.length[0], rob)[0, 1])
    assert rm == pytest.approx(np.corrcoef(res.margin[0], rob)[0, 1])


def test_pearson_of_constant_is_nan():
    assert np.isnan(agg.pearson(np.ones(10), np.arange(10.0)))


def test_relative_margin_change_and_density():
    res = make_results(2)
    rel = agg.relative_margin_change(res)
    i = 7
    assert rel[2, i] == pytest.approx((res.margin[0, i] - res.margin[3, i]) / res.margin[0, i], rel=1e-5)
    res.margin[0, 3] = 0.0
    assert np.isnan(agg.relative_margin_change(res)[:, 3]).all()
    rows = agg.margin_change_density("m", res, bins=10)
    assert set(rows["variant"]) == {"all", "fog", "snow"}
    xs = np.array(rows["x"][:10])
    dens = np.array(rows["density"][:10])
    assert (dens * (xs[1] - xs[0])).sum() == pytest.approx(1.0, rel=1e-4)  # a density integrates to one
    finite = rel[np.isfinite(rel)]
    lo, hi = np.quantile(finite, [0.005, 0.995])
    assert xs.min() > lo and xs.max() < hi  # trimmed tails: bin centres inside the 0.5% quantiles


def test_pruning_identified_exemplars_use_modal_predictions():
    dense = np.array([[0, 1, 2, 1], [0, 1, 2, 2]])
    pruned = np.array([[0, 2, 2, 1], [0, 2, 1, 1], [1, 2, 2, 1]])
    idx, dpred, ppred, agree = agg.pruning_identified_exemplars(dense, pruned)
    # Sample 1: dense 1, pruned 2 -> PIE. Sample 3: dense modal (tie 1/2 -> 1) equals pruned 1 -> not a PIE.
    assert idx.tolist() == [1] and dpred.tolist() == [1] and ppred.tolist() == [2]
    assert agree.tolist() == [1.0]


def test_choose_shipped_keeps_exemplars_and_stratifies():
    labels = np.repeat(np.arange(4), 50)
    keep = np.array([3, 60, 61])
    shipped = agg.choose_shipped(labels, keep, per_class=10, limit=1000, seed=0)
    assert set(keep) <= set(shipped.tolist())
    counts = np.bincount(labels[np.setdiff1d(shipped, keep)], minlength=4)
    assert counts.tolist() == [10, 10, 10, 10]
    again = agg.choose_shipped(labels, keep, per_class=10, limit=1000, seed=0)
    other = agg.choose_shipped(labels, keep, per_class=10, limit=1000, seed=1)
    assert shipped.tolist() == again.tolist() and shipped.tolist() != other.tolist()
    # The limit wins over per_class; exemplars are kept first.
    small = agg.choose_shipped(labels, keep, per_class=10, limit=11, seed=0)
    assert len(small) <= 11 and set(keep) <= set(small.tolist())


def test_margin_change_of_a_model_whose_margins_do_not_move_stays_readable():
    res = make_results(3)
    res.margin[:] = 0.7  # every corrupted margin equals the clean one: all changes are exactly 0
    rows = agg.margin_change_density("m", res, bins=10)
    xs = np.array(rows["x"][:10])
    assert xs.max() - xs.min() > 0.5 and max(rows["density"]) < 10


def test_bootstrap_weights_are_resamples_with_replacement():
    boot = agg.Bootstrap(resamples=200, seed=3)
    w = boot.weights(50)
    assert w.shape == (200, 50) and (w.sum(1) == 50).all() and (w >= 0).all()
    assert np.array_equal(w, agg.Bootstrap(resamples=200, seed=3).weights(50))  # the seed fixes the resamples
    assert not np.array_equal(w, agg.Bootstrap(resamples=200, seed=4).weights(50))


def test_accuracy_intervals_match_a_loop_over_resamples():
    res = make_results(N=80)
    boot = agg.Bootstrap(resamples=300, seed=1)
    w = boot.weights(80)
    rows = agg.accuracy_rows("m", res, 3, w, boot)
    table = {
        (v, s, c): (a, lo, hi)
        for v, s, c, a, lo, hi in zip(
            rows["variant"],
            rows["severity"],
            rows["class_id"],
            rows["accuracy"],
            rows["accuracy_lo"],
            rows["accuracy_hi"],
            strict=True,
        )
    }
    correct = res.correct
    # The same resamples by hand: indices drawn as Bootstrap.weights draws them.
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 80, size=(300, 80))
    for key, values in {
        ("clean", 0, -1): [correct[0, i].mean() for i in idx],
        ("snow", 0, -1): [correct[3:5][:, i].mean() for i in idx],
        ("fog", 1, 2): [correct[1, i][res.labels[i] == 2].mean() for i in idx],
    }.items():
        lo, hi = np.quantile(values, [0.025, 0.975])
        assert table[key][1] == pytest.approx(lo, abs=1e-6) and table[key][2] == pytest.approx(hi, abs=1e-6), key
        assert table[key][1] <= table[key][0] <= table[key][2]


def test_accuracy_interval_narrows_with_more_samples():
    def width(n):
        rows = agg.accuracy_rows("m", make_results(N=n), 3, agg.Bootstrap().weights(n))
        return rows["accuracy_hi"][0] - rows["accuracy_lo"][0]

    # Binomial: 1.96 * sqrt(p (1 - p) / n) each side, so 16x the samples quarter the width.
    assert width(1600) < 0.35 * width(100)
    assert width(1600) == pytest.approx(2 * 1.96 * np.sqrt(0.5 * 0.5 / 1600) * 1.0, rel=0.25)


def test_correlation_intervals_match_pearson_on_each_resample():
    res = make_results(N=120)
    res.margin[0, :3] = np.nan  # non-finite pairs are left out, as in the point estimate
    boot = agg.Bootstrap(resamples=200, seed=2)
    w = boot.weights(120)
    out = agg.correlation_intervals(res, w, boot)
    rob = agg.robustness(res).astype(float)
    idx = np.random.default_rng(2).integers(0, 120, size=(200, 120))
    for name, x in (("rc_angle", res.angle_true[0]), ("rc_margin", res.margin[0])):
        values = [agg.pearson(x[i], rob[i]) for i in idx]
        lo, hi = np.quantile(values, [0.025, 0.975])
        assert out[f"{name}_lo"] == pytest.approx(lo, abs=1e-6) and out[f"{name}_hi"] == pytest.approx(hi, abs=1e-6)
    r = agg.correlations(res)
    assert out["rc_angle_lo"] <= r[0] <= out["rc_angle_hi"]


def test_correlation_interval_of_a_constant_is_nan():
    res = make_results()
    res.pred[1:] = res.labels  # every corrupted prediction right: robustness constant
    out = agg.correlation_intervals(res, agg.Bootstrap(resamples=50).weights(len(res.labels)))
    assert all(np.isnan(v) for v in out.values())


def test_margin_change_spread_is_the_trimmed_mean_absolute_change():
    res = make_results(N=200)
    boot = agg.Bootstrap(resamples=200)
    value, lo, hi = agg.margin_change_spread(res, boot.weights(200), boot)
    rel = agg.relative_margin_change(res).ravel()
    a, b = np.quantile(rel, [0.005, 0.995])
    assert value == pytest.approx(np.abs(rel[(rel >= a) & (rel <= b)]).mean(), rel=1e-6)
    assert lo < value < hi
    calm = make_results(N=200)
    calm.margin[1:] = calm.margin[0] * 0.9  # every corrupted margin 10% smaller: |change| = 0.1 everywhere
    assert agg.margin_change_spread(calm, boot.weights(200), boot)[0] == pytest.approx(0.1, rel=1e-4)
