"""GPU throughput: evaluation against the FLOP floor, the 19 × 5 corruptions, the paper's evaluation sweep.

    python bench/gpu.py                # on a CUDA machine: sections (a), (b) and (c) below
    python bench/gpu.py --cpu-smoke    # tiny sizes on the CPU: runs every code path (tests/test_bench_gpu.py)

(a) `measure_model` (features, float32 head, every geometry metric; float16 autocast and channels_last, its CUDA
    defaults) on VGG16 and ResNet18 at 32 px: img/s, model FLOPs counted by torch's FlopCounterMode, and the ratio
    to the FLOP floor, model FLOPs × img/s ÷ the card's peak dense 16-bit tensor FLOP/s (PEAK, by device name;
    unknown cards print n/a). Target: within 3× of the floor, i.e. utilisation ≥ 33 %.
(b) lotterysite.corruptions, all 19 × 5, at 32 and 224 px on the device, against the peer package
    (imagecorruptions, numpy, one image at a time on one CPU core) in the same process. Real images: crops of
    foolbox's CIFAR-10 (32 px) and ImageNet (224 px) samples.
(c) The evaluation sweep of precompute/cifar10-paper.toml with untrained models, training excluded: every model of
    the recipe (dense, each pruning method × amount, the retrained copies) on clean data and every corruption ×
    severity of its test-set-sized evaluation set, variants generated per batch on the device and shared by all
    models. Pruning that needs training or data (MPT, Taylor) is stood in for by magnitude masks at the same amount:
    the dense compute of the evaluation is the same. Target: ≤ 10 min on one H100.

Without CUDA (and without --cpu-smoke) it says so and exits 0: a figure is only ever printed for a run that made it.
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/corruptions.py: the real crops and the timing

from corruptions import real_crops

from lotterysite.corruptions import NAMES, corrupt
from lotterysite.geometry import measure_model
from lotterysite.models import create_model

ROOT = Path(__file__).resolve().parent.parent

# Peak dense (no sparsity) bf16/fp16 tensor-core FLOP/s from NVIDIA's data sheets, matched against
# torch.cuda.get_device_name in order (the first substring that occurs wins).
PEAK = (
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM5 ("NVIDIA H100 80GB HBM3")
    ("A100", 312e12),
    ("L40S", 362e12),
    ("A10G", 70e12),
)


def peak_flops(name: str) -> float | None:
    for key, value in PEAK:
        if key in name:
            return value
    return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_flops(model: torch.nn.Module, image_size: int, device: torch.device) -> float:
    """FLOPs of one image's forward pass (features and head), as FlopCounterMode counts them (2 per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(2, 3, image_size, image_size, device=device)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval().to(device)(x)
    return counter.get_total_flops() / 2


def evaluation(args, device: torch.device) -> None:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    peak = peak_flops(name) if device.type == "cuda" else None
    print(
        f"\n(a) evaluation with geometry, 32 px, {args.eval_images} images in batches of {args.batch}, "
        f"measure_model defaults on {device.type}; peak 16-bit FLOP/s of {name!r}: "
        f"{f'{peak / 1e12:.0f}e12' if peak else 'n/a'}"
    )
    print(f"{'model':10s} {'GFLOP/img':>10s} {'img/s':>10s} {'TFLOP/s':>9s} {'utilisation':>12s} {'× floor':>8s}")
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.rand(args.eval_images, 3, 32, 32, generator=g, device=device)
    y = torch.randint(0, 10, (args.eval_images,), generator=g, device=device)
    batches = [(x[i : i + args.batch], y[i : i + args.batch]) for i in range(0, len(x), args.batch)]
    for arch in ("vgg16", "resnet18"):
        torch.manual_seed(0)
        model = create_model(arch, num_classes=10, in_channels=3, image_size=32).to(device)
        flops = model_flops(model, 32, device)
        if device.type == "cuda":
            model.to(memory_format=torch.channels_last)  # once, as a caller measuring many batches should
        measure_model(model, batches[:2], device=device)  # warm-up: cuDNN picks its kernels
        _sync(device)
        start = time.perf_counter()
        for _ in range(args.repeats):
            measure_model(model, batches, device=device)
        _sync(device)
        rate = args.repeats * len(x) / (time.perf_counter() - start)
        achieved = flops * rate
        util = f"{achieved / peak:11.1%}" if peak else f"{'n/a':>11s}"
        floor = f"{peak / achieved:7.1f}×" if peak else f"{'n/a':>8s}"
        print(f"{arch:10s} {flops / 1e9:10.3f} {rate:10.0f} {achieved / 1e12:9.2f} {util} {floor}", flush=True)


