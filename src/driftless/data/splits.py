"""The 80/20 random split of datasets without an official one (Caltech101, EuroSAT, SUN397, and
ImageNet-R/-A in their original layout).

ZSCL splits these with ``torch.utils.data.random_split(dataset, [int(0.8 * n), n - int(0.8 * n)],
generator=torch.Generator().manual_seed(42))`` over torchvision's sample order. ``random_split``
draws one ``torch.randperm(n, generator=...)`` and cuts it: the first ``int(0.8 * n)`` indices are
the training set, the rest the test set, each in permutation order. We draw the same permutation,
so given the same sample order our splits are ZSCL's, index for index.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from driftless.data.dataset import Split
from driftless.data.ondisk import files_split

SPLIT_SEED = 42
TRAIN_FRACTION = 0.8


def random_split_indices(
    n: int, train_fraction: float = TRAIN_FRACTION, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, test indices) of ``n`` samples, exactly as ``random_split`` with
    ``[int(train_fraction * n), n - int(train_fraction * n)]`` and ``manual_seed(seed)``."""
    n_train = int(train_fraction * n)
    permutation = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return permutation[:n_train].astype(np.int64), permutation[n_train:].astype(np.int64)


def random_train_test(
    paths: Sequence[Path], labels: Sequence[int], root: Path, seed: int = SPLIT_SEED
) -> dict[str, Split]:
    """``{"train": ..., "test": ...}`` from one list of samples by :func:`random_split_indices`."""
    train, test = random_split_indices(len(paths), seed=seed)
    label_array = np.asarray(labels, dtype=np.int64)
    return {
        "train": files_split([paths[i] for i in train], label_array[train], root),
        "test": files_split([paths[i] for i in test], label_array[test], root),
    }
