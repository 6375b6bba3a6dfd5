"""The embedded default: the shipped tiny CLIP on the generated benchmarks meets its promises —
zero-shot is far from perfect, fine-tuning forgets, NCM beats zero-shot, the real handwritten digits
stay hard, and `driftless run` with no arguments means world-cil with tiny-clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import CLIPTokenizer

from driftless.backbones import load_backbone
from driftless.backbones.registry import TINY_CLIP_DIR
from driftless.config import RunConfig, build_run_config
from driftless.engine import run


@pytest.fixture(scope="module")
def world_cil(world_cil_results):
    results, _ = world_cil_results
    return results


def test_defaults_are_the_embedded_benchmark():
    config = RunConfig()
    assert config.benchmark == "world-cil" and config.backbone == "tiny-clip"


def test_shipped_model_loads_with_both_tokenizer_formats():
    backbone = load_backbone("tiny-clip")
    assert backbone.name == "tiny-clip" and backbone.embed_dim == 128
    assert sum(p.numel() for p in backbone.model.parameters()) < 2_000_000
    assert (TINY_CLIP_DIR / "model.safetensors").stat().st_size < 25 * 2**20
    slow = CLIPTokenizer(str(TINY_CLIP_DIR / "vocab.json"), str(TINY_CLIP_DIR / "merges.txt"))
    for text in [
        "a photo of a purple hexagon.",
        "the letter Q in an unusual font.",
        "three objects",
    ]:
        assert slow(text)["input_ids"] == backbone.tokenizer(text)["input_ids"]


def test_world_cil_zero_shot_is_far_from_perfect(world_cil):
    zero_shot = world_cil["methods"]["zero-shot"]["metrics"]
    assert 15.0 <= zero_shot["last"] <= 70.0
    assert zero_shot["avg"] > 100.0 / 8  # far above chance even on the first task's 8 classes


def test_world_cil_finetune_forgets_and_ncm_beats_zero_shot(world_cil):
    metrics = {name: m["metrics"] for name, m in world_cil["methods"].items()}
    assert metrics["finetune"]["forgetting"] >= 10.0
    assert metrics["ncm"]["last"] > metrics["zero-shot"]["last"]
    # methods differ: their final accuracies span more than a few points
    lasts = sorted(m["last"] for m in metrics.values())
    assert lasts[-1] - lasts[0] > 3.0


def test_world_mtil_zero_shot_per_dataset(tmp_path, cache_dir):
    config = build_run_config({"benchmark": "world-mtil", "methods": ["zero-shot"], "out": tmp_path / "run",
                               "cache_dir": cache_dir})  # fmt: skip
    outcome = run(config, progress=False)
    row = outcome.methods["zero-shot"].matrix[0]
    for split, accuracy in zip(outcome.benchmark.eval_splits, row, strict=True):
        chance = 100.0 / len(split.class_ids)
        assert accuracy > 1.5 * chance, (split.name, accuracy)
    digits = [e.name for e in outcome.benchmark.eval_splits].index("sklearn-digits")
    assert row[digits] < 60.0
    assert np.isfinite(row).all()


def test_pretraining_recipe_is_deterministic(tmp_path):
    """The same recipe writes the same weights twice (a miniature of `driftless pretrain-tiny`,
    whose full run reproduced the shipped weights bit for bit: docs/embedded.md)."""
    from safetensors.torch import load_file

    from driftless.pretrain.tiny_clip import TinyClipRecipe, pretrain_tiny_clip

    recipe = TinyClipRecipe(corpus_size=256, steps=4, batch_size=32, eval_every=4, processes=1,
                            vision_layers=1, text_layers=1, vision_width=32, text_width=32,
                            embed_dim=32, heads=2)  # fmt: skip
    logs = [pretrain_tiny_clip(recipe, tmp_path / name, progress=False) for name in ("a", "b")]
    assert logs[0]["loss"] == logs[1]["loss"] and len(logs[0]["loss"]) == 4
    first, second = (load_file(tmp_path / name / "model.safetensors") for name in ("a", "b"))
    assert first.keys() == second.keys()
    for key in first:
        assert torch.equal(first[key], second[key]), key
    assert set(logs[0]["final_probes"]) == {"seen combos", "held-out combos", "glyphs", "textures"}
