"""`precompute`: run what a recipe describes and write the store.

Stages, each resumable (finished work lives in <store>.work beside the store and is reused unless `force`):
  1. data        the evaluation set, and every corrupted variant (generated once, cached as uint8 .npy)
  2. models      dense (trained or loaded) and every pruned / retrained model, as checkpoints
  3. evaluate    every model on every variant: per-sample prediction and geometry, full evaluation set
  4. curse       the §5.4 study
  5. store       aggregates on the full data, the shipped samples' rows, thumbnails, gallery, manifest
Every file is written atomically, so an interrupted run (Ctrl-C, kill -9) leaves only whole files behind; the
store is written beside the old one and switched in whole (`store.publish`), one run per store at a time (its lock).
Work files are named by a fingerprint of everything that shapes them: the recipe settings, the content of every
input file (data set, checkpoints, CIFAR-10-C folder) and the lotterysite version. A damaged work file is
reported, deleted and computed again.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import socket
import sys
import time
import zipfile
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import __version__
from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..cost import COST_VERSION, LARGE_BATCH, model_cost
from ..data import DATASETS, DataError, ImageSet, load_cifar10c
from ..data._registry import DataSplits
from ..errors import LotterysiteError
from ..fileio import DigestCache, atomic_write, check_seal, remove_temporaries, scratch_file, seal, unseal, write_bytes
from ..geometry import measure_model
from ..models import create_model, find_classifier
from ..models.imported import register_sources, source_file
from ..pruning import load_pruned, prune_model, retrain, save_pruned, sparsity_report
from ..store import geometry_schema, read_manifest, sampling, to_table, write_manifest, write_table
from ..store.publish import check_replaceable, new_run_id, publish, recover, staging_dir, store_lock, work_dir
from ..store.schema import (
    ACCURACY,
    CONFUSED,
    CORRELATIONS,
    CURSE,
    EXEMPLARS,
    MARGIN_CHANGE,
    MODELS,
    PAIRED,
    SAMPLES,
    confused_columns,
    outcomes_schema,
)
from ..training import TrainingError, train
from . import aggregate as agg
from . import custom, results_file
from .curse import random_vector_angles, width_sweep
from .executors import EXECUTORS, SlurmOptions, Unit, run_plan
from .recipe import Recipe, RecipeError, check_against_data, model_id, model_key, shipped_rows
from .stream import ResultsWriter, should_stream, stream_results

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
    parent: str | None = None  # model_id it derives from: dense for a pruned model, the pruned one for a retrained
    file: str = ""  # a [[models]] table's file: a model pruned elsewhere, loaded instead of pruned here


def _fingerprint(*parts) -> str:
    # The code version is in every fingerprint: a new lotterysite never reuses work made by an older one.
    return hashlib.sha256(json.dumps([__version__, parts], sort_keys=True, default=str).encode()).hexdigest()[:12]


class DamagedWork(LotterysiteError):
    """A finished work file turned out damaged or stale when read; it is deleted, and the plan runs again."""

    def __init__(self, path: Path, why: str):
        super().__init__(f"{path} is damaged ({why}); deleting it and computing it again")
        self.path, self.why = path, why

    def __reduce__(self):  # crosses process boundaries (Ray) with its two arguments
        return DamagedWork, (self.path, self.why)


def data_folder(name: str, root: str | None) -> Path | None:
    """The folder `load_dataset(name, root)` reads: `root`, or the first of the data set's default folders."""
    if root is not None:
        return Path(root).expanduser()
    spec = DATASETS.get(name)
    return next((Path(r) for r in spec.roots if Path(r).is_dir()), None) if spec else None


def input_digests(recipe: Recipe, digests: DigestCache, splits: DataSplits | None = None) -> dict[str, str]:
    """Content digests of every file the recipe reads: the data set's folder (and class list), each checkpoint and
    weights file, each model's source file, each [[models]] file, the CIFAR-10-C files used. They go into the
    fingerprints, so replacing a file at the same path recomputes what it shapes.

    Only what is used is digested. With `splits` (the loaded splits): a class-folder set's files of the train and
    test subsets, another set's pixels and labels of those subsets. Without: every image of a class-folder set's
    train/ and test|val/ class folders, another set's whole folder. Nothing else under a class-folder root is read
    (an ImageNet tarball beside train/, or the store itself with root = ".")."""
    out = {}
    folder = data_folder(recipe.data.name, recipe.data.root)
    if recipe.data.name == "imagefolder":
        out["data"] = _imagefolder_digest(recipe, folder, digests, splits)
    elif splits is not None:  # the pixels and labels the subsets use, whatever else the data folder holds
        d = recipe.data
        used = (("train", splits.train.head(d.train_subset)), ("test", splits.test.head(d.test_subset)))
        out["data"] = _fingerprint(*[_tensor_digest(s, x) for s, x in used])
    else:
        out["data"] = digests.tree(folder) if folder is not None and folder.is_dir() else ""
    if recipe.data.classes:  # a class-folder set's class list fixes the labels
        classes = Path(recipe.data.classes)
        out["data"] = _fingerprint(out["data"], digests.digest(classes) if classes.is_file() else "")
    for a in recipe.architectures:
        if a.checkpoint:
            out[f"checkpoint:{a.model.arch}"] = digests.digest(a.checkpoint) if Path(a.checkpoint).is_file() else ""
        if a.weights:
            out[f"weights:{a.model.arch}"] = digests.digest(a.weights) if Path(a.weights).is_file() else ""
        source = source_file(a.model.arch)  # the model's own code: editing it recomputes what it shapes
        if source is not None:
            out[f"source:{a.model.arch}"] = digests.digest(source) if source.is_file() else ""
    for m in recipe.models:  # models pruned elsewhere
        out[f"models:{m.file}"] = digests.digest(m.file) if Path(m.file).is_file() else ""
    c = recipe.corruptions
    if c.source != "generate":
        files = [Path(c.source) / f"{n}.npy" for n in c.names] + [Path(c.source) / "labels.npy"]
        out["cifar10c"] = _fingerprint([digests.digest(f) if f.is_file() else "" for f in files])
    else:  # the generator's own code: a change in what it outputs regenerates the images and what was made of them
        code = sorted(Path(__file__).parent.parent.joinpath("corruptions").glob("*.py"))
        # Our own source, not the user's data: hashed directly (the data digest cache reads only data files).
        out["corruptions"] = _fingerprint([(f.name, hashlib.sha256(f.read_bytes()).hexdigest()) for f in code])
    return out


def _tensor_digest(split: str, images: ImageSet) -> str:
    h = hashlib.sha256(f"{split}:{tuple(images.images.shape)}:{list(images.classes)}".encode())
    h.update(images.images.contiguous().numpy().tobytes())
    h.update(images.labels.contiguous().numpy().tobytes())
    return h.hexdigest()


