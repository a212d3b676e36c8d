"""Planning: what a study computes, what every piece of work is named by, and what is done already.

`plan_models` lists every model a recipe asks for and `plan_units` every unit of work (precompute/executors.py
runs them), each named by a fingerprint of everything that shapes it: the recipe's settings, the content of every
input file (`input_digests`) and the lotterysite version. `Planning` is the runner's part that loads the data the
plan needs and says where each work file lives and whether a finished one is whole (resume detection).
"""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..checkpoint import CheckpointError, load_checkpoint
from ..cost import COST_VERSION
from ..data import DATASETS, DataError, ImageSet
from ..data._registry import DataSplits
from ..errors import LotterysiteError
from ..fileio import DigestCache, check_seal, unseal
from ..models.imported import source_file
from ..store.schema import CURSE
from . import custom, results_file
from .executors import Unit
from .recipe import Recipe, RecipeError, check_against_data, model_id, model_key
from .stream import should_stream


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


def fingerprint(*parts) -> str:
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
        out["data"] = fingerprint(*[_tensor_digest(s, x) for s, x in used])
    else:
        out["data"] = digests.tree(folder) if folder is not None and folder.is_dir() else ""
    if recipe.data.classes:  # a class-folder set's class list fixes the labels
        classes = Path(recipe.data.classes)
        out["data"] = fingerprint(out["data"], digests.digest(classes) if classes.is_file() else "")
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
        out["cifar10c"] = fingerprint([digests.digest(f) if f.is_file() else "" for f in files])
    else:  # the generator's own code: a change in what it outputs regenerates the images and what was made of them
        code = sorted(Path(__file__).parent.parent.joinpath("corruptions").glob("*.py"))
        # Our own source, not the user's data: hashed directly (the data digest cache reads only data files).
        out["corruptions"] = fingerprint([(f.name, hashlib.sha256(f.read_bytes()).hexdigest()) for f in code])
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
    return fingerprint(*parts, f"decode {DECODE}")  # the decoding rules make the pixels as the files do


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
            dense_fp = fingerprint(data, _arch_key(a, inputs), seed)
            out.append(ModelEntry(mid, model_key(mid), arch, "dense", 0.0, False, seed, dense_fp))
            dense_id = mid
            for sweep in recipe.pruning:
                if sweep.archs is not None and arch not in sweep.archs:
                    continue
                for amount in sweep.amounts:
                    pruned_fp = fingerprint(dense_fp, sweep.method, amount, sweep.options, sweep.train_subset)
                    parent = dense_id
                    for retrained in (False, True) if sweep.retrain_epochs else (False,):
                        mid = model_id(arch, sweep.name, amount, retrained=retrained, seed=seed, many_seeds=many)
                        fp = fingerprint(pruned_fp, sweep.retrain_epochs) if retrained else pruned_fp
                        out.append(ModelEntry(mid, model_key(mid), arch, sweep.name, amount, retrained, seed, fp,
                                              parent=parent))  # fmt: skip
                        parent = mid  # the retrained copy retrains this very pruned model
    out += custom.plan_external(recipe, ModelEntry, inputs, fingerprint, data, _arch_key)
    # Every model's work files are named by its key: two models with one key would overwrite each other's results
    # (a mixed store). The recipe checks make this unreachable; this is the last guard.
    seen: dict[str, str] = {}
    for e in out:
        if seen.setdefault(e.key, e.model_id) != e.model_id:
            raise RecipeError(f"{recipe.path}: models {seen[e.key]!r} and {e.model_id!r} would share the work files "
                              f"{e.key}; rename an [[architectures]] arch or a [[models]] label")  # fmt: skip
    return out


class Planning:
    """The runner's (run._Runner's) planning: the data the plan needs, loaded once per process, where every work
    file lives, and whether a finished one is whole. Uses the runner's recipe, work folder, force flag, inputs
    (the digests) and entries."""

    def done(self, path: Path) -> bool:
        return path.exists() and not self.force

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
        self.check_checkpoints(data)
        self.entries = plan_models(r, self.inputs)
        variants = [("clean", 0)] + [(n, s) for n in r.corruptions.names for s in r.corruptions.severities]
        if r.corruptions.source != "generate":
            self.check_cifar10c(data)
        return data, eval_set, variants

    def check_checkpoints(self, data: DataSplits) -> None:
        r = self.recipe
        for i, a in enumerate(r.architectures):
            if a.checkpoint:  # fail on a wrong checkpoint now, not after an hour of corruptions
                try:
                    load_checkpoint(a.checkpoint, arch=a.model.arch, num_classes=data.train.num_classes,
                                    in_channels=data.train.in_channels, image_size=data.train.image_size)  # fmt: skip
                except CheckpointError as e:
                    raise CheckpointError(f"{r.path}: field 'architectures[{i}].checkpoint': {e}") from None

    def check_cifar10c(self, data: DataSplits) -> None:
        """A CIFAR-10-C folder as `corruptions.source`: only for CIFAR-10, and holding every file it must."""
        r = self.recipe
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
        fp = fingerprint(_data_key(r, self.inputs), self.inputs.get("corruptions", ""))
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

    def checkpoint_path(self, entry: ModelEntry) -> Path:
        return self.work / "models" / f"{entry.key}-{entry.fingerprint}.pt"

    def results_path(self, entry: ModelEntry) -> Path:
        c = self.recipe.corruptions
        source = "generate" if c.source == "generate" else "folder"  # a folder by its content (below), not its path
        fp = fingerprint(entry.fingerprint, self.recipe.eval_subset, source, c.params, c.seed, c.names,
                          c.severities, self.inputs.get("cifar10c", ""), self.inputs.get("corruptions", ""),
                          results_file.FORMAT, COST_VERSION,
                          self.recipe.ship.severities)  # fmt: skip
        return self.work / "results" / f"{entry.key}-{fp}.npz"

    def kept_variants(self, variants) -> list[int]:
        """The variants whose per-sample rows ship (clean and the shipped severities): only for these are the
        angles to every class kept, for every sample (the shipped samples are chosen after every evaluation)."""
        shipped = set(self.recipe.ship.severities)
        return [v for v, (name, severity) in enumerate(variants) if name == "clean" or severity in shipped]

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

    def curse_path(self) -> Path:
        c = self.recipe.curse
        key = fingerprint(asdict(c), _data_key(self.recipe, self.inputs), self.recipe.seeds[0])
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


# -- the plan: the study as units of work ----------------------------------------------------------------------
STAGE = {"corruptions": "data", "dense": "models", "pruned": "models", "retrained": "models",
         "evaluate": "evaluate", "curse": "curse", "store": "store"}  # fmt: skip


def plan_units(runner) -> list[Unit]:
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
