"""Executors: run a plan of units in this process, on a Ray cluster, or as Slurm job arrays (submitit).

A unit writes exactly one file, atomically, and is skipped when that file exists, so any unit can run on any
worker, be retried after a kill, and a rerun of the same command finishes what is missing. The executors only
order the work; what a unit does is the picklable `fn(unit_id)` they are handed (precompute's `UnitTask`).

    local   units in dependency order in this process (today's behaviour)
    ray     one Ray task per unit, dependencies passed as object references; `num_gpus=1` for GPU units when the
            cluster has GPUs. Joins `address` (or RAY_ADDRESS) when given, else starts a local cluster.
    slurm   one submitit job array per dependency level; where Slurm is absent, submitit's local executor runs the
            same jobs as subprocesses (how the tests run it).
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import LotterysiteError

EXECUTORS = ("local", "ray", "slurm")


class ExecutorError(LotterysiteError):
    """A unit failed on a worker, or the executor cannot run; the message names the unit and where its log is."""

    def __init__(self, message: str, cause_type: str = ""):
        super().__init__(message)
        self.cause_type = cause_type  # class name of the worker's exception (e.g. a damaged work file's)


@dataclass(frozen=True)
class Unit:
    id: str  # unique and stable across runs, e.g. "model/lenet5__magnitude-50" or "store"
    kind: str  # "corruptions", "dense", "pruned", "retrained", "evaluate", "curse" or "store"
    deps: tuple[str, ...] = ()  # ids of the units whose files this one reads
    output: str = ""  # the one file this unit writes (its existence means done)
    gpu: bool = False  # benefits from an accelerator (runs on a GPU worker when the cluster has one)
    done: bool = False  # its file existed when the plan was made


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None  # --slurm-partition
    gpus_per_task: int = 0  # --slurm-gpus-per-task (0: CPU jobs)
    time_min: int = 240  # --slurm-time, minutes per job
    max_parallel: int = 64  # --slurm-max-parallel, running jobs per array
    cluster: str | None = None  # None: Slurm where `sbatch` exists, else local subprocesses ("local", "debug")


@dataclass
class RunReport:
    ran: list[str] = field(default_factory=list)  # units executed in this run
    skipped: list[str] = field(default_factory=list)  # units whose file already existed
    durations: dict[str, float] = field(default_factory=dict)  # seconds per unit, where `fn` returns them


def levels(units: Sequence[Unit]) -> list[list[Unit]]:
    """Units grouped by dependency depth: every unit's dependencies lie in earlier levels."""
    by_id = {u.id: u for u in units}
    if len(by_id) != len(units):
        raise ValueError("unit ids are not unique")
    depth: dict[str, int] = {}

    def d(uid: str, trail: tuple[str, ...] = ()) -> int:
        if uid in trail:
            raise ValueError(f"dependency cycle: {' -> '.join(trail + (uid,))}")
        if uid not in depth:
            unit = by_id[uid]
            missing = [x for x in unit.deps if x not in by_id]
            if missing:
                raise ValueError(f"unit {uid!r} depends on unknown units {missing}")
            depth[uid] = 1 + max((d(x, trail + (uid,)) for x in unit.deps), default=-1)
        return depth[uid]

    out: list[list[Unit]] = []
    for u in units:
        k = d(u.id)
        while len(out) <= k:
            out.append([])
        out[k].append(u)
    return out


def pending(units: Sequence[Unit]) -> list[Unit]:
    """Units still to run, in dependency order: the given order when it is one (precompute's plan puts a model's
    evaluation right after the model, while the model is still in memory), else level by level."""
    flat = [u for level in levels(units) for u in level]  # also checks ids, unknown dependencies and cycles
    seen: set[str] = set()
    for u in units:
        if any(d not in seen for d in u.deps):
            return [u for u in flat if not u.done]
        seen.add(u.id)
    return [u for u in units if not u.done]


