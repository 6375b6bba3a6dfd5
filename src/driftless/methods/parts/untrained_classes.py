"""Scoring a label space that holds classes a head was never trained on.

Closed-form heads (LDA, ridge, Mahalanobis) only have scores for classes they have absorbed. For the
others — future classes in CI-Transfer cells, datasets not yet learned in MTIL, every class before the
first task — the heads fall back on zero-shot CLIP: ``logit_scale · cos(f(x), t_c)`` with the class's
text embedding t_c, as ``ncm`` does (``unseen = "text"``), or refuse (``unseen = "error"``).

A head's scores and zero-shot cosines are on unrelated scales (a ridge output near 1, a negative
Mahalanobis distance, 100·cos near 25), so the argmax over a label space that mixes both kinds says
nothing about the image. ``mixing`` decides what such a label space does:

- ``trained-first`` (default): the zero-shot scores of untrained classes are shifted, per sample,
  below the lowest trained score, keeping their order among themselves. A mixed label space then
  always predicts a trained class; a label space of untrained classes only is exactly zero-shot.
- ``raw``: the two kinds of score are put side by side as they are (what ``ncm`` does; useful
  only to look at the scale mismatch).

:class:`GaussianStatsHead` does this, and saving and restoring, for the heads whose whole state is a
:class:`~driftless.methods.parts.gaussian_stats.GaussianClassStats` (LDA, FeCAM).
"""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from typing import Any, Literal, TypeVar

import torch

from driftless.errors import ConfigError
from driftless.methods.base import Context, LabelSpace, MethodBase, MethodConfig
from driftless.methods.parts.gaussian_stats import GaussianClassStats
from driftless.methods.parts.text_classifier import cosine_logits

Unseen = Literal["text", "error"]
Mixing = Literal["trained-first", "raw"]


class UntrainedClassesConfig(MethodConfig):
    """Config fields of every head that scores untrained classes through :func:`score_label_space`."""

    unseen: Unseen = "text"
    """How to score classes never trained on: zero-shot text embeddings, or raise."""

    mixing: Mixing = "trained-first"
    """In label spaces mixing trained and untrained classes: rank untrained ones below, or raw."""


def score_label_space(
    method: str,
    batch: torch.Tensor,
    label_space: LabelSpace,
    ctx: Context,
    trained: Container[int],
    score_trained: Callable[[Sequence[int]], torch.Tensor],
    unseen: Unseen = "text",
    mixing: Mixing = "trained-first",
) -> torch.Tensor:
    """(B, len(label_space)) float32 scores: ``score_trained(class_ids)`` (B, n) for the classes in
    ``trained``, zero-shot logits for the others, combined as ``mixing`` says. ``method`` names the
    method in the error that ``unseen = "error"`` raises."""
    positions = range(len(label_space))
    known = [i for i in positions if label_space.class_ids[i] in trained]
    unknown = [i for i in positions if label_space.class_ids[i] not in trained]
    if unknown and unseen == "error":
        names = [label_space.names[i] for i in unknown[:5]]
        raise ConfigError(f"{method}.unseen=error: the head was never trained on classes {names}")
    scores = torch.empty(len(batch), len(label_space), dtype=torch.float32, device=batch.device)
    known_scores = None
    if known:
        known_scores = score_trained([label_space.class_ids[i] for i in known])
        known_scores = known_scores.to(device=batch.device, dtype=torch.float32)
        scores[:, known] = known_scores
    if unknown:
        texts = ctx.text_embeddings(label_space)[unknown].to(batch.device)
        zero_shot = cosine_logits(batch, texts, ctx.backbone.logit_scale)
        if known_scores is not None and mixing == "trained-first":
            gap = zero_shot.max(dim=1).values - known_scores.min(dim=1).values + 1.0
            zero_shot = zero_shot - gap[:, None]
        scores[:, unknown] = zero_shot
    return scores


UntrainedConfigT = TypeVar("UntrainedConfigT", bound=UntrainedClassesConfig)


class GaussianStatsHead(MethodBase[UntrainedConfigT]):
    """Base of the heads whose whole state is a :class:`GaussianClassStats` of the training features
    (LDA, FeCAM): the trained classes are the classes in the statistics, scored by
    :meth:`score_trained`; the others go through :func:`score_label_space` as the config's
    ``unseen`` and ``mixing`` say. Only the sums are saved: whatever a subclass computes from them
    it drops in :meth:`forget_derived`, so that it is recomputed from restored sums."""

    stats_: GaussianClassStats

    def score_trained(self, batch: torch.Tensor, class_ids: Sequence[int]) -> torch.Tensor:
        """(B, len(class_ids)) scores of a batch for trained classes."""
        raise NotImplementedError

    def forget_derived(self) -> None:
        """Drop every value computed from the sums."""
        raise NotImplementedError

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """:meth:`score_trained` for trained classes; zero-shot logits for the others."""
        return score_label_space(
            self.name, batch, label_space, ctx, self.stats_,
            lambda class_ids: self.score_trained(batch, class_ids),
            self.config.unseen, self.config.mixing,
        )  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """The running sums."""
        return {"stats": self.stats_.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the running sums."""
        self.stats_.load_state_dict(state["stats"])
        self.forget_derived()
