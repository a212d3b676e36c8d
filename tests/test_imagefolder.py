"""Class-folder data sets on real photos (the foolbox ImageNet JPEGs), and every bad input as a one-line error."""

import itertools
import shutil

import numpy as np
import pytest
import torch
from conftest import imagenet_class
from PIL import Image

from lotterysite.data import DataError, ImageFolderSet, load_imagefolder
from lotterysite.data.imagefolder import decode_image


def test_real_photos_as_class_folders(imagenet_folder):
    data = load_imagefolder(imagenet_folder, 64)
    assert data.classes == tuple(sorted(data.classes)) and len(data.classes) == 19
    assert len(data.train) == 20 and len(data.test) == 20 and data.test.name.endswith("/val")
    assert data.test.in_channels == 3 and data.test.image_size == 64
    # Round-robin order: the first 19 samples are one of every class.
    assert sorted(data.test.labels[:19].tolist()) == list(range(19))
    x, y = next(data.test.batches(8))
    assert x.shape == (8, 3, 64, 64) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert x.std() > 0.1  # real photographs, not blanks
    # Each sample is its file, resized and centre-cropped; the label is its folder.
    first = data.test.files[0]
    assert data.test.classes[int(y[0])] == first.parent.name
    assert torch.equal((x[0] * 255).round().to(torch.uint8), torch.from_numpy(decode_image(first, 64, 3)))


def test_resize_shorter_side_then_centre_crop(tmp_path):
    # A 40 x 20 image: left half black, right half white, with a red column in the very centre.
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, 20:] = 255
    Image.fromarray(arr).save(tmp_path / "wide.png")
    out = decode_image(tmp_path / "wide.png", 10, 3)
    assert out.shape == (3, 10, 10)
    # Shorter side 20 -> 10 makes it 20 x 10; the centre crop keeps columns 5..14, black then white.
    assert out[:, :, :4].max() == 0 and out[:, :, 6:].min() == 255


def test_decoding_is_torchvisions_resize_and_centre_crop_pixel_for_pixel(imagenet_folder, tmp_path):
    """The independent reference: torchvision's Resize(resize) + CenterCrop(image_size) on the PIL image, the
    evaluation transform published ImageNet accuracies use (256 / 224), on the real photos and on odd shapes where
    the rounding of the longer side and of the crop offset matter (the first rules rounded the side, floored the
    offset: off by a pixel row on these)."""
    from torchvision import transforms

    rng = np.random.default_rng(0)
    odd = []
    for w, h in ((257, 300), (300, 259), (333, 251), (225, 224), (224, 225), (500, 375)):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).save(tmp_path / f"{w}x{h}.png")
        odd.append(tmp_path / f"{w}x{h}.png")
    photos = sorted((imagenet_folder / "val").glob("*/*.jpg"))[:6]
    modes = {"bilinear": transforms.InterpolationMode.BILINEAR, "bicubic": transforms.InterpolationMode.BICUBIC}
    for (resize, size), mode in itertools.product(((256, 224), (None, 224), (73, 64), (None, 57)), modes):
        reference = transforms.Compose([transforms.Resize(resize or size, modes[mode]), transforms.CenterCrop(size)])
        for f in photos + odd:
            with Image.open(f) as img:
                expected = np.asarray(reference(img.convert("RGB"))).transpose(2, 0, 1)
            assert np.array_equal(decode_image(f, size, 3, resize, mode), expected), (f.name, resize, size, mode)
    data = load_imagefolder(imagenet_folder, 224, resize=256)
    first = data.test.files[0]
    with Image.open(first) as img:
        expected = np.asarray(transforms.CenterCrop(224)(transforms.Resize(256)(img.convert("RGB"))))
    assert torch.equal(data.test.images_at([0])[0], torch.from_numpy(expected.transpose(2, 0, 1).copy()))
    # The pixels' fingerprint (the cache's name) follows resize.
    assert data.test.fingerprint() != load_imagefolder(imagenet_folder, 224).test.fingerprint()
    bicubic = load_imagefolder(imagenet_folder, 224, resize=256, interpolation="bicubic")
    assert bicubic.test.fingerprint() != data.test.fingerprint()
    assert not torch.equal(bicubic.test.images_at([0]), data.test.images_at([0]))
    with pytest.raises(DataError, match="resize 200 must be an integer >= image_size 224"):
        load_imagefolder(imagenet_folder, 224, resize=200)
    with pytest.raises(DataError, match="interpolation 'nearest' is not one of 'bilinear', 'bicubic'"):
        load_imagefolder(imagenet_folder, 224, interpolation="nearest")