def run_plan(
    units: Sequence[Unit],
    fn: Callable[[str], object],
    *,
    executor: str = "local",
    bar: Callable[[int], object] | None = None,
    ray_address: str | None = None,
    slurm: SlurmOptions | None = None,
    log_dir: str | os.PathLike | None = None,
) -> RunReport:
    """Run every pending unit of `units` with `executor`; `bar(total)` returns a progress bar (tqdm-like)."""
    todo = pending(units)
    report = RunReport(skipped=[u.id for u in units if u.done])
    progress = bar(len(todo)) if bar else None
    out = report.durations
    try:
        if executor == "local":
            _run_local(todo, fn, progress, out)
        elif executor == "ray":
            _run_ray(todo, fn, progress, out, address=ray_address)
        elif executor == "slurm":
            _run_slurm(todo, fn, progress, out, slurm or SlurmOptions(), Path(log_dir or "."))
        else:
            raise ExecutorError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    finally:
        if progress is not None and hasattr(progress, "close"):
            progress.close()
    report.ran = [u.id for u in todo]
    return report


def _tick(progress, unit: Unit, out: dict, value) -> None:
    if isinstance(value, (int, float)):
        out[unit.id] = float(value)
    if progress is not None:
        if hasattr(progress, "set_postfix_str"):
            progress.set_postfix_str(unit.id, refresh=False)
        progress.update(1)


