"""RAPF — Adaptive Representation Adjustment and Parameter Fusion (Huang, Chen, Ma, Wang, Luo,
Gong, Zhang, Han, "Class-Incremental Learning with CLIP: Adaptive Representation Adjustment and
Parameter Fusion", ECCV 2024; reference code linlany/RAPF).

Algorithm (image and text encoders frozen; everything runs on cached image embeddings f(x)). A
linear adapter W (D×D, no bias) maps the embedding, g(x) = W f(x); logits_c = s · cos(g(x), t_c)
with t_c the class's text embedding and s the logit scale. On task t, Adam trains W on:

1. cross-entropy over every class seen so far, on the task's features and on **replayed features of
   old classes**: each step, ``replay_classes_per_step`` old classes (cycling through the old
   classes in an order shuffled every epoch) contribute ``replay_per_class`` draws each from
   N(μ_c, Σ_c + εI), the class's Gaussian of ORIGINAL embeddings stored after its task (no
   features or images of earlier tasks are kept);
2. a **hinge loss on hard pairs**: a new class n and an old class o whose normalized text
   embeddings are closer than ``hinge_threshold`` (Euclidean) form a pair; ``hinge_per_pair`` draws
   of o's Gaussian, through the adapter, must stay closer to t_o than to t_n by a margin:
   mean relu(cos(ĝ, t_n) − cos(ĝ, t_o) + margin). It keeps a new class from taking over the old
   classes it is easily confused with.

After the task, the task's classes' Gaussians are stored, and the new adapter is **fused** into the
one kept after the previous task (SVD form, parts/fusion.py): W_old = U S Vᵀ, P = Uᵀ W_new,
D = |P − S Vᵀ|, M = min(1, D / max D + β), W = U (P ⊙ M + S Vᵀ ⊙ (1 − M)). The first task has no
old adapter and is not fused.

Defaults: RAPF's ViT-B/16 CIFAR-100 B0-Inc10 configuration — 15 epochs of batch 100, Adam lr 1e-3
divided by 10 after epochs 4 and 10, 2 old classes × 20 draws per step (10·β, β = 2), hard pairs
below text distance 0.55 with 40 draws each (20·β) and margin 0.1, ε = 1e-4, β = 0.6, adapter
initialised as PyTorch initialises a linear layer.

Our choices: ``adapter_init = "identity"`` is offered (the adapter then starts as zero-shot CLIP);
classes never trained on are scored with the same adapter and their text embeddings (CI-Transfer);
the Gaussian replay and the fusion are the parts CalFuse uses (parts/gaussian_replay.py,
parts/fusion.py). RAPF's optional covariance shrinkage is not implemented (its configurations keep
it off).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from driftless.methods.base import (
    Context,
    LabelSpace,
    MethodBase,
    MethodConfig,
    TaskData,
    column_index,
)
from driftless.methods.parts.fusion import svd_fuse
from driftless.methods.parts.gaussian_replay import class_gaussians, sample_gaussians
from driftless.methods.parts.gaussian_stats import GaussianClassStats
from driftless.methods.parts.optimisation import gradient_step
from driftless.methods.parts.runtime import cpu_threads
from driftless.methods.parts.text_classifier import cosine_logits
from driftless.methods.registry import register_method

AdapterInit = Literal["linear-default", "identity"]


class RAPFConfig(MethodConfig):
    """Hyper-parameters of :class:`RAPF`: RAPF's ViT-B/16 CIFAR-100 B0-Inc10 values by default."""

    epochs: int = Field(default=15, ge=1)
    """Passes over each task's features (RAPF: 15)."""
    batch_size: int = Field(default=100, ge=1)
    """Task features per step (RAPF: 100)."""
    lr: float = Field(default=1e-3, gt=0)
    """Adam learning rate (RAPF: 1e-3)."""
    milestones: tuple[int, ...] = (4, 10)
    """Epochs after which the learning rate is divided by 10 (RAPF: 4, 10)."""
    adapter_init: AdapterInit = "linear-default"
    """W at the first task: PyTorch's linear-layer initialisation (RAPF) or the identity."""
    replay_classes_per_step: int | None = Field(default=2, ge=1)
    """Old classes replayed per step (RAPF on CIFAR-100 B0-Inc10: 2, so that its 50 steps per
    epoch visit every old class); None: as many as visit every old class once per epoch."""
    replay_per_class: int = Field(default=20, ge=1)
    """Draws per replayed class per step (RAPF: 10·β, β = 2)."""
    replay_epsilon: float = Field(default=1e-4, gt=0)
    """ε of Σ_c + εI (RAPF: 1e-4)."""
    hinge_threshold: float = Field(default=0.55, ge=0)
    """Text-embedding distance under which a new and an old class form a hard pair (RAPF: 0.55)."""
    hinge_per_pair: int = Field(default=40, ge=1)
    """Draws of the old class per hard pair per step (RAPF: 20·β)."""
    hinge_margin: float = Field(default=0.1, ge=0)
    """Margin of the hinge (RAPF: 0.1)."""
    hinge_weight: float = Field(default=1.0, ge=0)
    """Weight of the hinge term (RAPF: 1; 0 turns it off)."""
    fusion_bias: float = Field(default=0.6, ge=0)
    """β of the SVD fusion mask (RAPF's mix_bias: 0.6; ≥ 1 keeps the new adapter)."""
    cpu_threads: int | None = Field(default=1, ge=1)
    """Intra-op threads while training on a CPU (None: torch's setting); no effect on results."""


