"""A running uniform average of a module's weights (ZSCL's "weight ensemble"; Zheng et al., ICCV
2023): snapshots taken during training are averaged, and the average replaces the trained weights."""

from __future__ import annotations

import torch
from torch import nn


class WeightAverage:
    """Mean of the floating-point tensors of a module's state over every snapshot added so far.

    Starts from one snapshot (the module as given); :meth:`add` folds in another as
    θ̄ ← (n·θ̄ + θ) / (n + 1), so after n snapshots θ̄ is their exact arithmetic mean (up to float
    rounding). Non-float tensors (integer buffers) are kept from the first snapshot."""

    def __init__(self, module: nn.Module):
        self.mean = {k: v.detach().clone() for k, v in module.state_dict().items()}
        self.count = 1

    @torch.no_grad()
    def add(self, module: nn.Module) -> None:
        """Fold the module's current weights into the mean."""
        for key, tensor in module.state_dict().items():
            mean = self.mean[key]
            if mean.is_floating_point():
                mean.mul_(self.count).add_(tensor.detach()).div_(self.count + 1)
        self.count += 1

    @torch.no_grad()
    def load_into(self, module: nn.Module) -> None:
        """Replace the module's weights by the mean."""
        module.load_state_dict(self.mean)
