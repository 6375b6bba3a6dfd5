"""Generative feature replay: per-class Gaussians N(μ_c, Σ_c + εI) of stored features, sampled.

Methods that may keep no old samples keep each class's mean and covariance instead (exact, from the
running sums of :class:`~driftless.methods.parts.gaussian_stats.GaussianClassStats`) and draw
pseudo-features of old classes from them while learning new ones (RAPF, CalFuse). The pieces:

- :func:`class_gaussians`: means and Cholesky factors L_c (L_c L_cᵀ = Σ_c + εI) of chosen classes,
  with each class's own covariance or the pooled within-class one shared by all;
- :func:`sample_gaussians`: n draws per class, x = μ_c + L_c z with z ~ N(0, I) from a given
  generator, so replay is reproducible.

The ridge ε makes the factor exist when a class has fewer samples than dimensions (its sample
covariance is then singular) and is absolute: it is in the features' units squared.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch

from driftless.methods.parts.gaussian_stats import GaussianClassStats

CovarianceKind = Literal["class", "shared"]


def cholesky_factor(covariance: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Lower-triangular L (float64) with L Lᵀ = Σ + εI. If rounding leaves Σ + εI not numerically
    positive definite, its eigenvalues are clipped at ε first."""
    system = covariance.to(torch.float64).clone()
    system.diagonal().add_(epsilon)
    factor, info = torch.linalg.cholesky_ex(system)
    if int(info) == 0:
        return factor
    eigenvalues, eigenvectors = torch.linalg.eigh((system + system.T) / 2)
    clipped = eigenvalues.clamp(min=max(epsilon, torch.finfo(torch.float64).tiny))
    return torch.linalg.cholesky((eigenvectors * clipped) @ eigenvectors.T)


def class_gaussians(
    stats: GaussianClassStats,
    class_ids: Sequence[int],
    epsilon: float,
    covariance: CovarianceKind = "class",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, D) means and (C, D, D) Cholesky factors of N(μ_c, Σ_c + εI) for ``class_ids`` (float64).

    ``covariance = "class"`` uses each class's own (unbiased) covariance and needs
    ``stats.per_class_scatter``; ``"shared"`` uses the pooled within-class covariance for all."""
    if not class_ids:
        raise ValueError("class_gaussians: no classes given")
    means = stats.means(class_ids)
    if covariance == "shared":
        factor = cholesky_factor(stats.pooled_covariance(), epsilon)
        factors = factor.expand(len(class_ids), *factor.shape).clone()
    else:
        factors = torch.stack(
            [cholesky_factor(stats.class_covariance(c), epsilon) for c in class_ids]
        )
    return means, factors


def sample_gaussians(
    means: torch.Tensor,
    factors: torch.Tensor,
    per_class: int,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` draws from each Gaussian: samples (C·n, D), class-major, and the (C·n,) index
    of the Gaussian each came from. Computed in ``dtype`` (float32 draws are ~5× cheaper than
    float64 on a CPU) on the generator's device (the CPU for a default generator)."""
    num_classes, dim = means.shape
    noise = torch.randn(num_classes, per_class, dim, generator=generator, dtype=dtype)
    samples = means.to(dtype)[:, None, :] + noise @ factors.to(dtype).transpose(1, 2)
    owners = torch.arange(num_classes).repeat_interleave(per_class)
    return samples.reshape(num_classes * per_class, dim), owners
