"""The generated image–text world of the embedded default: concepts, drawing, captions, datasets."""

from driftless.data.world.concepts import (
    COLOURS,
    HELD_OUT_COMBOS,
    HELD_OUT_FONTS,
    PRETRAIN_FONTS,
    SHAPES,
    TEXTURES,
)
from driftless.data.world.datasets import (
    sklearn_digits,
    world_compositions,
    world_counts,
    world_domains,
    world_glyphs,
    world_shapes,
    world_textures,
)
from driftless.data.world.scenes import GlyphScene, ObjectScene, TextureScene, caption, render

__all__ = [
    "COLOURS",
    "HELD_OUT_COMBOS",
    "HELD_OUT_FONTS",
    "PRETRAIN_FONTS",
    "SHAPES",
    "TEXTURES",
    "GlyphScene",
    "ObjectScene",
    "TextureScene",
    "caption",
    "render",
    "sklearn_digits",
    "world_compositions",
    "world_counts",
    "world_domains",
    "world_glyphs",
    "world_shapes",
    "world_textures",
]
