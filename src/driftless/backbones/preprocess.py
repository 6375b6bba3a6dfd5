"""A model's evaluation preprocessing, through the model directory's own ``transformers`` image
processor (Pillow backend: no torchvision), so pixels equal what the processor gives, bit for bit.

Published zero-shot numbers are computed with the processor's exact resize rule (the short side is
truncated, not rounded), its RGB conversion (transparent pixels composited on white) and its
constants; a hand-written copy of that pipeline drifts from it on a share of image sizes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from PIL import Image

# OpenAI CLIP's normalization constants (also in every CLIP preprocessor_config.json)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: the files a model directory may keep its image processor in: the legacy one, and the one
#: transformers 5 writes for a whole processor (the image processor nested under "image_processor")
PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")

# keys that name how a config was saved, not what the processor computes
_VOLATILE_KEYS = {"image_processor_type", "processor_class", "_processor_class", "backend"}


def _clip_processor(resize: int, crop: int, mean, std, resample: int):
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    return CLIPImageProcessorPil(
        size={"shortest_edge": int(resize)},
        crop_size={"height": int(crop), "width": int(crop)},
        do_center_crop=True,
        image_mean=list(mean),
        image_std=list(std),
        resample=int(resample),
    )


def has_processor_file(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds an image processor config (either file name)."""
    return any((Path(directory) / name).is_file() for name in PROCESSOR_FILES)


class ImagePreprocess:
    """Evaluation-time preprocessing of a model: a ``transformers`` image processor with the Pillow
    backend. ``ImagePreprocess(resize, crop, mean, std, resample)`` builds CLIP's (resize the short
    side, center-crop, scale, normalize; ``resample`` a PIL filter code, 3 = bicubic);
    :meth:`from_pretrained_dir` reads a model directory's own."""

    def __init__(
        self,
        resize: int,
        crop: int,
        mean: Sequence[float] = CLIP_MEAN,
        std: Sequence[float] = CLIP_STD,
        resample: int = 3,
    ):
        self.processor = _clip_processor(resize, crop, mean, std, resample)

    @classmethod
    def from_processor(cls, processor: Any) -> ImagePreprocess:
        """Wrap an image processor built elsewhere (it must be a Pillow-backend one)."""
        if getattr(processor, "backend", "pil") != "pil":
            raise TypeError(
                f"{type(processor).__name__} uses the {processor.backend!r} backend; driftless uses "
                "the Pillow backend (load it with AutoImageProcessor.from_pretrained(..., "
                "backend='pil'))"
            )
        preprocess = cls.__new__(cls)
        preprocess.processor = processor
        return preprocess

    @classmethod
    def from_pretrained_dir(
        cls, path: str | os.PathLike[str], image_size: int, local_files_only: bool = True
    ) -> ImagePreprocess:
        """The image processor of a model directory (or a Hugging Face id in the local cache):
        ``preprocessor_config.json`` or ``processor_config.json``, whichever it holds, through
        ``AutoImageProcessor`` with the Pillow backend. A directory with neither file gets CLIP's
        preprocessing at the vision tower's ``image_size``."""
        directory = Path(path).expanduser()
        if directory.is_dir() and not has_processor_file(directory):
            return cls(image_size, image_size)
        from transformers import AutoImageProcessor
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

        try:
            processor = AutoImageProcessor.from_pretrained(
                str(path), backend="pil", local_files_only=local_files_only
            )
        except ValueError:  # a file naming no processor class, beside no model config: CLIP's
            processor = CLIPImageProcessorPil.from_pretrained(
                str(path), local_files_only=local_files_only
            )
        except OSError:
            if directory.is_dir():
                raise
            return cls(image_size, image_size)  # a cached Hub model saved without a processor
        return cls.from_processor(processor)

    # -- what the processor computes -----------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The processor's settings as plain JSON values (how it was saved left out)."""
        data = json.loads(self.processor.to_json_string())
        return {k: v for k, v in data.items() if k not in _VOLATILE_KEYS}

    @property
    def transform_id(self) -> str:
        """Stable text naming this transform, part of every feature-store key: the processor class
        and every setting, so any change to the processor config gives new features."""
        return f"hf-image-processor/{type(self.processor).__name__}/" + json.dumps(
            self.config(), sort_keys=True
        )

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel normalization mean (0 when the processor does not normalize)."""
        if not self.processor.do_normalize:
            return (0.0, 0.0, 0.0)
        return tuple(float(v) for v in _three(self.processor.image_mean))

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel normalization std, in units of the rescaled [0, 1] pixels."""
        if not self.processor.do_normalize:
            return (1.0, 1.0, 1.0)
        return tuple(float(v) for v in _three(self.processor.image_std))

    @property
    def resize(self) -> int:
        """The short side after resizing (or the height of a fixed-size resize)."""
        size = self.processor.size
        return int(size.get("shortest_edge") or size.get("height"))

    @property
    def crop(self) -> int:
        """The side of the square output (the crop's height when the processor center-crops)."""
        if self.processor.do_center_crop:
            return int(self.processor.crop_size["height"])
        return self.resize

    @property
    def resample(self) -> int:
        """The PIL resampling filter code."""
        return int(self.processor.resample)

    # -- applying it ---------------------------------------------------------------------------
    def __call__(self, image: Image.Image) -> torch.Tensor:
        """PIL image (any mode) → float32 tensor (3, H, W), exactly the processor's pixels."""
        return self.batch([image])[0]

    def batch(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """A list of PIL images → one (B, 3, H, W) float32 tensor."""
        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"]
        return pixels.float()

    def save_pretrained(self, path: str | os.PathLike[str]) -> None:
        """Write ``preprocessor_config.json`` into ``path``."""
        self.processor.save_pretrained(str(path))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImagePreprocess):
            return NotImplemented
        return self.transform_id == other.transform_id

    def __hash__(self) -> int:
        return hash(self.transform_id)

    def __repr__(self) -> str:
        return f"ImagePreprocess({self.transform_id})"


def _three(values: Any) -> list[float]:
    values = list(values) if isinstance(values, (list, tuple)) else [values]
    return values * 3 if len(values) == 1 else values
