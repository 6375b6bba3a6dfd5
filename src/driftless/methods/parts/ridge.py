"""Ridge regression from sufficient statistics, in float64.

With inputs h (rows) and targets y, ridge regression is W = (G + λI)⁻¹ C with the Gram matrix
G = Σ h hᵀ and C = Σ h yᵀ. The tools:

- :class:`RidgeStatistics` accumulates G and C chunk by chunk (G by symmetric rank-k updates, half
  the work of a general product), so the rows h never need to exist all at once;
- :class:`RidgePath` solves for many λ through one eigendecomposition G = V diag(e) Vᵀ:
  (G + λI)⁻¹ C = V diag(1 / (e + λ)) Vᵀ C;
- :func:`solve_ridge` solves for one λ by Cholesky, :func:`solve_positive_definite` any
  symmetric positive (semi-)definite system;
- :class:`RecursiveRidge` keeps R = (Σ XᵀX + γI)⁻¹ and W = R Σ XᵀY up to date batch by batch
  (Woodbury), equal to the joint solution on all rows seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.linalg
import torch
from scipy.linalg.blas import dsyrk


class RidgeStatistics:
    """G = Σ h hᵀ (M×M) and C = Σ h yᵀ (M×K), float64, accumulated in chunks.

    :meth:`add` updates only the upper triangle of G; :meth:`gram` fills in the lower one first.
    The number of target columns may grow (new classes): earlier rows had target 0 there.
    """

    def __init__(self, dim: int, num_targets: int = 0) -> None:
        self.gram_ = np.zeros((dim, dim))
        self.targets_ = np.zeros((dim, num_targets))
        self._lower_stale = False

    @property
    def dim(self) -> int:
        """M, the width of the inputs h."""
        return self.gram_.shape[0]

    def grow_targets(self, num_targets: int) -> None:
        """Append zero columns to C up to ``num_targets`` columns."""
        extra = num_targets - self.targets_.shape[1]
        if extra > 0:
            self.targets_ = np.hstack([self.targets_, np.zeros((self.dim, extra))])

    def add(self, inputs: np.ndarray, targets: np.ndarray) -> None:
        """Add rows: ``inputs`` (n, M) and ``targets`` (n, K) float64."""
        inputs = np.asarray(inputs, dtype=np.float64)
        if len(inputs) == 0:
            return
        # G is C-ordered, so G.T is a Fortran view of the same memory: BLAS writes its lower
        # triangle (= the upper triangle of G) in place, with hᵀ h computed as (hᵀ)(hᵀ)ᵀ
        dsyrk(1.0, inputs.T, beta=1.0, c=self.gram_.T, trans=0, lower=1, overwrite_c=1)
        self._lower_stale = True
        self.targets_ += inputs.T @ np.asarray(targets, dtype=np.float64)

    def gram(self) -> np.ndarray:
        """The full symmetric G (a view of the accumulator: copy it before changing it)."""
        if self._lower_stale:
            _copy_upper_to_lower(self.gram_)
            self._lower_stale = False
        return self.gram_

    def targets(self) -> np.ndarray:
        """C (a view of the accumulator)."""
        return self.targets_

    def state_dict(self) -> dict[str, Any]:
        """G (full) and C as tensors."""
        return {"gram": torch.from_numpy(self.gram()), "targets": torch.from_numpy(self.targets_)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.gram_ = np.ascontiguousarray(state["gram"].numpy(), dtype=np.float64).copy()
        self.targets_ = np.array(state["targets"].numpy(), dtype=np.float64)
        self._lower_stale = False


def _copy_upper_to_lower(matrix: np.ndarray, block: int = 1024) -> None:
    # block by block, so that no M×M temporary is needed
    n = len(matrix)
    for start in range(0, n, block):
        stop = min(start + block, n)
        matrix[start:stop, :start] = matrix[:start, start:stop].T
        square = matrix[start:stop, start:stop]
        square[...] = np.triu(square) + np.triu(square, 1).T


class RidgePath:
    """Ridge solutions (G + λI)⁻¹ C for any number of λ from one eigendecomposition of G.

    Eigenvalues below zero (G is positive semi-definite; rounding can make tiny ones negative) are
    set to zero. ``gram`` is left as it is: LAPACK works on one Fortran-ordered copy, which becomes
    the eigenvectors (memory: G, that copy, and LAPACK's divide-and-conquer workspace of ~2 M²).
    """

    def __init__(self, gram: np.ndarray, targets: np.ndarray) -> None:
        eigenvalues, eigenvectors = scipy.linalg.eigh(
            np.array(gram, dtype=np.float64, order="F"),
            overwrite_a=True,
            check_finite=False,
            driver="evd",
        )
        self.eigenvalues = np.clip(eigenvalues, 0.0, None)
        self.eigenvectors = eigenvectors
        self.projected_targets = eigenvectors.T @ targets  # Vᵀ C

    def weights(self, ridge_lambda: float) -> np.ndarray:
        """(M, K) solution for one λ."""
        scaled = self.projected_targets / (self.eigenvalues + ridge_lambda)[:, None]
        return self.eigenvectors @ scaled

    def weights_stacked(self, ridge_lambdas: Sequence[float]) -> np.ndarray:
        """(M, L·K): the solutions for L values of λ side by side, one product for all."""
        scaled = [
            self.projected_targets / (self.eigenvalues + lam)[:, None] for lam in ridge_lambdas
        ]
        return self.eigenvectors @ np.hstack(scaled)


def solve_ridge(gram: np.ndarray, targets: np.ndarray, ridge_lambda: float) -> np.ndarray:
    """(G + λI)⁻¹ C by Cholesky (eigendecomposition if G + λI is not numerically positive definite)."""
    system = torch.from_numpy(gram).clone()
    system.diagonal().add_(ridge_lambda)
    factor, info = torch.linalg.cholesky_ex(system)
    if int(info) == 0:
        return torch.cholesky_solve(torch.from_numpy(targets), factor).numpy()
    del system, factor
    return RidgePath(gram, targets).weights(ridge_lambda)


def solve_positive_definite(matrix: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """A⁻¹ B for a symmetric positive definite A, by Cholesky. If A is only semi-definite
    (numerically singular), the minimum-norm solution through its eigendecomposition instead."""
    factor, info = torch.linalg.cholesky_ex(matrix)
    if int(info) == 0:
        return torch.cholesky_solve(rhs, factor)
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    cutoff = eigenvalues.abs().max() * len(matrix) * torch.finfo(matrix.dtype).eps
    inverse = torch.where(eigenvalues > cutoff, 1.0 / eigenvalues, torch.zeros_like(eigenvalues))
    return eigenvectors @ (inverse[:, None] * (eigenvectors.T @ rhs))


class RecursiveRidge:
    """W = (Σ XᵀX + γI)⁻¹ Σ XᵀY, updated batch by batch without revisiting old batches.

    Keeps R = (Σ XᵀX + γI)⁻¹ (R₀ = I/γ). For a batch X (b×M), Y (b×K), with the Woodbury identity
    K = (I + X R Xᵀ)⁻¹, R ← R − R Xᵀ K X R and W ← W + R Xᵀ (Y − X W) (R already updated). Computed
    with the Cholesky factor L of I + X R Xᵀ and B = L⁻¹ X R: R ← R − Bᵀ B, and R Xᵀ = Bᵀ L⁻¹.
    Target columns may grow (new classes): the new columns of W start at zero, which is their
    joint solution on earlier rows (whose targets there are zero).
    """

    def __init__(self, dim: int, gamma: float) -> None:
        self.gamma = gamma
        self.inverse_gram = torch.eye(dim, dtype=torch.float64) / gamma  # R
        self.weights = torch.zeros(dim, 0, dtype=torch.float64)  # W

    def grow_targets(self, num_targets: int) -> None:
        """Append zero columns to W up to ``num_targets``."""
        extra = num_targets - self.weights.shape[1]
        if extra > 0:
            zeros = torch.zeros(self.weights.shape[0], extra, dtype=torch.float64)
            self.weights = torch.cat([self.weights, zeros], dim=1)

    def update(self, inputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Absorb a batch: ``inputs`` (b, M), ``targets`` (b, K) with K = the current column count."""
        x = inputs.to(torch.float64)
        y = targets.to(torch.float64)
        xr = x @ self.inverse_gram  # X R (R is symmetric)
        system = xr @ x.T
        system.diagonal().add_(1.0)
        factor = torch.linalg.cholesky(system)
        b = torch.linalg.solve_triangular(factor, xr, upper=False)  # L⁻¹ X R
        self.inverse_gram.addmm_(b.T, b, alpha=-1.0)
        residual = y - x @ self.weights
        self.weights += b.T @ torch.linalg.solve_triangular(factor, residual, upper=False)

    def state_dict(self) -> dict[str, Any]:
        """γ, R and W."""
        return {"gamma": self.gamma, "inverse_gram": self.inverse_gram, "weights": self.weights}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> RecursiveRidge:
        """Rebuild from :meth:`state_dict` (without allocating a fresh R first)."""
        ridge = cls.__new__(cls)
        ridge.gamma = float(state["gamma"])
        ridge.inverse_gram = state["inverse_gram"].clone()
        ridge.weights = state["weights"].clone()
        return ridge
