"""Readers of the domain-incremental and FSCIL datasets on miniature copies of their layouts:
CORe50 (PNG folders and the NumPy archive), DomainNet (cleaned), miniImageNet (both CSV layouts),
CEC's session lists, and ``driftless data check`` on them."""

from __future__ import annotations

import importlib
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from driftless.benchmarks import load_benchmark
from driftless.data import core50, domainnet, miniimagenet
from driftless.data.check import check_dataset
from driftless.data.cub import cub200
from driftless.data.sessions import read_cec_sessions
from driftless.errors import DataError


def colour(label: int) -> tuple[int, int, int]:
    return (16 * (label % 16) + 8, 16 * ((label // 16) % 16) + 8, 128)


def write_image(path: Path, label: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), colour(label)).save(path)
    return path


def assert_colours_match_labels(split) -> None:
    for i in range(len(split)):
        pixel = np.array(split.image(i).getpixel((1, 1)))
        assert np.abs(pixel - np.array(colour(int(split.labels[i])))).max() <= 6, i


CORE50_SAMPLES = [(s, o, f) for s in (1, 2, 3, 7) for o in (1, 6, 50) for f in range(2)]


def make_core50_png(root: Path) -> None:
    for s, o, f in CORE50_SAMPLES:
        path = (
            root
            / "core50"
            / "core50_128x128"
            / f"s{s}"
            / f"o{o}"
            / f"C_{s:02d}_{o:02d}_{f:03d}.png"
        )
        write_image(path, o - 1)


def make_core50_npz(root: Path) -> None:
    folder = root / "core50"
    folder.mkdir(parents=True)
    rows = CORE50_SAMPLES[::-1]  # the archive's own order, not sorted
    pixels = np.stack([np.broadcast_to(colour(o - 1), (4, 4, 3)) for _, o, _ in rows]).astype(
        np.uint8
    )
    np.savez(folder / "core50_imgs.npz", x=pixels)
    paths = [f"s{s}/o{o}/C_{s:02d}_{o:02d}_{f:03d}.png" for s, o, f in rows]
    with (folder / "paths.pkl").open("wb") as fh:
        pickle.dump(paths, fh)


@pytest.mark.parametrize("make", [make_core50_png, make_core50_npz])
def test_core50_sessions_as_domains(tmp_path: Path, make) -> None:
    make(tmp_path)
    ds = core50(tmp_path)
    assert ds.num_classes == 50 and ds.class_names[0] == "plug adapter 1"
    assert ds.class_names[5] == "mobile phone 1" and ds.class_names[49] == "remote control 5"
    assert set(ds.splits) == {"s1/train", "s2/train", "s3/test", "s7/test", "train", "test"}
    assert (len(ds.split("train")), len(ds.split("test"))) == (12, 12)
    for name, split in ds.splits.items():
        assert sorted(set(split.labels.tolist())) == [0, 5, 49], name
        assert_colours_match_labels(split)
    cats = core50(tmp_path, labels="categories", test_sessions=[1])
    assert cats.class_names[9] == "remote control"
    assert sorted(set(cats.split("s1/test").labels.tolist())) == [0, 1, 9]
    assert set(cats.splits) >= {"s1/test", "s3/train"}
    assert core50(tmp_path).fingerprint() == ds.fingerprint()


def test_core50_npz_is_memory_mapped_and_paths_never_run_code(tmp_path: Path) -> None:
    make_core50_npz(tmp_path)
    ds = core50(tmp_path, layout="npz")
    assert isinstance(ds.split("train").images.pixels, np.memmap)
    assert ds.metadata["layout"] == "npz"

    class Payload:  # a pickle that would call a function on load
        def __reduce__(self):
            return (print, ("pwned",))

    with (tmp_path / "core50" / "paths.pkl").open("wb") as fh:
        pickle.dump([Payload()], fh)
    with pytest.raises(DataError, match="not a readable list of paths"):
        core50(tmp_path, layout="npz")


def test_core50_dil_benchmark(tmp_path: Path) -> None:
    make_core50_png(tmp_path)
    spec_path = tmp_path / "mini-core50.yaml"
    spec_path.write_text(
        "name: mini-core50\nprotocol: domain-incremental\ndatasets: [{type: core50}]\n"
        "domains: [s1, s2]\ntest_domains: [s3, s7]\n"
    )
    b = load_benchmark(str(spec_path), tmp_path)
    assert [t.name for t in b.tasks] == ["s1", "s2"] and len(b.classes) == 50
    assert [e.task_index for e in b.eval_splits] == [-1, -1]
    with pytest.raises(DataError, match="CORe50"):
        load_benchmark("core50-dil", tmp_path / "empty")


DOMAINNET_CLASSES = {0: "aircraft_carrier", 1: "zebra"}


def make_domainnet(root: Path, domains=("clipart", "real")) -> None:
    folder = root / "domainnet"
    for d in domains:
        for split, count in (("train", 2), ("test", 1)):
            lines = []
            for label, cls in DOMAINNET_CLASSES.items():
                for i in range(count):
                    relative = f"{d}/{cls}/{d}_{split}_{i:03d}.jpg"
                    write_image(folder / relative, label)
                    lines.append(f"{relative} {label}")
            (folder / f"{d}_{split}.txt").write_text("\n".join(lines) + "\n")


def test_domainnet_lists(tmp_path: Path, monkeypatch) -> None:
    module = importlib.import_module("driftless.data.domainnet")  # the package's name is the reader

    monkeypatch.setattr(module, "NUM_CLASSES", 2)  # a two-class miniature
    make_domainnet(tmp_path)
    ds = domainnet(tmp_path, domains=["clipart", "real"])
    assert ds.class_names == ("aircraft carrier", "zebra")
    assert {k: len(v) for k, v in ds.splits.items()} == {
        "clipart/train": 4, "clipart/test": 2, "real/train": 4, "real/test": 2, "train": 8, "test": 4,
    }  # fmt: skip
    for split in ds.splits.values():
        assert_colours_match_labels(split)
    bad = tmp_path / "domainnet" / "real_test.txt"
    bad.write_text("real/zebra/x.jpg 0\n")
    with pytest.raises(DataError, match=r"real_test\.txt: line 1: label 0 is 'zebra' here"):
        domainnet(tmp_path, domains=["clipart", "real"])


WNIDS = ["n01532829", "n01558993", "n01704323"]


def make_mini_fscil(root: Path) -> None:
    folder = root / "miniimagenet"
    rows = {"train": [], "test": []}
    for label, wnid in enumerate(WNIDS):
        for split, count in (("train", 3), ("test", 1)):
            for i in range(count):
                name = f"{wnid}{label * 10 + i + (0 if split == 'train' else 5):08d}.jpg"
                write_image(folder / "images" / name, label)
                rows[split].append(f"{name},{wnid}")
    for split, lines in rows.items():
        (folder / "split").mkdir(exist_ok=True)
        (folder / "split" / f"{split}.csv").write_text("filename,label\n" + "\n".join(lines) + "\n")


def test_miniimagenet_fscil_layout_and_cec_path_lists(tmp_path: Path) -> None:
    make_mini_fscil(tmp_path)
    ds = miniimagenet(tmp_path)
    assert ds.metadata["layout"] == "fscil" and ds.class_names[0] == "house finch"
    assert (len(ds.split("train")), len(ds.split("test"))) == (9, 3)
    assert_colours_match_labels(ds.split("train"))
    lists = tmp_path / "index_list" / "mini_imagenet"
    lists.mkdir(parents=True)
    names = [p.name for p in ds.split("train").images.paths]
    (lists / "session_2.txt").write_text(
        "".join(f"MINI-ImageNet/train/{WNIDS[2]}/{n}\n" for n in names[6:8])
    )
    assert [s.tolist() for s in read_cec_sessions(tmp_path, "mini_imagenet", ds)] == [[6, 7]]
    (lists / "session_2.txt").write_text("MINI-ImageNet/train/n0/absent.jpg\n")
    with pytest.raises(DataError, match=r"absent\.jpg is not among"):
        read_cec_sessions(tmp_path, "mini_imagenet", ds)


def test_miniimagenet_ravi_layout(tmp_path: Path, monkeypatch) -> None:
    module = importlib.import_module("driftless.data.miniimagenet")

    monkeypatch.setattr(module, "RAVI_TRAIN_PER_CLASS", 2)
    folder = tmp_path / "miniimagenet"
    for part, wnid in zip(("train", "val", "test"), WNIDS, strict=True):
        names = [f"{wnid}{i:08d}.jpg" for i in range(3)]
        for name in names:
            write_image(folder / "images" / name, WNIDS.index(wnid))
        (folder / f"{part}.csv").write_text(
            "filename,label\n" + "".join(f"{n},{wnid}\n" for n in names)
        )
    ds = miniimagenet(tmp_path)
    assert ds.metadata["layout"] == "ravi"
    assert ds.split("train").labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert ds.split("test").labels.tolist() == [0, 1, 2]
    assert ds.split("test").images.paths[0].name == f"{WNIDS[0]}00000002.jpg"


def test_cub_fscil_lists_match_by_file_name(tmp_path: Path) -> None:
    base = tmp_path / "CUB_200_2011"
    images = {1: ("001.A_bird/A_0001_1.jpg", 1, 1), 2: ("001.A_bird/A_0002_2.jpg", 1, 0),
              3: ("002.B_bird/B_0001_3.jpg", 2, 1), 4: ("002.B_bird/B_0002_4.jpg", 2, 1)}  # fmt: skip
    (base / "images").mkdir(parents=True)
    (base / "classes.txt").write_text("1 001.A_bird\n2 002.B_bird\n")
    (base / "images.txt").write_text("".join(f"{i} {p}\n" for i, (p, _, _) in images.items()))
    (base / "image_class_labels.txt").write_text(
        "".join(f"{i} {c}\n" for i, (_, c, _) in images.items())
    )
    (base / "train_test_split.txt").write_text(
        "".join(f"{i} {t}\n" for i, (_, _, t) in images.items())
    )
    for path, cls, _ in images.values():
        write_image(base / "images" / path, cls - 1)
    ds = cub200(tmp_path)
    lists = tmp_path / "index_list" / "cub200"
    lists.mkdir(parents=True)
    (lists / "session_1.txt").write_text("CUB_200_2011/images/001.A_bird/A_0001_1.jpg\n")
    (lists / "session_2.txt").write_text(
        "CUB_200_2011/images/002.B_bird/B_0002_4.jpg\nCUB_200_2011/images/002.B_bird/B_0001_3.jpg\n"
    )
    sessions = read_cec_sessions(tmp_path, "cub200", ds)
    train = ds.split("train")
    assert [[train.images.paths[i].name for i in s] for s in sessions] == [
        ["A_0001_1.jpg"], ["B_0002_4.jpg", "B_0001_3.jpg"],
    ]  # fmt: skip


def test_data_check_knows_the_new_datasets(tmp_path: Path) -> None:
    make_core50_png(tmp_path)
    found = check_dataset("core50", tmp_path)
    assert found.status == "found" and found.counts == {"train": 12, "test": 12}
    assert not found.counts_match()  # a miniature: not the official 119,894 / 44,972
    for name in ("domainnet", "miniimagenet"):
        assert check_dataset(name, tmp_path).status == "missing"
    (tmp_path / "miniimagenet" / "split").mkdir(parents=True)
    (tmp_path / "miniimagenet" / "split" / "train.csv").write_text("wrong\n")
    assert check_dataset("miniimagenet", tmp_path).status == "malformed"
