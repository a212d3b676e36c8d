"""Every corruption × severity of a few images as one labelled PNG grid (for the site's corruptions page)."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


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
) -> Path:
    """Write a PNG: one row per corruption, per image a clean column then severities 1-5; returns the path.

    images: N×C×H×W in [0, 1] (C = 1 or 3). scale: integer upscaling (nearest) per tile; 0 picks one that
    makes tiles at least 96 px.
    """
    from . import NAMES, SEVERITIES, corrupt

    names = tuple(NAMES if names is None else names)
    h, w = images.shape[-2:]
    scale = scale or max(1, -(-96 // min(h, w)))
    th, tw, gap = h * scale, w * scale, 4
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
        im = Image.fromarray(arr).resize((tw, th), Image.NEAREST)
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
    canvas.save(path)
    return path
