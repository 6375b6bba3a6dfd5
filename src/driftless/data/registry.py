"""Dataset factories by name, so that benchmark specs (YAML) can name their datasets."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from driftless.data.aircraft import fgvc_aircraft
from driftless.data.caltech import caltech101
from driftless.data.cars import stanford_cars
from driftless.data.cifar import cifar100
from driftless.data.core50 import core50
from driftless.data.cub import cub200
from driftless.data.dataset import Dataset
from driftless.data.domainnet import domainnet
from driftless.data.dtd import dtd
from driftless.data.eurosat import eurosat
from driftless.data.flowers import flowers102
from driftless.data.folder import image_folder
from driftless.data.food import food101
from driftless.data.imagenet import imagenet100, imagenet_a, imagenet_r
from driftless.data.miniimagenet import miniimagenet
from driftless.data.mnist import mnist
from driftless.data.pets import oxford_pet
from driftless.data.sun397 import sun397
from driftless.data.tinyimagenet import tinyimagenet
from driftless.data.toy import toy_shapes
from driftless.data.world.datasets import (
    sklearn_digits,
    world_compositions,
    world_counts,
    world_domains,
    world_glyphs,
    world_shapes,
    world_textures,
)
from driftless.errors import ConfigError


def _on_disk(reader: Callable[..., Dataset]) -> Callable[..., Dataset]:
    """Wrap a reader so its ``root`` is resolved against the run's data root (the data root itself
    when no ``root`` is given)."""

    def factory(data_root: Path, root: str | None = None, **params: Any) -> Dataset:
        """Build the dataset (see the wrapped reader's docstring)."""
        path = Path(root).expanduser() if root else Path(".")
        if not path.is_absolute():
            path = data_root / path
        return reader(path, **params)

    factory.__signature__ = _merged_signature(reader)  # type: ignore[attr-defined]
    factory.__doc__ = reader.__doc__
    factory.reader = reader  # type: ignore[attr-defined]
    return factory


def _merged_signature(reader: Callable[..., Dataset]) -> inspect.Signature:
    params = list(inspect.signature(reader).parameters.values())[1:]
    head = [
        inspect.Parameter("data_root", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("root", inspect.Parameter.KEYWORD_ONLY, default=None),
    ]
    return inspect.Signature(
        head + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]
    )


def _generated(generator: Callable[..., Dataset]) -> Callable[..., Dataset]:
    def factory(data_root: Path, **params: Any) -> Dataset:
        """Build the dataset (see the wrapped reader's docstring)."""
        return generator(**params)

    sig = inspect.signature(generator)
    factory.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[inspect.Parameter("data_root", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in sig.parameters.values()]
    )
    factory.__doc__ = generator.__doc__
    factory.reader = generator  # type: ignore[attr-defined]
    return factory


#: name → factory(data_root, **params). Readers take ``root`` relative to the data root.
DATASET_FACTORIES: dict[str, Callable[..., Dataset]] = {
    "toy-shapes": _generated(toy_shapes),
    "world-compositions": _generated(world_compositions),
    "world-shapes": _generated(world_shapes),
    "world-glyphs": _generated(world_glyphs),
    "world-textures": _generated(world_textures),
    "world-counts": _generated(world_counts),
    "world-domains": _generated(world_domains),
    "sklearn-digits": _generated(sklearn_digits),
    "image-folder": _on_disk(image_folder),
    # The real datasets (docs/datasets.md). Each reader looks under the data root for the folder
    # its downloader leaves (torchvision's, the archive's, or PILOT's), so the default root is the
    # data root itself; ``root:`` in a spec points elsewhere.
    "cifar100": _on_disk(cifar100),
    "imagenet-r": _on_disk(imagenet_r),
    "imagenet-a": _on_disk(imagenet_a),
    "imagenet100": _on_disk(imagenet100),
    "cub200": _on_disk(cub200),
    "tinyimagenet": _on_disk(tinyimagenet),
    "fgvc-aircraft": _on_disk(fgvc_aircraft),
    "caltech101": _on_disk(caltech101),
    "dtd": _on_disk(dtd),
    "eurosat": _on_disk(eurosat),
    "flowers102": _on_disk(flowers102),
    "food101": _on_disk(food101),
    "mnist": _on_disk(mnist),
    "oxford-pet": _on_disk(oxford_pet),
    "stanford-cars": _on_disk(stanford_cars),
    "sun397": _on_disk(sun397),
    "core50": _on_disk(core50),
    "domainnet": _on_disk(domainnet),
    "miniimagenet": _on_disk(miniimagenet),
}


def build_dataset(
    kind: str, params: Mapping[str, Any], data_root: Path, where: str = "dataset"
) -> Dataset:
    """Build the dataset ``kind`` with ``params``; unknown kinds or parameters name the field."""
    try:
        factory = DATASET_FACTORIES[kind]
    except KeyError:
        raise ConfigError(
            f"{where}.type: unknown dataset {kind!r}; known: {sorted(DATASET_FACTORIES)}"
        ) from None
    accepted = [p for p in inspect.signature(factory).parameters if p != "data_root"]
    for key in params:
        if key not in accepted:
            raise ConfigError(
                f"{where}.{key}: not a parameter of dataset {kind!r} (accepted: {accepted})"
            )
    params = _checked_params(factory, params, kind, where)
    try:
        dataset = factory(data_root, **params)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(
            f"{where}.params: dataset {kind!r} rejects {dict(params)}: {exc}"
        ) from None
    return dataset


def _checked_params(
    factory: Callable[..., Dataset], params: Mapping[str, Any], kind: str, where: str
) -> dict[str, Any]:
    """``params`` validated against the reader's type hints (``num_classes: "twelve"`` and
    ``root: 5`` are refused, naming the field); numbers written as strings are converted."""
    reader = getattr(factory, "reader", factory)
    try:
        hints = typing.get_type_hints(reader)
    except Exception:  # a plugin's factory without resolvable hints: taken as it is
        return dict(params)
    hints["root"] = str | None
    checked = {}
    for key, value in params.items():
        if key not in hints:
            checked[key] = value
            continue
        try:
            checked[key] = TypeAdapter(hints[key]).validate_python(value)
        except ValidationError as exc:
            expected = getattr(hints[key], "__name__", None) or str(hints[key])
            problem = exc.errors()[0]["msg"]
            raise ConfigError(
                f"{where}.params.{key}: {value!r} is not a valid {expected} ({problem})"
            ) from None
    return checked
