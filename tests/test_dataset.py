"""The data set reader: NVIDIA's order, labels, subset and mirroring rules, and one line for bad data."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from stylegan.data import ImageDataset

from conftest import make_zip, png_bytes


def images(n, size=8, channels=3, seed=0):
    shape = [n, size, size, channels] if channels > 1 else [n, size, size]
    return np.random.RandomState(seed).randint(0, 256, shape, dtype=np.uint8)


def test_order_labels_and_flip(tmp_path):
    imgs = images(5)
    # Written out of order: the reader sorts names, as NVIDIA's does.
    names = ["b/3.png", "a/1.png", "c/0.png", "a/2.png", "b/10.png"]
    ds = ImageDataset(make_zip(tmp_path / "d.zip", imgs, [4, 0, 2, 1, 3], names), use_labels=True, xflip=True)
    order = sorted(range(5), key=lambda k: names[k])
    assert len(ds) == 10 and ds.image_shape == [3, 8, 8] and ds.label_dim == 5
    for i, k in enumerate(order):
        img, label = ds[i]
        np.testing.assert_array_equal(img, imgs[k])
        np.testing.assert_array_equal(ds[i + 5][0], imgs[k][:, ::-1])
        assert label.tolist() == np.eye(5, dtype=np.float32)[[4, 0, 2, 1, 3][k]].tolist()


def test_subset_rule_and_grayscale_folder(tmp_path):
    imgs = images(12, channels=1)
    for k, a in enumerate(imgs):
        Image.fromarray(a).save(tmp_path / f"{k:02d}.png")
    ds = ImageDataset(tmp_path, max_size=5, random_seed=3)
    expected = np.arange(12)
    np.random.RandomState(3).shuffle(expected)
    assert ds.raw_idx.tolist() == sorted(expected[:5].tolist())
    assert ds.image_shape == [1, 8, 8] and ds[0][0].shape == (8, 8, 1)
    assert ds[0][1].shape == (0,)


def test_float_labels_and_digest(tmp_path):
    a = make_zip(tmp_path / "a.zip", images(3), [[0.5, 1.0], [0.0, 2.0], [1.5, -1.0]])
    ds = ImageDataset(a, use_labels=True)
    assert ds.label_dim == 2 and ds[1][1].tolist() == [0.0, 2.0]
    b = make_zip(tmp_path / "b.zip", images(3, seed=1), [[0.5, 1.0], [0.0, 2.0], [1.5, -1.0]])
    assert ImageDataset(b, use_labels=True).digest() != ds.digest()
    assert ImageDataset(a, use_labels=True).digest() == ds.digest()


@pytest.mark.parametrize("case, words", [
    ("mixed sizes", "8x8"), ("missing label", "no label"), ("empty", "no images"),
    ("not an image", "not a readable image"), ("resolution", "not 16x16"), ("corrupt member", "b.png is a corrupt zip member")])
def test_bad_data_sets_are_one_line(tmp_path, case, words):
    kw = {}
    if case == "mixed sizes":
        path = make_zip(tmp_path / "d.zip", list(images(2)) + [images(1, size=4)[0]])
    elif case == "missing label":
        path = make_zip(tmp_path / "d.zip", images(2), [0, 1])
        with zipfile.ZipFile(path, "a") as z:
            z.writestr("zz.png", png_bytes(images(1)[0]))
        kw["use_labels"] = True
    elif case == "empty":
        path = tmp_path / "empty"
        path.mkdir()
    elif case == "not an image":
        path = make_zip(tmp_path / "d.zip", images(2))
        with zipfile.ZipFile(path, "a") as z:
            z.writestr("zz.png", b"\x89PNG\r\n\x1a\n garbage")
    elif case == "corrupt member":
        # A flipped byte inside b.png's pixels: only the zip's CRC tells (the PNG still decodes).
        path = make_zip(tmp_path / "d.zip", images(2), names=["a.png", "b.png"])
        data = bytearray(path.read_bytes())
        png = png_bytes(images(2)[1])
        data[data.rindex(png[-60:]) + 10] ^= 0x01
        path.write_bytes(bytes(data))
    else:
        path, kw["resolution"] = make_zip(tmp_path / "d.zip", images(2)), 16
    with pytest.raises(ValueError, match=words) as e:
        ds = ImageDataset(path, **kw)
        [ds[i] for i in range(len(ds))]
    assert "\n" not in str(e.value)
