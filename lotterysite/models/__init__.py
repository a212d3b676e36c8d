"""Architectures in the model contract (see `base.Classifier`), found by name through the registry; any other
`nn.Module` through an import path (`imported`), its final linear layer found by `head`."""

from . import cifar, small  # noqa: F401  (explicit imports register the factories)
from ._registry import create_model, is_model, list_models, register_model
from .base import Classifier, Standardize
from .head import FeatureHead, HeadError, find_classifier, locate_classifier
from .imported import ModelError, load_weights, read_state_dict

__all__ = [
    "Classifier", "FeatureHead", "HeadError", "ModelError", "Standardize", "create_model", "find_classifier",
    "locate_classifier",
    "is_model", "list_models", "load_weights", "read_state_dict", "register_model",
]  # fmt: skip
