"""Shared test fixtures."""

import importlib.util
import re
import shutil
from pathlib import Path

import pytest


def foolbox_imagenet_files() -> list[tuple[Path, int]]:
    """The 20 real ImageNet photos in the foolbox wheel (imagenet_<i>_<label>.jpg), with their labels."""
    spec = importlib.util.find_spec("foolbox")
    if spec is None or spec.origin is None:
        pytest.skip("foolbox is not installed (pip install --no-deps foolbox)")
    files = sorted((Path(spec.origin).parent / "data").glob("imagenet_*.jpg"))
    return [(f, int(re.match(r"imagenet_\d+_(\d+)\.jpg", f.name).group(1))) for f in files]


def imagenet_class(label: int) -> str:
    return f"c{label:04d}"


@pytest.fixture(scope="session")
def imagenet_folder(tmp_path_factory) -> Path:
    """The foolbox ImageNet photos as a class-folder data set: 19 classes named c<label>, every photo in train/
    and in val/; `classes.txt` lists all 1000 ImageNet class indices as names (c0000 ... c0999)."""
    root = tmp_path_factory.mktemp("imagenet-folder")
    for split in ("train", "val"):
        for f, label in foolbox_imagenet_files():
            folder = root / split / imagenet_class(label)
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, folder / f.name)
    (root / "classes.txt").write_text("".join(imagenet_class(i) + "\n" for i in range(1000)))
    return root
