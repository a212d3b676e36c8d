"""The CPU paths that write their final levels straight into corrupt()'s output: pixelate and JPEG.

Both corruptions are 8-bit C-library work in the reference (PIL's resampling, libjpeg-turbo), about 0.3-0.5 ms
per 224-px image. Around that, float images in [0, 1] cost their own passes: to uint8, to the library's
interleaved layout, back to planar floats. So each pass here is one OpenCV call over a whole chunk (SIMD, one
thread), never a torch elementwise op, and the last one writes corrupt()'s output.

Levels: ``cv2.convertScaleAbs(x, alpha=255)`` rounds x · 255 half to even, as ``torch.round`` does on the torch
path; for 8-bit images (k / 255) every rounding gives k. Output levels are ``k / 255`` in float32, as
``torch.div`` gives them (``cv2.divide`` by 255.0 is exact for all 256 levels; tests/test_corruptions.py checks).

Every function takes u8 (N×C×H×W uint8 levels, contiguous numpy: a uint8 batch as it came, or ``levels`` of a
float one) and writes dest (the same shape, contiguous): uint8 levels for uint8 input, else their floats k / 255.
"""

import functools

import numpy as np

from . import _pil
from ._ops import cv2


def levels(x: np.ndarray) -> np.ndarray:
    """uint8 levels of float images in [0, 1], the same shape."""
    n, c, h, w = x.shape
    return cv2().convertScaleAbs(x.reshape(n * c * h, w), alpha=255).reshape(x.shape)


def _to_floats(u8: np.ndarray, dest: np.ndarray) -> None:
    cv2().divide(u8, 255.0, dst=dest, dtype=cv2().CV_32F)


def floats(u8: np.ndarray) -> np.ndarray:
    """k / 255 in float32 of a uint8 batch, the floats torch's u8.float() / 255 gives (tested for every level), in
    one OpenCV pass: 7× faster than torch.div on one core (0.01 against 0.07 ms per 224-px plane, measured)."""
    n, c, h, w = u8.shape
    out = np.empty(u8.shape, np.float32)
    _to_floats(u8.reshape(n * c * h, w), out.reshape(n * c * h, w))
    return out


def _write(u8: np.ndarray, dest: np.ndarray) -> None:
    """Levels into dest: as they are for a uint8 dest, as k / 255 for a float one."""
    if dest.dtype == np.uint8:
        np.copyto(dest, u8)
    else:
        _to_floats(u8, dest)


def jpeg(u8: np.ndarray, quality: int, dest: np.ndarray) -> None:
    """RGB images through JPEG at `quality`, as PIL's save(quality=q) and decode: OpenCV's libjpeg-turbo writes
    the same bytes with the same defaults (standard tables scaled by quality, 4:2:0, islow DCT) and decodes them
    to the same pixels (tests/test_corruptions.py checks every pixel against PIL). OpenCV's encoder was the fastest
    of PIL, torchvision and OpenCV here (0.12 against 0.17 and 0.22 ms per 224-px image), its decoder as fast as
    torchvision's, and it hands back an interleaved array that splits into planes in one call."""
    cv = cv2()
    params = [cv.IMWRITE_JPEG_QUALITY, int(quality)]
    for image, out in zip(u8, dest, strict=True):
        ok, encoded = cv.imencode(".jpg", cv.merge((image[2], image[1], image[0])), params)  # OpenCV is BGR
        if not ok:
            raise RuntimeError(f"cv2.imencode failed on a {image.shape[1]}×{image.shape[2]} image")
        decoded = cv.imdecode(encoded, cv.IMREAD_COLOR)
        if out.dtype == np.uint8:
            cv.split(decoded, [out[2], out[1], out[0]])  # straight into the output planes (OpenCV fills given arrays)
        else:
            blue, green, red = cv.split(decoded)
            for plane, channel in ((red, 0), (green, 1), (blue, 2)):
                _write(plane, out[channel])


