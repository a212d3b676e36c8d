"""Class-folder image sets (torchvision's ImageFolder layout), decoded in batches instead of held in memory.

    ROOT/train/<class>/*.jpg|png|webp|...      training images (Taylor, MPT, retraining, training)
    ROOT/test/<class>/*  (or ROOT/val/<class>/*) evaluation images

Class names are the folder names, sorted; the test split must have the same class folders as the train split.
Every image is resized so its shorter side is `resize` (default `image_size`; `interpolation` bilinear, the
default, or bicubic, antialiased as PIL does) and
centre-cropped to `image_size` x `image_size`: torchvision's `Resize(resize)` + `CenterCrop(image_size)` on PIL
images, pixel for pixel (its rounding of the longer side and of the crop offset), the standard evaluation transform
(ImageNet's published accuracies use resize 256, image_size 224). Images are RGB, or gray when every image of both
splits is stored gray (WebP has no gray mode: a gray WebP reads as RGB); 16-bit gray images keep their high byte.
Files whose suffix is not an image suffix, and hidden files, are ignored, as torchvision does.

Samples are ordered round-robin over the classes (the first image of every class, then the second, ...), so the
first N samples (`eval_subset`, `head(N)`) cover the classes evenly instead of holding the first few classes only.

An unreadable image is an error naming the file. With `skip_unreadable=True` every image is decoded once while
scanning and the unreadable ones are left out and counted (`ImageFolderSet.skipped`); the scan then costs a full
decoding pass.

Nothing holds a whole split in memory: `batches()` decodes one batch at a time (threads decode in parallel). When
a split's uint8 pixels fit `cache_limit` bytes (`CACHE_LIMIT`, 8 GiB, by default), `cached(work_dir)` decodes it
once into a memory-mapped file under `work_dir` and later passes read that instead of the image files.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import INTERPOLATIONS  # torchvision's published weights use one of these (weights.transforms())
from .imageset import DataError, ImageSet, batch_indices

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")
# Version of the decoding rules, in every pixel fingerprint (a cache built by older rules is never reused).
# 2: torchvision's rounding (longer side truncated, crop offset rounded), 16-bit gray scaled to 8 bits (it was
# clipped at 255); 1 rounded the side and floored the offset.
DECODE = 2
CACHE_LIMIT = 8 * 2**30  # bytes of uint8 pixels a split's memory-mapped cache may take (ImageNet val, 224 px: 7.5 GB)
TEST_FOLDERS = ("test", "val")  # the evaluation split's folder, first that exists


def _is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def _class_files(split_dir: Path) -> dict[str, list[Path]]:
    if not split_dir.is_dir():
        raise DataError(f"{split_dir} is missing; an image-folder data set holds {split_dir.name}/<class>/<images>")
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{split_dir} holds no class folders; put each class's images in {split_dir}/<class name>/")
    out = {}
    for name in classes:
        files = sorted(p for p in (split_dir / name).iterdir() if _is_image(p))
        if not files:
            raise DataError(
                f"{split_dir / name} is an empty class folder (no {', '.join(IMAGE_SUFFIXES[:3])}... files); "
                "add its images or remove the folder"
            )
        out[name] = files
    return out


def _round_robin(per_class: list[list[Path]]) -> tuple[list[Path], list[int]]:
    files, labels = [], []
    for i in range(max(len(f) for f in per_class)):
        for label, class_files in enumerate(per_class):
            if i < len(class_files):
                files.append(class_files[i])
                labels.append(label)
    return files, labels


# Errors of the system, not of the file: they stop the run (one line) instead of marking the image unreadable.
TRANSIENT = {errno.EMFILE, errno.ENFILE, errno.EIO, errno.ESTALE, errno.ENOMEM, errno.EAGAIN, errno.EINTR,
             errno.ETIMEDOUT, errno.ENOLCK}  # fmt: skip
# What a whole file of these formats ends with, in its last bytes: a file cut short misses it.
ENDINGS = {"JPEG": b"\xff\xd9", "PNG": b"IEND"}


def _transient(path: Path, e: BaseException) -> None:
    if isinstance(e, OSError) and e.errno in TRANSIENT:
        from ..fileio import storage_error

        raise storage_error(path, "read the image", e) from None


def _cut_short(path: Path, image_format: str | None) -> bool:
    """Whether a JPEG or PNG lacks its end marker in its last 64 bytes (a download or copy cut short)."""
    ending = ENDINGS.get(image_format or "")
    if ending is None:
        return False
    with open(path, "rb") as f:
        f.seek(max(0, os.fstat(f.fileno()).st_size - 64))
        return ending not in f.read()


def _probe(path: Path, *, decode: bool) -> str:
    """The image's PIL mode, reading its header (or decoding it fully when `decode`, or when the file looks cut
    short); raises DataError, or StorageError for a transient system error (too many open files, I/O error)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if decode or _cut_short(path, img.format):
                img.load()  # a truncated image fails here, at the scan, not in the middle of training
            return img.mode
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        _transient(path, e)
        raise DataError(
            f"{path}: unreadable image ({type(e).__name__}: {e}); replace or delete the file, "
            "or set skip_unreadable = true in [data] to leave unreadable images out"
        ) from None


