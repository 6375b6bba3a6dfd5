"""A fixed random ReLU expansion of features, h(x) = ReLU(x W), W ∈ R^{D×M} drawn once.

RanPAC (W i.i.d. N(0, 1)) and the analytic-learning family (ACIL's "buffer": the uniform
U(−1/√D, 1/√D) of a default ``torch.nn.Linear``, no bias) put it between the frozen features and a
ridge-regression head. Computed in float64.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Literal

import torch

Distribution = Literal["normal", "uniform"]


class RandomReLUFeatures:
    """h(x) = ReLU(x W) with a fixed random (D, M) float64 matrix W."""

    def __init__(self, weight: torch.Tensor) -> None:
        self.weight = weight.to(device="cpu", dtype=torch.float64)

    @classmethod
    def draw(
        cls,
        in_features: int,
        width: int,
        generator: torch.Generator,
        distribution: Distribution = "normal",
    ) -> RandomReLUFeatures:
        """Draw W (in_features × width) from ``generator``: i.i.d. N(0, 1) (``normal``) or
        U(−1/√D, 1/√D) (``uniform``)."""
        if distribution == "normal":
            weight = torch.randn(in_features, width, generator=generator, dtype=torch.float64)
        elif distribution == "uniform":
            bound = 1.0 / math.sqrt(in_features)
            weight = torch.rand(in_features, width, generator=generator, dtype=torch.float64)
            weight = (2.0 * weight - 1.0) * bound
        else:
            raise ValueError(f"unknown distribution {distribution!r}")
        return cls(weight)

    @property
    def in_features(self) -> int:
        """D, the input width."""
        return self.weight.shape[0]

    @property
    def width(self) -> int:
        """M, the expanded width."""
        return self.weight.shape[1]

    def __call__(self, features: torch.Tensor) -> torch.Tensor:
        """(N, D) features → (N, M) float64 expanded features, on the CPU."""
        features = features.detach().to(device="cpu", dtype=torch.float64)
        if features.shape[1] != self.in_features:
            raise ValueError(
                f"features have width {features.shape[1]}, the expansion expects {self.in_features}"
            )
        return torch.relu_(features @ self.weight)

    def chunks(
        self, features: torch.Tensor, chunk_size: int
    ) -> Iterator[tuple[slice, torch.Tensor]]:
        """(rows, h(features[rows])) for consecutive chunks of at most ``chunk_size`` rows."""
        for start in range(0, len(features), chunk_size):
            rows = slice(start, min(start + chunk_size, len(features)))
            yield rows, self(features[rows])

    def state_dict(self) -> dict[str, Any]:
        """The matrix W."""
        return {"weight": self.weight}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> RandomReLUFeatures:
        """Rebuild from :meth:`state_dict`."""
        return cls(state["weight"].clone())
