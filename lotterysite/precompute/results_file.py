"""One model's evaluation results on disk (STORE/.work/results/<model>-<fingerprint>.npz), and read back lazily.

An uncompressed .npz: the small V x N columns, the per-class confusion sums, the angles to every class for the kept
variants (`angle`, K x N x C), and JSON `variants`, `angle_variants` and `extra` (sparsity, ...). Written once,
atomically, by the evaluate unit; the angles are copied into the archive from the file the evaluation filled,
never held in memory.

The store stage reads every model's file several times (one table builder after another) and must not hold them
all at once: `LazyModelResults` reads an array on first use and keeps it only as long as the object lives, and maps
`angle` straight from the archive (np.load reads .npz members whole; an uncompressed member is a plain .npy at an
offset, so numpy's memmap reads just the shipped rows).
"""

from __future__ import annotations

import json
import shutil
import struct
import zipfile
from pathlib import Path

import numpy as np

from ..fileio import atomic_write
from .aggregate import Confusion, ModelResults

FORMAT = 3  # 2: angles kept for the shipped variants only, angle_true and confusion sums stored; 3: margin_eq5
CONFUSION = ("confusion_count", "confusion_angle_sum", "confusion_angle_n")


def save(path: Path, res: ModelResults, extra: dict, angle_file: str | Path | None = None) -> None:
    """Write `res` to `path` atomically, as np.savez would (uncompressed, one .npy member per array). With
    `angle_file` (the .npy file `ResultsWriter` filled) the angles are copied from it in 1 MB blocks: gigabytes
    of them never pass through memory, nor through a memory map that would count in the resident set."""
    meta = {"variants": np.array(json.dumps(res.variants)), "angle_variants": np.array(json.dumps(res.angle_variants)),
            "extra": np.array(json.dumps(extra)), "format": np.array(FORMAT)}  # fmt: skip
    arrays = {k: v for k, v in res.arrays().items() if not (k == "angle" and angle_file is not None)}

    def write(tmp: str) -> None:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
            for name, value in {**meta, **arrays}.items():
                with z.open(f"{name}.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)
            if angle_file is not None:
                with z.open("angle.npy", "w", force_zip64=True) as f, open(angle_file, "rb") as src:
                    shutil.copyfileobj(src, f, 1 << 20)

    atomic_write(path, write)


def header(path: Path) -> dict:
    """variants, angle_variants, labels, extra and the angle array's shape, without reading the large arrays.
    Raises (zipfile, numpy, json, KeyError, ValueError) for a damaged or foreign file."""
    with np.load(path, allow_pickle=False) as z:
        if int(z["format"]) != FORMAT:
            raise ValueError(f"results format {int(z['format'])}, expected {FORMAT}")
        missing = [k for k in (*ModelResults.SMALL, "angle", *CONFUSION) if f"{k}.npy" not in z.zip.namelist()]
        if missing:
            raise KeyError(f"arrays {missing} missing")
        out = {
            "variants": [tuple(v) for v in json.loads(str(z["variants"]))],
            "angle_variants": [int(v) for v in json.loads(str(z["angle_variants"]))],
            "labels": z["labels"],
            "extra": json.loads(str(z["extra"])),
        }
    out["angle_shape"] = member_memmap(path, "angle").shape
    return out


def member_memmap(path: Path, name: str) -> np.ndarray:
    """A read-only memory map of array `name` in the .npz at `path` when it is stored uncompressed (np.savez), else
    the array read whole."""
    with zipfile.ZipFile(path) as z:
        info = z.getinfo(f"{name}.npy")
    if info.compress_type != zipfile.ZIP_STORED:
        with np.load(path, allow_pickle=False) as z:
            return z[name]
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)  # the member's local header: its own name and extra-field lengths fix the data offset
        if len(local) < 30 or local[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile(f"{path}: member {name}.npy has no local header")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(f)
        offset = f.tell()
    if dtype.hasobject:
        raise ValueError(f"{path}: {name} holds Python objects")
    if int(np.prod(shape)) == 0:
        return np.empty(shape, dtype)  # mmap cannot map zero bytes
    if offset + int(np.prod(shape)) * dtype.itemsize > info.header_offset + 30 + name_len + extra_len + info.file_size:
        raise zipfile.BadZipFile(f"{path}: member {name}.npy is shorter than its header says")
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


class LazyModelResults(ModelResults):
    """ModelResults read from a results file an array at a time, on first use (`angle` memory-mapped)."""

    def __init__(self, path: Path, variants: list[tuple[str, int]], angle_variants: list[int]):  # noqa: D107
        self.__dict__.update(_path=Path(path), variants=list(variants), angle_variants=list(angle_variants))

    def __getattr__(self, name: str):
        if name.startswith("_") or name not in {f for f in ModelResults.__dataclass_fields__}:
            raise AttributeError(name)
        if name == "angle":
            value = member_memmap(self._path, "angle")
        else:
            with np.load(self._path, allow_pickle=False) as z:
                if name == "confusion":
                    value = Confusion(*(z[k] for k in CONFUSION))
                else:
                    value = z[name]
        self.__dict__[name] = value
        return value

    def __repr__(self) -> str:
        return f"LazyModelResults({self._path.name})"
