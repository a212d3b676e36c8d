"""Files written whole or not at all, content digests, and one-line errors for what the OS refuses.

No torch here: the site imports the store, which writes through this module.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import LotterysiteError

TMP_MARK = ".tmp"  # every temporary this module makes is named .<name>.<random>.tmp<suffix>


class StorageError(LotterysiteError):
    """The operating system refused a read or write (disk full, no permission, ...); the message names the path,
    the operation and, where known, the space needed."""


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def storage_error(
    path: str | os.PathLike, operation: str, error: OSError, *, needed: int | None = None
) -> StorageError:
    """One line for an OSError: path, operation, the system's reason and what to do."""
    reason = error.strerror or str(error)
    message = f"{path}: cannot {operation} ({reason})"
    code = error.errno
    if code == errno.ENOSPC or code == errno.EDQUOT:
        try:
            free = shutil.disk_usage(_existing_parent(Path(path))).free
        except OSError:
            free = None
        need = f"{_size(needed)} needed" if needed else "more space needed"
        have = f", {_size(free)} free" if free is not None else ""
        message += f"; {need}{have}: free some space and rerun (finished work is kept)"
    elif code == errno.EFBIG:
        need = f" of {_size(needed)}" if needed else ""
        message += f"; a file size limit (ulimit -f) forbids a file{need}: raise the limit and rerun"
    elif code in (errno.EACCES, errno.EPERM):
        message += "; check the folder's permissions or choose another path"
    elif code == errno.EROFS:
        message += "; the file system is read-only: choose another path"
    return StorageError(message)


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_target(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise storage_error(path, "inspect the target", e) from None
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a symbolic link"
            if stat.S_ISLNK(st.st_mode)
            else "a folder"
            if stat.S_ISDIR(st.st_mode)
            else "not a regular file"
        )
        raise StorageError(f"{path}: exists and is {kind}; refusing to replace it, choose a new path or a regular file")


def make_dirs(path: str | os.PathLike) -> Path:
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StorageError(f"{path}: exists and is not a folder; remove it or choose another path") from None
    except OSError as e:
        raise storage_error(path, "create the folder", e) from None
    return path


def _new_temporary(path: Path) -> tuple[int, Path]:
    """Create an empty temporary beside `path`. Mode 0o666 less the umask, as for any new file (mkstemp's 0600
    would hide store files and checkpoints from collaborators and web servers)."""
    make_dirs(path.parent)
    while True:
        # The temporary keeps the final suffix: writers such as PIL pick the format from it.
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{TMP_MARK}{path.suffix}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as e:
            raise storage_error(path, "create a temporary file beside", e) from None


def _commit(tmp: Path, path: Path, needed: int | None) -> None:
    try:
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
    except OSError as e:
        raise storage_error(path, "flush", e, needed=needed) from None
    try:
        os.replace(tmp, path)
    except OSError as e:
        raise storage_error(path, "rename the finished temporary onto", e) from None


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically: readers never see a half-written file, and a crash (Ctrl-C, kill -9,
    power loss) or a full disk leaves the old file or the new one, never a part."""
    path = Path(path)
    _check_target(path)
    fd, tmp = _new_temporary(path)
    try:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as e:
            raise storage_error(path, f"write {_size(len(data))} to", e, needed=len(data)) from None
        finally:
            os.close(fd)
        _commit(tmp, path, len(data))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call `write(tmp_path)`, flush it to disk, then rename onto `path` (see `write_bytes`). Prefer `write_bytes`:
    a library that writes the file itself may report a full disk without the path or the errno."""
    path = Path(path)
    _check_target(path)
    fd, tmp = _new_temporary(path)
    os.close(fd)
    try:
        try:
            write(str(tmp))
        except OSError as e:
            raise storage_error(path, "write", e) from None
        _commit(tmp, path, None)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def scratch_file(path: str | os.PathLike) -> Iterator[Path]:
    """An empty temporary file beside `path`, removed afterwards (and by `remove_temporaries` after a crash): room
    for data too large for memory on its way into `path`."""
    fd, tmp = _new_temporary(Path(path))
    os.close(fd)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporaries an interrupted writer left under `folder` (kill -9 gives no chance to clean up)."""
    removed = []
    for dirpath, _, names in os.walk(folder):
        for name in names:
            if name.startswith(".") and TMP_MARK in name:
                p = Path(dirpath) / name
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content, hex."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as e:
        raise storage_error(path, "read", e) from None
    return h.hexdigest()


SEAL_SUFFIX = ".sha256"  # a work file's digest, recorded beside it when it is written (`seal`)


def _seal_path(path: Path) -> Path:
    return path.with_name(path.name + SEAL_SUFFIX)


def seal(path: str | os.PathLike) -> str:
    """Record the SHA-256 of the finished file at `path` beside it (PATH.sha256), for `check_seal` to compare before
    the file is reused: bit rot inside a file whose structure is intact (a flipped tensor, a flipped angle) is
    otherwise read as good numbers."""
    path = Path(path)
    value = file_digest(path)
    write_bytes(_seal_path(path), value.encode())
    return value


def check_seal(path: str | os.PathLike) -> str | None:
    """None when `path`'s content is what `seal` recorded, else why not (no record, or another digest)."""
    path = Path(path)
    try:
        recorded = _seal_path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return f"no recorded digest {_seal_path(path).name}"
    if file_digest(path) != recorded:
        return f"its content is not what was written: SHA-256 differs from {_seal_path(path).name}"
    return None


