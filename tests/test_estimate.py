"""`precompute --plan`'s estimates (precompute/estimate.py): against a real run of the same recipe, and by hand."""

import dataclasses
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from lotterysite.cli import main
from lotterysite.precompute import estimate as est
from lotterysite.precompute import parse_recipe, plan, precompute, run

# Small enough to run for real in a test (training dominates, as in a real study), with every kind of unit but the
# curse study: corruptions, dense training, pruning (by weights alone, Taylor's batches and MPT's epochs),
# retraining, evaluation and the store.
RECIPE = """
name = "estimate"
[data]
name = "fashion_mnist"
train_subset = 2048
eval_subset = 200
[[architectures]]
arch = "lenet5"
[architectures.train]
epochs = 2
[[pruning]]
method = "magnitude"
amounts = [0.5]
retrain_epochs = 1
[[pruning]]
method = "mpt"
amounts = [0.5]
mpt_epochs = 2
train_subset = 1024
[[pruning]]
method = "taylor"
amounts = [0.5]
taylor_batches = 6
[corruptions]
names = ["fog"]
severities = [2]
[ship]
samples_per_class = 2
severities = [2]
[curse]
enabled = false
"""


@pytest.fixture(scope="module")
def planned_and_run(tmp_path_factory):
    """The plan's estimates, then the real run of the same recipe right after, both on one CPU thread: a second
    thread on a machine shared with other jobs makes both slower by chance, not by the work."""
    recipe = parse_recipe(RECIPE, "estimate.toml")
    store = tmp_path_factory.mktemp("estimate") / "store"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        units, estimates, cal = run.plan(recipe, store=store, estimate_on="cpu")
        result = precompute(recipe, store=store, device="cpu", progress=False)
    finally:
        torch.set_num_threads(before)
    return units, estimates, cal, result


def test_the_estimate_is_within_2x_of_the_real_run(planned_and_run):
    units, estimates, cal, result = planned_and_run
    assert set(estimates) == {u.id for u in units} == set(result.units)  # every unit to run, each estimated
    estimated, real = sum(e.seconds for e in estimates.values()), sum(result.units.values())
    print({u: (round(estimates[u].seconds, 2), round(t, 2)) for u, t in result.units.items()}, estimated, real)
    assert real / 2 <= estimated <= real * 2, (estimated, real)
    # Training is most of the work: its estimate alone must hold too, and so must pruning's (with retraining).
    dense = "model/lenet5/dense"
    assert result.units[dense] / 2 <= estimates[dense].seconds <= result.units[dense] * 2
    pruning = [u.id for u in units if u.kind in ("pruned", "retrained")]
    assert len(pruning) == 4
    estimated, real = sum(estimates[u].seconds for u in pruning), sum(result.units[u] for u in pruning)
    assert real / 2 <= estimated <= real * 2, (estimated, real)
    assert cal.seconds < 30  # a short calibration


def test_the_plan_prints_each_units_time_memory_and_the_total(planned_and_run):
    units, estimates, cal, _ = planned_and_run
    text = plan.format_plan(units, estimates, cal)
    total = est.duration(sum(e.seconds for e in estimates.values()))
    assert text.splitlines()[0].startswith(f"{len(units)} units, 0 done, {len(units)} to run; estimated {total} on cpu")
    for u in units:
        row = next(line for line in text.splitlines() if f" {u.id} " in line)
        e = estimates[u.id]
        assert f"~{est.duration(e.seconds)}, peak {est.size(e.memory + e.host)}" in row  # on the CPU: one peak
    assert "DOES NOT FIT" not in text and "warning" not in text


