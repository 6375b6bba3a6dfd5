"""The interface every backbone offers to the feature store, the engine and the methods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import nn

from driftless.backbones.preprocess import ImagePreprocess


class Backbone(Protocol):
    """A vision-language model with a shared embedding space.

    ``encode_images`` and ``encode_texts`` return *unnormalized* embeddings of size ``embed_dim``;
    cosine logits are ``logit_scale * cos``. ``fingerprint`` identifies architecture + weights
    and keys the feature store.
    """

    name: str
    preprocess: ImagePreprocess
    model: nn.Module

    @property
    def embed_dim(self) -> int:
        """Size of the shared embedding space."""

    @property
    def logit_scale(self) -> float:
        """Multiplier of cosine similarities in logits."""

    @property
    def fingerprint(self) -> str:
        """sha256 of architecture and weights."""

    @property
    def device(self) -> torch.device:
        """Where the weights are."""

    def to(self, device: torch.device | str) -> Backbone:
        """Move the model; returns self."""

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Texts → token ids and attention mask."""

    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Preprocessed pixels (B, 3, H, W) → unnormalized embeddings (B, D)."""

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        """Texts → unnormalized embeddings (N, D)."""