def test_16_bit_gray_images_are_scaled_not_clipped(tmp_path):
    """A 16-bit gray PNG (Pillow mode I;16): Pillow's own conversion to 8 bits clips at 255 (the image turns white);
    the decoded image is its high byte, as torchvision's to_dtype(torch.uint8, scale=True) gives."""
    from torchvision.transforms import v2

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in ("a", "b"):
            (tmp_path / split / c).mkdir(parents=True)
            Image.fromarray(rng.integers(0, 65536, (24, 24), np.uint16)).save(tmp_path / split / c / "0.png")
    data = load_imagefolder(tmp_path, 24)
    assert data.test.in_channels == 1
    for i, f in enumerate(data.test.files):
        with Image.open(f) as img:
            assert img.mode.startswith("I;16")
            raw = torch.from_numpy(np.asarray(img).astype(np.int32)).to(torch.uint16)[None]
        expected = v2.functional.to_dtype(raw, torch.uint8, scale=True)
        assert torch.equal(data.test.images_at([i])[0], expected)
        assert 100 < float(expected.float().mean()) < 155  # uniform noise: mid-gray, not clipped white


def test_gray_when_every_image_is_gray(tmp_path):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, fmt in (("a", "png"), ("b", "jpg")):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(rng.integers(0, 256, (30, 24), np.uint8)).save(tmp_path / split / c / f"{i}.{fmt}")
    data = load_imagefolder(tmp_path, 16)
    assert data.test.in_channels == 1 and data.classes == ("a", "b")
    x, _ = next(data.test.uint8_batches(4))
    assert x.shape == (4, 1, 16, 16) and x.dtype == torch.uint8
    # One colour image (here a WebP, which stores no gray mode) makes the whole set RGB.
    Image.fromarray(rng.integers(0, 256, (30, 24, 3), np.uint8)).save(tmp_path / "test" / "a" / "2.webp")
    data = load_imagefolder(tmp_path, 16)
    assert data.test.in_channels == 3 and len(data.test) == 5
    assert next(data.test.uint8_batches(5))[0].shape == (5, 3, 16, 16)


def test_class_list_maps_folders_to_a_models_classes(imagenet_folder):
    data = load_imagefolder(imagenet_folder, 32, classes=imagenet_folder / "classes.txt")
    assert data.test.num_classes == 1000
    for f, y in zip(data.test.files, data.test.labels.tolist(), strict=True):
        assert f.parent.name == imagenet_class(y)


def test_head_subset_and_to_imageset(imagenet_folder):
    data = load_imagefolder(imagenet_folder, 32)
    head = data.test.head(5)
    assert isinstance(head, ImageFolderSet) and len(head) == 5
    full = head.to_imageset()
    assert full.images.shape == (5, 3, 32, 32)
    assert torch.equal(torch.cat([x for x, _ in head.uint8_batches(2)]), full.images)
    # Shuffled batches are a permutation, reproducible from the seed.
    a = torch.cat([y for _, y in data.test.batches(6, shuffle=True, seed=1)])
    b = torch.cat([y for _, y in data.test.batches(6, shuffle=True, seed=1)])
    assert torch.equal(a, b) and sorted(a.tolist()) == sorted(data.test.labels.tolist())


def test_memory_mapped_cache_equals_decoding(imagenet_folder, tmp_path):
    test = load_imagefolder(imagenet_folder, 32).test
    cached = test.cached(tmp_path / "work")
    assert cached.cache_file is not None and cached.cache_file.stat().st_size == test.nbytes
    assert torch.equal(cached.images_at([3, 0, 7]), test.images_at([3, 0, 7]))
    assert cached.cached(tmp_path / "work") is cached  # already cached
    again = test.cached(tmp_path / "work")  # the file is reused, not rebuilt
    assert again.cache_file == cached.cache_file
    # Over the size limit: no cache, every pass decodes.
    assert test.cached(tmp_path / "work2", limit=test.nbytes - 1) is test
    assert not (tmp_path / "work2").exists()


# -- bad input: one line naming the file or folder ----------------------------------------------------------------


def _tiny_set(root, classes=("a", "b")):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (12, 12, 3), np.uint8)).save(root / split / c / "0.png")
    return root


def _one_line(excinfo):
    msg = str(excinfo.value)
    assert "\n" not in msg
    return msg


def test_missing_folders(tmp_path):
    with pytest.raises(DataError, match="not found; point"):
        load_imagefolder(tmp_path / "nowhere", 16)
    _tiny_set(tmp_path)
    shutil.rmtree(tmp_path / "test")
    with pytest.raises(DataError) as e:
        load_imagefolder(tmp_path, 16)
    assert "test is missing (and so is" in _one_line(e)
    (tmp_path / "val" / "a").mkdir(parents=True)
    shutil.rmtree(tmp_path / "train")
    with pytest.raises(DataError, match=r"train is missing"):
        load_imagefolder(tmp_path, 16)


