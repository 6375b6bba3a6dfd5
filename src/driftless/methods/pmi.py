"""PMI: data-free continual learning by model inversion with per-layer initialization (Layer-specific
modeling and alignment; "Model Inversion with Layer-Specific Modeling and Alignment for Data-Free
Continual Learning", arXiv 2510.26311). No image of a past task is ever kept: old classes are replayed
only through images the model synthesizes from stored class statistics.

Algorithm (driftless's definition, docs/methods/pmi.md):
1. After each task, store per class the mean and covariance (full or diagonal) of its image
   embeddings f(x) by the encoder that just learned it, its text embedding, and running token
   statistics of the tower (:class:`~driftless.methods.parts.inversion.TokenStatistics`).
2. At the start of task t, for each old class c draw targets z ~ N(μ_c, Σ_c + εI) (``gaussian``),
   around its semantic anchor a_c = P t_c (``semantic``; P the ridge least-squares map from text
   embeddings to image embeddings, fitted on the stored statistics of real features), or the mix
   (1 − β)·z + β·a_c (``mixed``).
3. Synthesize one image per target with the model as it ended task t − 1: per-layer inversion of the
   tower (blocks inverted one at a time from the target back to pixels, the patch embedding by least
   squares), then full-model inversion (class CE through the text classifier, feature matching to z,
   contrastive alignment to the class means, total-variation and ℓ2 priors) until a target loss.
   By default (``synthesis = "once"``) only the classes of task t − 1 are inverted, by the model
   that has just learned them; their images are kept and replayed at every later task.
4. Train on the task's real images plus the synthetic ones: CE (cosine logits with the frozen text
   embeddings, class-balanced) over every seen class for the synthetic images and over the task's
   classes for the real ones, plus distillation (T = 2) of the previous model's old-class logits.
   Only the last ``train_last_blocks`` blocks, the final layer norm and the projection train.
5. Add the new classes' statistics (step 1).

Our choices: embeddings f(x) (after the projection) stand for "penultimate features" — they are what
the classifier reads; old classes' statistics are not re-estimated (no real image of them is left);
each class is synthesized once, 16 images, right after its task, by the model whose embeddings its
statistics describe, and kept (``synthesis = "every-task"`` inverts every old class again before
every task with the previous model — 4 images each in our first definition; at a similar synthesis
cost "once" replays 4× the images per class and measured higher Last on every seed of world-cil,
docs/methods/pmi.md); the semantic map is refitted from the statistics of every class seen; the
contrastive term is an InfoNCE over the stored class means (τ = 0.1). Two choices depart from the
letter of the definition, each a switch: the real images' CE covers their own task's classes
(``real_classes = "task"``, the "local" CE of data-free class-incremental learning; "seen" is the
literal reading), and the distillation runs on the real images too (``distill_on = "all"``;
"synthetic" is the literal reading). On world-cil the first cuts forgetting; the second gains Last and Avg for about
one point of forgetting (docs/methods/pmi.md, ablations).

Control: ``replay = "none"`` runs the same recipe (frozen previous model, distillation, local CE,
class balance) with no synthetic image at all — LwF with PMI's recipe — so that the replay's own
contribution can be measured; ``replay = "features"`` replays token states drawn from per-class
Gaussians instead of images (docs/methods/pmi.md, "Does the replay pay?"). On a multi-domain
sequence ``replay_classes = "dataset"`` scores a replayed image over its own dataset's classes and
``replay_weight`` (1 by default) adds the replay's mean CE beside the new task's instead of
sharing one class-balanced mean.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch.utils.data import ConcatDataset, Dataset

from driftless.errors import ConfigError
from driftless.methods.base import Context, LabelSpace, TaskData
from driftless.methods.finetune import ImageFinetuning
from driftless.methods.parts.gaussian_stats import GaussianClassStats
from driftless.methods.parts.image_training import (
    ImageEncoder,
    ImageTrainingConfig,
    LossFn,
    train_loop,
)
from driftless.methods.parts.inversion import (
    InversionConfig,
    TokenStatistics,
    hidden_states,
    pixel_bounds,
    synthesize,
)
from driftless.methods.parts.losses import distillation_loss
from driftless.methods.parts.text_classifier import cosine_logits
from driftless.methods.parts.token_replay import ClassTokenGaussians, draw_tokens
from driftless.methods.registry import register_method


class PMIConfig(ImageTrainingConfig, InversionConfig):
    """Hyper-parameters of :class:`PMI`: training (:class:`ImageTrainingConfig`), synthesis
    (:class:`InversionConfig`) and the fields below."""

    replay: Literal["images", "features", "none"] = "images"
    """Old classes in training: images synthesized by model inversion (PMI); ``features``, a
    control with no image: token states drawn from per-class diagonal Gaussians of the states
    entering the first trainable block (stored after each task from its real images), as many per
    step as the image replay would put in a batch, through the trainable blocks with the same CE
    and distillation; or ``none`` (a control: the same recipe — frozen copy of the previous model,
    distillation on the real images with ``distill_on = "all"``, local CE — with no replay)."""
    train_last_blocks: int | None = Field(default=2, ge=1)
    """Train the last N blocks (+ final layer norm and projection); None trains the whole tower."""
    iterations: int | None = Field(default=60, ge=1)
    """Optimizer steps per task (real and synthetic images drawn together)."""
    targets: Literal["gaussian", "semantic", "mixed"] = "mixed"
    """Inversion targets: Gaussian samples, samples around the semantic anchor, or their mix."""
    semantic_weight: float = Field(default=0.3, ge=0, le=1)
    """β of the ``mixed`` targets: z = (1 − β)·z_gauss + β·a_c."""
    covariance: Literal["full", "diagonal"] = "full"
    """Class covariance of the Gaussian targets."""
    covariance_shrinkage: float = Field(default=0.1, ge=0)
    """ε = shrinkage · mean variance, added to the diagonal before sampling."""
    semantic_ridge: float = Field(default=1e-2, gt=0)
    """Ridge of the least-squares map from text to image embeddings."""
    synthetic_per_class: int = Field(default=16, ge=1)
    """Synthetic images per old class: made once (``synthesis = "once"``) or at each task
    (``"every-task"``)."""
    synthesis: Literal["every-task", "once"] = "once"
    """When old classes are synthesized: afresh before every task, by the model that ended the
    previous one (each class inverted again at every task), or ``once``: a class is inverted a
    single time, before the task after its own, by the model that has just learned it and whose
    embeddings its stored statistics describe; its images are kept (synthetic pixels, never a
    real image) and replayed at every later task. Same number of images per class and step, a
    fraction of the synthesis time."""
    synthesis_batch: int = Field(default=128, ge=1)
    """Images inverted together."""
    real_classes: Literal["task", "seen"] = "task"
    """Cross-entropy of the task's real images over its own classes ("task": the "local" loss of
    data-free class-incremental learning, which leaves the old classes' scores to the replay and
    the distillation) or over every seen class ("seen"); synthetic images always use every seen
    class."""
    replay_classes: Literal["seen", "dataset"] = "seen"
    """Cross-entropy of a replayed (synthetic) image over every seen class, or over the seen
    classes of its own dataset (``dataset``: what it competes with where a protocol scores each
    dataset over its own classes, as MTIL does; on a single-dataset benchmark the two agree)."""
    replay_weight: float | None = Field(default=1.0, ge=0)
    """A number w: the real images' mean CE plus w × the replayed images' mean CE, so the new task
    keeps its full weight; None: one class-balanced mean CE over the real and replayed images of
    a batch, whose share for the new task shrinks as old classes accumulate (our first definition:
    1 measured higher Last on all ten world-cil seeds 0–9 and kept world-mtil from losing 5 points,
    docs/methods/pmi.md)."""
    balanced: bool = True
    """Weight the cross-entropy so that every seen class counts alike in a task (real new
    classes have many more images than synthetic old ones)."""
    distill_on: Literal["synthetic", "all"] = "all"
    """Distil the previous model's old-class logits on the synthetic images only (the strict
    definition) or on every training image, the task's real ones too (our default: LwF's term on
    real images, which the replay complements)."""
    distill_weight: float = Field(default=2.0, ge=0)
    """λ, weight of the distillation of the previous model."""
    temperature: float = Field(default=2.0, gt=0)
    """Distillation temperature."""

    @model_validator(mode="after")
    def _dataset_replay_without_smoothing(self) -> PMIConfig:
        if self.replay_classes == "dataset" and self.label_smoothing > 0:
            raise ValueError(
                "replay_classes=dataset scores replayed images over their own dataset's classes "
                "only (the others at -inf), which label smoothing cannot spread onto: set "
                "label_smoothing to 0 or replay_classes to seen"
            )
        return self


def _weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    # 0 for an empty selection (a batch drawn with no real or no replayed image)
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


class _Pixels(Dataset):
    """Synthetic (pixels, global label) pairs, shaped like the engine's image datasets."""

    def __init__(self, pixels: torch.Tensor, labels: torch.Tensor):
        self.pixels, self.labels = pixels, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.pixels[i], int(self.labels[i])


