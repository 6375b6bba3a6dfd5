"""Reference images and captions for distillation toward the original CLIP (ZSCL, Zheng et al.,
ICCV 2023: ImageNet training images and Conceptual Captions' validation captions, unpaired).

A reference set is either ``"world-corpus"`` — image–caption pairs drawn from the embedded world's
pretraining distribution, the tiny CLIP's own pretraining corpus (the first pairs of it, with the
recipe's seed) — or a folder of images (searched recursively: an ImageNet ``train/`` folder works)
plus a captions file (one caption a line, or a CSV/TSV with a ``title`` column as ZSCL's
``gather_cc.py`` writes for Conceptual Captions). docs/datasets.md says how to obtain the paper's."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from driftless.errors import ConfigError, DataError

WORLD_CORPUS = "world-corpus"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
#: the seed of the bundled tiny CLIP's pretraining corpus (assets/tiny-clip/training_log.json)
WORLD_CORPUS_SEED = 0


@dataclass
class ReferenceSet:
    """Preprocessed reference images (a dataset of pixels) and reference captions."""

    images: Dataset
    captions: list[str]


class _PixelArrays(Dataset):
    def __init__(self, pixels, preprocess: Callable[[Image.Image], torch.Tensor]):
        self.pixels, self.preprocess = pixels, preprocess

    def __len__(self) -> int:
        return len(self.pixels)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.preprocess(Image.fromarray(self.pixels[i]))


class _ImageFiles(Dataset):
    def __init__(self, paths: list[Path], preprocess: Callable[[Image.Image], torch.Tensor]):
        self.paths, self.preprocess = paths, preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        with Image.open(self.paths[i]) as image:
            return self.preprocess(image.convert("RGB"))


def load_reference_set(
    owner: str,
    images: str | None,
    captions: str | None,
    size: int | None,
    preprocess: Callable[[Image.Image], torch.Tensor],
) -> ReferenceSet:
    """The reference set named by ``images`` and ``captions`` (each a path or ``"world-corpus"``);
    ``size`` caps the number of captions (and of world-corpus pairs); ``owner`` (e.g. "zscl")
    prefixes the config fields named in errors."""
    if images is None or captions is None:
        missing = "reference_images" if images is None else "reference_captions"
        raise ConfigError(
            f"{owner}.{missing} is not set: distillation needs a reference set; set "
            f"{owner}.reference_images to a folder of images and {owner}.reference_captions to a "
            f"captions file (docs/datasets.md), or both to '{WORLD_CORPUS}' on the embedded world"
        )
    if WORLD_CORPUS in (images, captions):
        if images != captions:
            raise ConfigError(
                f"{owner}: reference_images and reference_captions must both be "
                f"'{WORLD_CORPUS}' or both be paths (got {images!r} and {captions!r})"
            )
        return _world_corpus(size or 2000, preprocess)
    return ReferenceSet(
        _ImageFiles(_image_files(owner, Path(images).expanduser()), preprocess),
        _read_captions(owner, Path(captions).expanduser())[:size],
    )


def _world_corpus(size: int, preprocess: Callable[[Image.Image], torch.Tensor]) -> ReferenceSet:
    from driftless.data.world.corpus import pretraining_corpus  # drawing it is the only cost

    corpus = pretraining_corpus(size, seed=WORLD_CORPUS_SEED, processes=1, progress=False)
    return ReferenceSet(_PixelArrays(corpus.pixels, preprocess), corpus.captions)


def _image_files(owner: str, folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise DataError(
            f"{owner}.reference_images: {folder} is not a folder; point it at a folder of "
            "reference images (docs/datasets.md, 'ZSCL reference set')"
        )
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"{owner}.reference_images: no image files under {folder}")
    return paths


def _read_captions(owner: str, path: Path) -> list[str]:
    if not path.is_file():
        raise DataError(
            f"{owner}.reference_captions: {path} is not a file; point it at a captions file "
            "(one a line, or ZSCL's CSV with a 'title' column; docs/datasets.md)"
        )
    if path.suffix.lower() in (".csv", ".tsv"):
        with path.open(newline="", encoding="utf-8") as handle:
            sample = handle.readline()
            handle.seek(0)
            delimiter = "\t" if "\t" in sample else ","
            rows = csv.DictReader(handle, delimiter=delimiter)
            if rows.fieldnames is None or "title" not in rows.fieldnames:
                raise DataError(f"{owner}.reference_captions: {path} has no 'title' column")
            captions = [row["title"].strip() for row in rows]
    else:
        captions = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    captions = [c for c in captions if c]
    if not captions:
        raise DataError(f"{owner}.reference_captions: {path} holds no caption")
    return captions
