"""`lotterysite data fetch` against an HTTP server on 127.0.0.1 serving archives the test builds."""

import dataclasses
import functools
import hashlib
import http.server
import io
import pickle
import tarfile
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from lotterysite.cli import main
from lotterysite.data import DataError, load_dataset
from lotterysite.data import fetch as fetch_mod
from lotterysite.data.fetch import fetch_dataset


def _cifar10_archive() -> bytes:
    """A small archive in the official layout: cifar-10-batches-py/{batches.meta, data_batch_1..5, test_batch}."""
    rng = np.random.default_rng(0)
    members = {"batches.meta": {"label_names": [f"class{i}" for i in range(10)]}}
    for name, n in [(f"data_batch_{i}", 3) for i in range(1, 6)] + [("test_batch", 4)]:
        members[name] = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(range(n))}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, obj in members.items():
            data = pickle.dumps(obj)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/served on 127.0.0.1; yields (base URL, served folder)."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", served
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def good_archive(monkeypatch):
    archive = _cifar10_archive()
    spec = fetch_mod.DOWNLOADS["cifar10"]
    md5 = hashlib.md5(archive).hexdigest()
    monkeypatch.setitem(fetch_mod.DOWNLOADS, "cifar10", dataclasses.replace(spec, files=((spec.files[0][0], md5),)))
    return archive


def test_fetch_downloads_verifies_and_extracts_where_the_loader_looks(server, good_archive, tmp_path, monkeypatch):
    url, served = server
    (served / "cifar-10-python.tar.gz").write_bytes(good_archive)
    root = tmp_path / "data"
    folder = fetch_dataset("cifar10", root, mirror=url)
    assert folder == root / "cifar-10-batches-py"
    # The test archive's pickles are not the official ones (their MD5s differ), so they are read as trusted.
    assert len(load_dataset("cifar10", folder, trust_pickles=True).test) == 4
    # The default root is where load_dataset looks without a root.
    monkeypatch.setenv("LOTTERYSITE_DATA", str(tmp_path / "home"))
    result = CliRunner().invoke(main, ["data", "fetch", "cifar10", "--mirror", url])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "home" / "cifar-10-batches-py" / "test_batch").exists()
    # Already in place: nothing is downloaded again (the server no longer has the file).
    (served / "cifar-10-python.tar.gz").unlink()
    assert fetch_dataset("cifar10", root, mirror=url) == folder


def test_checksum_mismatch_is_one_line_saying_what_to_download_and_where(server, good_archive, tmp_path):
    url, served = server
    (served / "cifar-10-python.tar.gz").write_bytes(good_archive[:-100] + bytes(100))  # corrupted
    result = CliRunner().invoke(main, ["data", "fetch", "cifar10", "--root", str(tmp_path / "d"), "--mirror", url])
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and "checksum mismatch" in line
    assert f"download {url}cifar-10-python.tar.gz yourself" in line
    assert str(tmp_path / "d" / "cifar-10-python.tar.gz") in line
    assert not list((tmp_path / "d").iterdir())  # nothing half-written left behind


def test_offline_is_one_line_and_a_copied_file_is_used(server, good_archive, tmp_path):
    url, served = server
    offline = "http://127.0.0.1:9/"  # the discard port: nothing listens there
    with pytest.raises(DataError) as e:
        fetch_dataset("cifar10", tmp_path, mirror=offline, timeout=5)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"cannot download {offline}cifar-10-python.tar.gz")
    assert f"put it at {tmp_path / 'cifar-10-python.tar.gz'}" in msg
    # Doing what the message says works without a network.
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(good_archive)
    folder = fetch_dataset("cifar10", tmp_path, mirror=offline)
    assert len(load_dataset("cifar10", folder, trust_pickles=True).train) == 15


def test_idx_files_are_kept_gzipped_for_the_loader(server, tmp_path, monkeypatch):
    from test_data import write_idx

    url, served = server
    rng = np.random.default_rng(0)
    files = []
    for prefix, n in (("train", 6), ("t10k", 3)):
        write_idx(served / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(served / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    for name, _ in fetch_mod.DOWNLOADS["mnist"].files:
        files.append((name, hashlib.md5((served / name).read_bytes()).hexdigest()))
    monkeypatch.setitem(
        fetch_mod.DOWNLOADS, "mnist", dataclasses.replace(fetch_mod.DOWNLOADS["mnist"], files=tuple(files))
    )
    folder = fetch_dataset("mnist", tmp_path / "d", mirror=url)
    assert folder == tmp_path / "d" / "mnist" and len(load_dataset("mnist", folder).test) == 3


def test_cli_offers_every_downloadable_data_set():
    fetch = main.commands["data"].commands["fetch"]
    assert sorted(fetch.params[0].type.choices) == sorted(fetch_mod.DOWNLOADS)
