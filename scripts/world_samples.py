"""Draw the sample grids of docs/embedded.md from the embedded benchmarks' datasets.

.venv/bin/python scripts/world_samples.py [--out docs/images]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from driftless.data import Dataset
from driftless.data.world import (
    sklearn_digits,
    world_compositions,
    world_counts,
    world_domains,
    world_glyphs,
    world_shapes,
    world_textures,
)
from driftless.data.world.corpus import pretraining_corpus


def grid(images: list[np.ndarray], labels: list[str], columns: int, scale: int = 3) -> Image.Image:
    """Tiles with a caption strip under each."""
    tile, strip = 32 * scale, 14
    rows = (len(images) + columns - 1) // columns
    canvas = Image.new("RGB", (columns * (tile + 4), rows * (tile + strip + 4)), "white")
    draw = ImageDraw.Draw(canvas)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        x, y = (i % columns) * (tile + 4), (i // columns) * (tile + strip + 4)
        canvas.paste(Image.fromarray(image).resize((tile, tile), Image.Resampling.NEAREST), (x, y))
        draw.text((x + 1, y + tile + 1), label[:18], fill="black")
    return canvas


def dataset_grid(dataset: Dataset, per_class: int, max_classes: int, columns: int) -> Image.Image:
    split = dataset.split("test")
    images, labels = [], []
    for label in range(min(dataset.num_classes, max_classes)):
        for index in np.flatnonzero(split.labels == label)[:per_class]:
            images.append(np.asarray(split.image(int(index))))
            labels.append(dataset.class_names[label])
    return grid(images, labels, columns)


def domains_grid() -> Image.Image:
    """world-dil: one row per domain (style), the first six shapes in each."""
    dataset = world_domains(train_per_class=1, test_per_class=1)
    images, labels = [], []
    for split in (s for s in dataset.splits if s.endswith("/test")):
        for label in range(6):
            index = int(np.flatnonzero(dataset.split(split).labels == label)[0])
            images.append(np.asarray(dataset.split(split).image(index)))
            labels.append(f"{split.split('/')[0]}: {dataset.class_names[label]}")
    return grid(images, labels, 6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    corpus = pretraining_corpus(24, seed=0, processes=1, progress=False)
    grid(list(corpus.pixels), corpus.captions, 6, scale=4).save(args.out / "world-pretraining.png")
    dataset_grid(world_compositions(train_per_class=1, test_per_class=1), 1, 64, 8).save(
        args.out / "world-cil.png"
    )
    for maker, name in [(world_textures, "textures"), (world_shapes, "shapes"), (sklearn_digits, "digits"),
                        (world_counts, "counts"), (world_glyphs, "glyphs")]:  # fmt: skip
        dataset_grid(maker(), 1, 16, 8).save(args.out / f"world-mtil-{name}.png")
    domains_grid().save(args.out / "world-dil.png")
    print(f"wrote {sorted(p.name for p in args.out.glob('world-*.png'))}")


if __name__ == "__main__":
    main()
