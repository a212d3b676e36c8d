"""What a result's key holds, and that finished work is reused only when it is what was written (issue 22): a model's
own source in its key, the same recipe from any path, only the used images digested, symlink loops, bit rot in
work files, diverged trainings, the class-folder image cache's key. Each test reproduced a defect."""

import os
import shutil
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from test_precompute_safety import SMALL, run

from lotterysite.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lotterysite.cli import main
from lotterysite.errors import LotterysiteError
from lotterysite.fileio import DigestCache, StorageError, check_seal, file_digest, seal
from lotterysite.models import create_model
from lotterysite.precompute import load_recipe, parse_recipe, plan_models
from lotterysite.precompute.plan import input_digests
from lotterysite.store import read_table
from lotterysite.store.publish import work_dir
from lotterysite.store.schema import MEASURED
from lotterysite.training import TrainingError

NET = textwrap.dedent("""
    from torch import nn

    def build(num_classes=10, in_channels=1, image_size=28):
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size**2, 16), nn.ReLU(),
                             nn.Linear(16, num_classes))
""")


def _fingerprints(recipe_path: Path) -> list[str]:
    recipe = load_recipe(recipe_path)
    return [e.fingerprint for e in plan_models(recipe, input_digests(recipe, DigestCache(trust=False)))]


# -- D2: a model's source file is in its key ---------------------------------------------------------------------
def test_editing_a_file_arch_changes_every_key_of_its_models(tmp_path):
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "pruned.pt").write_bytes(b"")  # a [[models]] file derived from it: only its content is digested
    text = (SMALL.replace('arch = "lenet5"', 'arch = "net.py:build"')
            + '[[models]]\nfile = "pruned.pt"\nbase = "net.py:build"\nlabel = "theirs"\n')  # fmt: skip
    (tmp_path / "r.toml").write_text(text)
    before = _fingerprints(tmp_path / "r.toml")
    assert len(before) == 3
    (tmp_path / "net.py").write_text(NET.replace("nn.ReLU()", "nn.Tanh()"))
    after = _fingerprints(tmp_path / "r.toml")
    assert all(a != b for a, b in zip(before, after, strict=True))  # dense, pruned and the [[models]] one


# -- D8: the same recipe through another path --------------------------------------------------------------------
def test_the_same_recipe_read_through_another_path_has_the_same_keys(tmp_path, monkeypatch):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "net.py").write_text(NET)
    torch.manual_seed(0)
    model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    save_checkpoint(folder / "mine.pt", model, in_channels=1, image_size=28)
    text = SMALL.replace('arch = "lenet5"', 'arch = "lenet5"\ncheckpoint = "mine.pt"\n[[architectures]]\n'
                         'arch = "net.py:build"')  # fmt: skip
    (folder / "r.toml").write_text(text)
    monkeypatch.chdir(folder)
    here = _fingerprints(Path("r.toml"))
    assert Path(load_recipe("r.toml").architectures[0].checkpoint).is_absolute()
    monkeypatch.chdir(tmp_path)
    assert _fingerprints(Path("project/r.toml")) == here
    moved = tmp_path / "moved"  # the whole project moved elsewhere: its files' contents are the same
    shutil.copytree(folder, moved)
    assert _fingerprints(moved / "r.toml") == here


def test_a_recipe_with_a_byte_order_mark_reads(tmp_path):
    (tmp_path / "r.toml").write_bytes("\ufeff".encode() + SMALL.encode())
    assert load_recipe(tmp_path / "r.toml").name == "small"


