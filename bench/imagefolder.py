"""Precompute's evaluation on a 224 px class-folder set: images/s and peak RSS, and peak RSS against the number
of corrupted variants (it must not grow with them).

Builds a class-folder set of N JPEGs (random crops and flips of the 20 real ImageNet photos in the foolbox wheel,
19 classes), then, each in a fresh process so its peak RSS is its own, runs `precompute.stream.measure_variants`
(decode a batch, corrupt it per variant on the device, measure the model) for N images x V variants.

    python bench/imagefolder.py                         # 500 and 2000 images x (clean + 19 corruptions), sev. 3
    python bench/imagefolder.py --sizes 100 --variants 1 5 20 --model lenet5
"""

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]


def build_set(folder: Path, n: int, seed: int = 0) -> None:
    """N photos as test/<class>/*.jpg (and one per class in train/): random 60-100% crops, random flips."""
    import importlib.util
    import re

    from PIL import Image

    photos = sorted((Path(importlib.util.find_spec("foolbox").origin).parent / "data").glob("imagenet_*.jpg"))
    rng = random.Random(seed)
    for i in range(n):
        f = photos[i % len(photos)]
        label = re.match(r"imagenet_\d+_(\d+)\.jpg", f.name).group(1)
        img = Image.open(f).convert("RGB")
        w, h = img.size
        s = rng.uniform(0.6, 1.0)
        cw, ch = int(w * s), int(h * s)
        x0, y0 = rng.randint(0, w - cw), rng.randint(0, h - ch)
        img = img.crop((x0, y0, x0 + cw, y0 + ch)).resize((256, 256), Image.BILINEAR)
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        for split in ("test",) + (("train",) if i < len(photos) else ()):
            out = folder / split / f"c{int(label):04d}"
            out.mkdir(parents=True, exist_ok=True)
            img.save(out / f"{i:05d}.jpg", quality=90)


def child(args) -> None:
    import torch

    from lotterysite.corruptions import NAMES
    from lotterysite.data import load_imagefolder
    from lotterysite.models import create_model
    from lotterysite.precompute.stream import measure_variants

    test = load_imagefolder(args.folder, 224).test.head(args.n)
    if args.cache:
        test = test.cached(Path(args.folder) / "cache")
    variants = [("clean", 0)] + [(name, 3) for name in NAMES][: args.v - 1]
    torch.manual_seed(0)
    model = create_model(args.model, num_classes=1000, in_channels=3, image_size=224)
    start = time.perf_counter()
    parts = measure_variants(model, test, variants, batch_size=args.batch_size, device="cpu", params="imagenet")
    seconds = time.perf_counter() - start
    assert all(len(g.margin) == args.n for g in parts)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"n": args.n, "variants": len(variants), "seconds": seconds,
                      "images_per_s": args.n * len(variants) / seconds, "peak_rss_mib": peak}))  # fmt: skip


def run(folder, n, v, model, batch_size, cache) -> dict:
    cmd = [sys.executable, __file__, "--child", "--folder", str(folder), "--n", str(n), "--v", str(v),
           "--model", model, "--batch-size", str(batch_size)] + (["--cache"] if cache else [])  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000], help="evaluation images")
    parser.add_argument("--variants", type=int, nargs="+", default=[20], help="clean + this many - 1 corruptions")
    parser.add_argument("--model", default="tv:resnet18", help="architecture (1000 classes)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cache", action="store_true", help="read a memory-mapped cache instead of the JPEGs")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--v", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    import torch

    print(f"CPU, torch threads {torch.get_num_threads()}, model {args.model}, batch {args.batch_size}, "
          f"{'memory-mapped cache' if args.cache else 'decoding JPEGs'}")  # fmt: skip
    print("| images | variants | seconds | images/s | peak RSS (MiB) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as tmp:
        build_set(Path(tmp), max(args.sizes))
        for n in args.sizes:
            for v in args.variants:
                r = run(tmp, n, v, args.model, args.batch_size, args.cache)
                print(
                    f"| {n} | {v} | {r['seconds']:.1f} | {r['images_per_s']:.1f} | {r['peak_rss_mib']:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
