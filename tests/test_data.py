"""Data readers: the real Fashion-MNIST, foolbox's real CIFAR-10 images, and small files in the official formats."""

import gzip
import pickle

import numpy as np
import pytest
import torch

from lotterysite.data import (
    DataError,
    ImageSet,
    cifar10c_corruptions,
    foolbox_samples,
    list_datasets,
    load_cifar10c,
    load_dataset,
)
from lotterysite.data.idx import read_idx


def test_fashion_mnist_is_the_real_data_set(fmnist):
    assert len(fmnist.train) == 60000 and len(fmnist.test) == 10000
    assert fmnist.test.images.shape == (10000, 1, 28, 28) and fmnist.test.images.dtype == torch.uint8
    assert fmnist.classes[0] == "T-shirt/top" and fmnist.classes[9] == "Ankle boot"
    # Balanced classes, 1000 of each in the test split, 6000 in the train split.
    assert torch.bincount(fmnist.test.labels).tolist() == [1000] * 10
    assert torch.bincount(fmnist.train.labels).tolist() == [6000] * 10
    # The first test image of the official file is an ankle boot.
    assert fmnist.test.labels[0].item() == 9


def test_batches_are_floats_in_unit_range_and_reproducible(fmnist):
    subset = fmnist.test.head(300)
    a = [y for _, y in subset.batches(64, shuffle=True, seed=3)]
    b = [y for _, y in subset.batches(64, shuffle=True, seed=3)]
    c = [y for _, y in subset.batches(64, shuffle=True, seed=4)]
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(a, c, strict=True))
    x, _ = next(subset.batches(64))
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert sorted(torch.cat(a).tolist()) == sorted(subset.labels.tolist())


def test_foolbox_cifar10_samples_are_real_images():
    data = foolbox_samples("cifar10")
    assert data.images.shape == (20, 3, 32, 32)
    assert data.classes[data.labels[0]] == "cat"  # cifar10_00_3.png
    assert data.images.float().std() > 30  # real photographs, not blanks


def write_idx(path, array):
    codes = {np.uint8: 0x08}
    header = bytes([0, 0, codes[array.dtype.type], array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())


def test_idx_reader_and_mnist_from_any_folder(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 12), ("t10k", 5)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    data = load_dataset("mnist", root=tmp_path)
    assert len(data.train) == 12 and len(data.test) == 5 and data.classes[3] == "3"
    assert np.array_equal(data.train.images[:, 0].numpy(), read_idx(tmp_path / "train-images-idx3-ubyte"))


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(path, np.zeros((4, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="header says"):
        read_idx(path)


def test_cifar10_and_cifar100_pickle_folders(tmp_path):
    rng = np.random.default_rng(1)
    c10 = tmp_path / "cifar-10-batches-py"
    c10.mkdir()
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(c10 / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names}, f)
    for name, n in [(f"data_batch_{i}", 4) for i in range(1, 6)] + [("test_batch", 3)]:
        with open(c10 / name, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": list(range(n))}, f)
    with pytest.raises(DataError, match="batches.meta: MD5 .* is not the official archive's .*trust_pickles = true"):
        load_dataset("cifar10", root=c10)  # hand-made pickles could run code: refused unless trusted
    data = load_dataset("cifar10", root=c10, trust_pickles=True)
    assert len(data.train) == 20 and len(data.test) == 3
    assert data.test.images.shape == (3, 3, 32, 32) and data.classes == tuple(names)
    # Row layout of the official format: 1024 red, then green, then blue values.
    with open(c10 / "test_batch", "rb") as f:
        raw = pickle.load(f)["data"]
    assert np.array_equal(data.test.images[0, 1].numpy().ravel(), raw[0, 1024:2048])

    c100 = tmp_path / "cifar-100-python"
    c100.mkdir()
    with open(c100 / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, f)
    for split, n in (("train", 6), ("test", 2)):
        with open(c100 / split, "wb") as f:
            pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "fine_labels": [99] * n}, f)
    data = load_dataset("cifar100", root=c100, trust_pickles=True)
    assert data.test.num_classes == 100 and data.test.labels.tolist() == [99, 99]


def test_cifar10c_folder(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (5 * 4, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "fog.npy", x)
    np.save(tmp_path / "labels.npy", np.tile(np.arange(4), 5).astype(np.uint8))
    assert cifar10c_corruptions(tmp_path) == ["fog"]
    s3 = load_cifar10c(tmp_path, "fog", 3)
    assert s3.images.shape == (4, 3, 32, 32)
    assert np.array_equal(s3.images.numpy(), x[8:12].transpose(0, 3, 1, 2))
    with pytest.raises(DataError, match="corruptions present in .*: fog"):
        load_cifar10c(tmp_path, "snow", 1)
    with pytest.raises(DataError, match="outside 1-5"):
        load_cifar10c(tmp_path, "fog", 6)


def test_missing_data_set_names_path_and_fix(tmp_path):
    with pytest.raises(DataError, match=r"not found \(looked in .*nowhere\); point `root` at the extracted"):
        load_dataset("cifar10", root=tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte is missing; install Debian's package"):
        load_dataset("fashion_mnist", root=empty)


def test_unknown_data_set_lists_known_ones():
    with pytest.raises(DataError, match="known data sets: cifar10, cifar100, fashion_mnist, mnist"):
        load_dataset("imagenet")
    assert "fashion_mnist" in list_datasets()


def test_imageset_rejects_inconsistent_labels():
    with pytest.raises(DataError, match="3 images but labels of shape"):
        ImageSet(torch.zeros(3, 1, 4, 4, dtype=torch.uint8), torch.zeros(2, dtype=torch.long), ("a",))
