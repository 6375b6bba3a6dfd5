"""MoDER — modular embedding recomposition ("Modular Embedding Recomposition for Incremental
Learning", arXiv 2508.16463, 2025; only its abstract is public): per-class textual experts in a hub,
recomposed into prototypes of classes never trained on.

Algorithm (driftless's definition, docs/methods/moder.md; frozen image and text encoders):

1. Expert of a seen class c: ``n_ctx`` context vectors ctx_c (CoOp-style, initialised from the token
   embeddings of "a photo of a") placed before the class name inside a prompt template:
   ``template.format(ctx_c + name_c)``. The experts of a task's classes are trained together on the
   task's cached image features, by cross-entropy over the task's classes with logits
   s · cos(f(x), t_c(ctx_c)); at every step each class's template is drawn at random from its
   dataset's templates (template augmentation). The refined prototype t*_c is the normalized mean of
   the normalized embeddings of every template with ctx_c (prompt ensembling).
2. Hub: for every seen class {name, dataset, templates, key k_c = zero-shot text embedding,
   ctx_c, t*_c, μ_c = mean image embedding} (:mod:`driftless.methods.parts.expert_hub`). It is the
   method's state (saved in every checkpoint), can be written to a file after every task
   (``export_path``) and loaded into another run, on any benchmark with the same backbone
   (``hub_path``).
3. Unseen class u (not trained in this run): key k_u = its zero-shot embedding t_u; retrieve the
   top-k hub entries by cos(k_u, k_c) (exact brute force); w = softmax(cos / τ) over them; composed
   context Σ w_c ctx_c; encode [composed context + name of u] in u's templates → p_u; α-smoothing:
   prototype = normalize(α · p_u + (1 − α) · t_u). Defaults k = 5, τ = 0.1.
4. α by leave-one-class-out over the hub: every hub class in turn is treated as unseen, recomposed
   from the other entries only, and α is the grid value that scores these recompositions best.
5. Seen classes are scored with their own t*_c. Logits: s · cos(f(x), prototype), s the backbone's
   logit scale, for seen and unseen classes alike (one scale, so they are compared as they are).

Our choices where the paper is silent (each a config field):
- Placement: the expert's context goes where the template's ``{}`` is, before the class name; the
  template's words surround it. ``template_augmentation = False``: the class's first template only,
  in training and in its prototype.
- Training: Adam (lr 2e-3), 10 epochs over the task's features in mini-batches of 32, one template
  draw per class per step, all of a task's experts in one batched text-tower pass; plus a penalty
  on the shift of the task's *mean* prompt embedding from its start (``shift_penalty``):
  cross-entropy over one task's classes is blind to a shift shared by all of them, which otherwise
  drifts freely and miscalibrates the task's experts against every other class (on world-cil it
  cost 9 points of Last).
- The LOO score (``alpha_criterion``): ``"images"`` (default) keeps each seen class's mean image
  embedding μ_c in the hub and maximizes minus the cross-entropy of μ_c when the class is scored as
  an unseen class will be, by its recomposition against the other classes' experts;
  ``"prototypes"`` maximizes the mean cos(smoothed recomposition, t*_c) and needs no image statistic.
- Across datasets (``cross_dataset``): a class of a dataset no hub class comes from (the label
  space names each class's dataset) is a class of a dataset the hub has never trained on. Its α
  is chosen apart, by leave-one-dataset-out (each hub dataset recomposed from the others), as the
  value whose smallest gain over α = 0 among the held-out datasets is largest: recomposition across
  datasets only where it helped every dataset it could be tried on, 0 while the hub holds a single
  dataset. ``"same"`` uses the within-dataset α for every class.
- ``compose = "prototypes"`` (ablation) mixes the retrieved refined prototypes instead of their
  contexts, p_u = normalize(Σ w_c t*_c); ``"offsets"`` adds the retrieved experts' shifts to the
  zero-shot embedding, p_u = normalize(t_u + Σ w_c (t*_c − k_c)).
- Grid of ``alpha_grid`` = 21 values in [0, 1], ties to the smallest; with fewer than two hub
  entries α = 0 (nothing to leave out: zero-shot). With an empty hub every class is zero-shot.
- A class learned again (none of our protocols does this) restarts from its expert's context.
- Entries loaded with ``hub_path`` are retrieval sources only; this run's classes use the experts
  this run trained.

Controls (switches that remove one mechanism; docs/methods/moder.md has their tables over seeds):
``experts = "untrained"`` keeps every expert at its initial context (prompt wording only);
``composition = "global-mean"`` composes every hub entry with one weight instead of retrieving;
a fixed ``alpha`` (0: zero-shot prototypes for unseen classes; 1: no smoothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator

from driftless.methods.base import Context, LabelSpace, MethodBase, TaskData
from driftless.methods.parts.expert_hub import (
    ExpertHub,
    held_out_dataset_scores,
    load_hub,
    retrieve,
    save_hub,
    uniform_weights,
    within_dataset_score,
)
from driftless.methods.parts.prompt_learner import (
    PromptEncoder,
    PromptTrainingConfig,
    TemplatedPrompts,
    fit_task_contexts,
    initial_context,
    reuse_encoder,
)
from driftless.methods.parts.runtime import cpu_threads, frozen
from driftless.methods.parts.text_classifier import cosine_logits
from driftless.methods.registry import register_method

Composition = Literal["contexts", "prototypes", "offsets"]
Retrieval = Literal["retrieval", "global-mean"]


class MoDERConfig(PromptTrainingConfig):
    """Hyper-parameters of :class:`MoDER` (defaults: driftless's definition,
    docs/methods/moder.md); each expert is one learned context."""

    template_augmentation: bool = True
    """Train each expert with a template drawn at random per step and ensemble all templates in
    its prototype; False: the class's first template only, in training and in the prototype."""

    experts: Literal["trained", "untrained"] = "trained"
    """``untrained`` (a control): the experts keep their initial context ("a photo of a") — the
    hub then holds the prompt wording only, nothing learned from images."""

    composition: Retrieval = "retrieval"
    """How an unseen class picks its experts: top-k retrieval by key similarity with weights
    softmax(cos / τ) (MoDER), or ``global-mean`` (a control): every hub entry with one weight."""

    shift_penalty: float = Field(default=100.0, ge=0.0)
    """Weight λ of λ · ‖mean_c t_c(ctx_c) − mean_c t_c(ctx_c⁰)‖² over the task's prompts in
    training: cross-entropy over a task's classes cannot see a shift shared by all their
    prototypes, so without it the experts drift together and lose their calibration against other
    tasks' classes. 0 turns it off."""

    k: int = Field(default=5, ge=1)
    """Hub entries retrieved per unseen class."""

    tau: float = Field(default=0.1, gt=0.0)
    """Temperature of the retrieval weights softmax(cos / tau)."""

    alpha: float | Literal["loo"] = "loo"
    """Weight of the recomposed prototype against the zero-shot one: a value in [0, 1], or
    ``"loo"`` to choose it by leave-one-class-out over the hub."""

    alpha_criterion: Literal["images", "prototypes"] = "images"
    """What leave-one-out maximizes: ``"images"``, minus the cross-entropy of each held-out class's
    mean image embedding scored as it will be (its recomposition against the other classes);
    ``"prototypes"``, the cosine between a held-out class's smoothed recomposition and its own
    expert's prototype (no image statistic needed)."""

    cross_dataset: Literal["loo", "same"] = "loo"
    """α for classes of a dataset the hub holds no class of:
    ``"loo"`` chooses it apart, by leave-one-dataset-out, composing only if every held-out
    dataset gains (0 while the hub holds one dataset); ``"same"`` uses the within-dataset α."""

    alpha_grid: int = Field(default=21, ge=2)
    """Number of evenly spaced α values in [0, 1] that ``alpha = "loo"`` tries."""

    compose: Composition = "contexts"
    """What retrieval mixes: expert contexts (MoDER), refined prototypes, or prototype offsets."""

    hub_path: Path | None = None
    """A hub to load before the first task (a file from ``export_path``, a run's
    checkpoints/moder.pt or its run directory); its entries join this run's hub as retrieval
    sources. Must come from the same backbone."""

    export_path: Path | None = None
    """Write the hub to this file after every task (load it elsewhere with ``hub_path``)."""

    @field_validator("alpha")
    @classmethod
    def _alpha_in_unit_interval(cls, value: float | str) -> float | str:
        if isinstance(value, float) and not 0.0 <= value <= 1.0:
            raise ValueError(f"must be in [0, 1] or 'loo', got {value}")
        return value


