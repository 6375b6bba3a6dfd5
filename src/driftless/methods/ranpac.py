"""RanPAC: random projections and a ridge head on frozen features (McDonnell, Gong, Parvaneh,
Abbasnejad, van den Hengel, "RanPAC: Random Projections and Pre-trained Models for Continual
Learning", NeurIPS 2023).

Algorithm:
1. h(x) = ReLU(f(x) W_rand), W_rand ∈ R^{D×M} i.i.d. N(0, 1), drawn once (M = 10,000).
2. Over every task accumulate G = Σ h hᵀ (M×M) and C = Σ h yᵀ (M×K, y one-hot over the classes
   seen so far), in float64.
3. After each task choose the ridge λ ∈ {10⁻⁸, …, 10⁸}: split the task's samples 80/20, fit
   W_λ = (G_prev + G_80 + λI)⁻¹ (C_prev + C_80) for every λ through one eigendecomposition of
   G_prev + G_80, keep the λ with the best accuracy on the 20 %.
4. W = (G + λI)⁻¹ C on all samples (Cholesky); scores h(x) W.

Our choices: RanPAC's first phase (parameter-efficient adaptation of the backbone on task 1) is not
part of this features-only method: the backbone stays frozen. The paper's code picks λ by mean squared
error on the last 20 % of the current task alone; we pick by accuracy (ties broken by squared error,
then by the larger λ) with the earlier tasks' statistics included, on a random split drawn from the
run's seeded generator (``selection_metric = "mse"`` selects by squared error). When the task is too
small to split, the previous λ is kept (before any choice, the middle of the grid). h is computed in
chunks of ``chunk_size`` rows, so the N×M matrix of expanded features never exists. Classes never
trained on are scored by zero-shot CLIP (see :mod:`driftless.methods.parts.untrained_classes`).

Cost: G is M² float64 (800 MB at M = 10,000) and is part of the state, hence of every checkpoint.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field

from driftless.methods.base import Context, LabelSpace, MethodBase, TaskData, class_columns
from driftless.methods.parts.random_features import RandomReLUFeatures
from driftless.methods.parts.ridge import RidgePath, RidgeStatistics, solve_ridge
from driftless.methods.parts.untrained_classes import UntrainedClassesConfig, score_label_space
from driftless.methods.registry import register_method

# memory for the candidate heads scored at once during λ selection (they are grouped to fit)
_SELECTION_BYTES = 256 * 2**20


class RanPACConfig(UntrainedClassesConfig):
    """Hyper-parameters of :class:`RanPAC`."""

    num_features: int = Field(default=10_000, gt=0)
    """M, the width of the random ReLU projection (10,000 in the paper)."""

    ridge_lambdas: tuple[Annotated[float, Field(gt=0)], ...] = Field(
        default=tuple(10.0**k for k in range(-8, 9)), min_length=1
    )
    """Candidate ridge parameters λ (10⁻⁸ … 10⁸ in the paper)."""

    validation_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    """Share of the current task held out to choose λ (20 % in the paper)."""

    selection_metric: Literal["accuracy", "mse"] = "accuracy"
    """Choose λ by held-out accuracy (ties: squared error) or by squared error (the paper's code)."""

    chunk_size: int = Field(default=2048, gt=0)
    """Rows of h computed at once: bounds memory, does not change the result beyond rounding."""


@register_method
class RanPAC(MethodBase[RanPACConfig]):
    """RanPAC: ridge regression on a fixed random ReLU projection of frozen features."""

    name = "ranpac"
    inputs = "features"
    Config = RanPACConfig

    def __init__(self, config: RanPACConfig | None = None):
        super().__init__(config)
        self.projection_: RandomReLUFeatures | None = None
        self.stats_: RidgeStatistics | None = None
        self.class_ids_: list[int] = []
        self.weights_: np.ndarray | None = None  # (M, K) ridge head
        lambdas = sorted(self.config.ridge_lambdas)
        self.ridge_lambda_: float = lambdas[len(lambdas) // 2]
        self.chosen_lambdas_: list[float] = []

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Accumulate G and C over the task, choose λ on an 80/20 split, solve for W."""
        assert data.features is not None
        features = data.features
        if self.projection_ is None:
            self.projection_ = RandomReLUFeatures.draw(
                features.shape[1], self.config.num_features, ctx.generator, "normal"
            )
            self.stats_ = RidgeStatistics(self.config.num_features)
        assert self.stats_ is not None
        known = set(self.class_ids_)
        self.class_ids_ += sorted({int(c) for c in data.labels.tolist()} - known)
        self.stats_.grow_targets(len(self.class_ids_))
        columns = torch.tensor(
            class_columns(self.class_ids_, data.labels.tolist()), dtype=torch.long
        )

        order = torch.randperm(len(features), generator=ctx.generator)
        num_held_out = int(len(features) * self.config.validation_fraction)
        held_out, fit = order[:num_held_out], order[num_held_out:]
        self._accumulate(features[fit], columns[fit])
        if num_held_out > 0 and len(fit) > 0:
            self.ridge_lambda_ = self._select_lambda(features[held_out], columns[held_out])
        self.chosen_lambdas_.append(self.ridge_lambda_)
        self._accumulate(features[held_out], columns[held_out])
        self.weights_ = solve_ridge(self.stats_.gram(), self.stats_.targets(), self.ridge_lambda_)

    def _accumulate(self, features: torch.Tensor, columns: torch.Tensor) -> None:
        assert self.projection_ is not None and self.stats_ is not None
        for rows, expanded in self.projection_.chunks(features, self.config.chunk_size):
            self.stats_.add(expanded.numpy(), self._one_hot(columns[rows]))

    def _one_hot(self, columns: torch.Tensor) -> np.ndarray:
        targets = np.zeros((len(columns), len(self.class_ids_)))
        targets[np.arange(len(columns)), columns.numpy()] = 1.0
        return targets

    def _select_lambda(self, features: torch.Tensor, columns: torch.Tensor) -> float:
        """The λ whose head, fitted on everything accumulated so far, scores the held-out rows best."""
        assert self.projection_ is not None and self.stats_ is not None
        lambdas = list(self.config.ridge_lambdas)
        path = RidgePath(self.stats_.gram(), self.stats_.targets())
        num_classes = len(self.class_ids_)
        per_group = max(1, _SELECTION_BYTES // (8 * self.stats_.dim * num_classes))
        correct = np.zeros(len(lambdas))
        squared_error = np.zeros(len(lambdas))
        for first in range(0, len(lambdas), per_group):
            group = lambdas[first : first + per_group]
            heads = path.weights_stacked(group)  # (M, len(group)·K)
            for rows, expanded in self.projection_.chunks(features, self.config.chunk_size):
                scores = (expanded.numpy() @ heads).reshape(-1, len(group), num_classes)
                truth = columns[rows].numpy()
                correct[first : first + len(group)] += (scores.argmax(-1) == truth[:, None]).sum(0)
                scores[np.arange(len(truth)), :, truth] -= 1.0  # scores − one-hot targets
                squared_error[first : first + len(group)] += np.square(scores).sum(axis=(0, 2))
        del path
        if self.config.selection_metric == "accuracy":
            # best accuracy, then lowest squared error, then the largest λ
            best = min(
                range(len(lambdas)), key=lambda i: (-correct[i], squared_error[i], -lambdas[i])
            )
        else:
            best = min(range(len(lambdas)), key=lambda i: (squared_error[i], -lambdas[i]))
        return float(lambdas[best])

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """h(x) W for trained classes; zero-shot logits for the others."""

        def score(class_ids: list[int]) -> torch.Tensor:
            assert self.projection_ is not None and self.weights_ is not None
            head = torch.from_numpy(self.weights_[:, class_columns(self.class_ids_, class_ids)])
            return self.projection_(batch) @ head

        return score_label_space(
            self.name, batch, label_space, ctx, set(self.class_ids_), score,
            self.config.unseen, self.config.mixing,
        )  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """W_rand, G, C, the class columns, λ and W."""
        if self.projection_ is None or self.stats_ is None or self.weights_ is None:
            return {"class_ids": torch.empty(0, dtype=torch.long)}
        return {
            "projection": self.projection_.state_dict(),
            "stats": self.stats_.state_dict(),
            "class_ids": torch.tensor(self.class_ids_, dtype=torch.long),
            "ridge_lambda": self.ridge_lambda_,
            "chosen_lambdas": list(self.chosen_lambdas_),
            "weights": torch.from_numpy(self.weights_),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.class_ids_ = state["class_ids"].tolist()
        if not self.class_ids_:
            return
        self.projection_ = RandomReLUFeatures.from_state_dict(state["projection"])
        self.stats_ = RidgeStatistics(self.projection_.width)
        self.stats_.load_state_dict(state["stats"])
        self.ridge_lambda_ = float(state["ridge_lambda"])
        self.chosen_lambdas_ = [float(v) for v in state["chosen_lambdas"]]
        self.weights_ = state["weights"].numpy().copy()
