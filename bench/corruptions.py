"""Throughput of lotterysite.corruptions against the peer imagecorruptions (per image, numpy), same process.

Images: foolbox's 20 real ImageNet samples (512 px), cut into random 224-px crops (with flips) until there are
--images of them. Ours runs every corruption × severity on all of them in batches; the peer, being slow, runs
per image on the first --peer-images of them. Ratios are per-image throughputs, params="imagenet" for both.

    python bench/corruptions.py [--images 1000] [--peer-images 20] [--threads 1] [--size 224] [--rounds 3]

Like with like: both sides take uint8 images and return uint8 (the peer: one H×W×3 image, ``np.uint8(result)``;
ours: an N×3×H×W uint8 batch, the layout torch holds images in, converted once untimed). Prints per corruption
ours and the peer's img/s (per CPU second of the process) over severities 1-5 and their ratio, then the same for
our float path (N×3×H×W floats in [0, 1] in and out, what an evaluation that already holds floats calls) with its
ceiling (the peer's time over the float I/O floor: reading a float batch once and writing a fresh float output,
which any float corrupt() pays and uint8 images do not), and which path ours ran on the CPU (torch, or the
reference's own C library where torch could not beat it); then the geometric means of both ratios and the lowest.

--size 32 uses foolbox's 20 real CIFAR-10 samples instead (the CIFAR-10-C case; the peer only has the ImageNet
tables, so both still run params="imagenet").
"""

import argparse
import importlib.util
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from lotterysite.corruptions import CPU_CHUNK, NAMES, corrupt, path


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


# CPU seconds of this process, not wall seconds: on a shared machine the wall clock also counts the time other
# processes hold the core, which comes and goes between the two sides' turns. Both sides run one thread (torch
# and OpenCV set to --threads), so on an idle machine the two clocks agree. CUDA work is timed on the wall clock.
def time_ours(x: torch.Tensor, name: str, batch: int) -> float:
    """Seconds per image over severities 1-5 (x uint8 or float: corrupt() returns the same dtype)."""
    clock = time.perf_counter if x.is_cuda else time.process_time
    start = clock()
    for severity in range(1, 6):
        for i in range(0, len(x), batch):
            corrupt(x[i : i + batch], name, severity, params="imagenet")
    if x.is_cuda:
        torch.cuda.synchronize()
    return (clock() - start) / (5 * len(x))


