"""DualPrompt (Wang, Zhang, Ebrahimi, Sun, Zhang, Lee, Ren, Su, Perot, Dy, Pfister, "DualPrompt:
Complementary Prompting for Rehearsal-free Continual Learning", ECCV 2022; reference code
google-research/l2p).

Algorithm. The pre-trained image transformer stays frozen. Two kinds of prompts enter its attention
by prefix-tuning (a prompt of length L gives L extra keys and L extra values):

- the **G-prompt** (general): one prompt per early layer (layers ``g_layers``), shared by every task
  and trained in every task;
- the **E-prompts** (expert): one prompt per task for the later layers (``e_layers``), each with a
  learnable key k_t. While learning task t the image gets E-prompt t, and a matching loss
  λ · (1 − cos(q(x), k_t)) pulls k_t toward the queries of task t's images (q(x): the [CLS] feature of
  the untouched transformer). At test time the E-prompt whose key is most cosine-similar to q(x) is
  used: no task identity is given.

Training on task t minimizes CE (logits of classes outside task t masked) + the matching loss; the
G-prompt, E-prompt t, key t and the head train. Rehearsal-free: no sample of earlier tasks is kept.

Paper defaults (ViT-B/16, split CIFAR-100, the reference configuration): G-prompt length 5 at
layers 0–1, E-prompts of length 5 at layers 2–4, a pool of 10 E-prompts (one per task), prefix-
tuning; Adam, lr 0.005, batch 128, 5 epochs per task (ImageNet-R: 50), constant lr; λ = 1. Prompts
and keys start uniform in [−1, 1].

Our choices for CLIP: see parts/prompted_classifier.py (the feature is CLIP's image embedding; a
linear head with text-initialised rows or CLIP's text embeddings, ``classifier``). A run with more
tasks than E-prompts is refused (the paper sizes the pool to the number of tasks).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from driftless.errors import ConfigError
from driftless.methods.parts.prompted_classifier import PromptedClassifier, PromptedClassifierConfig
from driftless.methods.parts.vision_prompts import (
    LayerPrompts,
    PromptedVisionTower,
    cosine_top_n,
    key_pull_loss,
)
from driftless.methods.registry import register_method


class DualPromptConfig(PromptedClassifierConfig):
    """Hyper-parameters of :class:`DualPrompt`: the paper's ViT-B/16 CIFAR-100 values by default."""

    g_layers: tuple[int, ...] = (0, 1)
    """Layers that get the shared G-prompt (paper: 0, 1)."""
    g_length: int = Field(default=5, ge=1)
    """G-prompt length: key and value prefixes per layer (paper: 5)."""
    e_layers: tuple[int, ...] = (2, 3, 4)
    """Layers that get the task's E-prompt (paper: 2, 3, 4)."""
    e_length: int = Field(default=5, ge=1)
    """E-prompt length: key and value prefixes per layer (paper: 5)."""
    e_pool_size: int = Field(default=10, ge=1)
    """E-prompts (and keys) in the pool: at least the number of tasks (paper: 10)."""
    key_loss_weight: float = Field(default=1.0, ge=0)
    """λ of the matching loss (paper: 1)."""
    lr: float = Field(default=0.005, gt=0)
    """Adam learning rate (paper: 0.005)."""
    iterations: int | None = Field(default=None, ge=1)
    """Optimizer steps per task instead of ``epochs``."""
    epochs: int | None = Field(default=5, ge=1, validate_default=True)
    """Passes over each task's images (paper: 5 on CIFAR-100, 50 on ImageNet-R)."""
    batch_size: int = Field(default=128, ge=1)
    """Training batch (paper: 128)."""
    schedule: Literal["cosine", "constant"] = "constant"
    """Learning rate schedule (paper: constant)."""
    warmup_fraction: float = Field(default=0.0, ge=0, lt=1)
    """No warm-up in the paper."""

    @field_validator("e_layers")
    @classmethod
    def _disjoint(cls, e_layers: tuple[int, ...], info: object) -> tuple[int, ...]:
        g_layers = getattr(info, "data", {}).get("g_layers", ())
        if set(e_layers) & set(g_layers):
            raise ValueError(f"g_layers {g_layers} and e_layers {e_layers} overlap")
        return e_layers


