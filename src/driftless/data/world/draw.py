"""Drawing primitives: shape and glyph masks, textures, backgrounds and nuisance, with Pillow and
numpy only. Everything is drawn at a multiple of the output size and box-downsampled, which gives
clean anti-aliased edges; every random choice comes from the ``numpy.random.Generator`` passed in."""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from driftless.data.world.concepts import font_path

SUPERSAMPLE = 3


def _regular(cx: float, cy: float, r: float, n: int, rotation: float) -> list[tuple[float, float]]:
    return [
        (
            cx + r * math.sin(rotation + 2 * math.pi * k / n),
            cy - r * math.cos(rotation + 2 * math.pi * k / n),
        )
        for k in range(n)
    ]


def _star(cx: float, cy: float, r: float, rotation: float) -> list[tuple[float, float]]:
    points = []
    for k in range(10):
        radius = r if k % 2 == 0 else 0.42 * r
        angle = rotation + math.pi * k / 5
        points.append((cx + radius * math.sin(angle), cy - radius * math.cos(angle)))
    return points


def _rotate(
    points: list[tuple[float, float]], cx: float, cy: float, angle: float
) -> list[tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + (x - cx) * c - (y - cy) * s, cy + (x - cx) * s + (y - cy) * c) for x, y in points]


def shape_mask(
    shape: str, canvas: int, cx: float, cy: float, r: float, rotation: float
) -> Image.Image:
    """An 8-bit mask (255 inside) of ``shape`` centred at (cx, cy) with radius ``r``."""
    mask = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(mask)
    box = (cx - r, cy - r, cx + r, cy + r)
    if shape == "circle":
        draw.ellipse(box, fill=255)
    elif shape == "ring":
        draw.ellipse(box, fill=255)
        inner = 0.55 * r
        draw.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=0)
    elif shape == "crescent":
        draw.ellipse(box, fill=255)
        dx, dy = 0.45 * r * math.cos(rotation), 0.45 * r * math.sin(rotation)
        draw.ellipse((cx - r + dx, cy - r + dy, cx + r + dx, cy + r + dy), fill=0)
    elif shape == "square":
        draw.polygon(_regular(cx, cy, r * 1.05, 4, rotation + math.pi / 4), fill=255)
    elif shape == "triangle":
        draw.polygon(_regular(cx, cy + 0.12 * r, r * 1.1, 3, rotation), fill=255)
    elif shape == "pentagon":
        draw.polygon(_regular(cx, cy, r, 5, rotation), fill=255)
    elif shape == "hexagon":
        draw.polygon(_regular(cx, cy, r, 6, rotation), fill=255)
    elif shape == "star":
        draw.polygon(_star(cx, cy, r * 1.1, rotation), fill=255)
    elif shape == "diamond":
        points = [(cx, cy - r), (cx + 0.6 * r, cy), (cx, cy + r), (cx - 0.6 * r, cy)]
        draw.polygon(_rotate(points, cx, cy, rotation), fill=255)
    elif shape == "cross":
        w = 0.33 * r
        points = [(cx - w, cy - r), (cx + w, cy - r), (cx + w, cy - w), (cx + r, cy - w), (cx + r, cy + w),
                  (cx + w, cy + w), (cx + w, cy + r), (cx - w, cy + r), (cx - w, cy + w), (cx - r, cy + w),
                  (cx - r, cy - w), (cx - w, cy - w)]  # fmt: skip
        draw.polygon(_rotate(points, cx, cy, rotation), fill=255)
    elif shape == "arrow":
        points = [(cx - r, cy - 0.25 * r), (cx + 0.1 * r, cy - 0.25 * r), (cx + 0.1 * r, cy - 0.7 * r),
                  (cx + r, cy), (cx + 0.1 * r, cy + 0.7 * r), (cx + 0.1 * r, cy + 0.25 * r),
                  (cx - r, cy + 0.25 * r)]  # fmt: skip
        draw.polygon(_rotate(points, cx, cy, rotation), fill=255)
    elif shape == "heart":
        lobe = 0.5 * r
        draw.ellipse((cx - r, cy - 0.75 * r, cx, cy - 0.75 * r + 2 * lobe), fill=255)
        draw.ellipse((cx, cy - 0.75 * r, cx + r, cy - 0.75 * r + 2 * lobe), fill=255)
        draw.polygon(
            [(cx - 0.97 * r, cy - 0.1 * r), (cx + 0.97 * r, cy - 0.1 * r), (cx, cy + r)], fill=255
        )
        mask = mask.rotate(
            math.degrees(rotation) * 0.3, center=(cx, cy), resample=Image.Resampling.BILINEAR
        )
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return mask


@functools.cache
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(name)), size)


