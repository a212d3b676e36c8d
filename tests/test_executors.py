"""Executors on toy plans: dependency order, skipping done units, failures named, a killed Ray worker retried.

The precompute integration (same store from every executor) is tested in tests/test_precompute_executors.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import cloudpickle
import pytest

from lotterysite.precompute.executors import ExecutorError, SlurmOptions, Unit, levels, pending, run_plan


def write_unit(root: str, deps: dict, unit_id: str, *, fail: str = "", kill_once: str = "") -> None:
    """A unit: checks its dependencies' files exist, then writes its own (what precompute's units do)."""
    root_p = Path(root)
    for d in deps.get(unit_id, ()):
        assert (root_p / f"{d}.json").exists(), f"{unit_id} ran before {d}"
    if unit_id == fail:
        raise RuntimeError(f"{unit_id} exploded")
    marker = root_p / f".killed-{unit_id}"
    if unit_id == kill_once and not marker.exists():
        marker.write_text("")
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-unit, as under the OOM killer
    (root_p / f"{unit_id}.json").write_text(json.dumps({"unit": unit_id, "pid": os.getpid()}))


# Workers (Ray's and submitit's subprocesses) cannot import a test module by name: ship this one's code by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

DEPS = {"a": (), "b": (), "c": ("a",), "d": ("a", "b"), "e": ("c", "d")}


def plan(root: Path, done=()):
    return [Unit(u, "toy", tuple(d), str(root / f"{u}.json"), done=u in done) for u, d in DEPS.items()]


def test_levels_and_pending_follow_dependencies():
    units = plan(Path("/x"))
    assert [[u.id for u in lv] for lv in levels(units)] == [["a", "b"], ["c", "d"], ["e"]]
    assert [u.id for u in pending(plan(Path("/x"), done={"a", "c"}))] == ["b", "d", "e"]
    with pytest.raises(ValueError, match="cycle"):
        levels([Unit("x", "toy", ("y",)), Unit("y", "toy", ("x",))])
    with pytest.raises(ValueError, match="unknown"):
        levels([Unit("x", "toy", ("nope",))])


def test_local_runs_in_order_and_skips_done(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    report = run_plan(plan(tmp_path, done={"a"}), partial(write_unit, str(tmp_path), DEPS))
    assert report.skipped == ["a"] and sorted(report.ran) == ["b", "c", "d", "e"]
    assert (tmp_path / "a.json").read_text() == "{}"  # the done unit was not redone


def test_unknown_executor_is_named(tmp_path):
    with pytest.raises(ExecutorError, match="unknown executor 'dask'"):
        run_plan(plan(tmp_path), partial(write_unit, str(tmp_path), DEPS), executor="dask")


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray vendors its own cloudpickle
    if not ray.is_initialized():
        # Ray 2.5x has no local mode: one real local cluster for the whole test session.
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray


def test_ray_runs_every_unit_after_its_dependencies(ray_cluster, tmp_path):
    report = run_plan(plan(tmp_path), partial(write_unit, str(tmp_path), DEPS), executor="ray")
    assert sorted(report.ran) == sorted(DEPS)
    pids = {json.loads((tmp_path / f"{u}.json").read_text())["pid"] for u in DEPS}
    assert os.getpid() not in pids  # every unit ran on a worker, not in the driver


def test_ray_retries_a_killed_worker(ray_cluster, tmp_path):
    run_plan(plan(tmp_path), partial(write_unit, str(tmp_path), DEPS, kill_once="c"), executor="ray")
    assert (tmp_path / ".killed-c").exists() and (tmp_path / "e.json").exists()


def test_ray_failure_names_the_unit(ray_cluster, tmp_path):
    with pytest.raises(ExecutorError, match="unit d .*exploded"):
        run_plan(plan(tmp_path), partial(write_unit, str(tmp_path), DEPS, fail="d"), executor="ray")
    assert not (tmp_path / "e.json").exists()


def test_slurm_local_runs_levels_as_arrays(tmp_path):
    pytest.importorskip("submitit")
    logs = tmp_path / "logs"
    out = tmp_path / "out"
    out.mkdir()
    report = run_plan(plan(out), partial(write_unit, str(out), DEPS), executor="slurm",
                      slurm=SlurmOptions(cluster="local", time_min=5), log_dir=logs)  # fmt: skip
    assert sorted(report.ran) == sorted(DEPS)
    pids = {json.loads((out / f"{u}.json").read_text())["pid"] for u in DEPS}
    assert os.getpid() not in pids and len(pids) == len(DEPS)  # one subprocess per unit
    assert list(logs.rglob("*_log.err"))  # the logs live where we said


def test_slurm_failure_names_unit_and_log(tmp_path):
    pytest.importorskip("submitit")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ExecutorError, match=r"unit d failed \(log: .*\): .*exploded"):
        run_plan(plan(out), partial(write_unit, str(out), DEPS, fail="d"), executor="slurm",
                 slurm=SlurmOptions(cluster="local", time_min=5), log_dir=tmp_path / "logs")  # fmt: skip


def test_slurm_killed_job_is_reported_and_a_rerun_finishes(tmp_path):
    pytest.importorskip("submitit")
    out = tmp_path / "out"
    out.mkdir()
    fn = partial(write_unit, str(out), DEPS, kill_once="c")
    options = SlurmOptions(cluster="local", time_min=5)
    with pytest.raises(ExecutorError, match="unit c failed"):
        run_plan(plan(out), fn, executor="slurm", slurm=options, log_dir=tmp_path / "logs")
    assert not (out / "c.json").exists()  # nothing half-written, nothing after it ran
    done = {u for u in DEPS if (out / f"{u}.json").exists()}
    report = run_plan(plan(out, done=done), fn, executor="slurm", slurm=options, log_dir=tmp_path / "logs")
    assert "c" in report.ran and (out / "e.json").exists()


# A driver in its own process (this one may already be connected to the session's cluster): two units that say
# which Ray node ran them. Functions of `__main__` travel to the workers by value (with `root`, not the worker's argv).
JOIN_DRIVER = """
import json, os, sys
from pathlib import Path
from lotterysite.precompute.executors import Unit, run_plan

