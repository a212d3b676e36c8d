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
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from ..errors import LotterysiteError
from ..fileio import make_dirs, storage_error
from .io import StoreError, escape_controls, signature_problem, unlisted_entries


class StoreLockedError(LotterysiteError):
    """Another run holds the store's lock; the message names it."""


def work_dir(store: Path) -> Path:
    return store.parent / f"{store.name}.work"


def _siblings(store: Path, kind: str) -> list[Path]:
    """What runs left beside `store` (`.NAME.KIND-*`), matched as plain text: a store named `[x]` or `*` is no
    pattern that could match another store's folders."""
    prefix = f".{store.name}.{kind}-"
    try:
        names = os.listdir(store.parent)
    except OSError:
        return []
    return sorted(store.parent / n for n in names if n.startswith(prefix))


def _remove(path: Path, say: Callable[[str], None]) -> None:
    """Delete a folder lotterysite made (a staging folder, a previous store); say so where something stays."""
    shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path):
        say(f"warning: {path}: could not be deleted completely (check its permissions); delete it by hand")


def _say(message: str) -> None:
    print(message, file=sys.stderr)


# -- lock ---------------------------------------------------------------------------------------------------------
def _holder(fd: int) -> dict | None:
    """The holder a lock file names: the JSON object a run wrote, else None (an empty or foreign file, whose
    content is never shown: the lock path may have been pointed at someone's file)."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode("utf-8", "replace").strip()
    if not text:
        return None
    try:
        info = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(info, dict) or set(info) != {"host", "pid", "since"}:
        return {}
    return info


def _describe_holder(info: dict | None) -> str:
    if not info:
        return "another run" if info is None else "another run (the lock file holds no run's name)"
    host, pid, since = (escape_controls(str(info[k]))[:80] for k in ("host", "pid", "since"))
    return f"pid {pid} on host {host} (since {since})"


def _open_lock(path: Path) -> int:
    """Open the lock file, never through a symbolic link (one could aim the lock's writes at a user's file)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StoreError(f"{path}: the store's lock is a symbolic link; a lock file is never a link: delete "
                             "the link (not what it points to) and rerun") from None  # fmt: skip
        raise storage_error(path, "open the lock file", e) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise StoreError(f"{path}: the store's lock is not a regular file; delete it and rerun")
    return fd


@contextmanager
def store_lock(store: Path, *, wait: bool = False, say: Callable[[str], None] = _say) -> Iterator[Path]:
    """Hold the lock of `store` (in its work folder) for one run. A second run is refused with the holder's host
    and pid, or waits with `wait`. The lock is the kernel's (flock): it dies with its process, so a run killed with
    kill -9 never blocks the next one; the holder it leaves behind is reported as stale."""
    import fcntl

    path = make_dirs(work_dir(store)) / "lock"
    fd = _open_lock(path)
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
        if stale is not None:
            say(f"{store}: stale lock of {_describe_holder(stale)} found: that run ended without releasing it; "
                "taking it over")  # fmt: skip
        me = {"host": socket.gethostname(), "pid": os.getpid(),
              "since": datetime.now(UTC).isoformat(timespec="seconds")}  # fmt: skip
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            data = json.dumps(me).encode()
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as e:
            raise storage_error(path, "write the lock file", e) from None
        try:
            yield path
        finally:
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass  # the flock is what counts; it goes with the descriptor
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


def exchange(a: Path, b: Path) -> bool:
    """Swap the folders (or files) `a` and `b` in one atomic step where the system can; False where it cannot."""
    return _exchange(a, b)


NAME_MAX = 255  # bytes in one file name on the file systems lotterysite writes to


