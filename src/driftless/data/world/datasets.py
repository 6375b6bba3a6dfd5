"""The downstream datasets of the embedded benchmarks, generated deterministically from a seed.

Each image has its own random stream, ``numpy.random.default_rng([seed, split, class, index])``, so
a dataset is the same whatever order or process draws it, and a test can hash a sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from driftless.data.dataset import Dataset, Split
from driftless.data.images import ArrayImages
from driftless.data.world.concepts import (
    COLOURS,
    COUNT_WORDS,
    DIGITS,
    HELD_OUT_FONTS,
    LETTERS,
    SHAPES,
    TEXTURES,
)
from driftless.data.world.scenes import GlyphScene, ObjectScene, Scene, TextureScene, render
from driftless.data.world.styles import style
from driftless.errors import ConfigError

_SPLIT_IDS = {"train": 0, "test": 1}

WORLD_CIL_COLOURS = ("red", "orange", "yellow", "lime", "green", "cyan", "blue", "purple")
WORLD_CIL_SHAPES = ("circle", "square", "triangle", "star", "diamond", "cross", "hexagon", "ring")


def _generate(
    name: str,
    class_names: Sequence[str],
    templates: Sequence[str],
    scene_of: Callable[[int, np.random.Generator], Scene],
    train_per_class: int,
    test_per_class: int,
    seed: int,
    image_size: int,
    test_scene_of: Callable[[int, np.random.Generator], Scene] | None = None,
) -> Dataset:
    for field, value in (("train_per_class", train_per_class), ("test_per_class", test_per_class)):
        if value < 1:  # a class with no images would be learned from nothing
            raise ConfigError(f"{name}: {field} must be at least 1, got {value}")
    splits = {}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        pixels, labels = [], []
        draw = test_scene_of if split == "test" and test_scene_of else scene_of
        for label in range(len(class_names)):
            for i in range(per_class):
                rng = np.random.default_rng([seed, _SPLIT_IDS[split], label, i])
                pixels.append(render(draw(label, rng), rng, image_size))
                labels.append(label)
        splits[split] = Split(ArrayImages(np.stack(pixels)), np.asarray(labels))
    return Dataset(name, tuple(class_names), splits, tuple(templates))


def _check_names(kind: str, given: Sequence[str], known: Sequence[str]) -> None:
    unknown = [g for g in given if g not in known]
    if unknown:
        raise ConfigError(f"{kind}: unknown {unknown}; known: {list(known)}")


def world_compositions(
    colours: Sequence[str] = WORLD_CIL_COLOURS,
    shapes: Sequence[str] = WORLD_CIL_SHAPES,
    train_per_class: int = 30,
    test_per_class: int = 15,
    nuisance: tuple[float, float] = (1.5, 2.5),
    seed: int = 0,
    image_size: int = 32,
    name: str = "world-compositions",
    test_nuisance: tuple[float, float] | None = None,
) -> Dataset:
    """Colour × shape classes ("red circle", …), one object per image at a random size and position,
    with nuisance (noise, blur, clutter) drawn from ``nuisance``. The default 8 × 8 grid includes
    combinations held out of pretraining. ``test_nuisance`` draws the test images' nuisance from
    another range (a shift between what is learned from and what is scored); None: the same."""
    _check_names("colours", colours, list(COLOURS))
    _check_names("shapes", shapes, SHAPES)
    combos = [(c, s) for s in shapes for c in colours]

    def scene_drawn(levels: tuple[float, float]) -> Callable[[int, np.random.Generator], Scene]:
        def scene(label: int, rng: np.random.Generator) -> Scene:
            colour, shape = combos[label]
            return ObjectScene(shape, colour, 1, str(rng.choice(["small", "medium", "large"])),
                               str(rng.choice(["center", "left", "right", "top", "bottom"])), float(rng.uniform(*levels)))  # fmt: skip

        return scene

    names = [f"{c} {s}" for c, s in combos]
    templates = ("a photo of a {}.", "a {}.", "a drawing of a {}.")
    return _generate(
        name, names, templates, scene_drawn(nuisance), train_per_class, test_per_class, seed,
        image_size, test_scene_of=None if test_nuisance is None else scene_drawn(test_nuisance),
    )  # fmt: skip


def world_shapes(train_per_class: int = 40, test_per_class: int = 20, nuisance: tuple[float, float] = (0.2, 0.7),
                 seed: int = 0, image_size: int = 32) -> Dataset:  # fmt: skip
    """The 12 shapes in random colours: which shape is it?"""
    colours = list(COLOURS)

    def scene(label: int, rng: np.random.Generator) -> Scene:
        return ObjectScene(SHAPES[label], str(rng.choice(colours)), 1, str(rng.choice(["medium", "large"])),
                           "center", float(rng.uniform(*nuisance)))  # fmt: skip

    return _generate("world-shapes", SHAPES, ("a {} shape.", "a photo of a {}."), scene,
                     train_per_class, test_per_class, seed, image_size)  # fmt: skip


def world_glyphs(train_per_class: int = 20, test_per_class: int = 10, nuisance: tuple[float, float] = (0.1, 0.5),
                 seed: int = 0, image_size: int = 32) -> Dataset:  # fmt: skip
    """Letters A–Z and digits 0–9 drawn only in fonts held out of pretraining."""
    chars = LETTERS + DIGITS
    fonts = list(HELD_OUT_FONTS)
    colours = list(COLOURS)

    def scene(label: int, rng: np.random.Generator) -> Scene:
        return GlyphScene(
            chars[label],
            str(rng.choice(fonts)),
            str(rng.choice(colours)),
            float(rng.uniform(*nuisance)),
        )

    names = [f"digit {c}" if c.isdigit() else f"letter {c}" for c in chars]
    return _generate("world-glyphs", names, ("the {}.", "the {} in an unusual font."), scene,
                     train_per_class, test_per_class, seed, image_size)  # fmt: skip


def world_textures(train_per_class: int = 40, test_per_class: int = 20, nuisance: tuple[float, float] = (0.2, 0.7),
                   seed: int = 0, image_size: int = 32) -> Dataset:  # fmt: skip
    """The 8 textures in random colours."""
    colours = list(COLOURS)

    def scene(label: int, rng: np.random.Generator) -> Scene:
        return TextureScene(
            TEXTURES[label], str(rng.choice(colours)), float(rng.uniform(*nuisance))
        )

    return _generate("world-textures", TEXTURES, ("a {} pattern.", "a texture of {}."), scene,
                     train_per_class, test_per_class, seed, image_size)  # fmt: skip


def world_counts(train_per_class: int = 60, test_per_class: int = 30, nuisance: tuple[float, float] = (0.2, 0.7),
                 seed: int = 0, image_size: int = 32) -> Dataset:  # fmt: skip
    """How many objects (1–4) of a random shape and colour?"""
    colours = list(COLOURS)

    def scene(label: int, rng: np.random.Generator) -> Scene:
        return ObjectScene(str(rng.choice(SHAPES)), str(rng.choice(colours)), label + 1, "small", "center",
                           float(rng.uniform(*nuisance)))  # fmt: skip

    names = [f"{COUNT_WORDS[n]} object" + ("s" if n > 1 else "") for n in range(1, 5)]
    return _generate("world-counts", names, ("a picture of {}.", "{}."), scene,
                     train_per_class, test_per_class, seed, image_size)  # fmt: skip


def sklearn_digits(test_fraction: float = 0.3, seed: int = 0, image_size: int = 32) -> Dataset:
    """scikit-learn's bundled real handwritten digits (1,797 images, 8 × 8, 16 grey levels), upsampled
    to ``image_size`` as white ink on black: a real domain shift, like MNIST in MTIL. Split per
    class with ``seed``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = []
    for image in digits.images:
        grey = Image.fromarray((image * (255.0 / 16.0)).astype(np.uint8))
        grey = grey.resize((image_size, image_size), Image.Resampling.BILINEAR)
        pixels.append(np.repeat(np.asarray(grey)[..., None], 3, axis=2))
    pixels_arr = np.stack(pixels)
    labels = np.asarray(digits.target, dtype=np.int64)
    rng = np.random.default_rng(seed)
    test_mask = np.zeros(len(labels), dtype=bool)
    for label in range(10):
        members = np.flatnonzero(labels == label)
        test_mask[rng.choice(members, size=round(test_fraction * len(members)), replace=False)] = (
            True
        )
    splits = {
        "train": Split(ArrayImages(pixels_arr[~test_mask]), labels[~test_mask]),
        "test": Split(ArrayImages(pixels_arr[test_mask]), labels[test_mask]),
    }
    names = tuple(f"digit {d}" for d in range(10))
    return Dataset("sklearn-digits", names, splits, ("a photo of the {}.", "a handwritten {}."))