def unseal(path: str | os.PathLike) -> None:
    """Delete `path` and its recorded digest."""
    path = Path(path)
    path.unlink(missing_ok=True)
    _seal_path(path).unlink(missing_ok=True)


class DigestCache:
    """Content digests remembered by (size, mtime, inode), so a 200 MB data set is read once, not on every run.

    A file replaced in place with the same size and mtime would fool the cache; `--force` digests everything again.
    """

    def __init__(self, path: str | os.PathLike | None = None, *, trust: bool = True, progress: bool = False):
        self.path = Path(path) if path is not None else None
        self.trust = trust
        self.progress = progress  # a bar over the files of a large tree (ImageNet's first digest reads ~150 GB)
        self.entries: dict[str, list] = {}
        if self.path is not None and trust:
            try:
                loaded = json.loads(self.path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    self.entries = {k: v for k, v in loaded.items() if isinstance(v, list) and len(v) == 4}
            except (OSError, ValueError):
                pass  # a missing or damaged cache costs one re-read, nothing else
        self.changed = False

    def digest(self, path: str | os.PathLike) -> str:
        path = Path(path)
        try:
            st = path.stat()
        except OSError as e:
            raise storage_error(path, "read", e) from None
        key = str(path.resolve())
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        hit = self.entries.get(key)
        if hit is not None and hit[:3] == stamp:
            return hit[3]
        value = file_digest(path)
        self.entries[key] = stamp + [value]
        self.changed = True
        return value

    def tree(self, folder: str | os.PathLike) -> str:
        """One digest over every file under `folder` (relative names and contents; hidden files skipped). Links are
        followed; a link back to a folder above it (a cycle, which `os.walk` would follow forever) is an error."""
        folder = Path(folder)
        files = []
        ids: dict[Path, tuple[int, int]] = {}  # every folder walked, by its (device, inode)
        for dirpath, dirs, names in os.walk(folder, followlinks=True):
            here = Path(dirpath)
            try:
                st = os.stat(here)
            except OSError as e:
                raise storage_error(here, "read the folder", e) from None
            ids[here] = (st.st_dev, st.st_ino)
            # A folder that is one of its own ancestors is a cycle (a link to a sibling is only read twice).
            above = next((p for p in here.parents if ids.get(p) == ids[here]), None)
            if above is not None:
                raise StorageError(f"{here}: a symbolic link loop (it is {above} again); remove the link, or "
                                   "point the recipe at a folder without one")  # fmt: skip
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            files += [Path(dirpath) / n for n in sorted(n for n in names if not n.startswith("."))]
        return self.files(folder, [p for p in files if p.is_file()])

    def files(self, folder: str | os.PathLike, files: list[Path]) -> str:
        """One digest over the given files: their names relative to `folder`, and their contents."""
        from tqdm.auto import tqdm

        folder = Path(folder)
        h = hashlib.sha256()
        quiet = not self.progress or len(files) < 1000  # a bar only where reading can take a while
        for p in tqdm(files, desc=f"digest {folder.name}/", unit="file", leave=False, disable=quiet):
            h.update(f"{Path(p).relative_to(folder).as_posix()}\0{self.digest(p)}\n".encode())
        return h.hexdigest()

    def save(self) -> None:
        if self.path is not None and self.changed:
            write_bytes(self.path, json.dumps(self.entries, sort_keys=True).encode())
            self.changed = False
