"""driftless's pixels are the model directory's image processor's pixels: random sizes and modes
against a ``CLIPImageProcessorPil`` built independently from the same file; both processor file
names; the transform id follows the processor config; no torchvision is imported."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

from driftless.backbones import ImagePreprocess, load_backbone
from driftless.backbones.clip import TINY_RANDOM_DIR
from driftless.backbones.registry import TINY_CLIP_DIR

MODES = ("RGB", "L", "RGBA", "CMYK")

# a processor whose resize rounds differently from the short-side scale on many sizes
PROCESSOR = {
    "image_processor_type": "CLIPImageProcessor",
    "size": {"shortest_edge": 40},
    "crop_size": {"height": 32, "width": 32},
    "do_center_crop": True,
    "image_mean": [0.5, 0.4, 0.3],
    "image_std": [0.2, 0.25, 0.3],
    "resample": 3,
}


def _random_image(rng: np.random.Generator, mode: str) -> Image.Image:
    width, height = (int(v) for v in rng.integers(20, 120, size=2))
    channels = {"L": 1, "RGB": 3, "RGBA": 4, "CMYK": 4}[mode]
    array = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    return Image.fromarray(array[..., 0] if channels == 1 else array, mode=mode)


def _reference_pixels(config: dict, image: Image.Image) -> np.ndarray:
    processor = CLIPImageProcessorPil(
        **{k: v for k, v in config.items() if k != "image_processor_type"}
    )
    return processor(images=image, return_tensors="np")["pixel_values"][0]


@pytest.mark.parametrize("file_name", ["preprocessor_config.json", "processor_config.json"])
def test_pixels_equal_the_processors_on_random_sizes_and_modes(
    tmp_path: Path, file_name: str
) -> None:
    content = (
        PROCESSOR if file_name == "preprocessor_config.json" else {"image_processor": PROCESSOR}
    )
    (tmp_path / file_name).write_text(json.dumps(content))
    preprocess = ImagePreprocess.from_pretrained_dir(tmp_path, image_size=224)
    assert (preprocess.resize, preprocess.crop) == (40, 32)  # the file's, not the tower's 224
    rng = np.random.default_rng(0)
    worst = 0.0
    for i in range(48):
        image = _random_image(rng, MODES[i % len(MODES)])
        ours = preprocess(image).numpy()
        assert ours.shape == (3, 32, 32)
        worst = max(worst, float(np.abs(ours - _reference_pixels(PROCESSOR, image)).max()))
    assert worst < 1e-5


def test_the_tiny_models_ship_a_processor_config_and_use_it() -> None:
    for directory, name in ((TINY_CLIP_DIR, "tiny-clip"), (TINY_RANDOM_DIR, "tiny-random")):
        config = json.loads((directory / "preprocessor_config.json").read_text())
        preprocess = load_backbone(name).preprocess
        rng = np.random.default_rng(1)
        for mode in MODES:
            image = _random_image(rng, mode)
            ours = preprocess(image).numpy()
            assert np.abs(ours - _reference_pixels(config, image)).max() < 1e-5


def test_transparent_pixels_are_composited_on_white() -> None:
    # the processor's RGB conversion, not PIL's convert("RGB") which drops alpha
    clear = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    identity = ImagePreprocess(32, 32, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    assert float(identity(clear).min()) == 1.0


def test_transform_id_follows_the_processor_config(tmp_path: Path) -> None:
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(PROCESSOR))
    base = ImagePreprocess.from_pretrained_dir(tmp_path, 224)
    # the same settings under the other file name, or built in code, name the same transform
    nested = tmp_path / "nested"
    nested.mkdir()
    (nested / "processor_config.json").write_text(json.dumps({"image_processor": PROCESSOR}))
    assert ImagePreprocess.from_pretrained_dir(nested, 224).transform_id == base.transform_id
    assert (
        ImagePreprocess(40, 32, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)).transform_id == base.transform_id
    )
    for change in ({"resample": 2}, {"image_std": [0.2, 0.25, 0.31]}, {"do_convert_rgb": False}):
        (tmp_path / "preprocessor_config.json").write_text(json.dumps({**PROCESSOR, **change}))
        assert (
            ImagePreprocess.from_pretrained_dir(tmp_path, 224).transform_id != base.transform_id
        ), change


def test_preprocessing_uses_the_pillow_backend(tmp_path: Path) -> None:
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(PROCESSOR))
    preprocess = ImagePreprocess.from_pretrained_dir(tmp_path, 224)
    preprocess(Image.new("RGB", (50, 60)))
    assert preprocess.processor.backend == "pil"
    assert "torchvision" not in sys.modules
    with pytest.raises(TypeError, match="Pillow backend"):
        ImagePreprocess.from_processor(SimpleNamespace(backend="torchvision"))
