"""`fetch`: download a public data set's official archive, verify its checksum, put it where the loaders look.

The URLs and MD5 checksums are the ones torchvision's MNIST, FashionMNIST, CIFAR10 and CIFAR100 use (MD5 is what
the publishers list). Files land in ROOT/<folder> (ROOT defaults to $LOTTERYSITE_DATA, else
~/.cache/lotterysite/data), which is where `load_dataset` looks when no root is given. An archive already in place
with the right checksum is not downloaded again, so on a machine without internet the fix for a failed fetch is to
download the file elsewhere and copy it to the path the error names.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .imageset import DataError

MIRROR_ENV = "LOTTERYSITE_DATA_MIRROR"  # base URL replacing every data set's own (a local mirror, or the tests')


@dataclass(frozen=True)
class Download:
    base_url: str  # official location, ending in /
    files: tuple[tuple[str, str], ...]  # (file name, MD5) pairs
    folder: str  # sub-folder of ROOT the loader looks in
    extract: bool  # a .tar.gz whose top folder is `folder`; otherwise the files are kept as they are (idx .gz)


_MNIST = (
    ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
)
_FASHION = (
    ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
    ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
    ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
)

DOWNLOADS: dict[str, Download] = {
    "mnist": Download("https://ossci-datasets.s3.amazonaws.com/mnist/", _MNIST, "mnist", False),
    "fashion_mnist": Download(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", _FASHION, "fashion-mnist", False
    ),
    "cifar10": Download(
        "https://www.cs.toronto.edu/~kriz/",
        (("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),),
        "cifar-10-batches-py",
        True,
    ),
    "cifar100": Download(
        "https://www.cs.toronto.edu/~kriz/",
        (("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),),
        "cifar-100-python",
        True,
    ),
}


def data_home() -> Path:
    return Path(os.environ.get("LOTTERYSITE_DATA", "~/.cache/lotterysite/data")).expanduser()


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(url: str, dest: Path, md5: str, *, timeout: float) -> None:
    tmp = dest.with_name(dest.name + ".part")
    fix = f"download {url} yourself, check its MD5 is {md5} and put it at {dest}, then run the fetch again"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except (urllib.error.URLError, OSError, ValueError) as e:
        tmp.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise DataError(f"cannot download {url} ({reason}); {fix}") from None
    got = md5sum(tmp)
    if got != md5:
        tmp.unlink()
        raise DataError(f"{url}: checksum mismatch (MD5 {got}, expected {md5}); the download is corrupt or not the "
                        f"official file: {fix}")  # fmt: skip
    os.replace(tmp, dest)


def fetch_dataset(
    name: str, root: str | os.PathLike | None = None, *, mirror: str | None = None, timeout: float = 60.0
) -> Path:
    """Download data set `name` into ROOT/<folder> (verified, extracted) and return that folder.

    `mirror` (or $LOTTERYSITE_DATA_MIRROR) replaces the official base URL; the file names stay the same.
    """
    if name not in DOWNLOADS:
        raise DataError(
            f"no official archive for {name!r}; `lotterysite data fetch` knows {', '.join(sorted(DOWNLOADS))}"
        )
    spec = DOWNLOADS[name]
    root = Path(root).expanduser() if root is not None else data_home()
    base = mirror or os.environ.get(MIRROR_ENV) or spec.base_url
    base = base if base.endswith("/") else base + "/"
    target = root / spec.folder
    archive_dir = root if spec.extract else target
    archive_dir.mkdir(parents=True, exist_ok=True)
    for file, md5 in spec.files:
        dest = archive_dir / file
        # Already here (downloaded earlier, or copied by hand on an offline machine): not downloaded again.
        if not (dest.exists() and md5sum(dest) == md5):
            _download(base + file, dest, md5, timeout=timeout)
        if spec.extract and not target.is_dir():
            try:
                with tarfile.open(dest, "r:gz") as tar:
                    # The "data" filter refuses absolute paths, links out of root and device files.
                    tar.extractall(root, filter="data")
            except (tarfile.TarError, OSError) as e:
                raise DataError(f"{dest}: cannot extract ({e}); delete it and run the fetch again") from None
    if spec.extract and not target.is_dir():
        raise DataError(f"{archive_dir / spec.files[0][0]} did not extract to {target}; delete it and fetch again")
    return target
