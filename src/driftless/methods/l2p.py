"""L2P — Learning to Prompt (Wang, Zhang, Lee, Zhang, Sun, Ren, Su, Perot, Dy, Pfister, "Learning
to Prompt for Continual Learning", CVPR 2022; reference code google-research/l2p).

Algorithm. The pre-trained image transformer stays frozen. A pool of M prompts P_1..P_M (each L_p
tokens of the transformer's width) with one learnable key k_m each is shared by every task. For an
image x, the query q(x) is the [CLS] feature of the untouched transformer; the N prompts whose keys
are most cosine-similar to q(x) are concatenated (N·L_p tokens) and prepended to the image tokens
at the input (prompt-tuning); the classifier reads the prompted transformer's output. Training on
task t minimizes CE (logits of classes outside task t masked) + λ · Σ_{chosen m} (1 − cos(q(x),
k_m)), the surrogate loss that pulls the chosen keys toward the queries that chose them; prompts,
keys and head train, nothing else. At test time the same top-N selection picks the prompts, with no
task identity. Rehearsal-free: no sample of earlier tasks is kept.

Paper defaults (ViT-B/16, split CIFAR-100, as in the reference configuration): M = 10, L_p = 5,
N = 5, prompts at the input; Adam, lr 0.03, batch 128, 5 epochs per task, constant lr; λ = 0.1 (the
PyTorch re-implementation's pull-constraint coefficient). Prompts and keys start uniform in [−1, 1].

Our choices for CLIP (parts/prompted_classifier.py, parts/vision_prompts.py): the prompt tokens go
right after [CLS] in the first layer's input; the feature is CLIP's image embedding (the pooled
[CLS] through the visual projection), so the head can be linear (the paper's) or CLIP's text
embeddings (``classifier = "text"``, which keeps unseen classes scorable for CI-Transfer); the
linear head's rows start at the classes' text embeddings (``head_init``); L2P's optional
batch-wise prompt voting and prompt-frequency penalty are not implemented (selection is per image).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from driftless.methods.parts.prompted_classifier import PromptedClassifier, PromptedClassifierConfig
from driftless.methods.parts.vision_prompts import (
    LayerPrompts,
    PromptedVisionTower,
    cosine_top_n,
    key_pull_loss,
)
from driftless.methods.registry import register_method


class L2PConfig(PromptedClassifierConfig):
    """Hyper-parameters of :class:`L2P`: the paper's ViT-B/16 CIFAR-100 values by default."""

    pool_size: int = Field(default=10, ge=1)
    """M, prompts in the pool (paper: 10)."""
    prompt_length: int = Field(default=5, ge=1)
    """L_p, tokens per prompt (paper: 5)."""
    top_n: int = Field(default=5, ge=1)
    """N, prompts chosen per image (paper: 5)."""
    prompt_layer: int = Field(default=0, ge=0)
    """The layer whose input receives the prompts (paper: 0, the input)."""
    key_loss_weight: float = Field(default=0.1, ge=0)
    """λ of the surrogate key loss (0.1)."""
    lr: float = Field(default=0.03, gt=0)
    """Adam learning rate (paper: 0.03)."""
    iterations: int | None = Field(default=None, ge=1)
    """Optimizer steps per task instead of ``epochs``."""
    epochs: int | None = Field(default=5, ge=1, validate_default=True)
    """Passes over each task's images (paper: 5 on CIFAR-100)."""
    batch_size: int = Field(default=128, ge=1)
    """Training batch (paper: 128)."""
    schedule: Literal["cosine", "constant"] = "constant"
    """Learning rate schedule (paper: constant)."""
    warmup_fraction: float = Field(default=0.0, ge=0, lt=1)
    """No warm-up in the paper."""
    prompt_init: tuple[float, float] = (-1.0, 1.0)
    """Interval [low, high) prompts and keys are drawn uniformly from (the PyTorch
    re-implementation's [−1, 1]; the authors' JAX code draws from [0, 0.01))."""

    @model_validator(mode="after")
    def _check_prompt_init(self) -> L2PConfig:
        low, high = self.prompt_init
        if not low < high:
            raise ValueError(f"l2p: prompt_init needs low < high, got [{low}, {high})")
        return self


class PromptPool(nn.Module):
    """M prompts of L_p tokens and their keys."""

    def __init__(
        self,
        size: int,
        length: int,
        width: int,
        generator: torch.Generator,
        interval: tuple[float, float] = (-1.0, 1.0),
    ):
        super().__init__()
        low, high = interval
        prompts = torch.rand(size, length, width, generator=generator)
        keys = torch.rand(size, width, generator=generator)
        self.prompts = nn.Parameter(low + (high - low) * prompts)
        self.keys = nn.Parameter(low + (high - low) * keys)


@register_method
class L2P(PromptedClassifier[L2PConfig]):
    """A shared pool of prompts chosen per image by key–query matching, prepended at the input."""

    name = "l2p"
    # trains the image tower for minutes per run on a CPU: run it with --method
    in_default_run = False
    Config = L2PConfig

    def __init__(self, config: L2PConfig | None = None):
        super().__init__(config)
        if self.config.top_n > self.config.pool_size:
            raise ValueError(
                f"l2p: top_n {self.config.top_n} exceeds the pool of {self.config.pool_size}"
            )

    def prompt_layers(self) -> tuple[int, ...]:
        """The one layer the prompts enter."""
        return (self.config.prompt_layer,)

    def build_prompts(self, tower: PromptedVisionTower, generator: torch.Generator) -> nn.Module:
        """The pool: prompts and keys uniform in ``prompt_init``."""
        config = self.config
        return PromptPool(
            config.pool_size, config.prompt_length, tower.width, generator, config.prompt_init
        )

    def choose_prompts(
        self, query: torch.Tensor, task_index: int | None
    ) -> tuple[LayerPrompts, torch.Tensor]:
        """The top-N prompts by cosine between query and keys, concatenated; while training, the
        surrogate loss on the chosen keys."""
        pool = self.prompts_
        assert isinstance(pool, PromptPool)
        chosen = cosine_top_n(query, pool.keys, self.config.top_n)  # (B, N)
        tokens = pool.prompts[chosen].flatten(1, 2)  # (B, N·L_p, W)
        extra = torch.zeros((), device=query.device)
        if task_index is not None and self.config.key_loss_weight > 0:
            extra = self.config.key_loss_weight * key_pull_loss(query, pool.keys[chosen])
        return LayerPrompts(tokens={self.config.prompt_layer: tokens}), extra

    def trainable_prompt_parameters(self, task_index: int) -> list[nn.Parameter]:
        """The whole pool trains in every task (it is shared)."""
        assert self.prompts_ is not None
        return list(self.prompts_.parameters())