@register_method
class MoDER(MethodBase[MoDERConfig]):
    """MoDER: per-class textual experts in a hub, recomposed into prototypes of unseen classes."""

    name = "moder"
    inputs = "features"
    Config = MoDERConfig

    def __init__(self, config: MoDERConfig | None = None):
        super().__init__(config)
        self.hub_ = ExpertHub()
        fixed = 0.0 if self.config.alpha == "loo" else float(self.config.alpha)
        self.alpha_within_: float = fixed  # for classes of datasets the hub holds
        self.alpha_across_: float = fixed  # for classes of other datasets
        self.hub_loaded_ = self.config.hub_path is None
        self._encoder: PromptEncoder | None = None
        self._prototypes: dict[tuple[int, str, tuple[str, ...]], torch.Tensor] = {}

    # -- the pieces ------------------------------------------------------------------------------
    def _prompt_encoder(self, ctx: Context) -> PromptEncoder:
        self._encoder = reuse_encoder(self._encoder, ctx.backbone)
        return self._encoder

    def _templates(self, templates: Sequence[str]) -> tuple[str, ...]:
        return tuple(templates) if self.config.template_augmentation else (templates[0],)

    def _prepare(self, ctx: Context) -> None:
        """Load ``hub_path`` once (before the first task's evaluation)."""
        if self.hub_loaded_:
            return
        assert self.config.hub_path is not None
        with torch.inference_mode(False), torch.no_grad():
            self.hub_.backbone = self.hub_.backbone or ctx.backbone.fingerprint
            self.hub_.extend(load_hub(self.config.hub_path))
            self.hub_loaded_ = True
            self._hub_changed(ctx)

    def _hub_changed(self, ctx: Context) -> None:
        self._prototypes.clear()
        if self.config.alpha == "loo":
            self.alpha_within_, self.alpha_across_ = self.choose_alphas(ctx)
        if self.config.export_path is not None and len(self.hub_):
            save_hub(self.hub_, self.config.export_path)

    def encode_with_contexts(
        self,
        names: Sequence[str],
        templates: Sequence[Sequence[str]],
        contexts: torch.Tensor,
        ctx: Context,
    ) -> torch.Tensor:
        """(C, D) normalized prototypes of classes ``names`` with contexts (C, n_ctx, width),
        ensembled over their templates (the first only without template augmentation)."""
        encoder = self._prompt_encoder(ctx)
        prompts = TemplatedPrompts(
            encoder, names, [self._templates(t) for t in templates], contexts.shape[1]
        )
        return prompts.prototypes(contexts.to(ctx.device)).cpu()

    def compose(
        self,
        queries: torch.Tensor,
        names: Sequence[str],
        templates: Sequence[Sequence[str]],
        ctx: Context,
        exclude: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(U, D) normalized recomposed prototypes p_u of classes with zero-shot keys ``queries``
        (U, D) (before α-smoothing): top-k retrieval, softmax(cos / τ) weights, then the composed
        context encoded with each class's name (or the composed prototype / offset, as
        ``compose`` says). ``exclude`` (U, N) bars hub rows (leave-one-out)."""
        hub = self.hub_
        assert hub.keys is not None and hub.contexts is not None and hub.prototypes is not None
        if self.config.composition == "global-mean":
            rows, weights = uniform_weights(queries, hub.keys, exclude)
        else:
            rows, weights = retrieve(queries, hub.keys, self.config.k, self.config.tau, exclude)
        if self.config.compose == "contexts":
            mixed = torch.einsum("uk,ukcw->ucw", weights, hub.contexts[rows])
            return self.encode_with_contexts(names, templates, mixed, ctx)
        if self.config.compose == "prototypes":
            return F.normalize(torch.einsum("uk,ukd->ud", weights, hub.prototypes[rows]), dim=-1)
        shifts = hub.prototypes[rows] - hub.keys[rows]
        return F.normalize(queries.float() + torch.einsum("uk,ukd->ud", weights, shifts), dim=-1)

    @staticmethod
    def smooth(
        recomposed: torch.Tensor, zero_shot: torch.Tensor, alpha: float | torch.Tensor
    ) -> torch.Tensor:
        """α-smoothing, normalize(α · p_u + (1 − α) · t_u), row by row: (U, D) × (U, D) with α a
        number or (U,) values; rows with α = 0 are ``zero_shot``'s exactly."""
        alpha = torch.as_tensor(alpha, dtype=zero_shot.dtype).expand(len(zero_shot))[:, None]
        mixed = F.normalize(alpha * recomposed + (1.0 - alpha) * zero_shot, dim=-1)
        return torch.where(alpha == 0.0, zero_shot, mixed)

    def choose_alphas(self, ctx: Context) -> tuple[float, float]:
        """(α within a hub dataset, α across datasets), each the best value of an evenly spaced
        grid in [0, 1] (the smallest among ties).

        Within: every hub class is recomposed from the other entries (leave-one-class-out) and
        scored by :func:`within_dataset_score`; 0 with fewer than two entries. Across
        (``cross_dataset = "loo"``): every hub dataset is recomposed from the other datasets'
        entries (leave-one-dataset-out) and α maximizes the smallest gain over α = 0 of any
        held-out dataset (:func:`held_out_dataset_scores`): recomposition across datasets only
        where it helped every dataset it could be tried on; 0 with fewer than two datasets."""
        hub, config = self.hub_, self.config
        grid = torch.linspace(0.0, 1.0, config.alpha_grid).tolist()
        scale = ctx.backbone.logit_scale

        def best(scores: list[float]) -> float:
            return float(grid[max(range(len(grid)), key=scores.__getitem__)])

        if len(hub) < 2:
            return 0.0, 0.0
        assert hub.keys is not None
        threads = cpu_threads(ctx.device, config.cpu_threads)
        with threads, torch.inference_mode(False), torch.no_grad():
            itself = torch.eye(len(hub), dtype=torch.bool)
            recomposed = self.compose(hub.keys, hub.names, hub.templates, ctx, itself)
            within = best(
                [
                    within_dataset_score(hub, self.smooth(recomposed, hub.keys, a), scale,
                                         config.alpha_criterion)
                    for a in grid
                ]
            )  # fmt: skip
            datasets = hub.datasets
            if config.cross_dataset == "same":
                return within, within
            if len(set(datasets)) < 2:
                return within, 0.0
            same = torch.tensor([[a == b for b in datasets] for a in datasets], dtype=torch.bool)
            recomposed = self.compose(hub.keys, hub.names, hub.templates, ctx, same)
            per_alpha = [
                held_out_dataset_scores(
                    hub, self.smooth(recomposed, hub.keys, a), scale, config.alpha_criterion
                )
                for a in grid
            ]
            gains = [min(s[d] - per_alpha[0][d] for d in s) for s in per_alpha]
        return within, best(gains)

    def prototypes(self, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """(C, D) normalized prototypes of a label space: t*_c for classes this run trained,
        α-smoothed recompositions for the others (their zero-shot embeddings while the hub is
        empty)."""
        self._prepare(ctx)
        keys = [
            (c, n, tuple(t), d)
            for c, n, t, d in zip(
                label_space.class_ids,
                label_space.names,
                label_space.templates,
                label_space.datasets,
                strict=True,
            )
        ]
        missing = [i for i, key in enumerate(keys) if key not in self._prototypes]
        if missing:
            with cpu_threads(ctx.device, self.config.cpu_threads):
                self._fill_prototypes(label_space, keys, missing, ctx)
        return torch.stack([self._prototypes[key] for key in keys])

    def _fill_prototypes(
        self,
        label_space: LabelSpace,
        keys: list[tuple[int, str, tuple[str, ...], str]],
        missing: list[int],
        ctx: Context,
    ) -> None:
        """Prototypes of the label space's rows ``missing`` into the cache."""
        own = self.hub_.own_rows()
        zero_shot = ctx.text_embeddings(label_space).detach().float().cpu().clone()
        unseen = [i for i in missing if keys[i][0] not in own]
        for i in missing:
            if keys[i][0] in own:
                assert self.hub_.prototypes is not None
                self._prototypes[keys[i]] = self.hub_.prototypes[own[keys[i][0]]].clone()
        if unseen and len(self.hub_):
            recomposed = self.compose(
                zero_shot[unseen],
                [label_space.names[i] for i in unseen],
                [label_space.templates[i] for i in unseen],
                ctx,
            )
            known = set(self.hub_.datasets)
            alphas = torch.tensor(
                [
                    self.alpha_within_ if label_space.datasets[i] in known else self.alpha_across_
                    for i in unseen
                ]
            )
            smoothed = self.smooth(recomposed, zero_shot[unseen], alphas)
        else:
            smoothed = zero_shot[unseen]
        for row, i in enumerate(unseen):
            self._prototypes[keys[i]] = smoothed[row]

    # -- the Method protocol -----------------------------------------------------------------------
    def learn(self, data: TaskData, ctx: Context) -> None:
        """Train one expert per class of the task (jointly, CE over the task's classes) and add
        them to the hub; then re-choose α."""
        assert data.features is not None
        self._prepare(ctx)
        config = self.config
        space = data.label_space
        encoder = self._prompt_encoder(ctx)
        start = []
        for class_id in space.class_ids:
            row = self.hub_.row_of(class_id)
            if row is not None:
                assert self.hub_.contexts is not None
                start.append(self.hub_.contexts[row])
            else:
                start.append(
                    initial_context(encoder, config.n_ctx, config.init, generator=ctx.generator)
                )
        templates = [self._templates(t) for t in space.templates]
        prompts = TemplatedPrompts(encoder, space.names, templates, config.n_ctx)
        initial = torch.stack(start)

        with frozen(ctx.backbone.model), cpu_threads(ctx.device, config.cpu_threads):
            with torch.no_grad():
                reference = prompts.prompt_embeddings(initial.to(ctx.device))

            def step(contexts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
                """The task's prototypes, each class in a template drawn at random (its only
                one without augmentation), and the shared-shift penalty."""
                rows = prompts.draw(ctx.generator)
                prototypes = prompts.encode_rows(rows, contexts)
                if not config.shift_penalty:
                    return prototypes, None
                shift = prototypes.mean(dim=0) - reference[rows.to(reference.device)].mean(dim=0)
                return prototypes, config.shift_penalty * shift.pow(2).sum()

            if config.experts == "trained":
                contexts = fit_task_contexts(initial, step, data, space, ctx, config)
            else:
                contexts = initial
            with torch.no_grad():
                refined = prompts.prototypes(contexts.to(ctx.device)).cpu()
        zero_shot = ctx.text_embeddings(space).detach().float().cpu().clone()
        features = F.normalize(data.features.float().cpu(), dim=-1)
        image_means = torch.stack([features[data.labels == c].mean(dim=0) for c in space.class_ids])
        self.hub_.backbone = self.hub_.backbone or ctx.backbone.fingerprint
        self.hub_.add(
            space.class_ids,
            space.names,
            space.datasets,
            space.templates,
            zero_shot,
            contexts,
            refined,
            F.normalize(image_means, dim=-1),
        )
        self._hub_changed(ctx)

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """``logit_scale · cos`` to each class's prototype (:meth:`prototypes`)."""
        prototypes = self.prototypes(label_space, ctx).to(batch.device)
        return cosine_logits(batch, prototypes, ctx.backbone.logit_scale)

    def state_dict(self) -> dict[str, Any]:
        """The hub, the chosen α values and whether ``hub_path`` was loaded."""
        return {
            "hub": self.hub_.state_dict(),
            "alpha_within": self.alpha_within_,
            "alpha_across": self.alpha_across_,
            "hub_loaded": self.hub_loaded_,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the hub and α."""
        self.hub_ = ExpertHub.from_state_dict(state["hub"])
        self.alpha_within_ = float(state["alpha_within"])
        self.alpha_across_ = float(state["alpha_across"])
        self.hub_loaded_ = bool(state["hub_loaded"])
        self._prototypes.clear()
