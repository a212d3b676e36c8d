"""Batched torch versions of the numpy/scipy/skimage/PIL building blocks the reference generator uses.

Every function takes N×C×H×W float tensors and works on whatever device they live on.
"""

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F

# ITU-R 601 luma, the weights of cv2.COLOR_RGB2GRAY that the reference uses for snow.
LUMA = (0.299, 0.587, 0.114)


def luma(x: torch.Tensor) -> torch.Tensor:
    """N×3×H×W → N×1×H×W with ITU-R 601 weights."""
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _pad_index(n: int, p: int, mode: str, device) -> torch.Tensor:
    """Source indices for padding a length-n axis by p on both sides (any p, repeating reflections)."""
    i = torch.arange(-p, n + p, device=device)
    if mode == "replicate":  # scipy/skimage 'nearest', cv2 BORDER_REPLICATE
        return i.clamp(0, n - 1)
    if mode == "symmetric":  # scipy 'reflect': d c b a | a b c d
        i = i % (2 * n)
        return torch.where(i >= n, 2 * n - 1 - i, i)
    if mode == "reflect101":  # cv2 BORDER_REFLECT_101 (cv2 default), torch 'reflect': d c b | a b c d
        if n == 1:
            return torch.zeros_like(i)
        i = i % (2 * n - 2)
        return torch.where(i >= n, 2 * n - 2 - i, i)
    raise ValueError(f"unknown padding mode {mode!r}")


def pad(x: torch.Tensor, ph: int, pw: int, mode: str) -> torch.Tensor:
    if ph:
        x = x.index_select(-2, _pad_index(x.shape[-2], ph, mode, x.device))
    if pw:
        x = x.index_select(-1, _pad_index(x.shape[-1], pw, mode, x.device))
    return x


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy.ndimage.gaussian_filter1d's kernel (what skimage.filters.gaussian uses)."""
    radius = int(truncate * float(sigma) + 0.5)
    if sigma <= 0 or radius == 0:
        return np.ones(1)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def correlate1d(x: torch.Tensor, kernel: np.ndarray, dim: int, mode: str) -> torch.Tensor:
    """Correlate along dim (-1 or -2) as a weighted sum of shifted slices of the padded tensor.

    On CPU this is several times faster than conv2d with a one-channel kernel, and it batches over everything.
    """
    if len(kernel) == 1:
        return x * float(kernel[0])
    r = len(kernel) // 2
    n = x.shape[dim]
    xp = pad(x, r, 0, mode) if dim == -2 else pad(x, 0, r, mode)
    out = xp.narrow(dim, 0, n) * float(kernel[0])
    for i in range(1, len(kernel)):
        out.add_(xp.narrow(dim, i, n), alpha=float(kernel[i]))
    return out


def filter_separable(x: torch.Tensor, ky: np.ndarray, kx: np.ndarray, mode: str) -> torch.Tensor:
    """Correlate every channel with ky (vertical) then kx (horizontal)."""
    return correlate1d(correlate1d(x, ky, -2, mode), kx, -1, mode)


def gaussian(x: torch.Tensor, sigma, mode: str = "replicate", truncate: float = 4.0) -> torch.Tensor:
    """skimage.filters.gaussian per channel (default mode 'nearest' = replicate); sigma scalar or (sy, sx)."""
    sy, sx = (sigma, sigma) if np.isscalar(sigma) else sigma
    ky, kx = gaussian_kernel1d(sy, truncate), gaussian_kernel1d(sx, truncate)
    if x.device.type == "cpu" and x.dtype == torch.float32:
        border = _CV2_BORDER[mode]
        return _cv2_planes(x, lambda plane, out: cv2().sepFilter2D(plane, -1, kx, ky, dst=out, borderType=border))
    return filter_separable(x, ky, kx, mode)


def cv2():
    """OpenCV, imported on first use: a dependency of the peer package, heavy, and used only on the CPU."""
    import cv2 as module

    return module


