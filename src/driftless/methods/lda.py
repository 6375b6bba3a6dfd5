"""Linear discriminant analysis head on frozen features (the head of FSA: Panos, Kobe, Reino, Aljundi,
Turner, "First Session Adaptation: A Strong Replay-Free Baseline for Class-Incremental Learning",
ICCV 2023).

Algorithm: keep float64 running sums of f, of f fᵀ and per-class counts over every training feature
seen so far. After each task, Σ = covariance of all training features seen so far + s·I (shrinkage
s = 1 in the paper), μ_c = class means, and

    w_c = Σ⁻¹ μ_c,   b_c = −½ μ_cᵀ Σ⁻¹ μ_c,   score_c(x) = w_cᵀ f(x) + b_c,

solved with a Cholesky factorization of Σ (no explicit inverse; a minimum-norm eigen-solve if
Σ is singular, possible only with shrinkage 0). The update is exact: the head after
task t equals the head fitted on all of tasks 1..t at once, whatever the order or batching.

Our choices: FSA adapts the backbone on the first session; driftless's backbone is frozen, so this is
the LDA head alone on the frozen CLIP embedding. Σ is the covariance of all features around their
global mean, unbiased (N − 1), as FSA computes it; ``covariance = "pooled"`` uses the classical
pooled within-class covariance instead. Classes never trained on are scored by zero-shot CLIP
(see :mod:`driftless.methods.parts.untrained_classes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field

from driftless.methods.base import Context, TaskData, class_columns
from driftless.methods.parts.gaussian_stats import GaussianClassStats
from driftless.methods.parts.ridge import solve_positive_definite
from driftless.methods.parts.untrained_classes import GaussianStatsHead, UntrainedClassesConfig
from driftless.methods.registry import register_method


class LDAConfig(UntrainedClassesConfig):
    """Hyper-parameters of :class:`LDA`."""

    shrinkage: float = Field(default=1.0, ge=0.0)
    """s in Σ + s·I; FSA adds the identity (s = 1). Scale-dependent: features are unnormalized."""

    covariance: Literal["total", "pooled"] = "total"
    """Σ from all features around the global mean (FSA), or the pooled within-class covariance."""


@register_method
class LDA(GaussianStatsHead[LDAConfig]):
    """LDA head (FSA): shared covariance with shrinkage, exact incremental updates from sums."""

    name = "lda"
    inputs = "features"
    Config = LDAConfig

    def __init__(self, config: LDAConfig | None = None):
        super().__init__(config)
        self.stats_ = GaussianClassStats(per_class_scatter=False)
        self._head: tuple[list[int], torch.Tensor, torch.Tensor] | None = None

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Add the task's features to the running sums."""
        assert data.features is not None
        self.stats_.update(data.features, data.labels)
        self._head = None

    def covariance(self) -> torch.Tensor:
        """Σ + s·I (D×D, float64) from every feature seen so far."""
        if self.config.covariance == "total":
            sigma = self.stats_.total_covariance(ddof=1)
        else:
            sigma = self.stats_.pooled_covariance()
        sigma = sigma.clone()
        sigma.diagonal().add_(self.config.shrinkage)
        return sigma

    def head(self) -> tuple[list[int], torch.Tensor, torch.Tensor]:
        """(class ids, W (D×C), b (C,)) for every class seen: w_c = Σ⁻¹μ_c, b_c = −½ μ_cᵀΣ⁻¹μ_c."""
        if self._head is None:
            ids = self.stats_.class_ids
            means = self.stats_.means(ids)  # (C, D)
            weights = solve_positive_definite(self.covariance(), means.T)  # Σ⁻¹ μ_c as columns
            bias = -0.5 * (weights * means.T).sum(dim=0)
            self._head = (ids, weights, bias)
        return self._head

    def score_trained(self, batch: torch.Tensor, class_ids: Sequence[int]) -> torch.Tensor:
        """w_cᵀ f(x) + b_c for each class c of ``class_ids``."""
        ids, weights, bias = self.head()
        cols = class_columns(ids, class_ids)
        return batch.detach().cpu().to(torch.float64) @ weights[:, cols] + bias[cols]

    def forget_derived(self) -> None:
        """Drop the cached head."""
        self._head = None
