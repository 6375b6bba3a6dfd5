"""Named class orders for class-incremental protocols."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from driftless.errors import ConfigError

# The CIFAR-100 order of Continual-CLIP, ZSCL, MoE-Adapters and RAPF (docs/protocols.md).
CONTINUAL_CLIP_CIFAR100_ORDER: tuple[int, ...] = (
    87,
    0,
    52,
    58,
    44,
    91,
    68,
    97,
    51,
    15,
    94,
    92,
    10,
    72,
    49,
    78,
    61,
    14,
    8,
    86,
    84,
    96,
    18,
    24,
    32,
    45,
    88,
    11,
    4,
    67,
    69,
    66,
    77,
    47,
    79,
    93,
    29,
    50,
    57,
    83,
    17,
    81,
    41,
    12,
    37,
    59,
    25,
    20,
    80,
    73,
    1,
    28,
    6,
    46,
    62,
    82,
    53,
    9,
    31,
    75,
    38,
    63,
    33,
    74,
    27,
    22,
    36,
    3,
    16,
    21,
    60,
    19,
    70,
    90,
    89,
    43,
    5,
    42,
    65,
    76,
    40,
    30,
    23,
    85,
    2,
    95,
    56,
    48,
    71,
    64,
    98,
    13,
    99,
    7,
    34,
    55,
    54,
    26,
    35,
    39,
)

ORDER_NAMES = ("identity", "continual-clip", "seed1993", "seed:<int>")


def seeded_permutation(seed: int, n: int) -> list[int]:
    """``numpy.random.seed(seed); numpy.random.permutation(n)``, without touching global state."""
    return [int(c) for c in np.random.RandomState(seed).permutation(n)]


def resolve_order(order: str | Sequence[int] | None, num_classes: int) -> list[int]:
    """Turn an order spec into a permutation of ``range(num_classes)``.

    ``identity`` (or None) keeps the dataset's order; ``continual-clip`` is the fixed CIFAR-100
    list; ``seed1993`` is PILOT/SimpleCIL/RanPAC's seeded permutation; ``seed:<int>`` any seed; an
    explicit list must be a permutation.
    """
    if order is None or (isinstance(order, str) and order == "identity"):
        result = list(range(num_classes))
    elif isinstance(order, str):
        if order == "continual-clip":
            if num_classes != len(CONTINUAL_CLIP_CIFAR100_ORDER):
                raise ConfigError(
                    f"order: 'continual-clip' is CIFAR-100's 100-class order; the dataset has "
                    f"{num_classes} classes"
                )
            result = list(CONTINUAL_CLIP_CIFAR100_ORDER)
        elif order.startswith("seed"):
            text = order[5:] if order.startswith("seed:") else order[4:]
            try:
                seed = int(text)
            except ValueError:
                raise ConfigError(f"order: {order!r} is not 'seed<int>' or 'seed:<int>'") from None
            if not 0 <= seed < 2**32:
                raise ConfigError(f"order: {order!r}: the seed must be in 0..2**32-1")
            result = seeded_permutation(seed, num_classes)
        else:
            raise ConfigError(
                f"order: unknown order {order!r}; known: {', '.join(ORDER_NAMES)} or a list"
            )
    else:
        result = [int(c) for c in order]
    if sorted(result) != list(range(num_classes)):
        missing = sorted(set(range(num_classes)) - set(result))
        dupes = sorted({c for c in result if result.count(c) > 1})
        raise ConfigError(
            f"order: not a permutation of 0..{num_classes - 1} (length {len(result)}, "
            f"missing {missing[:10]}, repeated {dupes[:10]})"
        )
    return result
