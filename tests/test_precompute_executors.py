"""The same recipe on the three executors: the same store, file for file; the plan; a worker that cannot see it.

Float results depend on the CPU's intra-op thread count (the order of a reduction), so every executor runs with
one torch thread here, as Ray's one-CPU tasks do: then the stores are bit-identical. Only the manifest differs
(run id, creation time, executor), which is why it is compared without those fields.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from contextlib import contextmanager, redirect_stderr
from io import StringIO
from pathlib import Path
from types import SimpleNamespace

import pyarrow.ipc as ipc
import pytest
import torch
from click.testing import CliRunner
from tqdm.auto import tqdm

from lotterysite import training
from lotterysite.cli import main
from lotterysite.errors import LotterysiteError
from lotterysite.precompute import parse_recipe, precompute, run
from lotterysite.precompute.executors import SlurmOptions
from lotterysite.precompute.plan import format_plan
from lotterysite.precompute.run import UnitTask, plan
from lotterysite.pruning import methods as pruning_methods
from lotterysite.store.schema import MEASURED

RECIPE = """
name = "executors"
[data]
name = "fashion_mnist"
train_subset = 600
eval_subset = 60
[[architectures]]
arch = "lenet5"
[architectures.train]
epochs = 1
[[pruning]]
method = "magnitude"
amounts = [0.5]
[corruptions]
names = ["fog"]
severities = [1]
[ship]
samples_per_class = 2
severities = [1]
[curse]
enabled = false
"""


@pytest.fixture(scope="module")
def recipe():
    return parse_recipe(RECIPE, "executors.toml")


@pytest.fixture()
def one_thread(monkeypatch):
    # Subprocesses (submitit's local jobs) inherit the variable; this process takes the setting directly.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@contextmanager
def recorded_bars():
    """Every progress bar the driver makes (the executors', the stages', training's, pruning's), kept to inspect;
    tqdm still draws them."""
    made: list[tqdm] = []

    class Recorded(tqdm):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            self.shown = not self.disable  # close() disables every bar: keep whether it was drawn
            made.append(self)

    with pytest.MonkeyPatch.context() as m:
        for module in (run, training, pruning_methods):
            m.setattr(module, "tqdm", Recorded)
        yield made


def assert_one_units_bar(made: list[tqdm], stderr: str, pending: int) -> None:
    """One bar over the units stays: its total is the plan's pending units and it reaches it; any other bar (the
    local executor's stages, drawn under it) is gone when done."""
    shown = [b for b in made if b.shown]
    units = [b for b in shown if b.desc == "units"]
    assert len(units) == 1 and units[0].total == pending and units[0].n == pending, [(b.desc, b.n) for b in shown]
    assert [b.desc for b in shown if b.leave] == ["units"]
    # What the terminal got: the last thing drawn is that bar, full.
    drawn = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", seg).strip() for seg in re.split(r"[\r\n]", stderr)]
    last = [seg for seg in drawn if seg][-1]
    assert re.match(rf"units: 100%\|.*\| {pending}/{pending} ", last), last


