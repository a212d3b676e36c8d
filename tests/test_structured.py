"""Structured pruning (granularity = "channel") on every registry model and on a user's residual model with its own
head; cost counting (parameters, MACs) against Torch-Pruning's own counts and a hand-worked LeNet-5."""

import copy
import textwrap

import pytest
import torch
import torch_pruning as tp
from torch import nn

from lotterysite.checkpoint import read_checkpoint
from lotterysite.cost import layer_macs, macs_per_image, model_cost, parameter_count
from lotterysite.models import create_model, find_classifier
from lotterysite.pruning import PruneConfig, load_pruned, prunable_parameters, prune, save_pruned, sparsity_report

USER_MODEL = '''
import torch
from torch import nn

class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.b = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return torch.relu(x + self.b(torch.relu(self.bn(self.a(x)))))

class UserNet(nn.Module):
    """Residual blocks, and a head of its own: a hidden layer, then the classifier inside `head`."""

    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv2d(3, 12, 3, padding=1)
        self.blocks = nn.Sequential(Block(12), Block(12))
        self.down = nn.Conv2d(12, 20, 3, stride=2, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(20, 16), nn.ReLU(),
                                  nn.Linear(16, num_classes))

    def forward(self, x):
        return self.head(torch.relu(self.down(self.blocks(self.stem(x)))))

def usernet(num_classes):
    return UserNet(num_classes)
'''

# (arch, in_channels, image_size, options): every registry model, torchvision ones with a residual and a depthwise
# design, at the smallest size each takes.
REGISTRY = [
    ("lenet5", 1, 28, {}),
    ("small_vgg", 1, 28, {}),
    ("small_resnet", 1, 28, {}),
    ("vgg16", 3, 32, {}),
    ("resnet18", 3, 32, {}),
    ("alexnet", 3, 32, {"hidden": 256}),
    ("tv:resnet18", 3, 32, {}),
    ("tv:mobilenet_v3_small", 3, 32, {}),
]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a shared machine, two threads waiting on each other make a small forward 100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def user_arch(tmp_path_factory):
    path = tmp_path_factory.mktemp("user") / "usernet.py"
    path.write_text(textwrap.dedent(USER_MODEL))
    return f"{path}:usernet"


def build(arch, c, s, options, seed=0):
    torch.manual_seed(seed)
    model = create_model(arch, num_classes=10, in_channels=c, image_size=s, **options).eval()
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(4, c, s, s, generator=g)
    y = torch.randint(0, 10, (4,), generator=g)
    return model, x, y


def channel_prune(model, x, y, method="magnitude", amount=0.5, **options):
    options = {"progress": False, "bn_recalibration_batches": 0, **options}
    return prune(model, method, amount, granularity="channel", data=[(x, y)], **options)


def prunable_count(model) -> int:
    return sum(p.numel() for p in prunable_parameters(model).values())


def one_channel_cost(model, x) -> int:
    """The most prunable weights removing one channel of one group removes, measured by letting Torch-Pruning
    prune channel 0 of each group of a fresh copy (the feature width's group excluded, as by default)."""
    dense = prunable_count(model)
    n = len(_groups(copy.deepcopy(model), x)[1])
    worst = 0
    for i in range(n):
        m = copy.deepcopy(model)
        graph, groups = _groups(m, x)
        root = groups[i][0].dep
        graph.get_pruning_group(root.target.module, root.handler, [0]).prune()
        worst = max(worst, dense - prunable_count(m))
    return worst


def _groups(model, x):
    head = find_classifier(model)[1]
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=x[:1], verbose=False)
    groups = [
        g
        for g in graph.get_all_groups(ignored_layers=[head], root_module_types=(nn.Conv2d, nn.Linear))
        if not any(i.dep.target.module is head and graph.is_in_channel_pruning_fn(i.dep.handler) for i in g)
        and len(g[0].idxs) > 1
    ]
    return graph, groups


