"""Reader for CIFAR-100 in its python-pickle layout (what ``torchvision.datasets.CIFAR100`` downloads):
``<root>/cifar-100-python/{train,test,meta}``."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from driftless.data.catalog import resolve_templates
from driftless.data.dataset import Dataset, Split
from driftless.data.images import ArrayImages
from driftless.data.ondisk import DatasetMissing
from driftless.errors import DataError

CIFAR100_LAYOUT = (
    "<root>/cifar-100-python/{train,test,meta} (the archive cifar-100-python.tar.gz unpacked)"
)
CIFAR100_SOURCE = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
# Continual-CLIP's prompt for CIFAR-100 (see docs/protocols.md)
CIFAR100_TEMPLATES: tuple[str, ...] = ("a bad photo of a {}.",)


def _find_folder(root: Path) -> Path:
    for candidate in (root / "cifar-100-python", root):
        if (candidate / "meta").is_file() and (candidate / "train").is_file():
            return candidate
    raise DatasetMissing(
        f"CIFAR-100 not found under {root}: expected {CIFAR100_LAYOUT}. "
        f"Get it from {CIFAR100_SOURCE} and unpack it into {root}."
    )


def _corrupt(path: Path, problem: str) -> DataError:
    return DataError(f"CIFAR-100 file is corrupt: {path}: {problem} (expected {CIFAR100_LAYOUT})")


def _numpy_reconstructors() -> dict[tuple[str, str], object]:
    """The numpy callables an ndarray's pickle names, under numpy 1's and numpy 2's module names."""
    reconstruct = np.empty(0).__reduce__()[0]  # numpy's _reconstruct, wherever numpy keeps it
    scalar = np.float64(0).__reduce__()[0]
    allowed: dict[tuple[str, str], object] = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = reconstruct
        allowed[(module, "scalar")] = scalar
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    allowed[("_codecs", "encode")] = _latin1_bytes
    return allowed


def _latin1_bytes(text: str, encoding: str = "utf-8") -> bytes:
    """How a protocol-2 pickle written by Python 3 spells a bytes object (``_codecs.encode(text,
    "latin1")``); only that encoding is accepted."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(
            f"unexpected _codecs.encode({type(text).__name__}, {encoding!r})"
        )
    return text.encode("latin1")


class _CifarUnpickler(pickle.Unpickler):
    """Reads CIFAR's pickles and nothing else: dicts, lists, strings, numbers and numpy arrays.
    Any other global a pickle names (``os.system``, ``builtins.eval``, ...) is refused, so a
    crafted file cannot run code; plain pickle would call whatever the file names."""

    _ALLOWED = _numpy_reconstructors()

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"it names {module}.{name}, which a CIFAR file never holds (refused: loading it "
                "could run code)"
            ) from None


def _unpickle(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"CIFAR-100 file missing: {path} (expected {CIFAR100_LAYOUT})")
    try:
        with path.open("rb") as fh:
            entry = _CifarUnpickler(fh, encoding="latin1").load()
    except Exception as exc:  # a damaged pickle can fail with almost any exception type
        raise _corrupt(path, str(exc) or type(exc).__name__) from exc
    if not isinstance(entry, dict):
        raise _corrupt(path, f"holds a {type(entry).__name__}, not a dict")
    return entry


def _split(folder: Path, name: str) -> Split:
    entry = _unpickle(folder / name)
    try:
        data = np.asarray(entry["data"], dtype=np.uint8)
        labels = np.asarray(entry["fine_labels"], dtype=np.int64)
    except KeyError as exc:
        raise _corrupt(folder / name, f"lacks key {exc}") from exc
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise _corrupt(folder / name, f"has data of shape {data.shape}")
    pixels = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return Split(ArrayImages(np.ascontiguousarray(pixels)), labels)


def cifar100(
    root: str | os.PathLike[str], templates: str | Sequence[str] = CIFAR100_TEMPLATES
) -> Dataset:
    """CIFAR-100 (50,000 train / 10,000 test, 100 classes) with class names as in its ``meta``
    file, underscores read as spaces. ``templates``: a list, or a set of ``assets/templates.yaml``
    (``continual-clip``: Continual-CLIP's one prompt, the default; ``zscl``: ZSCL's 18 for MTIL)."""
    folder = _find_folder(Path(root).expanduser())
    meta = _unpickle(folder / "meta")
    try:
        names = [n.replace("_", " ") for n in meta["fine_label_names"]]
    except KeyError as exc:
        raise _corrupt(folder / "meta", "lacks 'fine_label_names'") from exc
    splits = {"train": _split(folder, "train"), "test": _split(folder, "test")}
    return Dataset(
        "cifar100",
        tuple(names),
        splits,
        resolve_templates("cifar100", templates),
        {"folder": str(folder)},
    )
