"""A CIFAR-sized store for the site's scale figures (issue 23 §4), generated without training or evaluating.

10 classes, 10 000 evaluation samples, 30 models per architecture (the paper's sweep, precompute/cifar10-paper.toml:
dense; random x5; magnitude x7 and their 7 retrained copies; Taylor x5; MPT x5), every corruption at every
severity evaluated, and the per-sample geometry of every sample shipped: what `lotterysite precompute
precompute/cifar10-paper.toml` would write with `ship.max_rows_per_model` large enough for the whole set.

The per-sample values are drawn, not measured, but hang together the way measured ones do, so that the store's
own aggregation code makes the tables: per model and variant, an angle to every class direction (the true class's
smaller for easy samples, larger with corruption severity and pruning damage; sample difficulty, a per-variant
disturbance and a per-sample pull towards each other class shared by every model, so models agree and disagree as
trained ones do), a feature length, and from those the logits z_j = length * cos(angle_j) (unit class directions):
the prediction is the nearest class direction, the margin (z_y - max_{j!=y} z_j) / sqrt(2) (signed: positive
exactly when correct), prob_true and loss the softmax's. These become `ModelResults`, and the tables are built by
the precompute's own table builders (`lotterysite.precompute.tables`) and written through the store's writers
(declared schemas, `to_table`, `write_table`, `write_manifest`): accuracy with bootstrap intervals, Table 1, Fig. 10,
exemplars, outcomes, geometry. Not written: paired.arrow and curse.arrow (optional tables; the findings page
leaves those figures out) and the gallery (no corruptions were generated). Thumbnails are PNG crops of the 20
real CIFAR-10 photos in the foolbox wheel, so samples.arrow weighs what a CIFAR-10 store's does.

    python bench/scale_store.py STORE [--samples 10000 --models 30 ...]; `lotterysite info STORE` checks it.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
# The paper's sweep per architecture (precompute/cifar10-paper.toml): 30 models with dense.
SWEEP = (
    ("random", False, (0.1, 0.3, 0.5, 0.7, 0.9)),
    ("magnitude", False, (0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99)),
    ("magnitude", True, (0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99)),
    ("taylor", False, (0.1, 0.3, 0.5, 0.7, 0.9)),
    ("mpt", False, (0.3, 0.5, 0.7, 0.9, 0.95)),
)
# How much a method damages the features at amount a (0: dense's geometry): degrees added to the true-class angle
# per unit, so accuracies fall with amount as in the paper (random worst, retrained magnitude best).
DAMAGE = {"random": lambda a: 1.6 * a**2, "magnitude": lambda a: 0.9 * a**4, "magnitude+retrain": lambda a: 0.35 * a**4,
          "taylor": lambda a: 1.1 * a**4, "mpt": lambda a: 0.5 * a**3}  # fmt: skip


@dataclass(frozen=True)
class ScaleConfig:
    classes: int = 10  # CIFAR-10's names (more classes: "class <j>")
    samples: int = 10_000  # evaluation samples, every one shipped
    models: int = 30  # per architecture: the first N of dense + SWEEP (30 is all of it)
    archs: tuple[str, ...] = ("vgg16",)
    corruptions: int = 19  # the first N CIFAR-10-C corruptions
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)  # evaluated: accuracy, outcomes
    shipped: tuple[int, ...] = (3,)  # severities whose per-sample rows ship (each adds samples x models rows)
    thumbnails: bool = True
    seed: int = 0


def sweep(n: int) -> list[tuple[str, bool, float]]:
    """The first `n` models of dense + SWEEP, as (method, retrained, amount)."""
    out = [("dense", False, 0.0)] + [(m, r, a) for m, r, amounts in SWEEP for a in amounts]
    if not 1 <= n <= len(out):
        raise ValueError(f"--models {n}: between 1 and {len(out)} (dense and the paper's sweep)")
    return out[:n]


def _results(cfg: ScaleConfig, labels, variants, keep, method_label: str, amount: float, model_seed: int):
    """One model's `ModelResults` over every variant (see the module docstring for the model of the values)."""
    from lotterysite.precompute.aggregate import Confusion, ModelResults

    N, C, V = len(labels), cfg.classes, len(variants)
    shared = np.random.default_rng([cfg.seed, 1])  # the same for every model: what the samples are
    difficulty = shared.standard_normal(N).astype(np.float32)
    pull = shared.standard_normal((N, C)).astype(np.float32)  # a sample's closeness to each other class
    hardness = 0.3 + 0.9 * shared.random(len({n for n, _ in variants}))
    names = list(dict.fromkeys(n for n, _ in variants[1:]))
    shift = np.array([0.0] + [s * hardness[names.index(n)] for n, s in variants[1:]], np.float32)  # V
    disturb = shared.standard_normal((V, N)).astype(np.float32)  # a variant's effect on each sample, every model
    disturb[0] = 0
    own = np.random.default_rng([cfg.seed, 2, model_seed])
    damage = DAMAGE[method_label](amount) if method_label != "dense" else 0.0  # "magnitude+retrain" its own
    true = 45 + 18 * difficulty[None, :] + 7 * shift[:, None] * (1 + damage) + 25 * damage + 6 * disturb
    true = true + 4 * own.standard_normal((V, N), dtype=np.float32)
    angle = 82 + 6 * pull[None, :, :] - 2 * shift[:, None, None] + 3 * own.standard_normal((V, N, C), dtype=np.float32)
    angle[:, np.arange(N), labels] = true
    np.clip(angle, 0.5, 179.5, out=angle)
    length = np.exp(np.log(8) - 0.15 * shift[:, None] - 0.5 * damage + 0.3 * own.standard_normal((V, N)))
    logits = length[..., None] * np.cos(np.deg2rad(angle))
    pred = logits.argmax(-1).astype(np.int16)
    z_true = logits[:, np.arange(N), labels]
    others = logits.copy()
    others[:, np.arange(N), labels] = -np.inf
    margin = (z_true - others.max(-1)) / math.sqrt(2)
    # Without a bias (eq. 5 as printed: the nearest boundary by distance, signed by correctness). These logits have
    # no bias, so a correct sample's value equals `margin`; a wrong one's is the nearest boundary, not the winner's.
    gap = np.abs(z_true[..., None] - logits)
    gap[:, np.arange(N), labels] = np.inf
    margin_eq5 = np.where(pred == labels[None, :], 1, -1) * gap.min(-1) / math.sqrt(2)
    lse = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    loss = lse - z_true
    return ModelResults(
        variants=list(variants), labels=labels.astype(np.int64), pred=pred, margin=margin.astype(np.float32),
        margin_eq5=margin_eq5.astype(np.float32),
        length=length.astype(np.float32), angle_true=angle[:, np.arange(N), labels].astype(np.float32),
        prob_true=np.exp(-loss).astype(np.float32), loss=loss.astype(np.float32),
        degenerate=np.zeros((V, N), bool), angle=angle[keep].astype(np.float32), angle_variants=list(keep),
        confusion=Confusion.empty(C),  # read only with more than WIDE_CLASSES classes (confused.arrow)
    )  # fmt: skip


