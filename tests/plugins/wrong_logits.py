"""A user's method that breaks the logits contract (``--import`` it): ``one-short`` scores one
class too few, ``nan-scores`` returns NaN for every class. The engine must refuse both."""

from __future__ import annotations

from typing import ClassVar

import torch

from driftless.methods.base import Context, LabelSpace
from driftless.methods.ncm import NCM
from driftless.methods.registry import register_method


@register_method
class OneShort(NCM):
    """NCM whose logits drop the last class of the label space."""

    name: ClassVar[str] = "one-short"

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        return super().logits(batch, label_space, ctx)[:, :-1]


@register_method
class NaNScores(NCM):
    """NCM whose logits are NaN."""

    name: ClassVar[str] = "nan-scores"

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        return torch.full((len(batch), len(label_space)), float("nan"))