# Our padding modes as cv2 border types (cv2 'reflect' is scipy's 'reflect', our 'symmetric').
_CV2_BORDER = {"replicate": 1, "symmetric": 2, "reflect101": 4}  # BORDER_REPLICATE, BORDER_REFLECT, _REFLECT_101


def _cv2_planes(x: torch.Tensor, function) -> torch.Tensor:
    """function(plane, out) on every H×W plane of a CPU float32 batch, into a new batch. OpenCV's SIMD filters beat
    torch's elementwise passes on one CPU core several times over; one call per plane costs microseconds."""
    src = x.contiguous().numpy()
    out = np.empty_like(src)
    for i in range(src.shape[0]):
        for k in range(src.shape[1]):
            function(src[i, k], out[i, k])
    return torch.from_numpy(out)


def _pad_replicate_cv2(x: torch.Tensor, r: int) -> torch.Tensor:
    """pad(x, r, r, 'replicate') on a CPU float32 batch by OpenCV's border copy, plane by plane."""
    src = x.contiguous().numpy()
    n, c, h, w = src.shape
    out = np.empty((n, c, h + 2 * r, w + 2 * r), np.float32)
    for i in range(n):
        for k in range(c):
            cv2().copyMakeBorder(src[i, k], r, r, r, r, cv2().BORDER_REPLICATE, dst=out[i, k])
    return torch.from_numpy(out)


def _cv2_gaussian_kernel(ksize: int, sigma: float) -> np.ndarray:
    t = np.arange(ksize) - (ksize - 1) / 2
    k = np.exp(-(t**2) / (2 * sigma**2))
    return k / k.sum()


