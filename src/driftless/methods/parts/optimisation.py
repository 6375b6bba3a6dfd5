"""Optimisation loops and schedules shared by methods: the optimizer and learning rate of an
:class:`~driftless.methods.parts.image_training.ImageTrainingConfig`, an endless data loader, and the
mini-batch loop of the methods that train a few tensors on cached features."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader

if TYPE_CHECKING:
    from driftless.methods.parts.image_training import ImageTrainingConfig


def learning_rate(step: int, total: int, config: ImageTrainingConfig) -> float:
    """The learning rate at ``step`` (0-based) of ``total``: linear warm-up, then cosine or
    constant."""
    warmup = int(config.warmup_fraction * total)
    if step < warmup:
        return config.lr * (step + 1) / warmup
    if config.schedule == "constant":
        return config.lr
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * config.lr * (1 + math.cos(math.pi * progress))


def optimizer_for(
    parameters: Sequence[nn.Parameter], config: ImageTrainingConfig
) -> torch.optim.Optimizer:
    """AdamW or SGD with momentum, as ``config.optimizer`` says, at ``config.lr``."""
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )


def endless(loader: DataLoader) -> Iterator[Any]:
    """``loader``'s batches, epoch after epoch, for as long as they are asked for."""
    while True:
        yield from loader


def gradient_step(
    optimizer: torch.optim.Optimizer,
    loss: torch.Tensor,
    log: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """One step of ``optimizer`` down ``loss``'s gradient (the previous gradients cleared first);
    ``log`` receives the loss."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if log is not None:
        log({"loss": loss.detach()})


def train_on_minibatches(
    optimizer: torch.optim.Optimizer,
    batch_loss: Callable[[torch.Tensor], torch.Tensor],
    num_samples: int,
    *,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    device: torch.device,
    log: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """``epochs`` passes of ``optimizer`` over ``num_samples`` samples in mini-batches of
    ``batch_size``, in an order drawn from ``generator`` at every epoch (the last batch may be
    smaller). ``batch_loss(rows)`` gives the loss of the rows (indices on ``device``) with grad;
    ``log`` (e.g. ``ctx.log_metrics``) receives each step's loss."""
    with torch.enable_grad():
        for _ in range(epochs):
            order = torch.randperm(num_samples, generator=generator).to(device)
            for start in range(0, num_samples, batch_size):
                gradient_step(optimizer, batch_loss(order[start : start + batch_size]), log)
