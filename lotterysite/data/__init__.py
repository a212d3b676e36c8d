"""Data sets by name: real images and labels with class names, read from local files (`fetch` downloads the public
archives).

Images are kept as uint8 tensors N x C x H x W and handed out as float batches in [0, 1]: that is the pixel space
the corruptions operate in and the models standardise from.
"""

from ._registry import DATASETS, DatasetSpec, DataSplits, list_datasets, load_dataset
from .cifar10c import cifar10c_corruptions, load_cifar10c
from .imagefolder import CACHE_LIMIT, ImageFolderSet, ImageFolderSplits, load_imagefolder, read_class_list
from .imageset import DataError, ImageSet, foolbox_samples

__all__ = [
    "CACHE_LIMIT",
    "ImageFolderSet",
    "ImageFolderSplits",
    "load_imagefolder",
    "read_class_list",
    "DATASETS",
    "DataError",
    "DataSplits",
    "DatasetSpec",
    "ImageSet",
    "cifar10c_corruptions",
    "foolbox_samples",
    "list_datasets",
    "load_cifar10c",
    "load_dataset",
]
