"""Tests of driftless.data: image loading, the image-folder and CIFAR-100 readers, the generated
toy dataset, the dataset registry and the Dataset/Split validation."""

from __future__ import annotations

import hashlib
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from driftless.data import (
    DATASET_FACTORIES,
    ArrayImages,
    Dataset,
    FileImages,
    Split,
    build_dataset,
    cifar100,
    image_folder,
    load_image,
    read_class_folders,
    toy_shapes,
)
from driftless.data.cifar import CIFAR100_TEMPLATES
from driftless.errors import ConfigError, DataError

# ---------------------------------------------------------------------------------------------
# helpers


def _write_png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (8, 6)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def _class_colour(class_index: int, image_index: int) -> tuple[int, int, int]:
    """A colour that encodes (class, image) so that a loaded image tells where it came from."""
    return (40 * class_index + 10, 20 * image_index + 5, 77)


# folder name → number of images, per split (deliberately unequal, created in unsorted order)
FOLDER_LAYOUT = {
    "train": {"red_apple": 3, "blue_car": 2, "cat": 4},
    "test": {"cat": 1, "red_apple": 2, "blue_car": 3},
}
SORTED_FOLDERS = ["blue_car", "cat", "red_apple"]


def _make_folder_tree(root: Path) -> None:
    for split, counts in FOLDER_LAYOUT.items():
        for folder, count in counts.items():
            class_index = SORTED_FOLDERS.index(folder)
            for i in range(count):
                _write_png(
                    root / split / folder / f"img_{i:02d}.png", _class_colour(class_index, i)
                )
    # files that are not images are ignored
    (root / "train" / "cat" / "notes.txt").write_text("not an image")


