"""The 19 corruptions, each a batched torch port of the reference function of the same name.

Every function takes x (N×C×H×W float32 in [0, 1]), the severity's parameter entry p, the table name
('cifar' or 'imagenet', where the two generators differ in more than numbers) and a torch.Generator on x's
device. Colour corruptions (see COLOUR) get C = 3; the rest work channel by channel for any C.

A function returns floats, which corrupt() clips to [0, 1] as it quantises them (so the channel-wise ones leave
the reference's final np.clip to it: one pass fewer), or uint8, its final levels. Colour corruptions clip
themselves, as the luma of a grey input is taken from the clipped RGB.
"""

import functools
import importlib.util
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.io import decode_jpeg, encode_jpeg

from . import _cpu, _ops, _pil

# Corruptions that mix channels or add colour; grey input runs through them as replicated RGB.
COLOUR = frozenset({"brightness", "saturate", "jpeg_compression", "frost", "spatter", "snow"})
# Where the CPU runs the reference's own C library instead of torch, and which (corruptions.path reports it).
CPU_LIBRARY = {
    "glass_blur": "torch + cv2 (Gaussian)",
    "defocus_blur": "cv2 (filter2D)",
    "gaussian_blur": "cv2 (sepFilter2D)",
    "elastic_transform": "torch + cv2 (Gaussian)",
    "jpeg_compression": "cv2 (libjpeg-turbo)",
    "pixelate": "cv2 (PIL's BOX arithmetic)",
    "spatter": "torch + cv2 (Gaussian, texture)",
}


_HALF = torch.tensor(0.5)