def _imagefolder_digest(recipe: Recipe, folder: Path | None, digests: DigestCache, splits) -> str:
    from ..data.imagefolder import DECODE, IMAGE_SUFFIXES, TEST_FOLDERS, ImageFolderSet

    if folder is None or not folder.is_dir():
        return ""
    d = recipe.data
    if splits is not None and isinstance(splits.train, ImageFolderSet):
        used = [(s, split.head(n)) for s, split, n in (("train", splits.train, d.train_subset),
                                                       ("test", splits.test, d.test_subset))]  # fmt: skip
        # The files in label order: which image has which label shapes every model.
        parts = [f"{s}:{digests.files(folder, list(x.files))}:{x.labels.tolist()}:{list(x.classes)}" for s, x in used]
    else:
        test = next((t for t in TEST_FOLDERS if (folder / t).is_dir()), TEST_FOLDERS[0])
        parts = []
        for s in ("train", test):
            classes = sorted(c for c in (folder / s).glob("*") if c.is_dir() and not c.name.startswith("."))
            files = [f for c in classes for f in sorted(c.iterdir())
                     if f.is_file() and not f.name.startswith(".") and f.suffix.lower() in IMAGE_SUFFIXES]  # fmt: skip
            parts.append(f"{s}:{digests.files(folder, files)}")
    return _fingerprint(*parts, f"decode {DECODE}")  # the decoding rules make the pixels as the files do


@dataclass
class PrecomputeResult:
    store: Path
    models: int
    shipped: int
    timings: dict[str, float] = field(default_factory=dict)
    reused: dict[str, int] = field(default_factory=dict)
    units: dict[str, float] = field(default_factory=dict)  # seconds of each unit run in this call, by unit id
    skipped: dict[str, int] = field(default_factory=dict)  # unreadable images left out, per split (skip_unreadable)

    def report(self) -> str:
        lines = [f"store {self.store}: {self.models} models, {self.shipped} shipped samples"]
        if any(self.skipped.values()):
            lines.append("  skipped  " + ", ".join(f"{n} unreadable {s} images" for s, n in self.skipped.items()))
        for stage, seconds in self.timings.items():
            reused = self.reused.get(stage)
            extra = f" ({reused} reused)" if reused else ""
            lines.append(f"  {stage:<10} {seconds:8.1f} s{extra}")
        return "\n".join(lines)

    def unit_report(self) -> str:
        """Where the time went: the units run in this call grouped by what they do ("model lenet5 mpt": every MPT
        model of LeNet-5), with their count, total and mean seconds, largest total first."""
        groups: dict[str, list[float]] = {}
        for uid, seconds in self.units.items():
            kind, _, rest = uid.partition("/")
            parts = rest.split("/")
            label = f"{kind} {parts[0]} {parts[1]}" if kind in ("model", "evaluate") and len(parts) > 1 else kind
            groups.setdefault(label, []).append(seconds)
        lines = [f"  {'units':<34} {'n':>3} {'total':>8} {'mean':>7}"]
        for label, ts in sorted(groups.items(), key=lambda kv: -sum(kv[1])):
            lines.append(f"  {label:<34} {len(ts):>3} {sum(ts):8.1f} {sum(ts) / len(ts):7.2f} s")
        return "\n".join(lines)


def _data_key(recipe: Recipe, inputs: dict[str, str]) -> list:
    """What shapes the data: its settings and its content digest, without the folder's and class list's paths."""
    settings = {**asdict(recipe.data), "root": None, "classes": bool(recipe.data.classes)}
    return [settings, inputs.get("data", "")]


def _arch_key(a, inputs: dict[str, str]) -> list:
    """What shapes an architecture's models: its settings and the content of every file it names (a checkpoint, a
    weights file, the model's own source file), never those files' paths (the same recipe read through another
    path, or its files moved, reuses its work)."""
    arch = a.model.arch
    settings = {**asdict(a), "checkpoint": bool(a.checkpoint), "weights": bool(a.weights)}
    files = [inputs.get(f"{kind}:{arch}", "") for kind in ("checkpoint", "weights", "source")]
    return [settings, *files]


def plan_models(recipe: Recipe, inputs: dict[str, str] | None = None) -> list[ModelEntry]:
    """Every model the recipe asks for, dense first, in a stable order; `inputs` (from `input_digests`) go into
    the fingerprints."""
    many = len(recipe.seeds) > 1
    inputs = inputs or {}
    data = _data_key(recipe, inputs)
    out = []
    for seed in recipe.seeds:
        for a in recipe.architectures:
            arch = a.model.arch
            mid = model_id(arch, "dense", 0.0, retrained=False, seed=seed, many_seeds=many)
            dense_fp = _fingerprint(data, _arch_key(a, inputs), seed)
            out.append(ModelEntry(mid, model_key(mid), arch, "dense", 0.0, False, seed, dense_fp))
            dense_id = mid
            for sweep in recipe.pruning:
                if sweep.archs is not None and arch not in sweep.archs:
                    continue
                for amount in sweep.amounts:
                    pruned_fp = _fingerprint(dense_fp, sweep.method, amount, sweep.options, sweep.train_subset)
                    parent = dense_id
                    for retrained in (False, True) if sweep.retrain_epochs else (False,):
                        mid = model_id(arch, sweep.name, amount, retrained=retrained, seed=seed, many_seeds=many)
                        fp = _fingerprint(pruned_fp, sweep.retrain_epochs) if retrained else pruned_fp
                        out.append(ModelEntry(mid, model_key(mid), arch, sweep.name, amount, retrained, seed, fp,
                                              parent=parent))  # fmt: skip
                        parent = mid  # the retrained copy retrains this very pruned model
    out += custom.plan_external(recipe, ModelEntry, inputs, _fingerprint, data, _arch_key)
    # Every model's work files are named by its key: two models with one key would overwrite each other's results
    # (a mixed store). The recipe checks make this unreachable; this is the last guard.
    seen: dict[str, str] = {}
    for e in out:
        if seen.setdefault(e.key, e.model_id) != e.model_id:
            raise RecipeError(f"{recipe.path}: models {seen[e.key]!r} and {e.model_id!r} would share the work files "
                              f"{e.key}; rename an [[architectures]] arch or a [[models]] label")  # fmt: skip
    return out


class StoredResults(Mapping):
    """model_id -> (entry, results, extra), every results object read lazily from its file each time it is asked
    for: a table builder's loop holds one model's arrays at a time and drops them before the next."""

    def __init__(self, files: dict[str, tuple], variants, angle_variants: list[int]):
        self.files, self.variants, self.angle_variants = files, list(variants), angle_variants

    def __getitem__(self, model_id: str):
        path, entry, extra = self.files[model_id]
        return entry, results_file.LazyModelResults(path, self.variants, self.angle_variants), extra

    def __iter__(self):
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def extra(self, model_id: str) -> dict:
        """What the evaluate unit recorded beside `model_id`'s results (sparsity, settings, ...)."""
        return self.files[model_id][2]

    def entries(self) -> list[ModelEntry]:
        return [entry for _, entry, _ in self.files.values()]