@functools.cache
def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The reference's antialiased disk: cv2.GaussianBlur of an aliased disk (BORDER_REFLECT_101). Cached (read-only):
    building it took 0.8 ms, per chunk of six 224-px images."""
    if radius <= 8:
        grid, ksize = np.arange(-8, 8 + 1), 3
    else:
        grid, ksize = np.arange(-radius, radius + 1), 5
    xx, yy = np.meshgrid(grid, grid)
    aliased = ((xx**2 + yy**2) <= radius**2).astype(np.float64)
    aliased /= aliased.sum()
    k = _cv2_gaussian_kernel(ksize, alias_blur)
    t = torch.from_numpy(aliased)[None, None]
    t = filter_separable(t, k, k, "reflect101")
    kernel = t[0, 0].numpy()
    kernel.flags.writeable = False
    return kernel


def _trimmed(kernel: np.ndarray) -> np.ndarray:
    """A centred odd kernel as float32 without weights below 1e-30 (float32 denormals, or zero there: the alias
    blur of the peer's disk at sigma 0.1 makes e^-200) and then without the all-zero border rings.

    The reference's disk sits on a 17×17 grid from radius 0.3 up to 8: OpenCV filters kernels of 130 weights and
    more through the DFT, 0.48 ms per 224-px plane whatever the disk, and smaller ones directly, where denormal
    weights cost 30×. Trimmed, the ImageNet table's severities 1-2 run 4× and 2.5× faster and all of CIFAR's about
    10× (measured, one thread); the sums change in the last float32 bit (at most 5e-7 here)."""
    k = np.where(np.abs(kernel) < 1e-30, 0.0, kernel).astype(np.float32)
    n = len(k)
    assert k.shape == (n, n) and n % 2 == 1, f"_trimmed: a centred odd square kernel, got {k.shape}"
    ring = 0
    while ring < n // 2 and not (k[ring].any() or k[-1 - ring].any() or k[:, ring].any() or k[:, -1 - ring].any()):
        ring += 1
    return np.ascontiguousarray(k[ring : n - ring, ring : n - ring])


def filter2d(x: torch.Tensor, kernel: np.ndarray, mode: str = "reflect101") -> torch.Tensor:
    """cv2.filter2D per channel (a correlation, default border BORDER_REFLECT_101), through the FFT.

    Disk kernels are up to 21×21 and not separable; on the padded image the FFT product is exactly the linear
    correlation inside the crop, at a cost that does not grow with the kernel.
    """
    if x.device.type == "cpu" and x.dtype == torch.float32:
        k32, border = _trimmed(kernel), _CV2_BORDER[mode]
        return _cv2_planes(x, lambda plane, out: cv2().filter2D(plane, -1, k32, dst=out, borderType=border))
    h, w = x.shape[-2:]
    kh, kw = kernel.shape
    xp = pad(x, kh // 2, kw // 2, mode)
    ph, pw = xp.shape[-2:]
    k = torch.zeros(ph, pw, dtype=x.dtype, device=x.device)
    # Flipped kernel at the origin (wrapping) turns the FFT's convolution into cv2's correlation.
    flipped = torch.as_tensor(kernel[::-1, ::-1].copy(), dtype=x.dtype, device=x.device)
    k[:kh, :kw] = flipped
    k = torch.roll(k, (-(kh // 2), -(kw // 2)), (0, 1))
    out = torch.fft.irfft2(torch.fft.rfft2(xp) * torch.fft.rfft2(k), s=(ph, pw))
    return out[..., kh // 2 : kh // 2 + h, kw // 2 : kw // 2 + w]


def _motion_shifts(width: int, angle: float) -> list[tuple[int, int]]:
    """The (dy, dx) of each tap of the reference's motion kernel at `angle` degrees."""
    py, px = width * math.sin(math.radians(angle)), width * math.cos(math.radians(angle))
    hyp = math.hypot(py, px)
    return [(-math.ceil(i * py / hyp - 0.5), -math.ceil(i * px / hyp - 0.5)) for i in range(width)]


def motion_blur(
    x: torch.Tensor, radius: float, sigma: float, angles: torch.Tensor, batched: bool | None = None
) -> torch.Tensor:
    """The peer's numpy port of ImageMagick's MotionBlurImage, one angle (degrees) per image.

    A one-sided Gaussian-weighted sum of copies shifted along the angle, edges replicated; a tap whose shift
    leaves the image ends the sum, as in the reference (shifts only grow along the kernel, so that is a mask).
    batched (default: on any device but the CPU) gathers every image's tap at once, `width` gathers in all; the
    CPU path adds per-image slices in numpy instead, which is faster there. Both give the same sums.
    """
    n, c, h, w = x.shape
    width = int(radius * 2 + 1)
    kernel = np.exp(-(np.arange(width) ** 2) / (2 * sigma**2))
    kernel /= kernel.sum()
    if batched is None:
        batched = x.device.type != "cpu"
    if not batched and x.device.type == "cpu" and x.dtype == torch.float32:
        # OpenCV's border copy per plane: a third of the CPU path's time went to two index_select gathers.
        xp = _pad_replicate_cv2(x, width)
    else:
        xp = pad(x, width, width, "replicate")
    if batched:
        # Shifts computed on the device in float64, as math.* computes them on the host.
        rad = torch.deg2rad(angles.to(torch.float64))
        py, px = width * torch.sin(rad), width * torch.cos(rad)
        hyp = torch.hypot(py, px)
        i = torch.arange(width, device=x.device, dtype=torch.float64)
        dy = -torch.ceil(i[None] * (py / hyp)[:, None] - 0.5).long()  # n×width
        dx = -torch.ceil(i[None] * (px / hyp)[:, None] - 0.5).long()
        weight = torch.as_tensor(kernel, dtype=x.dtype, device=x.device)[None] * ((dy.abs() < h) & (dx.abs() < w))
        hp, wp = xp.shape[-2:]
        flat = xp.reshape(n, c, hp * wp)
        base = (torch.arange(h, device=x.device)[:, None] * wp + torch.arange(w, device=x.device)[None]).view(-1)
        out = torch.zeros(n, c, h * w, dtype=x.dtype, device=x.device)
        for t in range(width):
            start = (width - dy[:, t].clamp(-h + 1, h - 1)) * wp + width - dx[:, t].clamp(-w + 1, w - 1)
            index = (start[:, None] + base[None]).unsqueeze(1).expand(n, c, h * w)
            out += weight[:, t].view(n, 1, 1) * flat.gather(2, index)
        return out.reshape(n, c, h, w)
    out_t = out = torch.zeros_like(x)
    if x.device.type == "cpu":
        # Thousands of per-image slice adds: numpy runs them single-threaded, where torch's thread pool costs
        # more than the work on a busy CPU. Same memory, no copies.
        xp, out = xp.numpy(), out_t.numpy()
    for j, angle in enumerate(angles.tolist()):
        for i, (dy, dx) in enumerate(_motion_shifts(width, angle)):
            if abs(dy) >= h or abs(dx) >= w:
                break  # the simulated motion left the image, as in the reference
            out[j] += float(kernel[i]) * xp[j, :, width - dy : width - dy + h, width - dx : width - dx + w]
    return out_t


def zoom(x: torch.Tensor, factor: float, trim: str | None) -> torch.Tensor:
    """The reference's clipped_zoom: central crop of ceil(side/factor), scipy zoom order=1, then trim.

    scipy.ndimage.zoom(order=1, grid_mode=False) maps output to input with (in-1)/(out-1), which is exactly
    bilinear interpolation with align_corners=True. trim: 'topleft' (the peer's ImageNet code keeps [:H, :W]),
    'center' (make_cifar_c.py trims (out-H)//2 each side) or None (untrimmed, larger than the input).
    """
    h, w = x.shape[-2:]
    ch, cw = int(np.ceil(h / float(factor))), int(np.ceil(w / float(factor)))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top : top + ch, left : left + cw]
    size = (int(round(ch * factor)), int(round(cw * factor)))
    z = crop if size == (ch, cw) else F.interpolate(crop, size=size, mode="bilinear", align_corners=True)
    if trim == "topleft":
        return z[..., :h, :w]
    if trim == "center":
        th, tw = (z.shape[-2] - h) // 2, (z.shape[-1] - w) // 2
        return z[..., th : th + h, tw : tw + w]
    return z


