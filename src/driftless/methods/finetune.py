"""Sequential fine-tuning of the image encoder against the frozen text classifier: the usual
forgetting reference ("Continual-FT" in Zheng et al., "Preventing zero-shot transfer degradation in
continual learning of vision-language models", ICCV 2023 — ZSCL).

Algorithm, task after task: logits = logit_scale · cos(f_θ(x), t_c) with t_c the frozen,
template-averaged text embedding of class c; minimize the cross-entropy over the task's classes or
over every class seen so far (``loss_classes``), updating only the image encoder θ (vision tower +
visual projection). θ carries over from one task to the next; nothing protects old classes.

Our choices: the text tower and the logit scale stay frozen (ZSCL's MTIL runs train both towers);
the method trains its own copy of the image encoder, never the run's shared backbone; each task gets
a fresh optimizer and schedule, so the encoder's weights are the whole state between tasks.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import torch
import torch.nn.functional as F

from driftless.methods.base import Context, LabelSpace, MethodBase, TaskData
from driftless.methods.parts.image_training import (
    ImageEncoder,
    ImageTrainingConfig,
    LossFn,
    train_loop,
)
from driftless.methods.parts.text_classifier import cosine_logits
from driftless.methods.registry import register_method


class FinetuneConfig(ImageTrainingConfig):
    """Hyper-parameters of :class:`Finetune` (training fields: :class:`ImageTrainingConfig`)."""

    loss_classes: Literal["seen", "task"] = "seen"
    """Cross-entropy over every class seen so far ("seen") or over the current task's ("task")."""


TrainingConfigT = TypeVar("TrainingConfigT", bound=ImageTrainingConfig)
FinetuneConfigT = TypeVar("FinetuneConfigT", bound=FinetuneConfig)


class ImageFinetuning(MethodBase[TrainingConfigT]):
    """What every method that fine-tunes a copy of the image encoder shares: the copy, training it
    on each task with :meth:`task_loss` (which a subclass writes), scoring against the frozen text
    classifier and the state (the copy's weights). Not registered."""

    inputs = "images"

    def __init__(self, config: TrainingConfigT | None = None):
        super().__init__(config)
        self.encoder_: ImageEncoder | None = None
        self._weights_to_load: dict[str, torch.Tensor] | None = None

    def encoder(self, ctx: Context) -> ImageEncoder:
        """The method's image encoder: a copy of the backbone's, made on first use (with the
        weights of a loaded state, if any)."""
        if self.encoder_ is None:
            self.encoder_ = ImageEncoder.from_backbone(ctx.backbone)
        if self._weights_to_load is not None:
            self.encoder_.load_state_dict(self._weights_to_load)
            self._weights_to_load = None
        return self.encoder_

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Fine-tune the encoder on the task's images with :meth:`task_loss`."""
        assert data.images is not None
        encoder = self.encoder(ctx)
        loss = self.task_loss(data, ctx)
        train_loop(encoder, data.images, loss, self.config, ctx, f"{self.name} {data.task.name}")

    def task_loss(self, data: TaskData, ctx: Context) -> LossFn:
        """The loss :meth:`learn` minimizes on the task's images."""
        raise NotImplementedError

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """``logit_scale · cos`` between the current encoder's embeddings and the class texts."""
        embeddings = self.encoder(ctx).encode(batch.to(ctx.device))
        return cosine_logits(embeddings, ctx.text_embeddings(label_space), ctx.backbone.logit_scale)

    def state_dict(self) -> dict[str, Any]:
        """The encoder's weights (empty before the first task: the backbone's are the state)."""
        if self.encoder_ is None:
            return {"encoder": dict(self._weights_to_load or {})}
        return {
            "encoder": {k: v.detach().cpu().clone() for k, v in self.encoder_.state_dict().items()}
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the encoder's weights (applied when the encoder is first needed)."""
        weights = dict(state["encoder"])
        if not weights:
            self.encoder_, self._weights_to_load = None, None
        elif self.encoder_ is not None:
            self.encoder_.load_state_dict(weights)
        else:
            self._weights_to_load = weights


@register_method
class Finetune(ImageFinetuning[FinetuneConfigT]):
    """Fine-tune a copy of the image encoder on each task in turn, text classifier frozen."""

    name = "finetune"
    Config = FinetuneConfig

    def task_loss(self, data: TaskData, ctx: Context) -> LossFn:
        """The task's loss: cross-entropy of the cosine logits over ``loss_classes``."""
        classes = data.seen_label_space if self.config.loss_classes == "seen" else data.label_space
        classifier = ctx.text_embeddings(classes)
        targets = classes.position_table(ctx.device)
        scale = ctx.backbone.logit_scale

        def cross_entropy(
            embeddings: torch.Tensor, pixels: torch.Tensor, labels: torch.Tensor
        ) -> torch.Tensor:
            logits = cosine_logits(embeddings, classifier, scale)
            return F.cross_entropy(
                logits, targets(labels), label_smoothing=self.config.label_smoothing
            )

        return cross_entropy
