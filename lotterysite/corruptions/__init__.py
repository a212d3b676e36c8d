"""CIFAR-10-C / ImageNet-C corruptions generated on the fly, batched in torch (paper §3.2).

``corrupt(images, name, severity)`` reproduces Hendrycks & Dietterich's generators (``params="cifar"``: the
tables of make_cifar_c.py that made CIFAR-10-C; ``params="imagenet"``: the ImageNet-C tables, as in the peer
package imagecorruptions-imaug) on N×C×H×W tensors, on CPU or CUDA: uint8 levels in, uint8 out (the reference's own
contract, and the fast path on the CPU), or floats in [0, 1] in, floats out.

Conventions, chosen so generated images are interchangeable with the published .npy files:

- Outputs are quantised like the reference's ``np.uint8(...)`` cast (truncation to 1/255 steps); a uint8 batch
  gets those levels themselves, equal to the float path's on ``images.float() / 255`` times 255.
- Randomness comes from a ``torch.Generator`` on the images' device seeded from ``seed`` and the corruption
  name, so different corruptions never share draws while the five severities of one corruption share theirs
  (the same snowflakes get heavier). The same (seed, name, batch) gives the same output on a given device.
- Grey input (C = 1, e.g. Fashion-MNIST): the channel-wise corruptions run on the single channel; the colour
  ones (``COLOUR``: brightness, saturate, jpeg_compression, frost, spatter, snow) run on the replicated RGB image
  and return its ITU-R 601 luma. For brightness and snow that equals the grey computation. For saturate it
  means: severities 1-3 (pure scaling of a zero saturation) leave a grey image unchanged; severities 4 and 5 add
  saturation 0.1 / 0.2 at skimage's hue 0 (red), which after luma darkens every pixel by the factor
  1 - 0.701·S, i.e. ×0.930 and ×0.860 (measured in tests/test_corruptions.py). The peer returns the red
  channel instead, which leaves grey unchanged at every severity.
- Motion blur (and the blur inside snow) follows the peer's numpy port of ImageMagick's motion blur for both
  tables; CIFAR-10-C itself was made with ImageMagick (Wand).
- Everything runs on the images' device, batched: JPEG is libjpeg-turbo through ``torchvision.io`` (byte-identical
  to PIL's files; nvJPEG on CUDA), glass blur's sequential pixel shuffle is one parallel map equal to the
  reference's loop, and spatter's cv2 texture (Canny, distance transform, histogram equalisation) is batched torch.
  So a CUDA batch never leaves the GPU. pixelate replicates PIL's 8-bit BOX arithmetic exactly (``_pil``).
- On the CPU, where the reference's C library beats torch, that library runs instead (``path(name)`` says which):
  OpenCV's filters, libjpeg-turbo through OpenCV (the same bytes as PIL's), and pixelate through OpenCV over whole
  chunks (``_cpu``). The fidelity tests check both paths.
"""

import difflib
import zlib

import numpy as np
import torch

from . import _corruptions, _cpu
from ._corruptions import COLOUR
from ._ops import luma
from ._params import TABLES
from .gallery import gallery

# CIFAR-10-C file stems (<name>.npy), in the order of the CIFAR-10-C README: 15 benchmark + 4 extra.
NAMES = (
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "speckle_noise",
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "gaussian_blur",
    "snow",
    "frost",
    "fog",
    "brightness",
    "contrast",
    "elastic_transform",
    "pixelate",
    "jpeg_compression",
    "spatter",
    "saturate",
)
SEVERITIES = (1, 2, 3, 4, 5)
PARAMS = tuple(TABLES)
MIN_SIDE = 8  # smaller images leave no room for the 3×3 and plasma steps
CPU_CHUNK = 1 << 20  # values per chunk on CPU (4 MB of float32): fits in cache, beats one huge batch 3-8×

__all__ = ["NAMES", "SEVERITIES", "PARAMS", "COLOUR", "corrupt", "gallery", "parameters", "path"]