def thumbnails(n: int, seed: int) -> list[str]:
    """`n` PNG data URIs of 32-px random crops (75-100 %, resized back to 32 px) and flips of foolbox's 20 real
    CIFAR-10 photos: the weight of a CIFAR-10 store's thumbnails."""
    import torch
    from PIL import Image

    from lotterysite.precompute.tables import thumbnail

    folder = Path(importlib.util.find_spec("foolbox").origin).parent / "data"
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("cifar10_*.png"))]
    if not photos:
        raise FileNotFoundError(f"no cifar10_*.png in {folder}: install foolbox (pyproject's test extra)")
    rng = np.random.default_rng([seed, 3])
    out = []
    for i in range(n):
        img = photos[i % len(photos)]
        side = int(rng.integers(24, 33))
        y, x = rng.integers(0, 33 - side, size=2)
        crop = Image.fromarray(img[y : y + side, x : x + side]).resize((32, 32), Image.BILINEAR)
        arr = np.asarray(crop)[:, ::-1] if rng.random() < 0.5 else np.asarray(crop)
        out.append(thumbnail(torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))))
    return out


def write_scale_store(root: str | Path, cfg: ScaleConfig = ScaleConfig(), *, log=print) -> Path:  # noqa: B008
    """Write the store of `cfg` to `root` (a new folder); returns `root`."""
    from lotterysite import __version__
    from lotterysite.corruptions import NAMES
    from lotterysite.precompute import aggregate as agg
    from lotterysite.precompute import tables
    from lotterysite.precompute.plan import ModelEntry
    from lotterysite.precompute.recipe import model_id, model_key
    from lotterysite.store import sampling, to_table, write_manifest, write_table
    from lotterysite.store.publish import new_run_id
    from lotterysite.store.schema import (
        ACCURACY,
        CORRELATIONS,
        EXEMPLARS,
        MARGIN_CHANGE,
        MODELS,
        SAMPLES,
        geometry_schema,
        outcomes_schema,
    )

    if not set(cfg.shipped) <= set(cfg.severities):
        raise ValueError(f"shipped severities {cfg.shipped} must be evaluated ({cfg.severities})")
    root = Path(root)
    (root / "geometry").mkdir(parents=True)
    t0 = time.perf_counter()
    C, N = cfg.classes, cfg.samples
    classes = list(CIFAR10[:C]) if C <= len(CIFAR10) else [f"class {j}" for j in range(C)]
    labels = np.random.default_rng([cfg.seed, 0]).permutation(np.arange(N) % C).astype(np.int64)
    names = list(NAMES[: cfg.corruptions])
    variants = [("clean", 0)] + [(n, s) for n in names for s in cfg.severities]
    keep = [v for v, (_, s) in enumerate(variants) if s == 0 or s in cfg.shipped]
    run_id = new_run_id()
    recipe = {"name": "cifar-scale", "title": f"CIFAR-sized scale fixture (bench/scale_store.py, {cfg})"}
    meta = {"recipe": recipe["name"], "config": {"generator": "bench/scale_store.py", **cfg.__dict__}}
    files: dict[str, int] = {}

    def put(name: str, columns: dict, schema) -> None:
        files[name] = write_table(root / name, to_table(columns, schema, where=name),
                                  metadata={**meta, "run_id": run_id})  # fmt: skip

    results = {}
    for arch in cfg.archs:
        for method, retrained, amount in sweep(cfg.models):
            label = method + ("+retrain" if retrained else "")
            mid = model_id(arch, method, amount, retrained=retrained, seed=0, many_seeds=False)
            entry = ModelEntry(mid, model_key(mid), arch, method, amount, retrained, 0)
            res = _results(cfg, labels, variants, keep, label, amount, model_seed=len(results))
            extra = {"sparsity": amount, "prunable": 14_710_464}  # VGG16's prunable conv + linear weights
            results[mid] = (entry, res, extra)
    log(f"generated {len(results)} models x {len(variants)} variants x {N} samples in {time.perf_counter() - t0:.0f} s")

    weights = agg.BOOTSTRAP.weights(N)
    acc, overall = tables.accuracy_table(results, C, weights)
    put("models.arrow", tables.models_table(results, overall), MODELS)
    put("accuracy.arrow", acc, ACCURACY)
    put("correlations.arrow", tables.correlations_table(results, weights, corrupted=len(variants) > 1), CORRELATIONS)
    put("margin_change.arrow", tables.margin_change_table(results, corrupted=len(variants) > 1), MARGIN_CHANGE)
    exm = tables.exemplars_table(results, labels)
    put("exemplars.arrow", exm, EXEMPLARS)
    del weights

    # Every sample ships: the store's own draw with a budget of the whole set (the policy takes everything).
    rows_per_sample = 1 + len(names) * len(cfg.shipped)
    pies = np.unique(np.asarray(exm["sample_id"], dtype=np.int64))
    pie = np.isin(np.arange(N), pies)
    drawn = sampling.draw_samples(labels, pie, sample_size=N, budget=N, seed=cfg.seed)
    shipped = drawn.index
    shipping = tables.shipping_record(labels, pies, drawn, C, asked=N // C, max_rows=N * rows_per_sample,
                                      rows_per_sample=rows_per_sample, limit=N, seed=cfg.seed)  # fmt: skip
    thumbs = thumbnails(N, cfg.seed) if cfg.thumbnails else [""] * N
    put("samples.arrow", {"sample_id": shipped, "label": labels[shipped],
                          "class_name": [classes[j] for j in labels[shipped]],
                          "thumbnail": [thumbs[i] for i in shipped], "pie": pie[shipped],
                          "in_sample": drawn.in_sample}, SAMPLES)  # fmt: skip
    put("outcomes.arrow", tables.outcomes_table(results, shipped, names), outcomes_schema(names))
    for entry, res, _ in results.values():
        put(
            f"geometry/{entry.key}.arrow",
            tables.geometry_table(entry, res, shipped, labels, keep, C),
            geometry_schema(C),
        )
    manifest = {
        "run_id": run_id, "lotterysite_version": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S+00:00",
                                                                                     time.gmtime()),
        "recipe": {**recipe, "path": "", "config": meta["config"]},
        "dataset": {"name": "cifar10-scale-fixture", "classes": classes, "n_eval": N, "n_shipped": len(shipped),
                    "channels": 3, "image_size": 32, "shipping": shipping, "confused_classes": None,
                    "skipped_unreadable": {"train": 0, "test": 0}},
        "architectures": list(cfg.archs), "methods": list(dict.fromkeys(e.method for e, _, _ in results.values())),
        "models": [{"model_id": e.model_id, "arch": e.arch, "method": e.method, "amount": e.amount,
                    "retrained": e.retrained, "seed": e.seed, "model_key": e.key} for e, _, _ in results.values()],
        "corruptions": names, "severities": list(cfg.severities), "shipped_severities": list(cfg.shipped),
        "corruption_source": "generate", "bootstrap": agg.BOOTSTRAP.as_dict(), "gallery": None,
        "files": {name: {"rows": rows} for name, rows in sorted(files.items())},
    }  # fmt: skip
    write_manifest(root, manifest)
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    log(f"store {root}: {len(files)} files, {total / 1e6:.1f} MB in {time.perf_counter() - t0:.0f} s")
    return root


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("store", type=Path, help="new folder to write")
    d = ScaleConfig()
    p.add_argument("--classes", type=int, default=d.classes)
    p.add_argument("--samples", type=int, default=d.samples)
    p.add_argument("--models", type=int, default=d.models, help="per architecture (30: the paper's sweep)")
    p.add_argument("--archs", default=",".join(d.archs), help="comma-separated architecture names")
    p.add_argument("--corruptions", type=int, default=d.corruptions)
    p.add_argument("--severities", default=",".join(map(str, d.severities)))
    p.add_argument("--shipped", default=",".join(map(str, d.shipped)), help="severities whose rows ship")
    p.add_argument("--no-thumbnails", action="store_true")
    a = p.parse_args()
    ints = lambda s: tuple(int(x) for x in s.split(","))  # noqa: E731
    cfg = ScaleConfig(a.classes, a.samples, a.models, tuple(a.archs.split(",")), a.corruptions, ints(a.severities),
                      ints(a.shipped), not a.no_thumbnails)  # fmt: skip
    write_scale_store(a.store, cfg)


if __name__ == "__main__":
    main()
