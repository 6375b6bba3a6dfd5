"""The recipe that pretrains driftless's bundled tiny CLIP on the generated world.

``driftless pretrain-tiny --out DIR`` (defaults below) draws the corpus, trains the tokenizer, trains
a small ``transformers.CLIPModel`` contrastively, and writes a ``save_pretrained`` directory with the
tokenizer, the preprocessing config, the training log and its curve. Deterministic for a seed on a
given machine and thread count.

Loss: CLIP's symmetric cross-entropy, with one twist: identical captions in a batch (the corpus has a
few thousand distinct captions) are one text column, and the text→image direction spreads its target
evenly over every image of that caption, so duplicates are not pushed apart as negatives.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from driftless.backbones.clip import CLIPBackbone
from driftless.backbones.preprocess import ImagePreprocess
from driftless.data.world.concepts import (
    COLOURS,
    DIGITS,
    HELD_OUT_COMBOS,
    LETTERS,
    PRETRAIN_FONTS,
    SHAPES,
    TEXTURES,
)
from driftless.data.world.corpus import pretraining_corpus
from driftless.data.world.scenes import GlyphScene, ObjectScene, TextureScene, render
from driftless.pretrain.tokenizer import train_clip_tokenizer, write_vocab_files


@dataclass(frozen=True)
class TinyClipRecipe:
    """Hyper-parameters of the tiny CLIP's pretraining (defaults: the shipped model)."""

    seed: int = 0
    corpus_size: int = 120_000
    steps: int = 3000
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_fraction: float = 0.05
    image_size: int = 32
    patch_size: int = 8
    vision_width: int = 128
    vision_layers: int = 4
    text_width: int = 128
    text_layers: int = 2
    heads: int = 4
    embed_dim: int = 128
    vocab_size: int = 1024
    max_text_length: int = 32
    eval_every: int = 250
    processes: int = 2


def _downstream_vocabulary() -> list[str]:
    """Class names and templates of every world dataset, so the tokenizer has merges for them."""
    texts = [" ".join(COLOURS), " ".join(SHAPES), " ".join(TEXTURES), "one two three four objects"]
    texts += [f"letter {c}" for c in LETTERS] + [f"digit {d}" for d in DIGITS]
    texts += [
        "a photo of a",
        "a drawing of a",
        "a picture of",
        "shape pattern texture",
        "handwritten unusual font",
    ]
    return texts


def _model(recipe: TinyClipRecipe, tokenizer: CLIPTokenizer) -> CLIPModel:
    vocab = tokenizer.get_vocab()
    config = CLIPConfig(
        text_config={
            "vocab_size": len(vocab), "hidden_size": recipe.text_width, "intermediate_size": 4 * recipe.text_width,
            "num_hidden_layers": recipe.text_layers, "num_attention_heads": recipe.heads,
            "max_position_embeddings": recipe.max_text_length, "bos_token_id": vocab["<|startoftext|>"],
            "eos_token_id": vocab["<|endoftext|>"], "pad_token_id": vocab["<|endoftext|>"],
        },
        vision_config={
            "hidden_size": recipe.vision_width, "intermediate_size": 4 * recipe.vision_width,
            "num_hidden_layers": recipe.vision_layers, "num_attention_heads": recipe.heads,
            "image_size": recipe.image_size, "patch_size": recipe.patch_size,
        },
        projection_dim=recipe.embed_dim,
    )  # fmt: skip
    torch.manual_seed(recipe.seed)
    return CLIPModel(config)


