"""The generated world: deterministic drawing, held-out concepts, captions, tokenizer, recipe."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from transformers import CLIPTokenizer

from driftless.data.world import (
    COLOURS,
    HELD_OUT_COMBOS,
    HELD_OUT_FONTS,
    PRETRAIN_FONTS,
    SHAPES,
    TEXTURES,
    GlyphScene,
    ObjectScene,
    TextureScene,
    render,
    sklearn_digits,
    world_compositions,
    world_counts,
    world_glyphs,
)
from driftless.data.world.concepts import DIGITS, LETTERS
from driftless.data.world.corpus import pretraining_corpus, sample_pretraining_scene
from driftless.data.world.draw import glyph_mask
from driftless.errors import ConfigError
from driftless.pretrain.tokenizer import train_clip_tokenizer


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def test_concept_lists_meet_the_minimums():
    assert len(COLOURS) >= 10 and len(SHAPES) >= 10 and len(TEXTURES) >= 6
    assert len(PRETRAIN_FONTS) >= 5 and len(HELD_OUT_FONTS) >= 3
    assert not set(PRETRAIN_FONTS) & set(HELD_OUT_FONTS)
    # every colour and every shape still appears in pretraining in some combination
    for colour in COLOURS:
        assert any((colour, s) not in HELD_OUT_COMBOS for s in SHAPES)
    for shape in SHAPES:
        assert any((c, shape) not in HELD_OUT_COMBOS for c in COLOURS)


def test_same_seed_draws_bit_identical_images():
    a = world_compositions(
        colours=["red", "blue"], shapes=["star", "ring"], train_per_class=3, test_per_class=2
    )
    b = world_compositions(
        colours=["red", "blue"], shapes=["star", "ring"], train_per_class=3, test_per_class=2
    )
    c = world_compositions(
        colours=["red", "blue"],
        shapes=["star", "ring"],
        train_per_class=3,
        test_per_class=2,
        seed=1,
    )
    pixels = a.split("train").images.pixels
    assert pixels.shape == (12, 32, 32, 3) and pixels.dtype == np.uint8
    assert _digest(pixels) == _digest(b.split("train").images.pixels)
    assert _digest(pixels) != _digest(c.split("train").images.pixels)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_test_nuisance_redraws_only_the_test_images():
    """``test_nuisance`` shifts what is scored, not what is learned: the training images are the
    same bytes as without it, the test images differ, and the same range gives the same images."""
    kwargs = {"colours": ["red", "blue"], "shapes": ["star"], "train_per_class": 3,
              "test_per_class": 4}  # fmt: skip
    plain = world_compositions(**kwargs)
    shifted = world_compositions(**kwargs, test_nuisance=(0.1, 0.5))
    same_range = world_compositions(**kwargs, test_nuisance=(1.5, 2.5))
    assert _digest(shifted.split("train").images.pixels) == _digest(
        plain.split("train").images.pixels
    )
    assert _digest(shifted.split("test").images.pixels) != _digest(
        plain.split("test").images.pixels
    )
    assert same_range.fingerprint() == plain.fingerprint() != shifted.fingerprint()


# Pinned digest of one scene: the same seed must draw the same bytes on every machine (with the
# pinned Pillow/FreeType of matplotlib's fonts). If a deliberate change to the drawing code changes
# it, update the digest and say so in the changelog: every cached feature of the world changes too.
PINNED_SCENES = [
    (ObjectScene("star", "red", 1, "large", "left", 0.6), [0, 1, 2]),
    (GlyphScene("Q", "DejaVuSerif.ttf", "white", 0.3), [0, 3]),
    (TextureScene("waves", "blue", 0.4), [5]),
]


def test_a_scene_depends_only_on_its_seed():
    for scene, seed in PINNED_SCENES:
        first = render(scene, np.random.default_rng(seed))
        second = render(scene, np.random.default_rng(seed))
        np.testing.assert_array_equal(first, second)
        assert first.std() > 10  # something was drawn


PINNED_DIGESTS = [
    "013ebaee46f58b42176c3a4419b61d6d314befb0d07dcf0409be28597c017b08",
    "4657925e9b98c7db4edd50e355cb98215fcc5f090f8f84cbecf7b6701c15ecc1",
    "bec8f92c1dfe0d1afdf20442b4113b06ae9a4bca74d4f64f07378e01a3cf139e",
]


def test_pinned_digests():
    digests = [_digest(render(scene, np.random.default_rng(seed))) for scene, seed in PINNED_SCENES]
    assert digests == PINNED_DIGESTS


def test_every_font_draws_every_glyph():
    for font in [*PRETRAIN_FONTS, *HELD_OUT_FONTS]:
        for char in LETTERS + DIGITS:
            mask = np.asarray(glyph_mask(char, font, 96, 0.6, 48, 48, 0.0))
            assert mask.max() == 255 and (mask > 128).sum() > 40, (font, char)


def test_pretraining_never_shows_held_out_combinations_or_fonts():
    seen_combos, fonts, kinds = set(), set(), set()
    for i in range(3000):
        scene = sample_pretraining_scene(np.random.default_rng([11, i]))
        kinds.add(type(scene).__name__)
        if isinstance(scene, ObjectScene):
            seen_combos.add((scene.colour, scene.shape))
        elif isinstance(scene, GlyphScene):
            fonts.add(scene.font)
    assert kinds == {"ObjectScene", "GlyphScene", "TextureScene"}
    assert not seen_combos & HELD_OUT_COMBOS
    assert len(seen_combos) == len(COLOURS) * len(SHAPES) - len(HELD_OUT_COMBOS)
    assert fonts == set(PRETRAIN_FONTS)


def test_corpus_is_independent_of_the_number_of_processes():
    one = pretraining_corpus(60, seed=3, processes=1, progress=False, chunk=25)
    two = pretraining_corpus(60, seed=3, processes=2, progress=False, chunk=16)
    np.testing.assert_array_equal(one.pixels, two.pixels)
    assert one.captions == two.captions
    object_captions = [c for c in one.captions if any(s in c for s in SHAPES)]
    assert len(object_captions) > 15


def test_downstream_datasets_shapes_and_names():
    glyphs = world_glyphs(train_per_class=1, test_per_class=1)
    assert (
        glyphs.num_classes == 36
        and glyphs.class_names[0] == "letter A"
        and glyphs.class_names[-1] == "digit 9"
    )
    counts = world_counts(train_per_class=2, test_per_class=1)
    assert counts.class_names == ("one object", "two objects", "three objects", "four objects")
    assert len(counts.split("train")) == 8
    digits = sklearn_digits()
    train, test = digits.split("train"), digits.split("test")
    assert len(train) + len(test) == 1797
    assert 0.28 < len(test) / 1797 < 0.32
    for label in range(10):  # stratified
        share = (test.labels == label).sum() / (
            (test.labels == label).sum() + (train.labels == label).sum()
        )
        assert 0.27 < share < 0.33
    image = np.asarray(test.image(0))
    assert image.shape == (32, 32, 3) and (image[..., 0] == image[..., 1]).all()
    with pytest.raises(ConfigError, match="mauve"):
        world_compositions(colours=["mauve"])


def test_tokenizer_is_a_clip_tokenizer_and_knows_every_character(tmp_path):
    tokenizer = train_clip_tokenizer(
        ["a red star", "a red star on the left", "the letter Q", "two blue rings"] * 20, 256
    )
    vocab = tokenizer.get_vocab()
    for char in (chr(c) for c in range(33, 127)):
        assert char in vocab and char + "</w>" in vocab
    ids = tokenizer("a red star")["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == [
        "<|startoftext|>",
        "a</w>",
        "red</w>",
        "star</w>",
        "<|endoftext|>",
    ]
    unknown = tokenizer("zebra #42!")["input_ids"]
    assert vocab["<|endoftext|>"] not in unknown[1:-1]  # nothing collapses to the unknown/end token
    tokenizer.save_pretrained(tmp_path)
    reloaded = CLIPTokenizer.from_pretrained(tmp_path)
    assert (
        reloaded("a red star on the left")["input_ids"]
        == tokenizer("a red star on the left")["input_ids"]
    )
