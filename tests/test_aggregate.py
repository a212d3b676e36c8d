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
    return agg.ModelResults.from_angles(
        variants=list(variants),
        labels=labels,
        pred=pred,
        margin=rng.normal(size=(V, N)).astype(np.float32),
        margin_eq5=rng.normal(size=(V, N)).astype(np.float32),
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
    ra, rl, rm, rm5 = agg.correlations(res)
    assert ra == pytest.approx(np.corrcoef(angle_true, rob)[0, 1])
    assert rl == pytest.approx(np.corrcoef(res.length[0], rob)[0, 1])
    assert rm == pytest.approx(np.corrcoef(res.margin[0], rob)[0, 1])
    assert rm5 == pytest.approx(np.corrcoef(res.margin_eq5[0], rob)[0, 1]) and rm5 != pytest.approx(rm)


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
    for name, x in (
        ("rc_angle", res.angle_true[0]),
        ("rc_margin", res.margin[0]),
        ("rc_margin_eq5", res.margin_eq5[0]),
    ):
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


def _results(labels, pred, angle):
    V, N = pred.shape
    z = np.zeros((V, N), np.float32)
    return agg.ModelResults.from_angles(variants=[("clean", 0)] + [("fog", s) for s in range(1, V)], labels=labels,
                            pred=np.array(pred, np.int16), margin=z, margin_eq5=z, length=z + 1,
                            angle=angle.astype(np.float32), prob_true=z, loss=z,
                            degenerate=np.zeros((V, N), bool))  # fmt: skip


def test_confused_classes_by_hand():
    # 4 classes, class 3 without samples; two variants (clean, fog).
    labels = [0, 0, 1, 1, 2]
    pred = np.array([[1, 0, 1, 3, 2],
                     [2, 1, 1, 1, 0]])  # fmt: skip
    angle = np.full((2, 5, 4), 90.0)
    angle[:, 2:4, 2] = 40.0  # class-1 samples lie closer to class 2 than to class 0 (no prediction of either)
    angle[:, 2:4, 0] = 50.0
    angle[1, 3, :] = np.nan  # a degenerate sample: left out of the means, its prediction still counts
    angle[:, 4, 1] = angle[:, 4, 3] = 60.0  # class 2: classes 1 and 3 tie on count and angle: the smaller id first
    closer = angle.copy()
    closer[:, 0:2, 2] = 10.0  # a second model of the architecture: counts add, angles average over both
    ids, wrong, mean = agg.confused_classes([_results(labels, pred, angle), _results(labels, pred, closer)], 4, 2)
    # class 0: predicted 1 twice and 2 once per model; class 1: 3 once; class 2: 0 once.
    assert ids.tolist() == [[1, 2], [3, 2], [0, 1], [-1, -1]]
    assert wrong.tolist() == [[4, 2], [2, 0], [2, 0], [0, 0]]
    np.testing.assert_allclose(mean[0], [90, (2 * 90 + 2 * 10 + 2 * 90 + 2 * 10) / 8])
    np.testing.assert_allclose(mean[1], [90, 40])  # the NaN angles left out, not counted as 0
    np.testing.assert_allclose(mean[2], [90, 60])
    assert np.isnan(mean[3]).all()


def test_confused_classes_need_no_confusion():
    # A perfect model: no wrong prediction at all, so the nearest class directions (smallest mean angle) rank.
    labels = [0, 1, 2]
    angle = np.array([[[0, 70, 30], [50, 0, 20], [80, 80, 0]]], float)
    ids, wrong, _ = agg.confused_classes([_results(labels, np.array([[0, 1, 2]]), angle)], 3, 1)
    assert ids[:, 0].tolist() == [2, 2, 0] and wrong.sum() == 0


# -- paired differences: two models scored on the same images -----------------------------------------------------
def _pair(N=120, seed=0):
    """Two models on the same images: b is a with a fifth of its predictions redrawn on every variant."""
    a = make_results(seed=seed, N=N)
    b = make_results(seed=seed, N=N)
    rng = np.random.default_rng(seed + 10)
    flip = rng.uniform(size=b.pred.shape) < 0.2
    b.pred = np.where(flip, rng.integers(0, 3, b.pred.shape), b.pred).astype(np.int16)
    b.margin = (b.margin * rng.uniform(0.5, 1.5, b.margin.shape)).astype(np.float32)
    return a, b


def _table(rows):
    keys = ("model_id", "ref_id", "quantity", "diff", "diff_lo", "diff_hi", "better", "worse")
    return {(m, r, q): tuple(row) for m, r, q, *row in zip(*(rows[k] for k in keys), strict=True)}


def test_paired_bootstrap_matches_a_numpy_loop_over_the_same_resampled_images():
    a, b = _pair()
    N, boot = 120, agg.Bootstrap(resamples=400, seed=5)
    inputs = {"a": agg.PairedInputs.of(a), "b": agg.PairedInputs.of(b)}
    t = _table(agg.paired_rows([("b", "a"), ("a", "a")], inputs, boot.weights(N), boot))
    ca, cb = a.correct, b.correct

    def trimmed(res):  # |relative margin change| and which values the model's 0.5 % tails leave in
        rel = agg.relative_margin_change(res).astype(np.float64)
        lo, hi = np.quantile(rel, [0.005, 0.995])
        return np.abs(rel), (rel >= lo) & (rel <= hi)

    (ra, ka), (rb, kb) = trimmed(a), trimmed(b)
    # Independently: draw the indices as Bootstrap.weights does, index both models with the same ones.
    idx = np.random.default_rng(5).integers(0, N, size=(400, N))
    expect = {
        ("b", "a", "clean_accuracy"): (cb[0].mean() - ca[0].mean(), [cb[0, i].mean() - ca[0, i].mean() for i in idx]),
        ("b", "a", "corrupted_accuracy"): (cb[1:].mean() - ca[1:].mean(),
                                           [cb[1:, i].mean() - ca[1:, i].mean() for i in idx]),
        ("b", "a", "mc_abs_mean"): (rb[kb].mean() - ra[ka].mean(),
                                    [rb[:, i][kb[:, i]].mean() - ra[:, i][ka[:, i]].mean() for i in idx]),
        ("a", "a", "corrupted_vs_clean"): (ca[1:].mean() - ca[0].mean(),
                                           [ca[1:, i].mean() - ca[0, i].mean() for i in idx]),
    }  # fmt: skip
    assert set(t) == set(expect)
    for key, (value, resampled) in expect.items():
        lo, hi = np.quantile(resampled, [0.025, 0.975])
        assert t[key][0] == pytest.approx(value, abs=1e-9), key
        assert t[key][1] == pytest.approx(lo, abs=1e-9) and t[key][2] == pytest.approx(hi, abs=1e-9), key
    # McNemar's discordant counts, per image (and per image x corrupted variant)
    assert t["b", "a", "clean_accuracy"][3:] == ((cb[0] & ~ca[0]).sum(), (~cb[0] & ca[0]).sum())
    assert t["b", "a", "corrupted_accuracy"][3:] == ((cb[1:] & ~ca[1:]).sum(), (~cb[1:] & ca[1:]).sum())
    assert t["a", "a", "corrupted_vs_clean"][3:] == ((ca[1:] & ~ca[0]).sum(), (~ca[1:] & ca[0]).sum())
    assert t["b", "a", "mc_abs_mean"][3:] == (-1, -1)


def _clean_only(correct: np.ndarray) -> agg.ModelResults:
    """A model scored on clean images only, right exactly where `correct` says (labels all 0)."""
    n = len(correct)
    pred = np.where(correct, 0, 1)[None, :]
    return _results(np.zeros(n, np.int64), pred, np.ones((1, n, 2)))


def test_paired_interval_by_hand_two_models_that_differ_on_exactly_k_images():
    # 400 images, dense right on 320. The pruned model is dense except on k = 8 images dense gets right and it
    # gets wrong: a drop of exactly 2 points. The resampled difference is -(draws of those 8 images) / 400, i.e.
    # -Binomial(400, 8/400) / 400, so the paired interval is that binomial's 2.5 % and 97.5 % quantiles: 3 and 14
    # draws, [-3.5, -0.75] points (0 is excluded), while each model's own interval is about ±4 points and the two
    # overlap almost entirely.
    N, k = 400, 8
    dense = np.arange(N) < 320
    pruned = dense.copy()
    pruned[:k] = False
    boot = agg.Bootstrap(resamples=4000, seed=0)
    w = boot.weights(N)
    inputs = {"dense": agg.PairedInputs.of(_clean_only(dense)), "pruned": agg.PairedInputs.of(_clean_only(pruned))}
    diff, lo, hi, better, worse = _table(agg.paired_rows([("pruned", "dense")], inputs, w, boot))[
        "pruned", "dense", "clean_accuracy"
    ]
    assert diff == pytest.approx(-0.02) and (better, worse) == (0, k)
    assert lo == pytest.approx(-14 / N, abs=1.01 / N) and hi == pytest.approx(-3 / N, abs=1.01 / N)
    acc = {m: agg.accuracy_rows(m, _clean_only(c), 1, w, boot) for m, c in (("dense", dense), ("pruned", pruned))}
    assert acc["pruned"]["accuracy_hi"][0] > acc["dense"]["accuracy_lo"][0]  # unpaired: the intervals overlap
    # Identical models: no discordant image, so every resample differs by exactly 0.
    same = _table(agg.paired_rows([("dense", "dense2")], {**inputs, "dense2": inputs["dense"]}, w, boot))
    assert same["dense", "dense2", "clean_accuracy"] == (0.0, 0.0, 0.0, 0, 0)