def _to_u8(x: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] as the uint8 image the reference's C libraries take: x · 255 rounded half to even
    (as OpenCV's convertScaleAbs on the CPU paths), so a uint8 image's /255 gives back its levels."""
    return torch.round(x * 255).to(torch.uint8)


def _uniform(shape, lo, hi, gen, device):
    return torch.rand(shape, generator=gen, device=device) * (hi - lo) + lo


def gaussian_noise(x, p, table, gen):
    return torch.randn(x.shape, generator=gen, device=x.device).mul_(p).add_(x)


def shot_noise(x, p, table, gen):
    c = int(p)
    level = torch.add(_HALF.to(x.device), x, alpha=255).floor_()
    if not torch.equal(level / 255, x):  # not an 8-bit image: no table, torch's per-value sampler
        return (torch.poisson(x * c, generator=gen) / c).clamp(0, 1)
    # An 8-bit image has 256 rates, so every Poisson(level / 255 · c) is one alias table (Walker), sampled with one
    # uniform (its integer part picks the slot, its fraction accepts the slot or takes its alias) and two lookups:
    # several times faster on a CPU than a per-value sampler (torch's, or numpy's in the reference). Counts of c
    # and more all give 1 after the clip, so they are one outcome: c + 1 in all. The fraction resolves
    # probabilities to (c + 1)·2⁻²⁴ (4·10⁻⁶ for the ImageNet table, 3·10⁻⁵ at CIFAR's c = 500).
    accept, value = _poisson_alias(c, x.device)
    u = torch.rand(x.shape, generator=gen, device=x.device).mul_(c + 1)
    outcome = u.floor().clamp_(max=c)
    slot = level.mul_(c + 1).add_(outcome).long()  # exact in float32: below 256 · 501
    keep = u.sub_(outcome) < accept.take(slot)
    return torch.where(keep, outcome.div_(c), value.take(slot))


@functools.cache
def _poisson_alias(c: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Walker alias tables of Poisson(level / 255 · c) on the outcomes 0..c (c standing for c and more), for the
    256 levels, flat (slot = level·(c+1) + outcome): the probability of keeping the slot's own outcome, and the
    alias outcome / c taken otherwise."""
    k = np.arange(c + 1)
    log_factorial = np.array([math.lgamma(i + 1) for i in k])
    accept = np.ones((256, c + 1))
    alias = np.tile(k, (256, 1))
    for level in range(256):
        rate = level / 255 * c  # as the reference computes it, in float64
        pmf = np.exp(k * np.log(rate) - rate - log_factorial) if rate > 0 else (k == 0) * 1.0
        pmf[c] = max(0.0, 1.0 - pmf[:c].sum())  # P(count >= c)
        scaled = list(pmf / pmf.sum() * (c + 1))
        small = [i for i in range(c + 1) if scaled[i] < 1]
        large = [i for i in range(c + 1) if scaled[i] >= 1]
        while small and large:  # Vose's construction; what is left over keeps its own outcome
            s, g = small.pop(), large.pop()
            accept[level, s], alias[level, s] = scaled[s], g
            scaled[g] -= 1 - scaled[s]
            (small if scaled[g] < 1 else large).append(g)
    # The uniform's fraction comes in steps of up to (c + 1)·2⁻²⁴ and can be 0: a probability below one step is
    # never accepted, else a count of 1e-20 odds would come out as often as the fraction is 0.
    accept[accept < (c + 1) * 2.0**-24] = 0
    return (
        torch.as_tensor(accept.reshape(-1), dtype=torch.float32, device=device),
        torch.as_tensor(alias.reshape(-1) / c, dtype=torch.float32, device=device),
    )


def impulse_noise(x, p, table, gen):
    # skimage random_noise(mode='s&p', amount=p): each value independently flipped with probability p, to 1 or 0
    # with equal odds. One uniform decides both (below p/2: salt, p/2 to p: pepper), not the reference's two.
    u = torch.rand(x.shape, generator=gen, device=x.device)
    return torch.where(u < p, (u < p / 2).to(x.dtype), x)


def _impulse_noise_levels(u8, p, table, gen):
    # impulse_noise on uint8 levels, for uint8 batches: the same draw, and salt and pepper written as 255 and 0 into
    # a copy of the levels (what the float path's 1.0, 0.0 and k / 255 quantise to), with no float image at all.
    # Masks as 0 / 255 bytes (a bool's byte negated), then and / or: 0.2 ms per 224-px image, where masked_fill
    # twice took 0.55 ms (one thread, measured).
    u = torch.rand(u8.shape, generator=gen, device=u8.device)
    keep = (u >= p).view(torch.uint8).neg_()
    salt = (u < p / 2).view(torch.uint8).neg_()
    return keep.bitwise_and_(u8).bitwise_or_(salt)


def speckle_noise(x, p, table, gen):
    return torch.randn(x.shape, generator=gen, device=x.device).mul_(p).mul_(x).add_(x)


def gaussian_blur(x, p, table, gen):
    return _ops.gaussian(x, p)


def glass_blur(x, p, table, gen):
    sigma, max_delta, iterations = p
    n, c, h, w = x.shape
    # The reference quantises to uint8 (truncating) between the blur and the shuffle.
    blurred = torch.floor(_ops.gaussian(x, sigma) * 255 + 1e-4) / 255
    # The reference's sequential pixel moves, computed exactly as one map of source positions per image (see
    # _ops.glass_shuffle_map), then applied to all channels with one gather.
    index = _ops.glass_shuffle_map(n, h, w, int(max_delta), int(iterations), gen, x.device)
    shuffled = blurred.reshape(n, c, h * w).gather(2, index[:, None].expand(n, c, h * w)).reshape(n, c, h, w)
    return _ops.gaussian(shuffled, sigma)


def defocus_blur(x, p, table, gen):
    return _ops.filter2d(x, _ops.disk_kernel(p[0], p[1]))


def motion_blur(x, p, table, gen):
    angles = _uniform((x.shape[0],), -45, 45, gen, x.device)
    # The reference blurs uint8 images and returns uint8; the caller quantises once at the end.
    return _ops.motion_blur(x, p[0], p[1], angles)


def zoom_blur(x, p, table, gen):
    trim = "center" if table == "cifar" else "topleft"
    out = x.clone()
    for factor in p:
        out += _ops.zoom(x, float(factor), trim)
    return out.div_(len(p) + 1)


def snow(x, p, table, gen):
    loc, scale, zoom, threshold, radius, sigma, blend = p
    n, _, h, w = x.shape
    layer = torch.randn((n, 1, h, w), generator=gen, device=x.device) * scale + loc
    # ImageNet (peer): untrimmed zoom, blur, then keep [:H, :W]; CIFAR: centre-trimmed zoom.
    layer = _ops.zoom(layer, zoom, "center" if table == "cifar" else None)
    layer = torch.where(layer < threshold, torch.zeros_like(layer), layer).clamp(0, 1)
    if table == "cifar":
        layer = torch.floor(layer * 255) / 255  # the reference hands ImageMagick a uint8 PNG
    angles = _uniform((n,), -135, -45, gen, x.device)
    layer = _ops.motion_blur(layer, radius, sigma, angles)
    layer = torch.round(layer * 255)[..., :h, :w] / 255
    x = blend * x + (1 - blend) * torch.maximum(x, _ops.luma(x) * 1.5 + 0.5)
    return (x + layer + torch.rot90(layer, 2, (2, 3))).clamp(0, 1)


_FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")


def _frost_photo(index: int) -> torch.Tensor:
    """The peer package's frost photograph as 3×h×w float in [0, 1] (alpha dropped like cv2.imread).

    Read by path, found without importing the package: importing imagecorruptions loads cv2, scikit-image, scipy
    and numba, 100 MB of resident memory that a streamed evaluation then kept for good. Not cached itself: only
    `_frost_scaled`, once per image size, reads it."""
    spec = importlib.util.find_spec("imagecorruptions")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("frost needs the photographs of imagecorruptions: pip install imagecorruptions-imaug")
    with Image.open(Path(spec.origin).parent / "frost" / _FROST_FILES[index]) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


@functools.cache
def _frost_scaled(index: int, table: str, h: int, w: int, device: torch.device) -> torch.Tensor:
    photo = _frost_photo(index)[None].to(device)
    fh, fw = photo.shape[-2:]
    if table == "cifar":
        # make_cifar_c.py: cv2.resize(fx=fy=0.2), bilinear. Larger-than-CIFAR images would not fit the
        # 0.2-scaled photo, so they get the smallest scale that covers them.
        scale = max(0.2, h / fh, w / fw)
        out = F.interpolate(
            photo, scale_factor=scale, mode="bilinear", align_corners=False, recompute_scale_factor=False
        )
    else:
        # Peer: scale only if the photo is too small for the image, then 1.1×, bicubic.
        scale = max(1.0, h / fh, w / fw) * 1.1
        size = (int(np.ceil(fh * scale)), int(np.ceil(fw * scale)))
        out = F.interpolate(photo, size=size, mode="bicubic", align_corners=False)
    return out[0].clamp(0, 1)


def frost(x, p, table, gen):
    n, _, h, w = x.shape
    # make_cifar_c.py draws randint(5): CIFAR-10-C never used the sixth photograph.
    count = 5 if table == "cifar" else 6
    which = torch.randint(0, count, (n,), generator=gen, device=x.device)
    u = torch.rand((n, 2), generator=gen, device=x.device, dtype=torch.float64)
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    overlay = torch.empty((n, 3, h, w), dtype=x.dtype, device=x.device)
    # One indexed crop per photograph (scaled once per device and size, then cached), not one per image.
    for k in range(count):
        chosen = (which == k).nonzero().squeeze(1)
        if len(chosen) == 0:
            continue
        photo = _frost_scaled(k, table, h, w, x.device)
        top = (u[chosen, 0] * max(photo.shape[1] - h, 1)).long()
        left = (u[chosen, 1] * max(photo.shape[2] - w, 1)).long()
        crops = photo[:, (top[:, None] + rows)[:, :, None], (left[:, None] + cols)[:, None, :]]  # 3×m×h×w
        overlay[chosen] = crops.transpose(0, 1).to(x.dtype)
    return (p[0] * x + p[1] * overlay).clamp(0, 1)


def fog(x, p, table, gen):
    n, _, h, w = x.shape
    mapsize = 1 << (max(h, w, 3) - 1).bit_length()
    plasma = _ops.plasma_fractal(n, mapsize, p[1], gen, x.device)[:, None, :h, :w]
    max_val = x.reshape(n, -1).amax(1).view(n, 1, 1, 1)
    return torch.add(x, plasma, alpha=p[0]).mul_(max_val / (max_val + p[0]))


def spatter(x, p, table, gen):
    loc, scale, sigma, threshold, intensity, mud = p
    n, _, h, w = x.shape
    layer = torch.randn((n, 1, h, w), generator=gen, device=x.device) * scale + loc
    layer = _ops.gaussian(layer, sigma)
    layer = torch.where(layer < threshold, torch.zeros_like(layer), layer)
    if mud == 0:
        m = _ops.liquid_texture(layer) * intensity
        colour = torch.tensor([175, 238, 238], dtype=x.dtype, device=x.device).view(1, 3, 1, 1) / 255  # water
        return (x + m * colour).clamp(0, 1)
    m = _ops.gaussian((layer > threshold).to(x.dtype), intensity)
    m = torch.where(m < 0.8, torch.zeros_like(m), m)
    colour = torch.tensor([63, 42, 20], dtype=x.dtype, device=x.device).view(1, 3, 1, 1) / 255  # mud
    return (x * (1 - m) + colour * m).clamp(0, 1)


def contrast(x, p, table, gen):
    means = x.mean((2, 3), keepdim=True)
    return (x - means).mul_(p).add_(means)


def brightness(x, p, table, gen):
    return _ops.hsv_value_shift(x, p).clamp(0, 1)


def saturate(x, p, table, gen):
    return _ops.hsv_saturation(x, p[0], p[1]).clamp(0, 1)


def jpeg_compression(x, p, table, gen):
    # Both generators saved with PIL (libjpeg-turbo, its defaults: standard tables scaled by quality, 4:2:0).
    # torchvision's encoder is the same libjpeg-turbo with the same settings: its files are byte-identical to
    # PIL's at every quality 1-100 (measured at 32 px, 224 px and 37×53 px; tests/test_corruptions.py checks
    # the decoded pixels). On CUDA the batch goes through nvJPEG and stays on the device; the CPU runs _cpu.jpeg
    # (OpenCV's libjpeg-turbo, the same bytes) for RGB batches.
    decoded = decode_jpeg(encode_jpeg(list(_to_u8(x)), quality=int(p)), device=x.device)
    return torch.stack(decoded)  # uint8: the final levels


def pixelate(x, p, table, gen):
    # PIL's BOX down, then NEAREST (peer) or BOX (make_cifar_c.py) up, in PIL's 8-bit arithmetic (see _pil): exact
    # on any device. The CPU runs _cpu.pixelate instead (CPU_INTO), the same arithmetic through OpenCV.
    h, w = x.shape[-2:]
    height, width = (int(h * p), int(w * p))
    up = "box" if table == "cifar" else "nearest"
    small = _box_pass(_box_pass(torch.round(x * 255), -1, _pil.box_axis(w, width)), -2, _pil.box_axis(h, height))
    small = small.index_select(-2, torch.as_tensor(_pil.up_index(height, h, up), device=x.device))
    return small.index_select(-1, torch.as_tensor(_pil.up_index(width, w, up), device=x.device)).to(torch.uint8)


def _box_pass(levels: torch.Tensor, dim: int, axis: "_pil.BoxAxis") -> torch.Tensor:
    """PIL's BOX pass along dim on integer-valued float levels: run sums from a cumulative sum (exact in float32
    below 2**24), then floor((sum + half) / count); the product by 1 / count lands every value at least 0.5 / count
    from an integer, far beyond float32's error."""
    shape = [1] * levels.dim()
    shape[dim] = len(axis.start)
    first = torch.as_tensor(axis.start, device=levels.device)
    total = torch.cumsum(levels, dim)
    total = torch.cat([torch.zeros_like(total.narrow(dim, 0, 1)), total], dim)
    sums = total.index_select(dim, first + torch.as_tensor(axis.count, device=levels.device))
    sums -= total.index_select(dim, first)
    half = torch.as_tensor(axis.half, dtype=levels.dtype, device=levels.device).view(shape)
    inverse = torch.as_tensor(1 / axis.count, dtype=levels.dtype, device=levels.device).view(shape)
    return sums.add_(half).mul_(inverse).floor_()


def _sample(x, gy, gx, align_corners, padding):
    """Bilinear sample x at pixel coordinates (gy, gx), each N×H×W."""
    h, w = x.shape[-2:]
    if align_corners:
        ny, nx = 2 * gy / max(h - 1, 1) - 1, 2 * gx / max(w - 1, 1) - 1
    else:
        ny, nx = (2 * gy + 1) / h - 1, (2 * gx + 1) / w - 1
    grid = torch.stack([nx, ny], -1).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=align_corners)