@pytest.fixture(scope="module")
def local_run(recipe, tmp_path_factory):
    """The local executor's store, written with progress on (its bars recorded) and one torch thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        store = tmp_path_factory.mktemp("local") / "store"
        pending = sum(not u.done for u in plan(recipe, store=store))
        with recorded_bars() as made, redirect_stderr(StringIO()) as err:
            precompute(recipe, store=store, device="cpu", progress=True)
    finally:
        torch.set_num_threads(before)
    return SimpleNamespace(store=store, bars=made, stderr=err.getvalue(), pending=pending)


@pytest.fixture(scope="module")
def local_store(local_run):
    return local_run.store


@pytest.fixture()
def driver_never_initialises_cuda(monkeypatch):
    """Fails the test if this process (the driver) initialises CUDA, as it would on a GPU node: CUDA is said to be
    available, and every CUDA initialisation (a tensor made on the device included) goes through
    `torch.cuda._lazy_init`, which records it and fails. `is_available()` and `device_count()` do not initialise."""
    calls: list[str] = []

    def record(*args, **kw):
        calls.append("".join(traceback.format_stack(limit=12)))
        raise RuntimeError("the driver initialised CUDA")

    already = torch.cuda.is_initialized()  # then there is nothing left to catch (a CUDA test ran before)
    monkeypatch.setattr(torch.cuda, "_lazy_init", record)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # code that checks first would use the card
    yield calls
    assert already or not calls, calls[0]


def assert_same_store(a: Path, b: Path) -> None:
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in names:
        if name.suffix == ".arrow":
            ta = ipc.open_file(str(a / name)).read_all()
            tb = ipc.open_file(str(b / name)).read_all()
            # Schema metadata carries the run id; the columns must be equal bit for bit (but measured wall times).
            if name.name == "models.arrow":
                ta, tb = ta.drop_columns(list(MEASURED)), tb.drop_columns(list(MEASURED))
            assert ta.replace_schema_metadata(None).equals(tb.replace_schema_metadata(None)), name
        elif name.name == "manifest.json":
            ma, mb = (json.loads((s / name).read_text()) for s in (a, b))
            for m in (ma, mb):
                for k in ("run_id", "created"):
                    m.pop(k)
            assert ma.keys() == mb.keys()
            assert {k: v["rows"] for k, v in ma["files"].items()} == {k: v["rows"] for k, v in mb["files"].items()}
        else:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_plan_lists_units_dependencies_and_done(recipe, local_store):
    units = plan(recipe, store=local_store)
    kinds = [u.kind for u in units]
    assert kinds == ["corruptions", "dense", "evaluate", "pruned", "evaluate", "store"]
    by_id = {u.id: u for u in units}
    assert by_id["model/lenet5/magnitude/0.5"].deps == ("model/lenet5/dense",)
    assert set(by_id["store"].deps) == {"evaluate/lenet5/dense", "evaluate/lenet5/magnitude/0.5"}
    assert all(u.done for u in units)  # the finished store: nothing to run
    out = CliRunner().invoke(main, ["precompute", "--plan", "--store", str(local_store), _recipe_file(local_store)])
    assert out.exit_code == 0, out.output
    assert "6 units, 6 done, 0 to run" in out.output and "[done] model/lenet5/dense" in out.output
    fresh = plan(recipe, store=local_store.parent / "nothing-yet")
    assert not any(u.done for u in fresh)
    assert "6 units, 0 done, 6 to run" in format_plan(fresh)


def _recipe_file(store: Path) -> str:
    path = store.parent / "executors.toml"
    path.write_text(RECIPE)
    return str(path)


def test_the_cuda_watch_sees_an_initialisation(driver_never_initialises_cuda):
    if torch.cuda.is_initialized():
        pytest.skip("CUDA is initialised already in this process: nothing left for the watch to see")
    with pytest.raises(RuntimeError, match="the driver initialised CUDA"):
        torch.zeros(1, device="cuda")  # what a driver that picked "cuda" and moved a model there would do
    assert len(driver_never_initialises_cuda) == 1
    driver_never_initialises_cuda.clear()


def test_local_progress_is_one_bar_over_units(local_run):
    assert local_run.pending == 6
    assert_one_units_bar(local_run.bars, local_run.stderr, local_run.pending)
    assert {b.desc for b in local_run.bars} > {"units"}  # stages drew their own bars under it, then went


def test_ray_writes_the_same_store(recipe, local_store, tmp_path, one_thread, driver_never_initialises_cuda, capsys):
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    store = tmp_path / "store"
    pending = sum(not u.done for u in plan(recipe, store=store))
    with recorded_bars() as made:
        result = precompute(recipe, store=store, progress=True, executor="ray")
    assert result.models == 2
    assert_one_units_bar(made, capsys.readouterr().err, pending)
    assert_same_store(local_store, store)
    again = precompute(recipe, store=store, progress=False, executor="ray")  # nothing left to do
    assert again.reused == {"data": 1, "models": 2, "evaluate": 2}


def test_cli_joins_the_ray_cluster_at_ray_address(ray_head, local_store, tmp_path):
    """`lotterysite precompute --executor ray --ray-address` in its own process, on a cluster `ray start` made."""
    own = Path(tempfile.mkdtemp(prefix="rayown-"))  # where a cluster of the driver's own would put its session
    env = {k: v for k, v in ray_head.env.items() if k != "RAY_ADDRESS"}
    env.update(RAY_TMPDIR=str(own), OMP_NUM_THREADS="1")
    store = tmp_path / "store"
    args = ["precompute", _recipe_file(store), "--store", str(store), "--executor", "ray", "--ray-address",
            ray_head.address]  # fmt: skip
    try:
        driver = subprocess.Popen([sys.executable, "-m", "lotterysite.cli", *args], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        out, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, err[-3000:]
        assert_same_store(local_store, store)
        assert re.search(r"units: 100%\|.*\| 6/6 ", err)  # one bar over the six units, full
        # The driver connected to the head's node (its log lies in the head's session) and started no cluster.
        assert list(ray_head.logs.glob(f"python-core-driver-*_{driver.pid}.log"))
        assert list(ray_head.logs.glob("python-core-worker-*.log"))
        assert not list(own.rglob("session_*"))
    finally:
        shutil.rmtree(own, ignore_errors=True)


def test_slurm_local_writes_the_same_store(recipe, local_store, tmp_path, one_thread, driver_never_initialises_cuda,
                                          capsys):  # fmt: skip
    pytest.importorskip("submitit")
    store = tmp_path / "store"
    pending = sum(not u.done for u in plan(recipe, store=store))
    with recorded_bars() as made:
        precompute(recipe, store=store, progress=True, executor="slurm",
                   slurm=SlurmOptions(cluster="local", time_min=10))  # fmt: skip
    assert_one_units_bar(made, capsys.readouterr().err, pending)
    assert_same_store(local_store, store)
    assert list((tmp_path / "store.work" / "logs").rglob("*_log.err"))  # logs under the store's work folder


FAKE_SBATCH = """#!/bin/sh
# Keeps the job script it was given, then refuses it as a Slurm without that partition would.
cp "$1" "$(dirname "$0")/submitted.sh"
echo "sbatch: error: invalid partition specified: gpu-a100" >&2
exit 1
"""


def test_slurm_options_reach_the_job_script(local_store, tmp_path, monkeypatch):
    """From the command line to the #SBATCH lines submitit writes, with `srun` and `sbatch` on the PATH (Slurm
    present, so submitit picks its Slurm executor); the refusal of sbatch comes back as one line."""
    pytest.importorskip("submitit")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "sbatch").write_text(FAKE_SBATCH)
    (fake / "srun").write_text("#!/bin/sh\nexit 1\n")
    for tool in ("sbatch", "srun"):
        (fake / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    store = tmp_path / "store"
    out = CliRunner().invoke(main, [
        "precompute", _recipe_file(local_store), "--store", str(store), "--executor", "slurm",
        "--slurm-partition", "gpu-a100", "--slurm-gpus-per-task", "2", "--slurm-time", "30",
        "--slurm-max-parallel", "1",
    ])  # fmt: skip
    assert out.exit_code == 1, out.output
    error = out.output.strip().splitlines()[-1]
    assert error.startswith("Error: submitting 2 units (first: corruption/fog-1) to slurm failed: sbatch: error: "
                            "invalid partition specified: gpu-a100; logs: "), error  # fmt: skip
    script = (fake / "submitted.sh").read_text()
    for line in ("--partition=gpu-a100", "--gpus-per-node=2", "--time=30", "--array=0-1%1"):
        assert f"#SBATCH {line}\n" in script, script
    logs = store.parent / "store.work" / "logs"
    assert f"#SBATCH --output={logs}/" in script and f"#SBATCH --error={logs}/" in script


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slurm-time", "-5"], "Invalid value for '--slurm-time': -5 is not in the range x>=1."),
        (["--slurm-time", "0"], "Invalid value for '--slurm-time': 0 is not in the range x>=1."),
        (["--slurm-max-parallel", "0"], "Invalid value for '--slurm-max-parallel': 0 is not in the range x>=1."),
        (["--slurm-gpus-per-task", "-1"], "Invalid value for '--slurm-gpus-per-task': -1 is not in the range x>=0."),
        (["--slurm-time", "ten"], "Invalid value for '--slurm-time': 'ten' is not a valid integer"),
    ],
)
def test_bad_slurm_values_are_one_line_errors(tmp_path, args, message):
    recipe = tmp_path / "executors.toml"
    recipe.write_text(RECIPE)
    out = CliRunner().invoke(main, ["precompute", str(recipe), "--executor", "slurm", *args])
    assert out.exit_code == 2
    errors = [ln for ln in out.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: {message}"), out.output
    assert not (tmp_path / "store").exists()


def test_an_option_for_another_executor_is_refused(tmp_path, monkeypatch):
    recipe = tmp_path / "executors.toml"
    recipe.write_text(RECIPE)
    out = CliRunner().invoke(main, ["precompute", str(recipe), "--slurm-partition", "gpu"])
    assert out.exit_code == 2
    assert "Error: --slurm-partition: only used with --executor slurm (this run: --executor local)" in out.output
    out = CliRunner().invoke(main, ["precompute", str(recipe), "--executor", "slurm", "--ray-address", "h:6379"])
    assert out.exit_code == 2 and "Error: --ray-address: only used with --executor ray" in out.output
    # RAY_ADDRESS in the environment (a Ray node's shell) is no mistake: it reaches precompute, as the flag does.
    seen = {}
    monkeypatch.setattr("lotterysite.precompute.precompute", lambda recipe, **kw: seen.update(kw) or _Done())
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    for executor in ("local", "ray"):
        out = CliRunner().invoke(main, ["precompute", str(recipe), "--executor", executor])
        assert out.exit_code == 0, out.output
        assert seen["ray_address"] == "10.0.0.1:6379" and seen["executor"] == executor


class _Done:
    def report(self) -> str:
        return "done"


def test_a_worker_that_cannot_see_the_store_says_so(recipe, tmp_path):
    task = UnitTask(recipe, tmp_path / "elsewhere", run_id="r", inputs={}, plan_id="p", device="cpu", force=False,
                    progress=False)  # fmt: skip
    with pytest.raises(LotterysiteError, match="cannot see the store; put the store on a filesystem every worker"):
        task("store")


# A 224 px class-folder study: its evaluation streams (corruptions made per batch inside the evaluate unit, no
# corruption units, no cached variants), on every executor, to the same store.
TINYNET = """
from torch import nn

