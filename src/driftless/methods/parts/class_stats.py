"""Running per-class statistics of features, updated exactly from sums."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class RunningClassMeans:
    """Per-class feature sums and counts in float64; ``means`` equals the mean over every sample
    seen, whatever the order or batching."""

    def __init__(self) -> None:
        self.sums: dict[int, torch.Tensor] = {}
        self.counts: dict[int, int] = {}

    def update(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Add a batch of features with their labels."""
        features = features.detach().to(torch.float64).cpu()
        labels = labels.cpu()
        for label in labels.unique().tolist():
            rows = features[labels == label]
            if label in self.sums:
                self.sums[label] += rows.sum(dim=0)
            else:
                self.sums[label] = rows.sum(dim=0)
            self.counts[label] = self.counts.get(label, 0) + len(rows)

    def __contains__(self, class_id: int) -> bool:
        return class_id in self.sums

    def means(self, class_ids: Sequence[int]) -> torch.Tensor:
        """(C, D) float64 means of the given classes (each must have been seen)."""
        return torch.stack([self.sums[c] / self.counts[c] for c in class_ids])

    def state_dict(self) -> dict[str, Any]:
        """Sums and counts as tensors."""
        ids = sorted(self.sums)
        return {
            "class_ids": torch.tensor(ids, dtype=torch.long),
            "sums": torch.stack([self.sums[c] for c in ids]) if ids else torch.empty(0),
            "counts": torch.tensor([self.counts[c] for c in ids], dtype=torch.long),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        ids = state["class_ids"].tolist()
        self.sums = {c: state["sums"][i].clone() for i, c in enumerate(ids)}
        self.counts = {c: int(state["counts"][i]) for i, c in enumerate(ids)}