def _smooth_field(n, h, w, lo, hi, sigma, gen, device):
    field = _uniform((n, 1, h, w), lo, hi, gen, device)
    return _ops.gaussian(field, sigma, mode="symmetric", truncate=3)[:, 0]


def elastic_transform(x, p, table, gen):
    n, _, h, w = x.shape
    yy, xx = torch.meshgrid(
        torch.arange(h, device=x.device, dtype=torch.float32),
        torch.arange(w, device=x.device, dtype=torch.float32),
        indexing="ij",
    )
    if table == "cifar":
        side = min(h, w)
        alpha, sigma, jitter = (v * side for v in p)
        # Random affine: three points around the centre jittered by up to `jitter` px (cv2.getAffineTransform),
        # applied by cv2.warpAffine, which samples src at M⁻¹·dst with BORDER_REFLECT_101.
        # The reference builds the (x, y) points from (h // 2, w // 2); kept as is (same for square images).
        c0, c1, sq = float(h // 2), float(w // 2), side // 3
        src = torch.tensor(
            [[c0 + sq, c1 + sq], [c0 + sq, c1 - sq], [c0 - sq, c1 - sq]], dtype=torch.float64, device=x.device
        )
        dst = src + _uniform((n, 3, 2), -jitter, jitter, gen, x.device).double()
        ones = torch.ones(n, 3, 1, dtype=torch.float64, device=x.device)
        src_h = torch.cat([src.expand(n, 3, 2), ones], 2)  # rows [px, py, 1]
        dst_h = torch.cat([dst, ones], 2)
        inverse = torch.linalg.solve(dst_h, src_h)  # maps dst rows to src rows: dst_h @ inverse = src_h
        coords = torch.stack([xx, yy, torch.ones_like(xx)], -1).double().reshape(1, h * w, 3)
        mapped = (coords @ inverse).reshape(n, h, w, 3)
        x = _sample(x, mapped[..., 1], mapped[..., 0], True, "reflection")
        dx = _smooth_field(n, h, w, -1, 1, sigma, gen, x.device) * alpha
        dy = _smooth_field(n, h, w, -1, 1, sigma, gen, x.device) * alpha
    else:
        alpha, sigma, max_d = p, (0.01 * h, 0.01 * w), 0.005 * h
        dx = _smooth_field(n, h, w, -max_d, max_d, sigma, gen, x.device) * alpha
        dy = _smooth_field(n, h, w, -max_d, max_d, sigma, gen, x.device) * alpha
    # scipy map_coordinates(order=1, mode='reflect') = half-sample symmetric = grid_sample 'reflection'
    # with align_corners=False.
    return _sample(x, yy + dy, xx + dx, False, "reflection")


def _pixelate_cpu(u8, p, table, dest):
    h, w = u8.shape[-2:]
    _cpu.pixelate(u8, (int(h * p), int(w * p)), "box" if table == "cifar" else "nearest", dest)


def _jpeg_cpu(u8, p, table, dest):
    _cpu.jpeg(u8, int(p), dest)


# On the CPU these write corrupt()'s output themselves (a chunk's uint8 levels in, its slice of the output filled,
# levels or floats): their
# work is 8-bit C-library calls, and the float passes around them are most of the cost (see _cpu). Grey input
# to a colour one (JPEG) takes the batched function, whose RGB result corrupt() turns into luma.
CPU_INTO = {"pixelate": _pixelate_cpu, "jpeg_compression": _jpeg_cpu}


# Corruptions that can work on uint8 levels directly (any device): for a uint8 batch, corrupt() calls these instead
# and takes their uint8 result as the final levels. Each gives exactly the levels of its float function's result
# (tests/test_corruptions.py, every corruption's uint8 path against its float path).
LEVELS = {"impulse_noise": _impulse_noise_levels}


FUNCTIONS = {
    f.__name__: f
    for f in (
        gaussian_noise,
        shot_noise,
        impulse_noise,
        speckle_noise,
        defocus_blur,
        glass_blur,
        motion_blur,
        zoom_blur,
        gaussian_blur,
        snow,
        frost,
        fog,
        brightness,
        contrast,
        elastic_transform,
        pixelate,
        jpeg_compression,
        spatter,
        saturate,
    )
}
