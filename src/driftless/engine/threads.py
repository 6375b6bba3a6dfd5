"""One thread budget for every compute pool of a run: torch's intra-op threads and every BLAS or
OpenMP pool threadpoolctl finds (numpy's and scipy's OpenBLAS, scikit-learn's OpenMP).

Limiting torch alone leaves scipy's OpenBLAS with one thread per core: on a CPU shared with other
jobs, RanPAC's ridge solves then ran several times slower than with one thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def _load_blas_pools() -> None:
    # threadpoolctl limits the pools already loaded: load the ones the methods use lazily now
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Within the block, torch uses ``threads`` intra-op threads; its previous setting is restored
    afterwards. ``None`` changes nothing."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def limited_threads(threads: int | None) -> Iterator[None]:
    """Within the block, torch and every BLAS/OpenMP pool use at most ``threads`` threads; the
    previous limits are restored afterwards. ``None`` changes nothing."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    _load_blas_pools()
    with torch_threads(threads), threadpool_limits(limits=threads):
        yield
