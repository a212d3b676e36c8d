"""Precompute's evaluation on a 224 px class-folder set: images/s and peak RSS, and peak RSS against the number
of corrupted variants (it must not grow with them). Beside it: the results held in memory (V x N small columns and
the C x C confusion sums) and the shipped variants' angles to every class, which go to disk, not memory.

Builds a class-folder set of N JPEGs (random crops and flips of the 20 real ImageNet photos in the foolbox wheel,
19 classes), then, each in a fresh process so its peak RSS is its own, runs `precompute.stream.stream_results`
(decode a batch, corrupt it per variant on the device, measure the model, write the batch's results into arrays
allocated once and the kept angles into a file) and writes the results file, for N images x V variants: what
precompute's evaluation unit runs for a class-folder set.

    python bench/imagefolder.py                         # 500 and 2000 images x (clean + 19 corruptions), sev. 3
    python bench/imagefolder.py --sizes 100 --variants 2 20 --heap both   # RSS flat in V, and glibc's default
"""

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]


def build_set(folder: Path, n: int, seed: int = 0, classes: list[str] | None = None) -> None:
    """N photos as test/<class>/*.jpg (and one per class in train/): random 60-100% crops, random flips.

    With `classes`, image i goes to folder classes[i % len(classes)] instead of its photo's label, and every image
    is in train/ too (bench/site.py's at-scale many-class store: 2 images per class for 2000 images, 1000 classes).
    """
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
        train = classes is not None or i < len(photos)
        for split in ("test",) + (("train",) if train else ()):
            out = folder / split / (classes[i % len(classes)] if classes else f"c{int(label):04d}")
            out.mkdir(parents=True, exist_ok=True)
            img.save(out / f"{i:05d}.jpg", quality=90)


def child(args) -> None:
    import torch

    from lotterysite.corruptions import NAMES
    from lotterysite.data import load_imagefolder
    from lotterysite.models import create_model
    from lotterysite.precompute import stream

    test = load_imagefolder(args.folder, 224).test.head(args.n)
    if args.cache:
        test = test.cached(Path(args.folder) / "cache")
    variants = [("clean", 0)] + [(name, 3) for name in NAMES][: args.v - 1]
    torch.manual_seed(0)
    model = create_model(args.model, num_classes=1000, in_channels=3, image_size=224)
    if args.heap == "glibc":  # glibc's dynamic mmap threshold, as before bound_heap
        stream.bound_heap = lambda *a, **k: False
    from lotterysite.precompute import results_file

    # As precompute's evaluate unit: the shipped variants' angles to every class (clean and severity 3, the
    # default ship.severities: all of them here) go to a scratch file, then everything into the results file.
    keep = [i for i, (_, s) in enumerate(variants) if s in (0, 3)]
    work = Path(args.folder) / f"work-{args.n}-{args.v}-{args.heap}"
    work.mkdir(exist_ok=True)
    start = time.perf_counter()
    res = stream.stream_results(model, test, variants, batch_size=args.batch_size, device="cpu", params="imagenet",
                                keep=keep, angle_file=str(work / "angle.npy"))  # fmt: skip
    results_file.save(work / "results.npz", res, {}, angle_file=work / "angle.npy")
    seconds = time.perf_counter() - start
    assert res.margin.shape == (len(variants), args.n)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    in_memory = sum(a.nbytes for k, a in res.arrays().items() if k != "angle") / 2**20
    print(json.dumps({"n": args.n, "variants": len(variants), "seconds": seconds, "results_mib": in_memory,
                      "angle_file_mib": (work / "angle.npy").stat().st_size / 2**20,
                      "images_per_s": args.n * len(variants) / seconds, "peak_rss_mib": peak,
                      "load": os.getloadavg()[0]}))  # fmt: skip


def run(folder, n, v, model, batch_size, cache, heap) -> dict:
    cmd = [sys.executable, __file__, "--child", "--folder", str(folder), "--n", str(n), "--v", str(v),
           "--model", model, "--batch-size", str(batch_size), "--heap", heap]  # fmt: skip
    cmd += ["--cache"] if cache else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000], help="evaluation images")
    parser.add_argument("--variants", type=int, nargs="+", default=[20], help="clean + this many - 1 corruptions")
    parser.add_argument("--model", default="tv:resnet18", help="architecture (1000 classes)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cache", action="store_true", help="read a memory-mapped cache instead of the JPEGs")
    parser.add_argument("--heap", choices=["bound", "glibc", "both"], default="bound",
                        help="bound: stream.bound_heap's fixed mmap threshold; glibc: glibc's default")  # fmt: skip
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
    from lotterysite.precompute.stream import MMAP_THRESHOLD

    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, load {os.getloadavg()}, "
          f"bound heap: mmap threshold {MMAP_THRESHOLD / 2**20:g} MB")  # fmt: skip
    print("| images | variants | heap | seconds | images/s | peak RSS (MiB) | results in memory (MiB) | angles on disk "
          "(MiB) | load |")  # fmt: skip
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    heaps = ["bound", "glibc"] if args.heap == "both" else [args.heap]
    with tempfile.TemporaryDirectory() as tmp:
        build_set(Path(tmp), max(args.sizes))
        for n in args.sizes:
            for v in args.variants:
                for heap in heaps:
                    r = run(tmp, n, v, args.model, args.batch_size, args.cache, heap)
                    cells = (n, v, heap, f"{r['seconds']:.1f}", f"{r['images_per_s']:.1f}", f"{r['peak_rss_mib']:.0f}",
                             f"{r['results_mib']:.1f}", f"{r['angle_file_mib']:.0f}", f"{r['load']:.1f}")  # fmt: skip
                    print("| " + " | ".join(map(str, cells)) + " |", flush=True)


if __name__ == "__main__":
    main()
