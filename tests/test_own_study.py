"""A researcher's own study end to end: real ImageNet photos in class folders, a torchvision model with weights
from a file, a model from an import path with its classifier named `head`, a model pruned with
torch.nn.utils.prune listed under [[models]], two corruptions with ImageNet parameters; and bad recipes."""

import json
import textwrap

import pyarrow.ipc as ipc
import pytest
import torch
import torchvision
from torch.nn.utils import prune as torch_prune

from lotterysite.precompute import RecipeError, load_recipe, parse_recipe, precompute

HEADNET = textwrap.dedent("""
    from torch import nn

    class HeadNet(nn.Module):
        def __init__(self, num_classes, width):
            super().__init__()
            conv = nn.Conv2d(3, width, 5, stride=4)
            self.body = nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = nn.Linear(width, num_classes)

        def forward(self, x):
            return self.head(self.body(x))

    def build(num_classes, width=8):
        return HeadNet(num_classes, width)

    def nothing(num_classes):
        return None

    def conv_only(num_classes):
        return nn.Sequential(nn.Conv2d(3, num_classes, 64), nn.Flatten())
""")


def _read(path):
    with ipc.open_file(path) as f:
        return f.read_all()


@pytest.fixture(scope="module")
def study(imagenet_folder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    (folder / "headnet.py").write_text(HEADNET)
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(num_classes=1000)
    torch.save(tv.state_dict(), folder / "resnet18.pt")  # torchvision's layout, as its published weights are
    for module in (tv.conv1, tv.layer1[0].conv1):
        torch_prune.l1_unstructured(module, "weight", amount=0.5)
    torch.save(tv.state_dict(), folder / "resnet18-l1.pt")  # weight_orig + weight_mask
    recipe = textwrap.dedent(f'''
        name = "own-study"
        batch_size = 8

        [data]
        name = "imagefolder"
        root = "{imagenet_folder}"
        image_size = 64
        classes = "{imagenet_folder / "classes.txt"}"

        [[architectures]]
        arch = "tv:resnet18"
        weights = "resnet18.pt"

        [[architectures]]
        arch = "headnet.py:build"
        options = {{width = 6}}
        [architectures.train]
        epochs = 1
        batch_size = 8

        [[models]]
        file = "resnet18-l1.pt"
        base = "tv:resnet18"
        label = "torch-l1"

        [[pruning]]
        method = "magnitude"
        amounts = [0.5]

        [corruptions]
        names = ["gaussian_noise", "fog"]
        severities = [3]
        params = "imagenet"

        [ship]
        samples_per_class = 1

        [curse]
        enabled = false
    ''')
    (folder / "recipe.toml").write_text(recipe)
    store = folder / "store"
    result = precompute(load_recipe(folder / "recipe.toml"), store=store, device="cpu", progress=False)
    return folder, store, result


def test_own_study_end_to_end(study):
    folder, store, result = study
    manifest = json.loads((store / "manifest.json").read_text())
    assert len(manifest["dataset"]["classes"]) == 1000 and manifest["dataset"]["n_eval"] == 20
    assert manifest["dataset"]["image_size"] == 64
    models = _read(store / "models.arrow").to_pylist()
    by_id = {m["model_id"]: m for m in models}
    assert set(by_id) == {
        "tv:resnet18/dense", "tv:resnet18/magnitude/0.5", "tv:resnet18/torch-l1",
        "headnet.py:build/dense", "headnet.py:build/magnitude/0.5",
    }  # fmt: skip
    # A "file.py" arch keeps the recipe's spelling: the published store names no folder of this machine.
    for name in ("models.arrow", "accuracy.arrow", "samples.arrow"):
        assert str(folder) not in str(_read(store / name).to_pylist())
    ext = by_id["tv:resnet18/torch-l1"]
    tv = torchvision.models.resnet18(num_classes=1000)
    pruned = (tv.conv1.weight.numel() + tv.layer1[0].conv1.weight.numel()) // 2
    count = sum(m.weight.numel() for m in tv.modules() if isinstance(m, (torch.nn.Conv2d,)))
    # Measured from the weights over the prunable weights (the dense fc not counted), not taken from the label.
    assert ext["method"] == "torch-l1" and ext["sparsity"] == pytest.approx(pruned / count)
    assert ext["amount"] == pytest.approx(round(pruned / count, 4))
    assert by_id["tv:resnet18/magnitude/0.5"]["sparsity"] == pytest.approx(0.5, abs=1e-6)
    # The numbers themselves: test_own_study_numbers_equal_torchvisions_own_pipeline. Thumbnails here.
    samples = _read(store / "samples.arrow").to_pylist()
    assert samples and all(s["thumbnail"].startswith("data:image/webp;base64,") for s in samples)
    assert max(len(s["thumbnail"]) for s in samples) < 2600  # 64 px WebP, ~1 KB (base64: 4/3 of it)
    assert result.models == 5


def test_bad_recipes_are_one_line_naming_the_field(study, imagenet_folder, tmp_path):
    folder, _, _ = study
    base = (folder / "recipe.toml").read_text()
    cases = {
        ('arch = "headnet.py:build"', 'arch = "nosuch.module:build"'): "field 'architectures[1].arch' does not resolve",
        ('arch = "headnet.py:build"', 'arch = "headnet.py:missing"'): "has no function 'missing'",
        ("image_size = 64", ""): "field 'data.image_size' must be an integer >= 8",
        ("image_size = 64", "image_size = 64\nresize = 32"): "field 'data.resize' is 32, smaller than image_size 64",
        ("image_size = 64", "image_size = 64\nresize = 72.5"): "field 'data.resize'",
        ("image_size = 64", "image_size = 64\ninterpolation = 'lanczos'"): "field 'data.interpolation' is 'lanczos'",
        ('base = "tv:resnet18"', 'base = "tv:resnet50"'): "field 'models[0].base' is 'tv:resnet50', not the arch",
        # A label of lotterysite's own methods would put the model on that method's curve, or (at the same amount)
        # give it the same work files as the own model: a mixed store.
        ('label = "torch-l1"', 'label = "magnitude"\namount = 0.5'): "field 'models[0].label' is 'magnitude', a "
        "name lotterysite's own models use",
        ('label = "torch-l1"', 'label = "Magnitude_Retrain"'): "field 'models[0].label' is 'Magnitude_Retrain', a name",
        ('label = "torch-l1"', 'label = "torch-l1 "'): "field 'models[0].label' must be a method name",
        (
            'label = "torch-l1"\n',
            'label = "torch l1"\n[[models]]\nfile = "resnet18-l1.pt"\nbase = "tv:resnet18"\nlabel = "torch_l1"\n',
        ): "field 'models[1].label' is 'torch_l1', which names the same work files as",
        # Files and folders are checked when the recipe runs, before any work.
        ('weights = "resnet18.pt"', 'weights = "absent.pt"'): "field 'architectures[0].weights' is",
        (f'root = "{imagenet_folder}"', 'root = "nowhere"'): "field 'data.root' is",
        ('file = "resnet18-l1.pt"', 'file = "gone.pt"'): "field 'models[0].file' is",
    }
    for (old, new), message in cases.items():
        (folder / "bad.toml").write_text(base.replace(old, new))
        with pytest.raises(RecipeError) as e:
            precompute(load_recipe(folder / "bad.toml"), store=tmp_path / "s", device="cpu", progress=False)
        assert message in str(e.value) and "\n" not in str(e.value), (new, str(e.value))
        assert not (tmp_path / "s" / ".work" / "models").exists()


def test_resize_is_for_class_folders_only():
    with pytest.raises(RecipeError, match=r"field 'data.resize' applies to name = \"imagefolder\" only"):
        parse_recipe('name = "x"\n[data]\nname = "fashion_mnist"\nresize = 32\n[[architectures]]\narch = "lenet5"\n')


def test_bad_models_fail_one_line_at_run_time(study, tmp_path):
    folder, _, _ = study
    base = (folder / "recipe.toml").read_text()
    torch.save({"conv1.weight": torch.zeros(1)}, folder / "wrongkeys.pt")
    cases = {
        ('weights = "resnet18.pt"', 'weights = "wrongkeys.pt"'): "wrongkeys.pt: does not fit tv:resnet18 (missing keys",
        (
            'arch = "headnet.py:build"\noptions = {width = 6}',
            'arch = "headnet.py:nothing"',
        ): "returned NoneType, not a torch.nn.Module",
        ('arch = "headnet.py:build"\noptions = {width = 6}', 'arch = "headnet.py:conv_only"'): "has no nn.Linear layer",
    }
    for (old, new), message in cases.items():
        text = base.replace(old, new).replace(
            '[[models]]\nfile = "resnet18-l1.pt"\nbase = "tv:resnet18"\nlabel = "torch-l1"\n', ""
        )
        recipe = parse_recipe(
            text.replace('weights = "', f'weights = "{folder}/').replace('"headnet.py', f'"{folder}/headnet.py'),
            str(folder / "bad.toml"),
        )
        with pytest.raises(ValueError) as e:
            precompute(recipe, store=tmp_path / "s", device="cpu", progress=False)
        assert message in str(e.value) and "\n" not in str(e.value), (new, str(e.value))


def test_weights_for_another_class_count_stop_the_cli_before_any_work(study, tmp_path):
    """ImageNet weights (1000 classes) on a folder set of 19 classes without `classes`: what a newcomer following
    publish.md does first. `lotterysite precompute` says so in one line naming the field and the file's key, before
    a single unit runs; the same for a [[models]] file and for a model with no final linear layer (these printed a
    traceback: their errors were not the CLI's user errors)."""
    from click.testing import CliRunner

    from lotterysite.cli import main

    folder, _, _ = study
    base = (folder / "recipe.toml").read_text()
    no_classes = "\n".join(line for line in base.splitlines() if not line.startswith("classes = "))
    torch.save(torchvision.models.resnet18(num_classes=19).state_dict(), folder / "resnet18-19.pt")
    cases = {
        no_classes: ("field 'architectures[0].weights': ", "resnet18.pt: the weights' classifier 'fc.weight' has 1000 "
                     "classes but the data set has 19"),
        base.replace('file = "resnet18-l1.pt"', 'file = "resnet18-19.pt"'): ("field 'models[0].file': ",
                     "resnet18-19.pt: the weights' classifier 'fc.weight' has 19 classes but the data set has 1000"),
        base.replace('arch = "headnet.py:build"\noptions = {width = 6}', 'arch = "headnet.py:conv_only"'): (
            "field 'architectures[1].options'", "conv_only has no nn.Linear layer"),
    }  # fmt: skip
    for i, (text, message) in enumerate(cases.items()):
        (folder / f"cli{i}.toml").write_text(text)
        store = tmp_path / f"s{i}"
        out = CliRunner().invoke(main, ["precompute", str(folder / f"cli{i}.toml"), "--store", str(store)])
        assert out.exit_code == 1 and "Traceback" not in out.output, out.output
        error = [line for line in out.output.splitlines() if line.startswith("Error: ")]
        assert len(error) == 1 and all(part in error[0] for part in message), out.output
        assert not list(tmp_path.glob(f"s{i}*/models/*")), "a unit ran"  # STORE.work/models holds each model


def test_a_file_arch_s_code_is_in_its_fingerprint(study):
    """Editing the model's file changes the digests that name its work files, so its models are recomputed."""
    from lotterysite.fileio import DigestCache
    from lotterysite.precompute.plan import input_digests

    folder, _, _ = study
    recipe = load_recipe(folder / "recipe.toml")
    before = input_digests(recipe, DigestCache(folder / "d1.json", trust=False))
    assert before["source:headnet.py:build"] and "source:tv:resnet18" not in before
    copy = folder / "edited"
    copy.mkdir()
    (copy / "headnet.py").write_text(HEADNET.replace("stride=4", "stride=2"))
    (copy / "recipe.toml").write_text((folder / "recipe.toml").read_text().replace('"resnet18', f'"{folder}/resnet18'))
    after = input_digests(load_recipe(copy / "recipe.toml"), DigestCache(folder / "d2.json", trust=False))
    assert after["source:headnet.py:build"] != before["source:headnet.py:build"]
    assert after["weights:tv:resnet18"] == before["weights:tv:resnet18"]


def test_the_decoding_rules_are_in_the_data_fingerprint(study, monkeypatch):
    """Changing how class-folder images are decoded (data.imagefolder.DECODE) changes the data digest every model,
    evaluation and corruption fingerprint holds: no result computed on the old pixels is reused."""
    from lotterysite.data import imagefolder
    from lotterysite.fileio import DigestCache
    from lotterysite.precompute.plan import input_digests

    folder, _, _ = study
    recipe = load_recipe(folder / "recipe.toml")
    before = input_digests(recipe, DigestCache(folder / "d3.json", trust=False))["data"]
    monkeypatch.setattr(imagefolder, "DECODE", imagefolder.DECODE + 1)
    assert input_digests(recipe, DigestCache(folder / "d3.json", trust=False))["data"] != before


def test_the_data_digest_covers_the_splits_only(study, tmp_path):
    """A class-folder root that also holds the store (root = "." beside the recipe): files outside train/ and val/
    leave the data digest alone (each run rewrote the store and so recomputed everything), files inside change it."""
    import shutil

    from lotterysite.fileio import DigestCache
    from lotterysite.precompute.plan import input_digests

    folder, _, _ = study
    root = tmp_path / "project"
    shutil.copytree(load_recipe(folder / "recipe.toml").data.root, root)
    text = (folder / "recipe.toml").read_text()
    recipe = parse_recipe(text.replace(f'root = "{load_recipe(folder / "recipe.toml").data.root}"', f'root = "{root}"'),
                          str(folder / "recipe.toml"))  # fmt: skip
    assert recipe.data.root == str(root)

    def digest():
        return input_digests(recipe, DigestCache(trust=False))["data"]

    before = digest()
    (root / "store" / "own-study.work").mkdir(parents=True)
    (root / "store" / "own-study" / "accuracy.arrow").parent.mkdir(parents=True)
    (root / "store" / "own-study" / "accuracy.arrow").write_bytes(b"a store")
    (root / "notes.txt").write_text("mine")
    assert digest() == before
    photo = next((root / "val").glob("*/*.jpg"))
    photo.write_bytes(photo.read_bytes() + b"\0")
    assert digest() != before


def test_two_models_never_share_work_files(study, monkeypatch):
    """The last guard behind the recipe checks: a plan where two models' keys (their work files' names) coincide
    is refused in one line naming both, instead of one model's results overwriting the other's."""
    from lotterysite.precompute import plan

    folder, _, _ = study
    recipe = load_recipe(folder / "recipe.toml")
    assert len({e.key for e in plan.plan_models(recipe)}) == len(plan.plan_models(recipe))
    clash = plan.ModelEntry("tv:resnet18/x", plan.model_key("tv:resnet18/dense"), "tv:resnet18", "x", 0.5, False, 0,
                            "fp", file="x.pt")  # fmt: skip
    monkeypatch.setattr(plan.custom, "plan_external", lambda *a: [clash])
    with pytest.raises(RecipeError, match=r"models 'tv:resnet18/dense' and 'tv:resnet18/x' would share the work files"):
        plan.plan_models(recipe)


@pytest.mark.parametrize("model_id, weights", [("tv:resnet18/dense", "resnet18.pt"),
                                               ("tv:resnet18/torch-l1", "resnet18-l1.pt")])  # fmt: skip
def test_own_study_numbers_equal_torchvisions_own_pipeline(study, imagenet_folder, model_id, weights):
    """The independent reference for a published store: torchvision's ImageFolder pipeline (PIL, Resize +
    CenterCrop, ToTensor, Normalize) and torchvision's own ResNet-18 holding the weights file (for the model pruned
    by torch.nn.utils.prune, the pruning reparametrisation loaded as torch saved it), measured in float64 numpy from
    the paper's definitions. Every shipped clean row's prediction, length, margin, angle to the true class and angles
    to the class's confused classes, and the clean accuracy over every evaluation image, must agree."""
    import numpy as np
    from torchvision import transforms

    folder, store, _ = study
    classes = (imagenet_folder / "classes.txt").read_text().split()
    tv = torchvision.models.resnet18(num_classes=1000)
    if weights == "resnet18-l1.pt":
        for module in (tv.conv1, tv.layer1[0].conv1):
            torch_prune.identity(module, "weight")
    tv.load_state_dict(torch.load(folder / weights, weights_only=True))
    tv.eval()
    features = {}
    tv.fc.register_forward_hook(lambda m, inputs, out: features.update(x=inputs[0]))
    pipeline = transforms.Compose([transforms.Resize(64), transforms.CenterCrop(64), transforms.ToTensor(),
                                   transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])  # fmt: skip
    dataset = torchvision.datasets.ImageFolder(imagenet_folder / "val", transform=pipeline)
    by_path = {}
    with torch.no_grad():
        for path, folder_label in dataset.samples:
            x, _ = dataset[dataset.samples.index((path, folder_label))]
            logits = tv(x[None]).double().numpy()[0]
            by_path[path] = (classes.index(dataset.classes[folder_label]), features["x"].double().numpy()[0], logits)
    w, b = tv.fc.weight.detach().double().numpy(), tv.fc.bias.detach().double().numpy()
    assert np.allclose(next(iter(by_path.values()))[2], w @ next(iter(by_path.values()))[1] + b, atol=1e-4)

    def angle(x, j):
        cos = x @ w[j] / np.linalg.norm(x) / np.linalg.norm(w[j])
        return np.degrees(np.arccos(np.clip(cos, -1, 1)))

    # Sample ids are the evaluation order (round-robin over the classes); the files say which image each one is.
    from lotterysite.data import load_imagefolder

    files = load_imagefolder(imagenet_folder, 64, classes=imagenet_folder / "classes.txt").test.files
    confused = {}
    for r in _read(store / "confused.arrow").to_pylist():
        if r["arch"] == "tv:resnet18":
            confused.setdefault(r["class_id"], {})[r["rank"]] = r["confused_id"]
    key = model_id.replace(":", "-").replace("/", "__")
    rows = [r for r in _read(store / "geometry" / f"{key}.arrow").to_pylist() if r["variant"] == "clean"]
    assert len(rows) >= 19
    for r in rows:
        y, x, z = by_path[str(files[r["sample_id"]])]
        pred = int(np.argmax(z))
        others = [j for j in range(1000) if j != y]
        margin = min(abs(z[y] - z[j]) / np.linalg.norm(w[y] - w[j]) for j in others)  # eq. 5, signed by correctness
        assert (r["label"], r["pred"], r["correct"]) == (y, pred, pred == y)
        assert r["length"] == pytest.approx(np.linalg.norm(x), rel=1e-5)
        # float32 logits (as the model computes them) round z_y - z_j to ~1e-7 here: margins of 1e-4 carry that.
        assert r["margin"] == pytest.approx(margin if pred == y else -margin, rel=1e-4, abs=2e-6)
        # The paper's eq. 5 as printed: the same hyperplanes without the bias, through the origin.
        eq5 = min(abs((w[y] - w[j]) @ x) / np.linalg.norm(w[y] - w[j]) for j in others)
        assert r["margin_eq5"] == pytest.approx(eq5 if pred == y else -eq5, rel=1e-4, abs=2e-6)
        assert r["angle_true"] == pytest.approx(angle(x, y), abs=2e-3)
        for k, j in confused[y].items():
            assert r[f"angle_c{k}"] == pytest.approx(angle(x, j), abs=2e-3), (r["sample_id"], k, j)
    (overall,) = [a for a in _read(store / "accuracy.arrow").to_pylist()
                  if a["model_id"] == model_id and a["variant"] == "clean" and a["class_id"] == -1]  # fmt: skip
    correct = sum(int(np.argmax(z)) == y for y, _, z in by_path.values())
    assert (overall["n"], overall["correct"]) == (len(by_path), correct) == (20, correct)