@pytest.mark.parametrize("arch,c,s,options", REGISTRY, ids=[r[0] for r in REGISTRY])
def test_every_registry_model_prunes_channels_with_its_classifier_intact(arch, c, s, options):
    model, x, y = build(arch, c, s, options)
    pruned = channel_prune(model, x, y)
    info = pruned.structured
    name, head = find_classifier(model)
    new_head = find_classifier(pruned)[1]
    assert torch.equal(new_head.weight, head.weight) and torch.equal(new_head.bias, head.bias)
    assert info["feature_dim"] == info["dense_feature_dim"] == head.in_features
    assert pruned(x).shape == (4, 10)
    # Smaller: the parameters Torch-Pruning counts went down, and the prunable weights by about the amount.
    assert parameter_count(pruned) == tp.utils.count_ops_and_params(pruned, x[:1])[1]
    assert parameter_count(pruned) < parameter_count(model)
    assert abs(info["reached"] - 0.5) < 0.05, info["reached"]
    assert info["reached"] == pytest.approx(1 - prunable_count(pruned) / prunable_count(model), abs=1e-12)
    assert sparsity_report(pruned)["sparsity"] == pytest.approx(info["reached"], abs=0)
    assert macs_per_image(pruned, x[:1]) < macs_per_image(model, x[:1])


@pytest.mark.parametrize("method", ["random", "magnitude", "taylor"])
@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("arch", ["lenet5", "small_resnet", "user"])
def test_amount_is_reached_within_one_channel_group(arch, method, scope, user_arch):
    spec = ("lenet5", 1, 28, {}) if arch == "lenet5" else ("small_resnet", 1, 28, {"width": 8})
    model, x, y = build(*(spec if arch != "user" else (user_arch, 3, 16, {})))
    dense = prunable_count(model)
    step = one_channel_cost(model, x)
    for amount in (0.3, 0.7):
        pruned = channel_prune(model, x, y, method, amount, scope=scope)
        removed = dense - prunable_count(pruned)
        assert abs(removed - round(amount * dense)) <= step, (amount, removed, step)
        assert pruned.structured["target"] == amount


@pytest.mark.parametrize("method", ["random", "magnitude", "taylor"])
def test_checkpoint_reload_gives_identical_logits(tmp_path, method, user_arch):
    for arch, c, s in (("small_resnet", 1, 28), (user_arch, 3, 16)):
        model, x, y = build(arch, c, s, {})
        pruned = channel_prune(model, x, y, method, 0.6, channel_norm=2)
        path = tmp_path / f"{method}.pt"
        save_pruned(path, pruned, in_channels=c, image_size=s)
        payload = read_checkpoint(path)  # torch.load(weights_only=True): no pickled modules
        assert payload["structure"] and payload["masks"] == {}
        again, _ = load_pruned(path, arch=arch)
        assert torch.equal(again(x), pruned.eval()(x))
        assert again.structured["reached"] == pruned.structured["reached"]
        assert again.prune_config.granularity == "channel" and again.prune_config.channel_norm == 2
        assert sparsity_report(again) == sparsity_report(pruned)
        assert parameter_count(again) == parameter_count(pruned)


def test_penultimate_width_is_pruned_only_when_asked(tmp_path, user_arch):
    model, x, y = build(user_arch, 3, 16, {})
    kept = channel_prune(model, x, y, amount=0.5)
    cut = channel_prune(model, x, y, amount=0.5, prune_penultimate=True, scope="layer")
    assert kept.head[4].in_features == 16 and kept.structured["feature_dim"] == 16
    assert cut.head[4].in_features < 16 and cut.structured["feature_dim"] == cut.head[4].in_features
    assert cut.head[4].out_features == 10 and cut.structured["dense_feature_dim"] == 16
    save_pruned(tmp_path / "cut.pt", cut, in_channels=3, image_size=16)
    again, _ = load_pruned(tmp_path / "cut.pt")
    assert torch.equal(again(x), cut.eval()(x))


def test_batch_norm_recalibration_and_retraining_work_on_a_channel_pruned_model(tmp_path):
    model, _, _ = build("small_vgg", 1, 28, {"width": 8})
    g = torch.Generator().manual_seed(1)
    data = [(torch.rand(16, 1, 28, 28, generator=g), torch.randint(0, 10, (16,), generator=g)) for _ in range(3)]
    plain = prune(model, "taylor", 0.5, granularity="channel", data=data, progress=False, taylor_batches=2)
    assert plain.prune_config.bn_recalibration_batches == 3  # recalibrated on every batch given
    retrained = prune(model, "taylor", 0.5, granularity="channel", data=data, progress=False, taylor_batches=2,
                      retrain_epochs=1, batch_size=16)  # fmt: skip
    assert retrained.structured["reached"] == plain.structured["reached"]
    shapes = {k: v.shape for k, v in plain.state_dict().items()}
    assert {k: v.shape for k, v in retrained.state_dict().items()} == shapes
    assert not torch.equal(retrained.classifier.weight, plain.classifier.weight)  # it trained
    save_pruned(tmp_path / "r.pt", retrained, in_channels=1, image_size=28)
    x = data[0][0]
    assert torch.equal(load_pruned(tmp_path / "r.pt")[0](x), retrained.eval()(x))


