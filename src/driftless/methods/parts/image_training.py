"""Fine-tuning a copy of a CLIP image encoder: the copy, its training loop, the loss pieces.

A method that trains the image tower owns an :class:`ImageEncoder` (a deep copy of the backbone's
vision transformer and visual projection: the backbone itself is shared by every method of a run and
never changes) and says only what its loss is; :func:`train_loop` does the rest (optimizer,
learning-rate schedule, seeded data order, device placement through Fabric, progress bar).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping
from typing import ClassVar, Literal

import torch
from pydantic import Field, ValidationInfo, field_validator, model_validator
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler
from tqdm.auto import tqdm

from driftless.backbones.base import Backbone
from driftless.engine.distributed import split_batch
from driftless.errors import ConfigError
from driftless.methods.base import Context, MethodConfig
from driftless.methods.parts.optimisation import endless, learning_rate, optimizer_for

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss(embeddings, pixels, labels)``: the batch's embeddings by the encoder being trained (with
grad), its preprocessed pixels and its global labels (both on the device) → a scalar loss."""

DEFAULT_ITERATIONS = 60


class ImageTrainingConfig(MethodConfig):
    """How an image encoder is fine-tuned on one task. Defaults suit the bundled tiny models and the
    toy benchmarks; the paper values (ZSCL's continual fine-tuning of ViT-B/16: AdamW, lr 1e-5,
    weight decay 0, batch 64, 1000 iterations per task, 100 warm-up iterations then cosine decay,
    label smoothing 0.2) are listed in each method's page and set by a benchmark's config."""

    TINY_MODEL_DEFAULTS: ClassVar[tuple[str, ...]] = ("lr", "iterations")
    """Fields whose defaults suit only the tiny models: a real benchmark left with them warns."""

    optimizer: Literal["adamw", "sgd"] = "adamw"
    """AdamW (betas 0.9, 0.999) or SGD with ``momentum``."""
    lr: float = Field(default=1e-4, gt=0)
    """Peak learning rate (ZSCL: 1e-5 for ViT-B/16; the tiny models need a larger one)."""
    weight_decay: float = Field(default=0.0, ge=0)
    """Decoupled weight decay for AdamW, L2 for SGD (ZSCL: 0)."""
    momentum: float = Field(default=0.9, ge=0, lt=1)
    """SGD momentum (ignored by AdamW)."""
    iterations: int | None = Field(default=DEFAULT_ITERATIONS, ge=1)
    """Optimizer steps per task; exclusive with ``epochs`` (ZSCL: 1000)."""
    epochs: int | None = Field(default=None, ge=1, validate_default=True)
    """Passes over the task's training set instead of ``iterations``."""
    batch_size: int = Field(default=32, ge=1)
    """Training batch size (ZSCL: 64). Evaluation uses the run's ``batch_size``."""
    schedule: Literal["cosine", "constant"] = "cosine"
    """Learning rate after warm-up: cosine decay to 0 over the task, or constant."""
    warmup_fraction: float = Field(default=0.1, ge=0, lt=1)
    """Fraction of each task's steps with a linear warm-up (ZSCL: 100 of 1000)."""
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    """Label smoothing of the cross-entropy (ZSCL's scripts: 0.2)."""
    train_last_blocks: int | None = Field(default=None, ge=1)
    """None: the whole image tower and projection train. N: only the last N transformer blocks,
    the final layer norm and the projection."""

    @model_validator(mode="before")
    @classmethod
    def _epochs_replace_default_iterations(cls, values: object) -> object:
        # giving epochs alone means "epochs instead of the default iterations"
        epochs_alone = isinstance(values, Mapping) and "iterations" not in values
        if epochs_alone and values.get("epochs") is not None:  # type: ignore[union-attr]
            values = {**values, "iterations": None}  # type: ignore[dict-item]
        return values

    @field_validator("epochs", mode="after")
    @classmethod
    def _one_budget(cls, epochs: int | None, info: ValidationInfo) -> int | None:
        iterations = info.data.get("iterations")
        if epochs is not None and iterations is not None:
            raise ValueError("set either iterations or epochs, not both")
        if epochs is None and iterations is None and "iterations" in info.data:
            raise ValueError("set iterations or epochs")
        return epochs


