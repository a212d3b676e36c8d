"""What a store is, and what precompute may replace: issue 22's store defects, each reproduced. A folder is a store
only by lotterysite's signature; nothing else (an app, a data set, a store inside a store, a read-only store) is
ever replaced, and every refusal comes before any work, in one line."""

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from lotterysite.cli import main
from lotterysite.precompute import RecipeError, load_recipe
from lotterysite.store import SCHEMA_VERSION, StoreError
from lotterysite.store.io import FORMAT, escape_controls
from lotterysite.store.publish import check_replaceable, publish, recover, staging_dir, store_lock, work_dir

RECIPE = """
name = "small"
[data]
name = "fashion_mnist"
train_subset = 300
eval_subset = 60
[[architectures]]
arch = "lenet5"
[architectures.train]
epochs = 1
[corruptions]
names = ["fog"]
severities = [1]
[ship]
samples_per_class = 2
severities = [1]
[curse]
enabled = false
"""


def signed(content: str, **more) -> str:
    return json.dumps({"format": FORMAT, "schema_version": SCHEMA_VERSION, "files": {}, "note": content, **more})


def make_store(path: Path, content: str = "old") -> Path:
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(signed(content))
    return path


def staged(store: Path, content: str = "new") -> Path:
    staging = staging_dir(store, "r2")
    (staging / "manifest.json").write_text(signed(content))
    return staging


def precompute_cli(tmp_path: Path, store: Path, recipe: str = RECIPE):
    (tmp_path / "r.toml").write_text(recipe)
    return CliRunner().invoke(main, ["precompute", str(tmp_path / "r.toml"), "--store", str(store)])


def one_line(result) -> bool:
    return result.exit_code == 1 and result.output.strip().count("\n") == 0 and "Traceback" not in result.output


# -- D1: a store is known by lotterysite's signature, not by any manifest.json -----------------------------------
@pytest.mark.parametrize(
    "manifest",
    ['{"name": "my-app", "version": "1.0.0"}', json.dumps({"schema_version": SCHEMA_VERSION, "files": {}}), "[1]"],
    ids=["app", "unsigned", "list"],
)
def test_a_folder_with_a_foreign_manifest_is_never_replaced(tmp_path, manifest):
    """An app folder (manifest.json and src/app.js) given as --store: precompute said rc 0 and src/ was gone."""
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text(manifest)
    (app / "src" / "app.js").write_text("my code")
    result = precompute_cli(tmp_path, app)
    assert one_line(result), result.output
    assert "app: exists and is not a lotterysite store" in result.output
    assert not (tmp_path / "app.work" / "models").exists()  # refused before any work
    with pytest.raises(StoreError, match="not a lotterysite store"):
        publish(staged(app), app)  # and at publish: the folder may appear during a long run
    assert (app / "src" / "app.js").read_text() == "my code" and (app / "manifest.json").read_text() == manifest


def test_a_signed_store_holding_unlisted_files_is_not_replaced(tmp_path):
    store = make_store(tmp_path / "s")
    (store / "notes.md").write_text("my notes")
    with pytest.raises(StoreError, match=r"s: holds 'notes.md' that its manifest does not list"):
        check_replaceable(store)
    with pytest.raises(StoreError, match="does not list"):
        publish(staged(store), store)
    assert (store / "notes.md").read_text() == "my notes"


def test_a_foreign_manifest_is_not_read_as_a_store(tmp_path):
    from lotterysite.store import read_manifest

    app = tmp_path / "app"
    app.mkdir()
    (app / "manifest.json").write_text(json.dumps({"schema_version": SCHEMA_VERSION, "files": {}}))
    with pytest.raises(StoreError, match="field 'format' is None, not 'lotterysite store'"):
        read_manifest(app)


# -- D11: no store inside a store, nor around one ----------------------------------------------------------------
def test_a_store_inside_a_store_is_refused(tmp_path):
    outer = make_store(tmp_path / "outer", "outer")
    result = precompute_cli(tmp_path, outer / "inner")
    assert one_line(result) and "is inside the store" in result.output, result.output
    assert not (outer / "inner.work").exists() and not (outer / "inner").exists()
    # At publish too: the outer folder may have become a store during a long run.
    staging = tmp_path / ".inner.staging-r2"
    staging.mkdir()
    (staging / "manifest.json").write_text(signed("inner"))
    with pytest.raises(StoreError, match="is inside the store"):
        publish(staging, outer / "inner")
    assert not (outer / "inner").exists()
    # Through a link to the outer store too.
    (tmp_path / "alias").symlink_to(outer)
    with pytest.raises(StoreError, match="is inside the store"):
        check_replaceable(tmp_path / "alias" / "inner")


def test_a_store_around_a_store_is_refused(tmp_path):
    """An inner store made by hand (or by an older lotterysite): publishing the outer one deleted it and its work."""
    outer = make_store(tmp_path / "outer", "outer")
    inner = make_store(outer / "inner", "inner")
    (outer / "inner.work" / "models").mkdir(parents=True)
    with pytest.raises(StoreError, match=r"outer: holds another store, inner and 1 more"):
        check_replaceable(outer)
    with pytest.raises(StoreError, match="holds another store"):
        publish(staged(outer), outer)
    assert json.loads((inner / "manifest.json").read_text())["note"] == "inner"
    assert (outer / "inner.work" / "models").is_dir()


