"""The concepts of the generated world: colours, shapes, textures, glyphs, fonts, counts.

Fonts are matplotlib's bundled TrueType files, so every machine with matplotlib draws the same
glyphs. Some concepts are held out of pretraining on purpose (see ``HELD_OUT_*``) so that
downstream learning has something to learn and zero-shot transfer has something to transfer to.
"""

from __future__ import annotations

import functools
from pathlib import Path

from driftless.errors import DataError

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 35),
    "orange": (245, 135, 20),
    "yellow": (240, 220, 35),
    "lime": (150, 230, 40),
    "green": (25, 150, 55),
    "cyan": (40, 215, 225),
    "blue": (35, 70, 225),
    "purple": (135, 45, 185),
    "pink": (250, 125, 195),
    "brown": (135, 80, 35),
    "white": (245, 245, 245),
    "gray": (135, 135, 135),
}

SHAPES: tuple[str, ...] = (
    "circle", "square", "triangle", "star", "diamond", "cross",
    "hexagon", "ring", "heart", "arrow", "crescent", "pentagon",
)  # fmt: skip

PLURALS = {"cross": "crosses"}

TEXTURES: tuple[str, ...] = (
    "stripes", "diagonal stripes", "checkerboard", "dots",
    "grid", "waves", "zigzag", "concentric circles",
)  # fmt: skip

LETTERS = tuple(chr(c) for c in range(ord("A"), ord("Z") + 1))
DIGITS = tuple(str(d) for d in range(10))
COUNT_WORDS = {1: "one", 2: "two", 3: "three", 4: "four"}
SIZES = ("small", "medium", "large")
POSITIONS = ("center", "left", "right", "top", "bottom")

#: font file → the words captions use for its style. Pretraining sees these.
PRETRAIN_FONTS: dict[str, str] = {
    "DejaVuSans.ttf": "sans",
    "DejaVuSans-Bold.ttf": "bold sans",
    "DejaVuSans-Oblique.ttf": "italic sans",
    "DejaVuSerif.ttf": "serif",
    "DejaVuSerif-Bold.ttf": "bold serif",
    "DejaVuSerif-Italic.ttf": "italic serif",
    "STIXGeneral.ttf": "classic serif",
    "STIXGeneralBol.ttf": "bold classic serif",
    "STIXGeneralItalic.ttf": "italic classic serif",
    "cmr10.ttf": "roman",
    "cmss10.ttf": "plain sans",
}
#: fonts never seen in pretraining: the glyph dataset of ``world-mtil`` is drawn in these.
HELD_OUT_FONTS: dict[str, str] = {
    "DejaVuSansMono.ttf": "monospace",
    "DejaVuSansMono-Bold.ttf": "bold monospace",
    "DejaVuSansMono-Oblique.ttf": "italic monospace",
    "cmtt10.ttf": "typewriter",
    "cmb10.ttf": "bold roman",
    "STIXGeneralBolIta.ttf": "bold italic classic serif",
}

#: colour × shape pairs never drawn or captioned in pretraining (every colour and every shape
#: still appears, in other combinations): zero-shot on them tests composition.
HELD_OUT_COMBOS: frozenset[tuple[str, str]] = frozenset(
    {
        ("red", "star"), ("orange", "ring"), ("yellow", "heart"), ("lime", "cross"),
        ("green", "triangle"), ("cyan", "arrow"), ("blue", "crescent"), ("purple", "square"),
        ("pink", "hexagon"), ("brown", "diamond"), ("white", "pentagon"), ("gray", "circle"),
        ("red", "hexagon"), ("blue", "star"), ("yellow", "ring"), ("green", "arrow"),
        ("purple", "heart"), ("orange", "diamond"),
    }
)  # fmt: skip


def plural(shape: str) -> str:
    """English plural of a shape name."""
    return PLURALS.get(shape, shape + "s")


@functools.cache
def font_dir() -> Path:
    """matplotlib's bundled TrueType folder."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    if not path.is_dir():
        raise DataError(f"matplotlib's bundled fonts are missing: {path} (reinstall matplotlib)")
    return path


def font_path(name: str) -> Path:
    """Path of a bundled font file; a missing one raises DataError naming it."""
    path = font_dir() / name
    if not path.is_file():
        raise DataError(f"font file not found: {path} (it ships with matplotlib)")
    return path