def hard_pairs(
    old_texts: torch.Tensor, new_texts: torch.Tensor, threshold: float
) -> list[tuple[int, int]]:
    """(old row, new row) for every old and new class whose normalized text embeddings are closer
    than ``threshold`` in Euclidean distance, old-major."""
    if not len(old_texts) or not len(new_texts):
        return []
    distance = torch.cdist(
        F.normalize(old_texts.double(), dim=-1), F.normalize(new_texts.double(), dim=-1)
    )
    return [(int(o), int(n)) for o, n in (distance < threshold).nonzero().tolist()]


def pair_hinge(
    adapted: torch.Tensor, own_texts: torch.Tensor, rival_texts: torch.Tensor, margin: float
) -> torch.Tensor:
    """mean relu(cos(g, t_rival) − cos(g, t_own) + margin) over rows: zero when every adapted
    feature is closer to its own class's text than to its rival's by at least ``margin``."""
    adapted = F.normalize(adapted, dim=-1)
    own = (adapted * F.normalize(own_texts, dim=-1)).sum(-1)
    rival = (adapted * F.normalize(rival_texts, dim=-1)).sum(-1)
    return torch.relu(rival - own + margin).mean()


@register_method
class RAPF(MethodBase[RAPFConfig]):
    """Linear adapter on the frozen image embedding, trained with Gaussian replay and a hinge on
    hard new/old pairs, SVD-fused into the previous adapter after each task."""

    name = "rapf"
    inputs = "features"
    Config = RAPFConfig

    def __init__(self, config: RAPFConfig | None = None):
        super().__init__(config)
        self.adapter_: torch.Tensor | None = None  # W (D, D): g = W f
        self.stats_ = GaussianClassStats(per_class_scatter=True)
        self.seen_class_ids_: list[int] = []

    def _initial_adapter(self, dim: int, generator: torch.Generator) -> torch.Tensor:
        if self.config.adapter_init == "identity":
            return torch.eye(dim)
        # torch.nn.Linear's default: kaiming_uniform(a=√5) = U(−1/√D, 1/√D)
        bound = 1.0 / math.sqrt(dim)
        return (torch.rand(dim, dim, generator=generator) * 2 - 1) * bound

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Train W on the task (+ replay, hinge), fuse it into the previous W, store the task's
        Gaussians."""
        assert data.features is not None
        device = ctx.device
        features = data.features.float().to(device)
        seen = data.seen_label_space
        old_ids = list(self.seen_class_ids_)
        new_ids = [c for c in seen.class_ids if c not in set(old_ids)]
        seen_texts = ctx.text_embeddings(seen).detach().float().to(device)
        column = column_index(seen.class_ids)
        targets = torch.tensor(seen.columns(data.labels.tolist()), device=device)
        previous = self.adapter_
        start = (
            previous.clone()
            if previous is not None
            else self._initial_adapter(features.shape[1], ctx.generator)
        )
        with cpu_threads(device, self.config.cpu_threads), torch.inference_mode(False):
            trained = self._train(
                features, targets, start.to(device), seen_texts, column, old_ids, new_ids, ctx
            )
            fused = (
                trained
                if previous is None
                else svd_fuse(previous, trained, self.config.fusion_bias)
            )
        self.adapter_ = fused.cpu()
        self.stats_.update(data.features, data.labels)
        self.seen_class_ids_ = list(seen.class_ids)

    def _train(
        self,
        features: torch.Tensor,
        targets: torch.Tensor,
        start: torch.Tensor,
        seen_texts: torch.Tensor,
        column: dict[int, int],
        old_ids: list[int],
        new_ids: list[int],
        ctx: Context,
    ) -> torch.Tensor:
        config, device, generator = self.config, ctx.device, ctx.generator
        scale = float(ctx.backbone.logit_scale)
        if old_ids:
            means, factors = class_gaussians(self.stats_, old_ids, config.replay_epsilon, "class")
            means, factors = means.float(), factors.float()
            old_columns = torch.tensor([column[c] for c in old_ids], device=device)
            pairs = hard_pairs(
                seen_texts[old_columns],
                seen_texts[[column[c] for c in new_ids]],
                config.hinge_threshold,
            )
        else:
            pairs = []
        adapter = torch.nn.Parameter(start.clone())
        optimizer = torch.optim.Adam([adapter], lr=config.lr)
        steps_per_epoch = math.ceil(len(features) / config.batch_size)
        with torch.enable_grad():
            for epoch in range(config.epochs):
                lr = config.lr * 0.1 ** sum(epoch >= m for m in config.milestones)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                order = torch.randperm(len(features), generator=generator).to(device)
                if old_ids:
                    class_order = torch.randperm(len(old_ids), generator=generator)
                    per_step = config.replay_classes_per_step or math.ceil(
                        len(old_ids) / steps_per_epoch
                    )
                for step in range(steps_per_epoch):
                    rows = order[step * config.batch_size : (step + 1) * config.batch_size]
                    inputs, labels = features[rows], targets[rows]
                    hinge = torch.zeros((), device=device)
                    if old_ids:
                        picked = [
                            int(class_order[(step * per_step + k) % len(old_ids)])
                            for k in range(min(per_step, len(old_ids)))
                        ]  # fmt: skip
                        draws, owners = sample_gaussians(
                            means[picked], factors[picked], config.replay_per_class, generator
                        )
                        owners = torch.tensor(picked)[owners]
                        inputs = torch.cat([inputs, draws.to(device)])
                        labels = torch.cat([labels, old_columns[owners.to(device)]])
                        if pairs and config.hinge_weight > 0:
                            hinge = self._hinge(adapter, pairs, means, factors, old_columns,
                                                new_ids, column, seen_texts, generator)  # fmt: skip
                    logits = cosine_logits(inputs @ adapter.T, seen_texts, scale)
                    loss = F.cross_entropy(logits, labels) + config.hinge_weight * hinge
                    gradient_step(optimizer, loss)
        return adapter.detach()

    def _hinge(
        self,
        adapter: torch.Tensor,
        pairs: list[tuple[int, int]],
        means: torch.Tensor,
        factors: torch.Tensor,
        old_columns: torch.Tensor,
        new_ids: list[int],
        column: dict[int, int],
        seen_texts: torch.Tensor,
        generator: torch.Generator,
    ) -> torch.Tensor:
        # draws of each pair's old class, kept closer to its own text than to the new class's
        olds = [o for o, _ in pairs]
        draws, owners = sample_gaussians(
            means[olds], factors[olds], self.config.hinge_per_pair, generator
        )
        device = adapter.device
        own = seen_texts[old_columns[torch.tensor(olds)[owners]].to(device)]
        rivals = torch.tensor([column[new_ids[n]] for _, n in pairs])[owners].to(device)
        return pair_hinge(
            draws.to(device) @ adapter.T, own, seen_texts[rivals], self.config.hinge_margin
        )

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """s · cos(W f(x), t_c) over the label space (zero-shot CLIP before the first task)."""
        features = batch.float()
        if self.adapter_ is not None:
            features = features @ self.adapter_.to(features.device).T
        return cosine_logits(features, ctx.text_embeddings(label_space), ctx.backbone.logit_scale)

    def state_dict(self) -> dict[str, Any]:
        """The adapter, the classes' Gaussian statistics and the seen classes."""
        return {
            "adapter": None if self.adapter_ is None else self.adapter_.clone(),
            "stats": self.stats_.state_dict(),
            "seen_class_ids": torch.tensor(self.seen_class_ids_, dtype=torch.long),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.adapter_ = None if state["adapter"] is None else state["adapter"].clone()
        self.stats_ = GaussianClassStats(per_class_scatter=True)
        self.stats_.load_state_dict(state["stats"])
        self.seen_class_ids_ = [int(c) for c in state["seen_class_ids"].tolist()]
