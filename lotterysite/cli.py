"""The `lotterysite` command: a thin layer that parses, validates and calls one library function per command."""

from __future__ import annotations

from pathlib import Path

import click

from . import __version__
from .errors import LotterysiteError, escape_controls


class _Group(click.Group):
    """Prints a LotterysiteError (the user's to fix) as one line; any other exception keeps its traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LotterysiteError as e:
            # One line, and a name from a store or a recipe (ESC, OSC) printed as text, never obeyed.
            raise click.ClickException(escape_controls(" ".join(str(e).split()))) from None


def _check_arch(ctx, param, name: str) -> str:
    from .models import is_model, list_models

    if not is_model(name):
        raise click.ClickException(
            f"--arch {name}: unknown architecture; known architectures: "
            f"{', '.join(list_models())} (or tv:<name> for a torchvision model)"
        )
    if name.startswith("tv:"):
        import torchvision

        known = torchvision.models.list_models(module=torchvision.models)
        if name[3:] not in known:
            raise click.ClickException(f"--arch {name}: unknown torchvision model; known: {', '.join(known)}")
    return name


def _device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda: no CUDA device is visible; use --device cpu or auto")
    return torch.device(name)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
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
        raise click.ClickException(str(e)) from None
    hint = "" if root is None else f'; use it with root = "{folder}" in the recipe\'s [data] table'
    click.echo(f"{name}: ready in {folder}{hint}")


@main.command("train")
@click.option("--data", "data_name", default="fashion_mnist", show_default=True, help="Data set registry name.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), help="Folder holding the data set.")
@click.option(
    "--arch",
    default="lenet5",
    show_default=True,
    callback=_check_arch,
    help="Architecture registry name (`lotterysite models` lists them).",
)
@click.option("--epochs", type=click.IntRange(min=0), default=4, show_default=True)
@click.option(
    "--train-subset", type=click.IntRange(min=1), help="Train on the first N training images only [default: all]."
)
@click.option(
    "--test-subset", type=click.IntRange(min=1), help="Measure on the first N test images only [default: all]."
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("runs/dense.pt"),
    show_default=True,
    help="Checkpoint to write (atomically).",
)
def train_cmd(data_name, data_root, arch, epochs, train_subset, test_subset, seed, device, out):
    """Train a dense model, save its checkpoint and print its geometry summary on the test split."""
    from .config import DataConfig, ModelConfig, TrainConfig
    from .train_measure import train_dense

    if out.is_symlink() or (out.exists() and not out.is_file()):
        raise click.ClickException(f"--out {out}: exists and is not a regular file; refusing to replace it, "
                                   "give a new path or a regular file")  # fmt: skip
    result = train_dense(
        DataConfig(
            name=data_name,
            root=str(data_root) if data_root else None,
            train_subset=train_subset,
            test_subset=test_subset,
        ),
        ModelConfig(arch=arch),
        TrainConfig(epochs=epochs, seed=seed),
        out=out,
        device=_device(device),
    )
    click.echo(result.report)


@main.command("measure")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--data", "data_name", default="fashion_mnist", show_default=True, help="Data set registry name.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path), help="Folder holding the data set.")
@click.option(
    "--test-subset", type=click.IntRange(min=1), help="Measure on the first N test images only [default: all]."
)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
def measure_cmd(checkpoint, data_name, data_root, test_subset, device):
    """Print accuracy, angle, length and margin per class of CHECKPOINT on the test split."""
    from .config import DataConfig
    from .train_measure import measure_checkpoint

    data_cfg = DataConfig(name=data_name, root=str(data_root) if data_root else None, test_subset=test_subset)
    click.echo(measure_checkpoint(checkpoint, data_cfg, device=_device(device)))


def _only_with_executor(executor: str, wanted: str, names: list[str]) -> None:
    """An option typed for another executor would be silently ignored: refuse it. RAY_ADDRESS in the environment
    (a Ray node's shell sets it) is no mistake, so only options given on the command line count."""
    ctx = click.get_current_context()
    given = [n for n in names if ctx.get_parameter_source(n) == click.core.ParameterSource.COMMANDLINE]
    if given and executor != wanted:
        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise click.UsageError(f"{flags}: only used with --executor {wanted} (this run: --executor {executor}); "
                               f"add --executor {wanted} or drop {flags}")  # fmt: skip


@main.command("precompute")
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--store", type=click.Path(file_okay=False, path_type=Path), help="Store folder [default: store/<recipe name>]."
)
@click.option("--force", is_flag=True, help="Recompute everything instead of resuming finished work.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--wait", is_flag=True, help="If another run holds the store, wait for it instead of exiting.")
@click.option(
    "--plan",
    "show_plan",
    is_flag=True,
    help="Print the units of work, their dependencies and which are done, with each unit's estimated time and peak "
    "memory on --device from a short calibration (a few batches of the recipe's own models and data); train nothing "
    "to the end, write nothing to the store.",
)
@click.option(
    "--no-estimate", is_flag=True, help="With --plan: list the units without calibrating (builds no model for real)."
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray", "slurm"]),
    default="local",
    show_default=True,
    help="Where units run: this process, Ray tasks, or Slurm job arrays (submitit; local subprocesses without Slurm).",
)
@click.option(
    "--ray-address", envvar="RAY_ADDRESS", help="Ray cluster to join [default: $RAY_ADDRESS, else a local one]."
)
@click.option("--slurm-partition", help="Slurm partition of the job arrays.")
@click.option("--slurm-gpus-per-task", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--slurm-time", type=click.IntRange(min=1), default=240, show_default=True, help="Minutes per job.")
@click.option(
    "--slurm-max-parallel", type=click.IntRange(min=1), default=64, show_default=True, help="Running jobs per array."
)
def precompute_cmd(recipe, store, force, device, wait, show_plan, no_estimate, executor, ray_address, slurm_partition,
                   slurm_gpus_per_task, slurm_time, slurm_max_parallel):  # fmt: skip
    """Run the experiment RECIPE describes (train, prune, corrupt, measure) and write its Arrow store.

    The study is a plan of units (each model, its evaluation, the corruptions, the store), each writing one file:
    finished units are skipped, so an interrupted run resumes; --force recomputes. The new store replaces the old
    one only when whole; one run per store at a time. With --executor ray or slurm the store must be on a
    filesystem every worker sees.

    A recipe runs code: an arch written as module:function or file.py:function is imported when the recipe is read
    (its top-level code runs) and called to build the model, by --plan and validation too (on the meta device).
    --plan's calibration also builds every model for real on --device and trains, prunes and measures it for a few
    batches, so it runs that code in full (--plan --no-estimate does not). Run only recipes and model files you
    trust. Callables that cannot be model factories (built-ins, the standard library, classes that are not
    nn.Module) are refused before they are called.
    """
    from .precompute import load_recipe, precompute
    from .precompute.executors import SlurmOptions
    from .precompute.plan import format_plan
    from .precompute.run import plan

    _only_with_executor(executor, "ray", ["ray_address"])
    _only_with_executor(executor, "slurm", ["slurm_partition", "slurm_gpus_per_task", "slurm_time",
                                            "slurm_max_parallel"])  # fmt: skip
    parsed = load_recipe(recipe)
    if show_plan:
        if no_estimate:
            click.echo(format_plan(plan(parsed, store=store, force=force)))
        else:
            click.echo(format_plan(*plan(parsed, store=store, force=force, estimate_on=_device(device))))
        return
    if no_estimate:
        raise click.UsageError("--no-estimate: only used with --plan")
    # Ray and Slurm workers choose their own device ("auto"): the driver never initialises CUDA for them.
    dev = None if executor != "local" and device == "auto" else _device(device)
    slurm = SlurmOptions(partition=slurm_partition, gpus_per_task=slurm_gpus_per_task, time_min=slurm_time,
                         max_parallel=slurm_max_parallel)  # fmt: skip
    result = precompute(parsed, store=store, force=force, device=dev, wait=wait, executor=executor,
                        ray_address=ray_address, slurm=slurm)  # fmt: skip
    click.echo(result.report())


@main.command("info")
@click.argument("store", type=click.Path(file_okay=False, path_type=Path))
def info_cmd(store):
    """Print what the store STORE holds, checking every file."""
    from .store.info import describe

    click.echo(describe(store))


@main.command("render")
@click.argument("store", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("docs_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--folder",
    default="lotterysite",
    show_default=True,
    help="Sub-folder of DOCS_DIR to write; replaced as a whole on every run.",
)
@click.option(
    "--max-samples",
    type=click.IntRange(min=1),
    default=2000,
    show_default=True,
    help="Shipped samples served per view (keeps pages under 5 MB).",
)
@click.option(
    "--max-axes",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Class-angle axes of the parallel coordinates; more classes are ranked.",
)
@click.option(
    "--max-classes",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Class panels of the local geometry view; with more classes the reader picks them (a class picker).",
)
@click.option(
    "--picked-classes",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Panels of the local geometry view when the reader picks their classes (more than --max-classes).",
)
@click.option(
    "--page-bytes",
    type=click.IntRange(min=100_000),
    default=5_000_000,
    show_default=True,
    help="Budget of a page with everything it fetches; the samples served are cut to fit it.",
)
@click.option(
    "--equivalence-points",
    type=click.FloatRange(min=0, max=100, min_open=True, max_open=True),
    default=1.0,
    show_default=True,
    help="Accuracy points: a pruned model keeps dense's accuracy when the paired interval of its drop lies below this.",
)
@click.option(
    "--panel-marks",
    type=click.IntRange(min=1),
    default=400,
    show_default=True,
    help="Samples of the largest class a workspace panel draws as marks; above it, the store's binned density of "
    "every sample with a uniform random subsample as marks (every selected sample stays a mark).",
)
def render_cmd(
    store,
    docs_dir,
    folder,
    max_samples,
    max_axes,
    max_classes,
    picked_classes,
    page_bytes,
    equivalence_points,
    panel_marks,
):
    """Write the site's pages, chart specs, data and JavaScript for STORE into DOCS_DIR/lotterysite/.

    Then build with any static site builder that reads Markdown, e.g. `mkdocs build` or `zensical build`;
    no plugin and no Node needed. Hand-written pages in DOCS_DIR are never touched.
    """
    from .site.render import SiteOptions, render_store

    options = SiteOptions(
        max_samples, max_axes, max_classes, picked_classes, page_bytes, equivalence_points, panel_marks
    )
    click.echo(render_store(store, docs_dir, folder=folder, options=options).report())


if __name__ == "__main__":
    main()
