"""precompute as a careless or hostile user meets it: changed inputs, damaged caches, failed store stages, bad
recipes, hostile stores. Each case was a reproduced defect; each must end in one line naming the file or field,
with nothing lost."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from click.testing import CliRunner

from lotterysite.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lotterysite.cli import main
from lotterysite.data import DataError, load_dataset
from lotterysite.fileio import DigestCache
from lotterysite.models import create_model
from lotterysite.precompute import RecipeError, load_recipe, parse_recipe, plan_models, precompute
from lotterysite.precompute import plan as plan_module
from lotterysite.precompute import publish as publish_module
from lotterysite.precompute.plan import input_digests
from lotterysite.store import StoreError, read_manifest, read_table, verify_store, write_manifest, write_table
from lotterysite.store.info import describe
from lotterysite.store.publish import store_lock, work_dir
from lotterysite.store.schema import MEASURED

SMALL = """
name = "small"
[data]
name = "fashion_mnist"
train_subset = 300
eval_subset = 60
[[architectures]]
arch = "lenet5"
[architectures.train]
epochs = 1
[[pruning]]
method = "random"
amounts = [0.5]
[corruptions]
names = ["fog"]
severities = [1]
[ship]
samples_per_class = 2
severities = [1]
[curse]
widths = [2]
random_dims = [2]
random_samples = 10
train_subset = 50
"""


def run(recipe_text: str, store: Path, folder: Path | None = None, **kw):
    folder = folder or store.parent
    path = folder / "r.toml"
    path.write_text(recipe_text)
    return precompute(load_recipe(path), store=store, device="cpu", progress=False, **kw)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    folder = tmp_path_factory.mktemp("base")
    run(SMALL, folder / "store")
    return folder / "store"


@pytest.fixture
def store(base, tmp_path):
    """A private copy of the base store and its work."""
    shutil.copytree(base, tmp_path / "store", symlinks=True)
    shutil.copytree(work_dir(base), tmp_path / "store.work", symlinks=True)
    return tmp_path / "store"


def snapshot(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in ("store", "store.work", "r.toml", "mine.pt"))


# -- publish atomically ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("failure", [KeyboardInterrupt, OSError])
def test_failed_store_stage_of_a_changed_recipe_keeps_the_previous_store(store, monkeypatch, failure):
    """Reproduces the mixed store: models/accuracy of one recipe, geometry/manifest of another."""
    before = snapshot(store)
    calls = []

    def failing(path, table, **kw):
        calls.append(path)
        if len(calls) == 4:  # models, accuracy and correlations of the new recipe are written: now die
            raise failure(28, "No space left on device")
        return real(path, table, **kw)

    real = publish_module.write_table
    monkeypatch.setattr(publish_module, "write_table", failing)
    with pytest.raises(failure):
        run(SMALL.replace("eval_subset = 60", "eval_subset = 50"), store)
    assert snapshot(store) == before  # exactly as it was
    assert leftovers(store.parent) == []  # no staging folder left
    assert "60 evaluation samples" in describe(store)


KILL_DURING_PUBLISH = """
import os, signal, sys
from lotterysite.precompute import load_recipe, precompute
from lotterysite.precompute import publish as publishing
from lotterysite.store import publish as pub

def die(*args):
    os.kill(os.getpid(), signal.SIGKILL)

if sys.argv[1] == "before-switch":
    publishing.publish = die  # the whole new store is staged: kill -9 just before the switch
else:
    pub._exchange = lambda a, b: False  # a file system without an atomic exchange: two renames
    rename = os.rename
    def first_then_die(a, b):
        rename(a, b)
        if ".previous-" in str(b):
            die()  # kill -9 between the two renames
    os.rename = first_then_die
