"""Throughput of lotterysite.corruptions against the peer imagecorruptions (per image, numpy), same process.

Images: foolbox's 20 real ImageNet samples (512 px), cut into random 224-px crops (with flips) until there are
--images of them. Ours runs every corruption × severity on all of them in batches; the peer, being slow, runs
per image on the first --peer-images of them. Ratios are per-image throughputs, params="imagenet" for both.

    python bench/corruptions.py [--images 1000] [--peer-images 20] [--threads 1] [--size 224]

--size 32 uses foolbox's 20 real CIFAR-10 samples instead (the CIFAR-10-C case; the peer only has the ImageNet
tables, so both still run params="imagenet").
"""

import argparse
import importlib.util
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lotterysite.corruptions import NAMES, corrupt


def real_crops(count: int, size: int, seed: int = 0) -> np.ndarray:
    """Random size-px crops (and flips) of foolbox's real samples: ImageNet (512 px), or CIFAR-10 at 32 px."""
    data = Path(os.path.dirname(importlib.util.find_spec("foolbox").origin)) / "data"
    pattern = "cifar10_*.png" if size == 32 else "imagenet_*.jpg"
    photos = [np.asarray(Image.open(f).convert("RGB")) for f in sorted(data.glob(pattern))]
    rng = np.random.default_rng(seed)
    out = np.empty((count, size, size, 3), np.uint8)
    for k in range(count):
        photo = photos[k % len(photos)]
        top, left = rng.integers(0, photo.shape[0] - size + 1), rng.integers(0, photo.shape[1] - size + 1)
        crop = photo[top : top + size, left : left + size]
        out[k] = crop[:, ::-1] if rng.random() < 0.5 else crop
    return out


def time_ours(x: torch.Tensor, name: str, severity: int, batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        corrupt(x[i : i + batch], name, severity, params="imagenet")
    if x.is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / len(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--peer-images", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1000)  # corrupt() chunks CPU work itself
    parser.add_argument("--size", type=int, default=224)
    # One thread by default: the peer is single-threaded numpy, so this compares per core; on a shared box
    # torch's intra-op threads also stall on cores that other processes hold.
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from imagecorruptions import corrupt as peer

    images = real_crops(args.images, args.size)
    # N×C×H×W float in [0, 1], contiguous, as the evaluation hands batches over; the conversion is not timed.
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).contiguous()
    source = "CIFAR-10 samples, repeated with flips" if args.size == 32 else "ImageNet samples"
    print(
        f"{args.images} real {args.size}-px crops of foolbox's 20 {source}; peer timed on "
        f"{args.peer_images} per corruption × severity; torch threads {args.threads}; "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    corrupt(x[:2], "glass_blur", 1, params="imagenet")  # warm-up
    cuda = torch.cuda.is_available()
    if cuda:
        xc = x.cuda()
        corrupt(xc[:2], "gaussian_noise", 1, params="imagenet")
    print(
        f"{'corruption':18s} {'ours img/s':>11s} {'peer img/s':>11s} {'ratio':>7s}" + ("  cuda img/s" if cuda else "")
    )
    total_ours = total_peer = total_cuda = 0.0
    for name in NAMES:
        ours = sum(time_ours(x, name, s, args.batch) for s in range(1, 6)) / 5
        np.random.seed(0)
        peer(images[0], 1, name)  # warm-up: the peer's numba kernels (glass blur) compile on first use
        start = time.perf_counter()
        for s in range(1, 6):
            for image in images[: args.peer_images]:
                peer(image, s, name)
        theirs = (time.perf_counter() - start) / (5 * args.peer_images)
        total_ours, total_peer = total_ours + ours, total_peer + theirs
        line = f"{name:18s} {1 / ours:11.1f} {1 / theirs:11.1f} {theirs / ours:6.1f}×"
        if cuda:
            on_gpu = sum(time_ours(xc, name, s, args.batch) for s in range(1, 6)) / 5
            total_cuda += on_gpu
            line += f" {1 / on_gpu:11.1f}"
        print(line, flush=True)
    print(
        f"{'all 19 × 5':18s} {19 / total_ours:11.1f} {19 / total_peer:11.1f} {total_peer / total_ours:6.1f}×"
        + (f" {19 / total_cuda:11.1f}" if cuda else "")
    )
    print("overall ratio = total peer seconds per image over all 95 corruption × severity pairs / ours")


if __name__ == "__main__":
    main()
