"""Tests of the real-dataset readers on miniature copies of their on-disk layouts (built here in
tmp_path with the real index-file formats: .txt, .json, .mat, idx, pickle), the 80/20 random split,
missing/malformed-data messages, ``driftless data check`` and ``driftless run --dry-run``.

Every fake image is a small solid-colour picture whose colour encodes its class, so reading pixels
back checks that labels and files line up."""

from __future__ import annotations

import gzip
import json
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from driftless.benchmarks import load_benchmark, load_benchmark_spec
from driftless.cli import main
from driftless.data import (
    DATASET_FACTORIES,
    Dataset,
    DatasetMissing,
    caltech101,
    catalog,
    cub200,
    dtd,
    eurosat,
    fgvc_aircraft,
    flowers102,
    food101,
    imagenet100,
    imagenet_a,
    imagenet_r,
    mnist,
    oxford_pet,
    random_split_indices,
    stanford_cars,
    sun397,
    tinyimagenet,
)
from driftless.data.catalog import (
    imagenet_class_names,
    imagenet_subset,
    template_sets,
    zscl_class_names,
)
from driftless.data.check import DatasetCheck, check_dataset
from driftless.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# helpers: images whose colour says their class


def colour(label: int) -> tuple[int, int, int]:
    """A colour per class, at least 16 apart per channel between classes < 256."""
    return (16 * (label % 16) + 8, 16 * ((label // 16) % 16) + 8, 128)


def write_image(path: Path, label: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), colour(label)).save(path)
    return path


def assert_label_alignment(dataset: Dataset, every: int = 1) -> None:
    """Each image's colour is its label's colour (JPEG decoding may move a value by a few units)."""
    for split in dataset.splits.values():
        for i in range(0, len(split), every):
            pixel = np.array(split.image(i).getpixel((1, 1)))
            assert np.abs(pixel - np.array(colour(int(split.labels[i])))).max() <= 6, i


def assert_deterministic(build: Callable[[], Dataset]) -> None:
    first, second = build(), build()
    assert first.fingerprint() == second.fingerprint()
    for name in first.splits:
        np.testing.assert_array_equal(first.split(name).labels, second.split(name).labels)


def relative(dataset: Dataset, split: str) -> list[str]:
    folder = Path(dataset.metadata["folder"])
    return [p.relative_to(folder).as_posix() for p in dataset.split(split).images.paths]


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def torch_random_split(n: int) -> tuple[list[int], list[int]]:
    """What ZSCL does: torch.utils.data.random_split with int(0.8 n) and seed 42."""
    n_train = int(0.8 * n)
    train, test = torch.utils.data.random_split(
        range(n), [n_train, n - n_train], generator=torch.Generator().manual_seed(42)
    )
    return list(train.indices), list(test.indices)


# ---------------------------------------------------------------------------------------------
# fake layouts (each returns what the test needs to know about it)

AIRCRAFT_VARIANTS = ["707-320", "A300B4", "F/A-18", "Cessna 172"]


def make_aircraft(root: Path) -> dict[str, list[tuple[str, int]]]:
    data = root / "fgvc-aircraft-2013b" / "data"
    write_lines(data / "variants.txt", AIRCRAFT_VARIANTS)
    splits = {
        "train": [("1000001", 2), ("1000002", 0), ("1000003", 3)],
        "val": [("1000004", 1)],
        "test": [("1000005", 3), ("1000006", 1), ("1000007", 0), ("1000008", 2)],
    }
    for split, entries in splits.items():
        write_lines(
            data / f"images_variant_{split}.txt",
            [f"{i} {AIRCRAFT_VARIANTS[label]}" for i, label in entries],
        )
        for image_id, label in entries:
            write_image(data / "images" / f"{image_id}.jpg", label)
    trainval = splits["train"] + splits["val"]
    write_lines(
        data / "images_variant_trainval.txt", [f"{i} {AIRCRAFT_VARIANTS[c]}" for i, c in trainval]
    )
    write_lines(data / "images_family_train.txt", ["1000001 Boeing 707"])  # other levels: unused
    return splits


def make_caltech(root: Path, per_class: Callable[[int], int] = lambda c: 1 + c % 3) -> Path:
    categories = root / "caltech101" / "101_ObjectCategories"
    for label, (folder, _) in enumerate(zscl_class_names("caltech101")):
        for i in range(1, per_class(label) + 1):
            write_image(categories / folder / f"image_{i:04d}.jpg", label)
    write_image(categories / "BACKGROUND_Google" / "image_0001.jpg", 255)
    return categories


DTD_CLASSES = ["banded", "zigzagged", "bubbly"]


def make_dtd(root: Path) -> dict[str, list[str]]:
    base = root / "dtd" / "dtd"
    files = {
        "train": ["zigzagged/z_1.jpg", "banded/b_1.jpg", "bubbly/u_1.jpg", "banded/b_2.jpg"],
        "val": ["bubbly/u_2.jpg", "zigzagged/z_2.jpg", "banded/b_3.jpg"],
        "test": ["banded/b_4.jpg", "bubbly/u_3.jpg", "zigzagged/z_3.jpg"],
    }
    for split, entries in files.items():
        write_lines(base / "labels" / f"{split}1.txt", entries)
        write_lines(base / "labels" / f"{split}2.txt", list(reversed(entries)))
        for entry in entries:
            write_image(base / "images" / entry, sorted(DTD_CLASSES).index(entry.split("/")[0]))
    return files


def make_eurosat(root: Path) -> Path:
    base = root / "eurosat" / "2750"
    for label, (folder, _) in enumerate(zscl_class_names("eurosat")):
        for i in range(1, 4 + label % 2):
            write_image(base / folder / f"{folder}_{i}.jpg", label)
    return base


def make_flowers(root: Path) -> dict[str, list[int]]:
    base = root / "flowers-102"
    base.mkdir(parents=True)
    labels = [3, 1, 2, 102, 1, 3, 2, 2]  # image ids 1..8, labels 1..102
    ids = {"trnid": [2, 5], "valid": [7], "tstid": [8, 1, 4, 3, 6]}
    scipy.io.savemat(base / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    scipy.io.savemat(
        base / "setid.mat", {k: np.array([v], dtype=np.uint16) for k, v in ids.items()}
    )
    for image_id, label in enumerate(labels, 1):
        write_image(base / "jpg" / f"image_{image_id:05d}.jpg", label - 1)
    return {"labels": labels, **ids}


FOOD_META = {
    "train": {
        "waffles": ["waffles/11", "waffles/12"],
        "apple_pie": ["apple_pie/1"],
        "bibimbap": ["bibimbap/5"],
    },
    "test": {
        "apple_pie": ["apple_pie/2", "apple_pie/3"],
        "waffles": ["waffles/13"],
        "bibimbap": ["bibimbap/6"],
    },
}


def make_food(root: Path) -> None:
    base = root / "food-101"
    classes = sorted(FOOD_META["train"])
    for split, meta in FOOD_META.items():
        (base / "meta").mkdir(parents=True, exist_ok=True)
        (base / "meta" / f"{split}.json").write_text(json.dumps(meta))
        write_lines(base / "meta" / f"{split}.txt", [p for ps in meta.values() for p in ps])
        for cls, paths in meta.items():
            for p in paths:
                write_image(base / "images" / f"{p}.jpg", classes.index(cls))
    write_lines(base / "meta" / "classes.txt", classes)


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.astype(np.uint8).tobytes()


def make_mnist(root: Path, gz: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    content = {}
    for prefix, n in (("train", 7), ("t10k", 3)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            data = idx_bytes(array)
            name = f"{prefix}-{kind}-ubyte"
            if gz:
                (raw / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (raw / name).write_bytes(data)
        content[prefix] = (images, labels)
    return content


PET_LINES = {
    "trainval": [
        "Abyssinian_100 1 1 1",
        "american_bulldog_10 2 2 1",
        "Abyssinian_101 1 1 1",
        "great_pyrenees_3 3 2 12",
    ],
    "test": ["great_pyrenees_4 3 2 12", "american_bulldog_11 2 2 1"],
}


def make_pets(root: Path) -> None:
    base = root / "oxford-iiit-pet"
    for split, lines in PET_LINES.items():
        write_lines(base / "annotations" / f"{split}.txt", lines)
        for line in lines:
            image_id, label = line.split()[:2]
            write_image(base / "images" / f"{image_id}.jpg", int(label) - 1)
    write_lines(base / "annotations" / "list.txt", ["#Image CLASS-ID SPECIES BREED ID"])


CAR_NAMES = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "smart fortwo Convertible 2012"]


def car_annotations(entries: list[tuple[str, int]]) -> np.ndarray:
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    records = np.zeros((1, len(entries)), dtype=[(f, "O") for f in fields])
    for i, (fname, cls) in enumerate(entries):
        records[0, i] = (
            np.array([[1]], np.uint8),
            np.array([[2]], np.uint8),
            np.array([[30]], np.uint16),
            np.array([[40]], np.uint16),
            np.array([[cls]], np.uint8),
            fname,
        )
    return records


def make_cars(root: Path) -> dict[str, list[tuple[str, int]]]:
    base = root / "stanford_cars"
    (base / "devkit").mkdir(parents=True)
    names = np.empty((1, len(CAR_NAMES)), dtype=object)
    names[0, :] = CAR_NAMES
    scipy.io.savemat(base / "devkit" / "cars_meta.mat", {"class_names": names})
    splits = {
        "train": [("00001.jpg", 3), ("00002.jpg", 1), ("00003.jpg", 2), ("00004.jpg", 1)],
        "test": [("00001.jpg", 2), ("00002.jpg", 3)],
    }
    files = {"train": "devkit/cars_train_annos.mat", "test": "cars_test_annos_withlabels.mat"}
    for split, entries in splits.items():
        scipy.io.savemat(base / files[split], {"annotations": car_annotations(entries)})
        for fname, cls in entries:
            write_image(base / f"cars_{split}" / fname, cls - 1)
    return splits


SUN_CLASSES = ["/a/abbey", "/a/apartment_building/outdoor", "/b/beach"]


def make_sun(root: Path, per_class: int = 4) -> Path:
    base = root / "SUN397"
    write_lines(base / "ClassName.txt", SUN_CLASSES)
    for label, cls in enumerate(SUN_CLASSES):
        for i in range(per_class + label):
            write_image(base / cls.lstrip("/") / f"sun_{label}{i:03d}x.jpg", label)
    (base / "a" / "abbey" / "notes.txt").write_text("not an image")
    return base


def make_imagenet_variant(
    root: Path, name: str, layout: str, per_class: Callable[[int], int] = lambda c: 1 + c % 2
) -> None:
    base = root / name
    for label, wnid in enumerate(imagenet_subset(name)):
        if layout == "folders":
            write_image(base / "train" / wnid / f"{wnid}_0.jpg", label)
            if label % 3:  # some classes have no test image (and no test folder)
                write_image(base / "test" / wnid / f"{wnid}_1.jpg", label)
        else:
            for i in range(per_class(label)):
                write_image(base / wnid / f"{name}_{i}.jpg", label)
    (base / "README.txt").write_text("a file beside the class folders")


TINY_WNIDS = ["n02124075", "n04067472", "n04540053", "n04099969"]  # wnids.txt order, not sorted


def make_tinyimagenet(root: Path) -> list[tuple[str, str]]:
    base = root / "tiny-imagenet-200"
    write_lines(base / "wnids.txt", TINY_WNIDS)
    write_lines(base / "words.txt", [f"{w}\tsome words" for w in TINY_WNIDS])
    for label, wnid in enumerate(TINY_WNIDS):
        boxes = []
        for i in range(2 + label % 2):
            write_image(base / "train" / wnid / "images" / f"{wnid}_{i}.JPEG", label)
            boxes.append(f"{wnid}_{i}.JPEG\t0\t0\t63\t63")
        write_lines(base / "train" / wnid / f"{wnid}_boxes.txt", boxes)
    val = [
        ("val_0.JPEG", TINY_WNIDS[2]),
        ("val_1.JPEG", TINY_WNIDS[0]),
        ("val_2.JPEG", TINY_WNIDS[3]),
    ]
    write_lines(base / "val" / "val_annotations.txt", [f"{f}\t{w}\t0\t0\t63\t63" for f, w in val])
    for file, wnid in val:
        write_image(base / "val" / "images" / file, TINY_WNIDS.index(wnid))
    return val


CUB_CLASSES = ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]


def make_cub(root: Path) -> dict[int, tuple[str, int, str]]:
    base = root / "CUB_200_2011"
    images = {  # id → (path, class id, is_train)
        1: ("001.Black_footed_Albatross/Black_Footed_Albatross_0001_1.jpg", 1, "1"),
        2: ("001.Black_footed_Albatross/Black_Footed_Albatross_0002_2.jpg", 1, "0"),
        3: ("002.Laysan_Albatross/Laysan_Albatross_0001_3.jpg", 2, "0"),
        4: ("003.Sooty_Albatross/Sooty_Albatross_0001_4.jpg", 3, "1"),
        5: ("002.Laysan_Albatross/Laysan_Albatross_0002_5.jpg", 2, "1"),
    }
    write_lines(base / "classes.txt", [f"{i} {c}" for i, c in enumerate(CUB_CLASSES, 1)])
    write_lines(base / "images.txt", [f"{i} {p}" for i, (p, _, _) in images.items()])
    write_lines(base / "image_class_labels.txt", [f"{i} {c}" for i, (_, c, _) in images.items()])
    write_lines(base / "train_test_split.txt", [f"{i} {t}" for i, (_, _, t) in images.items()])
    for path, cls, _ in images.values():
        write_image(base / "images" / path, cls - 1)
    return images


def make_cifar(root: Path, num_classes: int = 100) -> None:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for split in ("train", "test"):
        labels = list(range(num_classes))
        data = np.zeros((num_classes, 3072), dtype=np.uint8)
        with (folder / split).open("wb") as fh:
            pickle.dump({"data": data, "fine_labels": labels, "coarse_labels": labels}, fh)
    with (folder / "meta").open("wb") as fh:
        pickle.dump({"fine_label_names": [f"class_{i}" for i in range(num_classes)]}, fh)


def make_all_mtil(root: Path) -> None:
    make_aircraft(root)
    make_caltech(root, per_class=lambda c: 1)
    make_cifar(root)
    make_dtd(root)
    make_eurosat(root)
    make_flowers(root)
    make_food(root)
    make_mnist(root)
    make_pets(root)
    make_cars(root)
    make_sun(root)


# ---------------------------------------------------------------------------------------------
# catalog and class-name data


def test_catalog_covers_every_reader_and_mtil_has_1201_classes() -> None:
    on_disk = set(catalog())
    assert on_disk <= set(DATASET_FACTORIES)
    assert set(DATASET_FACTORIES) - on_disk == {
        "image-folder",
        "toy-shapes",
        "sklearn-digits",
        *(k for k in DATASET_FACTORIES if k.startswith("world-")),
    }
    mtil = load_benchmark_spec("mtil-order1").datasets
    assert sum(catalog()[d.type].classes for d in mtil) == 1201
    for name, info in catalog().items():
        assert info.title and info.source and info.layout and info.splits, name
        assert template_sets(name), name


def test_class_name_data() -> None:
    names = imagenet_class_names()
    assert len(names) == 1000 and list(names) == sorted(names)
    assert names["n01440764"] == "tench" and names["n02124075"] == "Egyptian Mau"
    assert imagenet_subset("imagenet100") == list(names)[:100]
    for subset in ("imagenet-r", "imagenet-a"):
        wnids = imagenet_subset(subset)
        assert len(wnids) == len(set(wnids)) == 200 and wnids == sorted(wnids)
        assert set(wnids) <= set(names)
    assert imagenet_subset("imagenet-r")[:3] == ["n01443537", "n01484850", "n01494475"]
    caltech = zscl_class_names("caltech101")
    assert len(caltech) == 101 and caltech[0] == ["Faces", "off-center face"]
    assert [f for f, _ in caltech] == sorted(f for f, _ in caltech)
    assert zscl_class_names("eurosat")[-1] == ["SeaLake", "lake or sea"]
    assert len(zscl_class_names("flowers102")) == 102
    assert len(template_sets("cifar100")["zscl"]) == 18
    assert template_sets("caltech101")["zscl"][0] == "a photo of a {}."


# ---------------------------------------------------------------------------------------------
# the 80/20 split


@pytest.mark.parametrize("n", [2, 5, 10, 101, 8677])
def test_random_split_indices_equal_torch_random_split(n: int) -> None:
    train, test = random_split_indices(n)
    expected_train, expected_test = torch_random_split(n)
    assert train.tolist() == expected_train and test.tolist() == expected_test
    assert len(train) == int(0.8 * n)


def test_caltech101_split_equals_random_split_over_torchvision_order(tmp_path: Path) -> None:
    categories = make_caltech(tmp_path)
    # torchvision's enumeration, written out independently of the reader
    folders = sorted(os.listdir(categories))
    folders.remove("BACKGROUND_Google")
    order = []
    for label, folder in enumerate(folders):
        n = len(os.listdir(categories / folder))
        order += [(f"{folder}/image_{i:04d}.jpg", label) for i in range(1, n + 1)]
    train_idx, test_idx = torch_random_split(len(order))

    ds = caltech101(tmp_path)
    assert ds.name == "caltech101" and ds.num_classes == 101
    assert ds.class_names[:4] == ("off-center face", "centered face", "leopard", "motorbike")
    for split, idx in (("train", train_idx), ("test", test_idx)):
        paths = [p.relative_to(categories).as_posix() for p in ds.split(split).images.paths]
        assert paths == [order[i][0] for i in idx]
        assert ds.split(split).labels.tolist() == [order[i][1] for i in idx]
    assert len(ds.split("train")) == int(0.8 * len(order))
    assert ds.templates == template_sets("caltech101")["zscl"]
    assert_label_alignment(ds, every=7)
    assert_deterministic(lambda: caltech101(tmp_path))
    assert caltech101(tmp_path / "caltech101").fingerprint() == ds.fingerprint()  # its own folder


def test_caltech101_malformed(tmp_path: Path) -> None:
    categories = make_caltech(tmp_path)
    (categories / "wrench" / "image_0001.jpg").unlink()
    write_image(categories / "wrench" / "image_0002.jpg", 3)  # a gap in the numbering
    with pytest.raises(DataError, match="without gaps") as info:
        caltech101(tmp_path)
    assert "Caltech101" in str(info.value) and "101_ObjectCategories" in str(info.value)
    for file in (categories / "wrench").iterdir():
        file.unlink()
    (categories / "wrench").rmdir()
    with pytest.raises(DataError, match="wrench"):
        caltech101(tmp_path)


def test_eurosat_split_equals_random_split_over_imagefolder_order(tmp_path: Path) -> None:
    base = make_eurosat(tmp_path)
    order = [
        (f"{cls}/{f}", label)
        for label, cls in enumerate(sorted(os.listdir(base)))
        for f in sorted(os.listdir(base / cls))
    ]
    train_idx, test_idx = torch_random_split(len(order))
    ds = eurosat(tmp_path)
    assert ds.num_classes == 10 and ds.class_names[0] == "annual crop land"
    assert relative(ds, "train") == [order[i][0] for i in train_idx]
    assert relative(ds, "test") == [order[i][0] for i in test_idx]
    assert_label_alignment(ds)
    assert_deterministic(lambda: eurosat(tmp_path))


# ---------------------------------------------------------------------------------------------
# MTIL readers with an official split


def test_fgvc_aircraft(tmp_path: Path) -> None:
    splits = make_aircraft(tmp_path)
    ds = fgvc_aircraft(tmp_path)
    assert ds.class_names == tuple(AIRCRAFT_VARIANTS)
    for split in ("train", "test"):
        assert relative(ds, split) == [f"data/images/{i}.jpg" for i, _ in splits[split]]
        assert ds.split(split).labels.tolist() == [label for _, label in splits[split]]
    assert len(ds.templates) == 2 and "aircraft" in ds.templates[0]
    trainval = fgvc_aircraft(tmp_path, train_split="trainval")
    assert trainval.split("train").labels.tolist() == [2, 0, 3, 1]
    assert_label_alignment(ds)
    assert_deterministic(lambda: fgvc_aircraft(tmp_path))


def test_fgvc_aircraft_unknown_variant_names_the_line(tmp_path: Path) -> None:
    make_aircraft(tmp_path)
    index = tmp_path / "fgvc-aircraft-2013b" / "data" / "images_variant_test.txt"
    index.write_text(index.read_text() + "1000009 Spitfire\n")
    with pytest.raises(DataError) as info:
        fgvc_aircraft(tmp_path)
    message = str(info.value)
    assert "FGVC-Aircraft" in message and str(index) in message and "line 5" in message
    assert "images_variant_train.txt" in message  # the expected layout


def test_dtd_partition_and_trainval(tmp_path: Path) -> None:
    files = make_dtd(tmp_path)
    ds = dtd(tmp_path)
    assert ds.class_names == ("banded", "bubbly", "zigzagged")
    assert relative(ds, "train") == [f"images/{f}" for f in files["train"]]
    assert relative(ds, "test") == [f"images/{f}" for f in files["test"]]
    assert ds.split("train").labels.tolist() == [2, 0, 1, 0]
    trainval = dtd(tmp_path, train_split="trainval")
    assert len(trainval.split("train")) == 7
    assert relative(dtd(tmp_path, partition=2), "test") == [
        f"images/{f}" for f in reversed(files["test"])
    ]
    assert_label_alignment(trainval)
    assert_deterministic(lambda: dtd(tmp_path))
    with pytest.raises(ConfigError, match="partition"):
        dtd(tmp_path, partition=11)


def test_flowers102_mat_files(tmp_path: Path) -> None:
    info = make_flowers(tmp_path)
    ds = flowers102(tmp_path)
    assert ds.num_classes == 102 and ds.class_names[0] == "pink primrose"
    assert relative(ds, "train") == ["jpg/image_00002.jpg", "jpg/image_00005.jpg"]
    assert ds.split("test").labels.tolist() == [info["labels"][i - 1] - 1 for i in info["tstid"]]
    assert len(flowers102(tmp_path, train_split="trainval").split("train")) == 3
    assert_label_alignment(ds)
    assert_deterministic(lambda: flowers102(tmp_path))


def test_flowers102_corrupt_mat_names_the_file(tmp_path: Path) -> None:
    make_flowers(tmp_path)
    (tmp_path / "flowers-102" / "setid.mat").write_bytes(b"not a mat file")
    with pytest.raises(DataError) as info:
        flowers102(tmp_path)
    assert "Flowers102" in str(info.value) and "setid.mat" in str(info.value)
    assert "imagelabels.mat" in str(info.value)  # the layout


def test_food101_json(tmp_path: Path) -> None:
    make_food(tmp_path)
    ds = food101(tmp_path)
    assert ds.class_names == ("apple pie", "bibimbap", "waffles")
    # class by class in the json's order, labels from the sorted classes
    assert relative(ds, "train") == [
        "images/waffles/11.jpg",
        "images/waffles/12.jpg",
        "images/apple_pie/1.jpg",
        "images/bibimbap/5.jpg",
    ]
    assert ds.split("train").labels.tolist() == [2, 2, 0, 1]
    assert ds.split("test").labels.tolist() == [0, 0, 2, 1]
    assert_label_alignment(ds)
    assert_deterministic(lambda: food101(tmp_path))
    (tmp_path / "food-101" / "meta" / "test.json").write_text("{not json")
    with pytest.raises(DataError, match=r"test\.json"):
        food101(tmp_path)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzipped"])
def test_mnist_idx_files(tmp_path: Path, gz: bool) -> None:
    content = make_mnist(tmp_path, gz=gz)
    ds = mnist(tmp_path)
    assert ds.class_names[0] == "0 - zero" and ds.num_classes == 10
    assert ds.templates == ('a photo of the number: "{}".',)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = content[prefix]
        assert ds.split(split).labels.tolist() == labels.tolist()
        image = ds.split(split).image(2)
        assert image.mode == "RGB" and image.size == (28, 28)
        assert image.getpixel((5, 3)) == (images[2, 3, 5],) * 3
    assert_deterministic(lambda: mnist(tmp_path))


def test_mnist_bad_idx_names_the_file(tmp_path: Path) -> None:
    make_mnist(tmp_path)
    bad = tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    bad.write_bytes(b"\x00\x00\x08\x01" + (5).to_bytes(4, "big") + b"\x01\x02")
    with pytest.raises(DataError) as info:
        mnist(tmp_path)
    assert "MNIST" in str(info.value) and str(bad) in str(info.value)


def test_oxford_pet_names_as_torchvision(tmp_path: Path) -> None:
    make_pets(tmp_path)
    ds = oxford_pet(tmp_path)
    assert ds.class_names == ("Abyssinian", "American Bulldog", "Great Pyrenees")
    assert ds.split("train").labels.tolist() == [0, 1, 0, 2]
    assert relative(ds, "test") == ["images/great_pyrenees_4.jpg", "images/american_bulldog_11.jpg"]
    assert_label_alignment(ds)
    assert_deterministic(lambda: oxford_pet(tmp_path))


def test_stanford_cars_struct_mat(tmp_path: Path) -> None:
    splits = make_cars(tmp_path)
    ds = stanford_cars(tmp_path)
    assert ds.class_names == tuple(CAR_NAMES)
    for split, entries in splits.items():
        assert relative(ds, split) == [f"cars_{split}/{f}" for f, _ in entries]
        assert ds.split(split).labels.tolist() == [c - 1 for _, c in entries]
    assert len(ds.templates) == 9
    assert_label_alignment(ds)
    assert_deterministic(lambda: stanford_cars(tmp_path))


def test_sun397_split_over_torchvision_rglob_order(tmp_path: Path) -> None:
    base = make_sun(tmp_path)
    order = list(base.rglob("sun_*.jpg"))  # torchvision's enumeration
    train_idx, test_idx = torch_random_split(len(order))
    ds = sun397(tmp_path)
    assert ds.class_names == ("abbey", "apartment building/outdoor", "beach")
    assert ds.split("train").images.paths == [order[i] for i in train_idx]
    assert ds.split("test").images.paths == [order[i] for i in test_idx]
    assert_label_alignment(ds)
    ordered = sun397(tmp_path, sample_order="sorted")
    everything = sorted(order, key=lambda p: p.relative_to(base).as_posix())
    assert ordered.split("test").images.paths == [everything[i] for i in test_idx]
    assert_label_alignment(ordered)
    assert_deterministic(lambda: sun397(tmp_path, sample_order="sorted"))
    write_image(base / "c" / "castle" / "sun_999.jpg", 1)
    with pytest.raises(DataError, match="castle"):
        sun397(tmp_path)


def test_cifar100_zscl_templates(tmp_path: Path) -> None:
    make_cifar(tmp_path, num_classes=3)
    ds = DATASET_FACTORIES["cifar100"](tmp_path, templates="zscl")
    assert len(ds.templates) == 18
    with pytest.raises(ConfigError, match="continual-clip"):
        DATASET_FACTORIES["cifar100"](tmp_path, templates="nonsense")


# ---------------------------------------------------------------------------------------------
# class-incremental datasets


def test_imagenet_r_original_archive_is_split_80_20(tmp_path: Path) -> None:
    make_imagenet_variant(tmp_path, "imagenet-r", "original")
    ds = imagenet_r(tmp_path)
    wnids = imagenet_subset("imagenet-r")
    assert ds.metadata["split"] == "random" and ds.num_classes == 200
    assert ds.class_names[0] == imagenet_class_names()["n01443537"] == "goldfish"
    order = [
        f"{w}/imagenet-r_{i}.jpg" for label, w in enumerate(wnids) for i in range(1 + label % 2)
    ]
    train_idx, test_idx = torch_random_split(len(order))
    assert relative(ds, "train") == [order[i] for i in train_idx]
    assert relative(ds, "test") == [order[i] for i in test_idx]
    assert len(ds.templates) == 80
    assert_label_alignment(ds, every=5)
    assert_deterministic(lambda: imagenet_r(tmp_path))


def test_imagenet_a_pilot_folders(tmp_path: Path) -> None:
    make_imagenet_variant(tmp_path, "imagenet-a", "folders")
    ds = imagenet_a(tmp_path)
    assert ds.metadata["split"] == "folders" and ds.num_classes == 200
    assert len(ds.split("train")) == 200
    assert len(ds.split("test")) == sum(1 for label in range(200) if label % 3)
    assert all(p.startswith("train/") for p in relative(ds, "train"))
    assert_label_alignment(ds, every=9)
    make_imagenet_variant(tmp_path / "r", "imagenet-r", "original", per_class=lambda c: 1)
    with pytest.raises(DataError, match="train/ and test/"):
        imagenet_r(tmp_path / "r", split="folders")


def test_imagenet_r_missing_and_malformed(tmp_path: Path) -> None:
    with pytest.raises(DatasetMissing) as info:
        imagenet_r(tmp_path)
    assert "ImageNet-R" in str(info.value) and str(tmp_path) in str(info.value)
    assert "imagenet-r/<wnid>" in str(info.value) and "hendrycks" in str(info.value)
    make_imagenet_variant(tmp_path, "imagenet-r", "original")
    write_image(tmp_path / "imagenet-r" / "n99999999" / "x.jpg", 0)
    with pytest.raises(DataError, match="n99999999"):
        imagenet_r(tmp_path)


def test_imagenet100_first_100_classes(tmp_path: Path) -> None:
    base = tmp_path / "ImageNet"
    wnids = imagenet_subset("imagenet100")
    for label, wnid in enumerate(wnids):
        write_image(base / "train" / wnid / f"{wnid}_1.JPEG", label)
        write_image(base / "train" / wnid / f"{wnid}_2.JPEG", label)
        write_image(base / "val" / wnid / f"ILSVRC2012_val_{label:08d}.JPEG", label)
    write_image(base / "train" / "n15075141" / "other.JPEG", 0)  # one of the other 900: ignored
    ds = imagenet100(tmp_path)
    assert ds.num_classes == 100 and ds.class_names[:2] == ("tench", "goldfish")
    assert ds.templates == ("a good photo of a {}.",)
    assert len(ds.split("train")) == 200 and len(ds.split("test")) == 100
    assert ds.split("test").labels.tolist() == list(range(100))
    assert_label_alignment(ds, every=3)
    assert_deterministic(lambda: imagenet100(tmp_path))


def test_tinyimagenet_wnids_order(tmp_path: Path) -> None:
    val = make_tinyimagenet(tmp_path)
    ds = tinyimagenet(tmp_path)
    assert ds.class_names == ("Egyptian Mau", "fishing casting reel", "volleyball", "rocking chair")
    assert ds.templates == ("a bad photo of a {}.",)
    assert ds.split("train").labels.tolist() == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3]
    assert relative(ds, "test") == [f"val/images/{f}" for f, _ in val]
    assert ds.split("test").labels.tolist() == [2, 0, 3]
    assert_label_alignment(ds)
    assert_deterministic(lambda: tinyimagenet(tmp_path))


def test_cub200_official_split(tmp_path: Path) -> None:
    images = make_cub(tmp_path)
    ds = cub200(tmp_path)
    assert ds.metadata["split"] == "official"
    assert ds.class_names == ("Black footed Albatross", "Laysan Albatross", "Sooty Albatross")
    for split, flag in (("train", "1"), ("test", "0")):
        expected = [(p, c - 1) for _, (p, c, t) in sorted(images.items()) if t == flag]
        assert relative(ds, split) == [f"images/{p}" for p, _ in expected]
        assert ds.split(split).labels.tolist() == [c for _, c in expected]
    assert ds.templates == ("a photo of a {}, a type of bird.",)
    assert_label_alignment(ds)
    assert_deterministic(lambda: cub200(tmp_path))


def test_cub200_pilot_folders(tmp_path: Path) -> None:
    for split, count in (("train", 2), ("test", 1)):
        for label, cls in enumerate(CUB_CLASSES):
            for i in range(count):
                write_image(tmp_path / "cub" / split / cls / f"{i}.jpg", label)
    ds = cub200(tmp_path)
    assert ds.metadata["split"] == "folders"
    assert ds.class_names[1] == "Laysan Albatross"
    assert ds.split("test").labels.tolist() == [0, 1, 2]
    assert_label_alignment(ds)
    with pytest.raises(DatasetMissing):
        cub200(tmp_path, split="official")
    check = check_dataset("cub200", tmp_path)  # PILOT's split: no official sizes to compare with
    assert check.status == "found" and check.counts_match()
    assert check.expected_size("train") is None


def test_cub200_inconsistent_index_files(tmp_path: Path) -> None:
    make_cub(tmp_path)
    split_file = tmp_path / "CUB_200_2011" / "train_test_split.txt"
    split_file.write_text("1 1\n2 0\n")
    with pytest.raises(DataError) as info:
        cub200(tmp_path)
    assert "CUB-200-2011" in str(info.value) and "train_test_split.txt" in str(info.value)


# ---------------------------------------------------------------------------------------------
# messages for missing data, for every reader


@pytest.mark.parametrize("name", sorted(catalog()))
def test_missing_dataset_message_names_dataset_path_and_layout(tmp_path: Path, name: str) -> None:
    info = catalog()[name]
    root = tmp_path / "empty-root"
    root.mkdir()
    with pytest.raises(DataError) as error:
        DATASET_FACTORIES[name](root)
    message = str(error.value)
    assert isinstance(error.value, DatasetMissing), message
    assert info.title.split(" (")[0] in message
    assert str(root) in message
    assert info.layout.split("/")[1].split(" ")[0] in message  # the dataset's folder


def test_present_folder_without_its_index_is_malformed(tmp_path: Path) -> None:
    (tmp_path / "flowers-102").mkdir()
    with pytest.raises(DataError) as info:
        flowers102(tmp_path)
    assert not isinstance(info.value, DatasetMissing)
    assert "setid.mat is missing" in str(info.value) and str(tmp_path / "flowers-102") in str(
        info.value
    )


# ---------------------------------------------------------------------------------------------
# benchmarks


def test_named_benchmarks_exist_with_their_protocols() -> None:
    expected = {
        "cifar100-b0inc10": (0, 10, "continual-clip"),
        "cifar100-b0inc20": (0, 20, "continual-clip"),
        "cifar100-b0inc5": (0, 5, "continual-clip"),
        "cifar100-b0inc2": (0, 2, "continual-clip"),
        "cifar100-b50inc10": (50, 10, "continual-clip"),
        "cifar100-b50inc5": (50, 5, "continual-clip"),
        "imagenet-r-b0inc20": (0, 20, "seed1993"),
        "cub200-b0inc20": (0, 20, "seed1993"),
        "imagenet-a-b0inc20": (0, 20, "seed1993"),
        "tinyimagenet-b100inc5": (100, 5, None),
        "tinyimagenet-b100inc10": (100, 10, None),
        "tinyimagenet-b100inc20": (100, 20, None),
        "imagenet100-b0inc10": (0, 10, None),
    }
    for name, (base, increment, order) in expected.items():
        spec = load_benchmark_spec(name)
        assert (spec.base, spec.increment) == (base, increment), name
        if order is None:
            assert isinstance(spec.order, list) and sorted(spec.order) == list(
                range(len(spec.order))
            )
        else:
            assert spec.order == order
    assert load_benchmark_spec("tinyimagenet-b100inc10").order[:3] == [131, 181, 22]
    assert load_benchmark_spec("imagenet100-b0inc10").order[:3] == [68, 56, 78]
    order1 = [d.type for d in load_benchmark_spec("mtil-order1").datasets]
    assert order1 == sorted(order1, key=lambda t: t.replace("fgvc-", ""))
    order2 = [d.type for d in load_benchmark_spec("mtil-order2").datasets]
    assert (
        order2[0] == "stanford-cars"
        and order2[-1] == "cifar100"
        and sorted(order2) == sorted(order1)
    )
    shots = load_benchmark_spec("mtil-5shot")
    assert shots.shots == 5 and [d.type for d in shots.datasets] == order1


def test_order_variant_by_name(tmp_path: Path) -> None:
    make_cifar(tmp_path)
    spec = load_benchmark_spec("cifar100-b0inc10@seed1993")
    assert spec.name == "cifar100-b0inc10@seed1993" and spec.order == "seed1993"
    bench = load_benchmark("cifar100-b50inc10@seed1993", tmp_path)
    expected = [int(c) for c in np.random.RandomState(1993).permutation(100)]
    assert list(bench.all_class_ids()) == expected and bench.num_tasks == 6
    with pytest.raises(ConfigError, match="class order"):
        load_benchmark_spec("mtil-order1@seed1993")
    with pytest.raises(ConfigError, match="order"):
        load_benchmark("cifar100-b0inc10@nonsense", tmp_path)


def test_mtil_order1_builds_from_a_fake_root(tmp_path: Path) -> None:
    make_all_mtil(tmp_path)
    bench = load_benchmark("mtil-order1", tmp_path)
    assert [t.name for t in bench.tasks][:3] == ["fgvc-aircraft", "caltech101", "cifar100"]
    # the fakes: 4 + 101 + 100 + 3 + 10 + 102 + 3 + 10 + 3 + 3 + 3 classes (the real ones: 1,201)
    assert len(bench.classes) == 342
    assert bench.datasets["cifar100"].templates == template_sets("cifar100")["zscl"]


# ---------------------------------------------------------------------------------------------
# driftless data check


def test_data_check_reports_found_missing_malformed(tmp_path: Path, capsys) -> None:
    make_mnist(tmp_path)
    make_pets(tmp_path)
    (tmp_path / "oxford-iiit-pet" / "images" / "Abyssinian_101.jpg").unlink()
    (tmp_path / "food-101" / "meta").mkdir(parents=True)  # food without its index files
    code = main(["data", "check", "--root", str(tmp_path)])
    out = capsys.readouterr().out
    rows: dict[str, str] = {}
    for line in out.splitlines():  # the table's row of each dataset comes first
        if line and line.split()[0] in catalog():
            rows.setdefault(line.split()[0], line)
    assert set(rows) == set(catalog())
    assert "found, sizes differ" in rows["mnist"] and "7 ≠ 60,000" in rows["mnist"]
    assert "malformed" in rows["oxford-pet"] and "malformed" in rows["food101"]
    assert "missing" in rows["sun397"] and "– (87,003)" in rows["sun397"]
    assert "1 of the 4 train images it lists are missing" in out
    assert "http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz" in out  # where from
    assert "<root>/SUN397/{ClassName.txt" in out  # expected layout
    assert code == 1


def test_data_check_one_dataset_and_counts(tmp_path: Path, capsys) -> None:
    make_mnist(tmp_path)
    assert main(["data", "check", "--root", str(tmp_path), "--dataset", "sun397"]) == 0
    out = capsys.readouterr().out
    assert "sun397" in out and "mnist" not in out
    check = check_dataset("mnist", tmp_path)
    assert check.status == "found" and check.counts == {"train": 7, "test": 3}
    assert not check.counts_match()
    exact = DatasetCheck(catalog()["mnist"], "found", counts={"train": 60000, "test": 10000})
    assert exact.counts_match()
    assert main(["data", "check", "--root", str(tmp_path), "--dataset", "nope"]) == 2


# ---------------------------------------------------------------------------------------------
# reproduction configs and --dry-run


def test_reproduce_configs_validate_and_state_published_numbers() -> None:
    from driftless.config import build_run_config, load_yaml_config

    configs = sorted((REPO / "configs" / "reproduce").glob("*.yaml"))
    assert len(configs) >= 10
    # configs whose row has no published number anywhere we could read say so in a comment
    unpublished = {"calfuse-imagenet100-b0inc10.yaml": "No reference row"} | {
        f"{method}-{bench}.yaml": "No published number is attached"
        for method in ("l2p", "dualprompt", "coda-prompt")
        for bench in ("cifar100-b0inc10", "imagenet-r-b0inc20")
    }
    for path in configs:
        config = build_run_config(load_yaml_config(path))
        if path.name in unpublished:
            assert config.reference is None and unpublished[path.name] in path.read_text(), path
            load_benchmark_spec(config.benchmark)
            continue
        assert config.reference is not None and config.reference.metrics, path
        load_benchmark_spec(config.benchmark)
    with pytest.raises(ConfigError, match="unknown metric"):
        build_run_config({"reference": {"source": "x", "metrics": {"accuracy": 1.0}}})


def test_dry_run_on_a_reproduce_config(tmp_path: Path, capsys, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    make_all_mtil(tmp_path / "data")
    config = REPO / "configs" / "reproduce" / "zero-shot-mtil-order1.yaml"
    args = ["run", "--config", str(config), "--data-root", str(tmp_path / "data"), "--dry-run"]
    assert main([*args, "--backbone", "tiny-random"]) == 0
    out = capsys.readouterr().out
    assert "benchmark mtil-order1: multi-domain, 11 tasks, 342 classes" in out
    assert "sun397: 3 classes" in out and "mnist: 10 classes, test 3, train 7" in out
    assert "reproduces: transfer 69.4, avg 65.3, last 65.3" in out
    assert "nothing was trained" in out

    # the config's own backbone is not in the (empty) Hugging Face cache
    assert main(args) == 2
    assert "openai/clip-vit-base-patch16" in capsys.readouterr().err

    # a listed image that is missing fails the dry run, naming it
    (tmp_path / "data" / "food-101" / "images" / "bibimbap" / "6.jpg").unlink()
    assert main([*args, "--backbone", "tiny-random"]) == 2
    assert "food101/test: 1 image files missing" in capsys.readouterr().err


def test_run_prints_published_beside_ours(tmp_path: Path, capsys, cache_dir) -> None:
    import yaml

    config = tmp_path / "repro.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "benchmark": "toy-cil",
                "methods": ["zero-shot"],
                "backbone": "tiny-random",
                "out": str(tmp_path / "run"),
                "reference": {"source": "a paper, Table 1", "metrics": {"avg": 12.5, "last": 8.0}},
            }
        )
    )
    assert main(["run", "--config", str(config), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "published: a paper, Table 1" in out
    lines = [line for line in out.splitlines() if line.startswith("| zero-shot (ours)")]
    assert len(lines) == 1
    assert any(line.startswith("| published") and "12.50" in line for line in out.splitlines())
