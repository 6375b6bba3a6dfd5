"""Backbones by name: built-in models, local directories and Hugging Face ids.

transformers is imported when a model is loaded, not with this module (``driftless list`` stays
fast)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from driftless.errors import MissingModelError

if TYPE_CHECKING:
    from driftless.backbones.clip import CLIPBackbone

#: where the bundled tiny CLIP lives inside the package
TINY_CLIP_DIR = Path(__file__).parent / "assets" / "tiny-clip"


def _check_tiny_clip() -> None:
    if not (TINY_CLIP_DIR / "model.safetensors").is_file():
        raise MissingModelError(
            f"the bundled tiny CLIP is missing from this installation: expected {TINY_CLIP_DIR}/"
            f"model.safetensors. Rebuild it with `driftless pretrain-tiny --out {TINY_CLIP_DIR}` "
            "(about 20 minutes on 2 CPU cores)."
        )


def load_tiny_clip() -> CLIPBackbone:
    """The bundled tiny CLIP pretrained on the generated world (``driftless pretrain-tiny``)."""
    _check_tiny_clip()
    from driftless.backbones.clip import load_clip_pretrained

    backbone = load_clip_pretrained(str(TINY_CLIP_DIR))
    backbone.name = "tiny-clip"
    return backbone


def _tiny_random() -> CLIPBackbone:
    from driftless.backbones.clip import tiny_random_clip

    return tiny_random_clip(seed=0)


#: name → (description, factory). Anything else is a local directory or a Hugging Face id.
BUILTIN_BACKBONES: dict[str, tuple[str, Callable[[], CLIPBackbone]]] = {
    "tiny-clip": (
        "the bundled 1.3 M-parameter CLIP (ViT 4 layers, width 128, patch 8, 32 px; text 2 layers) "
        "pretrained on the generated world; see docs/embedded.md",
        load_tiny_clip,
    ),
    "tiny-random": (
        "randomly initialised 2-layer CLIP (width 64, patch 8, 32 px) with a character tokenizer; "
        "for tests and smoke runs",
        _tiny_random,
    ),
}


def load_backbone(spec: str, allow_download: bool = False) -> CLIPBackbone:
    """``tiny-random`` (and other built-ins), a ``save_pretrained`` directory, or a Hugging Face id
    already in the local cache (``openai/clip-vit-base-patch16``)."""
    from driftless.backbones.clip import load_clip_pretrained

    if spec in BUILTIN_BACKBONES:
        return BUILTIN_BACKBONES[spec][1]()
    return load_clip_pretrained(spec, allow_download=allow_download)


def locate_backbone(spec: str, allow_download: bool = False) -> str:
    """Where :func:`load_backbone` would load ``spec`` from, in words, without loading it (nor
    importing transformers for a built-in); MissingModelError when it cannot be found."""
    if spec == "tiny-clip":
        _check_tiny_clip()
    if spec in BUILTIN_BACKBONES:
        return f"built-in {spec}"
    from driftless.backbones.clip import local_model_directory, missing_model_message

    directory = local_model_directory(spec)
    if directory is not None:
        return f"directory {directory}"
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(spec, "config.json")
    if isinstance(cached, str):
        return f"Hugging Face cache ({Path(cached).parent})"
    if allow_download:
        return "Hugging Face Hub (will be downloaded: --download is set)"
    raise MissingModelError(missing_model_message(spec))