def test_channel_granularity_refuses_mpt_weight_masks_and_a_missing_input():
    with pytest.raises(ValueError, match="method 'mpt' has no granularity 'channel'"):
        PruneConfig(method="mpt", granularity="channel")
    with pytest.raises(ValueError, match="granularity 'block'"):
        PruneConfig(granularity="block")
    with pytest.raises(ValueError, match="prune_classifier does not apply"):
        PruneConfig(granularity="channel", prune_classifier=True)
    model, x, y = build("lenet5", 1, 28, {})
    with pytest.raises(ValueError, match="example_input="):
        prune(model, "magnitude", 0.5, granularity="channel")
    pruned = prune(model, "magnitude", 0.5, granularity="channel", example_input=x)
    assert pruned.structured["reached"] > 0.4
    masked = prune(model, "magnitude", 0.5)
    with pytest.raises(ValueError, match="weight masks"):
        prune(masked, "magnitude", 0.6, granularity="channel", example_input=x)


def test_macs_equal_torch_prunings_count_layer_by_layer_and_a_hand_count():
    # LeNet-5 on 28 px (padded to 32): conv1 6x28x28 outputs x 25, conv2 16x10x10 x 150, then 400x120, 120x84, 84x10.
    model, x, _ = build("lenet5", 1, 28, {})
    assert macs_per_image(model, x) == 6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 400 * 120 + 120 * 84 + 84 * 10
    for arch, c, s, options in (REGISTRY[2], REGISTRY[7]):
        model, x, y = build(arch, c, s, options)
        for m in (model, channel_prune(model, x, y)):
            mine = layer_macs(m, x[:1])
            _, _, theirs, _ = tp.utils.count_ops_and_params(m, x[:1], layer_wise=True)
            for name, module in m.named_modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    # Torch-Pruning adds one operation per output element for a bias.
                    outputs = mine[name] // module.weight[0].numel()
                    bias = outputs if module.bias is not None else 0
                    assert mine[name] + bias == theirs[module], name


def test_model_cost_columns():
    model, x, y = build("small_resnet", 1, 28, {"width": 8})
    dense = model_cost(model, in_channels=1, image_size=28, large_batch=8)
    pruned = model_cost(channel_prune(model, x, y, amount=0.7), in_channels=1, image_size=28, large_batch=8)
    assert dense["parameters"] == parameter_count(model) and pruned["parameters"] < dense["parameters"]
    assert pruned["macs"] < dense["macs"]
    assert all(v > 0 for v in (*dense.values(), *pruned.values()))
    masked = prune(model, "magnitude", 0.7, bn_recalibration_batches=0)  # masks: dense shape, dense cost
    cost = model_cost(masked, in_channels=1, image_size=28, large_batch=8, latency=False)
    assert (cost["parameters"], cost["macs"]) == (dense["parameters"], dense["macs"])


STRUCTURED_RECIPE = """
name = "structured"
batch_size = 64
[data]
name = "fashion_mnist"
train_subset = 500
eval_subset = 60
[[architectures]]
arch = "small_resnet"
options = { width = 8 }
[architectures.train]
epochs = 1
[[pruning]]
method = "magnitude"
amounts = [0.5]
[[pruning]]
method = "magnitude"
label = "magnitude-channel"
granularity = "channel"
prune_penultimate = true
amounts = [0.5]
retrain_epochs = 1
[corruptions]
names = ["fog"]
severities = [1]
[ship]
samples_per_class = 2
severities = [1]
[curse]
enabled = false
"""