def _last_error_line(text: str) -> str:
    """The `SomeError: message` line of a worker's traceback text (the last one: the error that ended it)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^[\w.]+(Error|Exception|Interrupt|Exit)\b", ln)]
    return (errors or lines or [""])[-1]


# -- local ---------------------------------------------------------------------------------------------------
def _run_local(todo: Iterable[Unit], fn, progress, out: dict) -> None:
    for unit in todo:
        _tick(progress, unit, out, fn(unit.id))


# -- ray -----------------------------------------------------------------------------------------------------
def _ray_unit(fn, unit_id: str, *deps):
    # `deps` are the dependencies' results: Ray starts this task only once they exist, which is all they are for.
    return fn(unit_id)


_RAY_FIX = (
    "start its head there (`ray start --head --port=PORT`), correct --ray-address / RAY_ADDRESS, "
    "or unset both to start a local cluster"
)


def _join_error(e: BaseException) -> str:
    # Ray's ConnectionError only repeats the address; its cause holds a traceback whose last error line says what
    # went wrong (a missing auth token, a version mismatch).
    return _last_error_line(str(e.__cause__ or e)) or type(e).__name__


def _check_ray_address(address: str) -> None:
    """Fail at once, in one line, when nothing listens at a host:port address: Ray itself retries for minutes."""
    m = re.fullmatch(r"(?:ray://)?\[?([^\[\]/]+?)\]?:(\d+)", address.strip())
    if m is None:  # "auto", "local", a job-server URL: Ray resolves those and fails quickly by itself
        return
    try:
        socket.create_connection((m.group(1), int(m.group(2))), timeout=5).close()
    except OSError as e:
        raise ExecutorError(f"no Ray cluster answers at {address} ({e.strerror or e}); {_RAY_FIX}") from None


def _run_ray(todo: Sequence[Unit], fn, progress, out: dict, *, address: str | None) -> None:
    try:
        import ray
    except ImportError:
        raise ExecutorError("--executor ray needs Ray: pip install 'lotterysite[ray]'") from None
    if not ray.is_initialized():
        # Joins RAY_ADDRESS / --ray-address when given, else starts a local cluster. A process already connected
        # (a notebook, the tests) keeps its connection. The driver itself never touches CUDA: every unit picks its
        # device on its worker.
        address = address or os.environ.get("RAY_ADDRESS") or None
        if address:
            _check_ray_address(address)
        try:
            # The dashboard is the started cluster's to have; a joined cluster keeps whatever it runs.
            ray.init(address=address, log_to_driver=False, **({} if address else {"include_dashboard": False}))
        except (ConnectionError, RuntimeError) as e:
            if not address:
                raise
            # Something answered and refused (an auth token, another Ray version): Ray's own line says how to fix it.
            raise ExecutorError(f"cannot join the Ray cluster at {address}: {_join_error(e)}") from None
    gpus = ray.cluster_resources().get("GPU", 0)
    # A worker killed mid-unit (OOM, preemption) is retried; its half-written file was a hidden temporary.
    task = ray.remote(max_retries=2)(_ray_unit)
    fn_ref = ray.put(fn)
    refs: dict[str, object] = {}
    unit_of: dict[object, Unit] = {}
    for unit in todo:
        deps = [refs[d] for d in unit.deps if d in refs]  # a dependency done before this run has no task
        options = {"num_cpus": 1, "num_gpus": 1 if unit.gpu and gpus >= 1 else 0, "name": unit.id}
        ref = task.options(**options).remote(fn_ref, unit.id, *deps)
        refs[unit.id] = ref
        unit_of[ref] = unit
    waiting = list(unit_of)
    while waiting:
        ready, waiting = ray.wait(waiting, num_returns=1)
        unit = unit_of[ready[0]]
        try:
            value = ray.get(ready[0])
        except Exception as e:  # noqa: BLE001 - a worker's error, re-raised with the unit named
            for ref in waiting:
                ray.cancel(ref, force=False)
            cause = getattr(e, "cause", None) or e
            if isinstance(cause, LotterysiteError):
                raise ExecutorError(f"unit {unit.id}: {cause}", type(cause).__name__) from None
            raise ExecutorError(f"unit {unit.id} failed on its Ray worker: {_last_error_line(str(e))}",
                                type(cause).__name__) from e  # fmt: skip
        _tick(progress, unit, out, value)


# -- slurm (submitit) ----------------------------------------------------------------------------------------
def _run_slurm(todo: Sequence[Unit], fn, progress, out: dict, options: SlurmOptions, log_dir: Path) -> None:
    try:
        import submitit
    except ImportError:
        raise ExecutorError("--executor slurm needs submitit: pip install 'lotterysite[slurm]'") from None
    log_dir.mkdir(parents=True, exist_ok=True)
    executor = submitit.AutoExecutor(folder=str(log_dir / "%j"), cluster=options.cluster)
    # One task per job, so GPUs per node are GPUs per task. `slurm_` parameters reach Slurm only: submitit's local
    # executor drops them (it runs every job of an array at once, with the generic timeout).
    params = {"timeout_min": options.time_min, "slurm_array_parallelism": options.max_parallel}
    if options.gpus_per_task:
        params["gpus_per_node"] = options.gpus_per_task
    if options.partition:
        params["slurm_partition"] = options.partition
    executor.update_parameters(**params)
    ids = {u.id for u in todo}
    # One array per dependency level of the pending units: a level starts when the one before has finished.
    for level in levels([Unit(u.id, u.kind, tuple(d for d in u.deps if d in ids), u.output, u.gpu) for u in todo]):
        try:
            jobs = executor.map_array(fn, [u.id for u in level])
        except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError) as e:
            # sbatch refused the array (an unknown partition, a time over the limit): the user's to fix.
            raise ExecutorError(f"submitting {len(level)} units (first: {level[0].id}) to {executor.cluster} failed: "
                                f"{_last_error_line(str(e))}; logs: {log_dir}") from None  # fmt: skip
        remaining = dict(zip(jobs, level, strict=True))
        while remaining:
            for job in [j for j in remaining if j.done()]:
                unit = remaining.pop(job)
                try:
                    value = job.result()
                except Exception as e:  # noqa: BLE001 - a job's error, reported with the unit and its log
                    for other in remaining:
                        other.cancel(check=False)
                    last = _last_error_line(str(e)) or type(e).__name__
                    cause_type = last.split(":", 1)[0].rsplit(".", 1)[-1]
                    raise ExecutorError(
                        f"unit {unit.id} failed (log: {job.paths.stderr}): {last}", cause_type
                    ) from None
                _tick(progress, unit, out, value)
            if remaining:
                time.sleep(0.2)


__all__ = ["EXECUTORS", "ExecutorError", "RunReport", "SlurmOptions", "Unit", "levels", "pending", "run_plan"]
