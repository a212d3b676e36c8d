"""The `lotterysite` command: a thin layer that parses, validates and calls one library function per command."""

from __future__ import annotations

from pathlib import Path

import click

from . import __version__


def _fail(e: Exception) -> click.ClickException:
    return click.ClickException(str(e))


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda: no CUDA device is visible; use --device cpu or auto")
    return torch.device(name)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lotterysite")
def main():
    """See how pruning changes a network: geometry of the logit layer's latent space, as a static site."""


@main.command("models")
def models_cmd():
    """List the registered architectures."""
    from .models import list_models

    for name in list_models():
        click.echo(name)
    click.echo("tv:<name>  (any torchvision classification model, randomly initialised or with weights = FILE)")
    click.echo("package.module:function, file.py:function  (your own model: a function returning an nn.Module)")


@main.command("datasets")
def datasets_cmd():
    """List the data sets and where each is looked for."""
    from .data import DATASETS

    for spec in DATASETS.values():
        click.echo(f"{spec.name:<14} {', '.join(spec.roots)}")
    click.echo(f"{'imagefolder':<14} root/train/<class>/* and root/test/<class>/* (recipe: root, image_size)")


@main.group("data")
def data_group():
    """Get data sets."""


@data_group.command("fetch")
@click.argument("name", type=click.Choice(["cifar10", "cifar100", "fashion_mnist", "mnist"]))
@click.option("--root", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to put it in [default: $LOTTERYSITE_DATA or ~/.cache/lotterysite/data].")  # fmt: skip
@click.option("--mirror", metavar="URL", help="Base URL serving the same file names instead of the official one.")
def data_fetch_cmd(name, root, mirror):
    """Download data set NAME's official archive, verify its MD5 and extract it where the loaders look."""
    from .data.fetch import fetch_dataset

    try:
        folder = fetch_dataset(name, root, mirror=mirror)
    except (ValueError, OSError) as e:
        raise _fail(e) from None
    hint = "" if root is None else f'; use it with root = "{folder}" in the recipe\'s [data] table'
    click.echo(f"{name}: ready in {folder}{hint}")


@main.command("train")
@click.option("--data", "data_name", default="fashion_mnist", show_default=True, help="Data set registry name.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), help="Folder holding the data set.")
@click.option("--arch", default="lenet5", show_default=True, help="Architecture registry name.")
@click.option("--epochs", type=click.IntRange(min=0), default=4, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("runs/dense.pt"), show_default=True,
              help="Checkpoint to write (atomically).")  # fmt: skip
def train_cmd(data_name, data_root, arch, epochs, seed, device, out):
    """Train a dense model, save its checkpoint and print its geometry summary on the test split."""
    from .config import DataConfig, ModelConfig, TrainConfig
    from .pipeline import train_dense

    try:
        result = train_dense(
            DataConfig(name=data_name, root=str(data_root) if data_root else None),
            ModelConfig(arch=arch),
            TrainConfig(epochs=epochs, seed=seed),
            out=out,
            device=_device(device),
        )
    except (ValueError, OSError) as e:
        raise _fail(e) from None
    click.echo(result.report)


@main.command("measure")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data", "data_name", default="fashion_mnist", show_default=True, help="Data set registry name.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), help="Folder holding the data set.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
def measure_cmd(checkpoint, data_name, data_root, device):
    """Print accuracy, angle, length and margin per class of CHECKPOINT on the test split."""
    from .config import DataConfig
    from .pipeline import measure_checkpoint

    try:
        click.echo(measure_checkpoint(checkpoint, DataConfig(name=data_name, root=str(data_root) if data_root else None),
                                      device=_device(device)))  # fmt: skip
    except (ValueError, OSError) as e:
        raise _fail(e) from None


@main.command("precompute")
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--store", type=click.Path(file_okay=False, path_type=Path), help="Store folder [default: store/<recipe name>].")
@click.option("--force", is_flag=True, help="Recompute everything instead of resuming finished work.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
def precompute_cmd(recipe, store, force, device):
    """Run the experiment RECIPE describes (train, prune, corrupt, measure) and write its Arrow store.

    Resumes where an interrupted run stopped; --force recomputes.
    """
    from .precompute import load_recipe, precompute

    try:
        parsed = load_recipe(recipe)
        result = precompute(parsed, store=store, force=force, device=_device(device))
    except (ValueError, OSError) as e:
        raise _fail(e) from None
    click.echo(result.report())


@main.command("info")
@click.argument("store", type=click.Path(file_okay=False, path_type=Path))
def info_cmd(store):
    """Print what the store STORE holds, checking every file."""
    from .store.info import describe

    try:
        click.echo(describe(store))
    except ValueError as e:
        raise _fail(e) from None


if __name__ == "__main__":
    main()