def test_precompute_stores_granularity_feature_width_and_cost(tmp_path):
    from lotterysite.precompute import load_recipe, precompute
    from lotterysite.store import read_table
    from lotterysite.store.publish import work_dir

    path = tmp_path / "structured.toml"
    path.write_text(STRUCTURED_RECIPE)
    store = tmp_path / "store"
    precompute(load_recipe(path), store=store, device="cpu", progress=False)
    rows = {r["model_id"]: r for r in read_table(store / "models.arrow").to_pylist()}
    dense, masked = rows["small_resnet/dense"], rows["small_resnet/magnitude/0.5"]
    channel, retrained = rows["small_resnet/magnitude-channel/0.5"], rows["small_resnet/magnitude-channel+retrain/0.5"]
    assert (dense["granularity"], masked["granularity"], channel["granularity"]) == ("none", "weight", "channel")
    # Masks keep the dense shape, so the dense cost, latency included; channels cut all three.
    for k in ("parameters", "macs", "latency_b1_ms", "latency_batch_ms", "latency_batch"):
        assert masked[k] == dense[k], k
    assert channel["parameters"] < dense["parameters"] and channel["macs"] < dense["macs"]
    assert channel["latency_b1_ms"] > 0 and channel["latency_batch"] == 64
    assert abs(channel["sparsity"] - 0.5) < 0.05 and channel["amount"] == 0.5
    assert dense["feature_dim"] == 32 == channel["dense_feature_dim"] and channel["feature_dim"] < 32
    assert masked["feature_dim"] == 32
    assert (retrained["parameters"], retrained["macs"]) == (channel["parameters"], channel["macs"])
    model, _ = load_pruned(next((work_dir(store) / "models").glob("small_resnet__magnitude-channel__0.5-*.pt")))
    assert parameter_count(model) == channel["parameters"]
    assert macs_per_image(model, torch.rand(1, 1, 28, 28)) == channel["macs"]
    assert find_classifier(model)[1].in_features == channel["feature_dim"]

    # The home page plots accuracy against cost, and says which models' feature dimension changed.
    import pyarrow as pa

    from lotterysite.site import pages
    from lotterysite.site.data import load_store
    from lotterysite.site.model import build_view_model

    md, specs, files = pages.home_page(build_view_model(load_store(store)))
    assert "## Accuracy against cost" in md and "data/specs/cost.json" in specs
    assert "The feature dimension changed" in md and "`small_resnet/magnitude-channel/0.5` (32 →" in md
    assert "findings.md#the-curse-of-dimensionality-fig-3" in md
    cost = {(r["model_id"], r["method"], r["data"]): r for r in pa.ipc.open_file(files["data/cost.arrow"])
            .read_all().to_pylist()}  # fmt: skip
    assert cost[("small_resnet/magnitude/0.5", "magnitude", "clean")]["speedup"] == 1.0
    assert cost[("small_resnet/dense", "magnitude-channel", "clean")]["macs"] == dense["macs"]
    row = cost[("small_resnet/magnitude-channel/0.5", "magnitude-channel", "clean")]
    assert row["speedup"] == pytest.approx(dense["latency_batch_ms"] / channel["latency_batch_ms"], rel=1e-6)


def test_recipe_tables_take_granularity_and_refuse_channel_mpt():
    from lotterysite.precompute import RecipeError, parse_recipe

    table = '[[pruning]]\nmethod = "{}"\namounts = [0.5]\ngranularity = "channel"\nprune_penultimate = true\n'
    head = 'name = "r"\n[data]\nname = "fashion_mnist"\n[[architectures]]\narch = "lenet5"\n'
    sweep = parse_recipe(head + table.format("taylor"), "r.toml").pruning[0]
    cfg = sweep.config(0.5, 0, retrain=False)
    assert (cfg.granularity, cfg.prune_penultimate, cfg.channel_norm) == ("channel", True, 1)
    with pytest.raises(RecipeError, match=r"r.toml: table 'pruning\[0\]': method 'mpt' has no granularity 'channel'"):
        parse_recipe(head + table.format("mpt"), "r.toml")


def test_a_checkpoint_whose_structure_names_a_method_or_a_missing_module_is_refused(tmp_path):
    from lotterysite.checkpoint import CheckpointError

    model, x, y = build("lenet5", 1, 28, {})
    save_pruned(tmp_path / "p.pt", channel_prune(model, x, y), in_channels=1, image_size=28)
    payload = torch.load(tmp_path / "p.pt", weights_only=True)
    for structure in ({"body.1": {"forward": 3}}, {"body.1": {"_parameters": {}}}, {"nowhere": {"in_channels": 2}}):
        torch.save({**payload, "structure": structure}, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match="field 'structure' does not fit lenet5"):
            load_pruned(tmp_path / "bad.pt")
