"""Architectures in the model contract (see `base.Classifier`), found by name through the registry."""

from . import cifar, small  # noqa: F401  (explicit imports register the factories)
from ._registry import create_model, is_model, list_models, register_model
from .base import Classifier, Standardize

__all__ = ["Classifier", "Standardize", "create_model", "is_model", "list_models", "register_model"]