def decode_image(
    path: Path, image_size: int, channels: int, resize: int | None = None, interpolation: str = "bilinear"
) -> np.ndarray:
    """One image as uint8 C x image_size x image_size: shorter side resized to `resize` (default image_size),
    centre crop; the sizes and offsets torchvision's Resize and CenterCrop compute."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.mode == "I" or img.mode.startswith("I;16"):
                # 16-bit gray (PNG, TIFF): Pillow's convert("L") clips at 255, which turns the image white. Keep
                # the high byte instead, as torchvision's to_dtype(uint8, scale=True) does.
                high = (np.clip(np.asarray(img, dtype=np.int64), 0, 65535) >> 8).astype(np.uint8)
                img = Image.fromarray(high, "L")
            img = img.convert("L" if channels == 1 else "RGB")
            w, h = img.size
            short = resize or image_size
            # torchvision.transforms.functional._compute_resized_output_size: the longer side is truncated.
            nw, nh = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
            if (nw, nh) != (w, h):
                img = img.resize((nw, nh), Image.BICUBIC if interpolation == "bicubic" else Image.BILINEAR)
            # torchvision's center_crop: the offset is rounded (half to even), not floored.
            left, top = int(round((nw - image_size) / 2.0)), int(round((nh - image_size) / 2.0))
            img = img.crop((left, top, left + image_size, top + image_size))
            arr = np.array(img, dtype=np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        _transient(path, e)
        raise DataError(
            f"{path}: unreadable image ({type(e).__name__}: {e}); replace or delete the file, "
            "or set skip_unreadable = true in [data] to leave unreadable images out"
        ) from None
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


@dataclass(frozen=True, eq=False)
class ImageFolderSet:
    """A split of a class-folder data set: file paths and labels; pixels are decoded per batch.

    Offers what precompute, training and pruning use of an `ImageSet` (`batches`, `labels`, `classes`, `len`,
    `head`, `subset`, `in_channels`, `image_size`), but no `.images` tensor: use `uint8_batches` or `images_at`.
    """

    files: tuple[Path, ...]
    labels: torch.Tensor  # int64, N
    classes: tuple[str, ...]
    image_size: int  # pixels per side after resize and centre crop
    in_channels: int  # 1 (every image gray) or 3
    name: str = ""
    skipped: tuple[Path, ...] = ()  # unreadable files left out (skip_unreadable=True)
    workers: int = 4  # decoding threads
    cache_file: Path | None = None  # memory-mapped uint8 N x C x S x S, set by `cached`
    resize: int | None = None  # shorter side before the centre crop (None: image_size)
    interpolation: str = "bilinear"  # of that resize: "bilinear" or "bicubic"

    def __len__(self) -> int:
        return len(self.files)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def nbytes(self) -> int:
        """Bytes of all decoded uint8 pixels of this split."""
        return len(self) * self.in_channels * self.image_size**2

    def _replace(self, **kw) -> ImageFolderSet:
        values = {f: getattr(self, f) for f in self.__dataclass_fields__} | kw
        return ImageFolderSet(**values)

    def subset(self, index) -> ImageFolderSet:
        index = torch.as_tensor(index, dtype=torch.long).tolist()
        return self._replace(files=tuple(self.files[i] for i in index), labels=self.labels[index], cache_file=None)

    def head(self, n: int | None) -> ImageFolderSet:
        return self if n is None or n >= len(self) else self.subset(range(n))

    def _memmap(self) -> np.memmap:
        shape = (len(self), self.in_channels, self.image_size, self.image_size)
        return np.memmap(self.cache_file, dtype=np.uint8, mode="r", shape=shape)

    def images_at(self, index: Sequence[int]) -> torch.Tensor:
        """Decoded uint8 images N x C x S x S of the given sample indices."""
        index = [int(i) for i in index]
        if self.cache_file is not None:
            return torch.from_numpy(np.ascontiguousarray(self._memmap()[index]))
        if not index:
            return torch.empty((0, self.in_channels, self.image_size, self.image_size), dtype=torch.uint8)
        args = [(self.files[i], self.image_size, self.in_channels, self.resize, self.interpolation) for i in index]
        if self.workers > 1 and len(args) > 1:
            with ThreadPoolExecutor(self.workers) as pool:  # PIL releases the GIL while decoding and resizing
                arrays = list(pool.map(lambda a: decode_image(*a), args))
        else:
            arrays = [decode_image(*a) for a in args]
        return torch.from_numpy(np.stack(arrays))

    def uint8_batches(
        self, batch_size: int, *, shuffle: bool = False, seed: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (uint8 images N x C x S x S, labels) on the CPU, decoded one batch at a time."""
        for idx in batch_indices(len(self), batch_size, shuffle=shuffle, seed=seed):
            yield self.images_at(idx.tolist()), self.labels[idx]

    def batches(
        self, batch_size: int, *, shuffle: bool = False, seed: int = 0, device: torch.device | str = "cpu"
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (float images in [0, 1], labels) on `device`, as `ImageSet.batches` does."""
        for x, y in self.uint8_batches(batch_size, shuffle=shuffle, seed=seed):
            yield x.to(device, non_blocking=True).float().div_(255.0), y.to(device, non_blocking=True)

    def to_imageset(self) -> ImageSet:
        """Every image decoded into one in-memory `ImageSet` (for small sets only: needs `nbytes` of memory)."""
        return ImageSet(self.images_at(range(len(self))), self.labels, self.classes, self.name)

    def fingerprint(self, digest=None) -> str:
        """Hash of what determines the pixels: every file's content (`digest(path)`, e.g. a `fileio.DigestCache`'s;
        default: read each file), sizes, channels, decoding rules. A file's path, size and modification time are
        not enough: an image replaced by another of the same size, its mtime restored, would keep its old pixels."""
        from ..fileio import file_digest

        digest = digest or file_digest
        sizes = f"{self.image_size}/{self.in_channels}/{self.resize}/{self.interpolation}/{DECODE}"
        h = hashlib.sha256(sizes.encode())
        for f in self.files:
            h.update(f"{f.name}|{digest(f)}\n".encode())
        return h.hexdigest()[:16]

    def cached(self, work_dir: str | os.PathLike, *, limit: int = CACHE_LIMIT, batch_size: int = 256, digest=None,
               rebuild: bool = False) -> ImageFolderSet:  # fmt: skip
        """This split backed by a memory-mapped uint8 cache in `work_dir` (built once; `rebuild`: built again), or
        itself when the cache would exceed `limit` bytes: then every pass decodes the image files again. The cache
        is named by the files' contents (`digest`, see `fingerprint`) and its own digest is recorded beside it and
        checked before reuse (`fileio.seal`), so a damaged cache is built again."""
        from ..fileio import check_seal, seal

        if self.cache_file is not None or self.nbytes > limit or len(self) == 0:
            return self
        name = f"imagefolder-{self.fingerprint(digest)}-{len(self)}x{self.in_channels}x{self.image_size}.u8"
        path = Path(work_dir) / name
        if path.exists() and not rebuild:
            why = check_seal(path)
            if why is not None:
                print(f"warning: {path} is damaged ({why}); deleting it and building it again", file=sys.stderr)
                path.unlink(missing_ok=True)
        if rebuild or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".tmp{os.getpid()}")
            shape = (len(self), self.in_channels, self.image_size, self.image_size)
            out = np.memmap(tmp, dtype=np.uint8, mode="w+", shape=shape)
            try:
                for start in range(0, len(self), batch_size):
                    out[start : start + batch_size] = self.images_at(
                        range(start, min(len(self), start + batch_size))
                    ).numpy()
                out.flush()
                del out
                os.replace(tmp, path)  # atomic: an interrupted build never leaves a half cache behind
            finally:
                tmp.unlink(missing_ok=True)
            seal(path)
        return self._replace(cache_file=path)


@dataclass(frozen=True)
class ImageFolderSplits:
    train: ImageFolderSet
    test: ImageFolderSet

    @property
    def classes(self) -> tuple[str, ...]:
        return self.test.classes


def _scan(split_dir: Path, classes: tuple[str, ...] | None, skip_unreadable: bool, *, fixed: bool):
    """Files and labels of one split. `classes` given and `fixed`: a class list (from a file) that every folder
    must be in; given and not fixed: the train split's folders, which this split must repeat exactly."""
    per_class = _class_files(split_dir)
    if classes is not None and fixed:
        unknown = [c for c in per_class if c not in classes]
        if unknown:
            raise DataError(f"{split_dir / unknown[0]}: class folder {unknown[0]!r} is not in the class list "
                            f"({len(classes)} names); add it there or rename the folder")  # fmt: skip
    elif classes is not None and tuple(per_class) != classes:
        extra = sorted(set(per_class) - set(classes))
        missing = sorted(set(classes) - set(per_class))
        detail = "; ".join(
            s for s in (f"not in train/: {', '.join(extra[:5])}" if extra else "",
                        f"missing here: {', '.join(missing[:5])}" if missing else "") if s
        )  # fmt: skip
        raise DataError(f"{split_dir}: class folders differ from train/ ({detail}); both splits need the same classes")
    classes = classes if classes is not None else tuple(per_class)
    index = {c: i for i, c in enumerate(classes)}
    files, labels = _round_robin([per_class[c] for c in per_class])
    labels = [index[tuple(per_class)[i]] for i in labels]
    keep, modes, skipped = [], set(), []
    for f, label in zip(files, labels, strict=True):
        try:
            modes.add(_probe(f, decode=skip_unreadable))
            keep.append((f, label))
        except DataError:
            if not skip_unreadable:
                raise
            skipped.append(f)
    if not keep:
        raise DataError(f"{split_dir}: no readable image in any class folder")
    return classes, keep, modes, tuple(skipped)