WORLD_DIL_DOMAINS = ("photo", "sketch", "negative", "mosaic", "thermal", "noisy")


def world_domains(
    domains: Sequence[str] = WORLD_DIL_DOMAINS,
    shapes: Sequence[str] = SHAPES,
    train_per_class: int = 20,
    test_per_class: int = 10,
    nuisance: tuple[float, float] = (0.1, 0.4),
    seed: int = 0,
    image_size: int = 32,
) -> Dataset:
    """The shapes in random colours, drawn in every style of ``domains``
    (:mod:`driftless.data.world.styles`): splits ``<domain>/train`` and ``<domain>/test`` for the
    domain-incremental protocol, plus ``train`` and ``test`` with every domain. Each domain has its
    own scenes (its own random streams), not restyled copies of another domain's."""
    _check_names("shapes", shapes, SHAPES)
    styles = [style(d) for d in domains]
    colours = list(COLOURS)
    splits: dict[str, Split] = {}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        for d, (domain, draw_style) in enumerate(zip(domains, styles, strict=True)):
            pixels, labels = [], []
            for label, shape in enumerate(shapes):
                for i in range(per_class):
                    rng = np.random.default_rng([seed, _SPLIT_IDS[split], label, i, d + 1])
                    scene = ObjectScene(shape, str(rng.choice(colours)), 1,
                                        str(rng.choice(["small", "medium", "large"])),
                                        str(rng.choice(["center", "left", "right", "top", "bottom"])),
                                        float(rng.uniform(*nuisance)))  # fmt: skip
                    pixels.append(draw_style(render(scene, rng, image_size), rng))
                    labels.append(label)
            splits[f"{domain}/{split}"] = Split(ArrayImages(np.stack(pixels)), np.asarray(labels))
        parts = [splits[f"{domain}/{split}"] for domain in domains]
        splits[split] = Split(
            ArrayImages(np.concatenate([p.images.pixels for p in parts])),
            np.concatenate([p.labels for p in parts]),
        )
    return Dataset("world-domains", tuple(shapes), splits, ("a {} shape.", "a photo of a {}."))