def _add_rolled(a: torch.Tensor, b: torch.Tensor, shift: int, dim: int, out: torch.Tensor | None = None):
    """a + torch.roll(b, shift, dim) for shift ±1, the same sums without roll's concatenated copy (into out if given,
    which may be a strided view)."""
    k = b.shape[dim]
    if out is None:
        out = torch.empty(a.shape, dtype=torch.result_type(a, b), device=a.device)
    wrap, body = (k - 1, 0) if shift == -1 else (0, 1)  # where the wrapped element lands, where the rest starts
    src = 1 if shift == -1 else 0
    torch.add(a.narrow(dim, body, k - 1), b.narrow(dim, src, k - 1), out=out.narrow(dim, body, k - 1))
    torch.add(a.narrow(dim, wrap, 1), b.narrow(dim, k - 1 - wrap, 1), out=out.narrow(dim, wrap, 1))
    return out


def plasma_fractal(n: int, mapsize: int, wibbledecay: float, gen: torch.Generator, device) -> torch.Tensor:
    """The reference's diamond-square heightmap in [0, 1], n independent maps at once (n×mapsize×mapsize).

    Written for few temporaries: torch.roll concatenates a copy, and on one CPU core those copies (and the page
    faults of fresh temporaries) were 60 % of fog; the sums are the same ones in the same order."""
    assert mapsize & (mapsize - 1) == 0
    m = torch.zeros(n, mapsize, mapsize, device=device)
    stepsize, wibble = mapsize, 100.0

    def wibbledmean(a, out):
        # a / 4 + wibble * (uniform · 2·wibble - wibble), operation by operation as the reference, into out.
        noise = torch.rand(a.shape, generator=gen, device=device).mul_(2 * wibble).sub_(wibble).mul_(wibble)
        torch.add(a.div_(4), noise, out=out)

    while stepsize >= 2:
        half = stepsize // 2
        corner = m[:, 0::stepsize, 0::stepsize]
        square = _add_rolled(corner, corner, -1, 1)
        square = _add_rolled(square, square, -1, 2)
        dr = m[:, half::stepsize, half::stepsize]
        wibbledmean(square, dr)
        ul = m[:, 0::stepsize, 0::stepsize]
        lt = _add_rolled(dr, dr, 1, 1).add_(ul)
        wibbledmean(_add_rolled(lt, ul, -1, 2, out=lt), m[:, 0::stepsize, half::stepsize])
        tt = _add_rolled(dr, dr, 1, 2).add_(ul)
        wibbledmean(_add_rolled(tt, ul, -1, 1, out=tt), m[:, half::stepsize, 0::stepsize])
        stepsize //= 2
        wibble /= wibbledecay
    flat = m.view(n, -1)
    flat.sub_(flat.min(1, keepdim=True).values)
    flat.div_(flat.max(1, keepdim=True).values)
    return m


