"""PIL's 8-bit resampling as index arithmetic, exactly: what pixelate needs on every device.

Both generators pixelate with PIL: ``resize(BOX)`` down, then ``resize(NEAREST)`` (the peer) or ``resize(BOX)``
(make_cifar_c.py) back up. Pillow's Resample.c does a BOX pass per axis, horizontal first, into a uint8 image:

- ``precompute_coeffs``: output j of n_out takes the input pixels x with ``(x - centre + 0.5) * ss`` in
  (-0.5, 0.5], ``centre = (j + 0.5) * n_in / n_out`` (in double): a run of ``count`` neighbours, each weight
  ``1 / count``;
- ``normalize_coeffs_8bpc``: the weight as ``kk = int(0.5 + 2**22 / count)``; the pixel is
  ``(sum * kk + 2**21) >> 22``, clipped (a sum never exceeds 255 · count, so it never clips).

That rounding is ``floor((sum + half) / count)`` with ``half = count // 2 + 0.5`` (ties up) or one less (ties
down, where ``kk`` fell below ``2**22 / count``); the identity holds while ``count ≤ 128`` (a downscale by at most
128; pixelate's deepest is 4), see :func:`box_axis`. Upscaling by BOX takes one pixel at weight 1: an index map,
as NEAREST is (read off PIL itself, whose affine loop accumulates the position in double).
"""

import dataclasses
import functools

import numpy as np
from PIL import Image

PRECISION_BITS = 22  # Resample.c: 32 - 8 - 2
MAX_COUNT = 128  # the rounding identity's bound: 255 · count / 2**23 < 1 / (2 · count)


@dataclasses.dataclass(frozen=True, eq=False)
class BoxAxis:
    """PIL's BOX pass along one axis, n_in → n_out pixels (numpy int64 / float64 arrays of length n_out)."""

    start: np.ndarray  # first input pixel averaged into each output pixel
    count: np.ndarray  # how many neighbours it averages
    half: np.ndarray  # the rounding: floor((sum + half) / count) is PIL's (sum * kk + 2**21) >> 22

    def groups(self):
        """(count, the output positions with that count) for each distinct count, smallest first."""
        return [(int(c), np.flatnonzero(self.count == c)) for c in np.unique(self.count)]


@functools.cache
def box_axis(n_in: int, n_out: int) -> BoxAxis:
    """precompute_coeffs(BOX) and normalize_coeffs_8bpc of Pillow's Resample.c, in the same double arithmetic."""
    if n_in < 1 or n_out < 1:
        raise ValueError(f"box_axis: sizes must be positive, got {n_in} → {n_out}")
    scale = n_in / n_out  # Pillow: (double)(in1 - in0) / outSize, with in0 = 0.0 and in1 = n_in as floats
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    ss = 1.0 / filterscale
    start, count, half = [], [], []
    for j in range(n_out):
        centre = (j + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        taken = [x for x in range(lo, hi) if -0.5 < (x - centre + 0.5) * ss <= 0.5]
        n = len(taken)
        if n == 0 or taken != list(range(taken[0], taken[0] + n)):
            raise AssertionError(f"box_axis({n_in}, {n_out}): output {j} takes {taken}, not a run of pixels")
        if n > MAX_COUNT:
            raise ValueError(
                f"box_axis: downscaling {n_in} → {n_out} px averages {n} pixels; the exact rounding holds up to "
                f"{MAX_COUNT} (resize in steps)"
            )
        kk = int(0.5 + (1.0 / n) * (1 << PRECISION_BITS))
        ties_up = n % 2 == 1 or kk * n >= 1 << PRECISION_BITS
        start.append(taken[0])
        count.append(n)
        half.append(n // 2 + 0.5 if ties_up else n // 2 - 0.5)
    return BoxAxis(np.array(start), np.array(count), np.array(half))


@functools.cache
def up_index(n_in: int, n_out: int, resample: str) -> np.ndarray:
    """Which input pixel each output pixel copies when PIL scales n_in → n_out ≥ n_in px by 'nearest' or 'box'."""
    if n_out < n_in:
        raise ValueError(f"up_index: {n_in} → {n_out} px is a downscale; this map is for scaling up")
    if resample == "box":
        axis = box_axis(n_in, n_out)
        assert (axis.count == 1).all()  # filterscale 1: one pixel at weight 1
        return axis.start
    if resample != "nearest":
        raise ValueError(f"up_index: resample {resample!r} unknown: use 'nearest' or 'box'")
    # An index-coded 32-bit row through PIL itself: its NEAREST position loop is mode-independent.
    row = Image.fromarray(np.arange(n_in, dtype=np.int32)[None, :])
    return np.asarray(row.resize((n_out, 1), Image.Resampling.NEAREST))[0].astype(np.int64)
