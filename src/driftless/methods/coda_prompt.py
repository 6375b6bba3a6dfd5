"""CODA-Prompt — COntinual Decomposed Attention-based prompting (Smith, Karlinsky, Gutta,
Cascante-Bonilla, Kim, Arbelle, Panda, Feris, Kira, "CODA-Prompt: COntinual Decomposed
Attention-based Prompting for Rehearsal-Free Continual Learning", CVPR 2023; reference code
GT-RIPL/CODA-Prompt).

Algorithm. The pre-trained image transformer stays frozen. In each prompted layer, the prompt is
not picked from a pool but *assembled*: a weighted sum of prompt components P_m (each L tokens),

    p(x) = Σ_m α_m(x) P_m,    α_m(x) = cos(q(x) ⊙ A_m, K_m),

where q(x) is the [CLS] feature of the untouched transformer, K_m a learned key and A_m a learned
attention vector that re-weights the query's features for component m. The prompt enters by
prefix-tuning: its first L/2 tokens are prefixes of the attention keys, the last L/2 of the values.
Each task brings its own new components (with their keys and attention vectors); the components of
earlier tasks are frozen (used, never updated), and the new ones start orthogonal to them and to
each other (Gram–Schmidt), so a new task learns in directions the old prompts do not use. An
optional penalty μ · Σ ‖X Xᵀ − I‖² (mean over entries, X ∈ {K, A, P flattened}, all components so
far) keeps them near-orthogonal while training. Training on task t minimizes CE (logits of earlier
classes masked; the head covers only the classes seen so far) + the penalty. The whole model is
end-to-end differentiable: no top-N selection. Rehearsal-free.

Paper defaults (ViT-B/16, 10-task CIFAR-100 and ImageNet-R, the reference configuration): 100
components in all (10 per task), length 8, layers 0–4, μ = 0 (the published code's final setting;
the paper's first version used a small positive μ); Adam, lr 0.001, cosine schedule, batch 128,
20 epochs per task on CIFAR-100 (ImageNet-R: 50).

Our choices: the number of tasks is not known in advance, so ``components_per_task`` new
components come with each task (the paper's pool of 100 over 10 tasks is 10 per task); the new
components are drawn N(0, 1) and made orthonormal to the span of all earlier components (exactly,
by projection and QR, :func:`orthogonal_rows`), for P, K and A separately; the rest as in
parts/prompted_classifier.py (CLIP image embedding, linear head or CLIP's text embeddings).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from driftless.errors import ConfigError
from driftless.methods.parts.prompted_classifier import PromptedClassifier, PromptedClassifierConfig
from driftless.methods.parts.vision_prompts import LayerPrompts, PromptedVisionTower
from driftless.methods.registry import register_method


class CodaPromptConfig(PromptedClassifierConfig):
    """Hyper-parameters of :class:`CodaPrompt`: the paper's ViT-B/16 CIFAR-100 values by default."""

    layers: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Layers that get an assembled prefix prompt (paper: 0–4)."""
    prompt_length: int = Field(default=8, ge=2, multiple_of=2)
    """L: tokens per component; half key, half value prefixes (paper: 8)."""
    components_per_task: int = Field(default=10, ge=1)
    """New components per task (paper: 100 for 10 tasks)."""
    ortho_weight: float = Field(default=0.0, ge=0)
    """μ of the orthogonality penalty (published code: 0)."""
    lr: float = Field(default=0.001, gt=0)
    """Adam learning rate (paper: 0.001)."""
    iterations: int | None = Field(default=None, ge=1)
    """Optimizer steps per task instead of ``epochs``."""
    epochs: int | None = Field(default=20, ge=1, validate_default=True)
    """Passes over each task's images (paper: 20 on CIFAR-100, 50 on ImageNet-R)."""
    batch_size: int = Field(default=128, ge=1)
    """Training batch (paper: 128)."""
    schedule: Literal["cosine", "constant"] = "cosine"
    """Learning rate schedule (paper: cosine)."""
    warmup_fraction: float = Field(default=0.0, ge=0, lt=1)
    """No warm-up in the paper."""


def orthogonal_rows(
    old: torch.Tensor, count: int, generator: torch.Generator, dim: int | None = None
) -> torch.Tensor:
    """``count`` new unit rows orthogonal to each other and to every row of ``old`` (k, d) — the
    Gram–Schmidt step of CODA-Prompt, done exactly: Gaussian draws minus their projection on an
    orthonormal basis of the old rows' span, then orthonormalized by QR (float64 inside, float32
    out). ``dim`` gives d when there is no old row. Needs rank(old) + count ≤ d."""
    width = old.shape[1] if old.numel() else dim
    if width is None:
        raise ValueError("orthogonal_rows: give dim when there are no old rows")
    draws = torch.randn(count, width, generator=generator, dtype=torch.float64)
    if old.numel():
        basis, triangular = torch.linalg.qr(old.detach().to(torch.float64).T, mode="reduced")
        rank = int((triangular.diagonal().abs() > 1e-10 * triangular.abs().max()).sum())
        if rank + count > width:
            raise ConfigError(
                f"coda-prompt: {count} new components cannot be orthogonal to {rank} old ones "
                f"in {width} dimensions; lower coda-prompt.components_per_task"
            )
        basis = basis[:, :rank]
        draws = draws - (draws @ basis) @ basis.T
    elif count > width:
        raise ConfigError(
            f"coda-prompt: {count} components cannot be orthogonal in {width} dimensions"
        )
    rows, _ = torch.linalg.qr(draws.T, mode="reduced")
    return rows.T.to(torch.float32).contiguous()