class ImageEncoder(nn.Module):
    """A trainable copy of a CLIP image tower and its visual projection: pixels → unnormalized
    embeddings, exactly as :meth:`CLIPBackbone.encode_images` computes them."""

    def __init__(self, vision: nn.Module, projection: nn.Module):
        super().__init__()
        self.vision = vision
        self.projection = projection

    @classmethod
    def from_backbone(cls, backbone: Backbone) -> ImageEncoder:
        """A deep copy of the backbone's image tower and projection (the backbone is untouched)."""
        vision, projection = _image_parts(backbone)
        with torch.inference_mode(False):  # the copy must be trainable even if made during eval
            return cls(copy.deepcopy(vision), copy.deepcopy(projection))

    @staticmethod
    def weights_of(backbone: Backbone) -> dict[str, torch.Tensor]:
        """The backbone's image-tower weights under this class's state-dict keys (not copied)."""
        vision, projection = _image_parts(backbone)
        weights = {f"vision.{k}": v for k, v in vision.state_dict().items()}
        weights.update({f"projection.{k}": v for k, v in projection.state_dict().items()})
        return weights

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Preprocessed pixels (B, 3, H, W) → unnormalized embeddings (B, D)."""
        return self.projection(self.vision(pixel_values=pixels).pooler_output)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Embeddings for evaluation: eval mode, no gradient."""
        self.eval()
        with torch.no_grad():
            return self(pixels)

    def embed_from_block(self, tokens: torch.Tensor, first: int) -> torch.Tensor:
        """Token states (B, T, width) entering block ``first`` → unnormalized embeddings (B, D):
        the rest of :meth:`forward` (the remaining blocks, the CLS token's final layer norm, the
        projection)."""
        for block in self.blocks[first:]:
            tokens = block(tokens, None)
        return self.projection(self.vision.post_layernorm(tokens[:, 0]))

    @property
    def blocks(self) -> nn.ModuleList:
        """The transformer blocks of the image tower, input side first."""
        return self.vision.encoder.layers

    def select_trainable(self, last_blocks: int | None) -> list[nn.Parameter]:
        """Make only the chosen parameters require grad and return them: everything (None), or
        the last ``last_blocks`` blocks, the final layer norm and the projection."""
        if last_blocks is None:
            modules: list[nn.Module] = [self]
        else:
            if last_blocks > len(self.blocks):
                raise ConfigError(
                    f"train_last_blocks: {last_blocks} asked, the image tower has "
                    f"{len(self.blocks)} blocks"
                )
            modules = [*self.blocks[-last_blocks:], self.vision.post_layernorm, self.projection]
        self.requires_grad_(False)
        for module in modules:
            module.requires_grad_(True)
        return [p for p in self.parameters() if p.requires_grad]

    def frozen_copy(self) -> ImageEncoder:
        """A copy in eval mode with no trainable parameter (a teacher, a reference)."""
        with torch.inference_mode(False):
            return copy.deepcopy(self).requires_grad_(False).eval()

    @torch.no_grad()
    def interpolate_(self, anchor: Mapping[str, torch.Tensor], alpha: float) -> None:
        """In place: θ ← (1 − α)·θ_anchor + α·θ for every floating-point tensor of the state;
        ``alpha = 0`` gives the anchor's weights exactly, ``alpha = 1`` leaves θ as it is."""
        for key, tensor in self.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.lerp(anchor[key].to(tensor), tensor, alpha))


def _image_parts(backbone: Backbone) -> tuple[nn.Module, nn.Module]:
    model = backbone.model
    if not (hasattr(model, "vision_model") and hasattr(model, "visual_projection")):
        raise TypeError(
            f"backbone {backbone.name}: image fine-tuning needs a CLIPModel-like model with "
            "vision_model and visual_projection"
        )
    return model.vision_model, model.visual_projection


