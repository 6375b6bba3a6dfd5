"""Methods that break (or keep) the Method contract, for the conformance suite's own tests
(``driftless check-method NAME --import tests/plugins/conformance_plugins.py``)."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import torch
from pydantic import ConfigDict

from driftless.methods.base import Context, LabelSpace, MethodConfig, TaskData
from driftless.methods.ncm import NCM
from driftless.methods.registry import register_method


@register_method
class WrongShapeNCM(NCM):
    """NCM whose logits miss the last class of every label space."""

    name: ClassVar[str] = "wrong-shape-ncm"

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        return super().logits(batch, label_space, ctx)[:, :-1]


@register_method
class ForgetfulStateNCM(NCM):
    """NCM whose ``load_state_dict`` drops the prototypes: a restored copy scores differently."""

    name: ClassVar[str] = "forgetful-state-ncm"

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass  # forgets everything learned


@register_method
class UnseededNCM(NCM):
    """NCM that perturbs its prototypes with entropy from the OS: two runs never agree."""

    name: ClassVar[str] = "unseeded-ncm"

    def learn(self, data: TaskData, ctx: Context) -> None:
        assert data.features is not None
        noise = int.from_bytes(os.urandom(4), "little") / 2**32
        self.class_means_.update(data.features + noise, data.labels)


class _LaxConfig(MethodConfig):
    model_config = ConfigDict(extra="ignore", frozen=True)


@register_method
class LaxConfigNCM(NCM):
    """NCM whose config silently ignores unknown fields."""

    name: ClassVar[str] = "lax-config-ncm"
    Config: ClassVar[type[MethodConfig]] = _LaxConfig

    def __init__(self, config: MethodConfig | None = None):
        super().__init__(None)


@register_method
class CarefulNCM(NCM):
    """A correct method: NCM under another name."""

    name: ClassVar[str] = "careful-ncm"