def _time_corrupt(x: torch.Tensor, name: str, severity: int, batch: int) -> float:
    """Seconds per image of corrupt() over x in batches, synchronised."""
    _sync(x.device)
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        corrupt(x[i : i + batch], name, severity, params="imagenet")
    _sync(x.device)
    return (time.perf_counter() - start) / len(x)


def corruptions(args, device: torch.device) -> None:
    from imagecorruptions import corrupt as peer

    for size in args.sizes:
        count, peer_count = (args.images_32, args.peer_32) if size == 32 else (args.images_224, args.peer_224)
        images = real_crops(count, size)
        x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).to(device)
        print(
            f"\n(b) corruptions at {size} px, params='imagenet' (the peer's tables): ours on {device.type}, "
            f"{count} images in batches of {args.corrupt_batch}; peer on {peer_count} images per severity, "
            f"1 CPU core ({os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f})"
        )
        print(f"{'corruption':18s} {'ours img/s':>11s} {'peer img/s':>11s} {'ratio':>8s}")
        total_ours = total_peer = 0.0
        threads = torch.get_num_threads()
        for name in NAMES:
            corrupt(x[:2], name, 1, params="imagenet")  # warm-up: allocator, cached frost photographs
            ours = sum(_time_corrupt(x, name, s, args.corrupt_batch) for s in range(1, 6)) / 5
            torch.set_num_threads(1)
            np.random.seed(0)
            peer(images[0], 1, name)  # warm-up: the peer's numba kernels compile on first use
            start = time.perf_counter()
            for s in range(1, 6):
                for image in images[:peer_count]:
                    peer(image, s, name)
            theirs = (time.perf_counter() - start) / (5 * peer_count)
            torch.set_num_threads(threads)
            total_ours, total_peer = total_ours + ours, total_peer + theirs
            print(f"{name:18s} {1 / ours:11.0f} {1 / theirs:11.1f} {theirs / ours:7.1f}×", flush=True)
        print(f"{'all 19 × 5':18s} {19 / total_ours:11.0f} {19 / total_peer:11.1f} {total_peer / total_ours:7.1f}×")


def sweep_models(recipe, device: torch.device, max_per_arch: int | None) -> list[tuple[str, torch.nn.Module]]:
    """Every model the recipe evaluates, untrained; (id, model) pairs on the device."""
    from lotterysite.pruning import prune

    models = []
    for arch in recipe.architectures:
        torch.manual_seed(0)
        dense = create_model(arch.model.arch, num_classes=10, in_channels=3, image_size=32, **arch.model.options)
        specs = [("dense", None, 0.0, False)]
        for sweep in recipe.pruning:
            # MPT and Taylor need training or gradients; magnitude masks of the same amount cost the same to evaluate.
            method = sweep.method if sweep.method in ("random", "magnitude") else "magnitude"
            for amount in sweep.amounts:
                specs.append((sweep.method, method, amount, False))
                if sweep.retrain_epochs:  # the retrained copy: same shape, same cost; retraining is excluded
                    specs.append((sweep.method, method, amount, True))
        for label, method, amount, retrained in specs[:max_per_arch]:
            model = dense if method is None else prune(dense, method, amount, progress=False)
            models.append(
                (
                    "/".join(
                        [arch.model.arch, label]
                        + ([str(amount)] if method else [])
                        + (["retrained"] if retrained else [])
                    ),
                    model,
                )
            )
    for _, model in models:
        model.eval().to(device)
        if device.type == "cuda":
            model.to(memory_format=torch.channels_last)
    return models


