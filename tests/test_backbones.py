"""Tests of driftless.backbones: the tiny random CLIP, save/load round trips, missing-model errors,
CLIP preprocessing and text tokenization."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from driftless.backbones import (
    BUILTIN_BACKBONES,
    CLIP_MEAN,
    CLIP_STD,
    CLIPBackbone,
    ImagePreprocess,
    char_tokenizer,
    load_backbone,
    tiny_random_clip,
)
from driftless.errors import MissingModelError

TEXTS = ["a photo of a red circle.", "blue square", "x", "A Photo Of A Red Circle."]


@pytest.fixture(scope="module")
def tiny() -> CLIPBackbone:
    return tiny_random_clip(seed=0)


@pytest.fixture(scope="module")
def saved(tiny: CLIPBackbone, tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("backbones") / "tiny-saved"
    tiny.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def pixels() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(3, 3, 32, 32, generator=generator)


# ---------------------------------------------------------------------------------------------
# tiny_random_clip


def test_tiny_random_clip_is_deterministic(tiny: CLIPBackbone) -> None:
    same = tiny_random_clip(seed=0)
    other = tiny_random_clip(seed=1)
    assert same.fingerprint == tiny.fingerprint
    assert len(tiny.fingerprint) == 64 and int(tiny.fingerprint, 16) >= 0
    assert other.fingerprint != tiny.fingerprint
    for key, value in tiny.model.state_dict().items():
        assert torch.equal(value, same.model.state_dict()[key]), key
    assert tiny.name == "tiny-random-0" and other.name == "tiny-random-1"


def test_tiny_random_clip_leaves_the_global_generator_alone() -> None:
    torch.manual_seed(1234)
    expected = torch.rand(4)
    torch.manual_seed(1234)
    tiny_random_clip(seed=5)
    assert torch.equal(torch.rand(4), expected)


def test_tiny_random_clip_properties(tiny: CLIPBackbone) -> None:
    assert tiny.embed_dim == 32
    assert tiny.max_text_length == 64
    assert tiny.device == torch.device("cpu")
    assert tiny.preprocess == ImagePreprocess(32, 32)
    assert tiny.logit_scale == pytest.approx(float(tiny.model.logit_scale.detach().exp()))
    assert tiny.logit_scale > 0
    assert tiny.vision is tiny.model.vision_model
    assert tiny.text is tiny.model.text_model
    assert not tiny.model.training
    assert "tiny-random" in BUILTIN_BACKBONES
    assert load_backbone("tiny-random").fingerprint == tiny.fingerprint


def test_fingerprint_depends_on_architecture_and_preprocess() -> None:
    wide = tiny_random_clip(seed=0, embed_dim=16)
    assert wide.fingerprint != tiny_random_clip(seed=0).fingerprint
    assert wide.embed_dim == 16
    base = tiny_random_clip(seed=0)
    changed = CLIPBackbone(base.model, base.tokenizer, ImagePreprocess(40, 32), "x")
    assert changed.fingerprint != base.fingerprint


# ---------------------------------------------------------------------------------------------
# encoders


def test_encode_images_and_texts_shapes(tiny: CLIPBackbone, pixels: torch.Tensor) -> None:
    with torch.no_grad():
        images = tiny.encode_images(pixels)
        texts = tiny.encode_texts(TEXTS)
    assert images.shape == (3, tiny.embed_dim)
    assert texts.shape == (len(TEXTS), tiny.embed_dim)
    assert images.dtype == texts.dtype == torch.float32
    assert torch.isfinite(images).all() and torch.isfinite(texts).all()
    # distinct inputs give distinct embeddings
    assert not torch.allclose(images[0], images[1])
    assert not torch.allclose(texts[0], texts[1])


def test_encode_texts_batches_agree(tiny: CLIPBackbone) -> None:
    with torch.no_grad():
        whole = tiny.encode_texts(TEXTS)
        batched = tiny.encode_texts(TEXTS, batch_size=1)
        empty = tiny.encode_texts([])
    assert torch.allclose(whole, batched, atol=1e-5)
    assert empty.shape == (0, tiny.embed_dim)
    # the character tokenizer lower-cases: the capitalized text embeds identically
    assert torch.allclose(whole[0], whole[3], atol=1e-6)


def test_encode_images_other_embed_dim(pixels: torch.Tensor) -> None:
    small = tiny_random_clip(seed=2, embed_dim=8)
    with torch.no_grad():
        assert small.encode_images(pixels[:2]).shape == (2, 8)
        assert small.encode_texts(["a", "b"]).shape == (2, 8)


# ---------------------------------------------------------------------------------------------
# save / load


def test_save_pretrained_writes_the_expected_files(saved: Path) -> None:
    names = {p.name for p in saved.iterdir()}
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= names
    cfg = json.loads((saved / "preprocessor_config.json").read_text())
    assert cfg["size"] == {"shortest_edge": 32}
    assert cfg["crop_size"] == {"height": 32, "width": 32}
    assert cfg["image_mean"] == list(CLIP_MEAN)
    assert cfg["image_std"] == list(CLIP_STD)
    assert cfg["resample"] == 3


def test_save_and_load_round_trip(tiny: CLIPBackbone, saved: Path, pixels: torch.Tensor) -> None:
    loaded = load_backbone(str(saved))
    assert loaded.name == str(saved)
    assert loaded.fingerprint == tiny.fingerprint
    assert loaded.preprocess == tiny.preprocess
    assert loaded.embed_dim == tiny.embed_dim
    assert loaded.max_text_length == tiny.max_text_length
    assert loaded.logit_scale == pytest.approx(tiny.logit_scale)
    # the tokenizer survives the trip
    for key in ("input_ids", "attention_mask"):
        assert torch.equal(loaded.tokenize(TEXTS)[key], tiny.tokenize(TEXTS)[key])
    with torch.no_grad():
        assert torch.allclose(loaded.encode_images(pixels), tiny.encode_images(pixels), atol=1e-6)
        assert torch.allclose(loaded.encode_texts(TEXTS), tiny.encode_texts(TEXTS), atol=1e-6)


def test_load_reads_a_changed_preprocessor_config(
    tiny: CLIPBackbone, saved: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in saved.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    cfg = json.loads((copy / "preprocessor_config.json").read_text())
    cfg["size"] = {"shortest_edge": 36}
    (copy / "preprocessor_config.json").write_text(json.dumps(cfg))
    loaded = load_backbone(str(copy))
    assert loaded.preprocess == ImagePreprocess(36, 32)
    # the preprocessing is part of the fingerprint
    assert loaded.fingerprint != tiny.fingerprint

    # without a preprocessor config: the vision tower's image size and CLIP's constants
    (copy / "preprocessor_config.json").unlink()
    assert load_backbone(str(copy)).preprocess == ImagePreprocess(32, 32)


def test_load_unknown_hub_id_says_how_to_get_it() -> None:
    model_id = "driftless-tests/no-such-clip-model"
    with pytest.raises(MissingModelError) as info:
        load_backbone(model_id)
    message = str(info.value)
    assert model_id in message
    assert f"`hf download {model_id}`" in message  # the CLI that huggingface_hub ships
    assert "huggingface-cli" not in message
    assert isinstance(info.value, FileNotFoundError)


def test_load_directory_without_config(tmp_path: Path) -> None:
    directory = tmp_path / "not-a-model"
    directory.mkdir()
    (directory / "weights.bin").write_bytes(b"\0" * 16)
    with pytest.raises(MissingModelError) as info:
        load_backbone(str(directory))
    assert str(directory) in str(info.value)
    assert "config.json" in str(info.value)


def test_load_directory_with_config_but_no_weights(saved: Path, tmp_path: Path) -> None:
    directory = tmp_path / "config-only"
    directory.mkdir()
    (directory / "config.json").write_bytes((saved / "config.json").read_bytes())
    with pytest.raises(MissingModelError) as info:
        load_backbone(str(directory))
    assert str(directory) in str(info.value)
    assert "no weights (model.safetensors)" in str(info.value)  # not "no local directory"


# ---------------------------------------------------------------------------------------------
# ImagePreprocess


def test_preprocess_output_shape() -> None:
    pre = ImagePreprocess(resize=32, crop=32)
    image = Image.new("RGB", (64, 48), (10, 20, 30))
    out = pre(image)
    assert out.shape == (3, 32, 32)
    assert out.dtype == torch.float32
    # portrait images too, and crops smaller than the resized side
    assert ImagePreprocess(40, 24)(Image.new("RGB", (30, 70))).shape == (3, 24, 24)
    # grey images are converted to three channels
    assert pre(Image.new("L", (32, 32), 5)).shape == (3, 32, 32)
    batch = pre.batch([image, image.transpose(Image.Transpose.ROTATE_90)])
    assert batch.shape == (2, 3, 32, 32)


def test_preprocess_constant_image_closed_form() -> None:
    colour = (200, 100, 50)
    pre = ImagePreprocess(resize=32, crop=32)
    out = pre(Image.new("RGB", (64, 48), colour))
    for c in range(3):
        expected = (colour[c] / 255.0 - CLIP_MEAN[c]) / CLIP_STD[c]
        channel = out[c]
        assert torch.allclose(channel, torch.full_like(channel, expected), rtol=0, atol=1e-6)

    # any mean/std: black → -mean/std, white → (1 - mean)/std
    custom = ImagePreprocess(8, 8, mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 2.0))
    black = custom(Image.new("RGB", (8, 8), (0, 0, 0)))
    white = custom(Image.new("RGB", (8, 8), (255, 255, 255)))
    for c, (lo, hi) in enumerate([(-1.0, 1.0), (-1.0, 3.0), (0.0, 0.5)]):
        assert torch.equal(black[c], torch.full((8, 8), lo))
        assert torch.equal(white[c], torch.full((8, 8), hi))


def test_preprocess_center_crop_without_resize() -> None:
    # 48 wide, 32 high: the short side is already 32, so only a centred 32×32 crop happens
    width, height = 48, 32
    columns = (np.arange(width, dtype=np.uint8) * 5)[None, :, None]
    rows = (np.arange(height, dtype=np.uint8) * 3)[:, None, None]
    array = np.concatenate(
        [
            np.broadcast_to(columns, (height, width, 1)),
            np.broadcast_to(rows, (height, width, 1)),
            np.full((height, width, 1), 9, np.uint8),
        ],
        axis=2,
    )
    identity = ImagePreprocess(32, 32, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    out = identity(Image.fromarray(np.ascontiguousarray(array)))
    left = (width - 32) // 2
    expected = array[:, left : left + 32].astype(np.float32) / 255.0
    assert torch.equal(out, torch.from_numpy(expected).permute(2, 0, 1))


def test_preprocess_transform_id_is_stable() -> None:
    a = ImagePreprocess(32, 32)
    assert a.transform_id == ImagePreprocess(32, 32).transform_id
    assert a.transform_id.startswith("hf-image-processor/CLIPImageProcessorPil/")
    assert a.transform_id != ImagePreprocess(32, 28).transform_id
    assert a.transform_id != ImagePreprocess(32, 32, resample=2).transform_id


def test_from_pretrained_dir_parses_clip_image_processor_config(tmp_path: Path) -> None:
    cfg = {
        "image_processor_type": "CLIPImageProcessor",
        "size": {"shortest_edge": 40},
        "crop_size": {"height": 32, "width": 32},
        "do_center_crop": True,
        "image_mean": [0.5, 0.4, 0.3],
        "image_std": [0.2, 0.25, 0.3],
        "resample": 2,
    }
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(cfg))
    pre = ImagePreprocess.from_pretrained_dir(tmp_path, image_size=224)
    assert pre == ImagePreprocess(40, 32, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3), 2)
    assert pre(Image.new("RGB", (50, 80))).shape == (3, 32, 32)


def test_from_pretrained_dir_variants(tmp_path: Path) -> None:
    # no file: the tower's image size, CLIP's constants, bicubic
    assert ImagePreprocess.from_pretrained_dir(tmp_path, 48) == ImagePreprocess(48, 48)

    # old-style integer sizes, the processor's defaults for everything else
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"size": 64, "crop_size": 56}))
    assert ImagePreprocess.from_pretrained_dir(tmp_path, 224) == ImagePreprocess(64, 56)

    # height/width sizes and no center crop: the output is the resized image
    (tmp_path / "preprocessor_config.json").write_text(
        json.dumps({"size": {"height": 30, "width": 30}, "do_center_crop": False})
    )
    fixed = ImagePreprocess.from_pretrained_dir(tmp_path, 224)
    assert (fixed.resize, fixed.crop) == (30, 30)
    assert fixed(Image.new("RGB", (50, 80))).shape == (3, 30, 30)
    assert fixed != ImagePreprocess(30, 30)  # a different transform: no crop, no aspect kept


# ---------------------------------------------------------------------------------------------
# tokenization


def test_tokenize_pads_to_the_longest_text(tiny: CLIPBackbone) -> None:
    vocab = char_tokenizer().get_vocab()
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    tokens = tiny.tokenize(["ab", "abcd"])
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    # "ab" → <bos> a b</w> <eos>; "abcd" → <bos> a b c d</w> <eos>
    assert ids.shape == mask.shape == (2, 6)
    assert ids[0].tolist() == [bos, vocab["a"], vocab["b</w>"], eos, eos, eos]  # padded with eos
    assert ids[1].tolist() == [bos, vocab["a"], vocab["b"], vocab["c"], vocab["d</w>"], eos]
    assert mask.tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]]
    assert ids.dtype == torch.int64


def test_tokenize_lower_cases(tiny: CLIPBackbone) -> None:
    assert torch.equal(
        tiny.tokenize(["Red Circle"])["input_ids"], tiny.tokenize(["red circle"])["input_ids"]
    )


def test_tokenize_truncates_to_the_max_length(tiny: CLIPBackbone) -> None:
    vocab = char_tokenizer().get_vocab()
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    tokens = tiny.tokenize(["x" * 200, "short"])
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    assert ids.shape == (2, tiny.max_text_length) == (2, 64)
    assert ids[0, 0].item() == bos
    assert ids[0, -1].item() == eos  # the end token survives truncation
    assert ids[0, 1:-1].tolist() == [vocab["x"]] * 62
    assert mask[0].sum().item() == 64
    assert mask[1].sum().item() == len("short") + 2
    with torch.no_grad():
        assert tiny.encode_texts(["y" * 500]).shape == (1, tiny.embed_dim)
