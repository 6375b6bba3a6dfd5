"""Checks that turn a machine that cannot run a configuration into one clear error, before any
work: the accelerator asked for must exist."""

from __future__ import annotations

import torch

from driftless.errors import ConfigError


def check_accelerator(accelerator: str) -> None:
    """ConfigError if ``accelerator`` (cuda, mps) is not available on this machine."""
    if accelerator == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            "accelerator: --accelerator cuda, but torch finds no CUDA GPU on this machine "
            f"(torch {torch.__version__}); use --accelerator cpu (or auto), or a CUDA build of "
            "torch on a machine with a GPU"
        )
    if accelerator == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(
            "accelerator: --accelerator mps, but Apple's MPS is not available on this machine; "
            "use --accelerator cpu (or auto)"
        )
