"""The same recipe on the three executors: the same store, file for file; the plan; a worker that cannot see it.

Float results depend on the CPU's intra-op thread count (the order of a reduction), so every executor runs with
one torch thread here, as Ray's one-CPU tasks do: then the stores are bit-identical. Only the manifest differs
(run id, creation time, executor), which is why it is compared without those fields.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.ipc as ipc
import pytest
import torch
from click.testing import CliRunner

from lotterysite.cli import main
from lotterysite.errors import LotterysiteError
from lotterysite.precompute import parse_recipe, precompute
from lotterysite.precompute.executors import SlurmOptions
from lotterysite.precompute.run import UnitTask, format_plan, plan

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


@pytest.fixture(scope="module")
def local_store(recipe, tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        store = tmp_path_factory.mktemp("local") / "store"
        precompute(recipe, store=store, device="cpu", progress=False)
    finally:
        torch.set_num_threads(before)
    return store


def assert_same_store(a: Path, b: Path) -> None:
    names = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for name in names:
        if name.suffix == ".arrow":
            ta = ipc.open_file(str(a / name)).read_all()
            tb = ipc.open_file(str(b / name)).read_all()
            # Schema metadata carries the run id; the columns must be equal bit for bit.
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


def test_ray_writes_the_same_store(recipe, local_store, tmp_path, one_thread):
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    store = tmp_path / "store"
    result = precompute(recipe, store=store, progress=False, executor="ray")
    assert result.models == 2
    assert_same_store(local_store, store)
    again = precompute(recipe, store=store, progress=False, executor="ray")  # nothing left to do
    assert again.reused == {"data": 1, "models": 2, "evaluate": 2}


def test_slurm_local_writes_the_same_store(recipe, local_store, tmp_path, one_thread):
    pytest.importorskip("submitit")
    store = tmp_path / "store"
    precompute(recipe, store=store, progress=False, executor="slurm", slurm=SlurmOptions(cluster="local", time_min=10))
    assert_same_store(local_store, store)
    assert list((tmp_path / "store.work" / "logs").rglob("*_log.err"))  # logs under the store's work folder


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
    from lotterysite.precompute import load_recipe, run

    (tmp_path / "tinynet.py").write_text(TINYNET)
    (tmp_path / "recipe.toml").write_text(RECIPE_224.format(root=imagenet_folder))
    recipe = load_recipe(tmp_path / "recipe.toml")
    units = plan(recipe, store=tmp_path / "local")
    assert [u.kind for u in units] == ["dense", "evaluate", "pruned", "evaluate", "store"]  # no corruption units
    streamed, real = [], run.stream_results

    def stream_results(model, data, variants, **kw):
        streamed.append(list(variants))
        return real(model, data, variants, **kw)

    with monkeypatch.context() as m:  # the local executor runs the units in this process
        m.setattr(run, "stream_results", stream_results)
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
