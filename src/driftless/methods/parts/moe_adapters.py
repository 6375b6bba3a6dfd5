"""Mixture-of-experts bottleneck adapters inside a CLIP image tower (Yu et al., "Boosting continual
learning of vision-language models via mixture-of-experts adapters", CVPR 2024 — MoE-Adapters).

In every transformer block, a mixture of bottleneck adapters runs parallel to the MLP on the
block's post-attention residual stream x: x ← x + MLP(LN₂(x)) + Σₑ gₑ(x)·Aₑ(x), with
Aₑ(x) = s · W_up ReLU(W_down x) (zero-initialised W_up, so a fresh adapter changes nothing) and the
gates g(x) = softmax over the top-k of the router's logits on the class token (noisy top-k gating
while training, Shazeer et al. 2017). Each task has its own router; the experts are shared, and
those a task used most are frozen after it so later tasks cannot overwrite them.

The adapters are put in by wrapping each block's second layer norm (which records its input, x)
and its MLP (which adds the mixture to its output), so the transformers model itself is untouched
and deep copies stay self-contained.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import nn

from driftless.backbones.base import Backbone
from driftless.methods.parts.image_training import ImageEncoder


class BottleneckAdapter(nn.Module):
    """x → scale · up(dropout(ReLU(down(x)))); LoRA-style init (up = 0), so it starts at zero."""

    def __init__(self, dim: int, width: int, scale: float, dropout: float):
        super().__init__()
        self.down = nn.Linear(dim, width)
        self.up = nn.Linear(width, dim)
        self.scale, self.dropout = scale, dropout
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = F.dropout(F.relu(self.down(x)), self.dropout, self.training)
        return self.scale * self.up(hidden)


class TopKRouter(nn.Module):
    """Gates (B, E) from a (B, D) input: softmax over the k largest logits x·W, zero elsewhere.
    While training, logits get Gaussian noise of learned scale softplus(x·W_noise) + 0.01."""

    def __init__(self, dim: int, experts: int, top_k: int):
        super().__init__()
        if not 1 <= top_k <= experts:
            raise ValueError(f"top_k must be in 1..{experts}, got {top_k}")
        self.weight = nn.Parameter(torch.zeros(dim, experts))
        self.noise = nn.Parameter(torch.zeros(dim, experts))
        self.top_k = top_k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = x @ self.weight
        if self.training:
            spread = F.softplus(x @ self.noise) + 1e-2
            logits = logits + torch.randn_like(logits) * spread
        return top_k_gates(logits, self.top_k)


def top_k_gates(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Softmax over each row's k largest logits, scattered back; the other gates are 0. Ties go
    to the lower expert index (``torch.topk``'s order on equal values)."""
    values, indices = logits.topk(k, dim=-1)
    return torch.zeros_like(logits).scatter(-1, indices, values.softmax(dim=-1))


class MoEAdapterLayer(nn.Module):
    """The experts of one block, one router per task, each expert's use in the current task and
    which experts are frozen."""

    def __init__(
        self, dim: int, experts: int, top_k: int, width: int, scale: float, dropout: float
    ):
        super().__init__()
        self.experts = nn.ModuleList(
            BottleneckAdapter(dim, width, scale, dropout) for _ in range(experts)
        )
        self.routers = nn.ModuleList()
        self.dim, self.top_k = dim, top_k
        self.register_buffer("usage", torch.zeros(experts))
        self.register_buffer("frozen", torch.zeros(experts, dtype=torch.bool))

    def add_router(self) -> None:
        """A new task's router (all-zero weights: uniform logits, top-k by noise at first)."""
        device = self.usage.device
        with torch.inference_mode(False):
            self.routers.append(TopKRouter(self.dim, len(self.experts), self.top_k).to(device))
        self.usage.zero_()

    def forward(self, x: torch.Tensor, task: int) -> torch.Tensor:
        """Σₑ gₑ·Aₑ(x) for x (B, L, D), routed on the class token by task ``task``'s router."""
        gates = self.routers[task](x[:, 0])
        if self.training:
            self.usage += (gates > 0).sum(dim=0).to(self.usage)
        out = torch.zeros_like(x)
        for e in torch.nonzero(gates.sum(dim=0) > 0).flatten().tolist():
            rows = torch.nonzero(gates[:, e] > 0).flatten()
            out = out.index_add(0, rows, gates[rows, e, None, None] * self.experts[e](x[rows]))
        return out

    def freeze_most_used(self, count: int) -> None:
        """Freeze the ``count`` experts used most in the current task."""
        if count > 0:
            self.frozen[self.usage.topk(min(count, len(self.experts))).indices] = True

    def trainable(self, task: int) -> list[nn.Parameter]:
        """The task's router and every expert not frozen."""
        params = list(self.routers[task].parameters())
        for expert, frozen in zip(self.experts, self.frozen.tolist(), strict=True):
            if not frozen:
                params.extend(expert.parameters())
        return params


