"""The `lotterysite` command: a thin layer that parses, validates and calls one library function per command."""

from __future__ import annotations

from pathlib import Path

import click

from . import __version__
from .errors import LotterysiteError

# What the user must fix is printed as one line; anything else is a bug and keeps its traceback.
USER_ERRORS = (LotterysiteError, ValueError, OSError)


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
    click.echo("tv:<name>  (any torchvision classification model, randomly initialised)")


@main.command("datasets")
def datasets_cmd():
    """List the data sets and where each is looked for."""
    from .data import DATASETS

    for spec in DATASETS.values():
        click.echo(f"{spec.name:<14} {', '.join(spec.roots)}")


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

    if out.is_symlink() or (out.exists() and not out.is_file()):
        raise click.ClickException(f"--out {out}: exists and is not a regular file; refusing to replace it, "
                                   "give a new path or a regular file")  # fmt: skip
    try:
        result = train_dense(
            DataConfig(name=data_name, root=str(data_root) if data_root else None),
            ModelConfig(arch=arch),
            TrainConfig(epochs=epochs, seed=seed),
            out=out,
            device=_device(device),
        )
    except USER_ERRORS as e:
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
    except USER_ERRORS as e:
        raise _fail(e) from None


@main.command("precompute")
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--store", type=click.Path(file_okay=False, path_type=Path), help="Store folder [default: store/<recipe name>].")
@click.option("--force", is_flag=True, help="Recompute everything instead of resuming finished work.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--wait", is_flag=True, help="If another run holds the store, wait for it instead of exiting.")
@click.option("--plan", "show_plan", is_flag=True, help="Print the units of work, their dependencies and which are done; run nothing.")
@click.option("--executor", type=click.Choice(["local", "ray", "slurm"]), default="local", show_default=True,
              help="Where units run: this process, Ray tasks, or Slurm job arrays (submitit; local subprocesses without Slurm).")
@click.option("--ray-address", envvar="RAY_ADDRESS", help="Ray cluster to join [default: $RAY_ADDRESS, else a local one].")
@click.option("--slurm-partition", help="Slurm partition of the job arrays.")
@click.option("--slurm-gpus-per-task", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--slurm-time", type=click.IntRange(min=1), default=240, show_default=True, help="Minutes per job.")
@click.option("--slurm-max-parallel", type=click.IntRange(min=1), default=64, show_default=True, help="Running jobs per array.")
def precompute_cmd(recipe, store, force, device, wait, show_plan, executor, ray_address, slurm_partition,
                   slurm_gpus_per_task, slurm_time, slurm_max_parallel):  # fmt: skip
    """Run the experiment RECIPE describes (train, prune, corrupt, measure) and write its Arrow store.

    The study is a plan of units (each model, its evaluation, the corruptions, the store), each writing one file:
    finished units are skipped, so an interrupted run resumes; --force recomputes. The new store replaces the old
    one only when whole; one run per store at a time. With --executor ray or slurm the store must be on a
    filesystem every worker sees.
    """
    from .precompute import load_recipe, precompute
    from .precompute.executors import SlurmOptions
    from .precompute.run import format_plan, plan

    try:
        parsed = load_recipe(recipe)
        if show_plan:
            click.echo(format_plan(plan(parsed, store=store, force=force)))
            return
        # Ray and Slurm workers choose their own device ("auto"): the driver never initialises CUDA for them.
        dev = None if executor != "local" and device == "auto" else _device(device)
        slurm = SlurmOptions(partition=slurm_partition, gpus_per_task=slurm_gpus_per_task, time_min=slurm_time,
                             max_parallel=slurm_max_parallel)  # fmt: skip
        result = precompute(parsed, store=store, force=force, device=dev, wait=wait, executor=executor,
                            ray_address=ray_address, slurm=slurm)  # fmt: skip
    except USER_ERRORS as e:
        raise _fail(e) from None
    click.echo(result.report())


@main.command("info")
@click.argument("store", type=click.Path(file_okay=False, path_type=Path))
def info_cmd(store):
    """Print what the store STORE holds, checking every file."""
    from .store.info import describe

    try:
        click.echo(describe(store))
    except USER_ERRORS as e:
        raise _fail(e) from None


if __name__ == "__main__":
    main()