def _validation_sets(
    seed: int, size: int
) -> dict[str, tuple[torch.Tensor, torch.Tensor, list[str], str]]:
    """Small zero-shot probes: name → (images uint8, labels, class names, template)."""
    combos = [(c, s) for s in SHAPES for c in COLOURS]
    combo_names = [f"{c} {s}" for c, s in combos]
    probes: dict[str, tuple[list, list]] = {"seen combos": ([], []), "held-out combos": ([], []), "glyphs": ([], []),
                                            "textures": ([], [])}  # fmt: skip
    for label, (colour, shape) in enumerate(combos):
        key = "held-out combos" if (colour, shape) in HELD_OUT_COMBOS else "seen combos"
        for i in range(4 if key == "seen combos" else 12):
            rng = np.random.default_rng([seed, 90, label, i])
            probes[key][0].append(
                render(ObjectScene(shape, colour, 1, "medium", "center", 0.2), rng, size)
            )
            probes[key][1].append(label)
    chars = LETTERS + DIGITS
    fonts = list(PRETRAIN_FONTS)
    for label, char in enumerate(chars):
        for i in range(6):
            rng = np.random.default_rng([seed, 91, label, i])
            probes["glyphs"][0].append(
                render(GlyphScene(char, fonts[i % len(fonts)], "white", 0.2), rng, size)
            )
            probes["glyphs"][1].append(label)
    for label, texture in enumerate(TEXTURES):
        for i in range(12):
            rng = np.random.default_rng([seed, 92, label, i])
            probes["textures"][0].append(
                render(TextureScene(texture, str(rng.choice(list(COLOURS))), 0.2), rng, size)
            )
            probes["textures"][1].append(label)
    glyph_names = [f"digit {c}" if c.isdigit() else f"letter {c}" for c in chars]
    names = {"seen combos": (combo_names, "a photo of a {}."), "held-out combos": (combo_names, "a photo of a {}."),
             "glyphs": (glyph_names, "the {}."), "textures": (list(TEXTURES), "a {} pattern.")}  # fmt: skip
    return {
        k: (torch.from_numpy(np.stack(v[0])), torch.tensor(v[1]), *names[k])
        for k, v in probes.items()
    }


def _to_pixels(images: torch.Tensor, preprocess: ImagePreprocess) -> torch.Tensor:
    """uint8 (B, H, W, 3) at the model's resolution → normalized float (B, 3, H, W)."""
    x = images.permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(preprocess.mean).view(1, 3, 1, 1)
    std = torch.tensor(preprocess.std).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.inference_mode()
def zero_shot_probe(backbone: CLIPBackbone, probes: dict) -> dict[str, float]:
    """Zero-shot top-1 (percent) on each probe."""
    out = {}
    for name, (images, labels, classes, template) in probes.items():
        text = F.normalize(backbone.encode_texts([template.format(c) for c in classes]), dim=-1)
        feats = F.normalize(backbone.encode_images(_to_pixels(images, backbone.preprocess)), dim=-1)
        out[name] = 100.0 * float(((feats @ text.T).argmax(1) == labels).float().mean())
    return out


def _lr(step: int, recipe: TinyClipRecipe) -> float:
    warmup = max(1, int(recipe.warmup_fraction * recipe.steps))
    if step < warmup:
        return recipe.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, recipe.steps - warmup)
    return recipe.lr * 0.5 * (1 + math.cos(math.pi * progress))


