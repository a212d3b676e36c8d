"""Pruning methods on the real Fashion-MNIST: exact sparsity, the right weights removed, reloadable masks."""

import numpy as np
import pytest
import torch
from torch import nn

from lotterysite.checkpoint import CheckpointError, save_checkpoint
from lotterysite.config import TrainConfig
from lotterysite.models import Classifier, create_model
from lotterysite.pruning import (
    MaskError,
    PruneConfig,
    format_report,
    list_methods,
    load_pruned,
    prunable_parameters,
    prune,
    register_method,
    retrain,
    save_pruned,
    select_masks,
    sparsity_report,
    taylor_scores,
)
from lotterysite.pruning.masks import lamp_scores
from lotterysite.pruning.mpt import reinitialise
from lotterysite.training import evaluate, train

SCORED = [("random", "global"), ("random", "layer"), ("magnitude", "global"), ("magnitude", "layer"),
          ("magnitude", "lamp"), ("taylor", "global"), ("taylor", "layer")]  # fmt: skip


def lenet(seed=0, **kw):
    torch.manual_seed(seed)
    return create_model("lenet5", num_classes=10, in_channels=1, image_size=28, **kw)


@pytest.fixture(scope="module")
def dense(fmnist):
    """LeNet-5 trained 4 epochs on all 60k images (~89-90% test accuracy), and its accuracy on the 10k test set."""
    model = lenet()
    train(model, fmnist.train, TrainConfig(epochs=4), progress=False)
    return model, evaluate(model, fmnist.test)


@pytest.fixture(scope="module")
def mpt_model(fmnist):
    """Biprop MPT of a randomly initialised LeNet-5 at 50% sparsity, scores learned 2 epochs on all 60k images.

    The registry's LeNet-5 itself is wide enough: its random 50% subnetwork reaches ~83-84% test accuracy.
    """
    return prune(lenet(), "mpt", 0.5, data=fmnist.train, mpt_epochs=2, progress=False)


def removed(model, name):
    return ~model.masks[name]


def check_exact(model, amount, scope):
    """Zeroed and masked counts both equal round(amount * count), over all layers or in each one."""
    report = sparsity_report(model)
    groups = [report] if scope in ("global", "lamp") else list(report["layers"].values())
    for g in groups:
        assert g["pruned"] == g["zeros"] == round(amount * g["count"]), (scope, g)
    return report


# --- interface and errors -------------------------------------------------------------------------------------


def test_registry_has_the_papers_methods():
    assert set(list_methods()) >= {"random", "magnitude", "taylor", "mpt"}
    with pytest.raises(ValueError, match="registered twice"):
        register_method("magnitude")(lambda *a, **k: None)


def test_unknown_method_lists_known_ones():
    with pytest.raises(ValueError, match=r"unknown pruning method 'snip'; known methods: magnitude, mpt, random,"):
        prune(lenet(), "snip", 0.5)


@pytest.mark.parametrize("amount", [-0.1, 1.0, 1.5, float("nan"), True])
def test_amount_outside_unit_interval(amount):
    with pytest.raises(ValueError, match=r"is not a fraction in \[0, 1\)"):
        prune(lenet(), "magnitude", amount)


@pytest.mark.parametrize("method", ["taylor", "mpt"])
def test_methods_needing_data_say_so(method):
    with pytest.raises(ValueError, match=rf"method '{method}' needs data: pass data="):
        prune(lenet(), method, 0.5)


def test_bad_options():
    with pytest.raises(TypeError, match="unknown pruning option.*taylor_batchs.*known options:.*taylor_batches"):
        prune(lenet(), "taylor", 0.5, taylor_batchs=3)
    with pytest.raises(ValueError, match="'mpt' does not support scope 'global'; it supports 'layer'"):
        prune(lenet(), "mpt", 0.5, scope="global", data=[])
    with pytest.raises(ValueError, match="scope 'all' is not one of"):
        PruneConfig(scope="all")
    with pytest.raises(ValueError, match="retrain_epochs=1 needs data="):
        prune(lenet(), "magnitude", 0.5, retrain_epochs=1)


