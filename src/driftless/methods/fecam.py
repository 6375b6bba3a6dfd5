"""FeCAM: Mahalanobis distance to per-class Gaussians on frozen features (Goswami, Liu, Twardowski,
van de Weijer, "FeCAM: Exploiting the Heterogeneity of Class Distributions in Exemplar-Free
Continual Learning", NeurIPS 2023).

Algorithm: per class c keep the mean μ_c and covariance Σ_c of the (optionally power-transformed)
frozen features φ(f), exact from float64 running sums. To score:
1. shrink: Σ'_c = Σ_c + γ₁ v₁ I + γ₂ v₂ (1 − I), v₁ = mean of Σ_c's diagonal, v₂ = mean of its
   off-diagonal entries (γ₁ = γ₂ = 1);
2. normalize to a correlation matrix: Σ''_c = Σ'_c / (σ σᵀ), σ = sqrt(diag Σ'_c), so that classes
   with features of different spread are comparable;
3. distance d_c(x) = (x̂ − μ̂_c)ᵀ (Σ''_c)⁺ (x̂ − μ̂_c) with x̂, μ̂_c the L2-normalized φ(f(x)) and μ_c
   (pseudo-inverse, as the reference code); logits −d_c(x).

Our choices: the paper's Tukey transform φ(f) = f^β (β = 0.5) is meant for non-negative (post-ReLU)
features; CLIP embeddings are signed, so we apply the signed power sign(f)·|f|^β and leave it off by
default (``tukey_power = 1``). The shrinkage is applied once (the reference code has a variant that
applies it twice). A class whose shrunk covariance has a non-positive diagonal (a single sample;
or γ₁ = 0 and a constant feature) gets the identity instead, i.e. the squared Euclidean distance
between normalized features. Classes never trained on are scored by zero-shot CLIP (see
:mod:`driftless.methods.parts.untrained_classes`).

Cost: a D×D float64 scatter matrix per class (D = 512: 2 MB per class).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from pydantic import Field

from driftless.methods.base import Context, TaskData
from driftless.methods.parts.gaussian_stats import GaussianClassStats
from driftless.methods.parts.untrained_classes import GaussianStatsHead, UntrainedClassesConfig
from driftless.methods.registry import register_method


class FeCAMConfig(UntrainedClassesConfig):
    """Hyper-parameters of :class:`FeCAM`."""

    shrink_diagonal: float = Field(default=1.0, ge=0.0)
    """γ₁: multiple of the mean variance added to the diagonal (1 in the paper)."""

    shrink_off_diagonal: float = Field(default=1.0, ge=0.0)
    """γ₂: multiple of the mean covariance added off the diagonal (1 in the paper)."""

    normalize_covariance: bool = True
    """Normalize each shrunk covariance to a correlation matrix (the paper does)."""

    tukey_power: float = Field(default=1.0, gt=0.0)
    """β of the signed power transform sign(f)·|f|^β; 1 switches it off (paper: 0.5 on
    non-negative features)."""


@register_method
class FeCAM(GaussianStatsHead[FeCAMConfig]):
    """FeCAM: Mahalanobis classifier with shrunk, correlation-normalized per-class covariances."""

    name = "fecam"
    inputs = "features"
    Config = FeCAMConfig

    def __init__(self, config: FeCAMConfig | None = None):
        super().__init__(config)
        self.stats_ = GaussianClassStats(per_class_scatter=True)
        self._precisions: dict[int, torch.Tensor] = {}  # cache, rebuilt from the sums

    def transform(self, features: torch.Tensor) -> torch.Tensor:
        """φ(f): the signed power transform (identity when ``tukey_power = 1``), float64."""
        features = features.detach().cpu().to(torch.float64)
        power = self.config.tukey_power
        if power == 1.0:
            return features
        return features.sign() * features.abs().pow(power)

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Add the task's transformed features to the per-class running sums."""
        assert data.features is not None
        self.stats_.update(self.transform(data.features), data.labels)
        for label in data.labels.unique().tolist():
            self._precisions.pop(int(label), None)

    def covariance(self, class_id: int) -> torch.Tensor:
        """Σ''_c: the class covariance, shrunk and (by default) normalized to a correlation matrix."""
        sigma = self.stats_.class_covariance(class_id, ddof=1)
        dim = len(sigma)
        diagonal_mean = sigma.diagonal().mean()
        off_diagonal_mean = (
            (sigma.sum() - sigma.diagonal().sum()) / (dim * (dim - 1)) if dim > 1 else 0.0
        )
        off_diagonal = torch.ones_like(sigma) - torch.eye(dim, dtype=sigma.dtype)
        shrunk = (
            sigma
            + self.config.shrink_diagonal * diagonal_mean * torch.eye(dim, dtype=sigma.dtype)
            + self.config.shrink_off_diagonal * off_diagonal_mean * off_diagonal
        )
        if not bool((shrunk.diagonal() > 0).all()):  # degenerate: e.g. a single sample
            return torch.eye(dim, dtype=sigma.dtype)
        if self.config.normalize_covariance:
            std = shrunk.diagonal().sqrt()
            shrunk = shrunk / torch.outer(std, std)
        return shrunk

    def precision(self, class_id: int) -> torch.Tensor:
        """(Σ''_c)⁺, the pseudo-inverse used in the distance (cached until the class changes)."""
        if class_id not in self._precisions:
            self._precisions[class_id] = torch.linalg.pinv(
                self.covariance(class_id), hermitian=True
            )
        return self._precisions[class_id]

    def score_trained(self, batch: torch.Tensor, class_ids: Sequence[int]) -> torch.Tensor:
        """−(x̂ − μ̂_c)ᵀ P_c (x̂ − μ̂_c) for each class c of ``class_ids``."""
        x = F.normalize(self.transform(batch), dim=-1)
        means = F.normalize(self.stats_.means(class_ids), dim=-1)
        distances = []
        for mean, class_id in zip(means, class_ids, strict=True):
            centred = x - mean
            distances.append(((centred @ self.precision(class_id)) * centred).sum(dim=1))
        return -torch.stack(distances, dim=1)

    def forget_derived(self) -> None:
        """Drop the cached precisions."""
        self._precisions = {}
