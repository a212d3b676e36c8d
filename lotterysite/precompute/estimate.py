"""What a study will cost before it runs: `precompute --plan`'s time and memory per unit.

A short calibration runs the recipe's own code on a few batches of its own data, on the chosen device, and every
unit's time is extrapolated from it by the unit's work count (training steps, images, batches):

- training: `training.train` on 1 and 4 batches of each architecture's model (the recipe's optimizer, batch size,
  augmentation and amp), whose difference is the time of a step and the rest the per-run overhead;
- evaluation: `geometry.measure_model` on a half and a whole batch of evaluation images (per image, per batch);
- corruptions: `corruptions.corrupt` of each corruption on 16 and 64 evaluation images;
- pruning: `pruning.prune_model` of each [[pruning]] table on 1 and 4 batches of training data (its data loop:
  Taylor's batches, one MPT epoch), and `pruning.retrain` likewise where the table retrains;
- the curse study: training and measuring its model at one width;
- the store: the real table builders on random results of the study's shape, for 1 and 2 models;
- files: `fileio.write_bytes` (atomic, flushed to disk) of 4 KiB and 8 MiB beside the store, deleted at once; every
  unit writes its file and a seal, the store one file per table and model (on a small study, most of its time).

A cost measured twice at two sizes is a line (overhead + size x slope), so one-off costs (optimizer set-up, the first
call's allocations) are not multiplied by the epochs. The calibration model is built from the recipe's arch and
options: an import-path arch's factory runs for real here (not only on the meta device, as validation does).

Memory is the peak a unit is estimated to hold: for training, the weights, their gradients and optimizer state plus
the activations of a batch (every module's output, measured by hooks on one image); for evaluation, the weights,
a batch's activations, a variant's images and the results arrays. A unit is flagged when that exceeds the memory
available now (CUDA: free device memory; CPU: MemAvailable).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..config import TrainConfig
from ..corruptions import corrupt
from ..fileio import write_bytes
from ..geometry import measure_model
from ..models import create_model
from ..pruning import get_method, prune_model
from ..pruning.batchnorm import has_batch_norm
from ..pruning.retrain import retrain
from ..store import to_table
from ..store.schema import (
    ACCURACY,
    CORRELATIONS,
    EXEMPLARS,
    MARGIN_CHANGE,
    MODELS,
    PAIRED,
    geometry_schema,
    outcomes_schema,
)
from ..training import train
from . import aggregate as agg
from . import tables
from .curse import _angle_stats, random_vector_angles
from .executors import Unit
from .plan import ModelEntry

CORRUPTION_CHUNK = 1000  # images the cached corruption units corrupt at a time (units.py generate_corruptions)


@dataclass(frozen=True)
class Line:
    """A cost measured at two sizes: `overhead + size * slope` seconds."""

    overhead: float
    slope: float

    def at(self, size: float) -> float:
        return self.overhead + self.slope * size


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _seconds(fn, device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def _best(fn, device: torch.device, repeats: int) -> float:
    # The fastest of a few runs: on a shared machine other processes only ever add time.
    return min(_seconds(fn, device) for _ in range(repeats))


def line(fn, small: int, large: int, device: torch.device, repeats: int = 2) -> Line:
    """Time `fn(size)` at two sizes (the fastest of `repeats` runs each), after one warm-up call at the small one
    (first-call allocations, imports, lazy set-up)."""
    _seconds(lambda: fn(small), device)
    t_small = _best(lambda: fn(small), device, repeats)
    if large <= small:
        return Line(0.0, t_small / max(small, 1))
    t_large = _best(lambda: fn(large), device, repeats)
    # A larger size that ran no slower: the cost does not grow with the size (magnitude pruning's data loop).
    slope = max(t_large - t_small, 0.0) / (large - small)
    return Line(max(t_small - slope * small, 0.0), slope)


def available_memory(device: torch.device) -> int | None:
    """Bytes free now on `device` (CUDA: free device memory; CPU: the kernel's MemAvailable), None when unknown."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for row in f:
                if row.startswith("MemAvailable:"):
                    return int(row.split()[1]) * 1024
    except OSError:
        pass
    return None


def _activation_bytes(model: torch.nn.Module, image: torch.Tensor) -> int:
    """Bytes of every leaf module's output for one image: what a training step keeps for the backward pass (an
    upper bound for inference, which frees each output once used)."""
    total = 0

    def hook(_module, _inputs, out):
        nonlocal total
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with torch.no_grad():
            model.eval()(image)
    finally:
        for h in handles:
            h.remove()
    return total


@dataclass
class ArchCosts:
    train_step: Line  # seconds of `train` over n batches (the recipe's batch size)
    train_batch: int
    infer: Line  # seconds of measure_model over n images in one batch
    params: int  # bytes of the weights
    activations: int  # bytes of the activations of one image
    optimizer_states: int  # state tensors per weight (SGD momentum 1, AdamW 2)
    batch_norm: bool  # pruning recalibrates its batch norm
    prune: dict[str, Line] = field(default_factory=dict)  # per [[pruning]] name: seconds over n data batches
    retrain: dict[str, Line] = field(default_factory=dict)  # per [[pruning]] name: seconds of retraining n batches


@dataclass
class Calibration:
    device: torch.device
    seconds: float  # the calibration itself took
    archs: dict[str, ArchCosts]
    corrupt: dict[str, Line]  # per corruption: seconds over n images in one call
    store: Line | None  # seconds of the store's tables over n models (pairs counted in)
    pair: float  # seconds of one pair in paired.arrow
    thumbnail: float  # seconds per shipped sample's thumbnail
    curse: Line | None  # seconds of one curse width (training over n batches, then measuring)
    vectors: Line | None  # seconds of the curse study's random vectors over n dimensions
    write: Line  # seconds of writing a file of n bytes (atomically, flushed to disk) beside the store
    available: int | None  # bytes free on the device
    ram: int | None  # bytes of RAM free


def _shape(data) -> dict:
    return dict(in_channels=data.train.in_channels, image_size=data.train.image_size)


def _build(runner, arch_cfg, data, seed: int):
    torch.manual_seed(seed)
    return create_model(arch_cfg.model.arch, num_classes=data.train.num_classes, **_shape(data),
                        **arch_cfg.model.options)  # fmt: skip


def _calibrate_arch(runner, arch_cfg, data, eval_set, device, entries) -> ArchCosts:
    recipe = runner.recipe
    seed = recipe.seeds[0]
    model = _build(runner, arch_cfg, data, seed).to(device)
    cfg = replace(arch_cfg.train, epochs=1, seed=seed)
    bs = cfg.batch_size

    def fit(n: int) -> None:
        train(model, data.train.head(min(n * bs, len(data.train))), cfg, device=device, progress=False)

    steps = max(1, math.ceil(len(data.train) / bs))
    train_step = line(fit, 1, min(4, steps), device) if not (arch_cfg.checkpoint or arch_cfg.weights) else Line(0, 0)
    eb = min(recipe.batch_size, len(eval_set))

    def infer(n: int) -> None:
        measure_model(model, eval_set.head(n).batches(n, device=device), device=device)

    costs = ArchCosts(
        train_step=train_step, train_batch=bs, infer=line(infer, max(1, eb // 2), eb, device),
        params=sum(p.numel() * p.element_size() for p in model.parameters()),
        activations=_activation_bytes(model, eval_set.head(1).images.to(device).float().div(255)),
        optimizer_states=1 if cfg.optimizer == "sgd" else 2, batch_norm=has_batch_norm(model),
    )  # fmt: skip
    # Each [[pruning]] table that prunes this architecture: its own method and options, on 1 and 4 batches.
    for sweep in recipe.pruning:
        if sweep.archs is not None and arch_cfg.model.arch not in sweep.archs:
            continue
        if not any(e.arch == arch_cfg.model.arch and e.method == sweep.name and not e.file for e in entries):
            continue
        pcfg = sweep.config(sweep.amounts[0], seed, retrain=False, progress=False)
        pcfg = replace(pcfg, bn_recalibration_batches=0, retrain_epochs=0, mpt_epochs=1)
        pb = pcfg.batch_size
        train_set = data.train.head(sweep.train_subset)

        def prune(n: int, pcfg=pcfg, pb=pb, train_set=train_set) -> None:
            prune_model(model, pcfg, data=train_set.head(min(n * pb, len(train_set))), device=device)

        batches = max(1, math.ceil(len(train_set) / pb))
        costs.prune[sweep.name] = line(prune, 1, min(4, batches), device)
        if sweep.retrain_epochs:
            pruned = prune_model(model, pcfg, data=train_set.head(pb), device=device)
            rcfg = TrainConfig(epochs=1, batch_size=pb, lr=pcfg.retrain_lr, seed=seed)

            def again(n: int, pruned=pruned, rcfg=rcfg, pb=pb, train_set=train_set) -> None:
                retrain(pruned, train_set.head(min(n * pb, len(train_set))), rcfg, device=device, progress=False)

            costs.retrain[sweep.name] = line(again, 1, min(4, batches), device)
    return costs


def _calibrate_store(runner, eval_set, variants) -> tuple[Line, float, float]:
    """The store's table builders on random results of the study's shape: seconds over n models, per pair, and
    per thumbnail."""
    rng = np.random.default_rng(0)
    N, V, C = len(eval_set), len(variants), len(eval_set.classes)
    keep = runner.kept_variants(variants)
    labels = eval_set.labels.numpy().astype(np.int64)

    def fake(i: int):
        entry = ModelEntry(f"m{i}", f"m{i}", "a", "dense", 0.0, False, 0)
        res = agg.ModelResults.from_angles(
            variants, labels, rng.integers(0, C, (V, N)).astype(np.int16), rng.normal(size=(V, N)).astype(np.float32),
            rng.uniform(1, 2, (V, N)).astype(np.float32), rng.uniform(0, 180, (V, N, C)).astype(np.float32),
            rng.uniform(size=(V, N)).astype(np.float32), rng.uniform(size=(V, N)).astype(np.float32),
            np.zeros((V, N), bool), keep=keep, margin_eq5=rng.normal(size=(V, N)).astype(np.float32),
        )  # fmt: skip
        return entry.model_id, (entry, res, {"sparsity": 0.0, "prunable": 1})

    models = dict(fake(i) for i in range(2))
    corrupted = V > 1
    weights = agg.BOOTSTRAP.weights(N)
    shipped = np.arange(N)

    names = list(runner.recipe.corruptions.names)

    def builders(n: int) -> None:
        # Each builder, then its Arrow table (pyarrow's casts cost as much as the builders on a small study).
        results = dict(list(models.items())[:n])
        acc, overall = tables.accuracy_table(results, C, weights)
        to_table(acc, ACCURACY)
        to_table(tables.models_table(results, overall), MODELS)
        to_table(tables.correlations_table(results, weights, corrupted=corrupted), CORRELATIONS)
        to_table(tables.margin_change_table(results, corrupted=corrupted), MARGIN_CHANGE)
        to_table(tables.exemplars_table(results, labels), EXEMPLARS)
        to_table(tables.outcomes_table(results, shipped, names), outcomes_schema(names))
        for entry, res, _ in results.values():
            to_table(tables.geometry_table(entry, res, shipped, labels, keep, C), geometry_schema(C))

    def pairs() -> None:
        to_table(tables.paired_table(models, weights), PAIRED)  # 2 models: 3 pairs (each with itself, the two)

    device = torch.device("cpu")
    store = line(builders, 1, 2, device)
    pairs()  # warm-up
    pair = _best(pairs, device, 2) / 3
    n = min(N, 20)
    images = eval_set.head(n + 1).images

    def thumbs() -> None:
        for img in images[1:]:
            tables.thumbnail(img)

    tables.thumbnail(images[0])  # warm-up: PIL's import and codecs
    thumb = _best(thumbs, device, 2) / max(n, 1)
    return store, pair, thumb


def _calibrate_curse(runner, data, eval_set, device) -> tuple[Line, Line]:
    """(seconds of one width over n training batches, seconds of the random-vector study over n dimensions)."""
    c = runner.recipe.curse
    width = sorted(c.widths)[len(c.widths) // 2]
    cfg = TrainConfig(epochs=1, seed=runner.recipe.seeds[0])
    train_set = data.train.head(c.train_subset)

    def one(n: int) -> None:  # as width_sweep: build, measure untrained, train n batches, measure trained
        model = create_model(c.arch, num_classes=eval_set.num_classes, in_channels=eval_set.in_channels,
                             image_size=eval_set.image_size, feature_dim=width)  # fmt: skip
        _angle_stats(model, eval_set, device)
        train(model, train_set.head(min(n * cfg.batch_size, len(train_set))), cfg, device=device, progress=False)
        _angle_stats(model, eval_set, device)

    def vectors(n: int) -> None:
        random_vector_angles([n], c.random_samples, seed=0)

    return line(one, 1, 2, device), line(vectors, 64, 512, torch.device("cpu"))


def _calibrate_write(runner) -> Line:
    """Writing a file of n bytes where the work files go (the nearest existing folder above them), deleted after."""
    folder = runner.work
    while not folder.exists():
        folder = folder.parent
    path = folder / f".lotterysite-plan-{os.getpid()}.tmp"
    try:
        return line(lambda n: write_bytes(path, bytes(n)), 4096, 8 * 2**20, torch.device("cpu"))
    finally:
        path.unlink(missing_ok=True)


def calibrate(runner, units: list[Unit], device: torch.device) -> Calibration:
    """Time the recipe's own work on a few batches of its data, for the units still to run. Warnings the work
    raises (an untrained model's degenerate features, say) are the run's to report, not the plan's: silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _calibrate(runner, units, device)


def _calibrate(runner, units: list[Unit], device: torch.device) -> Calibration:
    start = time.perf_counter()
    data, eval_set, variants = runner.prepare()
    todo = [u for u in units if not u.done]
    recipe = runner.recipe
    todo_archs = {e.arch for e in runner.entries if any(u.id.endswith("/" + e.model_id) for u in todo)}
    archs = {a.model.arch: _calibrate_arch(runner, a, data, eval_set, device, runner.entries)
             for a in recipe.architectures if a.model.arch in todo_archs}  # fmt: skip
    corrupt_cost = {}
    c = recipe.corruptions
    if c.source == "generate" and any(u.kind in ("corruptions", "evaluate") for u in todo):
        severity = sorted(c.severities)[len(c.severities) // 2] if c.severities else 1
        for name in c.names:

            def one(n: int, name=name) -> None:
                x = eval_set.head(n).images.to(device).float().div_(255)
                corrupt(x, name, severity, seed=c.seed, params=c.params)

            large = min(128, len(eval_set))  # near a chunk's size, where per-image costs are what a unit pays
            corrupt_cost[name] = line(one, max(1, large // 4), large, device)
    store, pair, thumb = (None, 0.0, 0.0)
    if any(u.kind == "store" for u in todo):
        store, pair, thumb = _calibrate_store(runner, eval_set, variants)
    curse, vectors = None, None
    if any(u.kind == "curse" for u in todo):
        curse, vectors = _calibrate_curse(runner, data, eval_set, device)
    write = _calibrate_write(runner) if todo else Line(0.0, 0.0)
    return Calibration(device=device, seconds=time.perf_counter() - start, archs=archs, corrupt=corrupt_cost,
                       store=store, pair=pair, thumbnail=thumb, curse=curse, vectors=vectors, write=write,
                       available=available_memory(device),
                       ram=available_memory(torch.device("cpu")))  # fmt: skip


@dataclass(frozen=True)
class Estimate:
    seconds: float
    memory: int  # peak bytes on the device the unit runs on (the weights, activations, a batch)
    host: int  # peak bytes in RAM beside them (images of a variant, results); on the CPU the two add up
    fits: bool | None  # None: the available memory is unknown

    def peak(self, device: torch.device) -> str:
        if device.type == "cpu":
            return f"peak {size(self.memory + self.host)}"
        return f"peak {size(self.memory)} {device.type} + {size(self.host)} RAM"


def _entry_of(runner, unit: Unit):
    mid = unit.id.split("/", 1)[1]
    return next(e for e in runner.entries if e.model_id == mid)


def estimate(runner, units: list[Unit], cal: Calibration) -> dict[str, Estimate]:
    """Seconds and peak memory of every unit still to run, from the calibration."""
    data, eval_set, variants = runner.prepare()
    recipe = runner.recipe
    N = len(eval_set)
    image_bytes = eval_set.images[:1].numel() if len(eval_set) else 0
    streamed = not any(u.kind == "corruptions" for u in units) and recipe.corruptions.source == "generate"
    mean_corrupt = (
        sum(line_.at(min(N, CORRUPTION_CHUNK)) / min(N, CORRUPTION_CHUNK) for line_ in cal.corrupt.values())
        / len(cal.corrupt)
        if cal.corrupt
        else 0.0
    )
    out: dict[str, Estimate] = {}
    for u in units:
        if u.done:
            continue
        if u.kind == "corruptions":
            cost = _corruption_cost(u, cal, N, image_bytes)
        elif u.kind == "curse":
            cost = _curse_cost(recipe, data, cal)
        elif u.kind == "store":
            cost = _store_cost(runner, cal, eval_set, variants)
        else:
            cost = _model_unit_cost(runner, u, cal, data, eval_set, variants, streamed, mean_corrupt)
            if cost is None:  # an architecture the calibration did not time
                continue
        seconds, memory, host = cost
        if cal.device.type == "cpu":
            fits = None if cal.ram is None else memory + host <= cal.ram
        else:
            fits = None if cal.available is None or cal.ram is None else memory <= cal.available and host <= cal.ram
        out[u.id] = Estimate(seconds, int(memory), int(host), fits)
    return out


def _corruption_cost(u: Unit, cal: Calibration, N: int, image_bytes: int) -> tuple[float, int, int]:
    """(seconds, device bytes, host bytes) of one cached corruption unit."""
    name = u.id.split("/", 1)[1].rsplit("-", 1)[0]
    chunks = math.ceil(N / CORRUPTION_CHUNK)
    seconds = chunks * cal.corrupt[name].at(min(N, CORRUPTION_CHUNK)) + _file(cal, N * image_bytes)
    memory = min(N, CORRUPTION_CHUNK) * image_bytes * 4 * 3  # a chunk in float: input, output, work
    host = N * image_bytes * 2  # the corrupted variant in uint8, and its file's bytes
    return seconds, memory, host


def _curse_cost(recipe, data, cal: Calibration) -> tuple[float, int, int]:
    """(seconds, device bytes, host bytes) of the curse study's unit."""
    seconds = 0.0
    c = recipe.curse
    steps = math.ceil(min(len(data.train), c.train_subset or len(data.train)) / TrainConfig().batch_size)
    if cal.curse:
        seconds = len(c.widths) * cal.curse.at(c.epochs * steps) + cal.vectors.overhead * len(c.random_dims)
        seconds += cal.vectors.slope * sum(c.random_dims) + _file(cal, 4096)
    return seconds, 0, 0


def _store_cost(runner, cal: Calibration, eval_set, variants) -> tuple[float, int, int]:
    """(seconds, device bytes, host bytes) of the store unit."""
    N, V = len(eval_set), len(variants)
    M = len(runner.entries)
    seconds = (cal.store.at(M) if cal.store else 0.0) + cal.pair * M * (M + 1) / 2 + cal.thumbnail * N
    # One file per table and per model's geometry, the gallery (twice: its cache) and the manifest; the
    # geometry rows (every evaluated sample at most, clean and the shipped severities) are most bytes.
    rows = N * len(runner.kept_variants(variants))
    seconds += (12 + M) * cal.write.overhead + cal.write.slope * M * rows * (len(eval_set.classes) + 12) * 4
    host = (V * N * 30) + agg.BOOTSTRAP.resamples * N * 4 * 2  # a model's results, the resample weights
    return seconds, 0, host


def _model_unit_cost(runner, u: Unit, cal: Calibration, data, eval_set, variants, streamed: bool,
                     mean_corrupt: float) -> tuple[float, int, int] | None:  # fmt: skip
    """(seconds, device bytes, host bytes) of a model's unit (dense, pruned, retrained, evaluate), or None when its
    architecture was not calibrated."""
    recipe = runner.recipe
    N, V = len(eval_set), len(variants)
    image_bytes = eval_set.images[:1].numel() if len(eval_set) else 0
    seconds, memory, host = 0.0, 0, 0
    entry = _entry_of(runner, u)
    a = cal.archs.get(entry.arch)
    if a is None:
        return None
    train_steps = math.ceil(len(data.train) / a.train_batch)
    if u.kind == "dense":
        arch_cfg = next(x for x in recipe.architectures if x.model.arch == entry.arch)
        seconds = (
            0.0 if arch_cfg.checkpoint or arch_cfg.weights else a.train_step.at(arch_cfg.train.epochs * train_steps)
        ) + _file(cal, a.params)
        memory = a.params * (2 + a.optimizer_states) + a.activations * a.train_batch
    elif u.kind in ("pruned", "retrained"):
        seconds, memory = _pruning_cost(runner, u, entry, a, cal, data)
    elif u.kind == "evaluate":
        eb = min(recipe.batch_size, max(N, 1))
        per_variant = math.ceil(N / eb) * a.infer.overhead + N * a.infer.slope
        seconds = V * per_variant
        if streamed:
            seconds += (V - 1) * N * mean_corrupt
        memory = a.params + a.activations * eb + eb * image_bytes * 4  # and a batch in float
        host = N * image_bytes + V * N * 30  # a variant's images, the results
        kept = len(runner.kept_variants(variants)) * N * len(eval_set.classes) * 4  # angles to every class
        seconds += _file(cal, V * N * 30) + cal.write.slope * kept
    return seconds, memory, host


def _pruning_cost(runner, u: Unit, entry, a: ArchCosts, cal: Calibration, data) -> tuple[float, int]:
    """(seconds, device bytes) of a pruned or retrained model's unit."""
    sweep = runner.sweep_of(entry)
    cfg = sweep.config(entry.amount, entry.seed, retrain=False, progress=False)
    n_train = min(len(data.train), sweep.train_subset or len(data.train))
    batches = math.ceil(n_train / cfg.batch_size)
    if u.kind == "retrained":
        seconds = a.retrain[sweep.name].at(sweep.retrain_epochs * batches) + _file(cal, 2 * a.params)
        return seconds, a.params * 5 + a.activations * cfg.batch_size
    # The batches the method's data loop runs (calibrated with one MPT epoch); a method that reads no data loops
    # over none, any other data method once over its training images.
    if sweep.method == "mpt":
        loops = cfg.mpt_epochs * batches
    elif sweep.method == "taylor":
        tb = cfg.taylor_batches
        loops = batches if not isinstance(tb, int) else min(tb, batches)
    else:
        loops = batches if get_method(sweep.method).needs_data else 0
    seconds = a.prune[sweep.name].at(loops) + _file(cal, 2 * a.params)  # weights and masks
    if cfg.bn_recalibration_batches and a.batch_norm:  # forward passes over training batches
        n = min(cfg.bn_recalibration_batches, batches)
        seconds += n * a.infer.at(cfg.batch_size)
    return seconds, a.params * 4 + a.activations * cfg.batch_size


def _file(cal: Calibration, n: int) -> float:
    """A work file of n bytes and its seal (each written atomically and flushed)."""
    return cal.write.at(n) + cal.write.overhead


def duration(seconds: float) -> str:
    """3.2 s, 4 min 10 s, 2 h 05 min."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def size(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**28 else f"{n / 2**20:.0f} MiB"


__all__ = ["Calibration", "Estimate", "available_memory", "calibrate", "duration", "estimate", "line", "size"]