def test_prunable_layers_leave_the_classifier_dense_by_default():
    model = lenet()
    assert list(prunable_parameters(model)) == ["body.1.weight", "body.4.weight", "body.8.weight", "body.10.weight"]
    assert list(prunable_parameters(model, prune_classifier=True))[-1] == "classifier.weight"
    report = sparsity_report(model)  # a dense model: reported over its default prunable weights, nothing pruned
    assert report["count"] == 150 + 2400 + 48000 + 10080 and report["pruned"] == report["zeros"] == 0


# --- exact sparsity, every method -----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("amount", [0.0, 0.37, 0.9])
@pytest.mark.parametrize("method,scope", SCORED)
def test_sparsity_is_exact(dense, fmnist, method, scope, amount):
    model, _ = dense
    before = {k: v.clone() for k, v in model.state_dict().items()}
    pruned = prune(model, method, amount, scope=scope, data=fmnist.train, taylor_batches=2, progress=False)
    report = check_exact(pruned, amount, scope)
    assert report["sparsity"] == pytest.approx(amount, abs=1e-4)
    assert pruned.prune_config.scope == scope and pruned.arch == "lenet5"
    # The input is untouched, the classifier and everything unmasked are the input's, surviving weights unchanged.
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()) and not hasattr(model, "masks")
    assert "classifier.weight" not in pruned.masks
    for name, p in pruned.state_dict().items():
        mask = pruned.masks.get(name)
        assert torch.equal(p, before[name] if mask is None else before[name] * mask), name


@pytest.mark.slow
def test_mpt_sparsity_is_exact_per_layer(mpt_model):
    report = check_exact(mpt_model, 0.5, "layer")
    assert set(report["layers"]) == {"body.1.weight", "body.4.weight", "body.8.weight", "body.10.weight"}
    assert mpt_model.prune_config.scope == "layer"


@pytest.mark.slow
def test_prune_classifier_option(dense, fmnist):
    model, _ = dense
    pruned = prune(model, "magnitude", 0.5, scope="layer", prune_classifier=True)
    check_exact(pruned, 0.5, "layer")
    assert sparsity_report(pruned)["layers"]["classifier.weight"]["pruned"] == round(0.5 * 840)


def test_ties_are_broken_by_position_not_threshold():
    # All-equal scores: a threshold would remove all or nothing; the count must still be exact.
    scores = {"a": torch.ones(7), "b": torch.ones(2, 3)}
    masks = select_masks(scores, 0.5, "global")
    assert masks["a"].tolist() == [False] * 6 + [True] and masks["b"].all()
    masks = select_masks(scores, 0.5, "layer")
    assert (~masks["a"]).sum() == 4 and (~masks["b"]).sum() == 3 and masks["b"].flatten().tolist()[:3] == [False] * 3


def test_constant_weights_still_prune_exactly():
    model = lenet()
    with torch.no_grad():
        for p in prunable_parameters(model).values():
            p.fill_(0.25)
    check_exact(prune(model, "magnitude", 0.61, scope="global"), 0.61, "global")
    check_exact(prune(model, "magnitude", 0.61, scope="layer"), 0.61, "layer")


def test_lamp_scores_are_squared_magnitude_over_the_rest_of_the_layer():
    scores = lamp_scores(torch.tensor([3.0, 1.0, float("-inf"), 2.0, 2.0]))
    # ascending 1, 2, 2, 3 (ties by position): 1/18, 4/17, 4/13, 9/9; the pruned weight stays -inf
    expected = [1.0, 1 / 18, float("-inf"), 4 / 17, 4 / 13]
    assert scores.tolist() == pytest.approx(expected)
    assert lamp_scores(torch.zeros(3)).tolist() == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="scope 'lamp' needs scores >= 0; a has negative scores"):
        select_masks({"a": torch.tensor([-1.0, 2.0])}, 0.5, "lamp")


