"""CalFuse: dynamic feature calibration and QR-based parameter fusion on a frozen CLIP (Guo et al.,
"CalFuse: Multi-Modal Continual Learning via Feature Calibration and Parameter Fusion",
arXiv 2503.18672).

Only the paper's abstract is readable, so this is driftless's definition (docs/methods/calfuse.md),
built on its closest open relative RAPF (a linear adapter on CLIP's image embedding, Gaussian
feature replay, SVD fusion). Image and text encoders stay frozen; everything runs on cached
embeddings. Notation: f(x) the frozen image embedding, f̂ = f / ‖f‖, t_c the normalized,
template-averaged text embedding of class c, s the backbone's logit scale.

Algorithm.

1. Adapter: a D×D matrix W, the identity at first; g(x) = W f̂(x) (W f(x) up to a positive scale,
   which the normalization below removes).
2. Calibration: h(x) = normalize(λ(x) f̂(x) + (1 − λ(x)) ĝ(x)) with, per sample,
   λ(x) = σ(a · (m_orig(x) − m_adapt(x)) + b), m_· the largest softmax probability of
   s · cos(·, t_c) over the classes learned so far, for f̂ and for ĝ. The more confident the
   original feature is relative to the adapted one, the larger its share; (a, b) = (5, −3) keep it
   under 0.05 unless the original is the more confident. The share mixes the features after W is
   trained (W trains through ĝ alone) and (a, b) are not refitted: fitted on the training
   distribution they learn to shut the original out, losing it on images unlike the training
   ones, where it pays (the first definition, refitted (a, b) and W trained through the mix, is a
   config away).
3. Training on task t (W starts from the matrix kept after task t − 1, W_old): Adam minimizes
   CE(s · cos(ĝ(x), t_c) over every class seen so far) on the task's features + the same CE on
   features drawn from N(μ_c, Σ_c + εI) of each earlier class c (the class's ORIGINAL embeddings'
   mean and covariance, stored after its task; no features or images of earlier tasks are kept)
   + a distillation term KL(teacher ‖ student) at temperature T on those draws, the teacher being
   the previous adapter (W_old) over the earlier classes.
4. Fusion after task t, QR form (:func:`~driftless.methods.parts.fusion.qr_fuse`): W_old = Q R,
   P = Qᵀ W_new, D = |P − R|, M = min(1, D / max(D) + β), W = Q (P ⊙ M + R ⊙ (1 − M)), β = 0.6.
5. Predict: s · cos(h(x), t_c) for every class of the label space; classes never trained on use the
   same h with their text embeddings. Before the first task W = I and h = f̂: zero-shot CLIP.

Our choices where the paper is silent (each a config field below): the adapter acts on f̂ (same
direction as W f); λ is computed with the classes learned so far (not the label space being
scored, unless ``share_classes = scored``), so one image always gets the same h; with
``calibration_steps`` > 0 (a, b) are fitted by Adam after each task on a fixed set of replayed
features of all seen classes (``calibration_per_class`` per class), W fixed, from
(``calibration_slope``, ``calibration_bias``); with ``train_share = calibrated`` W trains through
h, λ taken without gradient with the current W; each class's own covariance (RAPF's choice) with
ε = ``replay_epsilon``; every training step draws fresh replay features, as many per earlier
class as the task has samples per class (balanced classes), and trains on the full batch; the
fusion also runs after the first task, with W_old = I (``fuse_first_task``); distillation only on
the replayed features, over the earlier classes.

Ablation switches: ``calibration`` dynamic | scalar-per-task (a = 0: one λ = σ(b) for every
sample) | off (λ = 0: h = ĝ, RAPF's feature); ``fusion`` qr | svd (RAPF) | none | average;
``replay`` gaussian | none; ``distillation`` on | off; ``calibration_data = holdout`` fits (a, b)
on real features of the task set aside from W's training. The measured effect of each, on
``world-cil`` and on ``world-cil-shift`` (test images from clean to as noisy as training) and
``world-fewshot``, where the calibration beats ``off`` over ten seeds: docs/methods/calfuse.md.
The fusion does not beat ``none`` on Last on any of them, nor on ``world-cil-long`` (32 tasks of
2): with the replay, the continual adapter already ends level with the same adapter trained on
every class at once (``benchmarks/calfuse_joint_bound.py``), leaving the fusion nothing to protect;
with a thin replay (``replay_per_class = 2``) the run falls below that and the fusion pays.

Defaults: the config class carries the definition (QR fusion, β = 0.6, dynamic calibration). On
the embedded benchmarks ``world-cil``, ``world-cil-shift``, ``world-mtil`` and ``world-fscil``
the benchmark turns fusion off (``fusion: none`` in their specs), and on ``world-mtil``,
``world-dil``, ``world-cil-long`` and ``world-fscil`` the calibration (``calibration: off``),
because there each measured below its control (Last; world-fscil: Avg) on every one of five
seeds or with a 95 % interval excluding zero over ten or more; ``calfuse[fusion=qr]`` and
``calfuse[calibration=dynamic]`` run them there (docs/methods/calfuse.md).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator

from driftless.methods.base import (
    Context,
    LabelSpace,
    MethodBase,
    MethodConfig,
    TaskData,
    class_columns,
)
from driftless.methods.parts.fusion import average_fuse, qr_fuse, svd_fuse
from driftless.methods.parts.gaussian_replay import (
    CovarianceKind,
    class_gaussians,
    sample_gaussians,
)
from driftless.methods.parts.gaussian_stats import GaussianClassStats
from driftless.methods.parts.losses import distillation_loss
from driftless.methods.parts.optimisation import gradient_step
from driftless.methods.parts.runtime import cpu_threads
from driftless.methods.registry import register_method

Calibration = Literal["dynamic", "scalar-per-task", "off"]
CalibrationData = Literal["replay", "holdout"]
TrainShare = Literal["calibrated", "adapted"]
ShareClasses = Literal["learned", "scored"]
Fusion = Literal["qr", "svd", "none", "average"]
Replay = Literal["gaussian", "none"]


class CalFuseConfig(MethodConfig):
    """Hyper-parameters of :class:`CalFuse` (the paper publishes none: these are driftless's)."""

    steps: int = Field(default=100, gt=0)
    """Adam steps on W per task."""

    lr: float = Field(default=1e-3, gt=0.0)
    """Adam learning rate for W."""

    batch_size: int | None = Field(default=None, gt=0)
    """Task samples per step; None: the whole task (full batch). Replay draws scale with it."""

    calibration: Calibration = "dynamic"
    """λ(x) per sample from the two confidences (dynamic), one refined scalar per task (a = 0), or
    no original share (off: λ = 0, h = ĝ)."""

    calibration_slope: float = 5.0
    """a before the first refinement."""

    calibration_bias: float = -3.0
    """b before the first refinement. With a = 5 and b = −3, λ = σ(5 · gap − 3): under 0.05 where
    the adapted feature is at least as confident as the original, 0.5 at a gap of 0.6, 0.88 at 1."""

    share_classes: ShareClasses = "learned"
    """The classes the confidences m_orig and m_adapt are taken over when scoring: every class
    learned so far (one image always gets the same h), or ``scored``: the label space being scored
    (on multi-domain benchmarks, the dataset's own classes). Training and refitting always use the
    learned classes."""

    calibration_steps: int = Field(default=0, ge=0)
    """Adam steps refining (a, b) after each task (0: keep the initial values). Off by default:
    fitted on features of the training distribution, the share learns that the adapted feature is
    the better one there and shuts the original out (λ → 0, the ``off`` run), losing it exactly
    where it is the better one: on images unlike the training ones (docs/methods/calfuse.md)."""

    calibration_lr: float = Field(default=0.05, gt=0.0)
    """Adam learning rate for (a, b)."""

    calibration_per_class: int = Field(default=32, gt=0)
    """Replayed features per seen class used to refine (a, b)."""

    calibration_data: CalibrationData = "replay"
    """What (a, b) are fitted on: replayed features of every seen class (the Gaussians W was
    trained on), or ``holdout``: real features of the task's classes that W did not train on (the
    share ``calibration_holdout`` of each class, set aside before training) with replayed features
    of the earlier classes, each class weighted equally."""

    calibration_holdout: float = Field(default=0.2, gt=0.0, lt=1.0)
    """Share of each task class's samples set aside for ``calibration_data = holdout``."""

    calibration_refit: bool = False
    """With ``calibration_data = holdout``: after the share is fitted, train W again from W_old on
    every sample of the task, held-out ones included (cross-fitting; twice the training time)."""

    train_share: TrainShare = "adapted"
    """The feature W trains through: the adapted feature ĝ alone (λ = 0 while training: W is
    exactly the ``calibration = off`` adapter), so that the calibration mixes two distinct features
    after the fact; or ``calibrated``: the mix h with the previous (a, b), where W co-adapts to the
    mix and λ I + (1 − λ) W becomes one more linear adapter (the first definition)."""

    fusion: Fusion = "qr"
    """How W_new merges into W_old after each task: QR (CalFuse), SVD (RAPF), none (keep W_new),
    average ((1 − α) W_old + α W_new)."""

    fusion_bias: float = Field(default=0.6, ge=0.0)
    """β of the QR and SVD masks, M = min(1, D / max(D) + β); β ≥ 1 keeps W_new."""

    average_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    """α of ``fusion = average``."""

    fuse_first_task: bool = True
    """Fuse after the first task too, with W_old = I (RAPF has no old adapter there and skips)."""

    replay: Replay = "gaussian"
    """Old classes in training: features drawn from their stored Gaussians, or none."""

    replay_per_class: int | None = Field(default=None, gt=0)
    """Draws per old class per step; None: the task's mean number of samples per class."""

    replay_covariance: CovarianceKind = "class"
    """Σ_c per class (RAPF), or the pooled within-class covariance shared by all classes."""

    replay_epsilon: float = Field(default=1e-2, gt=0.0)
    """ε of Σ_c + εI (absolute, in squared embedding units)."""

    distillation: bool = True
    """Distil the previous adapter's logits over old classes on the replayed features."""

    distillation_weight: float = Field(default=1.0, ge=0.0)
    """Weight of the distillation term."""

    distillation_temperature: float = Field(default=2.0, gt=0.0)
    """Temperature T of the distillation (the loss is scaled by T²)."""

    cpu_threads: int | None = Field(default=1, ge=1)
    """Intra-op threads while training on a CPU (None: torch's setting). The steps are many small
    operations, whose thread synchronization costs more than it saves: on 2 shared cores a
    world-cil run trained in about 10 s with 1 thread and 34 s with 2. No effect on the results."""

    @field_validator("calibration", mode="before")
    @classmethod
    def _calibration_off(cls, value: object) -> object:
        # YAML reads a bare `off` (``--set calfuse.calibration=off``) as False
        return "off" if value is False else value


@register_method
class CalFuse(MethodBase[CalFuseConfig]):
    """Linear adapter on the frozen image embedding, calibrated against the original feature per
    sample, trained with Gaussian replay and distillation, QR-fused into the previous adapter."""

    name = "calfuse"
    inputs = "features"
    Config = CalFuseConfig

    def __init__(self, config: CalFuseConfig | None = None):
        super().__init__(config)
        self.adapter_: torch.Tensor | None = None  # W (D, D)
        self.slope_ = self.config.calibration_slope if self.config.calibration == "dynamic" else 0.0
        self.bias_ = self.config.calibration_bias
        self.stats_ = GaussianClassStats(per_class_scatter=self.config.replay_covariance == "class")
        self.seen_class_ids_: list[int] = []
        self.seen_texts_: torch.Tensor | None = None  # (C, D) text embeddings of learned classes

    # --- the feature h(x) -----------------------------------------------------------------------

    def original_share(
        self,
        original: torch.Tensor,
        adapted: torch.Tensor,
        texts: torch.Tensor,
        scale: float,
        slope: float | torch.Tensor,
        bias: float | torch.Tensor,
    ) -> torch.Tensor:
        """λ (B, 1) from normalized original and adapted features, the learned classes' text
        embeddings and (a, b); constant σ(b) for ``scalar-per-task``, 0 for ``off``."""
        if self.config.calibration == "off":
            return torch.zeros(len(original), 1, device=original.device)
        bias_t = torch.as_tensor(bias, dtype=original.dtype, device=original.device)
        if self.config.calibration == "scalar-per-task":
            return torch.sigmoid(bias_t).expand(len(original), 1)
        confident_original = torch.softmax(scale * original @ texts.T, dim=1).amax(dim=1)
        confident_adapted = torch.softmax(scale * adapted @ texts.T, dim=1).amax(dim=1)
        slope_t = torch.as_tensor(slope, dtype=original.dtype, device=original.device)
        return torch.sigmoid(slope_t * (confident_original - confident_adapted) + bias_t)[:, None]

    def embed(
        self,
        features: torch.Tensor,
        adapter: torch.Tensor,
        texts: torch.Tensor,
        scale: float,
        slope: float | torch.Tensor,
        bias: float | torch.Tensor,
        share_grad: bool = False,
    ) -> torch.Tensor:
        """h(x) = normalize(λ f̂ + (1 − λ) ĝ), ĝ = normalize(W f̂), for (B, D) raw features.
        λ is computed without gradient unless ``share_grad``."""
        original = F.normalize(features.float(), dim=-1)
        adapted = F.normalize(original @ adapter.T, dim=-1)
        if share_grad:
            share = self.original_share(original, adapted, texts, scale, slope, bias)
        else:
            with torch.no_grad():
                share = self.original_share(original, adapted.detach(), texts, scale, slope, bias)
        return F.normalize(share * original + (1.0 - share) * adapted, dim=-1)

    def features(
        self, batch: torch.Tensor, scale: float, share_texts: torch.Tensor | None = None
    ) -> torch.Tensor:
        """h(x) (B, D) with the current adapter and calibration (f̂ before any task); ``scale``
        is the logit scale of the confidences m, taken over ``share_texts`` (default: the learned
        classes' text embeddings)."""
        if self.adapter_ is None or self.seen_texts_ is None:
            return F.normalize(batch.float(), dim=-1)
        texts = (self.seen_texts_ if share_texts is None else share_texts).to(batch.device)
        adapter = self.adapter_.to(batch.device)
        return self.embed(batch, adapter, texts, scale, self.slope_, self.bias_)

    # --- learning -------------------------------------------------------------------------------

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Train W on the task (+ replay, distillation), fuse it, store the task's Gaussians,
        refine the calibration."""
        assert data.features is not None
        device = ctx.device
        features = data.features.float().to(device)
        dim = features.shape[1]
        old_ids = list(self.seen_class_ids_)
        old_texts = None if self.seen_texts_ is None else self.seen_texts_.to(device)
        seen = data.seen_label_space
        seen_texts = ctx.text_embeddings(seen).detach().float().to(device)
        targets = torch.tensor(seen.columns(data.labels.tolist()), device=device)
        previous = self.adapter_ if self.adapter_ is not None else torch.eye(dim)
        previous = previous.float().to(device)

        holdout = None
        all_features, all_targets = features, targets
        if self._calibrating() and self.config.calibration_data == "holdout":
            kept, held = self._holdout_split(targets, ctx.generator)
            holdout = (features[held], targets[held])
            features, targets = features[kept], targets[kept]

        with cpu_threads(device, self.config.cpu_threads):
            trained = self._train_adapter(
                features, targets, seen.class_ids, seen_texts, old_ids, old_texts, previous, ctx
            )
            self.adapter_ = self._fuse(previous, trained, first=not old_ids).cpu()
            self.stats_.update(data.features, data.labels)
            self.seen_class_ids_ = list(seen.class_ids)
            self.seen_texts_ = seen_texts.cpu()
            self._refine_calibration(ctx, holdout, old_ids)
            if holdout is not None and self.config.calibration_refit:
                # cross-fitting: the share was fitted on samples this W never saw; W is then
                # trained again, from W_old, on every sample of the task, and keeps that share
                trained = self._train_adapter(
                    all_features, all_targets, seen.class_ids, seen_texts, old_ids, old_texts,
                    previous, ctx,
                )  # fmt: skip
                self.adapter_ = self._fuse(previous, trained, first=not old_ids).cpu()

    def _calibrating(self) -> bool:
        # whether (a, b) are refined after each task
        return self.config.calibration != "off" and self.config.calibration_steps > 0

    def _holdout_split(
        self, targets: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # per class, a random share calibration_holdout of its samples (at least one, and at
        # least one left to train on when the class has two or more) is set aside
        kept, held = [], []
        for column in torch.unique(targets).tolist():
            rows = torch.nonzero(targets.cpu() == column).flatten()
            rows = rows[torch.randperm(len(rows), generator=generator)]
            count = min(len(rows) - 1, max(1, round(self.config.calibration_holdout * len(rows))))
            held.append(rows[:count])
            kept.append(rows[count:])
        device = targets.device
        return torch.cat(kept).sort().values.to(device), torch.cat(held).sort().values.to(device)

    def _gaussians(self, class_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        # float32 means and Cholesky factors of the stored Gaussians of class_ids
        means, factors = class_gaussians(
            self.stats_, class_ids, self.config.replay_epsilon, self.config.replay_covariance
        )
        return means.float(), factors.float()

    def _replay_per_class(self, task_samples: int, task_classes: int) -> int:
        # draws per old class and step: as many as the task's classes have on average, in the
        # share of the task that one step sees
        config = self.config
        if config.replay_per_class is not None:
            return config.replay_per_class
        per_class = task_samples / task_classes
        if config.batch_size is not None:
            per_class *= min(1.0, config.batch_size / task_samples)
        return max(1, round(per_class))

    def _train_adapter(
        self,
        features: torch.Tensor,
        targets: torch.Tensor,
        seen_ids: tuple[int, ...],
        seen_texts: torch.Tensor,
        old_ids: list[int],
        old_texts: torch.Tensor | None,
        previous: torch.Tensor,
        ctx: Context,
    ) -> torch.Tensor:
        # Adam on W from W_old: CE of s·cos(h, t_c) over the seen classes on the task's features
        # and on fresh draws of the old classes' Gaussians, + distillation of the previous h there
        config = self.config
        device, generator = ctx.device, ctx.generator
        scale = float(ctx.backbone.logit_scale)
        slope, bias = self.slope_, self.bias_  # the previous calibration, fixed while W trains
        replaying = config.replay == "gaussian" and bool(old_ids)
        distilling = replaying and config.distillation and config.distillation_weight > 0
        if replaying:
            means, factors = self._gaussians(old_ids)
            per_class = self._replay_per_class(len(features), len(set(targets.tolist())))
            old_columns = torch.tensor(class_columns(seen_ids, old_ids), device=device)
        batch_size = min(config.batch_size or len(features), len(features))
        adapter = torch.nn.Parameter(previous.clone())
        optimizer = torch.optim.Adam([adapter], lr=config.lr)
        with torch.enable_grad():
            for _ in range(config.steps):
                inputs, labels = features, targets
                if batch_size < len(features):
                    rows = torch.randperm(len(features), generator=generator)[:batch_size]
                    inputs, labels = features[rows.to(device)], targets[rows.to(device)]
                if replaying:
                    draws, owners = sample_gaussians(means, factors, per_class, generator)
                    draws, owners = draws.to(device), owners.to(device)
                    inputs = torch.cat([inputs, draws])
                    labels = torch.cat([labels, old_columns[owners]])
                h = self._training_feature(inputs, adapter, seen_texts, scale, slope, bias)
                logits = scale * h @ seen_texts.T
                loss = F.cross_entropy(logits, labels)
                if distilling:
                    assert old_texts is not None
                    with torch.no_grad():
                        teacher_h = self._training_feature(
                            draws, previous, old_texts, scale, slope, bias
                        )
                    student = logits[-len(draws) :, old_columns]
                    loss = loss + config.distillation_weight * distillation_loss(
                        student, scale * teacher_h @ old_texts.T, config.distillation_temperature
                    )
                gradient_step(optimizer, loss, ctx.log_metrics)
        return adapter.detach()

    def _training_feature(
        self,
        features: torch.Tensor,
        adapter: torch.Tensor,
        texts: torch.Tensor,
        scale: float,
        slope: float,
        bias: float,
    ) -> torch.Tensor:
        # the feature W trains through: h with the previous calibration, or ĝ alone
        if self.config.train_share == "adapted":
            return F.normalize(F.normalize(features.float(), dim=-1) @ adapter.T, dim=-1)
        return self.embed(features, adapter, texts, scale, slope, bias)

    def _fuse(self, previous: torch.Tensor, trained: torch.Tensor, first: bool) -> torch.Tensor:
        config = self.config
        if config.fusion == "none" or (first and not config.fuse_first_task):
            return trained
        if config.fusion == "qr":
            return qr_fuse(previous, trained, config.fusion_bias)
        if config.fusion == "svd":
            return svd_fuse(previous, trained, config.fusion_bias)
        return average_fuse(previous, trained, config.average_weight)

    def _refine_calibration(
        self,
        ctx: Context,
        holdout: tuple[torch.Tensor, torch.Tensor] | None = None,
        old_ids: list[int] | None = None,
    ) -> None:
        # fit (a, b) by Adam, W fixed, on replayed features of every seen class, or on the
        # held-out real features of the task's classes and replayed features of the earlier ones
        config = self.config
        if not self._calibrating():
            return
        assert self.adapter_ is not None and self.seen_texts_ is not None
        device = ctx.device
        scale = float(ctx.backbone.logit_scale)
        weights = None
        if holdout is None:
            means, factors = self._gaussians(self.seen_class_ids_)
            draws, owners = sample_gaussians(
                means, factors, config.calibration_per_class, ctx.generator
            )
            draws, owners = draws.to(device), owners.to(device)
        else:
            draws, owners = holdout
            if old_ids:
                means, factors = self._gaussians(old_ids)
                replayed, which = sample_gaussians(
                    means, factors, config.calibration_per_class, ctx.generator
                )
                old_columns = torch.tensor(class_columns(self.seen_class_ids_, old_ids))
                draws = torch.cat([draws, replayed.to(device)])
                owners = torch.cat([owners, old_columns[which].to(device)])
            # every class counts equally, however many samples it has here
            counts = torch.bincount(owners, minlength=len(self.seen_class_ids_)).float()
            weights = (1.0 / counts.clamp(min=1.0))[owners]
            weights = weights / weights.sum()
        texts = self.seen_texts_.to(device)
        adapter = self.adapter_.to(device)
        slope = torch.nn.Parameter(torch.tensor(float(self.slope_), device=device))
        bias = torch.nn.Parameter(torch.tensor(float(self.bias_), device=device))
        parameters = [bias] if config.calibration == "scalar-per-task" else [slope, bias]
        optimizer = torch.optim.Adam(parameters, lr=config.calibration_lr)
        with torch.enable_grad():
            for _ in range(config.calibration_steps):
                h = self.embed(draws, adapter, texts, scale, slope, bias, share_grad=True)
                losses = F.cross_entropy(scale * h @ texts.T, owners, reduction="none")
                loss = losses.mean() if weights is None else (losses * weights).sum()
                gradient_step(optimizer, loss)
                ctx.log_metrics({"calibration_loss": loss.detach()})
        self.slope_ = float(slope.detach()) if config.calibration == "dynamic" else 0.0
        self.bias_ = float(bias.detach())

    # --- scoring and state ----------------------------------------------------------------------

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """s · cos(h(x), t_c) for every class of the label space, trained on or not."""
        scale = float(ctx.backbone.logit_scale)
        texts = ctx.text_embeddings(label_space).float().to(batch.device)
        share_texts = texts if self.config.share_classes == "scored" else None
        return scale * self.features(batch, scale, share_texts) @ texts.T

    def state_dict(self) -> dict[str, Any]:
        """W, (a, b), the class Gaussians' sums and the learned classes' text embeddings."""
        return {
            "adapter": self.adapter_,
            "slope": self.slope_,
            "bias": self.bias_,
            "stats": self.stats_.state_dict(),
            "seen_class_ids": torch.tensor(self.seen_class_ids_, dtype=torch.long),
            "seen_texts": self.seen_texts_,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.adapter_ = None if state["adapter"] is None else state["adapter"].clone()
        self.slope_ = float(state["slope"])
        self.bias_ = float(state["bias"])
        self.stats_.load_state_dict(state["stats"])
        self.seen_class_ids_ = state["seen_class_ids"].tolist()
        self.seen_texts_ = None if state["seen_texts"] is None else state["seen_texts"].clone()
