"""Learning without Forgetting (Li & Hoiem, "Learning without forgetting", TPAMI 2017), as the
image-encoder baseline of ZSCL (Zheng et al., ICCV 2023).

Algorithm: :mod:`finetune`, plus — from the second task on — a distillation term on the current
task's images: the model as it was when the task began (a frozen copy) scores the previously seen
classes, and the model being trained is pulled toward those scores,
loss = CE + λ · T² · KL(softmax(z_old / T) ‖ softmax(z / T)), T = 2.

Our choices: the old classes' "heads" are their frozen text embeddings, so the distilled logits are
the cosine logits over every class seen before the task; the copy is taken at the start of each task
from the current weights, so it needs no state of its own.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from driftless.methods.base import Context, TaskData
from driftless.methods.finetune import Finetune, FinetuneConfig
from driftless.methods.parts.image_training import LossFn
from driftless.methods.parts.losses import distillation_loss
from driftless.methods.parts.text_classifier import cosine_logits
from driftless.methods.registry import register_method


class LwFConfig(FinetuneConfig):
    """Hyper-parameters of :class:`LwF` (and every field of :class:`FinetuneConfig`)."""

    loss_classes: Literal["seen", "task"] = "task"
    """Cross-entropy over the current task's classes ("task", as in Li & Hoiem: the new task's
    head learns from its own classes, old classes are only distilled) or every class seen."""
    distill_weight: float = Field(default=1.0, ge=0)
    """λ, the weight of the distillation term (Li & Hoiem: 1)."""
    temperature: float = Field(default=2.0, gt=0)
    """T, the distillation temperature (Li & Hoiem, ZSCL: 2)."""


@register_method
class LwF(Finetune[LwFConfig]):
    """Fine-tuning plus distillation of the previous model's logits on the old classes."""

    name = "lwf"
    Config = LwFConfig

    def task_loss(self, data: TaskData, ctx: Context) -> LossFn:
        """Cross-entropy, plus distillation toward the task's starting model on old classes."""
        cross_entropy = super().task_loss(data, ctx)
        old = data.seen_label_space.subspace(
            set(data.seen_label_space.class_ids) - set(data.task.class_ids)
        )
        if not len(old):
            return cross_entropy
        previous = self.encoder(ctx).frozen_copy()
        old_classifier, scale = ctx.text_embeddings(old), ctx.backbone.logit_scale
        weight, temperature = self.config.distill_weight, self.config.temperature

        def with_distillation(
            embeddings: torch.Tensor, pixels: torch.Tensor, labels: torch.Tensor
        ) -> torch.Tensor:
            with torch.no_grad():
                targets = cosine_logits(previous(pixels), old_classifier, scale)
            current = cosine_logits(embeddings, old_classifier, scale)
            distillation = distillation_loss(current, targets, temperature)
            return cross_entropy(embeddings, pixels, labels) + weight * distillation

        return with_distillation
