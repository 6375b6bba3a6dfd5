"""Backbones by name: built-in models, local directories and Hugging Face ids."""

from __future__ import annotations

from collections.abc import Callable

from driftless.backbones.clip import CLIPBackbone, load_clip_pretrained, tiny_random_clip

#: name → (description, factory). Anything else is a local directory or a Hugging Face id.
BUILTIN_BACKBONES: dict[str, tuple[str, Callable[[], CLIPBackbone]]] = {
    "tiny-random": (
        "randomly initialised 2-layer CLIP (width 64, patch 8, 32 px) with a character tokenizer; "
        "for tests and smoke runs",
        lambda: tiny_random_clip(seed=0),
    ),
}


def load_backbone(spec: str, allow_download: bool = False) -> CLIPBackbone:
    """``tiny-random`` (and other built-ins), a ``save_pretrained`` directory, or a Hugging Face id
    already in the local cache (``openai/clip-vit-base-patch16``)."""
    if spec in BUILTIN_BACKBONES:
        return BUILTIN_BACKBONES[spec][1]()
    return load_clip_pretrained(spec, allow_download=allow_download)