def test_lamp_ignores_each_layer_s_weight_scale_global_magnitude_follows_it():
    """Batch norm makes a conv layer's output independent of its weight scale, and initialisation sets different
    scales per layer: a global ranking of raw magnitudes empties the layer whose weights happen to be small, LAMP
    picks the same weights whatever each layer's scale, and keeps every layer alive."""
    model = lenet()
    shrunk = lenet()
    with torch.no_grad():
        shrunk.body[4].weight.mul_(0.01)
    for amount in (0.5, 0.9):
        lamp_a = prune(model, "magnitude", amount, scope="lamp")
        lamp_b = prune(shrunk, "magnitude", amount, scope="lamp")
        check_exact(lamp_b, amount, "lamp")
        assert all(torch.equal(lamp_a.masks[k], lamp_b.masks[k]) for k in lamp_a.masks)
        assert all(m.any() for m in lamp_b.masks.values())  # no layer emptied
        glob = prune(shrunk, "magnitude", amount, scope="global")
        kept = glob.masks["body.4.weight"].float().mean().item()
        assert kept < 0.02, kept  # global magnitude removes (nearly) all of the small-scale layer
    assert lamp_a.prune_config.scope == "lamp"


@pytest.mark.slow
def test_pruning_a_pruned_model_keeps_its_zeros(dense):
    model, _ = dense
    first = prune(model, "magnitude", 0.5, scope="layer")
    for method in ("random", "magnitude"):
        second = prune(first, method, 0.8, scope="layer")
        check_exact(second, 0.8, "layer")
        for name, mask in first.masks.items():
            assert not (second.masks[name] & ~mask).any(), f"{method} revived pruned weights of {name}"
    with pytest.raises(MaskError, match="already pruned but amount 0.3 removes only"):
        prune(first, "random", 0.3, scope="layer")


# --- which weights each method removes ------------------------------------------------------------------------


@pytest.mark.slow
def test_magnitude_removes_exactly_the_smallest(dense):
    model, _ = dense
    weights = {k: p.detach().double().numpy().ravel() for k, p in prunable_parameters(model).items()}
    glob = prune(model, "magnitude", 0.8, scope="global")
    flat = np.concatenate(list(weights.values()))
    expected = np.zeros(flat.size, dtype=bool)
    expected[np.argsort(np.abs(flat), kind="stable")[: round(0.8 * flat.size)]] = True
    got = np.concatenate([removed(glob, k).numpy().ravel() for k in weights])
    assert np.array_equal(got, expected)
    assert np.abs(flat[got]).max() <= np.abs(flat[~got]).min()
    layer = prune(model, "magnitude", 0.8, scope="layer")
    for name, w in weights.items():
        expected = np.zeros(w.size, dtype=bool)
        expected[np.argsort(np.abs(w), kind="stable")[: round(0.8 * w.size)]] = True
        assert np.array_equal(removed(layer, name).numpy().ravel(), expected), name


