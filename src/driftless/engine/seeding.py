"""Seeds derived from the run seed, so every task's randomness is a function of (seed, method, task)
and a resumed run draws exactly what an uninterrupted one would."""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator

import numpy as np
import torch


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any printable parts (run seed, method name, task index)."""
    digest = hashlib.sha256("\0".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[torch.Generator]:
    """Seed torch's, numpy's and Python's global generators for the block (third-party code such as
    dropout draws from them) and restore them afterwards; yields a private generator too."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % (2**32))
        try:
            yield torch.Generator().manual_seed(seed)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
