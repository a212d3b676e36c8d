"""Atomic writes: whole files or none, the usual permissions, one-line errors for what the OS refuses."""

import os
import subprocess
import sys
import textwrap

import pytest

from lotterysite.fileio import DigestCache, StorageError, atomic_write, remove_temporaries, write_bytes


def test_new_files_get_the_umask_not_0600(tmp_path):
    old = os.umask(0o027)
    try:
        write_bytes(tmp_path / "a.bin", b"x")
        atomic_write(tmp_path / "b.bin", lambda tmp: open(tmp, "wb").write(b"y"))
    finally:
        os.umask(old)
    assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == 0o640


def test_refuses_to_replace_anything_but_a_regular_file(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    for name, kind in (("dir", "a folder"), ("link", "a symbolic link")):
        with pytest.raises(StorageError, match=f"{name}: exists and is {kind}; refusing to replace it"):
            write_bytes(tmp_path / name, b"x")
    with pytest.raises(StorageError, match="not a regular file"):
        write_bytes("/dev/null", b"x")
    assert not (tmp_path / "target").exists()


def test_a_failed_writer_leaves_nothing(tmp_path):
    def boom(tmp):
        open(tmp, "wb").write(b"half")
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "f.bin", boom)
    assert list(tmp_path.iterdir()) == []


def test_stale_temporaries_are_removed(tmp_path):
    (tmp_path / "sub").mkdir()
    stale = tmp_path / "sub" / ".x.npz.1a2b3c4d.tmp.npz"
    stale.write_bytes(b"half")
    keep = tmp_path / "sub" / "x.npz"
    keep.write_bytes(b"whole")
    assert remove_temporaries(tmp_path) == [stale]
    assert keep.exists() and not stale.exists()


SIZE_LIMITED = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
"""


def test_disk_full_is_one_line_with_path_operation_and_size(tmp_path):
    """A size-limited process stands in for a full disk: the write fails half-way, as it would on one."""
    target = tmp_path / "big.bin"
    code = SIZE_LIMITED + textwrap.dedent(f"""
        from lotterysite.fileio import StorageError, write_bytes
        try:
            write_bytes({str(target)!r}, b"x" * 200_000)
        except StorageError as e:
            print(e)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    line = out.stdout.strip()
    assert line.count("\n") == 0
    assert line.startswith(f"{target}: cannot write 195.3 KiB to (File too large)") and "ulimit -f" in line
    assert list(tmp_path.iterdir()) == []  # nothing partial


def test_digest_cache_rereads_a_file_replaced_at_the_same_path(tmp_path):
    f = tmp_path / "data" / "x.bin"
    f.parent.mkdir()
    f.write_bytes(b"one")
    cache = DigestCache(tmp_path / "digests.json")
    first, tree = cache.digest(f), cache.tree(f.parent)
    cache.save()
    f.write_bytes(b"three")  # (same size and mtime within one clock tick would fool the cache; --force digests again)
    again = DigestCache(tmp_path / "digests.json")
    assert again.digest(f) != first and again.tree(f.parent) != tree


def test_digesting_a_large_tree_shows_a_bar_and_the_same_digest(tmp_path, capsys):
    """ImageNet's first digest reads ~150 GB: precompute shows a bar over the files (only for trees of 1000+ files),
    and the bar changes nothing of the digest."""
    for i in range(1000):
        (tmp_path / "data" / f"c{i % 7}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / f"c{i % 7}" / f"{i}.jpg").write_bytes(str(i).encode())
    quiet = DigestCache(trust=False).tree(tmp_path / "data")
    assert "digest data/" not in capsys.readouterr().err
    shown = DigestCache(trust=False, progress=True).tree(tmp_path / "data")
    assert shown == quiet and "digest data/" in capsys.readouterr().err
    (tmp_path / "data" / "c0" / "0.jpg").write_bytes(b"changed")
    assert DigestCache(trust=False).tree(tmp_path / "data") != quiet