def _box_bounds(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """PIL's BOX resampling: output j averages the input pixels whose centres fall in its box (whole pixels)."""
    scale = n_in / n_out
    support = 0.5 * max(scale, 1.0)
    centre = (np.arange(n_out) + 0.5) * scale
    lo = np.maximum((centre - support + 0.5).astype(np.int64), 0)
    hi = np.minimum((centre + support + 0.5).astype(np.int64), n_in)
    return lo, hi


def _box_axis(x: torch.Tensor, dim: int, n_out: int) -> torch.Tensor:
    lo, hi = _box_bounds(x.shape[dim], n_out)
    csum = torch.cumsum(x, dim)
    csum = torch.cat([torch.zeros_like(x.narrow(dim, 0, 1)), csum], dim)
    lo_t = torch.as_tensor(lo, device=x.device)
    hi_t = torch.as_tensor(hi, device=x.device)
    count = torch.as_tensor(hi - lo, dtype=x.dtype, device=x.device)
    shape = [1] * x.dim()
    shape[dim] = n_out
    return (csum.index_select(dim, hi_t) - csum.index_select(dim, lo_t)) / count.view(shape)


def box_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """PIL Image.resize(size[::-1], Image.BOX) on float images (PIL's 8-bit intermediate rounding aside)."""
    return _box_axis(_box_axis(x, -1, size[1]), -2, size[0])


def nearest_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """PIL Image.resize(..., Image.NEAREST): source index floor((j + 0.5) * in / out)."""
    h, w = x.shape[-2:]
    iy = torch.as_tensor(
        np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.int64), h - 1), device=x.device
    )
    ix = torch.as_tensor(
        np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.int64), w - 1), device=x.device
    )
    return x.index_select(-2, iy).index_select(-1, ix)


def hsv_value_shift(x: torch.Tensor, c: float) -> torch.Tensor:
    """skimage rgb2hsv → V = clip(V + c) → hsv2rgb, in closed form.

    With H and S fixed every channel is linear in V, so RGB scales by V'/V; black (V = 0, S = 0 in skimage)
    becomes grey V'.
    """
    v = x.amax(1, keepdim=True)
    v_new = (v + c).clamp(0, 1)
    scaled = x * (v_new / v.clamp_min(1e-12))
    return torch.where(v > 0, scaled, v_new.expand_as(x))