class _Runner:
    def __init__(self, recipe: Recipe, store: Path, *, force: bool, device: torch.device, progress: bool):
        self.recipe, self.store, self.force, self.device, self.progress = recipe, store, force, device, progress
        register_sources(recipe.sources)  # on a worker too: "file.py:function" archs find their files
        self.work = work_dir(store)
        self.result = PrecomputeResult(store, 0, 0)
        self.meta = {"recipe": recipe.name, "config": recipe.to_dict()}
        self.run_id = new_run_id()
        # --force digests every input again instead of trusting the (size, mtime) cache.
        self.digests = DigestCache(self.work / "digests.json", trust=not force, progress=progress)
        self.rebuild = force  # --force rebuilds the caches too (not --plan --force, which only shows the plan)
        self.inputs: dict[str, str] = {}
        self.entries: list[ModelEntry] = []
        self.prepared = None
        self.models: OrderedDict[str, object] = OrderedDict()

    # -- helpers ---------------------------------------------------------------------------------------------
    def bar(self, iterable, **kw):
        # A stage's bar runs inside one unit, under the executor's bar over units: it vanishes when done (as the
        # training and pruning bars do), so one bar stays on the screen whichever executor ran the units.
        return tqdm(iterable, disable=not self.progress, dynamic_ncols=True, leave=False, **kw)

    def done(self, path: Path) -> bool:
        return path.exists() and not self.force

    def timed(self, stage: str, fn, *args):
        start = time.perf_counter()
        out = fn(*args)
        self.result.timings[stage] = time.perf_counter() - start
        return out

    def reuse(self, stage: str):
        self.result.reused[stage] = self.result.reused.get(stage, 0) + 1

    def discard(self, path: Path, why: str) -> None:
        """A damaged work file: say so, delete it, and let the caller compute it again."""
        print(f"warning: {path} is damaged ({why}); deleting it and computing it again", file=sys.stderr)
        unseal(path)

    def sealed(self, path: Path) -> bool:
        """Whether a finished work file's content is what was written (its digest recorded by `seal`); a file
        that changed since (bit rot, a foreign file) is reported and deleted."""
        why = check_seal(path)
        if why is not None:
            self.discard(path, why)
        return why is None

    # -- 1. data ---------------------------------------------------------------------------------------------
    def load_data(self) -> tuple[DataSplits, ImageSet, list[tuple[str, int]]]:
        r = self.recipe
        custom.check_inputs(r)
        splits = custom.load_splits(r)
        self.note_skipped(splits)
        # Every check that needs the data runs now, before a single model trains.
        check_against_data(r, splits.train, splits.test)
        custom.check_weights(r, num_classes=splits.train.num_classes, in_channels=splits.train.in_channels,
                             image_size=splits.train.image_size)  # fmt: skip
        data = DataSplits(splits.train.head(r.data.train_subset), splits.test.head(r.data.test_subset))
        driver = not self.inputs  # a worker is handed the driver's digests instead of reading every input again
        if driver:
            self.inputs = input_digests(r, self.digests, splits)
            self.digests.save()
        # The cache is named by the images' contents, and rebuilt by --force (once, by the driver).
        eval_set = custom.cache_images(data.test.head(r.eval_subset), self.work, digest=self.digests.digest,
                                       rebuild=self.rebuild and driver)  # fmt: skip
        for i, a in enumerate(r.architectures):
            if a.checkpoint:  # fail on a wrong checkpoint now, not after an hour of corruptions
                try:
                    load_checkpoint(a.checkpoint, arch=a.model.arch, num_classes=data.train.num_classes,
                                    in_channels=data.train.in_channels, image_size=data.train.image_size)  # fmt: skip
                except CheckpointError as e:
                    raise CheckpointError(f"{r.path}: field 'architectures[{i}].checkpoint': {e}") from None
        self.entries = plan_models(r, self.inputs)
        variants = [("clean", 0)] + [(n, s) for n in r.corruptions.names for s in r.corruptions.severities]
        if r.corruptions.source != "generate":
            if data.test.num_classes != 10 or data.test.image_size != 32:
                raise DataError(
                    f"{r.path}: field 'corruptions.source' is a CIFAR-10-C folder, but data set {r.data.name!r} is "
                    'not CIFAR-10; use source = "generate" or data.name = "cifar10"'
                )
            for n in [*r.corruptions.names, "labels"]:  # every file there now, not after the models have trained
                f = Path(r.corruptions.source) / f"{n}.npy"
                if not f.is_file():
                    raise DataError(f"{r.path}: field 'corruptions.source': {f} not found; the folder must hold "
                                    "<corruption>.npy for every name in corruptions.names, and labels.npy")  # fmt: skip
        return data, eval_set, variants

    def note_skipped(self, splits) -> None:
        """Unreadable images left out (skip_unreadable): counted in the result and the manifest, and said."""
        skipped = {s: tuple(getattr(getattr(splits, s), "skipped", ())) for s in ("train", "test")}
        self.result.skipped = {s: len(files) for s, files in skipped.items()}
        for s, files in skipped.items():
            if files:
                print(f"warning: skipped {len(files)} unreadable {s} image{'s' * (len(files) > 1)} "
                      f"(skip_unreadable = true), e.g. {files[0]}", file=sys.stderr)  # fmt: skip

    def prepare(self):
        """The data, evaluation set and variants, loaded once per process (every unit of a worker shares them)."""
        if self.prepared is None:
            self.prepared = self.load_data()
        return self.prepared

    def corruption_path(self, name: str, severity: int) -> Path:
        # Everything that determines the images is in the path, so a changed recipe never reuses stale ones.
        c, r = self.recipe.corruptions, self.recipe
        n = r.eval_subset if r.eval_subset is not None else "all"
        fp = _fingerprint(_data_key(r, self.inputs), self.inputs.get("corruptions", ""))
        folder = f"{r.data.name}-test{r.data.test_subset or ''}-n{n}-{c.params}-seed{c.seed}-{fp}"
        return self.work / "corruptions" / folder / f"{name}-{severity}.npy"

    def intact(self, path: Path) -> bool:
        """Whether a finished checkpoint or results file (both zip archives) is whole, judged by its directory
        alone (no tensor is read); a truncated one is reported and deleted, so its unit runs again."""
        if not self.done(path):
            return False
        try:
            with zipfile.ZipFile(path) as z:
                z.infolist()
        except (OSError, zipfile.BadZipFile, ValueError) as e:
            self.discard(path, f"{type(e).__name__}: {e}")
            return False
        return self.sealed(path)

    def cached_corruption(self, path: Path, shape: tuple) -> bool:
        """Whether a whole cached corruption is at `path` (a truncated or foreign file is discarded)."""
        if not self.done(path):
            return False
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
            ok = array.shape == shape and array.dtype == np.uint8
            why = f"shape {array.shape} {array.dtype}, expected {shape} uint8"
            del array
        except Exception as e:  # numpy raises several types for truncated files
            ok, why = False, f"{type(e).__name__}: {e}"
        if not ok:
            self.discard(path, why)
        return ok and self.sealed(path)

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

    # -- 2. models -------------------------------------------------------------------------------------------
    def checkpoint_path(self, entry: ModelEntry) -> Path:
        return self.work / "models" / f"{entry.key}-{entry.fingerprint}.pt"

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

    # -- 3. evaluate -----------------------------------------------------------------------------------------
    def results_path(self, entry: ModelEntry) -> Path:
        c = self.recipe.corruptions
        source = "generate" if c.source == "generate" else "folder"  # a folder by its content (below), not its path
        fp = _fingerprint(entry.fingerprint, self.recipe.eval_subset, source, c.params, c.seed, c.names,
                          c.severities, self.inputs.get("cifar10c", ""), self.inputs.get("corruptions", ""),
                          results_file.FORMAT, COST_VERSION,
                          self.recipe.ship.severities)  # fmt: skip
        return self.work / "results" / f"{entry.key}-{fp}.npz"

    def kept_variants(self, variants) -> list[int]:
        """The variants whose per-sample rows ship (clean and the shipped severities): only for these are the
        angles to every class kept, for every sample (the shipped samples are chosen after every evaluation)."""
        shipped = set(self.recipe.ship.severities)
        return [v for v, (name, severity) in enumerate(variants) if name == "clean" or severity in shipped]

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

    def load_header(self, path: Path, variants, labels: np.ndarray) -> dict | None:
        """A results file's header when it is whole and made for these variants and this evaluation set, else None
        (a damaged file is reported and deleted)."""
        try:
            head = results_file.header(path)
        except Exception as e:  # zipfile, numpy, json raise many types for a truncated or foreign file
            self.discard(path, f"{type(e).__name__}: {e}")
            return None
        if head["variants"] != [tuple(v) for v in variants] or head["angle_variants"] != self.kept_variants(variants):
            return None  # the recipe's variants changed: this model is evaluated again
        if not np.array_equal(head["labels"], labels):
            return None  # another evaluation set: evaluate again
        if head["angle_shape"][:2] != (len(head["angle_variants"]), len(labels)):
            self.discard(path, f"angle array of shape {head['angle_shape']}")
            return None
        return head

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

    def all_results(self, eval_set: ImageSet, variants) -> StoredResults:
        """Every model's (entry, results, extra), the results read lazily from the work files the evaluate units
        wrote (results_file.py): the store stage holds one model's arrays at a time, not every model's."""
        out = {}
        for entry in self.entries:
            path = self.results_path(entry)
            head = self.load_header(path, variants, eval_set.labels.numpy()) if path.exists() else None
            if head is None:
                unseal(path)
                raise DamagedWork(path, "missing, unreadable or made for other data")
            out[entry.model_id] = (path, custom.placed(entry, head["extra"]), head["extra"])
        return StoredResults(out, variants, self.kept_variants(variants))

    # -- 4. curse --------------------------------------------------------------------------------------------
    def curse_path(self) -> Path:
        c = self.recipe.curse
        key = _fingerprint(asdict(c), _data_key(self.recipe, self.inputs), self.recipe.seeds[0])
        return self.work / f"curse-{key}.json"

    def curse_rows(self) -> dict[str, list] | None:
        """The finished study's rows, or None (a damaged file is reported and deleted)."""
        path = self.curse_path()
        if not path.exists():
            return None
        if not self.sealed(path):
            return None
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))["rows"]
            if sorted(rows) != sorted(CURSE.names):
                raise ValueError(f"columns {sorted(rows)}")
            return rows
        except Exception as e:  # truncated or foreign JSON
            self.discard(path, f"{type(e).__name__}: {e}")
            return None

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

    # -- 5. store --------------------------------------------------------------------------------------------
    def store_key(self) -> str:
        """What the store is made from: every work file it reads (named by fingerprints) and the whole recipe."""
        files = [self.results_path(e).name for e in self.entries]
        if self.recipe.curse.enabled:
            files.append(self.curse_path().name)
        config = {k: v for k, v in self.recipe.to_dict().items() if k != "path"}  # the same recipe read elsewhere
        return _fingerprint(files, config)

    def store_current(self, units: list[Unit]) -> bool:
        """Whether the published store was made from exactly this plan's work (a rerun then publishes nothing)."""
        if self.force or any(not u.done for u in units):
            return False
        try:
            from ..store.io import verify_store

            manifest = json.loads((self.store / "manifest.json").read_text(encoding="utf-8"))
            verify_store(self.store)
        except Exception:  # missing, damaged or altered: publish it again
            return False
        return isinstance(manifest, dict) and manifest.get("inputs_key") == self.store_key()

    def write_store(self, results: dict, eval_set: ImageSet, variants, curse_rows) -> None:
        """Write the whole new store beside the old one, then switch it in; on any failure the old one stays."""
        staging = staging_dir(self.store, self.run_id)
        try:
            self.write_store_files(staging, results, eval_set, variants, curse_rows)
            publish(staging, self.store)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def write_store_files(self, root: Path, results: dict, eval_set: ImageSet, variants, curse_rows) -> None:
        r = self.recipe
        classes = eval_set.classes
        C = len(classes)
        labels = eval_set.labels.numpy()
        files: dict[str, int] = {}

        def put(name: str, columns: dict, schema) -> None:
            files[name] = write_table(root / name, to_table(columns, schema, where=name),
                                      metadata={**self.meta, "run_id": self.run_id})  # fmt: skip

        entries = results.entries()
        # Aggregates on the full evaluation set, with bootstrap intervals from one set of resampled evaluation sets
        # shared by every model. One builder per table, each returning its columns by name.
        weights = agg.BOOTSTRAP.weights(len(labels))
        acc, overall = accuracy_table(results, C, weights)
        put("models.arrow", models_table(results, overall), MODELS)
        put("accuracy.arrow", acc, ACCURACY)
        put("correlations.arrow", correlations_table(results, weights, corrupted=len(variants) > 1), CORRELATIONS)
        put("margin_change.arrow", margin_change_table(results, corrupted=len(variants) > 1), MARGIN_CHANGE)
        put("paired.arrow", paired_table(results, weights), PAIRED)
        exm = exemplars_table(results, labels)
        put("exemplars.arrow", exm, EXEMPLARS)

        # The shipped samples (store.sampling, the one policy the site's cut uses too): the whole evaluation set
        # where it fits the per-model row limit, else a class-stratified uniform random sample of samples_per_class
        # per class; exemplars outside it fill what the limit leaves, as extra rows (in_sample false).
        per_sample_rows = shipped_rows(r, 1)
        limit = max(C, r.ship.max_rows_per_model // per_sample_rows)
        keep = np.unique(np.asarray(exm["sample_id"], dtype=np.int64))
        pie = np.isin(np.arange(len(labels)), keep)
        n_classes = len(np.unique(labels))
        size = len(labels) if len(labels) <= limit else min(limit, r.ship.samples_per_class * n_classes)
        drawn = sampling.draw_samples(labels, pie, sample_size=size, budget=limit, seed=r.ship.seed)
        shipped = drawn.index
        self.result.shipped = len(shipped)
        shipping = shipping_record(
            labels,
            keep,
            drawn,
            C,
            asked=r.ship.samples_per_class,
            max_rows=r.ship.max_rows_per_model,
            rows_per_sample=per_sample_rows,
            limit=limit,
            seed=r.ship.seed,
        )
        put("samples.arrow", {
            "sample_id": shipped, "label": labels[shipped], "class_name": [classes[i] for i in labels[shipped]],
            "thumbnail": [_thumbnail(custom.images_at(eval_set, [i])[0]) if r.ship.thumbnails else "" for i in shipped],
            "pie": pie[shipped], "in_sample": drawn.in_sample,
        }, SAMPLES)  # fmt: skip
        names = list(r.corruptions.names)
        put("outcomes.arrow", outcomes_table(results, shipped, names), outcomes_schema(names))
        ship_variants = self.kept_variants(variants)
        # Many classes: a row holds the angles to the k classes its true class is most confused with (per
        # architecture, over the full data), not one angle per class (1000 columns would not reach a browser).
        k = confused_columns(C, r.ship.confused_classes)
        confused = {}
        if k is not None:
            confused, columns = confused_table(results, C, k)
            put("confused.arrow", columns, CONFUSED)
        for mid in self.bar(list(results), desc="store", unit="model"):
            entry, res, _ = results[mid]
            put(
                f"geometry/{entry.key}.arrow",
                geometry_table(entry, res, shipped, labels, ship_variants, C, confused.get(entry.arch)),
                geometry_schema(C, k),
            )

        if curse_rows is not None:
            put("curse.arrow", curse_rows, CURSE)

        gallery_file = None
        if r.corruptions.source == "generate" and r.corruptions.names:
            from ..corruptions.gallery import gallery, gallery_name

            picks = [int(np.flatnonzero(labels == c)[0]) for c in range(min(C, 3)) if (labels == c).any()]
            images = custom.images_at(eval_set, picks).float().div(255)
            c = r.corruptions
            gallery_file = gallery_name(min(images.shape[-2:]))
            suffix = Path(gallery_file).suffix
            code = self.inputs.get("corruptions", "")
            key = _fingerprint(self.inputs.get("data", ""), code, picks, c.names, c.params, c.seed, gallery_file)
            cached = self.work / f"gallery-{key}{suffix}"
            if not self.done(cached) or not self.sealed(cached):
                atomic_write(
                    cached, lambda tmp: gallery(images, Path(tmp), names=c.names, params=c.params, seed=c.seed)
                )
                seal(cached)
            write_bytes(root / gallery_file, cached.read_bytes())
            files[gallery_file] = None

        manifest = {
            "run_id": self.run_id,
            "inputs_key": self.store_key(),
            "lotterysite_version": __version__,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "recipe": {"name": r.name, "title": r.title, "path": r.path, "config": r.to_dict()},
            "dataset": {
                "name": r.data.name, "classes": list(classes), "n_eval": len(eval_set), "n_shipped": len(shipped),
                "channels": eval_set.in_channels, "image_size": eval_set.image_size, "shipping": shipping,
                "confused_classes": k, "skipped_unreadable": dict(self.result.skipped),
            },
            "architectures": list(dict.fromkeys(e.arch for e in entries)),
            "methods": list(dict.fromkeys(e.method for e in entries)),
            # "settings": every setting that made each model (_Runner.model_settings), defaults spelt out
            "models": [{k: getattr(e, k) for k in ("model_id", "arch", "method", "amount", "retrained", "seed")}
                       | {"model_key": e.key, "settings": results.extra(e.model_id).get("settings")}
                       for e in entries],
            "corruptions": names,
            "severities": list(r.corruptions.severities),
            "shipped_severities": list(r.ship.severities),
            "corruption_source": r.corruptions.source,
            "bootstrap": agg.BOOTSTRAP.as_dict(),
            "gallery": gallery_file,
            "files": {name: {"rows": rows} for name, rows in sorted(files.items())},  # sizes, digests: write_manifest
        }  # fmt: skip
        write_manifest(root, manifest)


COST = ("parameters", "macs", "latency_b1_ms", "latency_batch_ms", "latency_batch")  # models.arrow cost columns


# -- the store's tables: one builder each, returning {column name: values} (never built by position) -------------
def accuracy_table(results: dict, C: int, weights) -> tuple[dict, dict]:
    """accuracy.arrow's columns, and per model {variant: (accuracy, lo, hi)} over all classes (for models.arrow)."""
    acc = {k: [] for k in ACCURACY.names}
    overall: dict[str, dict] = {}
    for entry, res, _ in results.values():
        rows = agg.accuracy_rows(entry.model_id, res, C, weights, agg.BOOTSTRAP)
        for k, v in rows.items():
            acc[k] += v
        overall[entry.model_id] = {
            v: (a, lo, hi)
            for v, c, a, lo, hi in zip(
                rows["variant"],
                rows["class_id"],
                rows["accuracy"],
                rows["accuracy_lo"],
                rows["accuracy_hi"],
                strict=True,
            )
            if c == -1
        }
    return acc, overall


def models_table(results: dict, overall: dict) -> dict:
    nan3 = (float("nan"),) * 3
    cols = {k: [] for k in MODELS.names}
    # A masked model has its dense model's shape, so its dense model's cost: latency is measured once per shape.
    dense = {(e.arch, e.seed): x for e, _, x in results.values() if e.method == "dense"}
    for entry, _, extra in results.values():
        if extra.get("granularity") != "channel":
            extra = {**extra, **{k: v for k, v in dense.get((entry.arch, entry.seed), {}).items() if k in COST}}
        clean = overall[entry.model_id]["clean"]
        corrupted = overall[entry.model_id].get("corruption_mean", nan3)
        row = {
            "model_id": entry.model_id, "model_key": entry.key, "arch": entry.arch, "method": entry.method,
            "retrained": entry.retrained, "amount": entry.amount, "sparsity": extra["sparsity"],
            "prunable": extra["prunable"], "seed": entry.seed,
            "bn_recalibration_batches": extra.get("bn_recalibration_batches", 0),
            "clean_accuracy": clean[0], "clean_accuracy_lo": clean[1], "clean_accuracy_hi": clean[2],
            "corrupted_accuracy": corrupted[0], "corrupted_accuracy_lo": corrupted[1],
            "corrupted_accuracy_hi": corrupted[2],
        }  # fmt: skip
        row.update({k: extra.get(k, float("nan")) for k in COST})
        row["granularity"] = extra.get("granularity", "none" if entry.method == "dense" else "weight")
        row["feature_dim"] = extra.get("feature_dim", -1)  # -1: a work file from before schema 1.5
        row["dense_feature_dim"] = extra.get("dense_feature_dim", -1)
        for k in MODELS.names:
            cols[k].append(row[k])
    return cols


def correlations_table(results: dict, weights, *, corrupted: bool) -> dict:
    """Table 1 per model (needs corrupted variants: robustness counts them), with intervals."""
    cor = {k: [] for k in CORRELATIONS.names}
    if not corrupted:
        return cor
    for entry, res, _ in results.values():
        ra, rl, rm, rm5 = agg.correlations(res)
        row = {"model_id": entry.model_id, "arch": entry.arch, "method": entry.method, "amount": entry.amount,
               "n": res.labels.shape[0], "rc_angle": ra, "rc_length": rl, "rc_margin": rm, "rc_margin_eq5": rm5,
               **agg.correlation_intervals(res, weights, agg.BOOTSTRAP)}  # fmt: skip
        row["mc_abs_mean"], row["mc_abs_mean_lo"], row["mc_abs_mean_hi"] = agg.margin_change_spread(
            res, weights, agg.BOOTSTRAP
        )
        for k in CORRELATIONS.names:
            cor[k].append(row[k])
    return cor


def paired_table(results: dict, weights) -> dict:
    """Paired differences on the same evaluation images: every two models (ref_id the one listed first, so a dense
    model is the ref of its pruned ones; any two, so Fig. 10's picker can compare any pair) and every model's
    corrupted vs clean accuracy. A few N-vectors per model: 25 models x 500 images is 0.1 s, 300 pairs."""
    inputs = {}
    for entry, res, _ in results.values():  # one model's V x N arrays at a time; a few N-vectors kept of each
        inputs[entry.model_id] = agg.PairedInputs.of(res)
    ids = list(inputs)
    pairs = [(m, m) for m in ids] + [(m, r) for i, m in enumerate(ids) for r in ids[:i]]
    return agg.paired_rows(pairs, inputs, weights, agg.BOOTSTRAP)


def margin_change_table(results: dict, *, corrupted: bool) -> dict:
    mch = {k: [] for k in MARGIN_CHANGE.names}
    if corrupted:
        for entry, res, _ in results.values():
            for k, v in agg.margin_change_density(entry.model_id, res).items():
                mch[k] += v
    return mch


def exemplars_table(results: dict, labels: np.ndarray) -> dict:
    """Pruning-identified exemplars per architecture, over every seed."""
    exm = {k: [] for k in EXEMPLARS.names}
    for arch in dict.fromkeys(e.arch for e, _, _ in results.values()):
        # Copies of the clean row: a view would keep each model's V x N predictions alive.
        dense = [res.pred[0].copy() for e, res, _ in results.values() if e.arch == arch and e.method == "dense"]
        pruned = [res.pred[0].copy() for e, res, _ in results.values() if e.arch == arch and e.method != "dense"]
        if not dense or not pruned:
            continue
        idx, dpred, ppred, agree = agg.pruning_identified_exemplars(np.stack(dense), np.stack(pruned))
        row = {"arch": [arch] * len(idx), "sample_id": idx, "label": labels[idx], "dense_pred": dpred,
               "pruned_pred": ppred, "pruned_agreement": agree}  # fmt: skip
        for k in EXEMPLARS.names:
            exm[k] += list(row[k])
    return exm


def shipping_record(
    labels: np.ndarray,
    exemplars: np.ndarray,
    drawn: sampling.Draw,
    C: int,
    *,
    asked: int,
    max_rows: int,
    rows_per_sample: int,
    limit: int,
    seed: int,
) -> dict:
    """The effective numbers behind `ship.samples_per_class` (manifest `dataset.shipping`, `lotterysite info`):
    the policy and its seed, per class the evaluated samples, the samples shipped, of them the exemplars and the
    stratified sample; `cut` says whether `max_rows_per_model` kept fewer than asked (a sample smaller than `asked`
    per class, or fewer exemplars than were found)."""
    exemplars = np.unique(exemplars)
    shipped = drawn.index
    is_pie = np.isin(shipped, exemplars)
    per_class = np.bincount(labels[shipped], minlength=C)
    pie_per_class = np.bincount(labels[shipped[is_pie]], minlength=C)
    population = np.bincount(labels, minlength=C)
    sample = np.bincount(labels[shipped[drawn.in_sample]], minlength=C)
    everything = len(shipped) == len(labels)
    # Short of the ask: fewer than samples_per_class x the classes present (proportional allocation spreads that
    # by class size), or exemplars left out.
    asked_total = min(asked * int((population > 0).sum()), len(labels))
    short = int(is_pie.sum()) < len(exemplars) or int(sample.sum()) < asked_total
    cut = bool(not everything and short)
    return {
        "asked_per_class": asked, "max_rows_per_model": max_rows, "rows_per_sample": rows_per_sample,
        "limit": limit, "per_class": per_class.tolist(), "exemplars_per_class": pie_per_class.tolist(),
        "exemplars_found": len(exemplars), "exemplars_shipped": int(is_pie.sum()), "cut": cut,
        "policy": sampling.POLICY, "seed": seed, "everything": everything, "evaluated_per_class": population.tolist(),
        "sample_size": int(drawn.in_sample.sum()), "sample_per_class": sample.tolist(),
        "extra_exemplars": int((~drawn.in_sample).sum()),
    }  # fmt: skip


def outcomes_table(results: dict, shipped: np.ndarray, names: list[str]) -> dict:
    """Per shipped sample and model: correct on clean, and how many severities of each corruption it survives."""
    out = {k: [] for k in outcomes_schema(names).names}
    for entry, res, _ in results.values():
        correct = res.correct[:, shipped]
        out["model_id"] += [entry.model_id] * len(shipped)
        out["sample_id"] += shipped.tolist()
        out["correct_clean"] += correct[0].tolist()
        out["robustness"] += correct[1:].sum(0).tolist()
        for n in names:
            rows = [v for v, (vn, _) in enumerate(res.variants) if vn == n]
            out[f"c_{n}"] += correct[rows].sum(0).tolist()
    return out


def confused_table(results: dict, C: int, k: int) -> tuple[dict[str, np.ndarray], dict]:
    """Per architecture, every class's k most confused classes (over the arch's models, full data): {arch: C x k
    class ids}, and confused.arrow's columns."""
    ids_of = {}
    cols = {name: [] for name in CONFUSED.names}
    for arch in dict.fromkeys(e.arch for e, _, _ in results.values()):
        ids, wrong, mean = agg.confused_classes((res for e, res, _ in results.values() if e.arch == arch), C, k)
        ids_of[arch] = ids
        present = np.flatnonzero(ids[:, 0] >= 0)
        cols["arch"] += [arch] * (len(present) * k)
        cols["class_id"].append(np.repeat(present, k))
        cols["rank"].append(np.tile(np.arange(k), len(present)))
        cols["confused_id"].append(ids[present].ravel())
        cols["wrong"].append(wrong[present].ravel())
        cols["mean_angle"].append(mean[present].ravel())
    out = {n: (np.concatenate(v) if v and isinstance(v[0], np.ndarray) else v) for n, v in cols.items()}
    return ids_of, out


def geometry_table(entry: ModelEntry, res, shipped: np.ndarray, labels: np.ndarray, ship_variants: list[int],
                   C: int, confused: np.ndarray | None = None) -> dict:  # fmt: skip
    """One model's per-sample rows: shipped samples x (clean + corruptions at the shipped severities). With
    `confused` (C x k class ids, many classes) the angle columns are angle_c<r>, to the row's label's r-th most
    confused class; else angle_<j> for every class."""
    rob = agg.robustness(res)[shipped]
    rel = np.vstack([np.zeros((1, res.margin.shape[1]), np.float32), agg.relative_margin_change(res)])
    angle_true = res.angle_true
    # Sorted sample ids read the memory-mapped angles front to back; the rows are put back in shipped order.
    order = np.argsort(shipped, kind="stable")
    undo = np.argsort(order)
    k = None if confused is None else confused.shape[1]
    g = {name: [] for name in geometry_schema(C, k).names}
    n = len(shipped)
    for v in ship_variants:
        name, severity = res.variants[v]
        g["model_id"] += [entry.model_id] * n
        g["sample_id"].append(shipped)
        g["variant"] += [name] * n
        g["severity"].append(np.full(n, severity))
        g["label"].append(labels[shipped])
        g["pred"].append(res.pred[v, shipped])
        g["correct"].append(res.correct[v, shipped])
        for metric in ("prob_true", "loss", "length", "margin", "margin_eq5", "degenerate"):
            g[metric].append(getattr(res, metric)[v, shipped])
        g["angle_true"].append(angle_true[v, shipped])
        g["rel_margin_change"].append(rel[v, shipped])
        g["robustness"].append(rob)
        rows = np.asarray(res.angles(v)[shipped[order]])[undo]  # shipped x C
        if confused is None:
            for j in range(C):
                g[f"angle_{j}"].append(rows[:, j])
        else:
            picked = np.take_along_axis(rows, confused[labels[shipped]], axis=1)
            for r in range(k):
                g[f"angle_c{r}"].append(picked[:, r])
    return {col: (np.concatenate(v) if v and isinstance(v[0], np.ndarray) else v) for col, v in g.items()}


def _thumbnail(image: torch.Tensor) -> str:
    """A data URI of one uint8 C x H x W image, usable as a Vega URL: a PNG at its own size up to 32 px (a few
    hundred bytes at 28 px); larger images (class folders at 224 px) shrink to 64 px and ship as WebP, ~0.9 KB
    (JPEG at quality 80 was ~1.5 KB on the foolbox ImageNet photos: 2000 thumbnails must fit a 5 MB page), or as
    JPEG where Pillow lacks WebP."""
    from PIL import Image, features

    arr = image.numpy()
    pil = Image.fromarray(arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0))
    buf = io.BytesIO()
    if max(pil.size) <= PNG_SIDE:
        pil.save(buf, format="PNG", optimize=True)
        kind = "png"
    else:
        pil.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.BILINEAR)
        if features.check("webp"):
            pil.save(buf, format="WEBP", quality=75, method=6)
            kind = "webp"
        else:
            pil.save(buf, format="JPEG", quality=80, optimize=True)
            kind = "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# -- the plan: the study as units of work ----------------------------------------------------------------------
