"""The dataset type: labelled images of named classes, with the prompt templates that describe them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from driftless.data.images import ImageSource
from driftless.errors import DataError

DEFAULT_TEMPLATES: tuple[str, ...] = ("a photo of a {}.",)


@dataclass(frozen=True)
class Split:
    """One split of a dataset: an image source and one integer label per image."""

    images: ImageSource
    labels: np.ndarray

    def __post_init__(self) -> None:
        labels = np.asarray(self.labels, dtype=np.int64)
        object.__setattr__(self, "labels", labels)
        if labels.ndim != 1 or len(labels) != len(self.images):
            raise DataError(
                f"split has {len(self.images)} images but labels of shape {labels.shape}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def image(self, index: int) -> Image.Image:
        """The ``index``-th image as RGB."""
        return self.images.image(index)

    def fingerprint(self) -> str:
        """Content key of the images and their order (labels included)."""
        digest = hashlib.sha256(self.images.fingerprint().encode())
        digest.update(self.labels.tobytes())
        return digest.hexdigest()


@dataclass(frozen=True)
class Dataset:
    """A named dataset: class names, prompt templates (with one ``{}`` for the class name) and
    splits by name (``train``, ``test``)."""

    name: str
    class_names: tuple[str, ...]
    splits: Mapping[str, Split]
    templates: tuple[str, ...] = DEFAULT_TEMPLATES
    metadata: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(self.class_names))
        object.__setattr__(self, "templates", tuple(self.templates))
        if not self.templates:
            raise DataError(f"dataset {self.name!r} has no prompt templates")
        for template in self.templates:
            if template.count("{}") != 1:
                raise DataError(
                    f"dataset {self.name!r}: template {template!r} must hold exactly one '{{}}'"
                )
        n = len(self.class_names)
        for split_name, split in self.splits.items():
            if len(split) and (split.labels.min() < 0 or split.labels.max() >= n):
                raise DataError(
                    f"dataset {self.name!r} split {split_name!r} has labels outside 0..{n - 1}"
                )

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def split(self, name: str) -> Split:
        """The split ``name``; a missing one raises DataError listing those present."""
        try:
            return self.splits[name]
        except KeyError:
            raise DataError(
                f"dataset {self.name!r} has no split {name!r} (it has: {sorted(self.splits)})"
            ) from None

    def with_templates(self, templates: Sequence[str]) -> Dataset:
        """The same dataset with other prompt templates."""
        return Dataset(self.name, self.class_names, self.splits, tuple(templates), self.metadata)

    def fingerprint(self) -> str:
        """Key of everything that defines the dataset: names, templates and split contents."""
        payload = {
            "name": self.name,
            "classes": list(self.class_names),
            "templates": list(self.templates),
            "splits": {k: v.fingerprint() for k, v in sorted(self.splits.items())},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