def _pixel_rows(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _write_fake_cifar(
    folder: Path,
    names: list[str],
    train: tuple[np.ndarray, list[int]],
    test: tuple[np.ndarray, list[int]],
) -> None:
    """The python-pickle layout of the real CIFAR-100 archive, in miniature."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, (data, labels) in (("train", train), ("test", test)):
        entry = {
            "filenames": [f"img_{i}.png" for i in range(len(labels))],
            "batch_label": f"{split} batch",
            "fine_labels": list(labels),
            "coarse_labels": [0] * len(labels),
            "data": data,
        }
        with (folder / split).open("wb") as fh:
            pickle.dump(entry, fh, protocol=2)
    with (folder / "meta").open("wb") as fh:
        pickle.dump({"fine_label_names": names, "coarse_label_names": ["all"]}, fh, protocol=2)


CIFAR_NAMES = ["apple", "aquarium_fish", "bear", "maple_tree", "zebra"]
CIFAR_TRAIN_LABELS = [4, 0, 1, 3, 2, 1, 0]
CIFAR_TEST_LABELS = [2, 3, 0, 4]


@pytest.fixture
def fake_cifar(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(123)
    train = _pixel_rows(len(CIFAR_TRAIN_LABELS), rng)
    test = _pixel_rows(len(CIFAR_TEST_LABELS), rng)
    # a hand-placed pixel: image 1 of train, row 2, column 5 is (R, G, B) = (201, 17, 99);
    # rows are channel-major: all 1024 red values, then green, then blue, each row by row
    for channel, value in enumerate((201, 17, 99)):
        train[1, channel * 1024 + 2 * 32 + 5] = value
    _write_fake_cifar(
        tmp_path / "cifar-100-python",
        CIFAR_NAMES,
        (train, CIFAR_TRAIN_LABELS),
        (test, CIFAR_TEST_LABELS),
    )
    return tmp_path, train, test


def _sha(pixels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# load_image


def test_load_image_missing_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "missing.png"
    with pytest.raises(DataError) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_load_image_corrupt_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.png"
    path.write_bytes(b"this is not a PNG at all")
    with pytest.raises(DataError) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_load_image_truncated_file_names_it(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    noise = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(good)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError) as info:
        load_image(truncated)
    assert str(truncated) in str(info.value)


def test_load_image_converts_to_rgb_and_keeps_pixels(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    Image.new("L", (5, 4), 123).save(grey)
    img = load_image(grey)
    assert img.mode == "RGB"
    assert img.size == (5, 4)
    assert img.getpixel((2, 3)) == (123, 123, 123)

    rgba = tmp_path / "rgba.png"
    Image.new("RGBA", (3, 3), (10, 20, 30, 128)).save(rgba)
    img = load_image(str(rgba))  # str paths too
    assert img.mode == "RGB"
    assert img.getpixel((0, 0)) == (10, 20, 30)


# ---------------------------------------------------------------------------------------------
# image_folder


def test_image_folder_train_test_layout(tmp_path: Path) -> None:
    root = tmp_path / "fruit-and-cars"
    _make_folder_tree(root)
    ds = image_folder(root)

    assert ds.name == "fruit-and-cars"
    assert ds.class_names == ("blue car", "cat", "red apple")
    assert set(ds.splits) == {"train", "test"}
    assert ds.num_classes == 3

    for split_name, counts in FOLDER_LAYOUT.items():
        split = ds.split(split_name)
        expected = np.concatenate(
            [np.full(counts[f], i, dtype=np.int64) for i, f in enumerate(SORTED_FOLDERS)]
        )
        np.testing.assert_array_equal(split.labels, expected)
        assert len(split) == sum(counts.values())
        assert isinstance(split.images, FileImages)
        paths = split.images.paths
        # each image lies in its label's folder, files sorted within a class
        for path, label in zip(paths, split.labels, strict=True):
            assert path.parent.name == SORTED_FOLDERS[label]
            assert path.parent.parent.name == split_name
        for folder in SORTED_FOLDERS:
            names = [p.name for p in paths if p.parent.name == folder]
            assert names == sorted(names)
        # and its pixels are the ones written for that class and file
        for index, (path, label) in enumerate(zip(paths, split.labels, strict=True)):
            image_index = int(path.stem.split("_")[1])
            assert split.image(index).getpixel((0, 0)) == _class_colour(int(label), image_index)


def test_image_folder_names_and_templates_options(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _make_folder_tree(root)
    ds = image_folder(
        root, name="custom", templates=("a picture of {}.",), underscores_to_spaces=False
    )
    assert ds.name == "custom"
    assert ds.class_names == ("blue_car", "cat", "red_apple")
    assert ds.templates == ("a picture of {}.",)


def test_image_folder_fingerprint_is_deterministic_and_tracks_sizes(tmp_path: Path) -> None:
    root = tmp_path / "a" / "ds"
    _make_folder_tree(root)
    first = image_folder(root).fingerprint()
    assert image_folder(root).fingerprint() == first
    assert len(first) == 64 and int(first, 16) >= 0

    # a copy elsewhere keeps its key (relative paths and sizes, not absolute locations)
    copy = tmp_path / "b" / "ds"
    shutil.copytree(root, copy)
    assert image_folder(copy).fingerprint() == first

    # replacing a file by one of another size changes the key
    target = root / "train" / "cat" / "img_01.png"
    before = target.stat().st_size
    noise = np.random.default_rng(1).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(target)
    assert target.stat().st_size != before
    changed = image_folder(root).fingerprint()
    assert changed != first
    assert image_folder(root).fingerprint() == changed

    # the split fingerprints: only the changed split moves
    original = image_folder(copy)
    modified = image_folder(root)
    assert modified.split("test").fingerprint() == original.split("test").fingerprint()
    assert modified.split("train").fingerprint() != original.split("train").fingerprint()


def test_image_folder_fingerprint_changes_with_an_added_file(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _make_folder_tree(root)
    before = image_folder(root).fingerprint()
    _write_png(root / "test" / "cat" / "img_99.png", (1, 2, 3))
    assert image_folder(root).fingerprint() != before


def test_image_folder_without_splits_is_a_single_test_split(tmp_path: Path) -> None:
    root = tmp_path / "eval-only"
    for class_index, folder in enumerate(["snow_leopard", "dog"]):
        for i in range(class_index + 2):
            _write_png(root / folder / f"{i}.png", _class_colour(class_index, i))
    ds = image_folder(root)
    assert set(ds.splits) == {"test"}
    assert ds.class_names == ("dog", "snow leopard")
    split = ds.split("test")
    # dog (label 0) has 3 images, snow_leopard (label 1) has 2
    np.testing.assert_array_equal(split.labels, [0, 0, 0, 1, 1])
    assert [p.parent.name for p in split.images.paths] == ["dog"] * 3 + ["snow_leopard"] * 2
    with pytest.raises(DataError, match="train"):
        ds.split("train")


def test_image_folder_missing_class_in_one_split(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _write_png(root / "train" / "cat" / "0.png", (1, 1, 1))
    _write_png(root / "train" / "dog" / "0.png", (2, 2, 2))
    _write_png(root / "test" / "cat" / "0.png", (3, 3, 3))
    with pytest.raises(DataError) as info:
        image_folder(root)
    message = str(info.value)
    assert str(root) in message
    assert "test" in message


def test_image_folder_ignores_hidden_folders(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _make_folder_tree(root)
    _write_png(root / "train" / ".ipynb_checkpoints" / "x.png", (9, 9, 9))
    ds = image_folder(root)
    assert ds.class_names == ("blue car", "cat", "red apple")

    flat = tmp_path / "flat"
    _write_png(flat / "cat" / "0.png", (1, 1, 1))
    _write_png(flat / ".cache" / "0.png", (1, 1, 1))
    assert image_folder(flat).class_names == ("cat",)


def test_image_folder_missing_root_names_it(tmp_path: Path) -> None:
    root = tmp_path / "absent"
    with pytest.raises(DataError) as info:
        image_folder(root)
    assert str(root) in str(info.value)


def test_read_class_folders_with_fixed_class_order(tmp_path: Path) -> None:
    root = tmp_path / "split"
    for class_index, folder in enumerate(["b", "a"]):
        for i in range(2):
            _write_png(root / folder / f"{i}.png", _class_colour(class_index, i))
    split = read_class_folders(root, ["b", "a"])
    np.testing.assert_array_equal(split.labels, [0, 0, 1, 1])
    assert [p.parent.name for p in split.images.paths] == ["b", "b", "a", "a"]
    with pytest.raises(DataError, match="'c'"):
        read_class_folders(root, ["a", "c"])
    empty = tmp_path / "empty"
    (empty / "cls").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        read_class_folders(empty)


# ---------------------------------------------------------------------------------------------
# cifar100


def test_cifar100_reads_the_python_pickle_layout(fake_cifar) -> None:
    root, _, _ = fake_cifar
    ds = cifar100(root)
    assert ds.name == "cifar100"
    assert ds.num_classes == len(CIFAR_NAMES) == 5
    assert ds.class_names == ("apple", "aquarium fish", "bear", "maple tree", "zebra")
    assert ds.templates == CIFAR100_TEMPLATES == ("a bad photo of a {}.",)
    np.testing.assert_array_equal(ds.split("train").labels, CIFAR_TRAIN_LABELS)
    np.testing.assert_array_equal(ds.split("test").labels, CIFAR_TEST_LABELS)
    assert len(ds.split("train")) == 7 and len(ds.split("test")) == 4


def test_cifar100_pixels_are_channel_major_rows(fake_cifar) -> None:
    root, train, test = fake_cifar
    ds = cifar100(root)
    image = ds.split("train").image(1)
    assert image.size == (32, 32)
    # PIL's getpixel takes (x, y) = (column, row)
    assert image.getpixel((5, 2)) == (201, 17, 99)

    # every pixel, element by element from the flat row layout
    for split_name, rows in (("train", train), ("test", test)):
        pixels = ds.split(split_name).images.pixels
        assert pixels.shape == (len(rows), 32, 32, 3)
        assert pixels.dtype == np.uint8
        for i in range(len(rows)):
            for row, col in ((0, 0), (0, 31), (31, 0), (7, 19), (31, 31)):
                expected = [rows[i, c * 1024 + row * 32 + col] for c in range(3)]
                assert list(pixels[i, row, col]) == expected
        # and as a whole: the reference reshape, written independently
        reference = np.stack(
            [rows[:, c * 1024 : (c + 1) * 1024].reshape(-1, 32, 32) for c in range(3)], axis=-1
        )
        np.testing.assert_array_equal(pixels, reference)


def test_cifar100_root_may_be_the_unpacked_folder(fake_cifar) -> None:
    root, _, _ = fake_cifar
    direct = cifar100(root / "cifar-100-python")
    assert direct.fingerprint() == cifar100(root).fingerprint()


def test_cifar100_fingerprint_is_deterministic(fake_cifar) -> None:
    root, _, _ = fake_cifar
    assert cifar100(root).fingerprint() == cifar100(root).fingerprint()
    assert cifar100(root).fingerprint() != cifar100(root, templates=("a {}.",)).fingerprint()


def test_cifar100_missing_folder_names_the_path(tmp_path: Path) -> None:
    root = tmp_path / "no-cifar-here"
    with pytest.raises(DataError) as info:
        cifar100(root)
    message = str(info.value)
    assert str(root) in message
    assert "cifar-100-python" in message


def test_cifar100_missing_test_file_names_it(fake_cifar) -> None:
    root, _, _ = fake_cifar
    test_file = root / "cifar-100-python" / "test"
    test_file.unlink()
    with pytest.raises(DataError) as info:
        cifar100(root)
    assert str(test_file) in str(info.value)


@pytest.mark.parametrize(
    "content",
    [
        b"definitely not a pickle",
        b"",
        pickle.dumps({"data": np.zeros((2, 3072), np.uint8)}, protocol=2)[:40],  # truncated
        b"cbuiltins\nno_such_attribute\n.",  # a damaged global reference
        pickle.dumps([1, 2, 3]),  # a valid pickle, but not CIFAR's dict
    ],
    ids=["garbage", "empty", "truncated", "bad-global", "not-a-dict"],
)
def test_cifar100_corrupt_pickle_names_the_path(fake_cifar, content: bytes) -> None:
    root, _, _ = fake_cifar
    train_file = root / "cifar-100-python" / "train"
    train_file.write_bytes(content)
    with pytest.raises(DataError) as info:
        cifar100(root)
    assert str(train_file) in str(info.value)


def test_cifar100_corrupt_meta_names_the_path(fake_cifar) -> None:
    root, _, _ = fake_cifar
    meta = root / "cifar-100-python" / "meta"
    meta.write_bytes(b"\x80\x02}q\x00")  # truncated protocol-2 pickle
    with pytest.raises(DataError) as info:
        cifar100(root)
    assert str(meta) in str(info.value)


def test_cifar100_wrong_shapes_and_keys(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-100-python"
    _write_fake_cifar(
        folder,
        ["a", "b"],
        (rng.integers(0, 256, (2, 3000), dtype=np.uint8), [0, 1]),
        (_pixel_rows(2, rng), [1, 0]),
    )
    with pytest.raises(DataError) as info:
        cifar100(tmp_path)
    assert str(folder / "train") in str(info.value)

    with (folder / "meta").open("wb") as fh:
        pickle.dump({"coarse_label_names": ["x"]}, fh)
    with pytest.raises(DataError, match="fine_label_names"):
        cifar100(tmp_path)


def test_cifar100_label_beyond_class_names_is_rejected(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    _write_fake_cifar(
        tmp_path / "cifar-100-python",
        ["a", "b"],
        (_pixel_rows(2, rng), [0, 2]),
        (_pixel_rows(1, rng), [1]),
    )
    with pytest.raises(DataError, match="labels outside"):
        cifar100(tmp_path)


# ---------------------------------------------------------------------------------------------
# toy_shapes


def test_toy_shapes_shapes_and_labels() -> None:
    ds = toy_shapes(num_classes=5, train_per_class=3, test_per_class=2, image_size=24, seed=4)
    assert ds.name == "toy-shapes-5"
    assert ds.num_classes == 5
    assert len(set(ds.class_names)) == 5
    for name in ds.class_names:
        colour, shape = name.split(" ")
        assert colour and shape
    train, test = ds.split("train"), ds.split("test")
    assert train.images.pixels.shape == (15, 24, 24, 3)
    assert test.images.pixels.shape == (10, 24, 24, 3)
    assert train.images.pixels.dtype == np.uint8
    np.testing.assert_array_equal(train.labels, np.repeat(np.arange(5), 3))
    np.testing.assert_array_equal(test.labels, np.repeat(np.arange(5), 2))
    image = train.image(0)
    assert image.mode == "RGB" and image.size == (24, 24)
    assert all(t.count("{}") == 1 for t in ds.templates)


def test_toy_shapes_is_deterministic_in_its_seed() -> None:
    a = toy_shapes(num_classes=4, train_per_class=2, test_per_class=2, seed=7)
    b = toy_shapes(num_classes=4, train_per_class=2, test_per_class=2, seed=7)
    c = toy_shapes(num_classes=4, train_per_class=2, test_per_class=2, seed=8)
    for split in ("train", "test"):
        pa, pb, pc = (d.split(split).images.pixels for d in (a, b, c))
        assert _sha(pa) == _sha(pb)
        np.testing.assert_array_equal(pa, pb)
        assert _sha(pa) != _sha(pc)
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != c.fingerprint()
    # train and test are drawn from distinct streams
    assert _sha(a.split("train").images.pixels) != _sha(a.split("test").images.pixels)


def test_toy_shapes_class_prefix_is_stable() -> None:
    small = toy_shapes(num_classes=3, train_per_class=1, test_per_class=1)
    large = toy_shapes(num_classes=9, train_per_class=1, test_per_class=1)
    assert large.class_names[:3] == small.class_names


@pytest.mark.parametrize("num_classes", [1, 49, 0])
def test_toy_shapes_rejects_bad_class_counts(num_classes: int) -> None:
    with pytest.raises(ConfigError, match="num_classes"):
        toy_shapes(num_classes=num_classes, train_per_class=1, test_per_class=1)


# ---------------------------------------------------------------------------------------------
# build_dataset


def test_build_dataset_known_factories(tmp_path: Path) -> None:
    assert {"toy-shapes", "cifar100", "image-folder"} <= set(DATASET_FACTORIES)
    ds = build_dataset(
        "toy-shapes", {"num_classes": 3, "train_per_class": 2, "test_per_class": 1}, tmp_path
    )
    assert ds.num_classes == 3
    assert len(ds.split("train")) == 6


def test_build_dataset_resolves_roots_against_the_data_root(tmp_path: Path, fake_cifar) -> None:
    root, _, _ = fake_cifar
    _make_folder_tree(tmp_path / "folders" / "mine")
    ds = build_dataset("image-folder", {"root": "folders/mine", "name": "mine"}, tmp_path)
    assert ds.name == "mine"
    assert ds.class_names == ("blue car", "cat", "red apple")
    # cifar100 defaults to the data root itself
    assert build_dataset("cifar100", {}, root).num_classes == 5
    # an absolute root is used as is
    elsewhere = tmp_path / "unrelated"
    elsewhere.mkdir()
    assert build_dataset("cifar100", {"root": str(root)}, elsewhere).num_classes == 5


def test_build_dataset_unknown_type_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build_dataset("imagenet-9000", {}, tmp_path, where="bench.datasets[0]")
    message = str(info.value)
    assert "bench.datasets[0].type" in message
    assert "imagenet-9000" in message
    assert "toy-shapes" in message  # lists the known ones

    with pytest.raises(ConfigError, match=r"^dataset\.type"):
        build_dataset("nope", {}, tmp_path)


def test_build_dataset_unknown_param_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        build_dataset("toy-shapes", {"num_clases": 3}, tmp_path, where="bench.datasets[1]")
    message = str(info.value)
    assert "bench.datasets[1].num_clases" in message
    assert "num_classes" in message  # lists the accepted ones
    # data_root is not a parameter a spec may set
    with pytest.raises(ConfigError, match="data_root"):
        build_dataset("cifar100", {"data_root": "/x"}, tmp_path)


# ---------------------------------------------------------------------------------------------
# Dataset / Split validation


def _split(labels: list[int], size: int = 4) -> Split:
    pixels = np.zeros((len(labels), size, size, 3), dtype=np.uint8)
    return Split(ArrayImages(pixels), np.asarray(labels))


def test_dataset_rejects_templates_without_a_slot() -> None:
    with pytest.raises(DataError, match="a photo"):
        Dataset("d", ("x", "y"), {"test": _split([0, 1])}, ("a photo.",))
    with pytest.raises(DataError):
        Dataset("d", ("x", "y"), {"test": _split([0, 1])}, ("{} and {}",))
    with pytest.raises(DataError, match="no prompt templates"):
        Dataset("d", ("x", "y"), {"test": _split([0, 1])}, ())
    with pytest.raises(DataError):
        Dataset("d", ("x",), {"test": _split([0])}).with_templates(["no slot"])


@pytest.mark.parametrize("labels", [[0, 2], [-1, 0], [5]])
def test_dataset_rejects_labels_out_of_range(labels: list[int]) -> None:
    with pytest.raises(DataError) as info:
        Dataset("dd", ("x", "y"), {"train": _split(labels)})
    assert "'train'" in str(info.value)
    assert "0..1" in str(info.value)


def test_split_and_dataset_basics() -> None:
    with pytest.raises(DataError, match="labels of shape"):
        Split(ArrayImages(np.zeros((3, 2, 2, 3), np.uint8)), np.array([0, 1]))
    with pytest.raises(DataError):
        ArrayImages(np.zeros((3, 2, 2, 3), np.float32))
    with pytest.raises(DataError):
        ArrayImages(np.zeros((3, 2, 2), np.uint8))

    ds = Dataset("d", ["x", "y"], {"test": _split([1, 0, 1])})
    assert ds.class_names == ("x", "y")
    assert ds.split("test").labels.dtype == np.int64
    with pytest.raises(DataError, match="'train'"):
        ds.split("train")
    empty = Dataset("e", ("x",), {"test": _split([])})
    assert len(empty.split("test")) == 0

    # fingerprints follow names, templates and labels
    base = ds.fingerprint()
    assert Dataset("d", ["x", "y"], {"test": _split([1, 0, 1])}).fingerprint() == base
    assert Dataset("d", ["x", "z"], {"test": _split([1, 0, 1])}).fingerprint() != base
    assert Dataset("d", ["x", "y"], {"test": _split([0, 0, 1])}).fingerprint() != base
    assert ds.with_templates(["a {}"]).fingerprint() != base
    assert ds.with_templates(["a {}"]).templates == ("a {}",)
