"""Training the text tower with the image tower: ZSCL fine-tunes both CLIP encoders on MTIL.

:class:`ImageTextEncoder` is an :class:`ImageEncoder` (so :func:`train_loop` trains it unchanged:
its forward is still pixels → image embeddings) that also owns a copy of the text tower and its
projection; ``train_text`` says whether they train. :class:`OwnTextTower` lets the usual
:class:`TextEmbeddingCache` build template-averaged class embeddings with that copy."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from driftless.backbones.base import Backbone
from driftless.methods.parts.image_training import ImageEncoder


class ImageTextEncoder(ImageEncoder):
    """Copies of both CLIP towers and projections; forward encodes images."""

    def __init__(
        self,
        vision: nn.Module,
        projection: nn.Module,
        text: nn.Module,
        text_projection: nn.Module,
        train_text: bool = True,
    ):
        super().__init__(vision, projection)
        self.text = text
        self.text_projection = text_projection
        self.train_text = train_text

    @classmethod
    def from_backbone_towers(cls, backbone: Backbone, train_text: bool) -> ImageTextEncoder:
        """Deep copies of the backbone's two towers (the backbone is untouched)."""
        image = ImageEncoder.from_backbone(backbone)
        model = backbone.model
        with torch.inference_mode(False):
            text = copy.deepcopy(model.text_model)
            text_projection = copy.deepcopy(model.text_projection)
        return cls(image.vision, image.projection, text, text_projection, train_text)

    def encode_tokens(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token ids and mask → unnormalized text embeddings (with grad when training)."""
        pooled = self.text(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
        ).pooler_output
        return self.text_projection(pooled)

    def select_trainable(self, last_blocks: int | None) -> list[nn.Parameter]:
        """The image parameters :class:`ImageEncoder` chooses, plus the whole text tower and its
        projection when ``train_text``."""
        super().select_trainable(last_blocks)
        self.text.requires_grad_(self.train_text)
        self.text_projection.requires_grad_(self.train_text)
        return [p for p in self.parameters() if p.requires_grad]


class OwnTextTower:
    """The two things :class:`TextEmbeddingCache` asks of a backbone (``encode_texts``,
    ``device``), answered by an :class:`ImageTextEncoder`'s text tower and the backbone's
    tokenizer."""

    def __init__(self, encoder: ImageTextEncoder, backbone: Backbone):
        self.encoder, self.backbone = encoder, backbone

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        self.encoder.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(texts), batch_size):
                out.append(
                    self.encoder.encode_tokens(
                        self.backbone.tokenize(texts[start : start + batch_size])
                    )
                )
        return torch.cat(out)
