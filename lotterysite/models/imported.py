"""Your own model: `arch = "package.module:function"` (or `"path/to/file.py:function"`), and weights from a file.

The function returns an `nn.Module`; it is called with `num_classes` when it accepts that argument (by name or
through **kwargs), with `in_channels` / `image_size` when it names them, and with the recipe's `options`. The
model receives float images in [0, 1]; option `input_norm` ("imagenet", "standardize" or "none", the default)
normalises them before the model's own forward, for models trained on normalised inputs.

`load_weights(model, FILE)` reads a plain state_dict, or a dict holding one under "state_dict" or "model",
with `torch.load(weights_only=True)` (a "module." prefix from DataParallel is dropped); missing or unexpected keys
are an error naming them. For `tv:<name>` models a torchvision state_dict (`conv1.weight`, ..., `fc.weight`) is
mapped onto the wrapped model, so torchvision's published weights saved with `torch.save(m.state_dict(), FILE)`
load as they are.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import LotterysiteError
from .head import locate_classifier, static_classifier

IMPORT_PATH = re.compile(r"^(?P<module>[^:]+):(?P<function>[A-Za-z_]\w*)$")
# Per-channel mean and std the published ImageNet weights were trained with (torchvision's transforms).
NORMS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "standardize": ((0.5,), (0.25,)),  # base.Standardize: (x - 0.5) / 0.25, what lotterysite's own models do
}
INPUT_NORMS = ("none", *NORMS)


class ModelError(LotterysiteError, ValueError):
    """A model or weights file that cannot be used; the message names the path or file and the fix."""


# arch = "file.py:function" in a recipe names a file relative to the recipe. The arch keeps the recipe's spelling
# (it names the models on the site and in links, which must not show the machine's folders); this maps it to the
# file. A recipe registers its archs when read and a runner again on each worker (`register_sources`).
_SOURCES: dict[str, str] = {}


def register_sources(sources) -> None:
    """Map archs spelt "file.py:function" to their files, from (arch, absolute file) pairs."""
    _SOURCES.update(dict(sources))


def source_file(arch: str) -> Path | None:
    """The Python file an import-path arch's factory comes from (its content shapes every model built from it)."""
    m = IMPORT_PATH.match(arch)
    if arch.startswith("tv:") or m is None:
        return None
    module = m["module"]
    if module.endswith(".py"):
        return Path(_SOURCES.get(arch, module)).expanduser()
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin and Path(spec.origin).is_file() else None


def is_import_path(name: str) -> bool:
    return not name.startswith("tv:") and IMPORT_PATH.match(name) is not None


def resolve_factory(path: str) -> Callable[..., Any]:
    """The function `path` names: "package.module:function" (importable) or "some/file.py:function"."""
    m = IMPORT_PATH.match(path)
    if m is None:
        raise ModelError(
            f"arch {path!r} is not an import path; write it as package.module:function or file.py:function"
        )
    module_name, function = m["module"], m["function"]
    try:
        if module_name.endswith(".py"):
            file = Path(_SOURCES.get(path, module_name)).expanduser()
            if not file.is_file():
                raise ModelError(f"arch {path!r}: file {file} not found; give its path relative to where you run "
                                 "lotterysite, or absolute")  # fmt: skip
            key = f"lotterysite_user_{abs(hash(str(file.resolve())))}"
            spec = importlib.util.spec_from_file_location(key, file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[key] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ModelError:
        raise
    except ImportError as e:
        raise ModelError(
            f"arch {path!r}: cannot import {module_name!r} ({type(e).__name__}: {e}); install the "
            "package or put its folder on PYTHONPATH"
        ) from e
    except Exception as e:  # the user's module failed while importing: show what, not a traceback
        raise ModelError(f"arch {path!r}: importing {module_name!r} failed ({type(e).__name__}: {e})") from None
    fn = getattr(module, function, None)
    if fn is None or not callable(fn):
        raise ModelError(f"arch {path!r}: module {module_name!r} has no function {function!r}")
    why = _not_a_factory(fn)
    if why:  # refused before it is ever called: a recipe naming os:system must not run a command
        raise ModelError(f"arch {path!r} is {why}, not a model factory; name a Python function (or nn.Module class) "
                         "of your own code that returns the model")  # fmt: skip
    return fn


def _not_a_factory(fn) -> str | None:
    """Why `fn` cannot be a model factory, where that is known without calling it: a built-in or C function, a
    class that is not an nn.Module, or anything of Python's standard library."""
    target = fn.func if isinstance(fn, functools.partial) else fn
    if inspect.isclass(target):
        return None if issubclass(target, nn.Module) else f"the class {target.__name__}, which is not an nn.Module"
    if not (inspect.isfunction(target) or inspect.ismethod(target)):
        return "a built-in function" if inspect.isbuiltin(target) else f"a {type(target).__name__} object"
    top = (getattr(target, "__module__", "") or "").partition(".")[0]
    if top in sys.stdlib_module_names or top == "builtins":
        return f"a function of Python's standard library ({target.__module__})"
    return None


def _normalise(mean: torch.Tensor, std: torch.Tensor, module: nn.Module, args: tuple):
    x = args[0]
    return ((x - mean.to(x.device, x.dtype)) / std.to(x.device, x.dtype), *args[1:])


def add_input_norm(model: nn.Module, input_norm: str) -> nn.Module:
    """Normalise the model's input with a forward pre-hook (no new parameters, so state_dict keys stay the same)."""
    if input_norm not in INPUT_NORMS:
        raise ModelError(f"option input_norm {input_norm!r} is not one of {', '.join(map(repr, INPUT_NORMS))}")
    if input_norm != "none":
        mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in NORMS[input_norm])
        model.register_forward_pre_hook(functools.partial(_normalise, mean, std))
    return model


