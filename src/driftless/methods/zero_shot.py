"""Zero-shot CLIP (Continual-CLIP; Thengane et al., "CLIP model is an efficient continual learner",
2022): classify by the cosine between the image embedding and each class's template-averaged text
embedding. Nothing is learned; it is the reference every continual method must not fall below."""

from __future__ import annotations

from typing import Any

import torch

from driftless.methods.base import Context, LabelSpace, MethodBase, MethodConfig, TaskData
from driftless.methods.parts.text_classifier import cosine_logits
from driftless.methods.registry import register_method


class ZeroShotConfig(MethodConfig):
    """Zero-shot has no hyper-parameters: the prompts come from the benchmark's templates."""


@register_method
class ZeroShot(MethodBase[ZeroShotConfig]):
    """Zero-shot CLIP: cosine to template-averaged class text embeddings; learns nothing."""

    name = "zero-shot"
    inputs = "features"
    Config = ZeroShotConfig

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Nothing to learn."""

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """``logit_scale · cos`` to the class text embeddings."""
        return cosine_logits(batch, ctx.text_embeddings(label_space), ctx.backbone.logit_scale)

    def state_dict(self) -> dict[str, Any]:
        """Zero-shot has no state."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Zero-shot has no state."""
        pass