STAGE = {"corruptions": "data", "dense": "models", "pruned": "models", "retrained": "models",
         "evaluate": "evaluate", "curse": "curse", "store": "store"}  # fmt: skip


def _runner_plan(runner: _Runner) -> list[Unit]:
    """Every unit of the study in an order that runs each after its dependencies, a model's evaluation right after
    the model (what the local executor keeps in memory). `done` says whose file exists already."""
    data, eval_set, variants = runner.prepare()
    units: list[Unit] = []
    corruption_ids = []
    c = runner.recipe.corruptions
    # Streamed evaluation (class folders, or variants too large to cache) generates corruptions per batch inside
    # each evaluate unit: no corruption units then.
    if c.source == "generate" and not should_stream(eval_set, variants):
        shape = tuple(eval_set.images.shape)
        for name, severity in variants[1:]:
            path = runner.corruption_path(name, severity)
            units.append(Unit(f"corruption/{name}-{severity}", "corruptions", (), str(path), gpu=True,
                              done=runner.cached_corruption(path, shape)))  # fmt: skip
            corruption_ids.append(units[-1].id)
    children: dict[str, list[str]] = {}
    for e in runner.entries:
        if e.parent:
            children.setdefault(e.parent, []).append(e.model_id)
    evaluated = {e.model_id: runner.intact(runner.results_path(e)) for e in runner.entries}
    own = [e for e in runner.entries if not e.file]  # [[models]] entries have no checkpoint: they are read from file
    damaged = {e.model_id for e in own if runner.done(runner.checkpoint_path(e))}
    have = {e.model_id for e in own if runner.intact(runner.checkpoint_path(e))}
    damaged -= have

    def model_done(mid: str) -> bool:
        # A model whose checkpoint the user removed is still done when nothing needs it any more: its results exist
        # and so do all its derived models'. A damaged one is made again.
        if mid in have:
            return True
        return mid not in damaged and evaluated[mid] and all(model_done(c) for c in children.get(mid, ()))

    for e in runner.entries:
        if e.file:  # a model pruned elsewhere: its file is the model, so its evaluation waits for the data only
            units.append(Unit(f"evaluate/{e.model_id}", "evaluate", tuple(corruption_ids), str(runner.results_path(e)),
                              gpu=True, done=evaluated[e.model_id]))  # fmt: skip
            continue
        kind = "dense" if e.method == "dense" else "retrained" if e.retrained else "pruned"
        deps = (f"model/{e.parent}",) if e.parent else ()
        units.append(Unit(f"model/{e.model_id}", kind, deps, str(runner.checkpoint_path(e)), gpu=True,
                          done=model_done(e.model_id)))  # fmt: skip
        units.append(Unit(f"evaluate/{e.model_id}", "evaluate", (f"model/{e.model_id}", *corruption_ids),
                          str(runner.results_path(e)), gpu=True, done=evaluated[e.model_id]))  # fmt: skip
    store_deps = [u.id for u in units if u.kind == "evaluate"]
    if runner.recipe.curse.enabled:
        done = runner.done(runner.curse_path()) and runner.curse_rows() is not None
        units.append(Unit("curse", "curse", (), str(runner.curse_path()), gpu=True, done=done))
        store_deps.append("curse")
    manifest = runner.store / "manifest.json"
    units.append(Unit("store", "store", tuple(store_deps), str(manifest), done=runner.store_current(units)))
    return units