def test_a_unit_that_does_not_fit_is_flagged(planned_and_run):
    units, estimates, cal, _ = planned_and_run
    dense = estimates["model/lenet5/dense"]
    need = dense.memory + dense.host  # on the CPU, device and host memory are one
    # As much memory free as the dense training needs, less one byte: that unit (and the larger ones) is flagged.
    small = dataclasses.replace(cal, available=need - 1, ram=need - 1)
    store = Path(next(u.output for u in units if u.kind == "store")).parent
    runner = run._Runner(parse_recipe(RECIPE, "estimate.toml"), store, force=False, device=torch.device("cpu"),
                         progress=False)  # fmt: skip
    again = est.estimate(runner, units, small)
    flagged = {u for u, e in again.items() if e.fits is False}
    assert "model/lenet5/dense" in flagged and "corruption/fog-2" not in flagged
    assert flagged == {u for u, e in estimates.items() if e.memory + e.host >= need}
    text = plan.format_plan(units, again, small)
    assert "[todo] model/lenet5/dense" in text and "DOES NOT FIT" in text
    assert f"warning: model/lenet5/dense needs about {est.size(need)} of RAM, {est.size(need - 1)} is free" in text
    # On CUDA the weights and activations must fit the device, the images and results the RAM: each its own.
    gpu = dataclasses.replace(cal, device=torch.device("cuda"), available=dense.memory - 1, ram=10**12)
    on_gpu = est.estimate(runner, units, gpu)
    assert on_gpu["model/lenet5/dense"].fits is False and on_gpu["corruption/fog-2"].fits is True
    text = plan.format_plan(units, on_gpu, gpu)
    assert f"needs about {est.size(dense.memory)} of cuda memory" in text and "peak " in text and " RAM" in text


def test_training_memory_counts_weights_gradients_optimizer_state_and_activations(planned_and_run):
    units, estimates, cal, _ = planned_and_run
    from lotterysite.models import create_model

    model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    params = sum(p.numel() for p in model.parameters()) * 4
    a = cal.archs["lenet5"]
    assert a.params == params and a.optimizer_states == 2  # the recipe's AdamW: two moments per weight
    assert estimates["model/lenet5/dense"].memory == params * 4 + a.activations * 128
    assert estimates["model/lenet5/dense"].host == 0


def test_activation_bytes_by_hand():
    # Linear(4 -> 3), ReLU, Linear(3 -> 2): 3 + 3 + 2 float32 outputs per image.
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    assert est._activation_bytes(model, torch.zeros(1, 4)) == (3 + 3 + 2) * 4


def test_line_separates_overhead_from_the_per_item_cost():
    # 40 ms once, 20 ms per item: the line through 1 and 5 items recovers both (sleep only overshoots).
    line = est.line(lambda n: time.sleep(0.04 + 0.02 * n), 1, 5, torch.device("cpu"))
    assert line.slope == pytest.approx(0.02, abs=0.01) and line.overhead == pytest.approx(0.04, abs=0.02)
    assert line.at(100) == pytest.approx(2.04, rel=0.3)


def test_durations_read_as_people_write_them():
    assert [est.duration(s) for s in (3.24, 250, 7500)] == ["3.2 s", "4 min 10 s", "2 h 05 min"]


def test_no_estimate_lists_units_without_calibrating_and_needs_plan(tmp_path, monkeypatch):
    (tmp_path / "r.toml").write_text(RECIPE)
    called = []
    monkeypatch.setattr(est, "calibrate", lambda *a, **k: called.append(1))
    out = CliRunner().invoke(main, ["precompute", str(tmp_path / "r.toml"), "--store", str(tmp_path / "s"),
                                    "--plan", "--no-estimate"])  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "to run" in out.output and "estimated" not in out.output and not called
    out = CliRunner().invoke(main, ["precompute", str(tmp_path / "r.toml"), "--no-estimate"])
    assert out.exit_code == 2 and "--no-estimate: only used with --plan" in out.output


def test_help_says_the_plan_builds_and_runs_the_models():
    out = CliRunner().invoke(main, ["precompute", "--help"]).output
    assert "builds every model for real" in " ".join(out.split()) and "--no-estimate" in out