class Tiny(Classifier):
    """3 -> 4 (ReLU) -> 2, float64, hand-chosen weights: small enough to differentiate on paper."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(3, 4), nn.ReLU())
        self.classifier = nn.Linear(4, 2)
        self.double()
        with torch.no_grad():
            w1 = [[0.5, -1.2, 0.3], [0.8, 0.1, -0.7], [-0.4, 0.9, 1.1], [1.3, -0.2, 0.6]]
            self.body[0].weight.copy_(torch.tensor(w1))
            self.body[0].bias.copy_(torch.tensor([0.1, -0.2, 0.05, 0.3]))
            self.classifier.weight.copy_(torch.tensor([[0.7, -0.5, 1.2, 0.2], [-0.9, 0.4, 0.3, 1.5]]))
            self.classifier.bias.copy_(torch.tensor([0.05, -0.1]))

    def forward_features(self, x):
        return self.body(x)


def tiny_batches():
    x = torch.tensor([[1.0, 0.5, -0.3], [-0.2, 0.8, 1.0], [0.6, -1.1, 0.4], [0.9, 0.2, 0.7], [-0.5, -0.4, 1.3]],
                     dtype=torch.float64)  # fmt: skip
    y = torch.tensor([0, 1, 1, 0, 1])
    junk = (torch.full((2, 3), 50.0, dtype=torch.float64), torch.tensor([0, 0]))  # must be ignored: past taylor_batches
    return [(x[:3], y[:3]), (x[3:], y[3:]), junk], x, y


def taylor_by_hand(model, x, y):
    """|dL/dw * w| for L the mean cross-entropy over all five images, back-propagated with numpy float64."""
    W1, b1 = model.body[0].weight.detach().numpy(), model.body[0].bias.detach().numpy()
    W2, b2 = model.classifier.weight.detach().numpy(), model.classifier.bias.detach().numpy()
    gW1, gW2 = np.zeros_like(W1), np.zeros_like(W2)
    for xi, yi in zip(x.numpy(), y.numpy(), strict=True):
        h = W1 @ xi + b1
        assert np.all(np.abs(h) > 1e-3)  # away from the ReLU kink, where the derivative is ambiguous
        r = np.maximum(h, 0)
        z = W2 @ r + b2
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        dz = p - np.eye(2)[yi]  # d CE / d logits
        gW2 += np.outer(dz, r)
        gW1 += np.outer((W2.T @ dz) * (h > 0), xi)
    n = len(y)
    return {"body.0.weight": np.abs(gW1 / n * W1), "classifier.weight": np.abs(gW2 / n * W2)}


def test_taylor_scores_match_a_hand_computation():
    model = Tiny()
    batches, x, y = tiny_batches()
    expected = taylor_by_hand(model, x, y)
    targets = prunable_parameters(model, prune_classifier=True)
    scores = taylor_scores(model, targets, batches[:2], progress=False)
    for name in expected:
        np.testing.assert_allclose(scores[name].numpy(), expected[name], rtol=1e-12, atol=1e-15)
    pruned = prune(model, "taylor", 0.4, data=batches, taylor_batches=2, prune_classifier=True, progress=False)
    flat = np.concatenate([expected[k].ravel() for k in ("body.0.weight", "classifier.weight")])
    want = np.zeros(flat.size, dtype=bool)
    want[np.argsort(flat, kind="stable")[: round(0.4 * flat.size)]] = True
    got = np.concatenate([removed(pruned, k).numpy().ravel() for k in ("body.0.weight", "classifier.weight")])
    assert np.array_equal(got, want)


@pytest.mark.slow
def test_taylor_reads_only_taylor_batches(dense, fmnist):
    model, _ = dense
    few = prune(model, "taylor", 0.5, data=fmnist.train, taylor_batches=2, batch_size=64, progress=False)
    same = prune(model, "taylor", 0.5, data=list(fmnist.train.head(128).batches(64)), taylor_batches=5, progress=False)
    more = prune(model, "taylor", 0.5, data=fmnist.train, taylor_batches=4, batch_size=64, progress=False)
    assert all(torch.equal(few.masks[k], same.masks[k]) for k in few.masks)
    assert not all(torch.equal(few.masks[k], more.masks[k]) for k in few.masks)


@pytest.mark.slow
def test_random_is_reproducible_by_seed_and_differs_across_seeds(dense):
    model, _ = dense
    a, b, c = (prune(model, "random", 0.5, seed=s) for s in (3, 3, 4))
    assert all(torch.equal(a.masks[k], b.masks[k]) for k in a.masks)
    assert all(not torch.equal(a.masks[k], c.masks[k]) for k in a.masks)
    torch.manual_seed(123)  # the global RNG plays no part
    d = prune(model, "random", 0.5, seed=3)
    assert all(torch.equal(a.masks[k], d.masks[k]) for k in a.masks)
    # Global random pruning spreads evenly: the big layer loses close to half of its weights.
    assert sparsity_report(a)["layers"]["body.8.weight"]["sparsity"] == pytest.approx(0.5, abs=0.01)


# --- MPT ------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_mpt_random_subnetwork_is_accurate(mpt_model, fmnist):
    accuracy = evaluate(mpt_model, fmnist.test)  # the full 10k test set
    assert accuracy >= 0.80, accuracy


@pytest.mark.slow
def test_mpt_weights_are_binarised_random_init(mpt_model):
    init = lenet()
    reinitialise(init, torch.Generator().manual_seed(mpt_model.prune_config.seed))
    w0 = dict(init.named_parameters())
    for name, p in mpt_model.named_parameters():
        mask = mpt_model.masks.get(name)
        if mask is not None:
            w = w0[name].detach().double().numpy()
            keep = mask.numpy()
            alpha = np.abs(w[keep]).mean()
            np.testing.assert_allclose(p.detach().numpy(), np.sign(w) * alpha * keep, rtol=1e-6, atol=0)
        elif name == "classifier.weight":  # dense, frozen at its init, binarised over all weights
            w = w0[name].detach().double().numpy()
            np.testing.assert_allclose(p.detach().numpy(), np.sign(w) * np.abs(w).mean(), rtol=1e-6)
        else:  # biases stay at zero: only the subnetwork is learned
            assert not p.detach().any(), name


def test_mpt_accepts_batches_and_can_prune_the_classifier(fmnist):
    batches = list(fmnist.train.head(256).batches(64))
    pruned = prune(lenet(), "mpt", 0.3, data=batches, mpt_epochs=1, prune_classifier=True, progress=False)
    report = check_exact(pruned, 0.3, "layer")
    assert "classifier.weight" in report["layers"]
    # Off the 8-bit grid is fine: batches are used in the form given (normalised inputs, resized images, ...).
    prune(lenet(), "mpt", 0.3, data=[(batches[0][0] * 0.999, batches[0][1])], mpt_epochs=1, progress=False)


def test_mpt_keeps_batch_norm_non_affine(fmnist):
    torch.manual_seed(0)
    model = create_model("small_vgg", num_classes=10, in_channels=1, image_size=28, width=8)
    pruned = prune(model, "mpt", 0.5, data=list(fmnist.train.head(128).batches(64)), mpt_epochs=1, progress=False)
    check_exact(pruned, 0.5, "layer")
    norms = [m for m in pruned.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(bool((m.weight == 1).all() and (m.bias == 0).all()) for m in norms)
    assert all(bool(m.running_mean.abs().sum() > 0) for m in norms)  # the statistics are learned, the affine is not
    for name, mask in pruned.masks.items():
        w = dict(pruned.named_parameters())[name].detach()
        alpha = w[mask].abs()
        assert torch.equal(alpha, alpha[:1].expand_as(alpha)), name  # one magnitude per layer: sign(w) * alpha


# --- a pruned model is an ordinary model, and reloads exactly ------------------------------------------------


@pytest.fixture(scope="module")
def pruned_models(dense, fmnist, mpt_model):
    model, _ = dense
    out = {f"{m}-{s}": prune(model, m, 0.7, scope=s, data=fmnist.train, taylor_batches=2, progress=False)
           for m, s in SCORED}  # fmt: skip
    out["mpt-layer"] = mpt_model
    return out


@pytest.mark.slow
@pytest.mark.parametrize("key", [f"{m}-{s}" for m, s in SCORED] + ["mpt-layer"])
def test_pruned_checkpoint_reloads_to_identical_outputs(pruned_models, fmnist, tmp_path, key):
    model = pruned_models[key]
    x, _ = next(fmnist.test.batches(256))
    with torch.no_grad():
        feats, logits = model.forward_features(x), model(x)
    assert isinstance(model, Classifier) and torch.equal(logits, model.classifier(feats))
    save_pruned(tmp_path / "p.pt", model, in_channels=1, image_size=28, meta={"note": key})
    loaded, payload = load_pruned(tmp_path / "p.pt", arch="lenet5")
    assert payload["meta"]["note"] == key and payload["meta"]["sparsity"] == sparsity_report(model)
    assert loaded.prune_config == model.prune_config
    assert loaded.masks.keys() == model.masks.keys()
    assert all(torch.equal(loaded.masks[k], model.masks[k]) for k in model.masks)
    with torch.no_grad():
        assert torch.equal(loaded(x), logits) and torch.equal(loaded.forward_features(x), feats)
    assert sparsity_report(loaded) == sparsity_report(model)


@pytest.mark.parametrize("arch", ["lenet5", "small_vgg", "small_resnet", "tv:mobilenet_v3_small"])
@pytest.mark.parametrize("method,scope", [("random", "global"), ("magnitude", "layer")])
def test_every_kind_of_model_prunes_exactly_and_keeps_the_contract(arch, method, scope):
    gray = not arch.startswith("tv:")
    torch.manual_seed(0)
    model = create_model(arch, num_classes=10, in_channels=1 if gray else 3, image_size=28 if gray else 32).eval()
    pruned = prune(model, method, 0.6, scope=scope)
    check_exact(pruned, 0.6, scope)
    assert pruned.arch == arch and "classifier.weight" not in pruned.masks
    assert torch.equal(pruned.classifier.weight, model.classifier.weight)
    x = torch.rand(2, 1, 28, 28) if gray else torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(pruned(x), pruned.classifier(pruned.forward_features(x)))


@pytest.mark.slow
def test_an_earlier_classifier_mask_is_not_silently_dropped(dense):
    model, _ = dense
    first = prune(model, "magnitude", 0.5, prune_classifier=True)
    with pytest.raises(ValueError, match="already pruned in classifier.weight.*prune_classifier=True"):
        prune(first, "magnitude", 0.6)
    check_exact(prune(first, "magnitude", 0.6, prune_classifier=True), 0.6, "global")


@pytest.mark.slow
def test_masks_that_do_not_fit_are_refused(dense, tmp_path):
    model, _ = dense
    save_checkpoint(tmp_path / "dense.pt", model, in_channels=1, image_size=28)
    with pytest.raises(CheckpointError, match="field 'masks' is empty"):
        load_pruned(tmp_path / "dense.pt")
    # Masks of another pruning do not match the zeros of these weights.
    a, b = prune(model, "random", 0.5, seed=1), prune(model, "random", 0.5, seed=2)
    save_checkpoint(tmp_path / "bad.pt", a, in_channels=1, image_size=28, masks=b.masks)
    with pytest.raises(CheckpointError, match="weights the mask prunes are not zero"):
        load_pruned(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="model has no masks"):
        save_pruned(tmp_path / "x.pt", model, in_channels=1, image_size=28)


@pytest.mark.slow
def test_report_table_names_every_layer(pruned_models):
    table = format_report(sparsity_report(pruned_models["magnitude-layer"]))
    assert "body.8.weight" in table and "70.00%" in table.splitlines()[-1]


# --- retraining ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_magnitude_90_with_retraining_comes_back_to_dense(dense, fmnist):
    model, dense_acc = dense
    pruned = prune(model, "magnitude", 0.9, scope="global")
    before = {k: v.clone() for k, v in pruned.state_dict().items()}
    pruned_acc = evaluate(pruned, fmnist.test)
    # One epoch at the trainer's default learning rate: ~66% right after pruning, back to ~88.5% (dense ~89.4%).
    tuned, history = retrain(pruned, fmnist.train, TrainConfig(epochs=1), progress=False)
    tuned_acc = evaluate(tuned, fmnist.test)
    assert tuned_acc >= dense_acc - 0.02, (dense_acc, pruned_acc, tuned_acc)
    assert len(history.epochs) == 1
    check_exact(tuned, 0.9, "global")  # pruned weights stayed exactly zero through the optimizer steps
    assert all(torch.equal(tuned.masks[k], pruned.masks[k]) for k in pruned.masks)
    assert all(torch.equal(before[k], v) for k, v in pruned.state_dict().items())  # the input is untouched
    moved = tuned.state_dict()["body.8.weight"][pruned.masks["body.8.weight"]]
    assert not torch.equal(moved, before["body.8.weight"][pruned.masks["body.8.weight"]])  # survivors did train


@pytest.mark.slow
def test_retrain_option_of_prune(dense, fmnist):
    model, _ = dense
    pruned = prune(model, "taylor", 0.6, scope="layer", data=fmnist.train.head(512), taylor_batches=2,
                   retrain_epochs=1, progress=False)  # fmt: skip
    check_exact(pruned, 0.6, "layer")
    assert len(pruned.retrain_history.epochs) == 1
    with pytest.raises(ValueError, match="retrain needs a pruned model"):
        retrain(model, fmnist.train.head(64), TrainConfig(epochs=1), progress=False)


def test_rounding_rule_is_pythons_round():
    # 0.123 * 150 = 18.45 -> 18, 0.123 * 10080 = 1239.84 -> 1240: neither floor nor ceil, round() in every layer.
    counts = (150, 2400, 48000, 10080)
    pruned = prune(lenet(), "magnitude", 0.123, scope="layer")
    assert [r["pruned"] for r in sparsity_report(pruned)["layers"].values()] == [18, 295, 5904, 1240]
    assert [round(0.123 * n) for n in counts] == [18, 295, 5904, 1240]


def test_bn_recalibration_estimates_the_batches_statistics():
    from lotterysite.pruning.batchnorm import recalibrate_batch_norm

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.5))
    model.eval()
    batches = [(torch.rand(8, 1, 6, 6), torch.zeros(8, dtype=torch.long)) for _ in range(3)]
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    used = recalibrate_batch_norm(model, batches, batches=2, batch_size=8, device="cpu")
    assert used == 2 and not model.training and not model[1].training and model[1].momentum == 0.1
    with torch.no_grad():
        acts = torch.cat([model[0](x) for x, _ in batches[:2]])  # only the first 2 batches
    # The plain average of the two batch means (equal batch sizes: the mean over both batches).
    assert torch.allclose(model[1].running_mean, acts.mean((0, 2, 3)), atol=1e-5)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())  # weights untouched


@pytest.mark.slow
def test_bn_recalibration_brings_small_vgg_magnitude_50_back(fmnist):
    torch.manual_seed(0)
    vgg = create_model("small_vgg", num_classes=10, in_channels=1, image_size=28, width=8)
    train(vgg, fmnist.train.head(12000), TrainConfig(epochs=1), progress=False)
    test = fmnist.test.head(2000)
    dense_acc = evaluate(vgg, test)
    stale = prune(vgg, "magnitude", 0.5, data=fmnist.train.head(5000), bn_recalibration_batches=0)
    fresh = prune(vgg, "magnitude", 0.5, data=fmnist.train.head(5000))
    assert fresh.prune_config.bn_recalibration_batches == 20 and stale.prune_config.bn_recalibration_batches == 0
    for k, v in stale.state_dict().items():  # same weights and masks; only the running statistics differ
        if "running" not in k and "num_batches" not in k:
            assert torch.equal(v, fresh.state_dict()[k]), k
    stale_acc, fresh_acc = evaluate(stale, test), evaluate(fresh, test)
    # Measured on this short-trained model: dense 68 %, stale statistics 42 %, recalibrated 61 %: most of the loss
    # was the statistics. (Trained 2 epochs on all 60k images: dense 87 %, stale 49 %, recalibrated 83 %; the demo
    # store's numbers are in bench/RESULTS.md.)
    assert fresh_acc - stale_acc >= 0.6 * (dense_acc - stale_acc), (dense_acc, stale_acc, fresh_acc)
    assert fresh_acc > stale_acc + 0.1, (dense_acc, stale_acc, fresh_acc)


def test_bn_recalibration_is_recorded_and_skipped_without_batch_norm(tmp_path):
    pruned = prune(lenet(), "magnitude", 0.5)  # LeNet-5 has no batch norm: nothing to recalibrate, no warning
    assert pruned.prune_config.bn_recalibration_batches == 0
    vgg = create_model("small_vgg", num_classes=10, in_channels=1, image_size=28, width=4)
    with pytest.warns(UserWarning, match="bn_recalibration_batches=0"):
        prune(vgg, "random", 0.5)  # batch norm but no data: said, not silently skipped
    saved = prune(vgg, "random", 0.5, data=[(torch.rand(16, 1, 28, 28), torch.zeros(16, dtype=torch.long))] * 3,
                  bn_recalibration_batches=2)  # fmt: skip
    save_pruned(tmp_path / "v.pt", saved, in_channels=1, image_size=28, options={"width": 4})
    assert load_pruned(tmp_path / "v.pt")[0].prune_config.bn_recalibration_batches == 2