def pixelate(u8: np.ndarray, size: tuple[int, int], up: str, dest: np.ndarray) -> None:
    """PIL's resize(size, BOX) then resize back with `up` ('nearest' or 'box'), on every plane, exactly.

    PIL's two BOX passes are sums of runs of neighbours and a rounding (see _pil). Here each pass runs along the
    rows of a transposed chunk, where taking a run's first, second, ... row is a memcpy and the sums and the
    rounding are whole-array OpenCV and numpy calls over all planes at once; the scale-up is a row gather and
    OpenCV's nearest resize (its column map checked against PIL's, else a numpy gather)."""
    cv = cv2()
    n, c, h, w = u8.shape
    planes = n * c
    height, width = size
    u8 = u8.reshape(planes * h, w)
    # Horizontal pass (first, as in PIL) on the transpose: every input column is a row of planes · h values.
    t = _box_rows(cv.transpose(u8), _pil.box_axis(w, width), 1)  # width × (planes · h)
    # Vertical pass: each plane is a block of h rows.
    small = _box_rows(cv.transpose(t), _pil.box_axis(h, height), planes)  # (planes · height) × width
    # The scale-up, straight into dest from the small image (as floats for a float dest): one write of the output.
    if dest.dtype != np.uint8:
        floats = np.empty(small.shape, np.float32)
        _to_floats(small, floats)
        small = floats
    _scale_up(small, planes, _pil.up_index(height, h, up), _pil.up_index(width, w, up), dest.reshape(planes * h, w))


def _box_rows(u: np.ndarray, axis: "_pil.BoxAxis", blocks: int) -> np.ndarray:
    """PIL's BOX pass down the rows of u (blocks of n_in rows each, uint8) → blocks of n_out rows."""
    n_in, n_out = len(u) // blocks, len(axis.start)
    groups = axis.groups()
    out = None if len(groups) == 1 else np.empty((blocks * n_out, u.shape[1]), np.uint8)
    block = np.arange(blocks)[:, None]
    for count, members in groups:
        first = (block * n_in + axis.start[members]).ravel()  # the run's first row, block by block
        if count == 1:
            part = np.take(u, first, axis=0)  # kk = 2**22: the pixel itself
        else:
            total = np.add(np.take(u, first, axis=0), np.take(u, first + 1, axis=0), dtype=np.uint16)
            for k in range(2, count):
                np.add(total, np.take(u, first + k, axis=0), out=total)
            # floor((sum + half) / count) as OpenCV's round-half-to-even of sum / count + beta: beta puts every
            # value a clear 0.5 / count away from a tie, on the side PIL's rounding takes (see _pil).
            half = float(axis.half[members[0]])
            part = cv2().convertScaleAbs(total, alpha=1 / count, beta=(half - count / 2) / count)
        if out is None:
            return part
        out[(block * n_out + members).ravel()] = part
    return out


def _scale_up(src: np.ndarray, planes: int, rows: np.ndarray, columns: np.ndarray, dest: np.ndarray) -> None:
    """dest = each of the planes stacked in src (planes · n rows) with rows and columns picked by the index maps:
    one OpenCV nearest resize of the whole stack where its maps are these (checked on index-coded images, for
    these sizes), else numpy gathers."""
    n_in, n_out = len(src) // planes, len(rows)
    stacked_rows = (np.arange(planes)[:, None] * n_in + rows).ravel()
    if _cv2_nearest_is(len(src), len(dest), stacked_rows.tobytes()) and _cv2_nearest_is(
        src.shape[1], dest.shape[1], columns.tobytes()
    ):
        cv2().resize(src, dest.shape[::-1], dst=dest, interpolation=cv2().INTER_NEAREST_EXACT)
    else:
        np.take(np.take(src, stacked_rows, axis=0), columns, axis=1, out=dest)
    assert n_out * planes == len(dest)


@functools.cache
def _cv2_nearest_is(n_in: int, n_out: int, index: bytes) -> bool:
    """Whether OpenCV's INTER_NEAREST_EXACT map for n_in → n_out pixels is `index` (read off an index-coded row;
    its row map is the same arithmetic)."""
    row = np.arange(n_in, dtype=np.float32)[None, :]  # exact integers in float32
    got = cv2().resize(row, (n_out, 1), interpolation=cv2().INTER_NEAREST_EXACT)[0].astype(np.int64)
    return got.tobytes() == index
