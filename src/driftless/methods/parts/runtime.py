"""Where and how a method's computation runs: intra-op threads on a CPU, which parameters take
gradients."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from driftless.engine.threads import torch_threads


@contextmanager
def cpu_threads(device: torch.device, threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads when ``device`` is a CPU (None, or another
    device: unchanged), then restore torch's setting. A small text tower's operations take
    microseconds, so on a CPU their threads' synchronization costs more than it saves, far more
    when the cores are shared: measured on 2 shared cores, one training step over 64 prompts took
    1.5 s with 2 threads and 0.06 s with 1."""
    on_cpu = torch.device(device).type == "cpu"
    with torch_threads(threads if on_cpu else None):
        yield


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Turn off ``requires_grad`` on ``module``'s parameters for the block, then restore each
    flag: gradients then reach only what the block trains, and ``module``'s ``.grad`` stay
    untouched."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
