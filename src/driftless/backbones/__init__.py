"""Backbones: loading CLIP-like models, their preprocessing, encoders and fingerprints."""

from driftless.backbones.base import Backbone
from driftless.backbones.clip import (
    CLIPBackbone,
    char_tokenizer,
    load_clip_pretrained,
    tiny_random_clip,
)
from driftless.backbones.preprocess import CLIP_MEAN, CLIP_STD, ImagePreprocess
from driftless.backbones.registry import BUILTIN_BACKBONES, load_backbone

__all__ = [
    "BUILTIN_BACKBONES",
    "CLIP_MEAN",
    "CLIP_STD",
    "Backbone",
    "CLIPBackbone",
    "ImagePreprocess",
    "char_tokenizer",
    "load_backbone",
    "load_clip_pretrained",
    "tiny_random_clip",
]