precompute(load_recipe(sys.argv[2]), store=sys.argv[3], device="cpu", progress=False)
"""


@pytest.mark.parametrize("moment", ["before-switch", "mid-switch"])
def test_kill_9_while_publishing_a_changed_recipe(store, moment):
    before = snapshot(store)
    recipe = store.parent / "r.toml"
    recipe.write_text(SMALL.replace("eval_subset = 60", "eval_subset = 50"))
    out = subprocess.run([sys.executable, "-c", KILL_DURING_PUBLISH, moment, str(recipe), str(store)],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == -9, out.stderr[-2000:]
    if moment == "before-switch":
        assert snapshot(store) == before  # the previous store, exactly
    else:
        assert not store.exists()  # set aside; the next run (under the lock) restores it before anything else
        with pytest.raises(StoreError, match="interrupted while switching in a new store .* rerun"):
            describe(store)
    result = run(SMALL, store)
    assert result.reused["evaluate"] == 2 and leftovers(store.parent) == []
    assert "60 evaluation samples" in describe(store)


def test_store_and_manifest_record_digests_and_the_run(store):
    m = verify_store(store)
    assert m["files"]["models.arrow"]["sha256"] and m["files"]["gallery.png"]["rows"] is None
    meta = read_table(store / "accuracy.arrow").schema.metadata
    assert meta[b"lotterysite.run_id"].decode() == m["run_id"]


def test_a_file_swapped_in_from_another_run_is_refused_by_info_and_the_site(store, tmp_path):
    """The geometry file of one model replaced by another's: same schema, so only the digest tells."""
    from lotterysite.site.data import load_store

    other = store / "geometry" / "lenet5__random__0.5.arrow"
    shutil.copyfile(other, store / "geometry" / "lenet5__dense.arrow")
    for call in (describe, load_store):
        with pytest.raises(StoreError, match=r"lenet5__dense\.arrow: .*(bytes|SHA-256)"):
            call(store)
    result = CliRunner().invoke(main, ["info", str(store)])
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0


def test_a_store_mixed_from_two_runs_is_refused_even_with_fresh_digests(store, tmp_path):
    twin = tmp_path / "twin"
    run(SMALL.replace("eval_subset = 60", "eval_subset = 50"), twin, folder=tmp_path)
    shutil.copyfile(twin / "accuracy.arrow", store / "accuracy.arrow")
    write_manifest(store, read_manifest(store))  # someone "repairs" the digests by hand
    with pytest.raises(StoreError, match="accuracy.arrow: written by run .* a store mixed from two runs"):
        describe(store)


def test_a_store_path_that_is_a_file_or_link_is_refused_before_work(tmp_path):
    (tmp_path / "r.toml").write_text(SMALL)
    (tmp_path / "file").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    result = CliRunner().invoke(main, ["precompute", str(tmp_path / "r.toml"), "--store", str(tmp_path / "link")])
    assert result.exit_code == 1 and "link: exists and is not a store folder" in result.output
    with pytest.raises(StoreError, match="file: exists and is not a store folder"):
        precompute(load_recipe(tmp_path / "r.toml"), store=tmp_path / "file")
    assert (tmp_path / "file").read_text() == "mine" and not (tmp_path / "elsewhere").exists()


def test_a_folder_that_is_not_a_store_is_never_replaced(tmp_path):
    """A researcher's data folder given as --store by mistake: the published store used to be switched in and the
    folder, then "the previous store", deleted. Refused before any work, in one line, with the folder intact; the
    publish step refuses it as well (the folder may have appeared during a long run)."""
    from lotterysite.store.publish import publish, staging_dir

    (tmp_path / "r.toml").write_text(SMALL)
    data = tmp_path / "mydata"
    (data / "train" / "cat").mkdir(parents=True)
    (data / "train" / "cat" / "1.jpg").write_bytes(b"a photo")
    result = CliRunner().invoke(main, ["precompute", str(tmp_path / "r.toml"), "--store", str(data)])
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0, result.output
    assert "mydata: exists and is not a lotterysite store (no manifest.json)" in result.output
    assert not (tmp_path / "mydata.work" / "models").exists()  # no unit ran
    staging = staging_dir(data, "r1")
    (staging / "manifest.json").write_text("{}")
    with pytest.raises(StoreError, match="mydata: exists and is not a lotterysite store"):
        publish(staging, data)
    assert (data / "train" / "cat" / "1.jpg").read_bytes() == b"a photo"
    empty = tmp_path / "empty"
    empty.mkdir()
    publish(staging, empty)  # a new or empty folder is the store's to take
    assert (empty / "manifest.json").read_text() == "{}"


def test_manifest_that_is_a_list_is_one_line(store):
    (store / "manifest.json").write_text("[1, 2]")
    result = CliRunner().invoke(main, ["info", str(store)])
    assert result.exit_code == 1 and "manifest.json: holds a JSON list, not an object" in result.output
    assert result.output.strip().count("\n") == 0


