"""Backbones: loading CLIP-like models, their preprocessing, encoders and fingerprints.

Names are imported on first use (PEP 562): ``driftless list backbones`` reads the registry without
importing transformers and torch.
"""

from __future__ import annotations

from driftless.lazy import lazy_exports

_WHERE = {
    "Backbone": "base",
    "CLIPBackbone": "clip",
    "char_tokenizer": "clip",
    "load_clip_pretrained": "clip",
    "tiny_random_clip": "clip",
    "CLIP_MEAN": "preprocess",
    "CLIP_STD": "preprocess",
    "ImagePreprocess": "preprocess",
    "BUILTIN_BACKBONES": "registry",
    "load_backbone": "registry",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_exports(__name__, _WHERE)