def glyph_mask(char: str, font: str, canvas: int, height_fraction: float, cx: float, cy: float,
               rotation_degrees: float) -> Image.Image:  # fmt: skip
    """An 8-bit mask of ``char`` drawn in ``font``, its ink box scaled to ``height_fraction`` of the
    canvas and centred at (cx, cy)."""
    size = max(8, int(canvas * height_fraction * 1.25))
    face = _font(font, size)
    tile = Image.new("L", (2 * size, 2 * size), 0)
    ImageDraw.Draw(tile).text((size // 2, size // 4), char, font=face, fill=255)
    bbox = tile.getbbox()
    if bbox is None:
        raise ValueError(f"font {font} draws nothing for {char!r}")
    ink = tile.crop(bbox)
    scale = canvas * height_fraction / max(ink.height, 1)
    ink = ink.resize(
        (max(1, round(ink.width * scale)), max(1, round(ink.height * scale))),
        Image.Resampling.BICUBIC,
    )
    ink = ink.rotate(rotation_degrees, expand=True, resample=Image.Resampling.BICUBIC)
    mask = Image.new("L", (canvas, canvas), 0)
    mask.paste(ink, (round(cx - ink.width / 2), round(cy - ink.height / 2)))
    return mask


def texture(kind: str, canvas: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean (canvas, canvas) pattern of ``kind`` with random scale, phase and orientation."""
    y, x = np.mgrid[0:canvas, 0:canvas].astype(np.float64)
    angle = rng.uniform(0, math.pi)
    u = x * math.cos(angle) + y * math.sin(angle)
    v = -x * math.sin(angle) + y * math.cos(angle)
    period = canvas / rng.uniform(3.0, 6.0)
    phase = rng.uniform(0, 2 * math.pi)
    f = 2 * math.pi / period
    if kind == "stripes":
        return np.sin(f * (y * math.cos(angle * 0.15) + x * math.sin(angle * 0.15)) + phase) > 0
    if kind == "diagonal stripes":
        sign = 1 if rng.random() < 0.5 else -1
        return np.sin(f * (x + sign * y) / math.sqrt(2) + phase) > 0
    if kind == "checkerboard":
        return ((np.floor(u / period * 2) + np.floor(v / period * 2)) % 2) == 0
    if kind == "dots":
        cell = period * 0.8
        du, dv = (u % cell) - cell / 2, (v % cell) - cell / 2
        return du**2 + dv**2 < (0.28 * cell) ** 2
    if kind == "grid":
        cell, width = period * 0.9, period * 0.14
        return ((u % cell) < width) | ((v % cell) < width)
    if kind == "waves":
        return np.sin(f * v + 2.2 * np.sin(f * 0.8 * u) + phase) > 0
    if kind == "zigzag":
        tri = np.abs(((u / period) % 1.0) - 0.5) * period * 1.2
        return np.sin(f * (v + tri) + phase) > 0
    if kind == "concentric circles":
        cx, cy = rng.uniform(0.3, 0.7, size=2) * canvas
        return np.sin(f * np.hypot(x - cx, y - cy) + phase) > 0
    raise ValueError(f"unknown texture {kind!r}")


def background(
    canvas: int, rng: np.random.Generator, avoid: tuple[int, int, int] | None = None
) -> np.ndarray:
    """A float (canvas, canvas, 3) background: plain, gradient or a faint texture, with enough
    contrast to ``avoid`` (the foreground colour) to keep the object visible."""

    def tone() -> np.ndarray:
        for _ in range(20):
            dark = rng.random() < 0.65
            base = rng.uniform(0, 70) if dark else rng.uniform(175, 245)
            colour = np.clip(base + rng.uniform(-18, 18, size=3), 0, 255)
            if avoid is None or np.abs(colour.mean() - np.mean(avoid)) > 70:
                return colour
        return np.full(3, 20.0)

    kind = rng.choice(["plain", "plain", "gradient", "texture"])
    a = tone()
    if kind == "plain":
        return np.broadcast_to(a, (canvas, canvas, 3)).copy()
    if kind == "gradient":
        b = np.clip(a + rng.uniform(-40, 40, size=3), 0, 255)
        t = np.linspace(0, 1, canvas)[:, None, None]
        grad = (1 - t) * a + t * b
        if rng.random() < 0.5:
            grad = grad.transpose(1, 0, 2)
        return np.broadcast_to(grad, (canvas, canvas, 3)).copy()
    pattern = texture(str(rng.choice(["stripes", "dots", "grid", "waves"])), canvas, rng)
    b = np.clip(a + rng.uniform(-25, 25, size=3), 0, 255)
    return np.where(pattern[..., None], a, b).astype(np.float64)


def paint(canvas_rgb: np.ndarray, mask: Image.Image, colour: np.ndarray) -> None:
    """Blend ``colour`` into the canvas through the mask (in place)."""
    alpha = np.asarray(mask, dtype=np.float32)[..., None] / np.float32(255.0)
    canvas_rgb *= 1 - alpha
    canvas_rgb += alpha * colour


def clutter(canvas_rgb: np.ndarray, amount: int, rng: np.random.Generator) -> None:
    """Add ``amount`` distractors: thin lines and specks in random colours (in place)."""
    canvas = canvas_rgb.shape[0]
    for _ in range(amount):
        mask = Image.new("L", (canvas, canvas), 0)
        draw = ImageDraw.Draw(mask)
        x0, y0 = rng.uniform(0, canvas, size=2)
        if rng.random() < 0.5:
            length, angle = rng.uniform(0.2, 0.6) * canvas, rng.uniform(0, 2 * math.pi)
            draw.line((x0, y0, x0 + length * math.cos(angle), y0 + length * math.sin(angle)),
                      fill=255, width=max(1, canvas // 40))  # fmt: skip
        else:
            r = rng.uniform(0.02, 0.05) * canvas
            draw.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), fill=255)
        paint(canvas_rgb, mask, rng.uniform(0, 255, size=3))


def finish(
    canvas_rgb: np.ndarray, size: int, nuisance: float, rng: np.random.Generator
) -> np.ndarray:
    """Downsample to ``size``, then apply nuisance: blur and Gaussian noise growing with
    ``nuisance`` in [0, 1]. Returns uint8 (size, size, 3)."""
    image = Image.fromarray(np.clip(canvas_rgb, 0, 255).astype(np.uint8))
    image = image.resize((size, size), Image.Resampling.BOX)
    blur = rng.uniform(0, 0.9) * nuisance
    if blur > 0.15:
        image = image.filter(ImageFilter.GaussianBlur(blur))
    pixels = np.asarray(image, dtype=np.float64)
    sigma = 3.0 + 22.0 * nuisance * rng.uniform(0.5, 1.0)
    pixels = pixels + rng.normal(0, sigma, size=pixels.shape)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