def hsv_saturation(x: torch.Tensor, factor: float, offset: float) -> torch.Tensor:
    """skimage rgb2hsv → S = clip(S * factor + offset) → hsv2rgb, in closed form.

    Each channel is V - V·S·g(H), so with H and V fixed it moves towards V in proportion to S'/S. skimage gives
    grey pixels hue 0 (red), so a grey pixel that gains saturation S' becomes (V, V(1-S'), V(1-S')).
    """
    v = x.amax(1, keepdim=True)
    mn = x.amin(1, keepdim=True)
    s = torch.where(v > 0, (v - mn) / v.clamp_min(1e-12), torch.zeros_like(v))
    s_new = (s * factor + offset).clamp(0, 1)
    coloured = v - (v - x) * (s_new / s.clamp_min(1e-12))
    red = torch.zeros_like(x)
    red[:, 1:] = 1
    grey = v * (1 - s_new * red)
    return torch.where(s > 0, coloured, grey)


def glass_shuffle_offsets(
    n: int, h: int, w: int, max_delta: int, iterations: int, gen: torch.Generator, device
) -> torch.Tensor:
    """The reference's random moves: (dy, dx) in [-max_delta, max_delta) per pixel and pass, n×iterations×2×H×W."""
    # int8 halves the generator's memory traffic next to int64; the moves are tiny.
    return torch.randint(
        -max_delta, max_delta, (n, iterations, 2, h, w), generator=gen, device=device, dtype=torch.int8
    )


def glass_shuffle_map(
    n: int,
    h: int,
    w: int,
    max_delta: int,
    iterations: int,
    gen: torch.Generator,
    device,
    offsets: torch.Tensor | None = None,
) -> torch.Tensor:
    """Flat source index per output pixel (n×H·W) of the glass-blur shuffle, computed in parallel, exactly.

    The reference visits rows H-d..d+1 and, in each, columns W-d..d+1 (d = max_delta), both descending, and copies
    x[i + dy, j + dx] into x[i, j]. A copy, not a swap: it writes `x[h, w], x[h', w'] = x[h', w'], x[h, w]` on an
    H×W×3 array, where the right side holds views, so x[h', w'] keeps its value; both published datasets were made
    that way (tests/test_corruptions.py checks the displacements against the peer's own loop). A source is either
    untouched when it is read (outside the visited window, or visited later, i.e. earlier in raster order: the
    original value) or already written (later in raster order: whatever it received). So each pass is a forest of
    pointer chains that only run forward in raster order; pointer doubling resolves every chain in at most
    ceil(log2(H·W)) gathers, with no sequential step. The result equals the sequential loop for the same offsets
    (tests/test_corruptions.py checks that against a literal port of the loop).
    """
    if offsets is None:
        offsets = glass_shuffle_offsets(n, h, w, max_delta, iterations, gen, device)
    d = max_delta
    rows = torch.arange(h, device=device).view(h, 1)
    cols = torch.arange(w, device=device).view(1, w)
    flat = (rows * w + cols).expand(h, w)
    visited = (rows > d) & (rows <= h - d) & (cols > d) & (cols <= w - d)
    perm = flat.reshape(1, h * w).expand(n, h * w)
    steps = max(1, math.ceil(math.log2(h * w)))
    for k in range(iterations):
        dy, dx = offsets[:, k, 0].long(), offsets[:, k, 1].long()
        sy, sx = rows + dy, cols + dx  # always inside the image for visited pixels
        src = torch.where(visited, sy * w + sx, flat).reshape(n, h * w)
        # Did the source already receive its value this pass? It was visited, and before (higher raster index).
        src_visited = (sy > d) & (sy <= h - d) & (sx > d) & (sx <= w - d)
        chained = (visited & src_visited & ((dy > 0) | ((dy == 0) & (dx > 0)))).reshape(n, h * w)
        # jump[p]: follow the chain one link; a pixel whose source is final points at itself.
        jump = torch.where(chained, src, flat.reshape(1, h * w))
        # ceil(log2(H·W)) doublings resolve any chain; real chains are short (a link continues with probability
        # under 1/2), so stop as soon as a doubling changes nothing: 4-6 gathers instead of 16 at 224 px.
        for _ in range(steps):
            longer = jump.gather(1, jump)
            if torch.equal(longer, jump):
                break
            jump = longer
        # The chain ends at a pixel whose source had not been written yet: that source's value at pass start.
        perm = perm.gather(1, src.gather(1, jump))
    return perm


