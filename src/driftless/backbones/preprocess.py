"""CLIP preprocessing with Pillow + torch: resize the short side, center-crop, scale, normalize."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# OpenAI CLIP's normalization constants (also in every CLIP preprocessor_config.json)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_RESAMPLE = {
    0: Image.Resampling.NEAREST,
    1: Image.Resampling.LANCZOS,
    2: Image.Resampling.BILINEAR,
    3: Image.Resampling.BICUBIC,
    4: Image.Resampling.BOX,
    5: Image.Resampling.HAMMING,
}


@dataclass(frozen=True)
class ImagePreprocess:
    """Evaluation-time preprocessing of a CLIP model. ``resize`` is the short side after resizing,
    ``crop`` the square center crop, ``resample`` a PIL filter code (3 = bicubic)."""

    resize: int
    crop: int
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    resample: int = 3

    @classmethod
    def from_pretrained_dir(cls, path: Path, image_size: int) -> ImagePreprocess:
        """Read ``preprocessor_config.json`` (transformers' CLIPImageProcessor format); without one,
        resize and crop to the vision tower's ``image_size`` with CLIP's constants."""
        file = Path(path) / "preprocessor_config.json"
        if not file.is_file():
            return cls(image_size, image_size)
        cfg = json.loads(file.read_text())
        size = cfg.get("size", image_size)
        resize = (
            size.get("shortest_edge", size.get("height", image_size))
            if isinstance(size, dict)
            else int(size)
        )
        crop = cfg.get("crop_size", resize)
        crop = crop.get("height", resize) if isinstance(crop, dict) else int(crop)
        if not cfg.get("do_center_crop", True):
            crop = resize
        return cls(
            int(resize),
            int(crop),
            tuple(cfg.get("image_mean", CLIP_MEAN)),  # type: ignore[arg-type]
            tuple(cfg.get("image_std", CLIP_STD)),
            int(cfg.get("resample", 3)),  # type: ignore[arg-type]
        )

    @property
    def transform_id(self) -> str:
        """Stable text naming this transform, part of every feature-store key."""
        return "clip-eval/" + json.dumps(asdict(self), sort_keys=True)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        """PIL image → float tensor (3, crop, crop)."""
        image = image.convert("RGB")
        w, h = image.size
        scale = self.resize / min(w, h)
        new_size = (max(self.resize, round(w * scale)), max(self.resize, round(h * scale)))
        if new_size != (w, h):
            image = image.resize(new_size, _RESAMPLE[self.resample])
        w, h = image.size
        left, top = (w - self.crop) // 2, (h - self.crop) // 2
        image = image.crop((left, top, left + self.crop, top + self.crop))
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        mean = torch.tensor(self.mean).view(3, 1, 1)
        std = torch.tensor(self.std).view(3, 1, 1)
        return (pixels - mean) / std

    def batch(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """A list of PIL images → one (B, 3, crop, crop) tensor."""
        return torch.stack([self(img) for img in images])
