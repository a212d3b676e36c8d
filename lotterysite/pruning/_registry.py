"""Pruning-method registry, in the manner of the model registry.

A method is `fn(model, targets, cfg, *, data, device) -> masks`: `model` is a private copy it may change (MPT
re-initialises and binarises it), `targets` maps parameter names to the prunable weights, and the returned masks
(bool, True = kept) remove exactly `round(amount * count)` weights per scope group (see `masks.select_masks`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .config import SCOPES


@dataclass(frozen=True)
class MethodSpec:
    name: str
    fn: Callable
    scopes: tuple[str, ...]  # scopes the method supports; the first is its default
    needs_data: bool  # whether `data` must be given


_METHODS: dict[str, MethodSpec] = {}


def register_method(name: str, *, scopes: tuple[str, ...] = SCOPES, needs_data: bool = False):
    """Decorator registering a pruning method under `name`."""
    if not scopes or any(s not in SCOPES for s in scopes):
        raise ValueError(f"method {name!r}: scopes {scopes!r} must be a non-empty subset of {SCOPES}")

    def decorate(fn: Callable) -> Callable:
        if name in _METHODS:
            raise ValueError(f"pruning method {name!r} is registered twice; rename one of them")
        _METHODS[name] = MethodSpec(name, fn, tuple(scopes), needs_data)
        return fn

    return decorate


def list_methods() -> list[str]:
    """Names of every registered pruning method, sorted."""
    return sorted(_METHODS)


def get_method(name: str) -> MethodSpec:
    if name not in _METHODS:
        raise ValueError(f"unknown pruning method {name!r}; known methods: {', '.join(list_methods())}")
    return _METHODS[name]
