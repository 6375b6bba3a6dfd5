"""Fusing a newly trained weight matrix into the one it was trained from (pure functions).

A continual method that keeps one adapter matrix trains it on task t starting from W_old (the matrix
after task t − 1) and gets W_new. These functions merge the two into the matrix kept after task t.

**Masked fusion in the old matrix's basis** (:func:`qr_fuse`, :func:`svd_fuse`). Write the old
matrix as an orthonormal basis times coordinates, W_old = B C_old (QR: B = Q, C_old = R; SVD:
B = U, C_old = S Vᵀ), and express the new matrix in the same basis, C_new = Bᵀ W_new. Then

    D = |C_new − C_old|,   M = min(1, D / max(D) + b),   W = B (C_new ⊙ M + C_old ⊙ (1 − M)).

Coordinates the new task moved the most (D near max D) take the new value, the others keep at least
a share b of the new value and the rest of the old one; b ≥ 1 takes every new coordinate (M = 1).

What the result is, exactly (B has orthonormal columns spanning the column space of W_old when W_old
is square or tall with full column rank, the case these functions are meant for):

- W = W_old + B (M ⊙ Bᵀ (W_new − W_old)) (as W_old = B C_old): the update W − W_old is the new
  update, projected onto the column space of B and damped entry by entry in that basis;
- the columns of W lie in the column space of B; for a square invertible W_old that is all of R^D,
  for a tall (m × n, m > n) W_old it is the n-dimensional column space of W_old, so the parts of
  W_new outside it are dropped (b ≥ 1 then gives B Bᵀ W_new, the projection of W_new);
- in the basis B each coordinate of W lies on the segment between the old and the new coordinate,
  at a fraction M ∈ [min(b, 1), 1] of the way to the new one;
- W_new = W_old gives W_old back (D = 0), up to rounding.

The mask is the same whichever signs the decomposition gives its basis vectors (flipping a column
of B flips the matching rows of C_old and C_new together). The SVD basis is not unique when singular
values repeat (W_old = I, before any fusion, has one D-fold singular value): LAPACK then picks one
basis, deterministically. The QR basis of an invertible matrix is unique up to those signs.

The QR form is CalFuse's (Guo et al., arXiv 2503.18672); the SVD form is RAPF's (Huang et al.,
"Class-Incremental Learning with CLIP: Adaptive Representation Adjustment and Parameter Fusion",
ECCV 2024). :func:`average_fuse` is the plain interpolation (1 − α) W_old + α W_new.

Everything is computed in float64 and returned in the dtype of ``new``.
"""

from __future__ import annotations

import torch


def masked_merge(old_coords: torch.Tensor, new_coords: torch.Tensor, bias: float) -> torch.Tensor:
    """C_new ⊙ M + C_old ⊙ (1 − M) with M = min(1, |C_new − C_old| / max|C_new − C_old| + bias).

    When the coordinates are identical (max = 0) the old ones are returned as they are."""
    if torch.equal(new_coords, old_coords):
        return old_coords.clone()
    mask = fusion_mask(old_coords, new_coords, bias)
    return new_coords * mask + old_coords * (1.0 - mask)


def fusion_mask(old_coords: torch.Tensor, new_coords: torch.Tensor, bias: float) -> torch.Tensor:
    """The mask M = min(1, D / max(D) + bias) of :func:`masked_merge` (all ones if D = 0 and bias
    ≥ 1, all ``min(bias, 1)`` if D = 0 otherwise)."""
    distance = (new_coords - old_coords).abs()
    largest = distance.max()
    scaled = distance / largest if float(largest) > 0.0 else torch.zeros_like(distance)
    return torch.clamp(scaled + bias, max=1.0)


def _check(old: torch.Tensor, new: torch.Tensor) -> None:
    if old.ndim != 2 or old.shape != new.shape:
        raise ValueError(f"fusion needs two matrices of one shape, got {old.shape} and {new.shape}")
    if old.shape[0] < old.shape[1]:
        raise ValueError(f"fusion needs a square or tall matrix (m ≥ n), got {tuple(old.shape)}")


def qr_fuse(old: torch.Tensor, new: torch.Tensor, bias: float = 0.6) -> torch.Tensor:
    """CalFuse's QR fusion: W_old = Q R (reduced QR), P = Qᵀ W_new, D = |P − R|,
    M = min(1, D / max(D) + bias), W = Q (P ⊙ M + R ⊙ (1 − M)). See the module docstring for
    what the result is (span, identities)."""
    _check(old, new)
    old64, new64 = old.detach().to(torch.float64), new.detach().to(torch.float64)
    basis, old_coords = torch.linalg.qr(old64, mode="reduced")
    new_coords = basis.T @ new64
    return (basis @ masked_merge(old_coords, new_coords, bias)).to(new.dtype)


def svd_fuse(old: torch.Tensor, new: torch.Tensor, bias: float = 0.6) -> torch.Tensor:
    """RAPF's SVD fusion: W_old = U S Vᵀ (thin SVD), P = Uᵀ W_new, D = |P − S Vᵀ|,
    M = min(1, D / max(D) + bias), W = U (P ⊙ M + S Vᵀ ⊙ (1 − M))."""
    _check(old, new)
    old64, new64 = old.detach().to(torch.float64), new.detach().to(torch.float64)
    left, singular, right_t = torch.linalg.svd(old64, full_matrices=False)
    old_coords = singular[:, None] * right_t
    new_coords = left.T @ new64
    return (left @ masked_merge(old_coords, new_coords, bias)).to(new.dtype)


def average_fuse(old: torch.Tensor, new: torch.Tensor, weight: float = 0.5) -> torch.Tensor:
    """(1 − weight) W_old + weight W_new: weight 0 keeps the old matrix, 1 takes the new one."""
    if old.shape != new.shape:
        raise ValueError(f"fusion needs two matrices of one shape, got {old.shape} and {new.shape}")
    old64, new64 = old.detach().to(torch.float64), new.detach().to(torch.float64)
    return ((1.0 - weight) * old64 + weight * new64).to(new.dtype)
