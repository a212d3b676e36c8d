"""Unit execution: the work of one unit of the plan (precompute/plan.py), writing its one work file.

    corruptions  one corrupted variant of the evaluation set, cached as uint8 .npy
    dense        a dense model, trained (or loaded from a checkpoint or weights file), as a checkpoint
    pruned       a pruned model, or its retrained copy ("retrained"), as a checkpoint
    evaluate     one model on every variant: per-sample prediction and geometry, cost, as a results file
    curse        the §5.4 study
Every file is written atomically and sealed. The store unit is precompute/publish.py's.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, replace

import numpy as np
import torch

from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..cost import LARGE_BATCH, model_cost
from ..data import DataError, ImageSet, load_cifar10c
from ..data._registry import DataSplits
from ..fileio import scratch_file, seal, unseal, write_bytes
from ..geometry import measure_model
from ..models import create_model, find_classifier
from ..pruning import load_pruned, prune_model, retrain, save_pruned, sparsity_report
from ..training import TrainingError, train
from . import aggregate as agg
from . import custom, results_file
from .curse import random_vector_angles, width_sweep
from .plan import DamagedWork, ModelEntry
from .stream import ResultsWriter, should_stream, stream_results


class UnitWork:
    """The runner's (run._Runner's) unit work, one method per kind of unit. Uses the runner's recipe, device,
    progress flag, meta and model cache (`models`), and its planning (`Planning`: where each file goes)."""

    def generate_corruptions(
        self, eval_set: ImageSet, variants: list[tuple[str, int]], *, always: bool = False
    ) -> None:
        from ..corruptions import corrupt

        c = self.recipe.corruptions
        shape = tuple(eval_set.images.shape)
        todo = [(n, s) for n, s in variants if always or not self.cached_corruption(self.corruption_path(n, s), shape)]
        for _ in range(len(variants) - len(todo)):
            self.reuse("data")
        chunk = 1000
        for name, severity in self.bar(todo, desc="corruptions", unit="variant"):
            parts = []
            for start in range(0, len(eval_set), chunk):
                x = eval_set.images[start : start + chunk].to(self.device)  # uint8: corrupt() returns its levels
                # The generator is seeded per chunk start too, so a chunk's draws don't depend on chunk order.
                parts.append(corrupt(x, name, severity, seed=c.seed * 100_003 + start, params=c.params).cpu())
            buf = io.BytesIO()
            np.save(buf, torch.cat(parts).numpy())
            write_bytes(self.corruption_path(name, severity), buf.getvalue())
            seal(self.corruption_path(name, severity))

    def variant_set(self, eval_set: ImageSet, name: str, severity: int) -> ImageSet:
        if name == "clean":
            return eval_set
        c = self.recipe.corruptions
        if c.source != "generate":
            return load_cifar10c(c.source, name, severity).head(len(eval_set))
        path = self.corruption_path(name, severity)
        try:
            array = np.load(path, allow_pickle=False)
        except Exception as e:  # damaged since the data stage checked it
            unseal(path)
            raise DataError(
                f"{path}: damaged ({type(e).__name__}: {e}); deleted it, rerun to generate it again"
            ) from None
        if array.shape != tuple(eval_set.images.shape):
            raise DataError(
                f"{path}: cached corruption has shape {array.shape}, expected {tuple(eval_set.images.shape)};"
                " delete it or rerun with --force"
            )
        return ImageSet(torch.from_numpy(array), eval_set.labels, eval_set.classes, f"{name}-{severity}")

    def dense_model(self, entry: ModelEntry, data: DataSplits):
        arch_cfg = next(a for a in self.recipe.architectures if a.model.arch == entry.arch)
        path = self.checkpoint_path(entry)
        shape = dict(in_channels=data.train.in_channels, image_size=data.train.image_size)
        if self.done(path):
            try:
                model = load_checkpoint(path, arch=entry.arch, num_classes=data.train.num_classes)[0]
                self.reuse("models")
                return model
            except CheckpointError as e:
                self.discard(path, str(e).removeprefix(f"{path}: "))
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
                        meta={**self.meta, "model_id": entry.model_id,
                              "settings": self.model_settings(entry, model)})  # fmt: skip
        seal(path)
        return model

    def pruned_model(self, entry: ModelEntry, parent, data: DataSplits):
        """Prune `parent` (the dense model), or retrain it (the pruned model) for a `+retrain` entry."""
        path = self.checkpoint_path(entry)
        arch_cfg = next(a for a in self.recipe.architectures if a.model.arch == entry.arch)
        shape = dict(in_channels=data.train.in_channels, image_size=data.train.image_size)
        if self.done(path):
            try:
                model = load_pruned(path, arch=entry.arch, num_classes=data.train.num_classes)[0]
                self.reuse("models")
                return model
            except CheckpointError as e:
                self.discard(path, str(e).removeprefix(f"{path}: "))
        sweep = self.sweep_of(entry)
        try:
            model = self.prune_or_retrain(entry, sweep, parent, data)
        except TrainingError as e:  # MPT's or retraining's loss diverged: name the model it was making
            raise TrainingError(f"{entry.model_id}: {e}") from None
        meta = {**self.meta, "model_id": entry.model_id, "settings": self.model_settings(entry, model)}
        save_pruned(path, model, **shape, options=arch_cfg.model.options, meta=meta)
        seal(path)
        return model

    def prune_or_retrain(self, entry: ModelEntry, sweep, parent, data: DataSplits):
        if entry.retrained:
            # Retrain the very model that is shipped un-retrained, so the pair differs by retraining only.
            cfg = sweep.config(entry.amount, entry.seed, retrain=True, progress=self.progress)
            model, _ = retrain(parent, data.train.head(sweep.train_subset), cfg.train_config("retrain"),
                               device=self.device, progress=self.progress)  # fmt: skip
            # The batches its parent's batch norm was recalibrated on (0 without batch norm, or with recalibration
            # off), not the recipe's request: what was done to this model.
            used = getattr(getattr(parent, "prune_config", None), "bn_recalibration_batches", 0)
            model.prune_config = replace(cfg, bn_recalibration_batches=used)
        else:
            cfg = sweep.config(entry.amount, entry.seed, retrain=False, progress=self.progress)
            model = prune_model(parent, cfg, data=data.train.head(sweep.train_subset), device=self.device)
        return model

    def model_settings(self, entry: ModelEntry, model) -> dict:
        """Every setting that made `entry`'s model, defaults spelt out: "train" (the dense model's TrainConfig;
        None when it was loaded from a checkpoint or weights file), and for a pruned model "pruning" (its
        PruneConfig, with the batch-norm recalibration batches actually used), "train_subset" and the TrainConfig
        of each training stage it went through ("mpt", "retrain"). In the checkpoint's meta and, per model, in the
        store's manifest.json ("models"[i]["settings"])."""
        if entry.file:  # a [[models]] table: made elsewhere
            return {"made_elsewhere": True}
        a = next(a for a in self.recipe.architectures if a.model.arch == entry.arch)
        out: dict = {"train": None if a.checkpoint or a.weights else asdict(replace(a.train, seed=entry.seed))}
        cfg = getattr(model, "prune_config", None)
        if entry.method == "dense" or cfg is None:
            return out
        out["pruning"] = {k: v for k, v in asdict(cfg).items() if k != "progress"}
        out["train_subset"] = self.sweep_of(entry).train_subset
        if cfg.method == "mpt":
            out["mpt"] = asdict(cfg.train_config("mpt"))
        if entry.retrained:
            out["retrain"] = asdict(cfg.train_config("retrain"))
        return out

    def sweep_of(self, entry: ModelEntry):
        """The [[pruning]] table that made `entry` (a method may have one table per set of architectures)."""
        return next(s for s in self.recipe.pruning if s.name == entry.method and entry.amount in s.amounts
                    and (s.archs is None or entry.arch in s.archs))  # fmt: skip

    def model(self, entry: ModelEntry, data: DataSplits):
        """The model of `entry`: from this process's cache, else its checkpoint (a damaged one is DamagedWork)."""
        if entry.model_id in self.models:
            self.models.move_to_end(entry.model_id)
            return self.models[entry.model_id]
        if entry.file:  # a [[models]] table: a model pruned elsewhere, read from its file every time
            shape = dict(in_channels=data.train.in_channels, image_size=data.train.image_size)
            model = custom.load_external(self.recipe, entry, num_classes=data.train.num_classes, **shape)
            return self.remember(entry, model)
        path = self.checkpoint_path(entry)
        load = load_checkpoint if entry.method == "dense" else load_pruned
        try:
            model = load(path, arch=entry.arch, num_classes=data.train.num_classes)[0]
        except CheckpointError as e:
            unseal(path)
            raise DamagedWork(path, str(e).removeprefix(f"{path}: ")) from None
        return self.remember(entry, model)

    def remember(self, entry: ModelEntry, model):
        # A few models stay in memory: a dense model is pruned right after it is trained, a pruned one evaluated
        # and retrained right after it is made (the local executor runs units in that order).
        self.models[entry.model_id] = model
        while len(self.models) > 3:
            self.models.popitem(last=False)
        return model

    def evaluate(self, model, eval_set: ImageSet, variants, angle_file: str | None = None) -> agg.ModelResults:
        c = self.recipe.corruptions
        keep = self.kept_variants(variants)
        if c.source == "generate" and should_stream(eval_set, variants):
            # Variants generated per batch on the device (class folders, or too large to cache): see stream.py.
            return stream_results(model, eval_set, variants, batch_size=self.recipe.batch_size, device=self.device,
                                  seed=c.seed, params=c.params, keep=keep, angle_file=angle_file)  # fmt: skip
        # One set of results arrays, filled variant by variant (stream.py, "Memory").
        out = ResultsWriter(variants, eval_set.labels, keep, angle_file)
        try:
            for v, (name, severity) in enumerate(variants):
                images = self.variant_set(eval_set, name, severity)
                batches = images.batches(self.recipe.batch_size, device=self.device)
                g, _ = measure_model(model, batches, device=self.device)
                out.put(v, 0, g)
                del g
            return out.results()
        finally:
            out.close()

    def evaluate_unit(self, entry: ModelEntry, data: DataSplits, eval_set: ImageSet, variants) -> None:
        model = self.model(entry, data)
        path = self.results_path(entry)
        # The kept angles (K x N x C, gigabytes for ImageNet) go to a scratch file beside the results, then are
        # copied into the results file; a crash leaves only the scratch file, removed on the next run.
        with scratch_file(path.with_suffix(".angle.npy")) as angle_file:
            res = self.evaluate(model, eval_set, variants, angle_file=str(angle_file))
            report = sparsity_report(model)
            cfg = getattr(model, "prune_config", None)
            extra = {"sparsity": report["sparsity"], "prunable": report["count"],
                     "bn_recalibration_batches": getattr(cfg, "bn_recalibration_batches", 0),
                     "settings": self.model_settings(entry, model), **self.cost(entry, model, eval_set)}  # fmt: skip
            results_file.save(path, res, extra, angle_file=angle_file)
            seal(path)
            del res

    def cost(self, entry: ModelEntry, model, eval_set) -> dict:
        """What the model costs (lotterysite.cost) and how it was pruned: structured pruning changes the first, and
        may change the feature dimension. Latency is measured here, on the precompute device, except for models of
        the dense shape (masks), which take their dense model's in the store (see `models_table`)."""
        structured = getattr(model, "structured", None) or {}
        weight_level = entry.method != "dense" and not structured
        cost = model_cost(model, in_channels=eval_set.in_channels, image_size=eval_set.image_size,
                          device=self.device, large_batch=min(LARGE_BATCH, self.recipe.batch_size),
                          latency=not weight_level)  # fmt: skip
        feature_dim = find_classifier(model)[1].in_features
        granularity = "none" if entry.method == "dense" else "channel" if structured else "weight"
        return {
            **cost,
            "latency_batch": min(LARGE_BATCH, self.recipe.batch_size),
            "granularity": granularity,
            "feature_dim": feature_dim,
            "dense_feature_dim": structured.get("dense_feature_dim", feature_dim),
        }

    def curse(self, data: DataSplits, eval_set: ImageSet) -> dict[str, list]:
        c = self.recipe.curse
        rows = random_vector_angles(c.random_dims, c.random_samples, seed=self.recipe.seeds[0])
        sweep = width_sweep(c.arch, c.widths, data, eval_set, epochs=c.epochs, train_subset=c.train_subset,
                            seed=self.recipe.seeds[0], device=self.device, progress=self.progress)  # fmt: skip
        for k in rows:
            rows[k] += sweep[k]
        write_bytes(self.curse_path(), json.dumps({"rows": rows}).encode())
        seal(self.curse_path())
        return rows
