"""Sequential linear probe: a linear head on frozen, normalized features, trained task after task on
the current task's data only (the linear-probe protocol of CLIP: Radford et al., "Learning
Transferable Visual Models From Natural Language Supervision", ICML 2021, applied sequentially).

Algorithm: logits_c(x) = s · v_cᵀ f̂(x) + b_c with f̂ = f / ‖f‖ and s the backbone's logit scale.
When a task arrives, the head gains a row per new class; then ``epochs`` passes of mini-batch
``optimizer`` minimize the cross-entropy over every class seen so far, on the current task's samples
only. Nothing protects old classes: their rows only ever receive negative evidence, so the head
forgets. It is the forgetting reference among feature methods, as ``finetune`` is among image ones.

Our choices: new rows start from the class's text embedding (v_c = t_c, b_c = 0), so an untrained head
is exactly zero-shot CLIP and classes without a row are scored the same way, on the same scale
(``init = "zeros"`` starts from zero instead). The scale s is fixed, so the learning rate acts on
unit-norm directions whatever the backbone. A fresh optimizer per task; mini-batches drawn from the
run's seeded generator, so runs are deterministic.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from driftless.methods.base import (
    Context,
    LabelSpace,
    MethodBase,
    TaskData,
    class_columns,
)
from driftless.methods.parts.optimisation import train_on_minibatches
from driftless.methods.parts.untrained_classes import (
    Mixing,
    UntrainedClassesConfig,
    score_label_space,
)
from driftless.methods.registry import register_method


class LinearProbeConfig(UntrainedClassesConfig):
    """Hyper-parameters of :class:`LinearProbe`."""

    epochs: int = Field(default=10, gt=0)
    """Passes over each task's data."""

    lr: float = Field(default=1e-3, gt=0.0)
    """Learning rate."""

    batch_size: int = Field(default=32, gt=0)
    """Samples per optimizer step."""

    optimizer: Literal["adam", "sgd"] = "adam"
    """Adam, or SGD with ``momentum``."""

    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    """SGD momentum (ignored by Adam)."""

    weight_decay: float = Field(default=0.0, ge=0.0)
    """L2 penalty on the head."""

    init: Literal["text", "zeros"] = "text"
    """New rows: the class's text embedding (the head starts as zero-shot CLIP), or zeros."""

    mixing: Mixing = "raw"
    """Text-initialised rows and zero-shot logits share one scale, so by default they are compared
    as they are ("raw")."""


@register_method
class LinearProbe(MethodBase[LinearProbeConfig]):
    """Linear head on normalized frozen features, trained on each task in turn with cross-entropy."""

    name = "linear-probe"
    inputs = "features"
    Config = LinearProbeConfig

    def __init__(self, config: LinearProbeConfig | None = None):
        super().__init__(config)
        self.class_ids_: list[int] = []
        self.directions_: torch.Tensor | None = None  # (K, D) v_c
        self.bias_: torch.Tensor | None = None  # (K,) b_c

    def _add_rows(self, seen: LabelSpace, ctx: Context, dim: int) -> None:
        known = set(self.class_ids_)
        new = [i for i, c in enumerate(seen.class_ids) if c not in known]
        if not new:
            return
        if self.config.init == "text":
            rows = ctx.text_embeddings(seen)[new].detach().float().cpu().clone()
        else:
            rows = torch.zeros(len(new), dim)
        old_rows = self.directions_ if self.directions_ is not None else torch.empty(0, dim)
        old_bias = self.bias_ if self.bias_ is not None else torch.empty(0)
        self.directions_ = torch.cat([old_rows, rows])
        self.bias_ = torch.cat([old_bias, torch.zeros(len(new))])
        self.class_ids_ += [seen.class_ids[i] for i in new]

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Grow the head to every class seen, then train it on this task's samples."""
        assert data.features is not None
        features = F.normalize(data.features.float(), dim=-1).to(ctx.device)
        self._add_rows(data.seen_label_space, ctx, features.shape[1])
        assert self.directions_ is not None and self.bias_ is not None
        targets = torch.tensor(
            class_columns(self.class_ids_, data.labels.tolist()), device=ctx.device
        )
        directions = torch.nn.Parameter(self.directions_.to(ctx.device))
        bias = torch.nn.Parameter(self.bias_.to(ctx.device))
        parameters = [directions, bias]
        if self.config.optimizer == "adam":
            optimizer: torch.optim.Optimizer = torch.optim.Adam(
                parameters, lr=self.config.lr, weight_decay=self.config.weight_decay
            )
        else:
            optimizer = torch.optim.SGD(
                parameters,
                lr=self.config.lr,
                momentum=self.config.momentum,
                weight_decay=self.config.weight_decay,
            )
        scale = ctx.backbone.logit_scale

        def batch_loss(rows: torch.Tensor) -> torch.Tensor:
            logits = scale * features[rows] @ directions.T + bias
            return F.cross_entropy(logits, targets[rows])

        train_on_minibatches(
            optimizer, batch_loss, len(features), epochs=self.config.epochs,
            batch_size=self.config.batch_size, generator=ctx.generator, device=ctx.device,
            log=ctx.log_metrics,
        )  # fmt: skip
        self.directions_ = directions.detach().cpu()
        self.bias_ = bias.detach().cpu()

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """s · v_cᵀ f̂(x) + b_c for classes with a row; zero-shot logits (s · cos) for the others."""

        def score(class_ids: list[int]) -> torch.Tensor:
            assert self.directions_ is not None and self.bias_ is not None
            rows = class_columns(self.class_ids_, class_ids)
            directions = self.directions_[rows].to(batch.device)
            features = F.normalize(batch.float(), dim=-1)
            return ctx.backbone.logit_scale * features @ directions.T + self.bias_[rows].to(
                batch.device
            )

        return score_label_space(
            self.name, batch, label_space, ctx, set(self.class_ids_), score,
            self.config.unseen, self.config.mixing,
        )  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """The head's rows, biases and class ids."""
        return {
            "class_ids": torch.tensor(self.class_ids_, dtype=torch.long),
            "directions": self.directions_,
            "bias": self.bias_,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the head."""
        self.class_ids_ = state["class_ids"].tolist()
        self.directions_ = None if state["directions"] is None else state["directions"].clone()
        self.bias_ = None if state["bias"] is None else state["bias"].clone()