# -- D18: a store's name is never a pattern ---------------------------------------------------------------------
def test_glob_characters_in_a_store_name_touch_no_other_store(tmp_path):
    """--store '[x]' restored store x's set-aside copy as its own and deleted x's staging folder."""
    aside = make_store(tmp_path / ".x.previous-abc", "x's previous store")
    staging = make_store(tmp_path / ".x.staging-20260101-abc", "x's run in progress")
    for name in ("[x]", "?", "*"):
        recover(tmp_path / name, say=lambda m: None)
        assert not (tmp_path / name).exists()
    assert aside.is_dir() and staging.is_dir()


# -- D22: nothing replaced that is read-only; nothing left behind -------------------------------------------------
def test_a_read_only_store_is_refused_before_work_and_at_publish(tmp_path):
    store = make_store(tmp_path / "s")
    os.chmod(store, 0o555)
    try:
        result = precompute_cli(tmp_path, store)
        assert one_line(result) and "is read-only" in result.output, result.output
        staging = staged(store)
        with pytest.raises(StoreError, match="is read-only"):
            publish(staging, store)
        assert json.loads((store / "manifest.json").read_text())["note"] == "old"
    finally:
        os.chmod(store, 0o755)


def test_a_read_only_parent_is_found_before_any_work(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    os.chmod(parent, 0o555)
    try:
        result = precompute_cli(tmp_path, parent / "s")
        assert one_line(result) and "ro: is read-only" in result.output, result.output
    finally:
        os.chmod(parent, 0o755)
    assert list(parent.iterdir()) == []


# -- D19: a name too long for a folder is refused when the recipe is read ----------------------------------------
def test_a_recipe_name_too_long_for_a_folder_is_refused_at_parse(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(RECIPE.replace('name = "small"', f'name = "{"n" * 240}"'))
    with pytest.raises(RecipeError, match=r"field 'name' is 240 bytes long, more than 100"):
        load_recipe(path)
    with pytest.raises(StoreError, match="the name is too long"):
        check_replaceable(tmp_path / ("s" * 240))


# -- D4: the lock never follows a link, never prints another file ------------------------------------------------
def test_the_lock_never_follows_a_link(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("my private notes, not a lock")
    store = tmp_path / "s"
    work_dir(store).mkdir()
    (work_dir(store) / "lock").symlink_to(secret)
    result = precompute_cli(tmp_path, store)
    assert one_line(result) and "lock is a symbolic link" in result.output, result.output
    assert "private" not in result.output
    assert secret.read_text() == "my private notes, not a lock"


def test_a_foreign_lock_content_is_never_printed(tmp_path):
    store = tmp_path / "s"
    work_dir(store).mkdir()
    (work_dir(store) / "lock").write_text("\x1b]0;pwned\x07 my private notes")
    messages = []
    with store_lock(store, say=messages.append):
        pass
    assert messages and "private" not in messages[0] and "\x1b" not in messages[0]


def test_a_lock_write_refused_by_the_system_is_one_line(tmp_path):
    """A full disk (here: a file size limit of 0, which fails the same write) gave a traceback."""
    code = (
        "import sys\nfrom pathlib import Path\nfrom lotterysite.errors import LotterysiteError\n"
        "from lotterysite.store.publish import store_lock\n"
        f"try:\n    with store_lock(Path({str(tmp_path / 's')!r})):\n        pass\n"
        "except LotterysiteError as e:\n    print(e)\n    sys.exit(1)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0)))  # fmt: skip
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "lock: cannot write the lock file (File too large)" in out.stdout


# -- D21: names from a store never reach the terminal as controls ------------------------------------------------
def test_escape_controls():
    assert escape_controls("cat\x1b[31m\nred\u202e") == "cat\\x1b[31m\\nred\\u202e"
    assert escape_controls("T-shirt/top é") == "T-shirt/top é"


# -- D16: sizes that pass validation and then fail to allocate are refused when the recipe is checked --------------
def test_a_random_vector_study_too_large_to_allocate_is_refused_at_parse(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(RECIPE.replace("enabled = false", "random_samples = 1000000000000\nrandom_dims = [2, 512]"))
    with pytest.raises(RecipeError, match=r"field 'curse.random_samples' is 1000000000000: .* lower random_samples"):
        load_recipe(path)


def test_a_model_too_large_to_allocate_is_refused_before_any_work(tmp_path):
    recipe = RECIPE.replace('arch = "lenet5"', 'arch = "lenet5"\noptions = {feature_dim = 1000000000}')
    result = precompute_cli(tmp_path, tmp_path / "s", recipe)
    assert one_line(result), result.output
    assert "field 'architectures[0].options' builds lenet5 with" in result.output and "feature_dim" in result.output
    assert not (tmp_path / "s.work" / "models").exists()
