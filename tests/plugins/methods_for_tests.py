"""Methods that exist only for tests, registered by importing this module (``--import``)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import ClassVar

import torch
from torch.utils.data import DataLoader

from driftless.methods.base import Context, LabelSpace, TaskData
from driftless.methods.finetune import Finetune
from driftless.methods.ncm import NCM
from driftless.methods.parts.text_classifier import cosine_logits
from driftless.methods.registry import register_method


@register_method
class PausingNCM(NCM):
    """NCM that, when DRIFTLESS_TEST_PAUSE_AT=<task index> is set, writes the file named by
    DRIFTLESS_TEST_PAUSE_MARKER and then sleeps in that task's ``learn``: a test kills it there."""

    name: ClassVar[str] = "pausing-ncm"

    def learn(self, data: TaskData, ctx: Context) -> None:
        pause_at = os.environ.get("DRIFTLESS_TEST_PAUSE_AT")
        if pause_at is not None and data.task.index == int(pause_at):
            Path(os.environ["DRIFTLESS_TEST_PAUSE_MARKER"]).write_text("paused")
            time.sleep(120)
        super().learn(data, ctx)


@register_method
class PausingFinetune(Finetune):
    """Fine-tuning that pauses like ``pausing-ncm`` (on every rank of a distributed run)."""

    name: ClassVar[str] = "pausing-finetune"

    def learn(self, data: TaskData, ctx: Context) -> None:
        pause_at = os.environ.get("DRIFTLESS_TEST_PAUSE_AT")
        if pause_at is not None and data.task.index == int(pause_at):
            Path(os.environ["DRIFTLESS_TEST_PAUSE_MARKER"]).write_text("paused")
            time.sleep(120)
        super().learn(data, ctx)


@register_method
class ImageNCM(NCM):
    """NCM fed with images instead of cached features: it encodes them itself. Its results must
    equal ``ncm``'s, which proves the engine's image path and feature path agree."""

    name: ClassVar[str] = "image-ncm"
    inputs: ClassVar[str] = "images"

    def learn(self, data: TaskData, ctx: Context) -> None:
        assert data.features is None and data.images is not None
        with torch.inference_mode():
            for pixels, labels in DataLoader(data.images, batch_size=ctx.batch_size):
                self.class_means_.update(ctx.backbone.encode_images(pixels.to(ctx.device)), labels)

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        return super().logits(ctx.backbone.encode_images(batch), label_space, ctx)


__all__ = ["ImageNCM", "PausingFinetune", "PausingNCM", "cosine_logits"]
