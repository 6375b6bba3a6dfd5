"""The pretraining corpus of the tiny CLIP: image–caption pairs sampled from the world, with the
held-out concepts (colour × shape combinations, fonts) left out on purpose."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from driftless.data.world.concepts import (
    COLOURS,
    DIGITS,
    HELD_OUT_COMBOS,
    LETTERS,
    POSITIONS,
    PRETRAIN_FONTS,
    SHAPES,
    SIZES,
    TEXTURES,
)
from driftless.data.world.scenes import (
    GlyphScene,
    ObjectScene,
    Scene,
    TextureScene,
    caption,
    render,
)

#: share of each scene kind in the corpus
SCENE_MIX = {"object": 0.55, "glyph": 0.3, "texture": 0.15}
PRETRAIN_NUISANCE = (0.0, 0.5)


def sample_pretraining_scene(rng: np.random.Generator) -> Scene:
    """One scene from the pretraining distribution (never a held-out combination or font)."""
    kind = rng.choice(list(SCENE_MIX), p=list(SCENE_MIX.values()))
    colour = str(rng.choice(list(COLOURS)))
    nuisance = float(rng.uniform(*PRETRAIN_NUISANCE))
    if kind == "object":
        shape = str(rng.choice(SHAPES))
        while (colour, shape) in HELD_OUT_COMBOS:
            colour, shape = str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES))
        count = 1 if rng.random() < 0.7 else int(rng.integers(2, 5))
        return ObjectScene(
            shape, colour, count, str(rng.choice(SIZES)), str(rng.choice(POSITIONS)), nuisance
        )
    if kind == "glyph":
        char = str(rng.choice(LETTERS + DIGITS))
        return GlyphScene(char, str(rng.choice(list(PRETRAIN_FONTS))), colour, nuisance)
    return TextureScene(str(rng.choice(TEXTURES)), colour, nuisance)


def _pairs(seed: int, start: int, stop: int, image_size: int) -> tuple[np.ndarray, list[str]]:
    pixels, captions = [], []
    for index in range(start, stop):
        rng = np.random.default_rng([seed, 7, index])
        scene = sample_pretraining_scene(rng)
        pixels.append(render(scene, rng, image_size))
        captions.append(caption(scene, np.random.default_rng([seed, 8, index])))
    return np.stack(pixels), captions


@dataclass
class Corpus:
    """``pixels`` uint8 (N, H, W, 3) and one caption per image."""

    pixels: np.ndarray
    captions: list[str]


def pretraining_corpus(size: int, seed: int = 0, image_size: int = 32, processes: int = 2,
                       progress: bool = True, chunk: int = 2000) -> Corpus:  # fmt: skip
    """Draw ``size`` pairs. Pair i depends only on (seed, i), so the corpus is identical whatever
    the number of processes."""
    bounds = [(s, min(s + chunk, size)) for s in range(0, size, chunk)]
    pixels = np.empty((size, image_size, image_size, 3), dtype=np.uint8)
    captions: list[str] = [""] * size
    bar = tqdm(total=size, desc="draw pretraining corpus", unit="img", disable=not progress)
    with ProcessPoolExecutor(max_workers=max(1, processes)) as pool:
        futures = {pool.submit(_pairs, seed, s, e, image_size): (s, e) for s, e in bounds}
        for future, (s, e) in futures.items():
            block, texts = future.result()
            pixels[s:e] = block
            captions[s:e] = texts
            bar.update(e - s)
    bar.close()
    return Corpus(pixels, captions)
