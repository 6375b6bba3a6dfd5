"""The Distribution-Discriminative Auto-Selector of MoE-Adapters (Yu et al., CVPR 2024): one small
autoencoder per task, trained to reconstruct that task's image features; a test image goes to the
task whose autoencoder reconstructs it best, or to none (the untouched CLIP) when even the best
reconstruction error is above a threshold — the image is out of every learned distribution.

Inputs are sigmoid(frozen features), reconstructed through a sigmoid, the error is the mean
squared error per image (as in the paper's code, which uses AlexNet features; ours are the frozen
CLIP image embeddings)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NO_TASK = -1


class FeatureAutoencoder(nn.Module):
    """sigmoid-space autoencoder: Linear → ReLU → Linear → sigmoid; ``threshold`` is its own
    out-of-distribution threshold when the selector calibrates one per task (NaN otherwise)."""

    def __init__(self, dim: int, code: int):
        super().__init__()
        self.encode = nn.Sequential(nn.Linear(dim, code), nn.ReLU())
        self.decode = nn.Sequential(nn.Linear(code, dim), nn.Sigmoid())
        self.register_buffer("threshold", torch.tensor(float("nan")))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(inputs))

    def errors(self, inputs: torch.Tensor) -> torch.Tensor:
        """Per-row mean squared reconstruction error of ``inputs`` (already in sigmoid space)."""
        return (self(inputs) - inputs).pow(2).mean(dim=-1)


class AutoencoderSelector(nn.Module):
    """One :class:`FeatureAutoencoder` per task and the out-of-distribution threshold: one number
    for every task (the paper's), or, with ``quantile``, each task's own — that quantile of its
    autoencoder's errors on the task's training features."""

    def __init__(self, dim: int, code: int, threshold: float, quantile: float | None = None):
        super().__init__()
        self.autoencoders = nn.ModuleList()
        self.dim, self.code, self.threshold, self.quantile = dim, code, threshold, quantile

    @staticmethod
    def inputs(features: torch.Tensor) -> torch.Tensor:
        """What the autoencoders see: sigmoid of the raw (unnormalized) features."""
        return torch.sigmoid(features.float())

    def add_task(
        self,
        features: torch.Tensor,
        generator: torch.Generator,
        iterations: int,
        lr: float,
        batch_size: int = 64,
    ) -> list[float]:
        """Train a new task's autoencoder on its features (N, D) with Adam; returns the losses."""
        with torch.inference_mode(False):
            autoencoder = FeatureAutoencoder(self.dim, self.code).to(features.device)
        inputs = self.inputs(features).detach().clone()
        optimizer = torch.optim.Adam(autoencoder.parameters(), lr=lr, weight_decay=1e-4)
        losses = []
        for _ in range(iterations):
            rows = torch.randint(len(inputs), (min(batch_size, len(inputs)),), generator=generator)
            loss = F.mse_loss(
                autoencoder(inputs[rows.to(inputs.device)]), inputs[rows.to(inputs.device)]
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        autoencoder.requires_grad_(False).eval()
        if self.quantile is not None:
            with torch.no_grad():
                autoencoder.threshold.fill_(
                    torch.quantile(autoencoder.errors(inputs), self.quantile)
                )
        self.autoencoders.append(autoencoder)
        return losses

    def add_untrained(self, device: torch.device) -> None:
        """Room for one more task's autoencoder (weights to be loaded from a state)."""
        with torch.inference_mode(False):
            autoencoder = FeatureAutoencoder(self.dim, self.code).to(device)
        self.autoencoders.append(autoencoder.requires_grad_(False).eval())

    def errors(self, features: torch.Tensor) -> torch.Tensor:
        """(B, T) reconstruction error of each image under each task's autoencoder."""
        inputs = self.inputs(features)
        with torch.no_grad():
            return torch.stack([ae.errors(inputs) for ae in self.autoencoders], dim=1)

    def route(self, features: torch.Tensor) -> torch.Tensor:
        """(B,) the task of least error, or ``NO_TASK`` where that error exceeds the threshold."""
        if not len(self.autoencoders):
            return torch.full((len(features),), NO_TASK, dtype=torch.long, device=features.device)
        best, task = self.errors(features).min(dim=1)
        if self.quantile is None:
            limit = torch.full_like(best, self.threshold)
        else:
            limit = torch.stack([ae.threshold for ae in self.autoencoders]).to(best)[task]
        return torch.where(best > limit, torch.full_like(task, NO_TASK), task)
