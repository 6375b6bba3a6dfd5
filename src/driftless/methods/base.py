"""The Method protocol, and what the engine hands a method: task data, label spaces, a context."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Literal,
    Protocol,
    TypeVar,
    cast,
    runtime_checkable,
)

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from lightning.fabric import Fabric

    from driftless.backbones.base import Backbone
    from driftless.benchmarks.protocol import Benchmark, Task

Inputs = Literal["features", "images"]


class MethodConfig(BaseModel):
    """Base of every method's typed config: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class LabelSpace:
    """The classes to score, by global id, with their names, prompt templates and the dataset each
    comes from. Methods must score any label space, including classes they have never trained on."""

    class_ids: tuple[int, ...]
    names: tuple[str, ...]
    templates: tuple[tuple[str, ...], ...]
    datasets: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.class_ids)

    @classmethod
    def of(cls, benchmark: Benchmark, class_ids: Sequence[int]) -> LabelSpace:
        """The label space of ``class_ids`` in ``benchmark``."""
        infos = [benchmark.classes[c] for c in class_ids]
        return cls(
            tuple(class_ids),
            tuple(i.name for i in infos),
            tuple(i.templates for i in infos),
            tuple(i.dataset for i in infos),
        )

    def __post_init__(self) -> None:
        sizes = {len(self.class_ids), len(self.names), len(self.templates), len(self.datasets)}
        if len(sizes) != 1:
            raise ValueError(
                f"LabelSpace: {len(self.class_ids)} class ids, {len(self.names)} names, "
                f"{len(self.templates)} template lists and {len(self.datasets)} datasets"
            )

    def positions(self, labels: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Global labels → column indices in this label space (-1 where absent)."""
        lookup = column_index(self.class_ids)
        values = labels.tolist() if hasattr(labels, "tolist") else list(labels)
        return torch.tensor([lookup.get(int(v), -1) for v in values], dtype=torch.long)

    def columns(self, class_ids: Iterable[int]) -> list[int]:
        """The column of each of ``class_ids`` in this label space; a class not in it is a KeyError."""
        return class_columns(self.class_ids, class_ids)

    def position_table(self, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
        """A function global labels (on ``device``) → column indices here (-1 where absent):
        :meth:`positions` as one gather on the device, without a trip to the CPU."""
        table = torch.full((max(self.class_ids) + 1,), -1, dtype=torch.long)
        table[list(self.class_ids)] = torch.arange(len(self))
        table = table.to(device)
        return lambda labels: table[labels]

    def subspace(self, class_ids: Iterable[int]) -> LabelSpace:
        """The classes of this label space that are in ``class_ids``, in this label space's order."""
        wanted = set(class_ids)
        keep = [i for i, c in enumerate(self.class_ids) if c in wanted]
        return LabelSpace(
            tuple(self.class_ids[i] for i in keep),
            tuple(self.names[i] for i in keep),
            tuple(self.templates[i] for i in keep),
            tuple(self.datasets[i] for i in keep),
        )


def column_index(class_ids: Sequence[int]) -> dict[int, int]:
    """Class id → its position in ``class_ids`` (a head's rows, a label space's columns)."""
    return {c: i for i, c in enumerate(class_ids)}


def class_columns(order: Sequence[int], class_ids: Iterable[int]) -> list[int]:
    """The position of each of ``class_ids`` in ``order``; a class not in ``order`` is a KeyError."""
    index = column_index(order)
    return [index[int(c)] for c in class_ids]


@dataclass
class TaskData:
    """One task as the engine hands it to ``learn``.

    ``features`` (N, D) are set for ``inputs = "features"`` methods; ``images`` is a torch dataset of
    (preprocessed pixels, global label) for ``inputs = "images"`` methods. ``labels`` are global ids.
    Only the current task's training samples are ever here.
    """

    task: Task
    labels: torch.Tensor
    label_space: LabelSpace  # the task's classes
    seen_label_space: LabelSpace  # every class seen so far, this task's included
    features: torch.Tensor | None = None
    images: torch.utils.data.Dataset | None = None


@dataclass
class Context:
    """What a method may use besides its data: the backbone, the device (through Fabric), a seeded
    generator for this task, the text-embedding cache and the run's batch size.

    ``log_metrics`` records training values (a loss, once per optimizer step) for the run's
    loggers and its results; methods call it and never see a logger."""

    backbone: Backbone
    fabric: Fabric
    generator: torch.Generator
    text_embeddings: Callable[[LabelSpace], torch.Tensor]
    batch_size: int = 256
    progress: bool = True
    tracker: Any = None
    """The engine's :class:`~driftless.engine.tracking.MethodTracker`; None outside a run."""

    def log_metrics(self, values: dict[str, Any]) -> None:
        """Record one training step's values, e.g. ``{"loss": loss}`` (floats or 0-d tensors;
        tensors are read at the end of the task, so logging costs no device synchronisation)."""
        if self.tracker is not None:
            self.tracker.log(values)

    @property
    def device(self) -> torch.device:
        """The device the engine placed the backbone on."""
        return self.fabric.device


@runtime_checkable
class Method(Protocol):
    """A continual-learning method.

    ``learn`` absorbs one task; ``logits`` scores a batch (features or pixels, as ``inputs`` says)
    over any label space; ``state_dict``/``load_state_dict`` hold everything needed to resume
    (tensors and plain Python values, loadable with ``torch.load(weights_only=True)``).
    """

    name: ClassVar[str]
    inputs: ClassVar[Inputs]
    Config: ClassVar[type[MethodConfig]]

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Absorb one task."""

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """Scores (B, C) of a batch over ``label_space``, seen classes or not."""

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume (tensors and plain values)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""


ConfigT = TypeVar("ConfigT", bound=MethodConfig)


class MethodBase(Generic[ConfigT]):
    """An optional base for method classes: it declares the class attributes every method sets and
    stores the config (``Config()``'s defaults when none is given). A subclass sets ``name``,
    ``inputs`` and ``Config``, and adds its own state after ``super().__init__(config)``; it still
    writes ``learn``, ``logits`` and the state dict itself, and stays a plain class satisfying
    :class:`Method` (which does not require this base)."""

    name: ClassVar[str]
    inputs: ClassVar[Inputs]
    Config: ClassVar[type[MethodConfig]]
    config: ConfigT

    def __init__(self, config: ConfigT | None = None):
        self.config = config if config is not None else cast(ConfigT, self.Config())
