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

from typing import Any, ClassVar, Literal

import torch

from driftless.errors import ConfigError
from driftless.methods.base import Context, LabelSpace, MethodConfig, TaskData
from driftless.methods.parts.class_stats import RunningClassMeans
from driftless.methods.parts.text_classifier import cosine_logits
from driftless.methods.registry import register_method


class NCMConfig(MethodConfig):
    """Hyper-parameters of :class:`NCM`."""

    unseen: Literal["text", "error"] = "text"
    """How to score classes that have no prototype: their text embedding, or raise."""


@register_method
class NCM:
    """Nearest class mean (SimpleCIL): cosine to per-class mean frozen image embeddings."""

    name: ClassVar[str] = "ncm"
    inputs: ClassVar[str] = "features"
    Config: ClassVar[type[MethodConfig]] = NCMConfig

    def __init__(self, config: NCMConfig | None = None):
        self.config = config or NCMConfig()
        self.class_means_ = RunningClassMeans()

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Add the task's features to the running class sums."""
        assert data.features is not None
        self.class_means_.update(data.features, data.labels)

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """``logit_scale · cos`` to class means (text embeddings for classes without one)."""
        has_prototype = [c in self.class_means_ for c in label_space.class_ids]
        if not all(has_prototype) and self.config.unseen == "error":
            missing = [n for n, ok in zip(label_space.names, has_prototype, strict=True) if not ok]
            raise ConfigError(f"ncm.unseen=error: no prototype for classes {missing[:5]}")
        prototypes = torch.zeros(len(label_space), batch.shape[1], device=batch.device)
        seen = [i for i, ok in enumerate(has_prototype) if ok]
        if seen:
            ids = [label_space.class_ids[i] for i in seen]
            prototypes[seen] = self.class_means_.means(ids).to(prototypes)
        unseen = [i for i, ok in enumerate(has_prototype) if not ok]
        if unseen:
            prototypes[unseen] = ctx.text_embeddings(label_space)[unseen].to(prototypes)
        return cosine_logits(batch, prototypes, ctx.backbone.logit_scale)

    def state_dict(self) -> dict[str, Any]:
        """Class sums and counts."""
        return {"class_means": self.class_means_.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore class sums and counts."""
        self.class_means_.load_state_dict(state["class_means"])
