"""JPEG compress-and-decode in batched torch, following the libjpeg(-turbo) path that PIL's ``save(quality=q)`` takes.

Baseline JPEG with PIL's defaults: the standard luminance and chrominance tables scaled by libjpeg's quality
rule (forced to baseline, entries clipped to 1..255), 4:2:0 chroma subsampling, libjpeg's integer colour
conversions, its h2v2 downsampling (alternating rounding bias) and its "fancy" triangular h2v2 upsampling on
decode. Entropy coding is lossless and skipped. The one difference from libjpeg is the DCT: libjpeg's 'islow'
fixed-point DCT and inverse DCT are replaced by the exact float transforms. Their rounding differs by about one
level: even at quality 100 about 11 % of pixels come out 1 level off PIL, and at low quality a coefficient that sits
on a quantisation boundary can land one step away, moving its 8×8 block by up to q/8 levels. Against PIL on 224-px
ImageNet samples the worst image is at 44 dB PSNR or better for every quality of the tables (35 dB on 32-px CIFAR
at quality 7, where one flipped block is a larger share of the image); tests/test_corruptions.py holds it to that.
Everything stays on the images' device: no per-image step.
"""

import functools

import numpy as np
import torch

# libjpeg's jcparam.c std_luminance_quant_tbl / std_chrominance_quant_tbl, natural (row-major) order.
LUMINANCE = (
    16,
    11,
    10,
    16,
    24,
    40,
    51,
    61,
    12,
    12,
    14,
    19,
    26,
    58,
    60,
    55,
    14,
    13,
    16,
    24,
    40,
    57,
    69,
    56,
    14,
    17,
    22,
    29,
    51,
    87,
    80,
    62,
    18,
    22,
    37,
    56,
    68,
    109,
    103,
    77,
    24,
    35,
    55,
    64,
    81,
    104,
    113,
    92,
    49,
    64,
    78,
    87,
    103,
    121,
    120,
    101,
    72,
    92,
    95,
    98,
    112,
    100,
    103,
    99,
)
CHROMINANCE = (
    17,
    18,
    24,
    47,
    99,
    99,
    99,
    99,
    18,
    21,
    26,
    66,
    99,
    99,
    99,
    99,
    24,
    26,
    56,
    99,
    99,
    99,
    99,
    99,
    47,
    66,
    99,
    99,
    99,
    99,
    99,
    99,
) + (99,) * 32

_SCALE = 16  # libjpeg's fixed-point colour conversion: SCALEBITS
_HALF = 1 << (_SCALE - 1)


def _fix(x: float) -> int:
    return int(x * (1 << _SCALE) + 0.5)


def quant_table(base: tuple[int, ...], quality: int) -> np.ndarray:
    """jpeg_set_quality(quality, force_baseline=TRUE): libjpeg's scaling of a base table, as PIL calls it."""
    quality = min(max(int(quality), 1), 100)
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    table = (np.asarray(base, np.int64) * scale + 50) // 100
    return np.clip(table, 1, 255).reshape(8, 8)


