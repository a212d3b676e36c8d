"""Precompute's pieces for your own study: class-folder data, models with weights from files, models pruned
elsewhere. the precompute modules call these at a few points; everything here is also usable on its own."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from ..data import ImageFolderSet, load_dataset, load_imagefolder
from ..data._registry import DataSplits
from ..models import ModelError, create_model, load_weights, read_state_dict
from ..models.imported import fit_state
from ..pruning import load_pruned_elsewhere
from ..pruning.external import merge_prune_masks
from .recipe import ArchConfig, Recipe, RecipeError, external_id, model_key


def check_inputs(recipe: Recipe) -> None:
    """Every file and folder the recipe names exists (one line naming the field otherwise), before any work."""
    where = recipe.path
    d = recipe.data
    if d.name == "imagefolder" and not Path(d.root).is_dir():
        raise RecipeError(f"{where}: field 'data.root' is {d.root}, which is not a folder; point it at the folder "
                          "holding train/<class>/ and test/<class>/")  # fmt: skip
    if d.classes and not Path(d.classes).is_file():
        raise RecipeError(f"{where}: field 'data.classes' is {d.classes}, which is not a file; give a text file "
                          "with one class name a line")  # fmt: skip
    for i, a in enumerate(recipe.architectures):
        if a.weights and not Path(a.weights).is_file():
            raise RecipeError(f"{where}: field 'architectures[{i}].weights' is {a.weights}, which is not a file; "
                              "save one with torch.save(model.state_dict(), FILE)")  # fmt: skip
    for i, m in enumerate(recipe.models):
        if not Path(m.file).is_file():
            raise RecipeError(f"{where}: field 'models[{i}].file' is {m.file}, which is not a file; give the "
                              "state_dict or checkpoint of the pruned model")  # fmt: skip


def check_weights(recipe: Recipe, *, num_classes: int, in_channels: int, image_size: int) -> None:
    """Every `weights` file and [[models]] file fits its architecture built for this data set (keys, shapes, class
    count), before any work: one line naming the field and the file's key, not a traceback after the first unit.
    The models are built on the meta device and the files memory-mapped, so a ResNet-50 check costs no memory."""
    shape = dict(num_classes=num_classes, in_channels=in_channels, image_size=image_size)

    def check(field: str, arch: ArchConfig, path: str, prune_masks: bool) -> None:
        try:
            with torch.device("meta"):
                model = create_model(arch.model.arch, **shape, **arch.model.options)
            state = read_state_dict(path, mmap=True)
            fit_state(model, merge_prune_masks(state, path) if prune_masks else state, path)
        except ModelError as e:
            raise RecipeError(f"{recipe.path}: field {field!r}: {e}") from None

    for i, a in enumerate(recipe.architectures):
        if a.weights:
            check(f"architectures[{i}].weights", a, a.weights, False)
    for i, m in enumerate(recipe.models):
        check(f"models[{i}].file", next(a for a in recipe.architectures if a.model.arch == m.base), m.file, True)


def load_splits(recipe: Recipe) -> DataSplits:
    """The recipe's data set: a registry data set in memory, or a class-folder set decoded per batch."""
    d = recipe.data
    if d.name == "imagefolder":
        s = load_imagefolder(d.root, d.image_size, classes=d.classes, skip_unreadable=d.skip_unreadable,
                             resize=d.resize, interpolation=d.interpolation or "bilinear")  # fmt: skip
        return DataSplits(s.train, s.test)
    return load_dataset(d.name, d.root, trust_pickles=d.trust_pickles)


def cache_images(data, work: Path, *, digest=None, rebuild: bool = False):
    """A class-folder set backed by a memory-mapped cache in `work` when it fits `data.CACHE_LIMIT`; others as is.
    `digest(file)` gives an image file's content digest (the cache's name); `rebuild` builds it again."""
    if not isinstance(data, ImageFolderSet):
        return data
    return data.cached(work / "images", digest=digest, rebuild=rebuild)


def images_at(data, index) -> torch.Tensor:
    """uint8 images of the given samples, from memory or decoded from their files."""
    return data.images_at(index) if isinstance(data, ImageFolderSet) else data.images[index]


def model_from_weights(arch_cfg: ArchConfig, *, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """The architecture built for this data set, with the weights of `arch_cfg.weights`."""
    model = create_model(arch_cfg.model.arch, num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                         **arch_cfg.model.options)  # fmt: skip
    return load_weights(model, arch_cfg.weights)


def plan_external(recipe: Recipe, entry_cls, inputs: dict[str, str], fingerprint, data: list, arch_key) -> list:
    """One entry per [[models]] table (`entry_cls` is plan.ModelEntry), after lotterysite's own models.

    Its fingerprint covers the data (`data`, plan._data_key), the base architecture (`arch_key`, plan._arch_key: its
    settings and source) and the file's content digest (`inputs`, from plan.input_digests, hashed by
    `fingerprint`), so replacing the file at the same path evaluates it again. Its amount is the table's, or NaN
    until the model is loaded and its sparsity measured (`placed`).
    """
    out = []
    for m in recipe.models:
        arch = next(a for a in recipe.architectures if a.model.arch == m.base)
        fp = fingerprint(data, arch_key(arch, inputs), inputs.get(f"models:{m.file}", ""), m.label, m.amount)
        mid = external_id(m)
        amount = m.amount if m.amount is not None else float("nan")
        out.append(entry_cls(mid, model_key(mid), m.base, m.label, amount, False, recipe.seeds[0], fp, file=m.file))
    return out


def load_external(recipe: Recipe, entry, *, num_classes: int, in_channels: int, image_size: int) -> nn.Module:
    """The [[models]] entry's model: its base architecture holding the file's weights, masks from its zeros."""
    arch = next(a for a in recipe.architectures if a.model.arch == entry.arch)
    base = create_model(arch.model.arch, num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                        **arch.model.options)  # fmt: skip
    return load_pruned_elsewhere(base, entry.file)


def placed(entry, extra: dict):
    """An external model without an amount sits at its measured sparsity."""
    if entry.file and entry.amount != entry.amount:  # NaN: no amount in the recipe
        return replace(entry, amount=round(float(extra["sparsity"]), 4))
    return entry
