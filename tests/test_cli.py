"""The Click layer, through CliRunner."""

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
    result = runner.invoke(main, ["train", "--epochs", "1", "--device", "cpu", "--out", str(ckpt)])
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output and "Ankle boot" in result.output and ckpt.exists()
    result = runner.invoke(main, ["measure", str(ckpt), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "margin" in result.output and "all" in result.output


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
    save_checkpoint(rgb, create_model("lenet5", num_classes=10, in_channels=3, image_size=28), in_channels=3, image_size=28)
    result = CliRunner().invoke(main, ["measure", str(rgb), "--device", "cpu"])
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0
    assert "rgb.pt: field 'in_channels' is 3, but the data set's images have 1 channels" in result.output
