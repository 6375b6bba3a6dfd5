"""Running Gaussian statistics of features per class, exact from float64 sums.

Kept: per class the count n_c and the sum Σ f; over all samples the scatter Σ f fᵀ; optionally per
class the scatter Σ_{y=c} f fᵀ. Every mean and covariance is computed from those sums when asked, so
it equals the statistic of all samples seen, whatever the order or batching (up to float64 rounding).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class GaussianClassStats:
    """Per-class counts, sums and (optionally) scatter matrices of features, plus the total scatter.

    ``per_class_scatter = True`` keeps a D×D matrix per class (needed for per-class covariances, as
    FeCAM uses); without it only the shared matrices (total and pooled covariance, as LDA uses) are
    available, at D² memory in all.
    """

    def __init__(self, per_class_scatter: bool = False) -> None:
        self.per_class_scatter = per_class_scatter
        self.sums: dict[int, torch.Tensor] = {}
        self.counts: dict[int, int] = {}
        self.scatters: dict[int, torch.Tensor] = {}
        self.total_scatter: torch.Tensor | None = None

    def update(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch of (N, D) features with their (N,) global labels."""
        features = features.detach().to(device="cpu", dtype=torch.float64)
        labels = labels.detach().cpu()
        if len(features) != len(labels):
            raise ValueError(f"{len(features)} feature rows but {len(labels)} labels")
        scatter = features.T @ features
        self.total_scatter = scatter if self.total_scatter is None else self.total_scatter + scatter
        for label in labels.unique().tolist():
            rows = features[labels == label]
            row_sum = rows.sum(dim=0)
            self.sums[label] = self.sums[label] + row_sum if label in self.sums else row_sum
            self.counts[label] = self.counts.get(label, 0) + len(rows)
            if self.per_class_scatter:
                class_scatter = rows.T @ rows
                previous = self.scatters.get(label)
                self.scatters[label] = (
                    class_scatter if previous is None else previous + class_scatter
                )

    def __contains__(self, class_id: int) -> bool:
        return class_id in self.sums

    @property
    def class_ids(self) -> list[int]:
        """Every class seen, ascending."""
        return sorted(self.sums)

    @property
    def total_count(self) -> int:
        """Number of samples seen."""
        return sum(self.counts.values())

    def means(self, class_ids: Sequence[int]) -> torch.Tensor:
        """(C, D) float64 class means μ_c = Σ f / n_c (each class must have been seen)."""
        return torch.stack([self.sums[c] / self.counts[c] for c in class_ids])

    def total_mean(self) -> torch.Tensor:
        """(D,) float64 mean of every sample seen."""
        return torch.stack(list(self.sums.values())).sum(dim=0) / self.total_count

    def class_covariance(self, class_id: int, ddof: int = 1) -> torch.Tensor:
        """(D, D) covariance of one class, (Σ f fᵀ − n μ μᵀ) / (n − ddof); zero for one sample."""
        if not self.per_class_scatter:
            raise RuntimeError("class covariances need GaussianClassStats(per_class_scatter=True)")
        n = self.counts[class_id]
        mean = self.sums[class_id] / n
        return (self.scatters[class_id] - n * torch.outer(mean, mean)) / max(n - ddof, 1)

    def total_covariance(self, ddof: int = 1) -> torch.Tensor:
        """(D, D) covariance of all samples around the global mean, (Σ f fᵀ − N m mᵀ) / (N − ddof)."""
        if self.total_scatter is None:
            raise RuntimeError("no samples seen yet")
        n = self.total_count
        mean = self.total_mean()
        return (self.total_scatter - n * torch.outer(mean, mean)) / max(n - ddof, 1)

    def pooled_covariance(self) -> torch.Tensor:
        """(D, D) pooled within-class covariance, (Σ f fᵀ − Σ_c n_c μ_c μ_cᵀ) / (N − C)."""
        if self.total_scatter is None:
            raise RuntimeError("no samples seen yet")
        ids = self.class_ids
        sums = torch.stack([self.sums[c] for c in ids])
        counts = torch.tensor([self.counts[c] for c in ids], dtype=torch.float64)
        between = (sums / counts[:, None]).T @ sums  # Σ_c n_c μ_c μ_cᵀ = Σ_c μ_c (Σ f)ᵀ
        return (self.total_scatter - between) / max(self.total_count - len(ids), 1)

    def state_dict(self) -> dict[str, Any]:
        """Counts, sums and scatters as tensors."""
        ids = self.class_ids
        state: dict[str, Any] = {
            "per_class_scatter": self.per_class_scatter,
            "class_ids": torch.tensor(ids, dtype=torch.long),
            "counts": torch.tensor([self.counts[c] for c in ids], dtype=torch.long),
            "sums": torch.stack([self.sums[c] for c in ids]) if ids else torch.empty(0),
            "total_scatter": self.total_scatter,
        }
        if self.per_class_scatter:
            state["scatters"] = (
                torch.stack([self.scatters[c] for c in ids]) if ids else torch.empty(0)
            )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.per_class_scatter = bool(state["per_class_scatter"])
        ids = state["class_ids"].tolist()
        self.counts = {c: int(state["counts"][i]) for i, c in enumerate(ids)}
        self.sums = {c: state["sums"][i].clone() for i, c in enumerate(ids)}
        self.scatters = (
            {c: state["scatters"][i].clone() for i, c in enumerate(ids)}
            if self.per_class_scatter
            else {}
        )
        total = state["total_scatter"]
        self.total_scatter = None if total is None else total.clone()