class TinyNet(nn.Module):
    def __init__(self, num_classes, width):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, width, 16, stride=16), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.body(x))

def build(num_classes, width=4):
    return TinyNet(num_classes, width)
"""

RECIPE_224 = """
name = "executors-224"
batch_size = 8
[data]
name = "imagefolder"
root = "{root}"
image_size = 224
[[architectures]]
arch = "tinynet.py:build"
[architectures.train]
epochs = 1
batch_size = 8
[[pruning]]
method = "magnitude"
amounts = [0.5]
[corruptions]
names = ["contrast"]
severities = [2]
params = "imagenet"
[ship]
samples_per_class = 1
severities = [2]
[curse]
enabled = false
"""


def test_class_folder_study_streams_on_every_executor(imagenet_folder, tmp_path, one_thread, monkeypatch):
    from lotterysite.precompute import load_recipe
    from lotterysite.precompute import units as unit_work

    (tmp_path / "tinynet.py").write_text(TINYNET)
    (tmp_path / "recipe.toml").write_text(RECIPE_224.format(root=imagenet_folder))
    recipe = load_recipe(tmp_path / "recipe.toml")
    units = plan(recipe, store=tmp_path / "local")
    assert [u.kind for u in units] == ["dense", "evaluate", "pruned", "evaluate", "store"]  # no corruption units
    streamed, real = [], unit_work.stream_results

    def stream_results(model, data, variants, **kw):
        streamed.append(list(variants))
        return real(model, data, variants, **kw)

    with monkeypatch.context() as m:  # the local executor runs the units in this process
        m.setattr(unit_work, "stream_results", stream_results)
        precompute(recipe, store=tmp_path / "local", device="cpu", progress=False)
    assert streamed == [[("clean", 0), ("contrast", 2)]] * 2  # both evaluate units streamed
    assert not (tmp_path / "local.work" / "corruptions").exists()  # nothing cached

    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    precompute(recipe, store=tmp_path / "ray", progress=False, executor="ray")
    assert_same_store(tmp_path / "local", tmp_path / "ray")
    pytest.importorskip("submitit")
    slurm = SlurmOptions(cluster="local", time_min=10)
    precompute(recipe, store=tmp_path / "slurm", progress=False, executor="slurm", slurm=slurm)
    assert_same_store(tmp_path / "local", tmp_path / "slurm")
    for store in ("ray", "slurm"):
        assert not (tmp_path / f"{store}.work" / "corruptions").exists()