# -- D9 / D15: class-folder digests read only the used images; a link loop is one line ----------------------------
def _photo(path: Path, value: int, size=(12, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)


def _folder(root: Path, per_class: int = 3) -> Path:
    for split in ("train", "test"):
        for c, name in enumerate(("cat", "dog")):
            for i in range(per_class):
                _photo(root / split / name / f"{i}.png", 40 * c + 10 * i + (split == "test"))
    return root


def test_only_the_used_images_of_a_class_folder_set_are_digested(tmp_path, monkeypatch):
    from lotterysite.precompute import custom

    root = _folder(tmp_path / "data")
    (root / "imagenet.tar").write_bytes(b"x" * 1000)  # beside train/ and test/: never read
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    text = (SMALL.replace('name = "fashion_mnist"\ntrain_subset = 300\neval_subset = 60',
                          f'name = "imagefolder"\nroot = "{root}"\nimage_size = 8\ntrain_subset = 4\neval_subset = 4')
            .replace("train_subset = 50", "train_subset = 4"))  # fmt: skip
    recipe = parse_recipe(text, str(tmp_path / "r.toml"))
    read = []
    real = DigestCache.digest
    monkeypatch.setattr(DigestCache, "digest", lambda self, p: read.append(Path(p)) or real(self, p))
    digest = input_digests(recipe, DigestCache(trust=False), custom.load_splits(recipe))["data"]
    assert read and all(p.suffix == ".png" for p in read)
    assert len([p for p in read if "train" in p.parts]) == 4  # train_subset = 4 of 6
    read.clear()
    assert input_digests(recipe, DigestCache(trust=False))["data"]  # without the splits: every image, nothing else
    assert {p.suffix for p in read} == {".png"} and len(read) == 12
    _photo(root / "train" / "dog" / "2.png", 99)  # not among the 4 used training images
    assert input_digests(recipe, DigestCache(trust=False), custom.load_splits(recipe))["data"] == digest
    _photo(root / "train" / "cat" / "0.png", 99)
    assert input_digests(recipe, DigestCache(trust=False), custom.load_splits(recipe))["data"] != digest


def test_a_registry_data_set_is_digested_by_the_pixels_and_labels_it_uses(tmp_path):
    """D9: the whole data folder was hashed: a store or notes kept there changed every key."""
    from lotterysite.precompute import custom

    data = tmp_path / "data"
    shutil.copytree("/usr/share/datasets/fashion-mnist", data)
    text = SMALL.replace('name = "fashion_mnist"', f'name = "fashion_mnist"\nroot = "{data}"')
    recipe = parse_recipe(text, str(tmp_path / "r.toml"))
    splits = custom.load_splits(recipe)
    before = input_digests(recipe, DigestCache(trust=False), splits)["data"]
    (data / "store.work").mkdir()
    (data / "store.work" / "results.npz").write_bytes(b"x" * 1000)
    assert input_digests(recipe, DigestCache(trust=False), splits)["data"] == before
    splits.test.labels[0] = (splits.test.labels[0] + 1) % 10  # another test split's content
    assert input_digests(recipe, DigestCache(trust=False), splits)["data"] != before
    other = parse_recipe(text.replace("train_subset = 300", "train_subset = 301"), str(tmp_path / "r.toml"))
    assert input_digests(other, DigestCache(trust=False), splits)["data"] != before


def test_a_symbolic_link_loop_in_a_data_folder_is_one_line_or_never_walked(tmp_path):
    """D15: precompute hung walking a data folder with a link loop. A folder digest names the loop in one line;
    precompute no longer walks the folder at all (it digests the pixels it uses), so it runs."""
    data = tmp_path / "data"
    shutil.copytree("/usr/share/datasets/fashion-mnist", data)
    (data / "sub").mkdir()
    (data / "sub" / "loop").symlink_to(data)
    (data / "twin").symlink_to(data / "sub", target_is_directory=True)  # read twice, but no cycle
    with pytest.raises(StorageError, match="symbolic link loop"):
        DigestCache(trust=False).tree(data)
    (data / "sub" / "loop").unlink()
    assert DigestCache(trust=False).tree(data)
    (data / "sub" / "loop").symlink_to(data)
    text = SMALL.replace('name = "fashion_mnist"', f'name = "fashion_mnist"\nroot = "{data}"')
    (tmp_path / "r.toml").write_text(text)
    result = CliRunner().invoke(main, ["precompute", str(tmp_path / "r.toml"), "--store", str(tmp_path / "s"),
                                       "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0 and "store " in result.output, result.output


# -- D5: bit rot in finished work files --------------------------------------------------------------------------
def _flip_inside(path: Path, member: str | None = None) -> None:
    """Flip 64 bytes in the middle of `member` of a zip archive (its directory stays intact), or of the file."""
    data = bytearray(path.read_bytes())
    if member is None:
        start, size = 128, len(data) - 128
    else:
        with zipfile.ZipFile(path) as z:
            info = next(i for i in z.infolist() if i.filename.endswith(member))
        name_len, extra_len = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little"), \
            int.from_bytes(data[info.header_offset + 28 : info.header_offset + 30], "little")  # fmt: skip
        start = info.header_offset + 30 + name_len + extra_len + 128  # past the .npy header
        size = info.compress_size - 128
    middle = start + size // 2
    data[middle : middle + 64] = bytes(b ^ 0x5A for b in data[middle : middle + 64])
    stat = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


# The whole evaluation set ships where it fits the per-model row limit (store.sampling), and then `ship.seed` changes
# nothing: a limit of 60 rows (30 samples, 2 rows each) makes the shipped samples a seeded draw of 20 (+ exemplars).
ROT = SMALL.replace("[ship]\n", "[ship]\nmax_rows_per_model = 60\n")


@pytest.fixture(scope="module")
def rotting(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rot")
    run(ROT, folder / "store")
    return folder / "store"


@pytest.mark.parametrize("pattern, member", [("results/lenet5__dense-*.npz", "angle.npy"),
                                             ("models/lenet5__random__0.5-*.pt", "data/0"),
                                             ("corruptions/*/fog-1.npy", None)])  # fmt: skip
def test_bit_rot_in_a_work_file_is_reported_and_recomputed(rotting, tmp_path, pattern, member, capfd):
    store = tmp_path / "store"
    shutil.copytree(rotting, store)
    shutil.copytree(work_dir(rotting), work_dir(store))
    geometry = read_table(store / "geometry/lenet5__dense.arrow").to_pylist()
    models = read_table(store / "models.arrow").drop_columns(list(MEASURED)).to_pylist()  # wall times differ
    damaged = next(work_dir(store).glob(pattern))
    _flip_inside(damaged, member)
    assert check_seal(damaged) is not None
    text = ROT.replace("[ship]\n", "[ship]\nseed = 1\n")  # a changed recipe republishes the store
    run(text, store)
    err = capfd.readouterr().err
    assert f"warning: {damaged} is damaged" in err and "SHA-256" in err, err
    assert check_seal(damaged) is None  # computed again, and recorded again
    assert read_table(store / "models.arrow").drop_columns(list(MEASURED)).to_pylist() == models
    fresh = tmp_path / "fresh"
    run(text, fresh)
    assert read_table(store / "geometry/lenet5__dense.arrow").to_pylist() == read_table(
        fresh / "geometry/lenet5__dense.arrow").to_pylist()  # fmt: skip
    assert read_table(store / "geometry/lenet5__dense.arrow").to_pylist() != geometry  # the new seed's samples


def test_a_seal_records_the_content(tmp_path):
    f = tmp_path / "x.npy"
    f.write_bytes(b"abc")
    assert "no recorded digest" in check_seal(f)
    assert seal(f) == file_digest(f) and check_seal(f) is None
    f.write_bytes(b"abd")
    assert "SHA-256 differs" in check_seal(f)


# -- D13: a diverged training ------------------------------------------------------------------------------------
@pytest.mark.parametrize("where, edit", [
    ("lenet5/dense: the training diverged", ("epochs = 1", "epochs = 1\nlr = 1e10")),
    ("lenet5/random+retrain/0.5: retrain: the training diverged", ("amounts = [0.5]", "amounts = [0.5]\n"
                                                                    "retrain_epochs = 1\nretrain_lr = 1e10")),
])  # fmt: skip
def test_a_diverged_training_is_one_line_and_leaves_no_checkpoint(tmp_path, where, edit):
    text = SMALL.replace(*edit)
    (tmp_path / "r.toml").write_text(text)
    result = CliRunner().invoke(main, ["precompute", str(tmp_path / "r.toml"), "--store", str(tmp_path / "s"),
                                       "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert where in result.output and "lower the learning rate" in result.output, result.output
    assert not list((tmp_path / "s.work" / "models").glob("*retrain*.pt")) and not (tmp_path / "s").exists()
    if "dense" not in where:
        return
    assert not list((tmp_path / "s.work" / "models").glob("*.pt"))
    with pytest.raises(TrainingError):
        from lotterysite.precompute import precompute

        precompute(load_recipe(tmp_path / "r.toml"), store=tmp_path / "s", device="cpu", progress=False)


def test_a_nan_checkpoint_left_in_the_work_is_never_reused(rotting, tmp_path, capfd):
    """A NaN checkpoint (written before this check existed) was reused on every rerun, and pruning it gave a
    misleading error; now it is reported, deleted and trained again."""
    store = tmp_path / "store"
    shutil.copytree(rotting, store)
    shutil.copytree(work_dir(rotting), work_dir(store))
    dense = next(work_dir(store).glob("models/lenet5__dense-*.pt"))
    payload = torch.load(dense, weights_only=True)
    payload["state_dict"]["classifier.weight"].fill_(float("nan"))
    torch.save(payload, dense)
    seal(dense)
    for pattern in ("models/lenet5__random__0.5-*.pt", "results/lenet5__random__0.5-*.npz"):
        next(work_dir(store).glob(pattern)).unlink()  # the pruned model must be made again, from the dense one
    run(SMALL, store)
    assert f"warning: {dense} is damaged" in capfd.readouterr().err
    assert load_checkpoint(dense)


def test_non_finite_weights_are_never_saved_nor_loaded(tmp_path):
    model = create_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    with torch.no_grad():
        model.classifier.weight[0, 0] = float("nan")
    with pytest.raises(CheckpointError, match=r"lenet5: weight 'classifier.weight' holds NaN .* lower the learning"):
        save_checkpoint(tmp_path / "nan.pt", model, in_channels=1, image_size=28)
    assert not (tmp_path / "nan.pt").exists()
    payload = {"format": "lotterysite-checkpoint/1", "arch": "lenet5", "num_classes": 10, "in_channels": 1,
               "image_size": 28, "options": {}, "state_dict": model.state_dict(), "masks": {}, "meta": {}}  # fmt: skip
    torch.save(payload, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="holds NaN or infinity"):
        load_checkpoint(tmp_path / "nan.pt")
    assert issubclass(CheckpointError, LotterysiteError)


# -- D3 / D6: custom models in validation; a recipe is code --------------------------------------------------------
CIFAR_RESNET_LIKE = textwrap.dedent("""
    import torch
    from torch import nn

    class Net(nn.Module):  # its classifier is `self.linear`, as in the common CIFAR ResNets
        def __init__(self, num_classes=10):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1)
            self.linear = nn.Linear(4, num_classes)

        def forward(self, x):
            return self.linear(torch.flatten(nn.functional.adaptive_avg_pool2d(self.conv(x).relu(), 1), 1))

    def build(num_classes=10):
        return Net(num_classes)
""")


@pytest.mark.parametrize("source", [NET, CIFAR_RESNET_LIKE], ids=["sequential", "self-linear"])
def test_a_model_whose_last_linear_has_another_name_passes_validation(tmp_path, fmnist, source):
    from lotterysite.precompute.recipe import check_against_data

    (tmp_path / "net.py").write_text(source)
    (tmp_path / "r.toml").write_text(SMALL.replace('arch = "lenet5"', 'arch = "net.py:build"'))
    check_against_data(load_recipe(tmp_path / "r.toml"), fmnist.train, fmnist.test)  # raised NotImplementedError


@pytest.mark.parametrize("arch", ["os:system", "subprocess:check_call", "collections:OrderedDict"])
def test_a_callable_that_is_not_a_model_factory_is_refused_before_it_is_called(tmp_path, arch):
    marker = tmp_path / "ran"
    text = SMALL.replace('arch = "lenet5"', f'arch = "{arch}"\noptions = {{command = "touch {marker}"}}')
    (tmp_path / "r.toml").write_text(text)
    result = CliRunner().invoke(main, ["precompute", str(tmp_path / "r.toml"), "--plan"])
    assert result.exit_code == 1 and "not a model factory" in result.output, result.output
    assert result.output.strip().count("\n") == 0 and not marker.exists()


def test_precompute_help_says_a_recipe_runs_code():
    out = CliRunner().invoke(main, ["precompute", "--help"]).output
    assert "runs code" in out and "--plan" in out


# -- D14 / D23: class-folder checks --------------------------------------------------------------------------------
def _folder_recipe(root: Path, extra: str = "") -> str:
    return (SMALL.replace('name = "fashion_mnist"\ntrain_subset = 300\neval_subset = 60',
                          f'name = "imagefolder"\nroot = "{root}"\nimage_size = 8\n{extra}')
            .replace('arch = "lenet5"', 'arch = "net.py:build"').replace('names = ["fog"]', "names = []")
            .replace("[curse]", "[curse]\nenabled = false"))  # fmt: skip


def test_skipped_unreadable_images_are_counted_in_the_output_and_the_manifest(tmp_path):
    from lotterysite.store import read_manifest

    root = _folder(tmp_path / "data")
    (root / "test" / "cat" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "r.toml").write_text(_folder_recipe(root, "skip_unreadable = true"))
    result = CliRunner().invoke(main, ["precompute", str(tmp_path / "r.toml"), "--store", str(tmp_path / "s"),
                                       "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "skipped 1 unreadable test image (skip_unreadable = true), e.g." in result.output
    assert "skipped  0 unreadable train images, 1 unreadable test images" in result.output
    assert read_manifest(tmp_path / "s")["dataset"]["skipped_unreadable"] == {"train": 0, "test": 1}


def test_info_prints_the_skipped_unreadable_images(tmp_path):
    """D14: the skipped images were counted in the manifest, but `lotterysite info` never said so."""
    import json

    root = _folder(tmp_path / "data")
    (root / "train" / "dog" / "broken.png").write_bytes(b"not a png")
    (root / "train" / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (root / "test" / "cat" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "r.toml").write_text(_folder_recipe(root, "skip_unreadable = true"))
    store = tmp_path / "s"
    result = CliRunner().invoke(main, ["precompute", str(tmp_path / "r.toml"), "--store", str(store),
                                       "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "skipped  2 unreadable train images, 1 unreadable test images" in result.output
    info = CliRunner().invoke(main, ["info", str(store)])
    assert info.exit_code == 0, info.output
    assert "skipped  2 unreadable train images, 1 unreadable test images (skip_unreadable)" in info.output
    manifest = json.loads((store / "manifest.json").read_text())
    for value, expected in (({"train": 0, "test": 0}, "skipped  no unreadable images"),
                            (None, "skipped  unreadable images not recorded")):  # fmt: skip
        if value is None:
            del manifest["dataset"]["skipped_unreadable"]
        else:
            manifest["dataset"]["skipped_unreadable"] = value
        (store / "manifest.json").write_text(json.dumps(manifest))
        info = CliRunner().invoke(main, ["info", str(store)])
        assert info.exit_code == 0 and expected in info.output, info.output
    manifest["dataset"]["skipped_unreadable"] = {"train": "many", "test": 0}
    (store / "manifest.json").write_text(json.dumps(manifest))
    info = CliRunner().invoke(main, ["info", str(store)])
    assert info.exit_code == 1 and "manifest.json: a field is missing or malformed" in info.output, info.output
    assert info.output.strip().count("\n") == 0


def test_a_one_class_data_set_fails_before_any_training(tmp_path):
    root = _folder(tmp_path / "data")
    for split in ("train", "test"):
        shutil.rmtree(root / split / "dog")
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "r.toml").write_text(_folder_recipe(root))
    result = CliRunner().invoke(main, ["precompute", str(tmp_path / "r.toml"), "--store", str(tmp_path / "s"),
                                       "--device", "cpu"])  # fmt: skip
    assert result.exit_code == 1 and "field 'data.root' gives 1 class ('cat')" in result.output, result.output
    assert result.output.strip().count("\n") == 0 and not list(tmp_path.glob("s.work/models/*"))


# -- Ray and local stores: the documented tolerance ----------------------------------------------------------------
def test_stores_from_other_thread_counts_agree_within_the_documented_tolerance(tmp_path):
    """Ray's one-CPU tasks and a local run with more threads sum float32 in another order; what the README promises
    (aggregate.THREAD_TOLERANCE) holds between a one-thread and a two-thread run of one recipe."""
    from fnmatch import fnmatch

    from lotterysite.precompute.aggregate import THREAD_TOLERANCE

    text = SMALL.replace("train_subset = 300", "train_subset = 1000").replace("eval_subset = 60", "eval_subset = 300")
    before = torch.get_num_threads()
    stores = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            stores.append(tmp_path / f"t{threads}" / "store")
            stores[-1].parent.mkdir()
            run(text, stores[-1])
    finally:
        torch.set_num_threads(before)
    a, b = stores
    for name in ("models.arrow", "accuracy.arrow", "correlations.arrow", "geometry/lenet5__dense.arrow"):
        ta, tb = read_table(a / name).to_pydict(), read_table(b / name).to_pydict()
        rules = next((r for pattern, r in THREAD_TOLERANCE.items() if fnmatch(name, pattern)), {})
        for column, values in ta.items():
            rule = next((r for pattern, r in rules.items() if fnmatch(column, pattern)), None)
            if column == "rel_margin_change" or column in MEASURED:  # divides by margins near zero; wall times
                continue
            if rule is None or column in ("pred", "correct", "label"):
                assert values == tb[column], (name, column)
                continue
            x, y = np.asarray(values, float), np.asarray(tb[column], float)
            assert np.array_equal(np.isnan(x), np.isnan(y)), (name, column)
            ok = ~np.isnan(x)
            assert (np.abs(x - y)[ok] <= rule[0] + rule[1] * np.abs(x[ok])).all(), (name, column)


def test_force_rebuilds_the_image_cache_of_an_image_replaced_with_its_size_and_mtime(tmp_path):
    """D10: --force retrained on the new pixels while evaluation and thumbnails read the old cached ones."""
    from lotterysite.data import load_imagefolder
    from lotterysite.precompute import precompute

    root = tmp_path / "data"
    for split in ("train", "test"):
        for c, name in enumerate(("cat", "dog")):
            for i in range(3):
                (root / split / name).mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((8, 8, 3), 40 * c + 10 * i, np.uint8)).save(root / split / name / f"{i}.bmp")
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "r.toml").write_text(_folder_recipe(root))
    store = tmp_path / "s"
    precompute(load_recipe(tmp_path / "r.toml"), store=store, device="cpu", progress=False)
    photo = load_imagefolder(root, 8).test.files[0]
    stat = photo.stat()
    Image.fromarray(np.full((8, 8, 3), 250, np.uint8)).save(photo)
    os.utime(photo, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert photo.stat().st_size == stat.st_size
    precompute(load_recipe(tmp_path / "r.toml"), store=store, device="cpu", progress=False, force=True)
    caches = sorted((work_dir(store) / "images").glob("*.u8"), key=lambda p: p.stat().st_mtime_ns)
    assert np.fromfile(caches[-1], np.uint8)[: 3 * 64].min() == 250  # sample 0 is that photo, decoded anew


# -- end to end: the reruns the issue reproduced ---------------------------------------------------------------------
def test_a_rerun_after_a_model_source_edit_recomputes_and_through_another_path_reuses(tmp_path, monkeypatch):
    """D2: "models (2 reused)" after nn.ReLU became nn.Tanh in the model's file. D8: `precompute r.toml`, then
    `precompute dir/r.toml` from the parent retrained everything."""
    from lotterysite.precompute import precompute

    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "net.py").write_text(NET)
    (folder / "r.toml").write_text(SMALL.replace('arch = "lenet5"', 'arch = "net.py:build"')
                                   .replace("[curse]", "[curse]\nenabled = false"))  # fmt: skip
    store = tmp_path / "store"

    def rerun(recipe: str):
        return precompute(load_recipe(recipe), store=store, device="cpu", progress=False).reused

    monkeypatch.chdir(folder)
    assert "models" not in rerun("r.toml")
    monkeypatch.chdir(tmp_path)
    assert rerun("dir/r.toml") == {"data": 1, "models": 2, "evaluate": 2}
    (folder / "net.py").write_text(NET.replace("nn.ReLU()", "nn.Tanh()"))
    reused = rerun("dir/r.toml")
    assert "models" not in reused and "evaluate" not in reused
