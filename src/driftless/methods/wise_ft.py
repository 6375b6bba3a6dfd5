"""WiSE-FT in a continual stream (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR
2022; as a continual baseline in Zheng et al., ICCV 2023 — ZSCL).

Algorithm: :mod:`finetune` on each task, then interpolate the image encoder's weights with the
zero-shot (pretrained) ones, θ ← (1 − α)·θ_zs + α·θ_ft, α = 0.5.

Our choice: the next task continues fine-tuning from the interpolated weights (not from the
un-interpolated fine-tuned ones), so the method is one model that is pulled back toward zero-shot
after every task, and the interpolated weights are its whole state. α = 0 keeps the zero-shot
weights exactly (it evaluates as zero-shot); α = 1 is plain fine-tuning.
"""

from __future__ import annotations

from pydantic import Field

from driftless.methods.base import Context, TaskData
from driftless.methods.finetune import Finetune, FinetuneConfig
from driftless.methods.parts.image_training import ImageEncoder
from driftless.methods.registry import register_method


class WiseFTConfig(FinetuneConfig):
    """Hyper-parameters of :class:`WiseFT` (and every field of :class:`FinetuneConfig`)."""

    alpha: float = Field(default=0.5, ge=0, le=1)
    """Weight of the fine-tuned weights in the interpolation (WiSE-FT's α; 0 = zero-shot)."""


@register_method
class WiseFT(Finetune[WiseFTConfig]):
    """Fine-tuning, with the weights interpolated toward zero-shot after each task."""

    name = "wise-ft"
    Config = WiseFTConfig

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Fine-tune on the task, then θ ← (1 − α)·θ_zs + α·θ."""
        super().learn(data, ctx)
        self.encoder(ctx).interpolate_(ImageEncoder.weights_of(ctx.backbone), self.config.alpha)
