"""Where a store's work lives, one run per store, and publishing a new store in one switch.

    store/demo/            the published store: only what the site reads
    store/demo.work/       finished work (checkpoints, results, corruptions), the lock, the digest cache
    store/.demo.staging-*  a new store being written; it replaces store/demo only when whole

A new store is written beside the old one and switched in with one rename (an atomic exchange where the file
system has one), so a reader, a crash or a full disk never meets a store that is half old, half new.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shutil
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from ..errors import LotterysiteError
from ..fileio import make_dirs, storage_error
from .io import StoreError


class StoreLockedError(LotterysiteError):
    """Another run holds the store's lock; the message names it."""


def work_dir(store: Path) -> Path:
    return store.parent / f"{store.name}.work"


def _siblings(store: Path, kind: str) -> list[Path]:
    return sorted(store.parent.glob(f".{store.name}.{kind}-*")) if store.parent.is_dir() else []


def _say(message: str) -> None:
    print(message, file=sys.stderr)


# -- lock ---------------------------------------------------------------------------------------------------------
def _holder(fd: int) -> dict | None:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        info = json.loads(text)
        return info if isinstance(info, dict) else {"raw": text}
    except ValueError:
        return {"raw": text}


def _describe_holder(info: dict | None) -> str:
    if not info:
        return "another run"
    if "raw" in info:
        return f"another run ({info['raw'][:80]!r})"
    return f"pid {info.get('pid')} on host {info.get('host')} (since {info.get('since')})"


@contextmanager
def store_lock(store: Path, *, wait: bool = False, say: Callable[[str], None] = _say) -> Iterator[Path]:
    """Hold the lock of `store` (in its work folder) for one run. A second run is refused with the holder's host
    and pid, or waits with `wait`. The lock is the kernel's (flock): it dies with its process, so a run killed with
    kill -9 never blocks the next one; the holder it leaves behind is reported as stale."""
    import fcntl

    path = make_dirs(work_dir(store)) / "lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as e:
        raise storage_error(path, "open the lock file", e) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe_holder(_holder(fd))
            if not wait:
                raise StoreLockedError(
                    f"{store}: in use by {holder} (lock {path}); wait for that run to finish, or rerun with --wait"
                ) from None
            say(f"{store}: in use by {holder}; waiting for it to finish")
            fcntl.flock(fd, fcntl.LOCK_EX)
        stale = _holder(fd)
        if stale:
            say(f"{store}: stale lock of {_describe_holder(stale)} found: that run ended without releasing it; "
                "taking it over")  # fmt: skip
        me = {"host": socket.gethostname(), "pid": os.getpid(),
              "since": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps(me).encode())
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the flock


# -- publishing ---------------------------------------------------------------------------------------------------
def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + f"-{os.getpid()}-{os.urandom(3).hex()}"


def staging_dir(store: Path, run_id: str) -> Path:
    """An empty folder beside `store` for the new store (same file system, so the switch is a rename)."""
    path = store.parent / f".{store.name}.staging-{run_id}"
    make_dirs(store.parent)
    try:
        os.mkdir(path, 0o777)  # the umask applies, as for any new folder
    except OSError as e:
        raise storage_error(path, "create the staging folder", e) from None
    return path


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where the system has no such call."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def check_replaceable(store: Path) -> None:
    """`store` may be replaced as a whole: absent, an empty folder, or a store (it has a manifest.json). Anything
    else is the user's (a data folder passed as --store by mistake): publishing would delete it."""
    if store.is_symlink() or (store.exists() and not store.is_dir()):
        raise StoreError(f"{store}: exists and is not a store folder (a file or a link); it is switched by "
                         "rename, so give --store a folder path")  # fmt: skip
    if store.is_dir() and not (store / "manifest.json").is_file() and any(store.iterdir()):
        raise StoreError(
            f"{store}: exists and is not a lotterysite store (no manifest.json), and precompute "
            "replaces its --store folder as a whole; give a new or empty folder, or move it away"
        )


def publish(staging: Path, store: Path) -> None:
    """Make the whole store in `staging` the store at `store`, in one switch, then delete the previous one."""
    try:
        if not store.exists():
            os.rename(staging, store)
            return
        check_replaceable(store)  # checked when the run began too; the folder may have changed since
        if _exchange(staging, store):
            shutil.rmtree(staging, ignore_errors=True)  # now the previous store
            return
        # No atomic exchange here: two renames, and `recover` undoes a crash between them.
        previous = store.parent / f".{store.name}.previous-{staging.name.rsplit('-', 1)[-1]}"
        os.rename(store, previous)
        os.rename(staging, store)
        shutil.rmtree(previous, ignore_errors=True)
    except OSError as e:
        raise storage_error(store, "switch in the new store", e) from None


def recover(store: Path, say: Callable[[str], None] = _say) -> None:
    """Undo what an interrupted run left (call with the lock held): restore a previous store a crash left aside,
    delete unfinished staging folders, and move work from the old layout (store/.work) beside the store."""
    previous = _siblings(store, "previous")
    if previous and not store.exists():
        os.rename(previous[-1], store)
        say(f"{store}: restored the previous store, set aside by a run that was interrupted while publishing")
    for path in _siblings(store, "previous") + _siblings(store, "staging"):
        shutil.rmtree(path, ignore_errors=True)
    old_work = store / ".work"
    if old_work.is_dir() and not work_dir(store).joinpath("models").exists():
        make_dirs(work_dir(store))
        for child in old_work.iterdir():
            target = work_dir(store) / child.name
            if not target.exists():
                os.rename(child, target)
        shutil.rmtree(old_work, ignore_errors=True)
        say(f"{store}: moved finished work from {old_work} to {work_dir(store)}")