def parameters(name: str, severity: int, params: str = "cifar"):
    """The published parameter entry used for (name, severity) under the given table."""
    _check_name(name)
    _check_severity(severity)
    _check_params(params)
    return TABLES[params][name][severity - 1]


def path(name: str, device: str | torch.device = "cpu") -> str:
    """Which implementation corrupt() runs for `name` on `device`: batched torch, or on the CPU the reference's
    own C library where torch there was slower (bench/corruptions.py, bench/RESULTS.md)."""
    _check_name(name)
    if torch.device(device).type == "cpu" and name in _corruptions.CPU_LIBRARY:
        return _corruptions.CPU_LIBRARY[name]
    return "nvJPEG (torchvision.io)" if name == "jpeg_compression" else "torch"


def _check_name(name):
    if name not in NAMES:
        close = difflib.get_close_matches(str(name), NAMES, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(
            f"unknown corruption {name!r}: {hint}use one of lotterysite.corruptions.NAMES ({', '.join(NAMES)})"
        )


def _check_severity(severity):
    if isinstance(severity, bool) or not isinstance(severity, int) or severity not in SEVERITIES:
        raise ValueError(f"severity {severity!r} is out of range: pass an int from 1 (mild) to 5 (severe)")


def _check_params(params):
    if params not in TABLES:
        raise ValueError(
            f"params {params!r} unknown: use 'cifar' (CIFAR-10-C tables) or 'imagenet' "
            "(ImageNet-C tables, as in imagecorruptions)"
        )


def _check_images(images):
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"images must be a torch.Tensor, got {type(images).__name__}: convert with "
            "torch.as_tensor(...) (uint8 levels 0-255, or floats in [0, 1])"
        )
    if not images.is_floating_point() and images.dtype != torch.uint8:
        raise TypeError(
            f"images have dtype {images.dtype}: pass uint8 levels 0-255 or floats in [0, 1], e.g. images.float() / 255"
        )
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"images have shape {tuple(images.shape)}: expected N×C×H×W with C = 1 or 3 "
            "(add a batch axis with images[None], move channels first with permute(0, 3, 1, 2))"
        )
    if min(images.shape[-2:]) < MIN_SIDE:
        raise ValueError(
            f"images are {images.shape[-2]}×{images.shape[-1]} px: both sides must be at least {MIN_SIDE} px"
        )


def _check_range(chunk):
    # On a contiguous chunk: a reduction over a permuted (channels-last) batch runs ten times slower.
    lo, hi = (v.item() for v in torch.aminmax(chunk))
    if not (0.0 <= lo and hi <= 1.0):  # also rejects NaN
        raise ValueError(f"image values span [{lo:.4g}, {hi:.4g}]: expected [0, 1]; divide uint8 data by 255")


def _generator(seed: int, name: str, device: torch.device) -> torch.Generator:
    # crc32 is stable across processes (unlike hash()), so a seed means the same draws everywhere.
    gen = torch.Generator(device=device)
    gen.manual_seed((int(seed) * 1_000_003 + zlib.crc32(name.encode())) % (2**63))
    return gen


