"""Your own model by import path, and weights from a file (plain, nested, torchvision's layout); bad input named."""

import sys
import textwrap

import pytest
import torch
import torchvision

from lotterysite.models import ModelError, create_model, is_model, load_weights

MYNET = textwrap.dedent("""
    import torch
    from torch import nn

    class MyNet(nn.Module):
        def __init__(self, num_classes, width):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, width, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = nn.Linear(width, num_classes)

        def forward(self, x):
            return self.head(self.body(x))

    def build(num_classes=10, width=4):
        return MyNet(num_classes, width)

    def build_any(**kwargs):
        return MyNet(kwargs["num_classes"], 3)

    def sized(image_size, in_channels):
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size**2, 2))

    def not_a_model(num_classes):
        return "oops"

    class Unnamed(nn.Module):
        # Its classifier is layers[3]: no classifier/fc/head name, and an nn.Linear defined after it that never runs.

        def __init__(self, num_classes):
            super().__init__()
            self.layers = nn.Sequential(
                nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, num_classes)
            )
            self.gate = nn.Linear(1, 1)

        def forward(self, x):
            return self.layers(x * self.gate.weight.sigmoid())

    def unnamed(num_classes):
        return Unnamed(num_classes)
""")


@pytest.fixture
def mynet(tmp_path, monkeypatch):
    (tmp_path / "mynet.py").write_text(MYNET)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path / "mynet.py"
    sys.modules.pop("mynet", None)


def test_import_path_factory_gets_num_classes_and_options(mynet):
    assert is_model("mynet:build") and not is_model("mynet")
    model = create_model("mynet:build", num_classes=7, in_channels=3, image_size=16, width=6)
    assert model.head.out_features == 7 and model.head.in_features == 6 and model.arch == "mynet:build"
    assert create_model("mynet:build_any", num_classes=4, in_channels=3, image_size=16).head.out_features == 4
    sized = create_model("mynet:sized", num_classes=2, in_channels=1, image_size=5)
    assert sized[1].in_features == 25
    by_file = create_model(f"{mynet}:build", num_classes=3, in_channels=3, image_size=16)
    assert by_file.head.out_features == 3


