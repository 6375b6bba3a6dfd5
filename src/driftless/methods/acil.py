"""Analytic class-incremental learning on frozen features (ACIL: Zhuang, Weng, Wei, Xie, Toh, Lin,
"ACIL: Analytic Class-Incremental Learning with Absolute Memorization and Privacy Protection",
NeurIPS 2022; G-ACIL: Zhuang, Chen, Fang, He, Tong, Wei, Zeng, Chen, "GACL: Exemplar-Free
Generalized Analytic Continual Learning", NeurIPS 2024).

Algorithm: a fixed random "buffer" expands the features, X = ReLU(f(x) W_buffer) (8,192 wide); a
linear head W is the ridge solution (XᵀX + γI)⁻¹ XᵀY on every sample seen so far, kept by recursive
least squares in float64. With R = (Σ XᵀX + γI)⁻¹, R₀ = I/γ, each batch (X, Y) does

    K = (I + X R Xᵀ)⁻¹,   R ← R − R Xᵀ K X R,   W ← W + R Xᵀ (Y − X W),

Y one-hot over every class seen so far (W gains a zero column per new class). This equals the joint
ridge solution on all data seen ("absolute memorization"), whatever the task split, order or batch
size; tests/methods/test_feature_methods.py checks it to 1e-6.

Our choices: ACIL trains the backbone on the base task and then freezes it; here it is frozen from the
start (CLIP), so the recursion starts at the first task. The buffer is drawn from the run's seeded
generator as the reference code draws it (a bias-free ``torch.nn.Linear``'s U(−1/√D, 1/√D));
``buffer_init = "normal"`` draws N(0, 1) as RanPAC does. Classes never trained on are scored by
zero-shot CLIP (see :mod:`driftless.methods.parts.untrained_classes`).

Cost: R is M² float64 (512 MB at M = 8,192), part of the state and of every checkpoint; each sample
costs O(M²) work.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from driftless.methods.base import Context, LabelSpace, MethodBase, TaskData, class_columns
from driftless.methods.parts.random_features import RandomReLUFeatures
from driftless.methods.parts.ridge import RecursiveRidge
from driftless.methods.parts.untrained_classes import UntrainedClassesConfig, score_label_space
from driftless.methods.registry import register_method


class ACILConfig(UntrainedClassesConfig):
    """Hyper-parameters of :class:`ACIL`."""

    buffer_size: int = Field(default=8192, gt=0)
    """M, the width of the random ReLU buffer (8,192 in the paper's code)."""

    gamma: float = Field(default=0.1, gt=0.0)
    """γ, the ridge regularization; R₀ = I/γ (0.1 in the paper's code)."""

    batch_size: int = Field(default=256, gt=0)
    """Rows per recursive update: changes speed and memory, not the result (beyond rounding)."""

    buffer_init: Literal["uniform", "normal"] = "uniform"
    """Buffer weights: U(−1/√D, 1/√D) as the reference code, or N(0, 1)."""


@register_method
class ACIL(MethodBase[ACILConfig]):
    """ACIL / G-ACIL: recursive ridge on a random ReLU buffer, equal to joint training."""

    name = "acil"
    inputs = "features"
    Config = ACILConfig

    def __init__(self, config: ACILConfig | None = None):
        super().__init__(config)
        self.buffer_: RandomReLUFeatures | None = None
        self.ridge_: RecursiveRidge | None = None
        self.class_ids_: list[int] = []

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Absorb the task batch by batch with the recursive ridge update."""
        assert data.features is not None
        features = data.features
        if self.buffer_ is None:
            self.buffer_ = RandomReLUFeatures.draw(
                features.shape[1], self.config.buffer_size, ctx.generator, self.config.buffer_init
            )
            self.ridge_ = RecursiveRidge(self.config.buffer_size, self.config.gamma)
        assert self.ridge_ is not None
        known = set(self.class_ids_)
        self.class_ids_ += sorted({int(c) for c in data.labels.tolist()} - known)
        self.ridge_.grow_targets(len(self.class_ids_))
        columns = torch.tensor(
            class_columns(self.class_ids_, data.labels.tolist()), dtype=torch.long
        )
        for rows, expanded in self.buffer_.chunks(features, self.config.batch_size):
            targets = F.one_hot(columns[rows], len(self.class_ids_)).to(torch.float64)
            self.ridge_.update(expanded, targets)

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """X(x) W for trained classes; zero-shot logits for the others."""

        def score(class_ids: list[int]) -> torch.Tensor:
            assert self.buffer_ is not None and self.ridge_ is not None
            return (
                self.buffer_(batch)
                @ self.ridge_.weights[:, class_columns(self.class_ids_, class_ids)]
            )

        return score_label_space(
            self.name, batch, label_space, ctx, set(self.class_ids_), score,
            self.config.unseen, self.config.mixing,
        )  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """The buffer, R, W and the class columns."""
        if self.buffer_ is None or self.ridge_ is None:
            return {"class_ids": torch.empty(0, dtype=torch.long)}
        return {
            "buffer": self.buffer_.state_dict(),
            "ridge": self.ridge_.state_dict(),
            "class_ids": torch.tensor(self.class_ids_, dtype=torch.long),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.class_ids_ = state["class_ids"].tolist()
        if not self.class_ids_:
            return
        self.buffer_ = RandomReLUFeatures.from_state_dict(state["buffer"])
        self.ridge_ = RecursiveRidge.from_state_dict(state["ridge"])
