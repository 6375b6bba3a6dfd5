"""TEEN: training-free prototype calibration for few-shot class-incremental learning (Wang, Zhou,
Zhang, Zhan and Ye, "Few-shot class-incremental learning via training-free prototype calibration",
NeurIPS 2023, arXiv 2312.05229).

The paper's observation: a new class's prototype, the mean of a few shots, sits where the
embedding (trained on the base classes) maps it badly, and new-class test images are mostly
misclassified as *similar base classes*. Its remedy costs nothing: pull each new prototype toward
the base prototypes it resembles.

Algorithm (on frozen features; the base session is the first task):

1. Prototypes: p_c = mean f(x) over class c's training images, as NCM/SimpleCIL.
2. For a class c that is not a base class, with normalized prototypes p̂:
   w_b = softmax_b( τ · cos(p̂_c, p̂_b) ) over the base classes b,
   Δ_c = normalize( Σ_b w_b p̂_b ),
   p*_c = (1 − α) · p̂_c + α · Δ_c.
   Base classes keep p̂_b.
3. Predict argmax_c cos(f(x), p*_c).

Defaults are the paper's: τ = 16 for every dataset; α = 0.5 (its default, used on miniImageNet and
CUB-200; CIFAR-100 uses 0.1). The calibration is computed from the current class means whenever
the method scores, so it is exact and independent of batching; in FSCIL each new class is calibrated
against the base prototypes, as in the paper. With no class outside the base session (domain-
incremental benchmarks), TEEN is NCM.

As for ``ncm``: classes without a prototype are scored with their text embedding (``unseen = "text"``)
or refused (``unseen = "error"``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import Field

from driftless.methods.base import Context, LabelSpace, MethodBase, MethodConfig, TaskData
from driftless.methods.parts.class_stats import RunningClassMeans
from driftless.methods.parts.text_classifier import cosine_logits
from driftless.methods.parts.untrained_classes import Unseen, score_label_space
from driftless.methods.registry import register_method


class TEENConfig(MethodConfig):
    """Hyper-parameters of :class:`TEEN` (the paper's defaults)."""

    temperature: float = Field(default=16.0, gt=0)
    """τ, the softmax temperature over cosine similarities to the base prototypes."""

    shift_weight: float = Field(default=0.5, ge=0, le=1)
    """α, the weight of the base-prototype mixture in a calibrated new prototype (0 = NCM)."""

    unseen: Unseen = "text"
    """How to score classes that have no prototype: their text embedding, or raise."""


def calibrate_prototypes(
    new: torch.Tensor, base: torch.Tensor, temperature: float, shift_weight: float
) -> torch.Tensor:
    """TEEN's calibration: (N, D) new prototypes moved toward the softmax(τ·cos)-weighted mean of
    the (B, D) base prototypes. Inputs need not be normalized; outputs are not renormalized."""
    new_unit, base_unit = F.normalize(new, dim=-1), F.normalize(base, dim=-1)
    weights = torch.softmax(temperature * new_unit @ base_unit.T, dim=-1)
    delta = F.normalize(weights @ base_unit, dim=-1)
    return (1 - shift_weight) * new_unit + shift_weight * delta


@register_method
class TEEN(MethodBase[TEENConfig]):
    """TEEN: NCM whose new-class prototypes are calibrated toward similar base-class prototypes."""

    name = "teen"
    inputs = "features"
    Config = TEENConfig

    def __init__(self, config: TEENConfig | None = None):
        super().__init__(config)
        self.class_means_ = RunningClassMeans()
        self.base_classes_: list[int] = []

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Add the task's features to the class sums; the first task's classes are the base."""
        assert data.features is not None
        if not self.base_classes_:
            self.base_classes_ = [int(c) for c in data.task.class_ids]
        self.class_means_.update(data.features, data.labels)

    def prototypes(self, class_ids: Sequence[int]) -> torch.Tensor:
        """(C, D) prototypes: normalized means for base classes, calibrated ones for the others."""
        result = F.normalize(self.class_means_.means(class_ids), dim=-1)
        base_set = set(self.base_classes_)
        novel = [i for i, c in enumerate(class_ids) if c not in base_set]
        if novel and self.base_classes_:
            result[novel] = calibrate_prototypes(
                result[novel],
                self.class_means_.means(self.base_classes_),
                self.config.temperature,
                self.config.shift_weight,
            )
        return result

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """``logit_scale · cos`` to the (calibrated) prototypes; text embeddings for classes
        without one."""

        def to_prototypes(class_ids: Sequence[int]) -> torch.Tensor:
            prototypes = self.prototypes(class_ids).to(batch.device)
            return cosine_logits(batch, prototypes, ctx.backbone.logit_scale)

        return score_label_space(
            self.name,
            batch,
            label_space,
            ctx,
            self.class_means_,
            to_prototypes,
            self.config.unseen,
            mixing="raw",
        )

    def state_dict(self) -> dict[str, Any]:
        """Class sums and counts, and the base classes."""
        return {
            "class_means": self.class_means_.state_dict(),
            "base_classes": torch.tensor(self.base_classes_, dtype=torch.long),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore class sums and counts, and the base classes."""
        self.class_means_.load_state_dict(state["class_means"])
        self.base_classes_ = [int(c) for c in state["base_classes"].tolist()]