def read_class_list(path: str | os.PathLike) -> tuple[str, ...]:
    """Class names, one per line (blank lines and lines starting with # ignored); line order is label order."""
    path = Path(path).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(
            f"{path}: cannot read the class list ({e}); give a text file with one class name a line"
        ) from None
    names = tuple(s.strip() for s in lines if s.strip() and not s.strip().startswith("#"))
    if len(names) < 2 or len(set(names)) != len(names):
        raise DataError(f"{path}: a class list needs at least 2 distinct names, one a line; got {len(names)} "
                        f"({len(names) - len(set(names))} repeated)")  # fmt: skip
    return names


def load_imagefolder(
    root: str | os.PathLike,
    image_size: int,
    *,
    skip_unreadable: bool = False,
    classes: str | os.PathLike | Sequence[str] | None = None,
    workers: int = 4,
    name: str = "imagefolder",
    resize: int | None = None,
    interpolation: str = "bilinear",
) -> ImageFolderSplits:
    """Scan ROOT/train/<class> and ROOT/test/<class> (or ROOT/val/<class>); decoding happens per batch later.

    `classes` (a class-list file or a sequence of names) fixes the class names and their order, e.g. the 1000
    ImageNet classes a published model predicts, when the folders hold only some of them; without it the train
    split's folder names, sorted, are the classes and the test split must have the same folders. `resize`: the
    shorter side before the centre crop (default `image_size`; 256 with image_size 224 is ImageNet's evaluation);
    `interpolation`: "bilinear" (default) or "bicubic", as the published weights' transforms say.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(
            f"image-folder data set {root} not found; point [data] root at a folder holding train/ and test/"
        )
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size < 8:
        raise DataError(f"image_size {image_size!r} must be an integer >= 8 (pixels per side after the centre crop)")
    if resize is not None and (not isinstance(resize, int) or isinstance(resize, bool) or resize < image_size):
        raise DataError(f"resize {resize!r} must be an integer >= image_size {image_size} (the shorter side before "
                        "the centre crop)")  # fmt: skip
    if interpolation not in INTERPOLATIONS:
        raise DataError(f"interpolation {interpolation!r} is not one of {', '.join(map(repr, INTERPOLATIONS))}")
    test_dir = next((root / d for d in TEST_FOLDERS if (root / d).is_dir()), root / TEST_FOLDERS[0])
    if not test_dir.is_dir():
        raise DataError(f"{root / 'test'} is missing (and so is {root / 'val'}); put the evaluation images in "
                        f"{root}/test/<class>/")  # fmt: skip
    fixed = classes is not None
    if isinstance(classes, (str, os.PathLike)):
        classes = read_class_list(classes)
    elif classes is not None:
        classes = tuple(classes)
    classes, train, train_modes, train_skipped = _scan(root / "train", classes, skip_unreadable, fixed=fixed)
    _, test, test_modes, test_skipped = _scan(test_dir, classes, skip_unreadable, fixed=fixed)
    channels = 1 if (train_modes | test_modes) <= set(GRAY_MODES) else 3

    def make(items, skipped, split):
        files = tuple(f for f, _ in items)
        labels = torch.tensor([label for _, label in items], dtype=torch.int64)
        return ImageFolderSet(files, labels, classes, image_size, channels, f"{name}/{split}", skipped, workers,
                              resize=resize, interpolation=interpolation)  # fmt: skip

    return ImageFolderSplits(make(train, train_skipped, "train"), make(test, test_skipped, test_dir.name))