def imported_model(path: str, *, num_classes: int, in_channels: int, image_size: int, **options) -> nn.Module:
    """Build the model the function at `path` returns (see the module docstring for the arguments it gets)."""
    fn = resolve_factory(path)
    input_norm = options.pop("input_norm", "none")
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    named = {n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    var_kw = any(p.kind == p.VAR_KEYWORD for p in params.values())
    kwargs = dict(options)
    if "num_classes" in named or var_kw:
        kwargs.setdefault("num_classes", num_classes)
    for key, value in (("in_channels", in_channels), ("image_size", image_size)):
        if key in named:
            kwargs.setdefault(key, value)
    try:
        model = fn(**kwargs)
    except TypeError as e:
        raise ModelError(
            f"arch {path!r}: calling it with {', '.join(sorted(kwargs)) or 'no arguments'} failed "
            f"({e}); fix the recipe's options"
        ) from e
    if not isinstance(model, nn.Module):
        raise ModelError(f"arch {path!r} returned {type(model).__name__}, not a torch.nn.Module; return the model")
    model.arch = path
    model = add_input_norm(model, input_norm)
    # A classifier not named classifier/fc/head is found by running the model once, now: pruning and checkpoints
    # never run it, and a model whose logits do not come from a final nn.Linear fails here, naming what was found.
    locate_classifier(model, torch.zeros(2, in_channels, image_size, image_size))
    return model


def read_state_dict(path: str | os.PathLike, *, mmap: bool = False) -> dict[str, torch.Tensor]:
    """A state_dict from FILE: a plain one, or one under "state_dict" or "model" (read with weights_only=True).
    `mmap`: map the file instead of reading it (checking keys and shapes of a large file costs no memory)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"weights file {path} not found; save one with torch.save(model.state_dict(), {path.name!r})")
    try:
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
        except RuntimeError:
            if not mmap:
                raise
            payload = torch.load(path, map_location="cpu", weights_only=True)  # the legacy format cannot be mapped
    except Exception as e:  # torch raises several types; its advice to pass weights_only=False would run code
        raise ModelError(f"{path}: not a readable weights file ({type(e).__name__}); save a plain state_dict with "
                         "torch.save(model.state_dict(), FILE)") from None  # fmt: skip
    if isinstance(payload, dict):
        for key in ("state_dict", "model"):
            if isinstance(payload.get(key), dict):
                payload = payload[key]
                break
    if not isinstance(payload, dict) or not payload or not all(isinstance(v, torch.Tensor) for v in payload.values()):
        raise ModelError(f"{path}: holds no state_dict (a dict of tensors, alone or under 'state_dict' or 'model'); "
                         "save one with torch.save(model.state_dict(), FILE)")  # fmt: skip
    if all(k.startswith("module.") for k in payload):  # saved from DataParallel / DistributedDataParallel
        payload = {k[len("module.") :]: v for k, v in payload.items()}
    return payload


def _fit_torchvision_layout(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, str]:
    """How a torchvision state_dict's keys map onto a TorchvisionAdapter (body.<key>, classifier.<key>): the
    model's key for each of the file's keys (the identity when the file already has the model's keys)."""
    head = getattr(model, "torchvision_head", None)
    own = model.state_dict()
    if head is None or set(state) <= set(own):
        return {k: k for k in state}
    return {k: f"classifier.{k[len(head) + 1 :]}" if k.startswith(head + ".") else f"body.{k}" for k in state}


def _short(keys) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")


def fit_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """`state` with the model's keys, checked to fit `model` exactly (nothing loaded, so `model` may live on the
    meta device); missing, unexpected or mis-shaped keys are an error naming them as the file spells them."""
    keys = _fit_torchvision_layout(model, state)
    mapped = {keys[k]: v for k, v in state.items()}
    spelled = {m: k for k, m in keys.items()}
    own = model.state_dict()
    missing, unexpected = set(own) - set(mapped), set(mapped) - set(own)
    name = getattr(model, "arch", "") or type(model).__name__
    if missing or unexpected:
        parts = [
            f"missing keys {_short(missing)}" if missing else "",
            f"unexpected keys {_short(spelled[k] for k in unexpected)}" if unexpected else "",
        ]
        raise ModelError(f"{source}: does not fit {name} ({'; '.join(p for p in parts if p)}); save the "
                         "state_dict of this very architecture (and options)")  # fmt: skip
    head = static_classifier(model)
    for k, v in mapped.items():
        if tuple(v.shape) == tuple(own[k].shape):
            continue
        if head is not None and k in (f"{head[0]}.weight", f"{head[0]}.bias") and v.shape[1:] == own[k].shape[1:]:
            # The usual mistake: ImageNet weights (1000 classes) on a data set with fewer class folders.
            raise ModelError(
                f"{source}: the weights' classifier {spelled[k]!r} has {v.shape[0]} classes but the data set has "
                f"{own[k].shape[0]}; use weights trained on these classes, or (class folders) list the weights' "
                f"{v.shape[0]} class names in their label order in a text file and set [data] classes to it"
            )
        raise ModelError(
            f"{source}: key {spelled[k]!r} has shape {tuple(v.shape)} but {name} expects {tuple(own[k].shape)}; "
            "check num_classes and the architecture's options"
        )
    return mapped


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load `state` into `model` strictly (`fit_state`'s checks first)."""
    model.load_state_dict(fit_state(model, state, source))


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load the state_dict in `path` into `model` (in place, strictly) and return it in eval mode."""
    load_state(model, read_state_dict(path), str(path))
    return model.eval()
