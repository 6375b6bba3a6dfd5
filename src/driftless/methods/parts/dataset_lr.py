"""Per-dataset learning rates: ZSCL and MoE-Adapters tune the rate of some MTIL datasets apart
(ZSCL: 5e-5 for Aircraft and MNIST, 1e-5 elsewhere), so a config maps dataset names to rates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from driftless.methods.base import LabelSpace
from driftless.methods.parts.image_training import ImageTrainingConfig

Config = TypeVar("Config", bound=ImageTrainingConfig)


def config_for_task(
    config: Config, lr_per_dataset: Mapping[str, float], task: LabelSpace
) -> Config:
    """``config`` with ``lr`` replaced by the rate of the task's dataset when ``lr_per_dataset``
    names it (a task whose classes come from several datasets takes the first one named)."""
    for dataset in dict.fromkeys(task.datasets):
        if dataset in lr_per_dataset:
            return config.model_copy(update={"lr": float(lr_per_dataset[dataset])})
    return config