def ortho_penalty(matrix: torch.Tensor) -> torch.Tensor:
    """mean((X Xᵀ − I)²) for X (n, d): zero exactly when the rows are orthonormal."""
    gram = matrix @ matrix.T
    return ((gram - torch.eye(len(matrix), device=matrix.device)) ** 2).mean()


class TaskComponents(nn.Module):
    """One task's components for every prompted layer: P (layers, n, L, W), K and A (layers, n, W)."""

    def __init__(self, components: torch.Tensor, keys: torch.Tensor, attention: torch.Tensor):
        super().__init__()
        self.components = nn.Parameter(components)
        self.keys = nn.Parameter(keys)
        self.attention = nn.Parameter(attention)


@register_method
class CodaPrompt(PromptedClassifier[CodaPromptConfig]):
    """Prompts assembled from components by query attention; each task adds components orthogonal
    to the frozen ones of earlier tasks."""

    name = "coda-prompt"
    # trains the image tower for minutes per run on a CPU: run it with --method
    in_default_run = False
    Config = CodaPromptConfig

    def __init__(self, config: CodaPromptConfig | None = None):
        super().__init__(config)
        self._width = 0

    def prompt_layers(self) -> tuple[int, ...]:
        """The prompted layers."""
        return self.config.layers

    def build_prompts(self, tower: PromptedVisionTower, generator: torch.Generator) -> nn.Module:
        """An empty list of per-task components (each task adds its own)."""
        self._width = tower.width
        return nn.ModuleList()

    def _all(self, name: str) -> torch.Tensor:
        # every task's tensor ``name`` concatenated along the component axis (axis 1)
        assert isinstance(self.prompts_, nn.ModuleList)
        return torch.cat([getattr(task, name) for task in self.prompts_], dim=1)

    def grow_prompts(self, task_index: int, generator: torch.Generator) -> None:
        """Freeze the earlier tasks' components; add this task's, orthogonal to them (per layer,
        for P flattened, K and A separately)."""
        tasks = self.prompts_
        assert isinstance(tasks, nn.ModuleList)
        if len(tasks) > task_index:
            return
        tasks.requires_grad_(False)
        config, width = self.config, self._width
        count, length = config.components_per_task, config.prompt_length
        components, keys, attention = [], [], []
        for layer in range(len(config.layers)):
            old = (
                [self._all(n)[layer] for n in ("components", "keys", "attention")]
                if len(tasks)
                else [torch.empty(0, length, width), torch.empty(0, width), torch.empty(0, width)]
            )
            components.append(
                orthogonal_rows(old[0].flatten(1), count, generator, length * width).reshape(
                    count, length, width
                )
            )
            keys.append(orthogonal_rows(old[1], count, generator, width))
            attention.append(orthogonal_rows(old[2], count, generator, width))
        device = next(iter(tasks.parameters()), torch.empty(0)).device
        new = TaskComponents(torch.stack(components), torch.stack(keys), torch.stack(attention))
        tasks.append(new.to(device))

    def component_weights(self, query: torch.Tensor, layer: int) -> torch.Tensor:
        """(B, m) α_m = cos(q ⊙ A_m, K_m) over every component so far, for prompted layer number
        ``layer`` (its position in ``layers``)."""
        keys, attention = self._all("keys")[layer], self._all("attention")[layer]
        attended = F.normalize(query[:, None, :] * attention[None], dim=-1)  # (B, m, W)
        return (attended * F.normalize(keys, dim=-1)[None]).sum(-1)

    def choose_prompts(
        self, query: torch.Tensor, task_index: int | None
    ) -> tuple[LayerPrompts, torch.Tensor]:
        """Per layer, the attention-weighted sum of components, split into key and value
        prefixes; while training, μ times the orthogonality penalty."""
        half = self.config.prompt_length // 2
        components = self._all("components")  # (layers, m, L, W)
        prefixes = {}
        for i, layer in enumerate(self.config.layers):
            prompt = torch.einsum("bm,mlw->blw", self.component_weights(query, i), components[i])
            prefixes[layer] = (prompt[:, :half], prompt[:, half:])
        extra = torch.zeros((), device=query.device)
        if task_index is not None and self.config.ortho_weight > 0:
            keys, attention = self._all("keys"), self._all("attention")
            penalty = sum(
                ortho_penalty(keys[i]) + ortho_penalty(attention[i])
                + ortho_penalty(components[i].flatten(1))
                for i in range(len(self.config.layers))
            )  # fmt: skip
            extra = self.config.ortho_weight * penalty
        return LayerPrompts(prefixes=prefixes), extra

    def trainable_prompt_parameters(self, task_index: int) -> list[nn.Parameter]:
        """The current task's components, keys and attention vectors only."""
        assert isinstance(self.prompts_, nn.ModuleList)
        return list(self.prompts_[task_index].parameters())