class RankShares(Sampler[list[int]]):
    """One rank's contiguous share of every batch of ``batches`` (see :func:`split_batch`); a rank
    whose share is empty gets the batch's first item, which its zero loss weight then ignores (DDP
    needs every rank to compute a gradient each step)."""

    def __init__(self, batches: BatchSampler, rank: int, world: int):
        self.batches, self.rank, self.world = batches, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            start, stop = split_batch(len(batch), self.rank, self.world)
            yield batch[start:stop] if stop > start else batch[:1]

    def __len__(self) -> int:
        return len(self.batches)


def _global_batch_size(step: int, n: int, batch_size: int) -> int:
    """The size of step ``step``'s batch: full ones, then an epoch's smaller last one."""
    per_epoch = math.ceil(n / batch_size)
    return batch_size if step % per_epoch < per_epoch - 1 else n - batch_size * (per_epoch - 1)


def train_loop(
    encoder: ImageEncoder,
    images: Dataset,
    loss_fn: LossFn,
    config: ImageTrainingConfig,
    ctx: Context,
    description: str = "train",
    after_step: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Fine-tune ``encoder`` in place on ``images`` (a dataset of (pixels, global label)) by
    minimizing ``loss_fn``; returns the loss of every step.

    A fresh optimizer and schedule per call (per task), so the encoder's weights are the whole
    state between tasks. Batches are drawn without replacement, epoch after epoch, in an order
    given by ``ctx.generator``; the last batch of an epoch may be smaller. ``after_step(step,
    total)``, if given, is called after every optimizer step (0-based), e.g. to average weights.

    With several processes (DDP) every rank draws the same global batches and takes its share of
    each; its loss (a batch mean) is weighted by its share of the global batch times the world
    size, so DDP's gradient average is the gradient of the global batch's mean loss, as in one
    process."""
    parameters = encoder.select_trainable(config.train_last_blocks)
    optimizer = optimizer_for(parameters, config)
    model, fabric_optimizer = ctx.fabric.setup(encoder, optimizer)
    sampler = RandomSampler(images, generator=ctx.generator)  # type: ignore[arg-type]
    world, rank = ctx.fabric.world_size, ctx.fabric.global_rank
    if world == 1:
        loader = DataLoader(images, batch_size=config.batch_size, sampler=sampler)
    else:
        shares = RankShares(BatchSampler(sampler, config.batch_size, False), rank, world)
        loader = DataLoader(images, batch_sampler=shares)
    total = config.iterations or config.epochs * len(loader)  # type: ignore[operator]
    batches = endless(loader)
    losses = torch.zeros(total, device=ctx.device)
    model.train()
    steps = tqdm(range(total), desc=description, unit="step", leave=False, disable=not ctx.progress)
    for step in steps:
        pixels, labels = next(batches)
        pixels, labels = pixels.to(ctx.device), labels.to(ctx.device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, total, config)
        loss = loss_fn(model(pixels), pixels, labels)
        fabric_optimizer.zero_grad(set_to_none=True)
        if world == 1:
            ctx.fabric.backward(loss)
            losses[step] = loss.detach()
        else:
            global_size = _global_batch_size(step, len(images), config.batch_size)  # type: ignore[arg-type]
            start, stop = split_batch(global_size, rank, world)
            share = (stop - start) / global_size
            ctx.fabric.backward(loss * share * world)
            losses[step] = ctx.fabric.all_reduce(loss.detach() * share, reduce_op="sum")
        fabric_optimizer.step()
        ctx.log_metrics({"loss": losses[step]})
        if after_step is not None:
            after_step(step, total)
        if ctx.progress and step % 10 == 0:
            steps.set_postfix(loss=f"{float(losses[step]):.3f}")
    encoder.requires_grad_(False).eval()
    return losses.cpu()