def sweep(args, device: torch.device) -> None:
    from lotterysite.precompute.recipe import load_recipe

    recipe = load_recipe(args.recipe)
    c = recipe.corruptions
    names = NAMES if c.names in ("all", ()) else c.names
    variants = [(None, 0)] + [(name, s) for name in names for s in c.severities]
    variants = variants[: args.max_variants]
    count = args.sweep_images or recipe.eval_subset or 10_000
    batch = args.sweep_batch or recipe.batch_size
    models = sweep_models(recipe, device, args.max_models)
    images = real_crops(count, 32, seed=1)
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).to(device)
    y = torch.from_numpy(np.arange(count) % 10).to(device)
    print(
        f"\n(c) evaluation sweep of {os.path.relpath(args.recipe, ROOT)}: {len(models)} untrained models × "
        f"{len(variants)} variants (clean + corruption × severity, params={c.params!r}) × {count} images, batches "
        f"of {batch}, on {device.type}; training excluded"
    )
    measure_model(models[0][1], [(x[:batch], y[:batch])], device=device)  # warm-up
    _sync(device)
    start = time.perf_counter()
    generate = 0.0
    for v, (name, severity) in enumerate(variants):
        for i in range(0, count, batch):
            xb, yb = x[i : i + batch], y[i : i + batch]
            if name is not None:
                _sync(device)
                t = time.perf_counter()
                xb = corrupt(xb, name, severity, seed=c.seed + i, params=c.params)
                _sync(device)
                generate += time.perf_counter() - t
            for _, model in models:
                measure_model(model, [(xb, yb)], device=device)
        if args.progress:
            print(f"  variant {v + 1}/{len(variants)}: {time.perf_counter() - start:.1f} s", flush=True)
    _sync(device)
    wall = time.perf_counter() - start
    evaluations = len(models) * len(variants) * count
    print(
        f"wall time {wall:.1f} s ({wall / 60:.2f} min) for {evaluations} image evaluations "
        f"({evaluations / wall:.0f} img/s); of it, generating the variants: {generate:.1f} s"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU (tests the code paths)")
    parser.add_argument("--sections", default="abc", help="which of (a), (b), (c) to run, e.g. 'ac'")
    parser.add_argument("--eval-images", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 224])
    parser.add_argument("--images-32", type=int, default=10_000)
    parser.add_argument("--images-224", type=int, default=1000)
    parser.add_argument("--corrupt-batch", type=int, default=1000)
    parser.add_argument("--peer-32", type=int, default=10)
    parser.add_argument("--peer-224", type=int, default=2)
    parser.add_argument("--recipe", default=str(ROOT / "precompute" / "cifar10-paper.toml"))
    parser.add_argument("--sweep-images", type=int, default=None, help="default: the recipe's evaluation set")
    parser.add_argument("--sweep-batch", type=int, default=None, help="default: the recipe's batch_size")
    parser.add_argument("--max-models", type=int, default=None, help="first N models per architecture")
    parser.add_argument("--max-variants", type=int, default=None, help="first N variants (clean first)")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    if args.cpu_smoke:
        device = torch.device("cpu")
        torch.set_num_threads(1)
        args.eval_images, args.batch, args.repeats = 8, 4, 1
        args.sizes, args.images_32, args.peer_32, args.corrupt_batch = [32], 2, 1, 2
        args.sweep_images, args.sweep_batch, args.max_models, args.max_variants = 4, 4, 2, 3
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        print("no CUDA device: nothing measured (bench/gpu.py --cpu-smoke runs the code paths on the CPU)")
        return
    print(
        f"bench/gpu.py on {device.type}"
        + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else " (smoke: tiny sizes)")
        + f", torch {torch.__version__}"
    )
    if "a" in args.sections:
        evaluation(args, device)
    if "b" in args.sections:
        corruptions(args, device)
    if "c" in args.sections:
        sweep(args, device)


if __name__ == "__main__":
    main()
