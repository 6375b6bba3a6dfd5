"""CoOp — context optimization (Zhou, Yang, Loy, Liu, "Learning to Prompt for Vision-Language Models",
IJCV 2022), trained task after task: the prompt-learning baseline MoDER is compared with.

Algorithm: one context of ``n_ctx`` learnable vectors, shared by every class, in the text tower's
token-embedding space; the prompt of class c is ``prompt.format(<context> + name_c)`` (CoOp's
"X X X X {name}."), its embedding the class's prototype t_c(ctx). On each task the context is trained
by cross-entropy over every class seen so far, logits s · cos(f(x), t_c(ctx)), on the task's cached
image features only. Any label space, seen classes or not, is scored with the current context and
the class names: the context is all that is learned, so nothing stops it drifting toward the newest
task (forgetting) or away from classes never trained on.

Our choices: the context starts from the token embeddings of "a photo of a" (CoOp's initialisation,
so before training the prompt reads "a photo of a {name}."); Adam instead of CoOp's SGD + cosine
schedule (a few hundred steps per task here); one prompt, no template ensembling (CoOp's design);
the optimizer restarts at every task while the context carries over.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import field_validator

from driftless.methods.base import Context, LabelSpace, MethodBase, TaskData
from driftless.methods.parts.prompt_learner import (
    PromptEncoder,
    PromptTrainingConfig,
    TemplatedPrompts,
    fit_task_contexts,
    initial_context,
    reuse_encoder,
    split_template,
)
from driftless.methods.parts.runtime import cpu_threads, frozen
from driftless.methods.parts.text_classifier import cosine_logits
from driftless.methods.registry import register_method


class CoOpConfig(PromptTrainingConfig):
    """Hyper-parameters of :class:`CoOp` (its one context is shared by all classes)."""

    prompt: str = "{}."
    """Template around [context + class name]; ``{}`` marks where they go."""

    classes: Literal["seen", "task"] = "seen"
    """Cross-entropy over every class seen so far, or over the current task's classes only."""

    @field_validator("prompt")
    @classmethod
    def _one_slot(cls, value: str) -> str:
        split_template(value)
        return value


@register_method
class CoOp(MethodBase[CoOpConfig]):
    """CoOp: one learned prompt context shared by all classes, trained on each task in turn."""

    name = "coop"
    inputs = "features"
    Config = CoOpConfig

    def __init__(self, config: CoOpConfig | None = None):
        super().__init__(config)
        self.context_: torch.Tensor | None = None  # (n_ctx, width)
        self._encoder: PromptEncoder | None = None
        self._prototypes: dict[str, torch.Tensor] = {}

    def _prompt_encoder(self, ctx: Context) -> PromptEncoder:
        self._encoder = reuse_encoder(self._encoder, ctx.backbone)
        return self._encoder

    def _context(self, ctx: Context) -> torch.Tensor:
        if self.context_ is None:
            encoder = self._prompt_encoder(ctx)
            with torch.inference_mode(False):  # row 0 is evaluated under inference mode
                self.context_ = initial_context(
                    encoder, self.config.n_ctx, self.config.init, generator=ctx.generator
                )
        return self.context_

    def _prompts(self, names: tuple[str, ...], ctx: Context) -> TemplatedPrompts:
        templates = [(self.config.prompt,)] * len(names)
        return TemplatedPrompts(self._prompt_encoder(ctx), names, templates, self.config.n_ctx)

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Train the shared context on the task's features (CE over the seen or task classes)."""
        assert data.features is not None
        space = data.seen_label_space if self.config.classes == "seen" else data.label_space
        prompts = self._prompts(space.names, ctx)

        def step(context: torch.Tensor) -> tuple[torch.Tensor, None]:
            """Every class's prompt with the shared context; no penalty."""
            return prompts.prototypes(context[None].expand(len(space), -1, -1)), None

        with frozen(ctx.backbone.model), cpu_threads(ctx.device, self.config.cpu_threads):
            self.context_ = fit_task_contexts(
                self._context(ctx), step, data, space, ctx, self.config
            )
        self._prototypes.clear()

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """``logit_scale · cos`` to every class's prompt with the learned context."""
        missing = tuple(dict.fromkeys(n for n in label_space.names if n not in self._prototypes))
        if missing:
            context = self._context(ctx).to(ctx.device)
            with cpu_threads(ctx.device, self.config.cpu_threads):
                encoded = self._prompts(missing, ctx).prototypes(
                    context[None].expand(len(missing), -1, -1)
                )
            self._prototypes.update(zip(missing, encoded.cpu(), strict=True))
        prototypes = torch.stack([self._prototypes[n] for n in label_space.names])
        return cosine_logits(batch, prototypes.to(batch.device), ctx.backbone.logit_scale)

    def state_dict(self) -> dict[str, Any]:
        """The shared context."""
        return {"context": self.context_}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the shared context."""
        self.context_ = None if state["context"] is None else state["context"].clone()
        self._prototypes.clear()
