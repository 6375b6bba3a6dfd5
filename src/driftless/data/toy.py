"""A generated toy dataset: coloured shapes drawn with Pillow, deterministic from a seed.

It exists so that tests and the first ``driftless run`` need no download. It is small and easy: the
real embedded world (a richer generated world and a tiny CLIP pretrained on it) supersedes it as
the default benchmark.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from driftless.data.dataset import Dataset, Split
from driftless.data.images import ArrayImages
from driftless.errors import ConfigError

TOY_COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (235, 210, 40),
    "purple": (140, 50, 170),
    "orange": (240, 130, 30),
    "cyan": (40, 200, 210),
    "white": (245, 245, 245),
}
TOY_SHAPES = ("circle", "square", "triangle", "cross", "diamond", "bar")
TOY_TEMPLATES = ("a photo of a {}.", "a drawing of a {}.", "a {} shape.")


def _draw(
    shape: str, colour: tuple[int, int, int], rng: np.random.Generator, size: int
) -> np.ndarray:
    scale = 3  # draw large, then downsample: clean anti-aliased edges
    canvas = size * scale
    background = tuple(int(v) for v in rng.integers(0, 90, size=3))
    img = Image.new("RGB", (canvas, canvas), background)
    draw = ImageDraw.Draw(img)
    radius = rng.uniform(0.22, 0.38) * canvas
    cx, cy = rng.uniform(radius, canvas - radius, size=2)
    jitter = rng.integers(-25, 26, size=3)
    fill = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(colour, jitter, strict=True))
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon(
            [(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=fill
        )
    elif shape == "diamond":
        draw.polygon(
            [(cx, cy - radius), (cx + radius, cy), (cx, cy + radius), (cx - radius, cy)], fill=fill
        )
    elif shape == "cross":
        w = radius / 3
        draw.rectangle((cx - w, cy - radius, cx + w, cy + radius), fill=fill)
        draw.rectangle((cx - radius, cy - w, cx + radius, cy + w), fill=fill)
    elif shape == "bar":
        draw.rectangle((cx - radius, cy - radius / 3, cx + radius, cy + radius / 3), fill=fill)
    img = img.resize((size, size), Image.Resampling.BOX)
    pixels = np.asarray(img, dtype=np.int16)
    noise = rng.normal(0, 8, size=pixels.shape)
    return np.clip(pixels + noise, 0, 255).astype(np.uint8)


def toy_shapes(
    num_classes: int = 12,
    train_per_class: int = 24,
    test_per_class: int = 12,
    image_size: int = 32,
    seed: int = 0,
) -> Dataset:
    """Colour × shape classes ("red circle", "blue square", ...), ``num_classes`` of them in a fixed
    order, with ``train_per_class`` and ``test_per_class`` images each."""
    combos = [f"{c} {s}" for s in TOY_SHAPES for c in TOY_COLOURS]
    # interleave so that the first classes already differ in both colour and shape
    combos = [combos[(i * 7) % len(combos)] for i in range(len(combos))]
    if not 2 <= num_classes <= len(combos):
        raise ConfigError(f"toy_shapes: num_classes must be in 2..{len(combos)}, got {num_classes}")
    for field, value in (("train_per_class", train_per_class), ("test_per_class", test_per_class)):
        if value < 1:
            raise ConfigError(f"toy_shapes: {field} must be at least 1, got {value}")
    names = combos[:num_classes]
    splits = {}
    for split_index, (split, per_class) in enumerate(
        (("train", train_per_class), ("test", test_per_class))
    ):
        rng = np.random.default_rng([seed, split_index])
        pixels, labels = [], []
        for label, name in enumerate(names):
            colour, shape = name.split(" ")
            for _ in range(per_class):
                pixels.append(_draw(shape, TOY_COLOURS[colour], rng, image_size))
                labels.append(label)
        splits[split] = Split(ArrayImages(np.stack(pixels)), np.asarray(labels))
    return Dataset(f"toy-shapes-{num_classes}", tuple(names), splits, TOY_TEMPLATES)