class UnitTask:
    """`task(unit_id)` runs one unit of a study, in this process or on any worker that sees the store.

    Picklable (Ray and submitit ship it to their workers); a worker builds its runner once and keeps it for every
    unit it runs, with the driver's digests, run id and plan, so all workers agree on every fingerprint.
    """

    def __init__(self, recipe: Recipe, store: Path, *, run_id: str, inputs: dict[str, str], plan_id: str,
                 device: str | None, force: bool, progress: bool):  # fmt: skip
        self.recipe, self.store, self.run_id, self.inputs, self.plan_id = recipe, Path(store), run_id, inputs, plan_id
        self.device, self.force, self.progress = device, force, progress
        self.runner: _Runner | None = None

    def __getstate__(self):
        return {**self.__dict__, "runner": None}  # a runner holds data and models: each worker builds its own

    def get_runner(self) -> _Runner:
        if self.runner is None:
            # Chosen on the worker: the driver never initialises CUDA, a GPU worker uses its card.
            device = torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))
            runner = _Runner(self.recipe, self.store, force=self.force, device=device, progress=self.progress)
            runner.run_id, runner.inputs = self.run_id, dict(self.inputs)
            # The driver digested every input afresh under --force and saved the digests: a worker trusts them.
            runner.digests = DigestCache(runner.work / "digests.json", trust=True)
            self.runner = runner
        return self.runner

    def check_store_visible(self) -> None:
        plan_file = work_dir(self.store) / "plan.json"
        try:
            seen = json.loads(plan_file.read_text(encoding="utf-8")).get("plan_id")
        except (OSError, ValueError):
            seen = None
        if seen != self.plan_id:
            raise LotterysiteError(
                f"{plan_file}: not found (or another run's) on worker {socket.gethostname()}: this worker cannot see "
                "the store; put the store on a filesystem every worker sees (a shared NFS/Lustre/GPFS path)"
            )

    def __call__(self, unit_id: str) -> float:
        start = time.perf_counter()
        self.check_store_visible()
        # Again for every unit: a reused worker process may have run another recipe's units since, and an arch
        # spelt "net.py:build" there may name another folder's file (the mapping is per process).
        register_sources(self.recipe.sources)
        runner = self.get_runner()
        data, eval_set, variants = runner.prepare()
        kind, _, name = unit_id.partition("/")
        entries = {e.model_id: e for e in runner.entries}
        if kind == "corruption":
            corruption, _, severity = name.rpartition("-")
            runner.generate_corruptions(eval_set, [(corruption, int(severity))], always=True)
        elif kind == "model":
            entry = entries[name]
            if entry.method == "dense":
                model = runner.dense_model(entry, data)
            else:
                model = runner.pruned_model(entry, runner.model(entries[entry.parent], data), data)
            runner.remember(entry, model)
        elif kind == "evaluate":
            runner.evaluate_unit(entries[name], data, eval_set, variants)
        elif unit_id == "curse":
            runner.curse(data, eval_set)
        elif unit_id == "store":
            curse_rows = runner.curse_rows() if self.recipe.curse.enabled else None
            if self.recipe.curse.enabled and curse_rows is None:
                raise DamagedWork(runner.curse_path(), "missing or unreadable")
            runner.write_store(runner.all_results(eval_set, variants), eval_set, variants, curse_rows)
        else:
            raise ValueError(f"unknown unit {unit_id!r}")
        return time.perf_counter() - start