def time_floor(x: torch.Tensor, batch: int) -> float:
    """Seconds per image of what any corrupt() pays on the CPU before doing any work: the range check of the float
    input and one write of it into a fresh float output (allocated as corrupt() allocates it), chunk by chunk.
    The peer reads and writes uint8 images, a quarter of the bytes."""
    start = time.process_time()
    for _ in range(5):
        for i in range(0, len(x), batch):
            images = x[i : i + batch]
            out = torch.from_numpy(np.empty(tuple(images.shape), np.float32))
            step = max(1, CPU_CHUNK // images[0].numel())
            for j in range(0, len(images), step):
                torch.aminmax(images[j : j + step])
                out[j : j + step].copy_(images[j : j + step])
    return (time.process_time() - start) / (5 * len(x))


def time_peer(images: np.ndarray, name: str) -> float:
    from imagecorruptions import corrupt as peer

    start = time.process_time()
    for severity in range(1, 6):
        for image in images:
            peer(image, severity, name)
    return (time.process_time() - start) / (5 * len(images))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--peer-images", type=int, default=20)
    parser.add_argument("--batch", type=int, default=1000)  # corrupt() chunks CPU work itself
    parser.add_argument("--size", type=int, default=224)
    # One thread by default: the peer is single-threaded numpy, so this compares per core; on a shared box
    # torch's intra-op threads also stall on cores that other processes hold.
    parser.add_argument("--threads", type=int, default=1)
    # Ours and the peer alternate this many times per corruption and each keeps its fastest round: on a shared
    # machine a burst of other work then slows one round of one side, not the ratio.
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--names", default=",".join(NAMES), help="comma-separated subset of the 19")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from imagecorruptions import corrupt as peer

    cv2.setNumThreads(args.threads)  # both sides call OpenCV: the same threads for both

    names = args.names.split(",")
    images = real_crops(args.images, args.size)
    # N×C×H×W, contiguous, uint8 (the headline, like the peer's uint8 images) and float in [0, 1] (as an evaluation
    # holding floats hands batches over); the conversions are not timed.
    u8 = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    x = (u8.float() / 255).contiguous()
    source = "CIFAR-10 samples, repeated with flips" if args.size == 32 else "ImageNet samples"
    print(
        f"{args.images} real {args.size}-px crops of foolbox's 20 {source}; peer timed on "
        f"{args.peer_images} per corruption × severity; best of {args.rounds} alternating rounds; torch threads "
        f"{args.threads}; {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"load {os.getloadavg()[0]:.1f}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    cuda = torch.cuda.is_available()
    if cuda:
        xc = u8.cuda()
    floor = min(time_floor(x, args.batch) for _ in range(args.rounds))
    print(
        f"float I/O floor: {1 / floor:.1f} img/s ({floor * 1e3:.3f} ms per image: range check of the float input, "
        "one write of a fresh float output); 'ceiling' below is the peer's time over it, the ratio nothing that "
        "reads and writes float images could beat here"
    )
    print(
        f"{'corruption':18s} {'uint8 ours':>11s} {'peer img/s':>11s} {'ratio':>7s} | {'float ours':>11s} "
        f"{'ratio':>7s} {'ceiling':>8s}  {'path on the CPU':28s}" + ("  cuda img/s (uint8)" if cuda else "")
    )
    ratios, float_ratios, total_ours, total_float, total_peer, total_cuda = [], [], 0.0, 0.0, 0.0, 0.0
    for name in names:
        for severity in range(1, 6):  # warm-up: caches, tables, the peer's numba kernels (glass blur)
            corrupt(u8[:2], name, severity, params="imagenet")
            corrupt(x[:2], name, severity, params="imagenet")
            peer(images[0], severity, name)
        np.random.seed(0)
        ours = floats = theirs = float("inf")
        for _ in range(args.rounds):
            ours = min(ours, time_ours(u8, name, args.batch))
            floats = min(floats, time_ours(x, name, args.batch))
            theirs = min(theirs, time_peer(images[: args.peer_images], name))
        total_ours, total_float, total_peer = total_ours + ours, total_float + floats, total_peer + theirs
        ratios.append(theirs / ours)
        float_ratios.append(theirs / floats)
        line = (
            f"{name:18s} {1 / ours:11.1f} {1 / theirs:11.1f} {theirs / ours:6.2f}× | {1 / floats:11.1f} "
            f"{theirs / floats:6.2f}× {theirs / floor:7.1f}×  {path(name, 'cpu'):28s}"
        )
        if cuda:
            corrupt(xc[:2], name, 1, params="imagenet")
            on_gpu = min(time_ours(xc, name, args.batch) for _ in range(args.rounds))
            total_cuda += on_gpu
            line += f" {1 / on_gpu:11.1f} ({path(name, 'cuda')})"
        print(line, flush=True)
    print(
        f"{'all':18s} {len(names) / total_ours:11.1f} {len(names) / total_peer:11.1f} "
        f"{total_peer / total_ours:6.2f}× | {len(names) / total_float:11.1f} {total_peer / total_float:6.2f}×  "
        "(total time)" + (f" {len(names) / total_cuda:11.1f}" if cuda else "")
    )
    for label, r in (("uint8 → uint8 (like the peer)", ratios), ("float → float", float_ratios)):
        lowest = int(np.argmin(r))
        print(
            f"{label}: geometric mean of the ratios {float(np.exp(np.mean(np.log(r)))):.2f}×; "
            f"lowest {r[lowest]:.2f}× ({names[lowest]})"
        )
    print(f"load at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