def check_replaceable(store: Path) -> None:
    """`store` may be replaced as a whole: absent or an empty folder, or a store lotterysite wrote (its signed
    manifest.json) holding nothing its manifest does not list, not read-only, not inside another store, in a folder
    that can be written. Anything else is the user's (an app, a data folder passed as --store by mistake), and
    publishing would delete it. Checked before any work and again at publish."""
    store = Path(store)
    longest = f".{store.name}.staging-{new_run_id()}"
    if len(longest.encode()) > NAME_MAX:
        raise StoreError(f"{store}: the name is too long: the store is written beside it as {longest[:40]}... "
                         f"({len(longest.encode())} bytes, more than {NAME_MAX}); give --store a name of at most "
                         f"{NAME_MAX - len(longest.encode()) + len(store.name.encode())} bytes")  # fmt: skip
    if store.is_symlink() or (store.exists() and not store.is_dir()):
        raise StoreError(f"{store}: exists and is not a store folder (a file or a link); it is switched by "
                         "rename, so give --store a folder path")  # fmt: skip
    for outer in _ancestors(store):
        if signature_problem(outer) is None:
            raise StoreError(f"{store}: is inside the store {outer}, which precompute replaces as a whole (this "
                             "store would be deleted with it); give --store a path outside every store")  # fmt: skip
    if store.is_dir() and any(store.iterdir()):
        why = signature_problem(store)
        if why is not None:
            raise StoreError(
                f"{store}: exists and is not a lotterysite store ({why}), and precompute "
                "replaces its --store folder as a whole; give a new or empty folder, or move it away"
            )
        extra = unlisted_entries(store)
        if extra:
            inner = next((e for e in extra if e.endswith("/") and signature_problem(store / e) is None), None)
            what = f"another store, {inner.rstrip('/')}" if inner else f"{extra[0]!r}"
            raise StoreError(f"{store}: holds {what}{f' and {len(extra) - 1} more' if len(extra) > 1 else ''} that "
                             "its manifest does not list, and precompute replaces the store as a whole; move "
                             f"{'them' if len(extra) > 1 else 'it'} out of the store and rerun")  # fmt: skip
        _check_not_read_only(store)
    _check_writable(store.parent)


def _ancestors(store: Path) -> list[Path]:
    plain = Path(os.path.abspath(store)).parents
    real = Path(os.path.realpath(store.parent))
    return list(dict.fromkeys([*plain, real, *real.parents]))


def _check_not_read_only(store: Path) -> None:
    """A store made read-only (chmod a-w) is meant to stay: replacing it anyway would also leave its old copy
    behind, undeletable."""
    for dirpath, dirs, names in os.walk(store):
        for p in [dirpath] + [os.path.join(dirpath, n) for n in dirs + names]:
            st = os.lstat(p)
            if not stat.S_ISLNK(st.st_mode) and (
                st.st_mode & 0o222 == 0 or (stat.S_ISDIR(st.st_mode) and not os.access(p, os.W_OK))
            ):
                raise StoreError(f"{p}: is read-only, and precompute replaces the store {store} as a whole; make "
                                 f"it writable (chmod -R u+w {store}) or give another --store")  # fmt: skip


def _check_writable(parent: Path) -> None:
    """The folder the store is switched in must take new folders: found now, not after hours of work."""
    parent = Path(os.path.abspath(parent))
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    try:
        mode = parent.stat().st_mode
    except OSError as e:
        raise storage_error(parent, "inspect the store's folder", e) from None
    if mode & 0o222 == 0:
        raise StoreError(f"{parent}: is read-only, and the store is written there; make it writable "
                         "(chmod u+w) or give --store a path in a writable folder")  # fmt: skip
    probe = parent / f".lotterysite-probe-{os.getpid()}-{os.urandom(3).hex()}"
    try:
        os.mkdir(probe)
    except OSError as e:
        raise storage_error(parent, "create the store's folders in", e) from None
    os.rmdir(probe)


def publish(staging: Path, store: Path, say: Callable[[str], None] = _say) -> None:
    """Make the whole store in `staging` the store at `store`, in one switch, then delete the previous one."""
    try:
        check_replaceable(store)  # checked when the run began too; the folder may have changed since
        if not store.exists():
            os.rename(staging, store)
            return
        if _exchange(staging, store):
            _remove(staging, say)  # now the previous store
            return
        # No atomic exchange here: two renames, and `recover` undoes a crash between them.
        previous = store.parent / f".{store.name}.previous-{staging.name.rsplit('-', 1)[-1]}"
        os.rename(store, previous)
        os.rename(staging, store)
        _remove(previous, say)
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
        _remove(path, say)
    old_work = store / ".work"
    if old_work.is_dir() and not work_dir(store).joinpath("models").exists():
        make_dirs(work_dir(store))
        for child in old_work.iterdir():
            target = work_dir(store) / child.name
            if not target.exists():
                os.rename(child, target)
        shutil.rmtree(old_work, ignore_errors=True)
        say(f"{store}: moved finished work from {old_work} to {work_dir(store)}")