def plan(recipe: Recipe, *, store: str | Path | None = None, force: bool = False, estimate_on=None):
    """The units of `recipe`'s study, their dependencies and which are done (what `precompute --plan` prints).

    With `estimate_on` (a device), also each unit's estimated time and peak memory there, from a short calibration
    of the recipe's own models and data (precompute/estimate.py): returns (units, estimates, calibration) then."""
    store = Path(store) if store is not None else Path("store") / recipe.name
    runner = _Runner(recipe, store, force=force, device=torch.device("cpu"), progress=False)
    runner.rebuild = False
    units = _runner_plan(runner)
    if estimate_on is None:
        return units
    from .estimate import calibrate, estimate

    cal = calibrate(runner, units, torch.device(estimate_on))
    return units, estimate(runner, units, cal), cal


def precompute(
    recipe: Recipe,
    *,
    store: str | Path | None = None,
    force: bool = False,
    device=None,
    progress: bool = True,
    wait: bool = False,
    executor: str = "local",
    ray_address: str | None = None,
    slurm: SlurmOptions | None = None,
) -> PrecomputeResult:
    """Run `recipe` end to end and write its store (default `store/<recipe name>`); resumes finished work.

    The study is planned as units (`plan`) that `executor` runs: "local" in this process, "ray" as Ray tasks,
    "slurm" as submitit job arrays. One run per store: a second is refused naming the holder, or waits with `wait`.
    """
    if executor not in EXECUTORS:
        raise LotterysiteError(f"executor {executor!r} is unknown; choose one of {', '.join(EXECUTORS)}")
    store = Path(store) if store is not None else Path("store") / recipe.name
    check_replaceable(store)  # before any work: a data folder given as --store would be replaced when published
    start = time.perf_counter()
    with store_lock(store, wait=wait):
        recover(store)
        check_replaceable(store)  # what recover put back
        remove_temporaries(work_dir(store))  # what writers killed mid-write left behind
        # The driver plans on the CPU; units pick their device where they run.
        runner = _Runner(recipe, store, force=force, device=torch.device("cpu"), progress=progress)
        t0 = time.perf_counter()
        runner.prepare()
        prepare_time = time.perf_counter() - t0
        result = runner.result
        for attempt in range(3):
            units = _runner_plan(runner)
            plan_id = _fingerprint(runner.run_id, attempt, [(u.id, u.output) for u in units])
            if any(not u.done for u in units):  # workers check they see this file (nothing to run: no rewrite)
                write_bytes(work_dir(store) / "plan.json", json.dumps({
                    "plan_id": plan_id, "run_id": runner.run_id, "executor": executor,
                    "units": [{"id": u.id, "kind": u.kind, "deps": list(u.deps), "output": u.output, "done": u.done}
                              for u in units],
                }, indent=1).encode())  # fmt: skip
            for u in units:
                if u.done and u.kind != "store":
                    runner.reuse(STAGE[u.kind])
            local = executor == "local"
            task = UnitTask(recipe, store, run_id=runner.run_id, inputs=runner.inputs, plan_id=plan_id,
                            device=None if device is None else str(device), force=force,
                            progress=progress and local)  # fmt: skip
            if local:
                task.runner = runner  # the local executor shares the driver's data and model cache
                runner.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
            try:
                report = run_plan(units, task, executor=executor, ray_address=ray_address, slurm=slurm,
                                  log_dir=work_dir(store) / "logs",
                                  bar=lambda n: tqdm(total=n, desc="units", unit="unit", dynamic_ncols=True,
                                                     disable=not progress))  # fmt: skip
                break
            except LotterysiteError as e:
                damaged = isinstance(e, DamagedWork) or getattr(e, "cause_type", "") == "DamagedWork"
                if not damaged or attempt == 2:
                    raise
                # A finished file turned out damaged when read: it is gone now, so the next plan recomputes it.
                print(f"warning: {e}", file=sys.stderr)
                runner.models.clear()
                runner.result.reused.clear()
        for stage in ("data", "models", "evaluate", "curse", "store"):
            result.timings[stage] = sum(t for uid, t in report.durations.items() if STAGE[_kind(units, uid)] == stage)
        result.timings["data"] += prepare_time
        result.units = dict(report.durations)
    result.models = len(runner.entries)
    if not result.shipped:  # the store was current: nothing was published
        result.shipped = read_manifest(store).get("dataset", {}).get("n_shipped", 0)
    result.timings["total"] = time.perf_counter() - start
    return result