# -- fingerprints of content -------------------------------------------------------------------------------------
def test_a_checkpoint_replaced_at_the_same_path_is_not_reused(tmp_path):
    """`checkpoint = "mine.pt"` (relative to the recipe's folder), then a new model saved at the same path."""
    recipe = SMALL.replace('arch = "lenet5"', 'arch = "lenet5"\ncheckpoint = "mine.pt"').replace(
        '[[pruning]]\nmethod = "random"\namounts = [0.5]\n', ""
    )
    recipe = recipe.replace("[curse]", "[curse]\nenabled = false")
    store = tmp_path / "store"
    test = load_dataset("fashion_mnist").test.head(60)
    accuracies = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
        save_checkpoint(tmp_path / "mine.pt", model, in_channels=1, image_size=28)
        cwd = os.getcwd()
        os.chdir("/")  # the path resolves against the recipe's folder, not the working directory
        try:
            result = run(recipe, store)
        finally:
            os.chdir(cwd)
        with torch.no_grad():
            direct = (model.eval()(test.float_images()).argmax(1) == test.labels).float().mean().item()
        stored = read_table(store / "models.arrow").to_pylist()[0]["clean_accuracy"]
        assert stored == pytest.approx(direct)
        accuracies.append(read_table(store / "geometry/lenet5__dense.arrow").column("margin").to_pylist())
        assert "models" not in result.reused and "evaluate" not in result.reused
    assert accuracies[0] != accuracies[1]  # the second model's numbers, not the first's


def test_fingerprints_cover_data_files_cifar10c_files_and_the_code_version(tmp_path, monkeypatch):
    data = tmp_path / "data"
    shutil.copytree("/usr/share/datasets/fashion-mnist", data)
    c10c = tmp_path / "c10c"
    c10c.mkdir()
    for name in ("fog", "labels"):
        np.save(c10c / f"{name}.npy", np.zeros(5, np.uint8))
    recipe = parse_recipe(
        SMALL.replace('name = "fashion_mnist"', f'name = "fashion_mnist"\nroot = "{data}"').replace(
            "[corruptions]", f'[corruptions]\nsource = "{c10c}"'
        ),
        str(tmp_path / "r.toml"),
    )
    digests = DigestCache()
    first = input_digests(recipe, digests)
    fps = [e.fingerprint for e in plan_models(recipe, first)]
    (data / "t10k-labels-idx1-ubyte.gz").write_bytes(b"another test split, same name")
    np.save(c10c / "fog.npy", np.ones(5, np.uint8))
    second = input_digests(recipe, digests)
    assert second["data"] != first["data"] and second["cifar10c"] != first["cifar10c"]
    assert all(a != b for a, b in zip(fps, (e.fingerprint for e in plan_models(recipe, second)), strict=True))
    monkeypatch.setattr(plan_module, "__version__", "99.0")
    assert all(a != b for a, b in zip(fps, (e.fingerprint for e in plan_models(recipe, first)), strict=True))


# -- one run per store -------------------------------------------------------------------------------------------
def test_a_second_run_on_a_locked_store_says_who_holds_it(store):
    (store.parent / "r.toml").write_text(SMALL)
    with store_lock(store):
        result = CliRunner().invoke(main, ["precompute", str(store.parent / "r.toml"), "--store", str(store)])
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0
    assert f"in use by pid {os.getpid()} on host" in result.output and "--wait" in result.output


# -- optional parts ----------------------------------------------------------------------------------------------
def test_a_store_with_every_optional_stage_off_builds_a_site(store, tmp_path, make_site):
    """No curse study, no pruning, no corruptions (so no gallery), no thumbnails: the site still builds."""
    text = (SMALL.replace("[curse]", "[curse]\nenabled = false").replace('names = ["fog"]', "names = []")
            .replace("[[pruning]]\nmethod = \"random\"\namounts = [0.5]\n", "")
            .replace("samples_per_class = 2", "samples_per_class = 2\nthumbnails = false"))  # fmt: skip
    run(text, store)
    files = read_manifest(store)["files"]
    assert "curse.arrow" not in files and "gallery.png" not in files and not (store / "curse.arrow").exists()
    site = make_site(tmp_path / "site", store)
    findings = (site / "findings/index.html").read_text()
    assert "no curse.arrow: its recipe switched the study off" in findings
    assert "no gallery.png" in findings and (site / "views/lenet5/local/index.html").exists()