class DualPrompts(nn.Module):
    """G-prompt (layers, 2, L_g, W) and E-prompts (pool, layers, 2, L_e, W) with keys (pool, W);
    index 0 / 1 of the third axis is the key / value prefix."""

    def __init__(self, config: DualPromptConfig, width: int, generator: torch.Generator):
        super().__init__()

        def uniform(*shape: int) -> nn.Parameter:
            return nn.Parameter(torch.rand(*shape, generator=generator) * 2 - 1)

        self.g_prompt = uniform(len(config.g_layers), 2, config.g_length, width)
        self.e_prompts = uniform(
            config.e_pool_size, len(config.e_layers), 2, config.e_length, width
        )
        self.e_keys = uniform(config.e_pool_size, width)


@register_method
class DualPrompt(PromptedClassifier[DualPromptConfig]):
    """A shared G-prompt in early layers and per-task E-prompts, chosen by key, in later layers,
    both as prefixes of the attention's keys and values."""

    name = "dualprompt"
    # trains the image tower for minutes per run on a CPU: run it with --method
    in_default_run = False
    Config = DualPromptConfig

    def prompt_layers(self) -> tuple[int, ...]:
        """G-prompt layers, then E-prompt layers."""
        return (*self.config.g_layers, *self.config.e_layers)

    def build_prompts(self, tower: PromptedVisionTower, generator: torch.Generator) -> nn.Module:
        """G-prompt, E-prompt pool and keys, uniform in [−1, 1]."""
        return DualPrompts(self.config, tower.width, generator)

    def grow_prompts(self, task_index: int, generator: torch.Generator) -> None:
        """Nothing grows; a task beyond the E-prompt pool is refused."""
        if task_index >= self.config.e_pool_size:
            raise ConfigError(
                f"dualprompt: task {task_index + 1} needs an E-prompt but the pool holds "
                f"{self.config.e_pool_size}; set --set dualprompt.e_pool_size=<number of tasks>"
            )

    def expert_index(self, query: torch.Tensor) -> torch.Tensor:
        """(B,) the E-prompt whose key is most cosine-similar to each query."""
        prompts = self.prompts_
        assert isinstance(prompts, DualPrompts)
        learned = max(1, min(self.tasks_learned_, self.config.e_pool_size))
        return cosine_top_n(query, prompts.e_keys[:learned], 1)[:, 0]

    def choose_prompts(
        self, query: torch.Tensor, task_index: int | None
    ) -> tuple[LayerPrompts, torch.Tensor]:
        """G-prompt prefixes, and the E-prompt of the task being learned (training) or of the
        best-matching key among the tasks learned (test); the matching loss while training."""
        prompts = self.prompts_
        assert isinstance(prompts, DualPrompts)
        config = self.config
        extra = torch.zeros((), device=query.device)
        if task_index is None:
            experts = self.expert_index(query)
        else:
            experts = torch.full((len(query),), task_index, device=query.device)
            if config.key_loss_weight > 0:
                extra = config.key_loss_weight * key_pull_loss(query, prompts.e_keys[experts])
        chosen = prompts.e_prompts[experts]  # (B, layers, 2, L_e, W)
        prefixes = {
            layer: (prompts.g_prompt[i, 0][None], prompts.g_prompt[i, 1][None])
            for i, layer in enumerate(config.g_layers)
        }
        for i, layer in enumerate(config.e_layers):
            prefixes[layer] = (chosen[:, i, 0], chosen[:, i, 1])
        return LayerPrompts(prefixes=prefixes), extra

    def trainable_prompt_parameters(self, task_index: int) -> list[nn.Parameter]:
        """G-prompt, E-prompts and keys (only task ``task_index``'s E-prompt and key get a
        gradient: the others are not used while training)."""
        assert self.prompts_ is not None
        return list(self.prompts_.parameters())