@functools.cache
def _dct_matrix(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The orthonormal 8-point DCT-II; the JPEG DCT is this matrix applied to rows and columns."""
    k = np.arange(8)
    d = np.cos((2 * k[None, :] + 1) * k[:, None] * np.pi / 16) * np.sqrt(2 / 8)
    d[0] /= np.sqrt(2)
    return torch.as_tensor(d, dtype=dtype, device=device)


def _rgb_to_ycc(rgb: torch.Tensor) -> torch.Tensor:
    """jccolor.c rgb_ycc_convert on int32 N×3×H×W in 0..255; exact integer arithmetic."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    offset = 128 << _SCALE
    y = (_fix(0.29900) * r + _fix(0.58700) * g + _fix(0.11400) * b + _HALF) >> _SCALE
    # libjpeg folds the rounding into the offset as ONE_HALF - 1 so that Cb and Cr never reach 256.
    cb = (-_fix(0.16874) * r - _fix(0.33126) * g + _fix(0.5) * b + offset + _HALF - 1) >> _SCALE
    cr = (_fix(0.5) * r - _fix(0.41869) * g - _fix(0.08131) * b + offset + _HALF - 1) >> _SCALE
    return torch.stack([y, cb, cr], 1)


def _ycc_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    """jdcolor.c ycc_rgb_convert (its lookup tables written out), clamped like range_limit."""
    y, cb, cr = ycc[:, 0], ycc[:, 1] - 128, ycc[:, 2] - 128
    r = y + ((_fix(1.40200) * cr + _HALF) >> _SCALE)
    g = y + ((-_fix(0.34414) * cb - _fix(0.71414) * cr + _HALF) >> _SCALE)
    b = y + ((_fix(1.77200) * cb + _HALF) >> _SCALE)
    return torch.stack([r, g, b], 1).clamp(0, 255)


def _downsample_h2v2(c: torch.Tensor) -> torch.Tensor:
    """jcsample.c h2v2_downsample: 2×2 sums with the rounding bias alternating 1, 2 along each row."""
    n, h, w = c.shape
    s = c.reshape(n, h // 2, 2, w // 2, 2).sum((2, 4))
    bias = torch.tensor([1, 2], dtype=c.dtype, device=c.device).repeat(w // 4 + 1)[: w // 2]
    return (s + bias) >> 2


def _upsample_h2v2_fancy(c: torch.Tensor) -> torch.Tensor:
    """jdsample.c h2v2_fancy_upsample: triangle filter, 3/4 nearer + 1/4 farther sample in each direction.

    The rows above the first and below the last repeat the edge rows (jdmainct.c's context rows); the first and
    last output columns use the edge column alone, as libjpeg does.
    """
    n, h, w = c.shape
    up = torch.cat([c[:, :1], c[:, :-1]], 1)
    down = torch.cat([c[:, 1:], c[:, -1:]], 1)
    # Column sums for output rows 2i (with the row above) and 2i+1 (with the row below), interleaved.
    colsum = torch.stack([3 * c + up, 3 * c + down], 2).reshape(n, 2 * h, w)
    if w == 1:
        return ((colsum * 4 + 8) >> 4).repeat_interleave(2, -1)
    left = torch.cat([colsum[..., :1], colsum[..., :-1]], -1)
    right = torch.cat([colsum[..., 1:], colsum[..., -1:]], -1)
    even = (3 * colsum + left + 8) >> 4
    odd = (3 * colsum + right + 7) >> 4
    even[..., 0] = (4 * colsum[..., 0] + 8) >> 4
    odd[..., -1] = (4 * colsum[..., -1] + 7) >> 4
    return torch.stack([even, odd], -1).reshape(n, 2 * h, 2 * w)


def _quantise_blocks(plane: torch.Tensor, table: np.ndarray) -> torch.Tensor:
    """Level shift, 8×8 DCT, quantise (round half away from zero, as jcdctmgr.c), dequantise, inverse DCT.

    plane: int32 N×H×W with H, W multiples of 8; returns int32 samples in 0..255 as jidctint.c's range limit.
    """
    n, h, w = plane.shape
    # On CUDA a float32 matmul runs in TF32 (10-bit mantissa) whenever the process has asked for it, e.g.
    # torch.set_float32_matmul_precision("high") for training; that would move coefficients across quantisation
    # boundaries. float64 is never downcast, and 8×8 transforms cost nothing on a GPU. The CPU never downcasts.
    dtype = torch.float32 if plane.device.type == "cpu" else torch.float64
    d = _dct_matrix(plane.device, dtype)
    q = torch.as_tensor(table, dtype=dtype, device=plane.device)
    blocks = (plane.to(dtype) - 128).reshape(n, h // 8, 8, w // 8, 8)
    coef = torch.einsum("ui,nbicj,vj->nbucv", d, blocks, d)
    level = torch.sign(coef) * torch.floor(coef.abs() / q[None, None, :, None, :] + 0.5)
    pixels = torch.einsum("ui,nbucv,vj->nbicj", d, level * q[None, None, :, None, :], d)
    return (torch.round(pixels) + 128).clamp(0, 255).reshape(n, h, w).to(torch.int32)


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode and decode N×3×H×W float images in [0, 1] as PIL's JPEG at `quality` (4:2:0); float out, /255 steps."""
    h, w = x.shape[-2:]
    rgb = torch.round(x * 255).to(torch.int32)
    # libjpeg pads to whole MCUs (16×16 at 4:2:0) by repeating the last column and row.
    ph, pw = -h % 16, -w % 16
    if ph or pw:
        rgb = torch.cat([rgb, rgb[..., -1:, :].expand(-1, -1, ph, -1)], 2) if ph else rgb
        rgb = torch.cat([rgb, rgb[..., -1:].expand(-1, -1, -1, pw)], 3) if pw else rgb
    ycc = _rgb_to_ycc(rgb)
    luma = _quantise_blocks(ycc[:, 0], quant_table(LUMINANCE, quality))[:, :h, :w]
    chroma_table = quant_table(CHROMINANCE, quality)
    # The decoder upsamples only the real chroma samples, ceil(H/2)×ceil(W/2), not the MCU padding.
    ch, cw = (h + 1) // 2, (w + 1) // 2
    chroma = [
        _upsample_h2v2_fancy(_quantise_blocks(_downsample_h2v2(ycc[:, k]), chroma_table)[:, :ch, :cw]) for k in (1, 2)
    ]
    ycc = torch.stack([luma, chroma[0][:, :h, :w], chroma[1][:, :h, :w]], 1)
    return _ycc_to_rgb(ycc).to(x.dtype) / 255