# -- self-healing caches -----------------------------------------------------------------------------------------
def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: max(1, path.stat().st_size // 3)])


@pytest.mark.parametrize("pattern", ["results/lenet5__dense-*.npz", "corruptions/*/fog-1.npy", "curse-*.json",
                                     "models/lenet5__random__0.5-*.pt", "models/lenet5__dense-*.pt"])  # fmt: skip
def test_a_damaged_work_file_is_reported_deleted_and_recomputed(store, pattern, capfd):
    before = read_table(store / "models.arrow").drop_columns(list(MEASURED)).to_pylist()  # wall times differ
    damaged = next(work_dir(store).glob(pattern))
    _truncate(damaged)
    if pattern.startswith("models/"):  # a checkpoint is read only when its model's results must be recomputed
        next(work_dir(store).glob("results/lenet5__random__0.5-*.npz")).unlink()
    run(SMALL, store)
    err = capfd.readouterr().err
    assert f"warning: {damaged} is damaged" in err and "deleting it and computing it again" in err
    assert damaged.stat().st_size > 0 and (damaged.suffix != ".pt" or load_checkpoint(damaged))
    assert read_table(store / "models.arrow").drop_columns(list(MEASURED)).to_pylist() == before  # the same again


def test_stale_temporaries_are_cleaned(store):
    stale = work_dir(store) / "results" / ".x.npz.0badc0de.tmp.npz"
    stale.write_bytes(b"half a file")
    run(SMALL, store)
    assert not stale.exists()


# -- disk full ---------------------------------------------------------------------------------------------------
def test_disk_full_during_precompute_is_one_line_and_leaves_nothing_partial(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(SMALL.replace("[curse]", "[curse]\nenabled = false"))
    store = tmp_path / "store"
    code = ("import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
            "resource.setrlimit(resource.RLIMIT_FSIZE, (150_000, 150_000)); "
            "from lotterysite.cli import main; sys.argv = ['lotterysite'] + sys.argv[1:]; main()")  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", code, "precompute", str(recipe), "--store", str(store), "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert "Traceback" not in out.stderr
    assert last.startswith("Error: ") and ".pt: cannot write" in last and "File too large" in last, last
    assert not store.exists()  # no store at all rather than part of one
    assert not [p for p in work_dir(store).rglob("*") if ".tmp" in p.name]


# -- recipe holes ------------------------------------------------------------------------------------------------
HOLES = [
    (("train_subset = 300", "train_subset = -5"), r"field 'data\.train_subset' must be >= 1, got -5"),
    (("train_subset = 300", "train_subset = 0"), r"field 'data\.train_subset' must be >= 1, got 0"),
    (("train_subset = 300", 'train_subset = "2000"'), r"field 'data\.train_subset' must be int, got '2000'"),
    (("train_subset = 300", "train_subset = 2000.5"), r"field 'data\.train_subset' must be int, got 2000\.5"),
    (("train_subset = 300", "test_subset = -1"), r"field 'data\.test_subset' must be >= 1"),
    (('name = "fashion_mnist"', 'name = "fashion_mnist"\nroot = 5'), r"field 'data\.root' must be str, got 5"),
    (
        ("epochs = 1\n[[pruning]]", "epochs = 1\nbatch_size = 1.5\n[[pruning]]"),
        r"field 'architectures\[0\]\.train\.batch_size' must be int",
    ),
    (
        ("epochs = 1\n[[pruning]]", "epochs = 1\nlr = inf\n[[pruning]]"),
        r"field 'architectures\[0\]\.train\.lr' must be a finite number",
    ),
    (
        ("epochs = 1\n[[pruning]]", "epochs = 1\nweight_decay = -3\n[[pruning]]"),
        r"field 'architectures\[0\]\.train\.weight_decay' must be >= 0",
    ),
    (
        ("epochs = 1\n[[pruning]]", "epochs = 1\nwarmup_steps = -10\n[[pruning]]"),
        r"field 'architectures\[0\]\.train\.warmup_steps' must be >= 0",
    ),
    (
        ("epochs = 1\n[[pruning]]", 'epochs = 1\naugment = "yes"\n[[pruning]]'),
        r"field 'architectures\[0\]\.train\.augment' must be bool",
    ),
    (
        ("epochs = 1\n[[pruning]]", "epochs = 1\nseed = 99999999999999999\n[[pruning]]"),
        r"field 'architectures\[0\]\.train\.seed' must be <= 4294967295",
    ),
    (('name = "small"', 'name = "small"\nseeds = [18446744073709551615]'), r"field 'seeds\[0\]' must be <= 4294967295"),
    (
        ('arch = "lenet5"', 'arch = "lenet5"\noptions = {bogus = 3}'),
        r"field 'architectures\[0\]\.options\.bogus' is not an option of lenet5",
    ),
    (("[curse]", '[curse]\nenabled = "no"'), r"field 'curse\.enabled' must be bool, got 'no'"),
    (('names = ["fog"]', 'names = ["fog", "fog"]'), r"field 'corruptions\.names\[1\]' repeats 'fog'"),
    (("severities = [1]\n[ship]", "severities = [1, 1]\n[ship]"), r"field 'corruptions\.severities\[1\]' repeats 1"),
    (("amounts = [0.5]", "amounts = [0.5, 0.5]"), r"field 'pruning\[0\]\.amounts\[1\]' repeats 0\.5"),
    (("[curse]", '[curse]\narch = "lenet7"'), r"field 'curse\.arch' is 'lenet7', not a registered architecture"),
    (("[curse]", '[curse]\narch = "vgg16"'), r"field 'curse\.arch' is 'vgg16', which has no feature_dim option"),
    (("random_samples = 10", "random_samples = -5"), r"field 'curse\.random_samples' must be >= 2, got -5"),
    (("amounts = [0.5]", "amounts = [0.5]\ntaylor_batches = 2.5"), r"field 'pruning\[0\]\.taylor_batches' must be int"),
    (("amounts = [0.5]", "amounts = [0.5]\nmpt_lr = nan"), r"field 'pruning\[0\]\.mpt_lr' must be a finite number"),
    (("amounts = [0.5]", "amounts = [0.5]\nbogus = 1"), r"field 'pruning\[0\]\.bogus' is not a recipe field"),
    (
        ("eval_subset = 60", "eval_subset = 60\ntest_subset = 50"),
        r"field 'data\.eval_subset' is 60, more than test_subset = 50",
    ),
]


@pytest.mark.parametrize("edit, message", HOLES, ids=[h[0][1].replace("\n", " ")[:40] for h in HOLES])
def test_recipe_holes_are_one_line_naming_file_and_field(tmp_path, edit, message):
    text = SMALL.replace(*edit)
    assert text != SMALL
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(RecipeError, match=rf"^{re.escape(str(path))}: .*{message}"):
        load_recipe(path)


DATA_HOLES = [
    (
        ("train_subset = 300", "train_subset = 70000"),
        r"field 'data\.train_subset' is 70000, but fashion_mnist has only 60000",
    ),
    (("eval_subset = 60", "eval_subset = 20000"), r"field 'data\.eval_subset' is 20000, but only 10000 test images"),
    (
        ("amounts = [0.5]", "amounts = [0.5]\ntrain_subset = 301"),
        r"field 'pruning\[0\]\.train_subset' is 301, but only 300",
    ),
    (("train_subset = 50", "train_subset = 400"), r"field 'curse\.train_subset' is 400, but only 300"),
    (
        ('arch = "lenet5"', 'arch = "lenet5"\noptions = {feature_dim = -3}'),
        r"field 'architectures\[0\]\.options' does not build lenet5",
    ),
]


def test_holes_that_need_the_data_fail_before_any_model_trains(tmp_path):
    for edit, message in DATA_HOLES:
        path = tmp_path / "r.toml"
        path.write_text(SMALL.replace(*edit))
        result = CliRunner().invoke(main, ["precompute", str(path), "--store", str(tmp_path / "s")])
        assert result.exit_code == 1, result.output
        assert result.output.strip().count("\n") == 0 and str(path) in result.output
        assert re.search(message, result.output), result.output
        assert not (tmp_path / "s.work" / "models").exists()


# -- checkpoints -------------------------------------------------------------------------------------------------
def test_a_checkpoint_for_rgb_images_on_gray_data_names_the_field(tmp_path):
    ckpt = tmp_path / "rgb.pt"
    save_checkpoint(
        ckpt, create_model("lenet5", num_classes=10, in_channels=3, image_size=28), in_channels=3, image_size=28
    )
    path = tmp_path / "r.toml"
    path.write_text(SMALL.replace('arch = "lenet5"', 'arch = "lenet5"\ncheckpoint = "rgb.pt"'))
    result = CliRunner().invoke(main, ["precompute", str(path), "--store", str(tmp_path / "s")])
    assert result.exit_code == 1 and result.output.strip().count("\n") == 0
    assert "field 'architectures[0].checkpoint'" in result.output
    assert "field 'in_channels' is 3, but the data set's images have 1 channels" in result.output


def test_a_hand_made_checkpoint_missing_arch_names_the_field(tmp_path):
    model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    torch.save({"format": "lotterysite-checkpoint/1", "state_dict": model.state_dict()}, tmp_path / "hand.pt")
    with pytest.raises(CheckpointError, match=r"hand\.pt: field 'arch' is missing"):
        load_checkpoint(tmp_path / "hand.pt")


# -- security ----------------------------------------------------------------------------------------------------
def test_a_cifar_pickle_that_runs_code_is_never_opened(tmp_path):
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()
    (root / "batches.meta").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(DataError, match=r"batches\.meta: MD5 .*trust_pickles = true"):
        load_dataset("cifar10", root=root)
    assert not marker.exists()


def _rewrite(store: Path, name: str, column: str, value) -> None:
    table = read_table(store / name)
    meta = {k.decode().removeprefix("lotterysite."): v.decode() for k, v in table.schema.metadata.items()
            if k != b"lotterysite.schema_version"}  # fmt: skip
    i = table.schema.get_field_index(column)
    table = table.set_column(i, column, pa.array([value] * table.num_rows, table.schema.field(column).type))
    write_table(store / name, table.replace_schema_metadata(None), metadata=meta)
    write_manifest(store, read_manifest(store))  # a hostile store has consistent digests


def test_a_thumbnail_pointing_outside_is_refused(store):
    from lotterysite.site.data import load_store

    _rewrite(store, "samples.arrow", "thumbnail", "https://tracker.example/pixel.png")
    with pytest.raises(StoreError, match=r"samples\.arrow: row 0: field 'thumbnail' is not a data:image/png"):
        load_store(store)


def test_a_gallery_linked_to_a_private_file_is_refused(store, tmp_path):
    from lotterysite.site.data import load_store

    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    (store / "gallery.png").unlink()
    (store / "gallery.png").symlink_to(secret)
    write_manifest(store, read_manifest(store))
    with pytest.raises(StoreError, match=r"gallery\.png: not a regular file inside the store"):
        load_store(store)


def test_store_files_and_checkpoints_get_the_usual_permissions(store):
    umask = os.umask(0)
    os.umask(umask)
    for path in [*store.rglob("*"), *work_dir(store).rglob("*.pt")]:
        if path.is_file():
            assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


def test_csv_download_guards_against_formula_injection(tmp_path):
    """The site's download() run in node with a stub DOM: cells starting with = + - @ get a leading apostrophe."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not installed")
    js = (Path(__file__).parents[1] / "lotterysite/site/assets/lotterysite.js").read_text()
    start = js.index("  function download(")
    end = js.index("\n  }\n", start) + 4
    harness = (
        js[start:end]
        + """
let written = null;
globalThis.Blob = class { constructor(parts) { written = parts.join(""); } };
globalThis.URL = { createObjectURL: () => "blob:" };
globalThis.document = { body: { appendChild() {} } };
function el() { return { click() {}, remove() {} }; }
download("x.csv", [{ a: "=cmd|' /C calc'!A0", b: -1.5, c: "+1", d: "@SUM(A1)", e: "-2+3", f: "plain",
                    g: "x,\\"y\\"" }]);
console.log(written);
"""
    )
    (tmp_path / "h.js").write_text(harness)
    out = subprocess.run([node, str(tmp_path / "h.js")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.strip().splitlines()
    assert header == "a,b,c,d,e,f,g"
    assert row == "'=cmd|' /C calc'!A0,-1.5,'+1,'@SUM(A1),'-2+3,plain,\"x,\"\"y\"\"\""


def test_generated_corruptions_are_named_by_the_generator_s_code(tmp_path):
    """Cached corrupted images, the results made from them and the gallery are named by a digest of
    lotterysite/corruptions: a generator whose outputs changed (JPEG made exact) never reuses an older one's."""
    from lotterysite.precompute.run import _Runner

    recipe = parse_recipe(SMALL, str(tmp_path / "r.toml"))
    inputs = input_digests(recipe, DigestCache())
    assert inputs["corruptions"]
    runner = _Runner(recipe, tmp_path / "store", force=False, device=torch.device("cpu"), progress=False)
    entry = plan_models(recipe, inputs)[0]
    paths = []
    for code in (inputs["corruptions"], "another generator"):
        runner.inputs = {**inputs, "corruptions": code}
        paths.append((runner.corruption_path("fog", 1), runner.results_path(entry)))
    assert paths[0][0] != paths[1][0] and paths[0][1] != paths[1][1]