class Routing:
    """Which task's router and experts the wrapped blocks use (None: none, plain CLIP). Shared by
    the blocks of one encoder; a deep copy of the encoder copies it once."""

    def __init__(self) -> None:
        self.task: int | None = None


class _Tap(nn.Module):
    """Wraps LN₂: remembers its input (the post-attention residual stream) for the mixture."""

    def __init__(self, norm: nn.Module):
        super().__init__()
        self.norm = norm
        self.seen: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x
        return self.norm(x)


class _MLPWithMixture(nn.Module):
    """Wraps the MLP: adds the mixture of adapters on the tapped input to the MLP's output."""

    def __init__(self, mlp: nn.Module, moe: MoEAdapterLayer, tap: _Tap, routing: Routing):
        super().__init__()
        self.mlp, self.moe = mlp, moe
        self._tap, self._routing = [tap], routing  # in lists/plain: not registered twice

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.mlp(h)
        task = self._routing.task
        if task is None:
            return out
        return out + self.moe(self._tap[0].seen, task)


class MoEImageEncoder(ImageEncoder):
    """An :class:`ImageEncoder` whose blocks carry MoE adapters; only adapters and the current
    task's router train. ``routing.task`` picks the experts' router (None: the plain copy)."""

    def __init__(self, vision: nn.Module, projection: nn.Module, layers: list[MoEAdapterLayer]):
        super().__init__(vision, projection)
        self.routing = Routing()
        for block, moe in zip(self.blocks, layers, strict=True):
            tap = _Tap(block.layer_norm2)
            block.layer_norm2 = tap
            block.mlp = _MLPWithMixture(block.mlp, moe, tap, self.routing)

    @classmethod
    def from_backbone_with_adapters(
        cls, backbone: Backbone, experts: int, top_k: int, width: int, scale: float, dropout: float
    ) -> MoEImageEncoder:
        """A copy of the backbone's image tower with fresh adapters in every block."""
        image = ImageEncoder.from_backbone(backbone)
        dim = image.vision.config.hidden_size
        with torch.inference_mode(False):  # trainable even if made during evaluation
            layers = [
                MoEAdapterLayer(dim, experts, top_k, width, scale, dropout) for _ in image.blocks
            ]
            return cls(image.vision, image.projection, layers)

    @property
    def moe_layers(self) -> list[MoEAdapterLayer]:
        """The mixture of each block, input side first."""
        return [block.mlp.moe for block in self.blocks]

    @property
    def num_tasks(self) -> int:
        """Routers made so far (one per task started)."""
        return len(self.moe_layers[0].routers)

    def start_task(self, new_router: bool = True) -> int:
        """Usage counts reset and, for a new router per task (or the first task), a router per
        block; returns the index of the router the task trains."""
        for layer in self.moe_layers:
            if new_router or not len(layer.routers):
                layer.add_router()
            else:
                layer.usage.zero_()
        self.routing.task = self.num_tasks - 1
        return self.routing.task

    def select_trainable(self, last_blocks: int | None) -> list[nn.Parameter]:
        """The current task's routers and the unfrozen experts (``last_blocks`` is ignored: the
        CLIP weights never train)."""
        assert self.routing.task is not None, "start_task() before training"
        self.requires_grad_(False)
        params = [p for layer in self.moe_layers for p in layer.trainable(self.routing.task)]
        for p in params:
            p.requires_grad_(True)
        return params

    def adapter_state(self) -> dict[str, torch.Tensor]:
        """The adapters' weights and buffers only (the CLIP copy is the backbone's)."""
        return {
            k: v.detach().cpu().clone() for k, v in self.state_dict().items() if ".mlp.moe." in k
        }

    def load_adapter_state(self, state: dict[str, torch.Tensor], num_tasks: int) -> None:
        """Restore :meth:`adapter_state` (making ``num_tasks`` routers per block first)."""
        for layer in self.moe_layers:
            while len(layer.routers) < num_tasks:
                layer.add_router()
        missing, unexpected = self.load_state_dict(state, strict=False)
        if unexpected or any(".mlp.moe." in k for k in missing):
            raise KeyError(f"adapter state does not fit: {unexpected or missing}")

    def frozen_copy(self) -> MoEImageEncoder:  # type: ignore[override]
        with torch.inference_mode(False):
            return copy.deepcopy(self).requires_grad_(False).eval()
