"""Nearest class mean on frozen features (SimpleCIL; Zhou et al., "Revisiting class-incremental
learning with pre-trained models: generalizability and adaptivity are all you need", IJCV 2024).

Algorithm: after each task, the prototype of every new class is the mean of its training images'
frozen embeddings, p_c = mean f(x); predict argmax_c cos(f(x), p_c). Prototypes are exact running
means, so the result does not depend on batching or order.

Our choice where the paper is silent: classes without a prototype (never trained on: future
classes in CI-Transfer, other datasets in MTIL) are scored with their text embedding, as zero-shot
CLIP would (``unseen = "text"``); ``unseen = "error"`` refuses instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from driftless.methods.base import Context, LabelSpace, MethodBase, TaskData
from driftless.methods.parts.class_stats import RunningClassMeans
from driftless.methods.parts.text_classifier import cosine_logits
from driftless.methods.parts.untrained_classes import (
    Mixing,
    UntrainedClassesConfig,
    score_label_space,
)
from driftless.methods.registry import register_method


class NCMConfig(UntrainedClassesConfig):
    """Hyper-parameters of :class:`NCM`: how classes without a prototype are scored."""

    mixing: Mixing = "raw"
    """Prototype and text cosines share a scale, so by default they sit side by side ("raw")."""


@register_method
class NCM(MethodBase[NCMConfig]):
    """Nearest class mean (SimpleCIL): cosine to per-class mean frozen image embeddings."""

    name = "ncm"
    inputs = "features"
    Config = NCMConfig

    def __init__(self, config: NCMConfig | None = None):
        super().__init__(config)
        self.class_means_ = RunningClassMeans()

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Add the task's features to the running class sums."""
        assert data.features is not None
        self.class_means_.update(data.features, data.labels)

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """``logit_scale · cos`` to class means (text embeddings for classes without one)."""

        def to_prototypes(class_ids: Sequence[int]) -> torch.Tensor:
            prototypes = self.class_means_.means(class_ids).to(batch.device)
            return cosine_logits(batch, prototypes, ctx.backbone.logit_scale)

        return score_label_space(
            self.name, batch, label_space, ctx, self.class_means_, to_prototypes,
            self.config.unseen, self.config.mixing,
        )  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """Class sums and counts."""
        return {"class_means": self.class_means_.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore class sums and counts."""
        self.class_means_.load_state_dict(state["class_means"])
