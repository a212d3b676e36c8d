"""Every corruption × severity of a few images as one labelled grid (for the site's findings page).

Small images (CIFAR, Fashion-MNIST) are scaled up to 96 px tiles with nearest-neighbour, pixels kept crisp, and
written as PNG. Larger ones (class folders at 224 px) are scaled down to 96 px tiles and written as WebP (JPEG
where Pillow lacks WebP): 3 photos x 6 columns x 19 corruptions at full size were a 27 MB PNG, five times a
page's whole budget; at 96 px as WebP they are ~0.9 MB (`gallery_name`)."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

TILE = 96  # px of a gallery tile's short side


def gallery(
    images: torch.Tensor,
    path,
    *,
    names=None,
    params: str = "cifar",
    seed: int = 0,
    scale: int = 0,
    label_width: int = 190,
    font_size: int = 20,
    tile: int = TILE,
) -> Path:
    """Write the grid to `path` (format from its suffix): one row per corruption, per image a clean column then
    severities 1-5; returns the path.

    images: N×C×H×W in [0, 1] (C = 1 or 3). scale: integer upscaling (nearest) per tile; 0 picks one that
    makes tiles at least `tile` px. Images larger than `tile` are scaled down to it (antialiased): corruptions are
    applied at full size first, so what is shown is the corrupted image, made smaller.
    """
    from . import NAMES, SEVERITIES, corrupt

    names = tuple(NAMES if names is None else names)
    h, w = images.shape[-2:]
    if min(h, w) > tile:  # scaled down to `tile` on the short side
        th, tw = (tile, round(w * tile / h)) if h <= w else (round(h * tile / w), tile)
        resample = Image.LANCZOS
    else:
        scale = scale or max(1, -(-tile // min(h, w)))
        th, tw = h * scale, w * scale
        resample = Image.NEAREST
    gap = 4
    # Labels in a scalable font, large enough to stay readable when the page shows the wide image scaled down.
    font = ImageFont.load_default(size=font_size)
    header = font_size + 10
    cols = images.shape[0] * (len(SEVERITIES) + 1)
    canvas = Image.new("RGB", (label_width + cols * (tw + gap), header + len(names) * (th + gap)), "white")
    draw = ImageDraw.Draw(canvas)

    def paste(tile: torch.Tensor, row: int, col: int):
        arr = (tile.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        if arr.shape[2] == 1:
            arr = np.repeat(arr, 3, axis=2)
        im = Image.fromarray(arr).resize((tw, th), resample)
        canvas.paste(im, (label_width + col * (tw + gap), header + row * (th + gap)))

    for k in range(images.shape[0]):
        base = k * (len(SEVERITIES) + 1)
        draw.text((label_width + base * (tw + gap), 4), "clean", fill="black", font=font)
        for s in SEVERITIES:
            draw.text((label_width + (base + s) * (tw + gap), 4), f"sev. {s}", fill="black", font=font)
    for row, name in enumerate(names):
        draw.text((6, header + row * (th + gap) + th // 2), name, fill="black", font=font, anchor="lm")
        for s in SEVERITIES:
            out = corrupt(images, name, s, seed=seed, params=params)
            for k in range(images.shape[0]):
                if s == 1:
                    paste(images[k], row, k * (len(SEVERITIES) + 1))
                paste(out[k], row, k * (len(SEVERITIES) + 1) + s)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lossy = {"quality": 80, "method": 6} if path.suffix == ".webp" else {"quality": 85, "optimize": True}
    canvas.save(path, **(lossy if path.suffix in (".webp", ".jpg") else {}))
    return path


def gallery_name(image_size: int) -> str:
    """The store's gallery file for images of this size: PNG for small images shown crisp, WebP (or JPEG) for
    larger ones scaled down to tiles (see the module's docstring)."""
    from PIL import features

    if image_size <= TILE:
        return "gallery.png"
    return "gallery.webp" if features.check("webp") else "gallery.jpg"
