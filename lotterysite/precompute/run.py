"""`precompute`: run what a recipe describes and write the store.

The pipeline, one module a step:
  plan.py     what the recipe asks for: the data, every model and every unit of work, each named by a fingerprint;
              which work is done already (a rerun resumes)
  units.py    one unit's work: a corrupted variant of the evaluation set, a dense / pruned / retrained model, a
              model's evaluation (per-sample prediction and geometry, full evaluation set), the §5.4 curse study
  tables.py   the store's Arrow tables: aggregates on the full data, the shipped samples' rows, thumbnails
  publish.py  the store unit: the tables, gallery and manifest written beside the old store, then switched in
  run.py      this module: `precompute` and `plan`, and the runner that holds what the units share; the
              executors (executors.py) run the units, here or on workers
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

import json
import socket
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..errors import LotterysiteError
from ..fileio import DigestCache, remove_temporaries, write_bytes
from ..models.imported import register_sources
from ..store import read_manifest
from ..store.publish import check_replaceable, new_run_id, recover, store_lock, work_dir
from .executors import EXECUTORS, SlurmOptions, Unit, run_plan
from .plan import STAGE, DamagedWork, ModelEntry, Planning, fingerprint, plan_units
from .publish import Publishing
from .recipe import Recipe
from .units import UnitWork


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


class _Runner(Planning, UnitWork, Publishing):
    """What every unit of a run shares in one process: the recipe, the work folder, the data (loaded once), the
    digests, the planned entries and a few models in memory. Its work is its parts': Planning (plan.py), UnitWork
    (units.py), Publishing (publish.py)."""

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

    def reuse(self, stage: str):
        self.result.reused[stage] = self.result.reused.get(stage, 0) + 1


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
    units = plan_units(runner)
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
            units = plan_units(runner)
            plan_id = fingerprint(runner.run_id, attempt, [(u.id, u.output) for u in units])
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


__all__ = ["PrecomputeResult", "UnitTask", "plan", "precompute"]
