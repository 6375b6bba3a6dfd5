"""Per-class Gaussians of an image tower's token states, for replay without images: the states
entering one block, each (token, channel) with its own mean and variance per class (diagonal), and
draws from them. A control of PMI's image replay (``pmi[replay=features]``): the same old classes,
seen by the trainable blocks through sampled token states instead of inverted images."""

from __future__ import annotations

from typing import Any

import torch


class ClassTokenGaussians:
    """Running float64 sums of the token states (T, width) of each class, and diagonal Gaussian
    draws from them."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.sums: dict[int, torch.Tensor] = {}
        self.squares: dict[int, torch.Tensor] = {}

    def __contains__(self, class_id: int) -> bool:
        return class_id in self.counts

    def update(self, tokens: torch.Tensor, labels: torch.Tensor) -> None:
        """Add token states (B, T, width) of images with global ``labels`` (B,)."""
        states = tokens.detach().double().cpu()
        for c in torch.unique(labels).tolist():
            rows = states[labels.cpu() == c]
            self.counts[c] = self.counts.get(c, 0) + len(rows)
            self.sums[c] = self.sums.get(c, 0) + rows.sum(0)
            self.squares[c] = self.squares.get(c, 0) + rows.square().sum(0)

    def mean(self, class_id: int) -> torch.Tensor:
        """(T, width) mean token states of ``class_id``."""
        return self.sums[class_id] / self.counts[class_id]

    def std(self, class_id: int) -> torch.Tensor:
        """(T, width) standard deviation (unbiased where the class has two or more images)."""
        n = self.counts[class_id]
        variance = (self.squares[class_id] - n * self.mean(class_id).square()) / max(n - 1, 1)
        return variance.clamp_min(0.0).sqrt()

    def moments(self, class_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 means and standard deviations (C, T, width) of ``class_ids``, in that order."""
        means = torch.stack([self.mean(c) for c in class_ids]).float()
        stds = torch.stack([self.std(c) for c in class_ids]).float()
        return means, stds

    def sample(
        self, class_ids: list[int], count: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` float32 draws (count, T, width), each of a class drawn uniformly from
        ``class_ids``, and their global labels."""
        return draw_tokens(*self.moments(class_ids), class_ids, count, generator)

    def state_dict(self) -> dict[str, Any]:
        """Class ids, counts and sums (float64)."""
        ids = sorted(self.counts)
        return {
            "class_ids": torch.tensor(ids, dtype=torch.long),
            "counts": torch.tensor([self.counts[c] for c in ids], dtype=torch.long),
            "sums": torch.stack([self.sums[c] for c in ids]) if ids else torch.empty(0),
            "squares": torch.stack([self.squares[c] for c in ids]) if ids else torch.empty(0),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        ids = state["class_ids"].tolist()
        self.counts = {c: int(n) for c, n in zip(ids, state["counts"].tolist(), strict=True)}
        self.sums = {c: state["sums"][i].clone() for i, c in enumerate(ids)}
        self.squares = {c: state["squares"][i].clone() for i, c in enumerate(ids)}


def draw_tokens(
    means: torch.Tensor,
    stds: torch.Tensor,
    class_ids: list[int],
    count: int,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` draws from the diagonal Gaussians (``means``, ``stds``: (C, T, width), rows in the
    order of ``class_ids``), each of a class drawn uniformly, and their global labels; the moments
    are computed once (:meth:`ClassTokenGaussians.moments`) for the many steps of a task."""
    which = torch.randint(len(class_ids), (count,), generator=generator)
    noise = torch.randn(means[which].shape, generator=generator)
    labels = torch.tensor(class_ids, dtype=torch.long)[which]
    return means[which] + stds[which] * noise, labels
