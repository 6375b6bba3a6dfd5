"""A hub of per-class textual experts (MoDER's "foundational hub"), its retrieval and its file.

One entry per seen class: its name, the dataset it came from, its prompt templates, the key k_c (the
class's zero-shot text embedding, normalized), the expert's context vectors ctx_c (n_ctx × width, in
the text tower's token-embedding space), the refined prototype t*_c (normalized) and the mean μ_c of
the class's normalized training image embeddings (normalized; a statistic, no image is kept), which
leave-one-out uses to judge recompositions. Entries learned
in the current run carry their global class id; entries loaded from another run carry -1: they are
retrieval sources only.

The hub is plain data (tensors, strings, ints): :meth:`ExpertHub.state_dict` goes into a method's
checkpoint and :func:`save_hub` / :func:`load_hub` write and read it as a file that
``torch.load(weights_only=True)`` opens. Context vectors only mean something to the text tower that
learned them, so a hub records the backbone's fingerprint and refuses to join a hub of another.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from driftless.atomic import atomic_write
from driftless.errors import ConfigError
from driftless.integrity import content_digest

HUB_FORMAT = 1
LOADED = -1  # class id of entries that come from another run


@dataclass
class ExpertHub:
    """Per-class experts: names, datasets, templates, class ids (``LOADED`` for foreign entries),
    keys (N, D), contexts (N, n_ctx, width), refined prototypes (N, D) and image means (N, D)."""

    backbone: str = ""
    names: list[str] = field(default_factory=list)
    datasets: list[str] = field(default_factory=list)
    templates: list[tuple[str, ...]] = field(default_factory=list)
    class_ids: list[int] = field(default_factory=list)
    keys: torch.Tensor | None = None
    contexts: torch.Tensor | None = None
    prototypes: torch.Tensor | None = None
    image_means: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.names)

    @property
    def n_ctx(self) -> int | None:
        """Context vectors per expert (None while empty)."""
        return None if self.contexts is None else int(self.contexts.shape[1])

    def row_of(self, class_id: int) -> int | None:
        """Row of this run's class ``class_id``, or None."""
        if class_id == LOADED:
            return None
        try:
            return self.class_ids.index(class_id)
        except ValueError:
            return None

    def own_rows(self) -> dict[int, int]:
        """This run's class id → row."""
        return {c: i for i, c in enumerate(self.class_ids) if c != LOADED}

    def add(
        self,
        class_ids: Sequence[int],
        names: Sequence[str],
        datasets: Sequence[str],
        templates: Sequence[Sequence[str]],
        keys: torch.Tensor,
        contexts: torch.Tensor,
        prototypes: torch.Tensor,
        image_means: torch.Tensor,
    ) -> None:
        """Add entries; an entry of a class id already here replaces it."""
        keys, contexts, prototypes, image_means = (
            t.detach().float().cpu() for t in (keys, contexts, prototypes, image_means)
        )
        if self.contexts is not None and contexts.shape[1:] != self.contexts.shape[1:]:
            raise ConfigError(
                f"hub: experts of shape {tuple(contexts.shape[1:])} cannot join a hub of "
                f"{tuple(self.contexts.shape[1:])} (n_ctx × width)"
            )
        for i, class_id in enumerate(class_ids):
            row = self.row_of(int(class_id))
            if row is not None:
                assert self.keys is not None and self.contexts is not None
                assert self.prototypes is not None and self.image_means is not None
                self.keys[row], self.contexts[row] = keys[i], contexts[i]
                self.prototypes[row], self.image_means[row] = prototypes[i], image_means[i]
                self.names[row], self.datasets[row] = names[i], datasets[i]
                self.templates[row] = tuple(templates[i])
                continue
            self.names.append(names[i])
            self.datasets.append(datasets[i])
            self.templates.append(tuple(templates[i]))
            self.class_ids.append(int(class_id))
            self.keys = _append(self.keys, keys[i])
            self.contexts = _append(self.contexts, contexts[i])
            self.prototypes = _append(self.prototypes, prototypes[i])
            self.image_means = _append(self.image_means, image_means[i])

    def extend(self, other: ExpertHub) -> None:
        """Add every entry of ``other`` as a retrieval source (class id ``LOADED``)."""
        if not len(other):
            return
        if self.backbone and other.backbone and self.backbone != other.backbone:
            raise ConfigError(
                "hub: the loaded hub was built on another backbone (fingerprint "
                f"{other.backbone[:12]}…, this run's is {self.backbone[:12]}…); context vectors "
                "only mean something to the text tower that learned them"
            )
        assert other.keys is not None and other.contexts is not None
        assert other.prototypes is not None and other.image_means is not None
        self.add(
            [LOADED] * len(other),
            other.names,
            other.datasets,
            other.templates,
            other.keys,
            other.contexts,
            other.prototypes,
            other.image_means,
        )
        self.backbone = self.backbone or other.backbone

    def state_dict(self) -> dict[str, Any]:
        """Tensors and plain values only."""
        return {
            "format": HUB_FORMAT,
            "backbone": self.backbone,
            "names": list(self.names),
            "datasets": list(self.datasets),
            "templates": [list(t) for t in self.templates],
            "class_ids": torch.tensor(self.class_ids, dtype=torch.long),
            "keys": self.keys,
            "contexts": self.contexts,
            "prototypes": self.prototypes,
            "image_means": self.image_means,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> ExpertHub:
        """The hub of :meth:`state_dict`."""
        if state.get("format") != HUB_FORMAT:
            raise ConfigError(f"hub: format {state.get('format')!r}, expected {HUB_FORMAT}")

        def copy(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.detach().float().cpu().clone()

        return cls(
            backbone=str(state["backbone"]),
            names=[str(n) for n in state["names"]],
            datasets=[str(d) for d in state["datasets"]],
            templates=[tuple(str(s) for s in t) for t in state["templates"]],
            class_ids=[int(c) for c in state["class_ids"].tolist()],
            keys=copy(state["keys"]),
            contexts=copy(state["contexts"]),
            prototypes=copy(state["prototypes"]),
            image_means=copy(state["image_means"]),
        )


def _append(rows: torch.Tensor | None, row: torch.Tensor) -> torch.Tensor:
    return row[None].clone() if rows is None else torch.cat([rows, row[None]])


def retrieve(
    queries: torch.Tensor,
    keys: torch.Tensor,
    k: int,
    tau: float,
    exclude: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` keys by cosine for every query, and their weights softmax(cos / tau).

    queries (Q, D), keys (N, D); ``exclude`` (Q, N) bool marks keys a query may not retrieve
    (leave-one-out). Returns indices (Q, k') and weights (Q, k') summing to 1, k' = min(k, N
    minus the most exclusions of any query). Exact brute force.
    """
    sims = F.normalize(queries.float(), dim=-1) @ F.normalize(keys.float(), dim=-1).T
    available = keys.shape[0]
    if exclude is not None:
        sims = sims.masked_fill(exclude, float("-inf"))
        available -= int(exclude.sum(dim=1).max()) if len(exclude) else 0
    k = min(k, available)
    if k < 1:
        raise ValueError("retrieve: no key left to retrieve")
    top, indices = sims.topk(k, dim=1)
    return indices, torch.softmax(top / tau, dim=1)


def uniform_weights(
    queries: torch.Tensor, keys: torch.Tensor, exclude: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Every key for every query, with equal weights: the global mean of the hub, no retrieval
    (MoDER's ``composition = "global-mean"`` control). Returns indices (Q, N) and weights (Q, N),
    each row 1 / (number of keys the query may use), 0 on excluded keys."""
    allowed = torch.ones(len(queries), len(keys), dtype=torch.bool)
    if exclude is not None:
        allowed &= ~exclude.cpu()
    counts = allowed.sum(dim=1, keepdim=True)
    if bool((counts == 0).any()):
        raise ValueError("uniform_weights: no key left to use")
    rows = torch.arange(len(keys)).expand(len(queries), len(keys))
    return rows, allowed.float() / counts


def within_dataset_score(
    hub: ExpertHub, smoothed: torch.Tensor, scale: float, criterion: str
) -> float:
    """How well ``smoothed`` (N, D) — every hub class recomposed without itself — stands in for the
    hub's classes, higher is better. ``"images"``: minus the mean cross-entropy of each class's
    image mean μ_c over its dataset's classes, scored as a class is in a class-incremental cell
    (itself by its recomposition, the others by their experts' t*_j). ``"prototypes"``: the mean
    cos(smoothed_c, t*_c)."""
    assert hub.prototypes is not None and hub.image_means is not None
    if criterion == "prototypes":
        return float((smoothed * hub.prototypes).sum(dim=1).mean())
    logits = scale * hub.image_means @ hub.prototypes.T
    own = torch.arange(len(hub))
    logits[own, own] = scale * (hub.image_means * smoothed).sum(dim=1)
    datasets = hub.datasets
    other = torch.tensor([[a != b for b in datasets] for a in datasets], dtype=torch.bool)
    return -float(F.cross_entropy(logits.masked_fill(other, float("-inf")), own))


def held_out_dataset_scores(
    hub: ExpertHub, smoothed: torch.Tensor, scale: float, criterion: str
) -> dict[str, float]:
    """Per hub dataset, how well ``smoothed`` (N, D) — every class recomposed from *other
    datasets'* entries only — stands in for its classes, higher is better. ``"images"``: minus the
    mean cross-entropy of its classes' image means over its classes' recompositions (a dataset no
    class of which was trained, as in MTIL); ``"prototypes"``: the mean cos(smoothed_c, t*_c)."""
    assert hub.prototypes is not None and hub.image_means is not None
    scores = {}
    for dataset in sorted(set(hub.datasets)):
        rows = torch.tensor([i for i, d in enumerate(hub.datasets) if d == dataset])
        if criterion == "prototypes":
            scores[dataset] = float((smoothed[rows] * hub.prototypes[rows]).sum(dim=1).mean())
            continue
        logits = scale * hub.image_means[rows] @ smoothed[rows].T
        scores[dataset] = -float(F.cross_entropy(logits, torch.arange(len(rows))))
    return scores


def save_hub(hub: ExpertHub, path: str | os.PathLike[str]) -> None:
    """Write ``hub`` to ``path`` (atomically; ``torch.load(weights_only=True)`` reads it)."""
    state = {"moder_hub": hub.state_dict()}
    state["content_sha256"] = content_digest(state)  # checked by load_hub
    atomic_write(Path(path).expanduser(), lambda fh: torch.save(state, fh))


def load_hub(path: str | os.PathLike[str]) -> ExpertHub:
    """Read a hub from a file written by :func:`save_hub`, from a MoDER checkpoint
    (``<run>/checkpoints/moder.pt``) or from a run directory holding one."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "checkpoints" / "moder.pt"
    if not path.is_file():
        raise ConfigError(
            f"moder.hub_path: {path} not found; give a hub file (moder.export_path of a run), a "
            "run's checkpoints/moder.pt or its run directory"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise ConfigError(f"moder.hub_path: {path} cannot be read ({reason})") from exc
    if isinstance(data, dict) and "content_sha256" in data:  # hub files and checkpoints carry one
        saved = data.pop("content_sha256")
        if saved != content_digest(data):
            raise ConfigError(
                f"moder.hub_path: {path} does not hold what was written (its content hash "
                "differs): it was damaged on disk; export the hub again"
            )
    if isinstance(data, dict) and "moder_hub" in data:
        return ExpertHub.from_state_dict(data["moder_hub"])
    method_state = data.get("method_state") if isinstance(data, dict) else None
    if isinstance(method_state, dict) and "hub" in method_state:
        return ExpertHub.from_state_dict(method_state["hub"])
    raise ConfigError(f"moder.hub_path: {path} holds no MoDER hub")
