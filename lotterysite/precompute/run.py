"""`precompute`: run what a recipe describes and write the store.

Stages, each resumable (finished work lives in <store>/.work and is reused unless `force`):
  1. data        the evaluation set, and every corrupted variant (generated once, cached as uint8 .npy)
  2. models      dense (trained or loaded) and every pruned / retrained model, as checkpoints
  3. evaluate    every model on every variant: per-sample prediction and geometry, full evaluation set
  4. curse       the §5.4 study
  5. store       aggregates on the full data, the shipped samples' rows, thumbnails, gallery, manifest
Every file is written atomically, so an interrupted run (Ctrl-C, kill -9) leaves only whole files behind.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import __version__
from ..checkpoint import load_checkpoint, save_checkpoint
from ..fileio import atomic_write
from ..config import TrainConfig
from ..data import DataError, ImageSet, load_cifar10c
from ..data._registry import DataSplits
from ..geometry import measure_model
from ..models import create_model
from ..pruning import load_pruned, prune_model, retrain, save_pruned, sparsity_report
from ..store import geometry_schema, to_table, write_manifest, write_table
from ..store.schema import (
    ACCURACY,
    CORRELATIONS,
    CURSE,
    EXEMPLARS,
    MARGIN_CHANGE,
    MODELS,
    SAMPLES,
    outcomes_schema,
)
from ..training import train
from . import aggregate as agg
from . import custom
from .stream import measure_variants, should_stream
from .curse import random_vector_angles, width_sweep
from .recipe import Recipe, model_id, model_key, shipped_rows


PNG_SIDE = 32  # pixels: thumbnails of images up to this size ship as they are, as PNG
THUMBNAIL_SIDE = 64  # pixels: larger images ship shrunk to this, as JPEG


@dataclass(frozen=True)
class ModelEntry:
    model_id: str
    key: str
    arch: str
    method: str  # "dense" or a pruning method
    amount: float
    retrained: bool
    seed: int
    fingerprint: str = ""  # hash of every recipe setting that shapes this model: work files are named by it
    file: str = ""  # a [[models]] table's file: a model pruned elsewhere, loaded instead of pruned here


def _fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class PrecomputeResult:
    store: Path
    models: int
    shipped: int
    timings: dict[str, float] = field(default_factory=dict)
    reused: dict[str, int] = field(default_factory=dict)

    def report(self) -> str:
        lines = [f"store {self.store}: {self.models} models, {self.shipped} shipped samples"]
        for stage, seconds in self.timings.items():
            reused = self.reused.get(stage)
            extra = f" ({reused} reused)" if reused else ""
            lines.append(f"  {stage:<10} {seconds:8.1f} s{extra}")
        return "\n".join(lines)


def plan_models(recipe: Recipe) -> list[ModelEntry]:
    """Every model the recipe asks for, dense first, in a stable order."""
    many = len(recipe.seeds) > 1
    data = asdict(recipe.data)
    out = []
    for seed in recipe.seeds:
        for a in recipe.architectures:
            arch = a.model.arch
            mid = model_id(arch, "dense", 0.0, retrained=False, seed=seed, many_seeds=many)
            dense_fp = _fingerprint(data, asdict(a), seed)
            out.append(ModelEntry(mid, model_key(mid), arch, "dense", 0.0, False, seed, dense_fp))
            for sweep in recipe.pruning:
                for amount in sweep.amounts:
                    pruned_fp = _fingerprint(dense_fp, sweep.method, amount, sweep.options, sweep.train_subset)
                    for retrained in (False, True) if sweep.retrain_epochs else (False,):
                        mid = model_id(arch, sweep.method, amount, retrained=retrained, seed=seed, many_seeds=many)
                        fp = _fingerprint(pruned_fp, sweep.retrain_epochs) if retrained else pruned_fp
                        out.append(ModelEntry(mid, model_key(mid), arch, sweep.method, amount, retrained, seed, fp))
    return out + custom.plan_external(recipe, ModelEntry)


class _Runner:
    def __init__(self, recipe: Recipe, store: Path, *, force: bool, device: torch.device, progress: bool):
        self.recipe, self.store, self.force, self.device, self.progress = recipe, store, force, device, progress
        self.work = store / ".work"
        self.result = PrecomputeResult(store, 0, 0)
        self.meta = {"recipe": recipe.name, "config": recipe.to_dict()}

    # -- helpers ---------------------------------------------------------------------------------------------
    def bar(self, iterable, **kw):
        return tqdm(iterable, disable=not self.progress, dynamic_ncols=True, **kw)

    def done(self, path: Path) -> bool:
        return path.exists() and not self.force

    def timed(self, stage: str, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        self.result.timings[stage] = time.perf_counter() - start
        return out

    def reuse(self, stage: str):
        self.result.reused[stage] = self.result.reused.get(stage, 0) + 1

    # -- 1. data ---------------------------------------------------------------------------------------------
    def load_data(self) -> tuple[DataSplits, ImageSet, list[tuple[str, int]]]:
        r = self.recipe
        custom.check_inputs(r)
        splits = custom.load_splits(r)
        data = DataSplits(splits.train.head(r.data.train_subset), splits.test.head(r.data.test_subset))
        eval_set = custom.cache_images(data.test.head(r.eval_subset), self.work)
        for a in r.architectures:
            if a.checkpoint:  # fail on a wrong checkpoint now, not after an hour of corruptions
                load_checkpoint(a.checkpoint, arch=a.model.arch, num_classes=data.train.num_classes)
        variants = [("clean", 0)] + [(n, s) for n in r.corruptions.names for s in r.corruptions.severities]
        if r.corruptions.source != "generate":
            if data.test.num_classes != 10 or data.test.image_size != 32:
                raise DataError(
                    f"{r.path}: field 'corruptions.source' is a CIFAR-10-C folder, but data set {r.data.name!r} is "
                    "not CIFAR-10; use source = \"generate\" or data.name = \"cifar10\""
                )
        elif not should_stream(eval_set, variants):  # streamed variants are generated per batch in evaluate
            self.generate_corruptions(eval_set, variants[1:])
        return data, eval_set, variants

    def corruption_path(self, name: str, severity: int) -> Path:
        # Everything that determines the images is in the path, so a changed recipe never reuses stale ones.
        c, r = self.recipe.corruptions, self.recipe
        n = r.eval_subset if r.eval_subset is not None else "all"
        folder = f"{r.data.name}-test{r.data.test_subset or ''}-n{n}-{c.params}-seed{c.seed}"
        return self.work / "corruptions" / folder / f"{name}-{severity}.npy"

    def generate_corruptions(self, eval_set: ImageSet, variants: list[tuple[str, int]]) -> None:
        from ..corruptions import corrupt

        c = self.recipe.corruptions
        todo = [(n, s) for n, s in variants if not self.done(self.corruption_path(n, s))]
        for _ in range(len(variants) - len(todo)):
            self.reuse("data")
        chunk = 1000
        for name, severity in self.bar(todo, desc="corruptions", unit="variant"):
            parts = []
            for start in range(0, len(eval_set), chunk):
                x = eval_set.images[start : start + chunk].to(self.device).float().div_(255)
                # The generator is seeded per chunk start too, so a chunk's draws don't depend on chunk order.
                y = corrupt(x, name, severity, seed=c.seed * 100_003 + start, params=c.params)
                parts.append((y * 255).round().to(torch.uint8).cpu())
            array = torch.cat(parts).numpy()
            atomic_write(self.corruption_path(name, severity), lambda tmp, a=array: np.save(open(tmp, "wb"), a))

    def variant_set(self, eval_set: ImageSet, name: str, severity: int) -> ImageSet:
        if name == "clean":
            return eval_set
        c = self.recipe.corruptions
        if c.source != "generate":
            return load_cifar10c(c.source, name, severity).head(len(eval_set))
        path = self.corruption_path(name, severity)
        array = np.load(path, allow_pickle=False)
        if array.shape != tuple(eval_set.images.shape):
            raise DataError(f"{path}: cached corruption has shape {array.shape}, expected {tuple(eval_set.images.shape)};"
                            " delete it or rerun with --force")  # fmt: skip
        return ImageSet(torch.from_numpy(array), eval_set.labels, eval_set.classes, f"{name}-{severity}")

    # -- 2. models -------------------------------------------------------------------------------------------
    def checkpoint_path(self, entry: ModelEntry) -> Path:
        return self.work / "models" / f"{entry.key}-{entry.fingerprint}.pt"

    def dense_model(self, entry: ModelEntry, data: DataSplits):
        arch_cfg = next(a for a in self.recipe.architectures if a.model.arch == entry.arch)
        path = self.checkpoint_path(entry)
        shape = dict(in_channels=data.train.in_channels, image_size=data.train.image_size)
        if self.done(path):
            self.reuse("models")
            return load_checkpoint(path, arch=entry.arch, num_classes=data.train.num_classes)[0]
        if arch_cfg.checkpoint:
            model, _ = load_checkpoint(arch_cfg.checkpoint, arch=entry.arch, num_classes=data.train.num_classes)
        elif arch_cfg.weights:
            model = custom.model_from_weights(arch_cfg, num_classes=data.train.num_classes, **shape)
        else:
            torch.manual_seed(entry.seed)
            model = create_model(entry.arch, num_classes=data.train.num_classes, **shape, **arch_cfg.model.options)
            train_cfg = replace(arch_cfg.train, seed=entry.seed)
            train(model, data.train, train_cfg, device=self.device, progress=self.progress, desc=entry.model_id)
        save_checkpoint(path, model, **shape, options=arch_cfg.model.options,
                        meta={**self.meta, "model_id": entry.model_id})  # fmt: skip
        return model

    def pruned_model(self, entry: ModelEntry, dense, data: DataSplits, cache: dict):
        path = self.checkpoint_path(entry)
        arch_cfg = next(a for a in self.recipe.architectures if a.model.arch == entry.arch)
        shape = dict(in_channels=data.train.in_channels, image_size=data.train.image_size)
        if self.done(path):
            self.reuse("models")
            return load_pruned(path, arch=entry.arch, num_classes=data.train.num_classes)[0]
        sweep = next(s for s in self.recipe.pruning if s.method == entry.method)
        if entry.retrained:
            # Retrain the very model that is shipped un-retrained, so the pair differs by retraining only.
            base_id = entry.model_id.replace("+retrain", "")
            base_entry = next(e for e in plan_models(self.recipe) if e.model_id == base_id)
            base = cache.get(base_entry.key) or self.pruned_model(base_entry, dense, data, cache)
            cfg = sweep.config(entry.amount, entry.seed, retrain=True, progress=self.progress)
            train_cfg = TrainConfig(epochs=cfg.retrain_epochs, batch_size=cfg.batch_size, lr=cfg.retrain_lr, seed=entry.seed)
            model, _ = retrain(base, data.train.head(sweep.train_subset), train_cfg, device=self.device,
                               progress=self.progress)  # fmt: skip
            model.prune_config = cfg
        else:
            cfg = sweep.config(entry.amount, entry.seed, retrain=False, progress=self.progress)
            model = prune_model(dense, cfg, data=data.train.head(sweep.train_subset), device=self.device)
        save_pruned(path, model, **shape, options=arch_cfg.model.options, meta={**self.meta, "model_id": entry.model_id})
        return model

    # -- 3. evaluate -----------------------------------------------------------------------------------------
    def results_path(self, entry: ModelEntry) -> Path:
        c = self.recipe.corruptions
        fp = _fingerprint(entry.fingerprint, self.recipe.eval_subset, c.source, c.params, c.seed)
        return self.work / "results" / f"{entry.key}-{fp}.npz"

    def evaluate(self, model, eval_set: ImageSet, variants) -> agg.ModelResults:
        c = self.recipe.corruptions
        if c.source == "generate" and should_stream(eval_set, variants):
            # Variants generated per batch on the device (class folders, or too large to cache): see stream.py.
            parts = measure_variants(model, eval_set, variants, batch_size=self.recipe.batch_size, device=self.device,
                                     seed=c.seed, params=c.params)  # fmt: skip
        else:
            parts = []
            for name, severity in variants:
                images = self.variant_set(eval_set, name, severity)
                batches = images.batches(self.recipe.batch_size, device=self.device)
                g, _ = measure_model(model, batches, device=self.device)
                parts.append(g)
        stack = lambda attr, dtype: np.stack([getattr(g, attr).numpy() for g in parts]).astype(dtype)  # noqa: E731
        return agg.ModelResults(
            variants=list(variants),
            labels=eval_set.labels.numpy().astype(np.int64),
            pred=stack("pred", np.int16),
            margin=stack("margin", np.float32),
            length=stack("length", np.float32),
            angle=stack("angle", np.float32),
            prob_true=stack("prob_true", np.float32),
            loss=stack("loss", np.float32),
            degenerate=stack("degenerate", bool),
        )

    def save_results(self, path: Path, res: agg.ModelResults, extra: dict) -> None:
        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, variants=np.array(json.dumps(res.variants)), extra=np.array(json.dumps(extra)), **res.arrays())

        atomic_write(path, write)

    def load_results(self, path: Path, variants, labels: np.ndarray) -> tuple[agg.ModelResults, dict] | None:
        try:
            with np.load(path, allow_pickle=False) as z:
                stored = [tuple(v) for v in json.loads(str(z["variants"]))]
                if stored != [tuple(v) for v in variants]:
                    return None  # the recipe's variants changed: this model is evaluated again
                arrays = {k: z[k] for k in ("labels", "pred", "margin", "length", "angle", "prob_true", "loss", "degenerate")}
                if not np.array_equal(arrays["labels"], labels):
                    return None  # another evaluation set: evaluate again
                extra = json.loads(str(z["extra"]))
        except (OSError, ValueError, KeyError, EOFError) as e:
            tqdm.write(f"warning: {path} is unreadable ({e}); evaluating that model again")
            return None
        return agg.ModelResults(variants=stored, **arrays), extra

    def models_and_results(self, data: DataSplits, eval_set: ImageSet, variants) -> dict[str, tuple]:
        entries = plan_models(self.recipe)
        out: dict[str, tuple] = {}
        dense_cache: dict[tuple[str, int], object] = {}
        pruned_cache: dict[str, object] = {}
        model_time = eval_time = 0.0
        for entry in self.bar(entries, desc="models", unit="model"):
            path = self.results_path(entry)
            if self.done(path):
                loaded = self.load_results(path, variants, eval_set.labels.numpy())
                if loaded is not None:
                    self.reuse("evaluate")
                    out[entry.model_id] = (custom.placed(entry, loaded[1]), *loaded)
                    continue
            t0 = time.perf_counter()
            if entry.file:
                model = custom.load_external(self.recipe, entry, num_classes=data.train.num_classes,
                                             in_channels=data.train.in_channels, image_size=data.train.image_size)  # fmt: skip
            elif entry.method == "dense":
                model = self.dense_model(entry, data)
                dense_cache[(entry.arch, entry.seed)] = model
            else:
                dense = dense_cache.get((entry.arch, entry.seed))
                if dense is None:
                    dense_entry = next(e for e in entries if e.method == "dense" and e.arch == entry.arch and e.seed == entry.seed)
                    dense = dense_cache[(entry.arch, entry.seed)] = self.dense_model(dense_entry, data)
                model = self.pruned_model(entry, dense, data, pruned_cache)
                if not entry.retrained:
                    pruned_cache[entry.key] = model
            t1 = time.perf_counter()
            res = self.evaluate(model, eval_set, variants)
            eval_time += time.perf_counter() - t1
            model_time += t1 - t0
            report = sparsity_report(model)
            extra = {"sparsity": report["sparsity"], "prunable": report["count"]}
            self.save_results(path, res, extra)
            out[entry.model_id] = (custom.placed(entry, extra), res, extra)
        self.result.timings["models"] = model_time
        self.result.timings["evaluate"] = eval_time
        return out

    # -- 4. curse --------------------------------------------------------------------------------------------
    def curse(self, data: DataSplits, eval_set: ImageSet) -> dict[str, list] | None:
        c = self.recipe.curse
        if not c.enabled:
            return None
        path = self.work / "curse.json"
        key = json.dumps(asdict(c), sort_keys=True)
        if self.done(path):
            cached = json.loads(path.read_text())
            if cached.get("config") == key:
                self.reuse("curse")
                return cached["rows"]
        rows = random_vector_angles(c.random_dims, c.random_samples, seed=self.recipe.seeds[0])
        sweep = width_sweep(c.arch, c.widths, data, eval_set, epochs=c.epochs, train_subset=c.train_subset,
                            seed=self.recipe.seeds[0], device=self.device, progress=self.progress)  # fmt: skip
        for k in rows:
            rows[k] += sweep[k]
        atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps({"config": key, "rows": rows})))
        return rows

    # -- 5. store --------------------------------------------------------------------------------------------
    def write_store(self, results: dict, eval_set: ImageSet, variants, curse_rows) -> None:
        r = self.recipe
        classes = eval_set.classes
        C = len(classes)
        labels = eval_set.labels.numpy()
        files: dict[str, int] = {}

        def put(name: str, columns: dict, schema) -> None:
            files[name] = write_table(self.store / name, to_table(columns, schema, where=name), metadata=self.meta)

        entries = [e for e, _, _ in results.values()]
        # models.arrow
        cols = {k: [] for k in MODELS.names}
        for entry, res, extra in results.values():
            correct = res.correct
            for k, v in (
                ("model_id", entry.model_id), ("model_key", entry.key), ("arch", entry.arch), ("method", entry.method),
                ("retrained", entry.retrained), ("amount", entry.amount), ("sparsity", extra["sparsity"]),
                ("prunable", extra["prunable"]), ("seed", entry.seed), ("clean_accuracy", correct[0].mean()),
                ("corrupted_accuracy", correct[1:].mean() if len(variants) > 1 else float("nan")),
            ):  # fmt: skip
                cols[k].append(v)
        put("models.arrow", cols, MODELS)

        # accuracy.arrow, correlations.arrow, margin_change.arrow: full evaluation set
        acc = {k: [] for k in ACCURACY.names}
        cor = {k: [] for k in CORRELATIONS.names}
        mch = {k: [] for k in MARGIN_CHANGE.names}
        for entry, res, _ in results.values():
            for k, v in agg.accuracy_rows(entry.model_id, res, C).items():
                acc[k] += v
            if len(variants) > 1:
                ra, rl, rm = agg.correlations(res)
                for k, v in zip(CORRELATIONS.names, (entry.model_id, entry.arch, entry.method, entry.amount, len(labels), ra, rl, rm)):
                    cor[k].append(v)
                for k, v in agg.margin_change_density(entry.model_id, res).items():
                    mch[k] += v
        put("accuracy.arrow", acc, ACCURACY)
        put("correlations.arrow", cor, CORRELATIONS)
        put("margin_change.arrow", mch, MARGIN_CHANGE)

        # exemplars.arrow: per architecture, over every seed
        exm = {k: [] for k in EXEMPLARS.names}
        pie_ids = []
        for arch in dict.fromkeys(e.arch for e in entries):
            dense = [res.pred[0] for e, res, _ in results.values() if e.arch == arch and e.method == "dense"]
            pruned = [res.pred[0] for e, res, _ in results.values() if e.arch == arch and e.method != "dense"]
            if not dense or not pruned:
                continue
            idx, dpred, ppred, agree = agg.pruning_identified_exemplars(np.stack(dense), np.stack(pruned))
            pie_ids.append(idx)
            for k, v in zip(EXEMPLARS.names, ([arch] * len(idx), idx, labels[idx], dpred, ppred, agree)):
                exm[k] += list(v)
        put("exemplars.arrow", exm, EXEMPLARS)

        # The shipped samples: every exemplar, then a class-stratified draw, within the per-model row limit.
        per_sample_rows = shipped_rows(r, 1)
        limit = max(C, r.ship.max_rows_per_model // per_sample_rows)
        keep = np.concatenate(pie_ids) if pie_ids else np.array([], dtype=np.int64)
        shipped = agg.choose_shipped(labels, keep, per_class=r.ship.samples_per_class, limit=limit, seed=r.ship.seed)
        self.result.shipped = len(shipped)
        pie_set = set(keep.tolist())
        put("samples.arrow", {
            "sample_id": shipped, "label": labels[shipped], "class_name": [classes[i] for i in labels[shipped]],
            "thumbnail": [_thumbnail(custom.images_at(eval_set, [i])[0]) if r.ship.thumbnails else "" for i in shipped],
            "pie": [int(i) in pie_set for i in shipped],
        }, SAMPLES)  # fmt: skip

        # outcomes.arrow: per shipped sample and model, correctness on clean and per corruption (for subset accuracy)
        names = list(r.corruptions.names)
        oschema = outcomes_schema(names)
        out = {k: [] for k in oschema.names}
        for entry, res, _ in results.values():
            correct = res.correct[:, shipped]
            out["model_id"] += [entry.model_id] * len(shipped)
            out["sample_id"] += shipped.tolist()
            out["correct_clean"] += correct[0].tolist()
            out["robustness"] += correct[1:].sum(0).tolist()
            for n in names:
                rows = [v for v, (vn, _) in enumerate(res.variants) if vn == n]
                out[f"c_{n}"] += correct[rows].sum(0).tolist()
        put("outcomes.arrow", out, oschema)

        # geometry/<model_key>.arrow: shipped samples x (clean + corruptions at the shipped severities)
        gschema = geometry_schema(C)
        ship_variants = [v for v, (n, s) in enumerate(variants) if n == "clean" or s in r.ship.severities]
        for entry, res, _ in self.bar(list(results.values()), desc="store", unit="model"):
            rob = agg.robustness(res)[shipped]
            rel = np.vstack([np.zeros((1, res.margin.shape[1]), np.float32), agg.relative_margin_change(res)])
            angle_true = res.angle_true
            g = {k: [] for k in gschema.names}
            for v in ship_variants:
                name, severity = variants[v]
                n = len(shipped)
                g["model_id"] += [entry.model_id] * n
                g["sample_id"].append(shipped)
                g["variant"] += [name] * n
                g["severity"].append(np.full(n, severity))
                g["label"].append(labels[shipped])
                g["pred"].append(res.pred[v, shipped])
                g["correct"].append(res.correct[v, shipped])
                for k in ("prob_true", "loss", "length", "margin", "degenerate"):
                    g[k].append(getattr(res, k)[v, shipped])
                g["angle_true"].append(angle_true[v, shipped])
                g["rel_margin_change"].append(rel[v, shipped])
                g["robustness"].append(rob)
                for j in range(C):
                    g[f"angle_{j}"].append(res.angle[v, shipped, j])
            g = {k: (np.concatenate(v) if v and isinstance(v[0], np.ndarray) else v) for k, v in g.items()}
            put(f"geometry/{entry.key}.arrow", g, gschema)

        if curse_rows is not None:
            put("curse.arrow", curse_rows, CURSE)

        gallery_file = None
        if r.corruptions.source == "generate" and r.corruptions.names:
            from ..corruptions import gallery

            picks = [int(np.flatnonzero(labels == c)[0]) for c in range(min(C, 3)) if (labels == c).any()]
            images = custom.images_at(eval_set, picks).float().div(255)
            if not self.done(self.store / "gallery.png"):
                atomic_write(self.store / "gallery.png", lambda tmp: gallery(
                    images, Path(tmp), names=r.corruptions.names, params=r.corruptions.params, seed=r.corruptions.seed,
                ))  # fmt: skip
            gallery_file = "gallery.png"

        manifest = {
            "lotterysite_version": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "recipe": {"name": r.name, "title": r.title, "path": r.path, "config": r.to_dict()},
            "dataset": {
                "name": r.data.name, "classes": list(classes), "n_eval": len(eval_set), "n_shipped": len(shipped),
                "channels": eval_set.in_channels, "image_size": eval_set.image_size,
            },
            "architectures": list(dict.fromkeys(e.arch for e in entries)),
            "methods": list(dict.fromkeys(e.method for e in entries)),
            "models": [{k: getattr(e, k) for k in ("model_id", "arch", "method", "amount", "retrained", "seed")}
                       | {"model_key": e.key} for e in entries],
            "corruptions": names,
            "severities": list(r.corruptions.severities),
            "shipped_severities": list(r.ship.severities),
            "corruption_source": r.corruptions.source,
            "gallery": gallery_file,
            "files": {name: {"rows": rows, "bytes": (self.store / name).stat().st_size} for name, rows in sorted(files.items())},
        }  # fmt: skip
        write_manifest(self.store, manifest)


def _thumbnail(image: torch.Tensor) -> str:
    """A data URI of one uint8 C x H x W image, usable as a Vega URL: a PNG at its own size up to 32 px (a few
    hundred bytes at 28 px); larger images (class folders at 224 px) shrink to 64 px and ship as JPEG, ~2 KB."""
    from PIL import Image

    arr = image.numpy()
    pil = Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0))
    buf = io.BytesIO()
    if max(pil.size) <= PNG_SIDE:
        pil.save(buf, format="PNG", optimize=True)
        kind = "png"
    else:
        pil.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.BILINEAR)
        pil.save(buf, format="JPEG", quality=80, optimize=True)
        kind = "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def precompute(
    recipe: Recipe, *, store: str | Path | None = None, force: bool = False, device=None, progress: bool = True
) -> PrecomputeResult:
    """Run `recipe` end to end and write its store (default `store/<recipe name>`); resumes finished work."""
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    store = Path(store) if store is not None else Path("store") / recipe.name
    runner = _Runner(recipe, store, force=force, device=device, progress=progress)
    start = time.perf_counter()
    data, eval_set, variants = runner.timed("data", runner.load_data)
    results = runner.models_and_results(data, eval_set, variants)
    curse_rows = runner.timed("curse", runner.curse, data, eval_set)
    runner.timed("store", runner.write_store, results, eval_set, variants, curse_rows)
    runner.result.models = len(results)
    runner.result.timings["total"] = time.perf_counter() - start
    return runner.result


__all__ = ["ModelEntry", "PrecomputeResult", "plan_models", "precompute"]