def corrupt(images: torch.Tensor, name: str, severity: int, *, seed: int = 0, params: str = "cifar") -> torch.Tensor:
    """Corrupt a batch N×C×H×W (C = 1 or 3) of uint8 levels or floats in [0, 1]; returns the same shape, dtype and
    device.

    uint8 in, uint8 out is the reference's own contract (uint8 image, ``np.uint8(result)``) and the fast one on the
    CPU: no range check, a quarter of the bytes to write, and pixelate and JPEG never leave 8 bits. The result is the
    float path's on ``images.float() / 255`` in levels: ``corrupt(u8) == (corrupt(u8.float() / 255) * 255).round()``
    exactly, the same draws included (tests/test_corruptions.py checks every corruption)."""
    _check_name(name)
    _check_severity(severity)
    _check_params(params)
    _check_images(images)
    if images.shape[0] == 0:
        return images.clone()
    levels = images.dtype == torch.uint8
    x = images if levels else images.float()
    grey = x.shape[1] == 1
    if grey and name in COLOUR:
        x = x.expand(-1, 3, -1, -1)
    gen = _generator(seed, name, x.device)
    function, p = _corruptions.FUNCTIONS[name], parameters(name, severity, params)
    dtype = torch.uint8 if levels else torch.float32
    if x.is_cuda:
        out = torch.empty(images.shape, dtype=dtype, device=x.device)
    else:
        # numpy asks the kernel for transparent huge pages on large arrays (torch's allocator does not): first
        # writes into a fresh 1000-image output then fault 2 MB, not 4 kB, at a time, 3× faster (measured).
        out = torch.from_numpy(np.empty(tuple(images.shape), np.float32 if dtype == torch.float32 else np.uint8))
    # On CPU, work through cache-sized chunks: temporaries of tens of MB go to fresh mmapped pages on every
    # op and run several times slower. Chunks draw from the same generator in order, so the result is still a
    # function of (seed, name, batch), and the same for uint8 and float input. GPUs get the whole batch.
    step = len(x) if x.is_cuda else max(1, CPU_CHUNK // x[0].numel())
    into = None if x.device.type != "cpu" or (grey and name in COLOUR) else _corruptions.CPU_INTO.get(name)
    on_levels = _corruptions.LEVELS.get(name) if levels and not (grey and name in COLOUR) else None
    for i in range(0, len(x), step):
        chunk = x[i : i + step].contiguous()
        if into is not None:  # 8-bit C-library work: levels in, levels (or their floats) straight into out
            into(chunk.numpy() if levels else _cpu.levels(chunk.detach().numpy()), p, params, out[i : i + step].numpy())
            continue
        if on_levels is not None:  # uint8 work on uint8 levels: no float image at all
            out[i : i + step].copy_(on_levels(chunk, p, params, gen))
            continue
        if levels:
            # The floats the caller's images.float() / 255 would be (the same values, tested): on the CPU in one
            # OpenCV pass, 7× faster there than torch.div.
            chunk = torch.div(chunk, 255) if chunk.is_cuda else torch.from_numpy(_cpu.floats(chunk.numpy()))
        else:
            _check_range(chunk)
        _quantise(function(chunk, p, params, gen), grey, images, out[i : i + step])
    return out if levels else out.to(images.dtype)


_EPSILON = torch.tensor(1e-3)


def _quantise(y: torch.Tensor, grey: bool, images: torch.Tensor, dest: torch.Tensor) -> None:
    """Write a corruption's output into dest as the reference's np.uint8(...) levels: uint8 dest takes the levels,
    float dest their /255, in as few passes as can be.

    A function returns floats in [0, 1] (truncated to levels here) or uint8, its final levels already (what a C
    library returned)."""
    levels = dest.dtype == torch.uint8
    if y.dtype == torch.uint8:
        if not grey:
            if levels:
                dest.copy_(y)
            else:
                dest.copy_(y).div_(255)
            return
        y = luma(y.float())
    elif grey and y.shape[1] == 3:
        y = luma(y)
    # The epsilon keeps exact levels that float32 lands just below (k/255 * 255 = k - 1e-5) on their own level.
    # In place unless y is the caller's images (a function may hand back its input).
    eps = _EPSILON.to(y.device)
    if y.untyped_storage().data_ptr() == images.untyped_storage().data_ptr():
        y = torch.add(eps, y, alpha=255)
    else:
        y = torch.add(eps, y, alpha=255, out=y)
    y.clamp_(0, 255)
    if levels:
        dest.copy_(y)  # the cast truncates, which is floor on [0, 255]: the levels the float path divides by 255
        return
    torch.floor(y, out=dest)
    dest.div_(255)