def test_input_norm_option_normalises_before_forward(mynet):
    torch.manual_seed(0)
    plain = create_model("mynet:build", num_classes=3, in_channels=3, image_size=8)
    normed = create_model("mynet:build", num_classes=3, in_channels=3, image_size=8, input_norm="imagenet")
    normed.load_state_dict(plain.state_dict())  # same keys: the normalisation is a hook, not a layer
    x = torch.rand(2, 3, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(normed(x), plain((x - mean) / std))


def test_bad_import_paths_are_one_line_errors(mynet):
    cases = {
        "nosuchpackage.models:build": "cannot import 'nosuchpackage.models' (ModuleNotFoundError",
        "mynet:missing": "module 'mynet' has no function 'missing'",
        "mynet:not_a_model": "returned str, not a torch.nn.Module",
        "elsewhere/net.py:build": "file elsewhere/net.py not found",
    }
    for path, message in cases.items():
        with pytest.raises(ModelError) as e:
            create_model(path, num_classes=3, in_channels=3, image_size=8)
        assert message in str(e.value) and "\n" not in str(e.value) and repr(path) in str(e.value)
    with pytest.raises(ModelError, match=r"calling it with num_classes, wdith, width failed"):
        create_model("mynet:build", num_classes=3, in_channels=3, image_size=8, width=2, wdith=3)


def test_weights_plain_nested_and_wrong_keys(mynet, tmp_path):
    torch.manual_seed(0)
    trained = create_model("mynet:build", num_classes=3, in_channels=3, image_size=8)
    x = torch.rand(2, 3, 8, 8)
    for name, payload in {
        "plain.pt": trained.state_dict(),
        "nested.pt": {"state_dict": trained.state_dict(), "epoch": 3},
        "model.pt": {"model": {f"module.{k}": v for k, v in trained.state_dict().items()}},
    }.items():
        torch.save(payload, tmp_path / name)
        fresh = load_weights(create_model("mynet:build", num_classes=3, in_channels=3, image_size=8), tmp_path / name)
        assert torch.equal(fresh(x), trained(x))
    sd = trained.state_dict()
    sd["extra.weight"] = sd.pop("head.weight")
    torch.save(sd, tmp_path / "wrong.pt")
    with pytest.raises(ModelError) as e:
        load_weights(create_model("mynet:build", num_classes=3, in_channels=3, image_size=8), tmp_path / "wrong.pt")
    assert str(e.value).startswith(f"{tmp_path / 'wrong.pt'}: does not fit mynet:build (missing keys head.weight; "
                                   "unexpected keys extra.weight)")  # fmt: skip
    # The classifier's class count is the usual mistake: said as such, with the file's key.
    with pytest.raises(ModelError, match=r"plain.pt: the weights' classifier 'head.weight' has 3 classes but the "
                                         r"data set has 5; use weights trained on these classes"):  # fmt: skip
        load_weights(create_model("mynet:build", num_classes=5, in_channels=3, image_size=8), tmp_path / "plain.pt")
    sd = trained.state_dict()
    sd["body.0.weight"] = sd["body.0.weight"][:, :1]
    torch.save(sd, tmp_path / "gray.pt")
    with pytest.raises(
        ModelError,
        match=r"gray.pt: key 'body.0.weight' has shape \(4, 1, 3, 3\) but mynet:build "
        r"expects \(4, 3, 3, 3\); check num_classes and the architecture's options",
    ):
        load_weights(create_model("mynet:build", num_classes=3, in_channels=3, image_size=8), tmp_path / "gray.pt")
    (tmp_path / "junk.pt").write_bytes(b"not torch")
    with pytest.raises(ModelError, match="junk.pt: not a readable weights file"):
        load_weights(trained, tmp_path / "junk.pt")
    with pytest.raises(ModelError, match="weights file .*absent.pt not found"):
        load_weights(trained, tmp_path / "absent.pt")


def test_torchvision_published_layout_loads_into_tv_models(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(num_classes=10).eval()
    torch.save(reference.state_dict(), tmp_path / "resnet18.pt")  # what torchvision's published weights look like
    model = load_weights(create_model("tv:resnet18", num_classes=10, in_channels=3, image_size=32,
                                      input_norm="imagenet"), tmp_path / "resnet18.pt")  # fmt: skip
    x = torch.rand(2, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), reference((x - mean) / std), atol=1e-6)
    # A mismatch names the key as the file spells it (fc.weight), not as the wrapped model does (classifier.weight).
    with pytest.raises(ModelError, match=r"the weights' classifier 'fc.weight' has 10 classes but the data set has 7"):
        load_weights(create_model("tv:resnet18", num_classes=7, in_channels=3, image_size=32), tmp_path / "resnet18.pt")
    sd = reference.state_dict()
    sd["fc.extra"] = sd["fc.bias"]
    torch.save(sd, tmp_path / "extra.pt")
    with pytest.raises(ModelError, match=r"unexpected keys fc.extra\)"):
        load_weights(create_model("tv:resnet18", num_classes=10, in_channels=3, image_size=32), tmp_path / "extra.pt")
    # lotterysite's own layout loads too.
    torch.save(model.state_dict(), tmp_path / "own.pt")
    again = load_weights(create_model("tv:resnet18", num_classes=10, in_channels=3, image_size=32,
                                      input_norm="imagenet"), tmp_path / "own.pt")  # fmt: skip
    with torch.no_grad():
        assert torch.equal(again(x), model(x))


def test_a_classifier_without_a_name_is_found_by_running_the_model_once(mynet, tmp_path):
    """Rule 3 at build time: pruning and checkpoints (which never run the model) know the last nn.Linear that runs;
    X is that layer's input (checked by hand in float64) and it stays dense when the model is pruned."""
    from lotterysite.checkpoint import load_checkpoint, save_checkpoint
    from lotterysite.geometry import measure_model
    from lotterysite.models import find_classifier
    from lotterysite.pruning import PruneConfig, prune_model, sparsity_report

    torch.manual_seed(0)
    model = create_model("mynet:unnamed", num_classes=5, in_channels=3, image_size=8)
    name, linear = find_classifier(model)
    assert name == "layers.3" and linear is model.layers[3] and model.training  # mode restored after the probe
    save_checkpoint(tmp_path / "m.pt", model, in_channels=3, image_size=8)
    loaded, payload = load_checkpoint(tmp_path / "m.pt", num_classes=5, in_channels=3, image_size=8)
    assert payload["num_classes"] == 5 and find_classifier(loaded)[0] == "layers.3"
    pruned = prune_model(model, PruneConfig(method="magnitude", amount=0.5))
    assert "layers.3.weight" not in sparsity_report(pruned)["layers"]
    assert bool((pruned.layers[3].weight != 0).all())
    x = torch.rand(6, 3, 8, 8)
    geometry, _ = measure_model(pruned.eval(), [(x, torch.zeros(6, dtype=torch.long))], device="cpu")
    with torch.no_grad():
        feats = pruned.layers[:3](x * pruned.gate.weight.sigmoid()).double()
    w = pruned.layers[3].weight.double()
    assert torch.allclose(geometry.length.double(), feats.norm(dim=1), rtol=1e-5)
    cos = (feats @ w.T) / feats.norm(dim=1, keepdim=True) / w.norm(dim=1)
    assert torch.allclose(geometry.angle.double(), torch.rad2deg(torch.acos(cos.clamp(-1, 1))), atol=1e-3)


@pytest.mark.parametrize("name, size", [("googlenet", 64), ("inception_v3", 80)])
def test_googlenet_and_inception_as_torchvision_publishes_them(name, size, tmp_path):
    """Their published weights are saved without the auxiliary heads and expect transform_input = True (ImageNet-
    normalised input re-normalised inside the model). A recipe entry with `weights` builds them so: the logits
    equal torchvision's model, built as its weights builder builds it, on ImageNet-normalised images. And in
    training mode (retraining, Taylor, MPT) the wrapped model returns logits, not torchvision's aux-logits tuple."""
    import warnings

    from lotterysite.precompute import parse_recipe

    warnings.simplefilter("ignore", FutureWarning)  # torchvision's note on these models' initialisation
    torch.manual_seed(0)
    reference = torchvision.models.get_model(name, num_classes=10, aux_logits=False, transform_input=True,
                                             init_weights=False).eval()  # fmt: skip
    torch.save(reference.state_dict(), tmp_path / "w.pt")
    text = f'name = "x"\n[data]\nname = "imagefolder"\nroot = "x"\nimage_size = {size}\n'
    recipe = parse_recipe(text + f'[[architectures]]\narch = "tv:{name}"\nweights = "w.pt"\n', str(tmp_path / "r.toml"))
    options = recipe.architectures[0].model.options
    assert options == {"input_norm": "imagenet", "transform_input": True}
    model = load_weights(create_model(f"tv:{name}", num_classes=10, in_channels=3, image_size=size, **options),
                         tmp_path / "w.pt")  # fmt: skip
    x = torch.rand(2, 3, size, size)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), reference((x - mean) / std), atol=1e-5)
    model.train()
    out = model(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    out.sum().backward()  # a training step's graph
