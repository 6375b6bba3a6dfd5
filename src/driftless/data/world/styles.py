"""Drawing styles: the domains of ``world-dil``. Each style turns a rendered image into the same
scene seen another way (a sketch, a photographic negative, a mosaic, a thermal camera, a noisy
sensor), as DomainNet's clipart, painting, sketch and quickdraw show the same objects. The class —
the shape — survives every style; what pretraining saw (the plain rendering) does not."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageFilter

from driftless.errors import ConfigError

Style = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _grey(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def photo(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The rendering as it is."""
    return image


def sketch(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Dark pencil edges on light paper: the gradient magnitude of the luminance, inverted."""
    # smoothed first, so that the strokes follow the outlines rather than the pixel noise
    grey = Image.fromarray(_grey(image).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.7))
    edges = grey.filter(ImageFilter.FIND_EDGES).filter(ImageFilter.MaxFilter(3))  # a pencil's width
    strength = np.asarray(edges, dtype=np.float64)
    strength = strength * rng.uniform(2.0, 3.0)
    paper = rng.uniform(225, 250)
    return np.repeat(np.clip(paper - strength, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def negative(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The photographic negative."""
    return (255 - image).astype(np.uint8)


def mosaic(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Coarse square tiles (a third of the resolution), as a low-resolution camera."""
    size = image.shape[0]
    small = Image.fromarray(image).resize((size // 3, size // 3), Image.Resampling.BOX)
    return np.asarray(small.resize((size, size), Image.Resampling.NEAREST))


def thermal(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Luminance through a false-colour palette (dark blue → red → yellow), as a thermal camera."""
    level = _grey(image)[..., None] / 255.0
    cold, warm, hot = (
        np.array([20, 20, 120.0]),
        np.array([220, 40, 30.0]),
        np.array([250, 240, 90.0]),
    )
    low = cold + (warm - cold) * np.clip(2 * level, 0, 1)
    rgb = np.where(level < 0.5, low, warm + (hot - warm) * np.clip(2 * level - 1, 0, 1))
    return np.clip(rgb, 0, 255).astype(np.uint8)


def noisy(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A poor sensor: low contrast, blur and heavy grey noise."""
    blurred = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(0.8)), np.float64)
    faded = 128 + (blurred - 128) * rng.uniform(0.45, 0.65)
    noise = rng.normal(0, rng.uniform(22, 32), size=image.shape[:2])[..., None]
    return np.clip(np.rint(faded + noise), 0, 255).astype(np.uint8)


STYLES: dict[str, Style] = {
    "photo": photo,
    "sketch": sketch,
    "negative": negative,
    "mosaic": mosaic,
    "thermal": thermal,
    "noisy": noisy,
}


def style(name: str) -> Style:
    """The style called ``name``; an unknown name lists the known ones."""
    try:
        return STYLES[name]
    except KeyError:
        raise ConfigError(f"domains: unknown style {name!r}; known: {list(STYLES)}") from None