def _kind(units: list[Unit], unit_id: str) -> str:
    return next(u.kind for u in units if u.id == unit_id)


def format_plan(units: list[Unit], estimates: dict | None = None, calibration=None) -> str:
    """The plan as text: one line per unit with its state and what it waits for; with `estimates`, each unit's
    estimated time and peak memory, the total, and every unit that will not fit the memory available."""
    from .estimate import duration, size

    lines = []
    done = sum(u.done for u in units)
    head = f"{len(units)} units, {done} done, {len(units) - done} to run"
    if estimates is not None and calibration is not None:
        total = sum(e.seconds for e in estimates.values())
        head += (f"; estimated {duration(total)} on {calibration.device.type} in one process "
                 f"(calibrated in {duration(calibration.seconds)})")  # fmt: skip
    lines.append(head)
    for u in units:
        deps = ", ".join(u.deps[:3]) + (f" (+{len(u.deps) - 3})" if len(u.deps) > 3 else "")
        line = f"  [{'done' if u.done else 'todo'}] {u.id:<48} {u.kind:<11} after: {deps or '-'}"
        e = (estimates or {}).get(u.id)
        if e is not None:
            line += f"  ~{duration(e.seconds)}, {e.peak(calibration.device)}"
            line += "  DOES NOT FIT" if e.fits is False else ""
        lines.append(line)
    short = [(u, estimates[u.id]) for u in units if estimates and u.id in estimates and estimates[u.id].fits is False]
    if short and calibration is not None:
        cpu = calibration.device.type == "cpu"
        for u, e in short:
            if cpu or e.memory <= calibration.available:  # RAM is short (on the CPU: for both parts)
                need, where, free = (e.memory + e.host if cpu else e.host), "RAM", calibration.ram
            else:
                need, where, free = e.memory, f"{calibration.device.type} memory", calibration.available
            lines.append(f"warning: {u.id} needs about {size(need)} of {where}, {size(free)} is free now: it "
                         "will not fit (lower the batch size, or run it on a larger device)")  # fmt: skip
    return "\n".join(lines)


__all__ = [
    "DamagedWork",
    "ModelEntry",
    "PrecomputeResult",
    "UnitTask",
    "format_plan",
    "plan",
    "plan_models",
    "precompute",
]
