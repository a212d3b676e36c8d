"""The Click layer, through CliRunner."""

import re
from pathlib import Path

from click.testing import CliRunner

from lotterysite.cli import main


def test_models_and_datasets_list():
    runner = CliRunner()
    out = runner.invoke(main, ["models"]).output
    assert "lenet5" in out and "tv:<name>" in out
    out = runner.invoke(main, ["datasets"]).output
    assert "fashion_mnist" in out and "/usr/share/datasets/fashion-mnist" in out


def test_train_then_measure(tmp_path):
    runner = CliRunner()
    ckpt = tmp_path / "dense.pt"
    # Subsets keep it quick; the subsets reach the data (the report counts the test images).
    args = ["train", "--epochs", "1", "--train-subset", "3000", "--test-subset", "500", "--device", "cpu"]
    result = runner.invoke(main, [*args, "--out", str(ckpt)])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output and "Ankle boot" in result.output and ckpt.exists()
    result = runner.invoke(main, ["measure", str(ckpt), "--test-subset", "500", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "margin" in result.output and re.search(r"^all\s+500\s", result.output, re.M)


def test_errors_are_one_line_with_the_fix(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--arch", "vgg99", "--out", str(tmp_path / "x.pt")])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "known architectures: alexnet" in result.output
    result = runner.invoke(main, ["train", "--data", "cifar10", "--out", str(tmp_path / "x.pt")])
    assert result.exit_code == 1 and "not found (looked in" in result.output
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    result = runner.invoke(main, ["measure", str(bad)])
    assert result.exit_code == 1 and "bad.pt: not a readable checkpoint" in result.output


def test_only_user_errors_are_one_line(monkeypatch, tmp_path):
    from lotterysite.errors import LotterysiteError
    from lotterysite.site import render

    (tmp_path / "store").mkdir()
    args = ["render", str(tmp_path / "store"), str(tmp_path)]

    def user_error(*a, **k):
        raise LotterysiteError("store/x/manifest.json: missing\nrerun `lotterysite precompute RECIPE`")

    monkeypatch.setattr(render, "render_store", user_error)
    result = CliRunner().invoke(main, args)
    assert (
        result.exit_code == 1
        and result.output == "Error: store/x/manifest.json: missing rerun `lotterysite precompute RECIPE`\n"
    )

    def bug(*a, **k):
        raise KeyError("models")

    monkeypatch.setattr(render, "render_store", bug)
    result = CliRunner().invoke(main, args)
    # An internal bug is not dressed up as a user error: the exception, and with it the traceback, gets through.
    assert isinstance(result.exception, KeyError) and "Error:" not in result.output


def test_every_user_error_class_is_a_lotterysite_error():
    from lotterysite.checkpoint import CheckpointError
    from lotterysite.data import DataError
    from lotterysite.errors import LotterysiteError
    from lotterysite.precompute import RecipeError
    from lotterysite.site.render import RenderError
    from lotterysite.store import StoreError

    for cls in (CheckpointError, DataError, RecipeError, RenderError, StoreError):
        assert issubclass(cls, LotterysiteError), cls


def test_train_out_refuses_a_device_node_or_folder(tmp_path):
    result = CliRunner().invoke(main, ["train", "--epochs", "0", "--out", "/dev/null"])
    assert result.exit_code == 1 and "--out /dev/null: exists and is not a regular file" in result.output
    assert Path("/dev/null").is_char_device()
    result = CliRunner().invoke(main, ["train", "--epochs", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "is a directory" in result.output


def test_measure_refuses_a_checkpoint_for_other_images(tmp_path):
    from lotterysite.checkpoint import save_checkpoint
    from lotterysite.models import create_model

    rgb = tmp_path / "rgb.pt"
    save_checkpoint(
        rgb, create_model("lenet5", num_classes=10, in_channels=3, image_size=28), in_channels=3, image_size=28
    )
    result = CliRunner().invoke(main, ["measure", str(rgb), "--device", "cpu"])
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0
    assert "rgb.pt: field 'in_channels' is 3, but the data set's images have 1 channels" in result.output


def _shipped_counts_from_samples(store: Path, classes: list[str]) -> dict[str, tuple[int, int, int, int]]:
    """Per class (shipped, in the sample, extra exemplar rows, exemplars), counted from samples.arrow with pyarrow
    alone."""
    from pyarrow import ipc

    rows = ipc.open_file(str(store / "samples.arrow")).read_all().to_pylist()
    out = {}
    for j, name in enumerate(classes):
        mine = [r for r in rows if r["label"] == j]
        pies = sum(bool(r["pie"]) for r in mine)
        sample = sum(bool(r["in_sample"]) for r in mine)
        out[name] = (len(mine), sample, len(mine) - sample, pies)
    return out


def test_info_prints_the_effective_shipped_numbers_per_class(tmp_path, make_store):
    import json
    import re

    store = make_store(tmp_path / "store")
    manifest = json.loads((store / "manifest.json").read_text())
    classes = manifest["dataset"]["classes"]
    result = CliRunner().invoke(main, ["info", str(store)])
    assert result.exit_code == 0, result.output
    expected = _shipped_counts_from_samples(store, classes)
    total = sum(v[0] for v in expected.values())
    n_eval = manifest["dataset"]["n_eval"]
    # The fixture's 400 images fit the row limit: the whole evaluation set ships.
    assert total == n_eval and f"shipped  {total} of {n_eval} evaluated samples: the whole evaluation set" in (
        result.output
    )
    pies = sum(v[3] for v in expected.values())
    assert f"; {pies} of {pies} exemplars shipped" in result.output
    evaluated = manifest["dataset"]["shipping"]["evaluated_per_class"]
    for (name, (n, s, x, e)), n_eval_c in zip(expected.items(), evaluated, strict=True):
        assert re.search(rf"^    {re.escape(name)} +{n_eval_c} +{n} \({s} \+ {x}\) {e}$", result.output, re.M), name
    assert "not cut: ship.max_rows_per_model = 50000" in result.output
    assert "cut by" not in result.output
