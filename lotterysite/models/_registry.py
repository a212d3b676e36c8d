"""Model registry, in the manner of timm's `register_model`.

Every architecture is a small factory registered under the name the CLI and recipes use. Registration happens
where the factory is defined; `lotterysite.models` imports each model module by name, never by star-import.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model {name!r} is registered twice; rename one of the factories")
    _MODELS[name] = fn
    return fn


def list_models() -> list[str]:
    """Names of every registered architecture, sorted (torchvision models are reached as `tv:<name>`)."""
    return sorted(_MODELS)


def is_model(name: str) -> bool:
    """A registered name, tv:<name>, or an import path package.module:function (not resolved here)."""
    from .imported import is_import_path

    return name in _MODELS or name.startswith("tv:") or is_import_path(name)


def create_model(name: str, *, num_classes: int, in_channels: int, image_size: int, **options) -> nn.Module:
    """Build architecture `name` for images of `in_channels` x `image_size` x `image_size` and `num_classes` classes."""
    if name.startswith("tv:"):
        from .torchvision_adapter import torchvision_model

        return torchvision_model(
            name[3:], num_classes=num_classes, in_channels=in_channels, image_size=image_size, **options
        )
    from .imported import imported_model, is_import_path

    if is_import_path(name):
        return imported_model(name, num_classes=num_classes, in_channels=in_channels, image_size=image_size, **options)
    if name not in _MODELS:
        known = ", ".join(list_models())
        raise ValueError(
            f"unknown architecture {name!r}; known architectures: {known} (or tv:<name> for a torchvision model, "
            "or package.module:function for your own)"
        )
    model = _MODELS[name](num_classes=num_classes, in_channels=in_channels, image_size=image_size, **options)
    model.arch = name
    return model