def pretrain_tiny_clip(recipe: TinyClipRecipe, out: Path, progress: bool = True) -> dict:
    """Run the recipe and write the model directory ``out``; returns the training log."""
    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = pretraining_corpus(
        recipe.corpus_size, recipe.seed, recipe.image_size, recipe.processes, progress
    )
    corpus_seconds = time.perf_counter() - started
    tokenizer = train_clip_tokenizer(corpus.captions + _downstream_vocabulary(), recipe.vocab_size,
                                     recipe.max_text_length)  # fmt: skip
    unique, caption_index = np.unique(np.asarray(corpus.captions), return_inverse=True)
    tokens = tokenizer(list(unique), padding="max_length", truncation=True, max_length=recipe.max_text_length,
                       return_tensors="pt")  # fmt: skip
    width = int(tokens["attention_mask"].sum(1).max())  # trim the padding no caption uses
    input_ids, attention = tokens["input_ids"][:, :width], tokens["attention_mask"][:, :width]
    caption_index = torch.from_numpy(caption_index)
    pixels_u8 = torch.from_numpy(corpus.pixels)
    del corpus

    model = _model(recipe, tokenizer)
    preprocess = ImagePreprocess(recipe.image_size, recipe.image_size)
    backbone = CLIPBackbone(model, tokenizer, preprocess, "tiny-clip")
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [
        p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)
    ]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr)  # fmt: skip
    probes = _validation_sets(recipe.seed + 1, recipe.image_size)
    generator = torch.Generator().manual_seed(recipe.seed)
    order = torch.randperm(len(pixels_u8), generator=generator)
    cursor = 0
    log: dict = {"recipe": asdict(recipe), "steps": [], "loss": [], "probe_steps": [], "probes": []}
    bar = tqdm(range(recipe.steps), desc="pretrain tiny CLIP", unit="step", disable=not progress)
    running = None
    train_started = time.perf_counter()
    for step in bar:
        if cursor + recipe.batch_size > len(order):
            order, cursor = torch.randperm(len(pixels_u8), generator=generator), 0
        batch = order[cursor : cursor + recipe.batch_size]
        cursor += recipe.batch_size
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, recipe)
        model.train()
        captions = caption_index[batch]
        unique_caps, column = torch.unique(captions, return_inverse=True)
        image = F.normalize(
            backbone.encode_images(_to_pixels(pixels_u8[batch], preprocess)), dim=-1
        )
        text = F.normalize(
            backbone.encode_token_ids(input_ids[unique_caps], attention[unique_caps]), dim=-1
        )
        scale = model.logit_scale.exp().clamp(max=100)
        logits = scale * image @ text.T  # (B, U)
        loss_image = F.cross_entropy(logits, column)
        same = (column[None, :] == torch.arange(len(unique_caps))[:, None]).float()  # (U, B)
        loss_text = (
            -(same / same.sum(1, keepdim=True) * F.log_softmax(logits.T, dim=1)).sum(1).mean()
        )
        loss = 0.5 * (loss_image + loss_text)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        value = loss.item()
        running = value if running is None else 0.98 * running + 0.02 * value
        log["steps"].append(step)
        log["loss"].append(value)
        if (step + 1) % recipe.eval_every == 0 or step + 1 == recipe.steps:
            model.eval()
            scores = zero_shot_probe(backbone, probes)
            log["probe_steps"].append(step + 1)
            log["probes"].append(scores)
            bar.set_postfix(
                loss=f"{running:.3f}", **{k.split()[0]: f"{v:.0f}" for k, v in scores.items()}
            )
    model.eval()
    log["train_seconds"] = time.perf_counter() - train_started
    log["corpus_seconds"] = corpus_seconds
    log["total_seconds"] = time.perf_counter() - started
    log["pairs_per_second"] = recipe.steps * recipe.batch_size / log["train_seconds"]
    log["final_probes"] = log["probes"][-1]
    backbone.save_pretrained(out)
    write_vocab_files(out)
    (out / "training_log.json").write_text(json.dumps(log, indent=1))
    plot_training_curve(log, out / "training_curve.png")
    return log


def plot_training_curve(log: dict, path: Path) -> None:
    """Loss (smoothed) and the zero-shot probes over steps, as a PNG."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=110)
    loss = np.asarray(log["loss"])
    kernel = np.ones(25) / 25
    left.plot(log["steps"], loss, alpha=0.25, color="tab:blue")
    if len(loss) > 25:
        left.plot(log["steps"][24:], np.convolve(loss, kernel, mode="valid"), color="tab:blue")
    left.set_xlabel("step")
    left.set_ylabel("contrastive loss")
    left.grid(alpha=0.3)
    for name in log["probes"][0]:
        right.plot(log["probe_steps"], [p[name] for p in log["probes"]], marker="o", label=name)
    right.set_xlabel("step")
    right.set_ylabel("zero-shot top-1 (%)")
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    fig.suptitle("tiny CLIP pretraining on the generated world")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


__all__ = ["TinyClipRecipe", "plot_training_curve", "pretrain_tiny_clip", "zero_shot_probe"]
