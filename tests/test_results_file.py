"""A model's results file: written once, read back lazily, the angles memory-mapped from inside the archive."""

import numpy as np
import pytest

from lotterysite.precompute import aggregate as agg
from lotterysite.precompute import results_file


def make(keep=(0, 2)):
    rng = np.random.default_rng(0)
    V, N, C = 4, 30, 5
    variants = [("clean", 0), ("fog", 1), ("fog", 3), ("snow", 3)]
    angle = rng.uniform(0, 180, (V, N, C)).astype(np.float32)
    angle[1, 4] = np.nan  # a degenerate sample on one variant
    return agg.ModelResults.from_angles(
        variants, rng.integers(0, C, N), rng.integers(0, C, (V, N)).astype(np.int16),
        rng.normal(size=(V, N)).astype(np.float32), rng.uniform(1, 2, (V, N)).astype(np.float32), angle,
        rng.uniform(size=(V, N)).astype(np.float32), rng.uniform(size=(V, N)).astype(np.float32),
        np.zeros((V, N), bool), keep=list(keep), margin_eq5=rng.normal(size=(V, N)).astype(np.float32),
    ), angle  # fmt: skip


def test_written_and_read_back_lazily(tmp_path):
    res, angle = make()
    path = tmp_path / "m.npz"
    results_file.save(path, res, {"sparsity": 0.5})
    head = results_file.header(path)
    assert head["variants"] == res.variants and head["angle_variants"] == [0, 2] and head["angle_shape"] == (2, 30, 5)
    assert head["extra"] == {"sparsity": 0.5}
    lazy = results_file.LazyModelResults(path, head["variants"], head["angle_variants"])
    assert "pred" not in lazy.__dict__  # nothing read yet
    for k in agg.ModelResults.SMALL:
        assert np.array_equal(getattr(lazy, k), getattr(res, k), equal_nan=k != "pred"), k
    assert isinstance(lazy.angle, np.memmap)
    np.testing.assert_array_equal(lazy.angles(2), angle[2])
    np.testing.assert_array_equal(lazy.angles(0)[[3, 7]], angle[0, [3, 7]])
    with pytest.raises(KeyError, match="not kept"):
        lazy.angles(1)
    np.testing.assert_array_equal(lazy.confusion.count, res.confusion.count)
    np.testing.assert_array_equal(lazy.correct, res.correct)
    # The angle to the true class and the confusion sums cover every variant, the unkept ones included.
    np.testing.assert_array_equal(lazy.angle_true[3], angle[3, np.arange(30), lazy.labels])
    assert lazy.confusion.angle_n.sum() == 4 * 30 - 1  # the degenerate sample-variant left out


def test_a_truncated_file_is_refused(tmp_path):
    res, _ = make()
    path = tmp_path / "m.npz"
    results_file.save(path, res, {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception):  # noqa: B017 - zipfile, numpy: the caller discards the file whatever the type
        results_file.header(path)