def test_empty_class_folder(tmp_path):
    _tiny_set(tmp_path)
    (tmp_path / "test" / "b" / "0.png").unlink()
    (tmp_path / "test" / "b" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError) as e:
        load_imagefolder(tmp_path, 16)
    assert f"{tmp_path / 'test' / 'b'} is an empty class folder" in _one_line(e)


def test_class_folders_must_match(tmp_path):
    _tiny_set(tmp_path)
    shutil.copytree(tmp_path / "test" / "b", tmp_path / "test" / "zebra")
    with pytest.raises(DataError, match=r"class folders differ from train/ \(not in train/: zebra\)"):
        load_imagefolder(tmp_path, 16)
    (tmp_path / "classes.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="class folder 'zebra' is not in the class list"):
        load_imagefolder(tmp_path, 16, classes=tmp_path / "classes.txt")


def test_corrupt_image_is_an_error_naming_the_file_or_skipped(tmp_path, imagenet_folder):
    _tiny_set(tmp_path)
    bad = tmp_path / "test" / "a" / "1.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(DataError) as e:
        load_imagefolder(tmp_path, 16)
    assert f"{bad}: unreadable image" in _one_line(e)
    data = load_imagefolder(tmp_path, 16, skip_unreadable=True)
    assert data.test.skipped == (bad,) and len(data.test) == 2
    # A truncated JPEG has a valid header but no end marker: the scan decodes it and names the file (it failed only
    # when decoded, in the middle of a run); the skipping scan leaves it out.
    good = next((imagenet_folder / "val").glob("*/*.jpg"))
    bad.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(DataError) as e:
        load_imagefolder(tmp_path, 16)
    assert f"{bad}: unreadable image" in _one_line(e)
    assert load_imagefolder(tmp_path, 16, skip_unreadable=True).test.skipped == (bad,)


# -- issue 22: content keys, skipped and truncated images, system errors ---------------------------------------------
def _bmp_folder(root, value=0):
    for split in ("train", "test"):
        for c, name in enumerate(("a", "b")):
            for i in range(2):
                (root / split / name).mkdir(parents=True, exist_ok=True)
                arr = np.full((8, 8, 3), value + 60 * c + 20 * i, np.uint8)
                Image.fromarray(arr).save(root / split / name / f"{i}.bmp")
    return root


def test_the_image_cache_is_keyed_by_content_and_rebuilt_on_request(tmp_path):
    """D10: an image replaced by another of the same size, its mtime restored, kept its old cached pixels."""
    import os

    from lotterysite.fileio import file_digest

    root = _bmp_folder(tmp_path / "data")
    test = load_imagefolder(root, 8).test
    first = test.cached(tmp_path / "work", digest=file_digest)
    f = test.files[0]
    stat = f.stat()
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(f)
    os.utime(f, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert f.stat().st_size == stat.st_size
    second = test.cached(tmp_path / "work", digest=file_digest)
    assert second.cache_file != first.cache_file and int(second.images_at([0]).float().mean()) == 200
    # A damaged cache (its recorded digest differs) is built again; so is any cache on request (--force).
    raw = bytearray(second.cache_file.read_bytes())
    raw[:4] = b"\1\2\3\4"
    second.cache_file.write_bytes(bytes(raw))
    third = test.cached(tmp_path / "work", digest=file_digest)
    assert int(third.images_at([0]).float().mean()) == 200
    rebuilt = test.cached(tmp_path / "work", digest=lambda p: "same", rebuild=True)
    assert torch.equal(rebuilt.images_at(range(len(test))), test.images_at(range(len(test))))


def test_a_truncated_jpeg_is_found_at_the_scan(tmp_path):
    """D23: a JPEG cut short near its end failed in the middle of training."""
    root = _bmp_folder(tmp_path / "data")
    photo = root / "train" / "a" / "cut.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(photo)
    photo.write_bytes(photo.read_bytes()[:-300])
    with pytest.raises(DataError, match=r"cut\.jpg: unreadable image"):
        load_imagefolder(root, 8)
    data = load_imagefolder(root, 8, skip_unreadable=True)
    assert data.train.skipped == (photo,) and photo not in data.train.files


def test_system_errors_stop_the_scan_instead_of_counting_as_unreadable(tmp_path, monkeypatch):
    """D14: too many open files, an I/O error or a stale NFS handle are not an unreadable image."""
    import errno

    from PIL import Image as PILImage

    from lotterysite.fileio import StorageError

    root = _bmp_folder(tmp_path / "data")

    def failing(path, *a, **kw):
        raise OSError(errno.EMFILE, "Too many open files", str(path))

    monkeypatch.setattr(PILImage, "open", failing)
    with pytest.raises(StorageError, match="Too many open files"):
        load_imagefolder(root, 8, skip_unreadable=True)
