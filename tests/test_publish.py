"""One run per store, and a store switched in whole: the lock, the publish step and what a crash leaves."""

import json
import os
import threading
import time

import pytest

from lotterysite.store import SCHEMA_VERSION
from lotterysite.store import publish as pub
from lotterysite.store.io import FORMAT
from lotterysite.store.publish import StoreLockedError, publish, recover, staging_dir, store_lock, work_dir


def test_a_second_run_is_refused_naming_the_holder(tmp_path):
    store = tmp_path / "s"
    with store_lock(store):
        with pytest.raises(StoreLockedError, match=rf"{store}: in use by pid {os.getpid()} on host .*--wait"):
            with store_lock(store):
                pass
    with store_lock(store):  # released
        pass


def test_wait_waits_for_the_holder(tmp_path):
    store = tmp_path / "s"
    messages, order = [], []
    held = threading.Event()

    def holder():
        with store_lock(store):
            held.set()
            time.sleep(0.5)
            order.append("first done")

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    with store_lock(store, wait=True, say=messages.append):
        order.append("second in")
    t.join()
    assert order == ["first done", "second in"]
    assert "waiting for it to finish" in messages[0]


def test_a_stale_lock_is_reported_and_taken_over(tmp_path):
    store = tmp_path / "s"
    lock = work_dir(store) / "lock"
    lock.parent.mkdir(parents=True)
    lock.write_text('{"host": "gone", "pid": 99999999, "since": "yesterday"}')  # a run killed with kill -9
    messages = []
    with store_lock(store, say=messages.append):
        pass
    assert "stale lock of pid 99999999 on host gone" in messages[0]
    assert lock.read_text() == ""


def signed(content: str) -> str:
    """A manifest.json with lotterysite's signature and nothing listed; `content` tells stores apart."""
    return json.dumps({"format": FORMAT, "schema_version": SCHEMA_VERSION, "files": {}, "note": content})


def note(store) -> str:
    return json.loads((store / "manifest.json").read_text())["note"]


def _store(path, content):
    path.mkdir()
    (path / "manifest.json").write_text(signed(content))


def test_publish_switches_whole_stores(tmp_path):
    store = tmp_path / "s"
    for run, content in (("r1", "first"), ("r2", "second")):
        staging = staging_dir(store, run)
        (staging / "manifest.json").write_text(signed(content))
        publish(staging, store)
        assert note(store) == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]  # no staging, no previous store left


def test_publish_without_an_atomic_exchange(tmp_path, monkeypatch):
    monkeypatch.setattr(pub, "_exchange", lambda a, b: False)
    store = tmp_path / "s"
    _store(store, "old")
    staging = staging_dir(store, "r2")
    (staging / "manifest.json").write_text(signed("new"))
    publish(staging, store)
    assert note(store) == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]


def test_recover_restores_the_previous_store_after_a_crash_mid_switch(tmp_path):
    """Without an atomic exchange the switch is two renames; kill -9 between them leaves the old store aside."""
    store = tmp_path / "s"
    _store(tmp_path / ".s.previous-abc", "old")
    _store(tmp_path / ".s.staging-20260101-abc", "new, never switched in")
    messages = []
    recover(store, say=messages.append)
    assert note(store) == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]
    assert "restored the previous store" in messages[0]


def test_recover_moves_work_of_the_old_layout_out_of_the_store(tmp_path):
    store = tmp_path / "s"
    (store / ".work" / "models").mkdir(parents=True)
    (store / ".work" / "models" / "m.pt").write_bytes(b"weights")
    recover(store, say=lambda m: None)
    assert (work_dir(store) / "models" / "m.pt").read_bytes() == b"weights"
    assert not (store / ".work").exists()
