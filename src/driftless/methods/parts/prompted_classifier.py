"""What L2P, DualPrompt and CODA-Prompt share: a frozen CLIP image tower with prompts chosen by a
frozen query, a classifier over the classes seen so far, the training loop with old-logit masking,
and saving and restoring.

A subclass says only how prompts are kept and chosen (:meth:`PromptedClassifier.build_prompts`,
:meth:`begin_task`, :meth:`choose_prompts`, :meth:`trainable_prompt_parameters`); this module does
the rest, the same way for the three.

**Classifier** (``classifier``):

- ``linear`` (as the papers publish): one row w_c and bias b_c per class seen so far, added when the
  class's task begins; logits_c = ⟨f̂(x), w_c⟩ + b_c with f̂ the normalized prompted CLIP
  embedding. ``head_init = "text"`` (our choice for CLIP, default) starts w_c at s · t_c (s the
  backbone's logit scale, t_c the class's text embedding) and b_c at 0, so an untrained row scores
  exactly as zero-shot CLIP does; ``"random"`` draws w_c ~ N(0, 1/D) (the papers' randomly
  initialised head). A class the head has no row for (a future class, for CI-Transfer) is scored
  s · cos(f̂, t_c), as an untrained text-initialised row would be.
- ``text``: no head; logits_c = s · cos(f̂(x), t_c) for every class, so only the prompts learn and
  every class, seen or not, is scored the same way.

**Old-logit masking** (``mask_old_logits``, the papers' training rule): while learning task t the
cross-entropy is over task t's classes only, every other column masked to −∞; old rows of the head
then get no gradient and keep their values exactly. Off: the cross-entropy is over every seen class.

Rehearsal-free, as published: nothing of earlier tasks (images, features, statistics) is kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn
from torch.utils.data import DataLoader, RandomSampler
from tqdm.auto import tqdm

from driftless.errors import ConfigError
from driftless.methods.base import Context, LabelSpace, MethodBase, TaskData, column_index
from driftless.methods.parts.image_training import ImageTrainingConfig
from driftless.methods.parts.optimisation import endless, learning_rate, optimizer_for
from driftless.methods.parts.runtime import cpu_threads
from driftless.methods.parts.text_classifier import cosine_logits
from driftless.methods.parts.vision_prompts import LayerPrompts, PromptedVisionTower

Classifier = Literal["linear", "text"]
HeadInit = Literal["text", "random"]


class PromptedClassifierConfig(ImageTrainingConfig):
    """Training and classifier fields shared by the prompt methods (each sets its paper's values)."""

    train_last_blocks: None = None
    """Always None: the image tower stays frozen in prompt methods, only prompts and head train."""
    classifier: Classifier = "linear"
    """``linear``: a head over the seen classes (the papers'); ``text``: CLIP's text embeddings."""
    head_init: HeadInit = "text"
    """Rows of a new class start at its text embedding (CLIP; zero-shot before training) or at
    N(0, 1/D) (the papers' random head)."""
    mask_old_logits: bool = True
    """Cross-entropy over the current task's classes only (the papers'), or over every seen class."""
    key_loss_weight: float = Field(default=0.1, ge=0)
    """Weight of the surrogate loss pulling chosen keys toward their queries (where there is one)."""
    cpu_threads: int | None = Field(default=1, ge=1)
    """Intra-op threads while training on a CPU (None: torch's setting); no effect on results."""

    @model_validator(mode="before")
    @classmethod
    def _iterations_replace_default_epochs(cls, values: object) -> object:
        # the prompt methods' defaults are epochs (the papers'); giving iterations alone means
        # "iterations instead of the default epochs"
        iterations_alone = isinstance(values, Mapping) and "epochs" not in values
        if iterations_alone and values.get("iterations") is not None:  # type: ignore[union-attr]
            values = {**values, "epochs": None}  # type: ignore[dict-item]
        return values


PromptedConfigT = TypeVar("PromptedConfigT", bound=PromptedClassifierConfig)


class PromptedClassifier(MethodBase[PromptedConfigT]):
    """Base of L2P, DualPrompt and CODA-Prompt (see the module docstring); not registered."""

    inputs = "images"

    def __init__(self, config: PromptedConfigT | None = None):
        super().__init__(config)
        self.tower_: PromptedVisionTower | None = None
        self.prompts_: nn.Module | None = None  # the method's prompt parameters
        self.head_ids_: list[int] = []
        self.head_weight_: torch.Tensor | None = None  # (C, D)
        self.head_bias_: torch.Tensor | None = None  # (C,)
        self.tasks_learned_ = 0
        self._prompt_state_to_load: dict[str, torch.Tensor] | None = None

    # --- what a method says -----------------------------------------------------------------

    def build_prompts(self, tower: PromptedVisionTower, generator: torch.Generator) -> nn.Module:
        """The method's prompt parameters for ``tower``, drawn from ``generator`` (made once, when
        the first task begins)."""
        raise NotImplementedError

    def grow_prompts(self, task_index: int, generator: torch.Generator) -> None:
        """Add what task ``task_index`` brings to the prompts (CODA-Prompt's new components);
        nothing by default. Also replayed, task by task, to rebuild shapes when a state loads."""

    def prompt_layers(self) -> tuple[int, ...]:
        """Every layer index the method puts prompts into (checked against the tower)."""
        raise NotImplementedError

    def choose_prompts(
        self, query: torch.Tensor, task_index: int | None
    ) -> tuple[LayerPrompts, torch.Tensor]:
        """Prompts for a batch of queries (B, W) and the method's extra loss (a scalar, 0 when
        there is none). ``task_index`` is the task being learned, or None at test time."""
        raise NotImplementedError

    def trainable_prompt_parameters(self, task_index: int) -> list[nn.Parameter]:
        """The prompt parameters the optimizer updates during task ``task_index``."""
        raise NotImplementedError

    # --- the model ----------------------------------------------------------------------------

    def tower(self, ctx: Context) -> PromptedVisionTower:
        """The frozen tower copy, made on first use (with a loaded state's prompts, if any)."""
        if self.tower_ is None:
            self.tower_ = PromptedVisionTower.from_backbone(ctx.backbone)
            self._check_layers(self.tower_)
        if self._prompt_state_to_load is not None:
            # rebuild the prompts' shapes (values are overwritten), then load
            shapes = torch.Generator().manual_seed(0)
            with torch.inference_mode(False):
                self.prompts_ = self.build_prompts(self.tower_, shapes)
                for task_index in range(self.tasks_learned_):
                    self.grow_prompts(task_index, shapes)
                self.prompts_.load_state_dict(self._prompt_state_to_load)
            self._prompt_state_to_load = None
        self.tower_.to(ctx.device)
        if self.prompts_ is not None:
            self.prompts_.to(ctx.device)
        return self.tower_

    def _check_layers(self, tower: PromptedVisionTower) -> None:
        depth = len(tower.layers)
        wrong = [i for i in self.prompt_layers() if not 0 <= i < depth]
        if wrong:
            raise ConfigError(
                f"{self.name}: prompt layers {wrong} asked, the image tower has layers "
                f"0..{depth - 1}; set the method's layer fields (--set {self.name}.<layers>=[...])"
            )

    def embed(
        self, tower: PromptedVisionTower, pixels: torch.Tensor, task_index: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, D) prompted embeddings of ``pixels`` and the method's extra loss."""
        if self.prompts_ is None:  # before the first task: the untouched CLIP
            return tower(pixels), torch.zeros((), device=pixels.device)
        query = tower.query(pixels)
        prompts, extra_loss = self.choose_prompts(query, task_index)
        return tower(pixels, prompts), extra_loss

    # --- the classifier -----------------------------------------------------------------------

    def _new_rows(
        self, texts: torch.Tensor, scale: float, generator: torch.Generator
    ) -> torch.Tensor:
        if self.config.head_init == "text":
            return scale * texts.detach().float().cpu()
        dim = texts.shape[1]
        return torch.randn(len(texts), dim, generator=generator) / math.sqrt(dim)

    def class_scores(
        self,
        embeddings: torch.Tensor,
        label_space: LabelSpace,
        ctx: Context,
        weight: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, C) logits over ``label_space``: the head's rows (``weight``/``bias``, default the
        stored ones) for classes it has, s · cos(f̂, t_c) for the others and for ``text``."""
        scale = ctx.backbone.logit_scale
        texts = ctx.text_embeddings(label_space).to(embeddings.device)
        logits = cosine_logits(embeddings, texts, scale)
        weight = self.head_weight_ if weight is None else weight
        bias = self.head_bias_ if bias is None else bias
        if self.config.classifier == "text" or weight is None or bias is None:
            return logits
        row = column_index(self.head_ids_)
        columns = [j for j, c in enumerate(label_space.class_ids) if c in row]
        if not columns:
            return logits
        rows = torch.tensor([row[label_space.class_ids[j]] for j in columns], device=logits.device)
        features = F.normalize(embeddings.float(), dim=-1)
        head = features @ weight.to(logits.device)[rows].T + bias.to(logits.device)[rows]
        index = torch.tensor(columns, device=logits.device)
        return logits.index_copy(1, index, head)

    # --- learning -----------------------------------------------------------------------------

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Train the prompts (and the head) on the task's images, old logits masked."""
        assert data.images is not None
        task_index = self.tasks_learned_
        with cpu_threads(ctx.device, self.config.cpu_threads), torch.inference_mode(False):
            tower = self.tower(ctx)
            if self.prompts_ is None:
                self.prompts_ = self.build_prompts(tower, ctx.generator).to(ctx.device)
            self.grow_prompts(task_index, ctx.generator)
            self.prompts_.to(ctx.device)
            self._add_head_rows(data, ctx)
            self._train(tower, data, ctx, task_index)
        self.tasks_learned_ += 1

    def _add_head_rows(self, data: TaskData, ctx: Context) -> None:
        new = [c for c in data.seen_label_space.class_ids if c not in self.head_ids_]
        if self.config.classifier == "text" or not new:
            return
        space = data.seen_label_space.subspace(new)
        rows = self._new_rows(ctx.text_embeddings(space), ctx.backbone.logit_scale, ctx.generator)
        old_weight = self.head_weight_ if self.head_weight_ is not None else rows[:0]
        old_bias = self.head_bias_ if self.head_bias_ is not None else torch.zeros(0)
        self.head_weight_ = torch.cat([old_weight, rows])
        self.head_bias_ = torch.cat([old_bias, torch.zeros(len(new))])
        self.head_ids_ = [*self.head_ids_, *new]

    def _train(
        self, tower: PromptedVisionTower, data: TaskData, ctx: Context, task_index: int
    ) -> torch.Tensor:
        config, device = self.config, ctx.device
        seen = data.seen_label_space
        column = seen.position_table(device)
        allowed = torch.zeros(len(seen), dtype=torch.bool, device=device)
        allowed[seen.columns(data.task.class_ids)] = True
        if not config.mask_old_logits:
            allowed[:] = True

        parameters = list(self.trainable_prompt_parameters(task_index))
        weight = bias = None
        if config.classifier == "linear":
            assert self.head_weight_ is not None and self.head_bias_ is not None
            weight = nn.Parameter(self.head_weight_.to(device).clone())
            bias = nn.Parameter(self.head_bias_.to(device).clone())
            parameters += [weight, bias]
        optimizer = optimizer_for(parameters, config)

        sampler = RandomSampler(data.images, generator=ctx.generator)  # type: ignore[arg-type]
        loader = DataLoader(data.images, batch_size=config.batch_size, sampler=sampler)
        total = config.iterations or config.epochs * len(loader)  # type: ignore[operator]
        batches = endless(loader)
        losses = torch.zeros(total)
        description = f"{self.name} {data.task.name}"
        steps = tqdm(range(total), desc=description, unit="step", leave=False,
                     disable=not ctx.progress)  # fmt: skip
        with torch.enable_grad():
            for step in steps:
                pixels, labels = next(batches)
                pixels, labels = pixels.to(device), labels.to(device)
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(step, total, config)
                embeddings, extra_loss = self.embed(tower, pixels, task_index)
                logits = self.class_scores(embeddings, seen, ctx, weight, bias)
                loss = masked_cross_entropy(logits, column(labels), allowed, config.label_smoothing)
                loss = loss + extra_loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses[step] = loss.detach().cpu()
        if weight is not None and bias is not None:
            self.head_weight_ = weight.detach().cpu()
            self.head_bias_ = bias.detach().cpu()
        return losses

    # --- scoring --------------------------------------------------------------------------------

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """Logits over ``label_space`` of the prompted embeddings (prompts chosen by the query)."""
        tower = self.tower(ctx)
        with torch.no_grad():
            embeddings, _ = self.embed(tower, batch.to(ctx.device), None)
            return self.class_scores(embeddings, label_space, ctx)

    # --- state ----------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Prompt parameters, head rows with their class ids, the number of tasks learned."""
        if self.prompts_ is not None:
            prompts = {k: v.detach().cpu().clone() for k, v in self.prompts_.state_dict().items()}
        else:
            prompts = dict(self._prompt_state_to_load or {})
        return {
            "prompts": prompts,
            "head_ids": torch.tensor(self.head_ids_, dtype=torch.long),
            "head_weight": None if self.head_weight_ is None else self.head_weight_.clone(),
            "head_bias": None if self.head_bias_ is None else self.head_bias_.clone(),
            "tasks_learned": self.tasks_learned_,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (prompts applied when the tower is first needed)."""
        prompts = dict(state["prompts"])
        self.prompts_ = None  # rebuilt to the saved shapes when the tower is next needed
        self._prompt_state_to_load = prompts or None
        self.head_ids_ = [int(c) for c in state["head_ids"].tolist()]
        weight, bias = state["head_weight"], state["head_bias"]
        self.head_weight_ = None if weight is None else weight.clone()
        self.head_bias_ = None if bias is None else bias.clone()
        self.tasks_learned_ = int(state["tasks_learned"])


def mask_logits(logits: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """``logits`` with every column where ``allowed`` (C,) is False set to −∞: the cross-entropy
    then ignores those classes, and their rows get no gradient."""
    return logits.masked_fill(~allowed.to(logits.device), float("-inf"))


def masked_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, allowed: torch.Tensor, smoothing: float = 0.0
) -> torch.Tensor:
    """Cross-entropy of ``logits`` (B, C) over the columns where ``allowed`` (C,) is True only:
    with ``smoothing = 0`` it equals the cross-entropy of :func:`mask_logits`' output; label
    smoothing spreads over the allowed columns only (−∞ columns would make it infinite). Every
    target must be an allowed column."""
    kept = allowed.nonzero().squeeze(1)
    position = torch.full((len(allowed),), -1, dtype=torch.long, device=logits.device)
    position[kept] = torch.arange(len(kept), device=logits.device)
    if bool((position[targets] < 0).any()):
        raise ValueError("masked_cross_entropy: a target is a masked column")
    return F.cross_entropy(logits[:, kept], position[targets], label_smoothing=smoothing)
