"""Trainer and checkpoints on the real Fashion-MNIST."""

import pytest
import torch

from lotterysite.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lotterysite.config import TrainConfig
from lotterysite.models import create_model
from lotterysite.training import augment_batch, evaluate, train


def lenet(seed=0, **kw):
    torch.manual_seed(seed)
    return create_model("lenet5", num_classes=10, in_channels=1, image_size=28, **kw)


def test_training_learns_real_data(fmnist):
    model = lenet()
    before = evaluate(model, fmnist.test.head(2000))
    history = train(model, fmnist.train.head(6000), TrainConfig(epochs=2), progress=False)
    after = evaluate(model, fmnist.test.head(2000))
    assert before < 0.3 and after > 0.75, (before, after)
    assert history.epochs[1]["loss"] < history.epochs[0]["loss"]


def test_training_is_reproducible_by_seed(fmnist):
    subset = fmnist.train.head(1000)
    cfg = TrainConfig(epochs=1, augment=True, seed=5)
    a, b, c = lenet(), lenet(), lenet()
    train(a, subset, cfg, progress=False)
    train(b, subset, cfg, progress=False)
    train(c, subset, TrainConfig(epochs=1, augment=True, seed=6), progress=False)
    for pa, pb, _pc in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not all(torch.equal(pa, pc) for pa, pc in zip(a.parameters(), c.parameters(), strict=True))


def test_sgd_with_augmentation_trains(fmnist):
    model = lenet()
    train(model, fmnist.train.head(3000), TrainConfig(epochs=2, optimizer="sgd", lr=0.05, augment=True), progress=False)
    assert evaluate(model, fmnist.test.head(1000)) > 0.6


def test_augment_shifts_and_flips_within_bounds():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 3, 2] = 1.0
    out = augment_batch(x, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape
    ys, xs = torch.nonzero(out[:, 0], as_tuple=True)[1:]
    assert ys.min() >= 1 and ys.max() <= 5  # row 3 shifted by -2..2
    assert len(set(xs.tolist())) > 3  # both shifts and flips move the column
    assert torch.equal(out.sum(dim=(1, 2, 3)), torch.ones(64))  # nothing cropped away at this distance


def test_checkpoint_round_trip_is_exact(fmnist, tmp_path):
    model = lenet(feature_dim=32)
    train(model, fmnist.train.head(500), TrainConfig(epochs=1), progress=False)
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, in_channels=1, image_size=28, options={"feature_dim": 32}, meta={"note": "x"})
    loaded, payload = load_checkpoint(path, arch="lenet5", num_classes=10)
    x = fmnist.test.float_images()[:64]
    with torch.no_grad():
        assert torch.equal(model.eval()(x), loaded(x))
    assert payload["meta"] == {"note": "x"} and loaded.feature_dim == 32
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary left behind


def test_checkpoint_errors_name_file_and_field(tmp_path):
    model = lenet()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, in_channels=1, image_size=28)
    with pytest.raises(CheckpointError, match=r"m\.pt: field 'arch' is 'lenet5', expected 'vgg16'"):
        load_checkpoint(path, arch="vgg16")
    with pytest.raises(CheckpointError, match=r"field 'num_classes' is 10, but the data set has 100 classes"):
        load_checkpoint(path, num_classes=100)
    truncated = tmp_path / "t.pt"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match=r"t\.pt: not a readable checkpoint"):
        load_checkpoint(truncated)
    bare = tmp_path / "bare.pt"
    torch.save(model.state_dict(), bare)
    with pytest.raises(CheckpointError, match="field 'format'"):
        load_checkpoint(bare)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_refuses_pickled_code(tmp_path):
    # weights_only=True: a checkpoint carrying arbitrary objects is refused, never executed.
    class Evil:
        def __reduce__(self):
            return (print, ("executed",))

    path = tmp_path / "evil.pt"
    torch.save({"format": "lotterysite-checkpoint/1", "x": Evil()}, path)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_bad_train_config():
    with pytest.raises(ValueError, match="optimizer 'adam' is not one of"):
        TrainConfig(optimizer="adam")