root = Path(sys.argv[1])

def unit(unit_id):
    import ray
    node = ray.get_runtime_context().get_node_id()
    (root / f"{unit_id}.json").write_text(json.dumps({"node": node, "pid": os.getpid()}))

units = [Unit("a", "toy", (), str(root / "a.json")), Unit("b", "toy", ("a",), str(root / "b.json"))]
print(json.dumps(run_plan(units, unit, executor="ray").ran))
"""


def test_ray_joins_the_cluster_named_by_ray_address(ray_head, tmp_path):
    own = Path(tempfile.mkdtemp(prefix="rayown-"))  # where a cluster of the driver's own would put its session
    env = {**ray_head.env, "RAY_ADDRESS": ray_head.address, "RAY_TMPDIR": str(own)}
    try:
        done = subprocess.run([sys.executable, "-c", JOIN_DRIVER, str(tmp_path)], env=env, capture_output=True,
                              text=True, timeout=180)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads(done.stdout.splitlines()[-1]) == ["a", "b"]
        records = [json.loads((tmp_path / f"{u}.json").read_text()) for u in "ab"]
        assert {r["node"] for r in records} == {ray_head.node_id}  # the head's node, as its session folder names it
        for r in records:  # its workers log into the head's session
            assert list(ray_head.logs.glob(f"worker-*-{r['pid']}.out")), r
        assert not list(own.rglob("session_*"))  # and the driver started no cluster of its own
    finally:
        shutil.rmtree(own, ignore_errors=True)


def test_ray_address_without_a_cluster_fails_at_once_in_one_line():
    pytest.importorskip("ray")
    code = (
        "import sys\nfrom lotterysite.precompute.executors import ExecutorError, Unit, run_plan\n"
        "try:\n    run_plan([Unit('a', 'toy')], print, executor='ray', ray_address=sys.argv[1])\n"
        "except ExecutorError as e:\n    print(e)\n"
    )
    with socket.socket() as s:  # a port bound but not listening: refused, as a stopped cluster's is
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
        done = subprocess.run([sys.executable, "-c", code, address], capture_output=True, text=True, timeout=120)
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and f"no Ray cluster answers at {address}" in lines[0], done.stdout + done.stderr
    assert "ray start --head" in lines[0] and "RAY_ADDRESS" in lines[0]
