"""Scenes of the world (objects, glyphs, textures), how they are drawn and how they are captioned."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from driftless.data.world import draw
from driftless.data.world.concepts import (
    COLOURS,
    COUNT_WORDS,
    HELD_OUT_FONTS,
    PRETRAIN_FONTS,
    plural,
)


@dataclass(frozen=True)
class ObjectScene:
    """``count`` copies of a coloured shape on a background."""

    shape: str
    colour: str
    count: int = 1
    size: str = "medium"  # small | medium | large
    position: str = "center"  # center | left | right | top | bottom (count 1 only)
    nuisance: float = 0.2


@dataclass(frozen=True)
class GlyphScene:
    """A letter or digit in a font and a colour."""

    char: str
    font: str
    colour: str
    nuisance: float = 0.2


@dataclass(frozen=True)
class TextureScene:
    """A full-frame two-colour texture."""

    texture: str
    colour: str
    nuisance: float = 0.2


Scene = ObjectScene | GlyphScene | TextureScene

_RADIUS = {"small": (0.14, 0.19), "medium": (0.2, 0.26), "large": (0.28, 0.34)}
_OFFSET = {
    "center": (0.5, 0.5),
    "left": (0.3, 0.5),
    "right": (0.7, 0.5),
    "top": (0.5, 0.3),
    "bottom": (0.5, 0.7),
}


def _jitter_colour(name: str, rng: np.random.Generator) -> np.ndarray:
    return np.clip(
        np.asarray(COLOURS[name], dtype=np.float64) + rng.uniform(-22, 22, size=3), 0, 255
    )


def render(scene: Scene, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """Draw ``scene`` as a uint8 (size, size, 3) image; all randomness comes from ``rng``."""
    canvas = size * draw.SUPERSAMPLE
    nuisance = scene.nuisance
    if isinstance(scene, TextureScene):
        a = _jitter_colour(scene.colour, rng)
        b = np.clip(
            rng.uniform(0, 60, size=3) if a.mean() > 110 else rng.uniform(190, 250, size=3), 0, 255
        )
        pattern = draw.texture(scene.texture, canvas, rng)
        rgb = np.where(pattern[..., None], a, b).astype(np.float64)
        draw.clutter(rgb, int(rng.integers(0, 1 + round(2 * nuisance))), rng)
        return draw.finish(rgb, size, nuisance, rng)
    colour = _jitter_colour(scene.colour, rng)
    rgb = draw.background(canvas, rng, avoid=COLOURS[scene.colour])
    draw.clutter(rgb, int(rng.integers(0, 1 + round(3 * nuisance))), rng)
    if isinstance(scene, GlyphScene):
        height = rng.uniform(0.5, 0.75)
        cx, cy = (0.5 + rng.uniform(-0.1, 0.1, size=2)) * canvas
        mask = draw.glyph_mask(scene.char, scene.font, canvas, height, cx, cy, rng.uniform(-12, 12))
        draw.paint(rgb, mask, colour)
        return draw.finish(rgb, size, nuisance, rng)
    low, high = _RADIUS[scene.size]
    if scene.count == 1:
        r = rng.uniform(low, high) * canvas
        ox, oy = _OFFSET[scene.position]
        cx = (ox + rng.uniform(-0.06, 0.06)) * canvas
        cy = (oy + rng.uniform(-0.06, 0.06)) * canvas
        cx, cy = float(np.clip(cx, r, canvas - r)), float(np.clip(cy, r, canvas - r))
        centres, radius = [(cx, cy)], r
    else:
        radius = rng.uniform(0.1, 0.13) * canvas
        centres = _scatter(scene.count, radius, canvas, rng)
    for cx, cy in centres:
        mask = draw.shape_mask(scene.shape, canvas, cx, cy, radius, rng.uniform(-0.35, 0.35))
        draw.paint(rgb, mask, colour)
    return draw.finish(rgb, size, nuisance, rng)


def _scatter(
    count: int, radius: float, canvas: int, rng: np.random.Generator
) -> list[tuple[float, float]]:
    """``count`` centres that keep objects apart (rejection sampling, then a grid fallback)."""
    centres: list[tuple[float, float]] = []
    for _ in range(400):
        if len(centres) == count:
            return centres
        c = tuple(rng.uniform(radius * 1.05, canvas - radius * 1.05, size=2))
        if all(math.dist(c, o) > 2.15 * radius for o in centres):
            centres.append((float(c[0]), float(c[1])))
    cells = [(0.27, 0.27), (0.73, 0.27), (0.27, 0.73), (0.73, 0.73)]
    return [(x * canvas, y * canvas) for x, y in cells[:count]]


def _font_style(font: str) -> str:
    return PRETRAIN_FONTS.get(font) or HELD_OUT_FONTS[font]


def _glyph_noun(char: str) -> str:
    return f"digit {char}" if char.isdigit() else f"letter {char}"


def caption(scene: Scene, rng: np.random.Generator) -> str:
    """A caption of ``scene`` from varied templates: full, partial, and attribute-only ones.
    Shape names appear in most captions and colour-only captions are rare, so that the model
    must learn shapes and glyphs, not only colours (see notes/embedded-feasibility.md)."""
    if isinstance(scene, TextureScene):
        options = [
            f"a {scene.texture} pattern",
            f"{scene.texture}",
            f"a {scene.colour} {scene.texture} pattern",
            f"a texture of {scene.texture}",
            f"{scene.colour} {scene.texture}",
        ]
    elif isinstance(scene, GlyphScene):
        noun, style = _glyph_noun(scene.char), _font_style(scene.font)
        options = [
            f"the {noun}",
            f"a {scene.colour} {noun}",
            f"the {noun} in a {style} font",
            f"a {scene.colour} {noun} in a {style} font",
            f"the {noun} written in {scene.colour}",
            f"the character {scene.char}",
        ]
    elif scene.count == 1:
        s, c = scene.shape, scene.colour
        options = [
            f"a {c} {s}",
            f"a {scene.size} {c} {s}",
            f"a {s}",
            f"a {c} {s} on the {scene.position}"
            if scene.position != "center"
            else f"a {c} {s} in the center",
            f"a photo of a {c} {s}",
            f"one {c} {s}",
            f"a {scene.size} {s}",
            f"something {c}",
        ]
        weights = np.array([4, 2, 2, 1, 2, 1, 1, 0.5])
        return options[int(rng.choice(len(options), p=weights / weights.sum()))]
    else:
        word, s, c = COUNT_WORDS[scene.count], plural(scene.shape), scene.colour
        options = [
            f"{word} {c} {s}",
            f"{word} {s}",
            f"{word} objects",
            f"{word} small {c} {s}",
            f"a group of {word} {s}",
        ]
    return options[int(rng.integers(len(options)))]