def _shift(x: torch.Tensor, dy: int, dx: int, fill: float = 0.0) -> torch.Tensor:
    """x[..., i + dy, j + dx] at (i, j), `fill` outside the image."""
    h, w = x.shape[-2:]
    out = torch.full_like(x, fill)
    out[..., max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)] = x[
        ..., max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)
    ]
    return out


def canny(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """cv2.Canny(u8, low, high) (3×3 Sobel, L1 gradient) on N×1×H×W integer-valued floats; bool edges.

    Sobel with replicated borders, cv2's integer sector test for non-maximum suppression (tan 22.5° as 13573/2^15,
    zero magnitude outside the image), then hysteresis: weak pixels 8-connected to a strong one, grown by 3×3
    dilation until nothing changes.
    """
    smooth, diff = np.array([1.0, 2.0, 1.0]), np.array([-1.0, 0.0, 1.0])
    gx = filter_separable(x, smooth, diff, "replicate")
    gy = filter_separable(x, diff, smooth, "replicate")
    mag = gx.abs() + gy.abs()
    ax, ay = gx.abs(), gy.abs() * 32768
    tg22 = ax * 13573
    horizontal = ay < tg22
    vertical = ~horizontal & (ay > tg22 + ax * 65536)
    s = torch.where((gx < 0) != (gy < 0), -1, 1)  # cv2: (dx ^ dy) < 0 ? -1 : 1
    keep_h = (mag > _shift(mag, 0, -1)) & (mag >= _shift(mag, 0, 1))
    keep_v = (mag > _shift(mag, -1, 0)) & (mag >= _shift(mag, 1, 0))
    keep_d = torch.where(
        s > 0,
        (mag > _shift(mag, -1, -1)) & (mag > _shift(mag, 1, 1)),
        (mag > _shift(mag, -1, 1)) & (mag > _shift(mag, 1, -1)),
    )
    peak = torch.where(horizontal, keep_h, torch.where(vertical, keep_v, keep_d)) & (mag > low)
    weak = peak.to(x.dtype)
    edges = (peak & (mag > high)).to(x.dtype)
    # Each round grows every edge by one pixel into weak candidates; edges are short, so a handful of rounds do.
    # One host sync per round tells when to stop.
    while True:
        grown = torch.maximum(edges, F.max_pool2d(edges, 3, 1, 1) * weak)
        if torch.equal(grown, edges):
            return edges > 0
        edges = grown


def distance_to(mask: torch.Tensor, cap: int) -> torch.Tensor:
    """Euclidean distance of every pixel to the nearest True pixel of N×1×H×W `mask`, capped at `cap`.

    Exact below the cap (cv2.distanceTransform(DIST_L2, 5), used by the reference, is a 5×5 chamfer approximation
    of the same distance, within a few per cent): row distances by running maxima of edge positions, then the
    minimum over vertical offsets |k| <= cap of k² + row distance², both batched.
    """
    h, w = mask.shape[-2:]
    far = float(cap + 1)
    cols = torch.arange(w, device=mask.device, dtype=torch.float32).expand_as(mask)
    left = torch.where(mask, cols, torch.full_like(cols, -1e9)).cummax(-1).values
    right = torch.where(mask, cols, torch.full_like(cols, 1e9)).flip(-1).cummin(-1).values.flip(-1)
    row = torch.minimum(cols - left, right - cols).clamp(max=far)
    reach = min(cap, h - 1)
    sq = F.pad(row * row, (0, 0, reach, reach), value=far * far)  # rows beyond the image: no edge within the cap
    best = sq[..., reach : reach + h, :].clone()
    for k in range(1, reach + 1):
        best = torch.minimum(best, sq[..., reach + k : reach + k + h, :] + k * k)
        best = torch.minimum(best, sq[..., reach - k : reach - k + h, :] + k * k)
    return best.sqrt().clamp(max=float(cap))


def equalize_hist(x: torch.Tensor) -> torch.Tensor:
    """cv2.equalizeHist per image on N×1×H×W integer-valued floats in 0..255."""
    n = x.shape[0]
    flat = x.reshape(n, -1).long()
    hist = torch.zeros(n, 256, dtype=torch.float32, device=x.device).scatter_add_(
        1, flat, torch.ones_like(flat, dtype=torch.float32)
    )
    cdf = hist.cumsum(1)
    first = (hist > 0).float().argmax(1, keepdim=True)  # lowest level present
    below = hist.gather(1, first)
    total = float(flat.shape[1])
    # cv2: lut[first] = 0, lut[v] = saturate_cast<uchar>((cdf[v] - hist[first]) * 255 / (total - hist[first]));
    # an image of one level keeps it.
    scale = 255.0 / (total - below).clamp_min(1)
    lut = torch.round((cdf - below) * scale).clamp(0, 255)
    lut = torch.where(
        below == total,
        torch.arange(256, device=x.device, dtype=torch.float32).expand(n, 256).gather(1, first).expand(n, 256),
        lut,
    )
    return lut.gather(1, flat).reshape(x.shape)


def liquid_texture(layer: torch.Tensor) -> torch.Tensor:
    """The reference's water-spatter texture on N×1×H×W, batched on the layer's device, normalised to max 1.

    cv2 steps in the reference, one image at a time: uint8 layer → Canny edges → distance to them, truncated at
    20 → 3×3 blur → uint8 → equalizeHist → emboss (filter2D, saturated to uint8) → 3×3 blur (rounded) → texture
    × layer. Each has its torch counterpart here, integer-exact except the distance (see distance_to).
    """
    # np.uint8(float) wraps values above 255 (a layer slightly over 1), as the reference's astype does.
    liquid = torch.floor(layer * 255).remainder(256)
    if layer.device.type == "cpu":
        return _liquid_texture_cv2(liquid)
    edges = canny(liquid, 50, 150)
    dist = distance_to(edges, 20)
    box = np.full(3, 1 / 3)
    dist = torch.floor(filter_separable(dist, box, box, "reflect101") + 1e-4)  # float blur, then astype(uint8)
    dist = equalize_hist(dist)
    emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float64)
    dist = pad(dist, 1, 1, "reflect101")
    h, w = layer.shape[-2:]
    embossed = sum(float(emboss[i, j]) * dist[..., i : i + h, j : j + w] for i in range(3) for j in range(3))
    dist = embossed.clamp(0, 255)
    dist = torch.round(filter_separable(dist, np.ones(3), np.ones(3), "reflect101") / 9)  # uint8 box blur rounds
    m = liquid * dist
    return m / m.reshape(len(m), -1).amax(1).clamp_min(1e-12).view(-1, 1, 1, 1)


def _liquid_texture_cv2(liquid: torch.Tensor) -> torch.Tensor:
    """liquid_texture on the CPU: the reference's own cv2 calls, image by image (exact, and 5-10× faster there than
    the batched torch steps, whose hysteresis and distance loops pay off only on a GPU)."""
    import cv2  # imported here: a dependency of the peer package, heavy, and needed only on this path

    u8 = liquid.to(torch.uint8).numpy()
    out = np.empty(u8.shape, np.float32)
    emboss = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    for i, layer in enumerate(u8[:, 0]):
        dist = 255 - cv2.Canny(layer, 50, 150)
        dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
        _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
        dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
        dist = cv2.equalizeHist(dist)
        dist = cv2.filter2D(dist, cv2.CV_8U, emboss)
        dist = cv2.blur(dist, (3, 3)).astype(np.float32)
        m = layer * dist
        out[i, 0] = m / max(float(m.max()), 1e-12)
    return torch.from_numpy(out)