@register_method
class PMI(ImageFinetuning[PMIConfig]):
    """Fine-tuning of the last blocks on real new images and synthesized old-class images, with
    distillation of the previous model on the synthetic ones."""

    name = "pmi"
    Config = PMIConfig
    #: model inversion before every task costs minutes on a CPU (about 2 for world-cil with the
    #: tiny CLIP): a plain ``driftless run`` leaves PMI out so that the embedded demo stays within
    #: its 3 minutes (run it with ``--method pmi``)
    in_default_run: ClassVar[bool] = False

    def __init__(self, config: PMIConfig | None = None):
        super().__init__(config)
        self.class_stats_ = GaussianClassStats(per_class_scatter=True)
        self.token_stats_ = TokenStatistics()
        self.text_embeddings_: dict[int, torch.Tensor] = {}
        self.synthesis_log_: list[dict[str, Any]] = []
        # synthesis = "once": every old class's synthetic images, kept from task to task
        self.synthetic_pixels_: torch.Tensor | None = None
        self.synthetic_labels_: torch.Tensor | None = None
        # replay = "features": per-class Gaussians of the tokens entering the first trained block
        self.token_gaussians_ = ClassTokenGaussians()

    # -- learning ------------------------------------------------------------------------------
    def learn(self, data: TaskData, ctx: Context) -> None:
        """Synthesize old classes, train on real + synthetic images, then store the new classes'
        statistics."""
        assert data.images is not None
        config = self.config
        encoder = self.encoder(ctx)
        old = data.seen_label_space.subspace(
            {c for c in data.seen_label_space.class_ids if c in self.class_stats_}
            - set(data.task.class_ids),
        )
        dataset: Dataset = data.images
        previous = None
        labels = data.labels
        if len(old):
            previous = encoder.frozen_copy()
            if config.replay == "images":
                pixels, synthetic = self.replay_images(previous, old, data, ctx)
                dataset = ConcatDataset([data.images, _Pixels(pixels, synthetic)])
                labels = torch.cat([data.labels, synthetic])
        feature_replay = None
        if previous is not None and config.replay == "features":
            if ctx.fabric.world_size > 1:
                raise ConfigError(
                    "pmi.replay=features runs its extra forward pass outside the DDP wrapper: "
                    "run this control in one process"
                )
            feature_replay = encoder
            # the class balance counts each old class as the image replay would
            labels = torch.cat(
                [
                    data.labels,
                    torch.tensor(old.class_ids).repeat_interleave(config.synthetic_per_class),
                ]
            )
        loss = self.task_loss_with_replay(data, old, previous, ctx, labels, feature_replay)
        train_loop(encoder, dataset, loss, config, ctx, f"{self.name} {data.task.name}")
        self.update_statistics(encoder, data, ctx)

    def task_loss_with_replay(
        self,
        data: TaskData,
        old: LabelSpace,
        previous: ImageEncoder | None,
        ctx: Context,
        labels: torch.Tensor,
        feature_replay: ImageEncoder | None = None,
    ) -> LossFn:
        """CE over every seen class (class-balanced over ``labels``, the global labels of the
        training set, if ``balanced``), plus distillation of ``previous`` over the old classes on
        the batch's synthetic images (those labelled with an old class: real images are new).
        With ``feature_replay`` (the encoder being trained), each batch also gets token states
        drawn from the old classes' Gaussians, embedded by the encoder's trained blocks."""
        config = self.config
        classifier = ctx.text_embeddings(data.seen_label_space)
        targets = data.seen_label_space.position_table(ctx.device)
        class_weights = None
        if config.balanced:
            counts = torch.bincount(targets(labels.to(ctx.device)), minlength=len(classifier))
            present = counts > 0
            class_weights = torch.zeros(len(classifier), device=ctx.device)
            class_weights[present] = counts.sum() / (present.sum() * counts[present])
        scale = ctx.backbone.logit_scale
        if previous is None:
            old_classifier, is_old = None, None
        else:
            old_classifier = ctx.text_embeddings(old)
            old_table = torch.zeros(max(data.seen_label_space.class_ids) + 1, dtype=torch.bool)
            old_table[list(old.class_ids)] = True
            is_old = old_table.to(ctx.device)
        task_columns, task_lookup = None, None
        if is_old is not None and config.real_classes == "task":
            task_columns = targets(torch.tensor(data.label_space.class_ids, device=ctx.device))
            task_table = torch.full((len(old_table),), -1, dtype=torch.long)
            task_table[list(data.label_space.class_ids)] = torch.arange(len(data.label_space))
            task_lookup = task_table.to(ctx.device).__getitem__

        old_ids = [int(c) for c in old.class_ids]
        draws_per_step, first_block, moments = 0, 0, None
        if feature_replay is not None:
            replayed = config.synthetic_per_class * len(old)
            draws_per_step = max(1, round(config.batch_size * replayed / len(labels)))
            first_block = self.first_trained_block(feature_replay)
            moments = self.token_gaussians_.moments(old_ids)  # once per task, not per step
        column_dataset = None
        if config.replay_classes == "dataset":
            names = data.seen_label_space.datasets
            codes = {name: i for i, name in enumerate(dict.fromkeys(names))}
            column_dataset = torch.tensor([codes[name] for name in names], device=ctx.device)

        def loss(
            embeddings: torch.Tensor, pixels: torch.Tensor, labels: torch.Tensor
        ) -> torch.Tensor:
            tokens = None
            if feature_replay is not None and moments is not None:
                tokens, drawn = draw_tokens(*moments, old_ids, draws_per_step, ctx.generator)
                tokens = tokens.to(ctx.device)
                embeddings = torch.cat(
                    [embeddings, feature_replay.embed_from_block(tokens, first_block)]
                )
                labels = torch.cat([labels, drawn.to(ctx.device)])
            logits = cosine_logits(embeddings, classifier, scale)
            columns = targets(labels)
            weights = (
                torch.ones_like(logits[:, 0]) if class_weights is None else class_weights[columns]
            )
            smoothing = config.label_smoothing
            scored = logits
            if column_dataset is not None and is_old is not None:
                # replayed rows: only the columns of their own dataset
                other = column_dataset[None, :] != column_dataset[columns][:, None]
                scored = logits.masked_fill(other & is_old[labels][:, None], float("-inf"))
            per_sample = F.cross_entropy(
                scored, columns, reduction="none", label_smoothing=smoothing
            )
            if task_columns is not None:  # real images: over their task's classes only
                real = ~is_old[labels]  # type: ignore[index]
                assert task_lookup is not None
                local = F.cross_entropy(
                    logits[:, task_columns],
                    task_lookup(labels),  # -1 (ignored) for the synthetic images
                    ignore_index=-1,
                    reduction="none",
                    label_smoothing=smoothing,
                )
                per_sample = torch.where(real, local, per_sample)
            if config.replay_weight is None or is_old is None:
                total = (per_sample * weights).sum() / weights.sum()
            else:  # the task's own mean CE, plus the replay's mean CE at its own weight
                replayed = is_old[labels]
                total = _weighted_mean(per_sample[~replayed], weights[~replayed])
                if bool(replayed.any()):
                    mean = _weighted_mean(per_sample[replayed], weights[replayed])
                    total = total + config.replay_weight * mean
            if previous is None or old_classifier is None or is_old is None:
                return total
            distilled = is_old[labels]  # the synthetic images: real ones are of new classes
            if config.distill_on == "all":
                distilled = torch.ones_like(distilled)
            if not bool(distilled.any()):
                return total
            with torch.no_grad():
                taught = previous(pixels[distilled[: len(pixels)]])
                if tokens is not None:
                    taught = torch.cat([taught, previous.embed_from_block(tokens, first_block)])
                teacher = cosine_logits(taught, old_classifier, scale)
            student = cosine_logits(embeddings[distilled], old_classifier, scale)
            distillation = distillation_loss(student, teacher, config.temperature)
            return total + config.distill_weight * distillation * distilled.float().mean()

        return loss

    @torch.no_grad()
    def update_statistics(self, encoder: ImageEncoder, data: TaskData, ctx: Context) -> None:
        """Class statistics of the task's classes and token statistics, from its real images."""
        assert data.images is not None
        loader = torch.utils.data.DataLoader(data.images, batch_size=ctx.batch_size)
        encoder.eval()
        first_block = self.first_trained_block(encoder)
        for pixels, labels in loader:
            pixels = pixels.to(ctx.device)
            self.class_stats_.update(encoder(pixels), labels)
            states = hidden_states(encoder.vision, pixels)
            self.token_stats_.add(states)
            if self.config.replay == "features":
                self.token_gaussians_.update(states[first_block + 1], labels)
        texts = ctx.text_embeddings(data.label_space).detach().cpu()
        for i, c in enumerate(data.label_space.class_ids):
            self.text_embeddings_[int(c)] = texts[i].clone()

    def first_trained_block(self, encoder: ImageEncoder) -> int:
        """Index of the first block that ``train_last_blocks`` trains (0: the whole tower)."""
        blocks = len(encoder.blocks)
        return blocks - (self.config.train_last_blocks or blocks)

    # -- synthesis -----------------------------------------------------------------------------
    def replay_images(
        self, previous: ImageEncoder, old: LabelSpace, data: TaskData, ctx: Context
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The synthetic (pixels, global labels) of the old classes replayed in this task, on the
        CPU: all made now (``every-task``), or those kept plus the ones of classes not yet
        synthesized (``once``; a class learned again in this task is dropped from the memory and
        synthesized anew when it is next old)."""
        if self.config.synthesis == "every-task":
            pixels, labels = self.synthesize(previous, old, ctx, data.task.name)
            return pixels.cpu(), labels.cpu()
        kept_pixels, kept_labels = self.synthetic_pixels_, self.synthetic_labels_
        if kept_pixels is None or kept_labels is None:
            kept_pixels, kept_labels = torch.empty(0), torch.empty(0, dtype=torch.long)
        relearned = torch.isin(kept_labels, torch.tensor(data.task.class_ids, dtype=torch.long))
        kept_pixels, kept_labels = kept_pixels[~relearned], kept_labels[~relearned]
        missing = sorted(set(old.class_ids) - set(kept_labels.tolist()))
        if missing:
            pixels, labels = self.synthesize(previous, old.subspace(missing), ctx, data.task.name)
            pixels, labels = pixels.cpu(), labels.cpu()
            if len(kept_labels):
                pixels = torch.cat([kept_pixels, pixels])
                labels = torch.cat([kept_labels, labels])
            kept_pixels, kept_labels = pixels, labels
        self.synthetic_pixels_, self.synthetic_labels_ = kept_pixels, kept_labels
        replayed = torch.isin(kept_labels, torch.tensor(old.class_ids, dtype=torch.long))
        return kept_pixels[replayed], kept_labels[replayed]

    def semantic_anchors(self, class_ids: list[int]) -> torch.Tensor:
        """a_c = t_c P for ``class_ids``, P = (Σ n_c t_c t_cᵀ + ρ I)⁻¹ Σ t_c s_cᵀ over every class
        with statistics (s_c the sum of its embeddings): ridge least squares text → image."""
        config = self.config
        known = self.class_stats_.class_ids
        texts = torch.stack([self.text_embeddings_[c] for c in known]).double()
        counts = torch.tensor([self.class_stats_.counts[c] for c in known], dtype=torch.float64)
        sums = torch.stack([self.class_stats_.sums[c] for c in known])
        gram = texts.T @ (texts * counts[:, None])
        ridge = config.semantic_ridge * float(counts.sum()) / len(known)
        gram = gram + ridge * torch.eye(len(gram), dtype=torch.float64)
        mapping = torch.linalg.solve(gram, texts.T @ sums)
        queries = torch.stack([self.text_embeddings_[c] for c in class_ids]).double()
        return (queries @ mapping).float()

    def sample_targets(
        self, class_ids: list[int], per_class: int, generator: torch.Generator
    ) -> torch.Tensor:
        """(len(class_ids) · per_class, D) inversion targets, class by class (``targets``)."""
        config = self.config
        means = self.class_stats_.means(class_ids).float()
        anchors = self.semantic_anchors(class_ids) if config.targets != "gaussian" else means
        rows = []
        for i, c in enumerate(class_ids):
            covariance = self.class_stats_.class_covariance(c).float()
            if config.covariance == "diagonal":
                covariance = torch.diag(covariance.diagonal())
            jitter = config.covariance_shrinkage * covariance.diagonal().mean().clamp_min(1e-8)
            covariance = covariance + jitter * torch.eye(len(covariance))
            factor = torch.linalg.cholesky(covariance)
            noise = torch.randn(per_class, len(covariance), generator=generator) @ factor.T
            if config.targets == "gaussian":
                rows.append(means[i] + noise)
            elif config.targets == "semantic":
                rows.append(anchors[i] + noise)
            else:
                beta = config.semantic_weight
                rows.append((1 - beta) * (means[i] + noise) + beta * anchors[i])
        return torch.cat(rows)

    def synthesize(
        self, previous: ImageEncoder, old: LabelSpace, ctx: Context, description: str = ""
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``synthetic_per_class`` images of each class of ``old`` by the previous model, with
        their global labels; the cost is appended to ``synthesis_log_``."""
        config = self.config
        class_ids = [int(c) for c in old.class_ids]
        per_class = config.synthetic_per_class
        targets = self.sample_targets(class_ids, per_class, ctx.generator).to(ctx.device)
        positions = torch.arange(len(class_ids), device=ctx.device).repeat_interleave(per_class)
        classifier = ctx.text_embeddings(old)
        prototypes = self.class_stats_.means(class_ids).float().to(ctx.device)
        preprocess = ctx.backbone.preprocess  # type: ignore[attr-defined]
        bounds = pixel_bounds(preprocess.mean, preprocess.std, ctx.device)
        pixels, iterations, seconds, reached = [], [], 0.0, True
        for start in range(0, len(targets), config.synthesis_batch):
            chunk = slice(start, start + config.synthesis_batch)
            result = synthesize(
                previous,
                positions[chunk],
                targets[chunk],
                classifier,
                prototypes,
                ctx.backbone.logit_scale,
                self.token_stats_,
                config,
                bounds,
                ctx.generator,
            )
            pixels.append(result.pixels)
            iterations.append(result.iterations)
            seconds += result.init_seconds + result.full_seconds
            reached = reached and result.reached_target
        tick = time.perf_counter()
        synthetic = torch.cat(pixels)
        with torch.no_grad():
            predicted = cosine_logits(previous(synthetic), classifier, 1.0).argmax(1)
        accuracy = float((predicted == positions).float().mean())
        seconds += time.perf_counter() - tick
        self.synthesis_log_.append(
            {
                "task": description,
                "images": len(synthetic),
                "iterations": iterations,
                "seconds": seconds,
                "reached_target": reached,
                "accuracy_by_maker": accuracy,
            }
        )
        labels = torch.tensor(class_ids, device=ctx.device).repeat_interleave(per_class)
        return synthetic, labels

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Encoder weights, class and token statistics, class text embeddings, synthesis log."""
        ids = sorted(self.text_embeddings_)
        return {
            **super().state_dict(),
            "class_stats": self.class_stats_.state_dict(),
            "token_stats": self.token_stats_.state_dict(),
            "text_class_ids": torch.tensor(ids, dtype=torch.long),
            "text_embeddings": (
                torch.stack([self.text_embeddings_[c] for c in ids]) if ids else torch.empty(0)
            ),
            "synthesis_log": [dict(entry) for entry in self.synthesis_log_],
            "synthetic_pixels": self.synthetic_pixels_,
            "synthetic_labels": self.synthetic_labels_,
            "token_gaussians": self.token_gaussians_.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        super().load_state_dict(state)
        self.class_stats_ = GaussianClassStats(per_class_scatter=True)
        self.class_stats_.load_state_dict(state["class_stats"])
        self.token_stats_ = TokenStatistics()
        self.token_stats_.load_state_dict(state["token_stats"])
        ids = state["text_class_ids"].tolist()
        self.text_embeddings_ = {c: state["text_embeddings"][i].clone() for i, c in enumerate(ids)}
        self.synthesis_log_ = [dict(entry) for entry in state["synthesis_log"]]
        self.synthetic_pixels_ = state.get("synthetic_pixels")
        self.synthetic_labels_ = state.get("synthetic_labels")
        self.token_gaussians_ = ClassTokenGaussians()
        if "token_gaussians" in state:
            self.token_gaussians_.load_state_dict(state["token_gaussians"])
