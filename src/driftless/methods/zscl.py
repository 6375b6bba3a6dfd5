"""ZSCL (Zheng, Ma, Wang, Qin, Yue, Yang, "Preventing zero-shot transfer degradation in continual
learning of vision-language models", ICCV 2023).

Algorithm, on each task: fine-tune CLIP (image tower, and the text tower with ``train_text``) with

    loss = CE_ls(s·cos(f_θ(x), g_θ(class prompts)))                     label smoothing 0.2
         + λ_KD · T²·KL(p_0(r, ·) ‖ p_θ(r, ·))     image→text, over reference captions
         + λ_KD · T²·KL(p_0(·, c) ‖ p_θ(·, c))     text→image, over reference images
         + λ_L2 · Σ ‖θ − θ_start‖²                  weight-space term toward the task's start

where r is a batch of reference images, c the reference captions, p_0 the softmax (temperature T
= 2) of the original CLIP's logits s·cos(f_0(r), g_0(c)) and p_θ those of the model being trained
against the same frozen caption embeddings g_0(c). Every ``ensemble_every`` steps the weights are
folded into a running average (with the task's start weights, and those after the first and the
last step); the average is the model at the end of the task and where the next task starts.

Paper settings (ViT-B/16, MTIL; ZSCL's mtil/scripts/ZSCL.sh): both towers train, AdamW, batch 64,
1000 iterations per task with 100 warm-up, lr 1e-5 (5e-5 for Aircraft and MNIST:
``lr_per_dataset``), label smoothing 0.2, T = 2, L2 weight 1, weight ensemble every 100
iterations; reference images from ImageNet, reference captions from Conceptual Captions.

Our choices: the component switches (``distill_images``, ``distill_texts``, ``l2_weight = 0``,
``weight_ensemble``, ``train_text``, ``label_smoothing = 0``) turn each part off for ablations;
the training fields (lr, iterations, batch size) default to the tiny models' values as for
:mod:`finetune` — the paper's are set by configs/reproduce/zscl-mtil-order*.yaml; the world
benchmarks use the embedded world's pretraining corpus as the reference set.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch.utils.data import DataLoader, RandomSampler

from driftless.methods.base import Context, LabelSpace, TaskData
from driftless.methods.finetune import Finetune, FinetuneConfig
from driftless.methods.parts.dataset_lr import config_for_task
from driftless.methods.parts.image_training import LossFn, train_loop
from driftless.methods.parts.losses import distillation_loss
from driftless.methods.parts.reference_set import ReferenceSet, load_reference_set
from driftless.methods.parts.text_classifier import TextEmbeddingCache, cosine_logits
from driftless.methods.parts.text_tower import ImageTextEncoder, OwnTextTower
from driftless.methods.parts.weight_ensemble import WeightAverage
from driftless.methods.registry import register_method


class ZSCLConfig(FinetuneConfig):
    """Hyper-parameters of :class:`ZSCL` (training fields: :class:`ImageTrainingConfig`)."""

    loss_classes: Literal["seen", "task"] = "task"
    """Cross-entropy over the current task's classes (ZSCL: the current dataset's) or all seen."""
    label_smoothing: float = Field(default=0.2, ge=0, lt=1)
    """Label smoothing of the cross-entropy (ZSCL: 0.2)."""
    train_text: bool = True
    """Fine-tune the text tower too (ZSCL's MTIL runs: both towers); False keeps it frozen."""
    distill_images: bool = True
    """Image→text distillation on reference images over reference captions (ZSCL: on)."""
    distill_texts: bool = True
    """Text→image distillation: the same logits, transposed (ZSCL: on)."""
    distill_weight: float = Field(default=1.0, ge=0)
    """λ_KD, the weight of each distillation term (ZSCL: 1)."""
    temperature: float = Field(default=2.0, gt=0)
    """T, the distillation temperature (ZSCL: 2)."""
    l2_weight: float = Field(default=1.0, ge=0)
    """λ_L2 of Σ‖θ − θ_start‖² over the trained weights, θ_start the task's start (ZSCL: 1; 0 off)."""
    weight_ensemble: bool = True
    """Average the weights during each task and keep the average (ZSCL: on)."""
    ensemble_every: int = Field(default=100, ge=1)
    """Steps between weight-ensemble snapshots (ZSCL: 100 of 1000)."""
    lr_per_dataset: dict[str, float] = Field(default_factory=dict)
    """Learning rate of the tasks of the named datasets, overriding ``lr`` (ZSCL on MTIL:
    {fgvc-aircraft: 5e-5, mnist: 5e-5}, set by the reproduce configs)."""
    reference_images: str | None = None
    """Folder of reference images, or "world-corpus" (ZSCL: ImageNet's training images)."""
    reference_captions: str | None = None
    """Captions file, or "world-corpus" (ZSCL: Conceptual Captions' validation captions)."""
    reference_size: int | None = Field(default=2000, ge=1)
    """How many captions (and world-corpus pairs) to use; None = every caption of the file."""
    reference_batch_size: int | None = Field(default=None, ge=1)
    """Reference images per step (None = ``batch_size``, as in ZSCL)."""


@register_method
class ZSCL(Finetune[ZSCLConfig]):
    """Fine-tuning with distillation toward the original CLIP on reference data, an L2 pull to the
    task's start and a weight ensemble."""

    name = "zscl"
    # trains the image tower for minutes per run on a CPU: run it with --method
    in_default_run = False
    Config = ZSCLConfig

    def __init__(self, config: ZSCLConfig | None = None):
        super().__init__(config)
        self._reference: tuple[ReferenceSet, torch.Tensor] | None = None
        self._own_texts: TextEmbeddingCache | None = None

    def encoder(self, ctx: Context) -> ImageTextEncoder:  # type: ignore[override]
        """Copies of both towers, made on first use (with a loaded state's weights, if any)."""
        if self.encoder_ is None:
            self.encoder_ = ImageTextEncoder.from_backbone_towers(
                ctx.backbone, self.config.train_text
            )
        return super().encoder(ctx)  # type: ignore[return-value]

    def learn(self, data: TaskData, ctx: Context) -> None:
        """Train on the task (per-dataset lr), averaging weights along the way if asked."""
        assert data.images is not None
        config = config_for_task(self.config, self.config.lr_per_dataset, data.label_space)
        encoder = self.encoder(ctx)
        loss = self.task_loss(data, ctx)
        ensemble = WeightAverage(encoder) if config.weight_ensemble else None

        def snapshot(step: int, total: int) -> None:
            due = step == 0 or (step + 1) % config.ensemble_every == 0 or step == total - 1
            if ensemble is not None and due:
                ensemble.add(encoder)

        train_loop(encoder, data.images, loss, config, ctx, f"zscl {data.task.name}", snapshot)
        if ensemble is not None:
            ensemble.load_into(encoder)
        self._own_texts = None  # the text tower changed

    def task_loss(self, data: TaskData, ctx: Context) -> LossFn:
        """Cross-entropy, the two distillation terms and the L2 term, as switched on."""
        config = self.config
        encoder = self.encoder(ctx)
        classes = data.seen_label_space if config.loss_classes == "seen" else data.label_space
        targets = classes.position_table(ctx.device)
        scale = ctx.backbone.logit_scale
        if config.train_text:  # ZSCL: each class's first template, through the trained tower
            prompts = [
                t[0].format(n) for t, n in zip(classes.templates, classes.names, strict=True)
            ]
            tokens = ctx.backbone.tokenize(prompts)
        else:
            frozen_classifier = ctx.text_embeddings(classes)
        distill = config.distill_weight > 0 and (config.distill_images or config.distill_texts)
        if distill:
            references, reference_texts = self._reference_set(ctx)
            reference_batches = self._reference_batches(references.images, ctx)
        start = encoder.frozen_copy() if config.l2_weight > 0 else None

        def loss(embeddings: torch.Tensor, pixels: torch.Tensor, labels: torch.Tensor):
            classifier = encoder.encode_tokens(tokens) if config.train_text else frozen_classifier
            logits = cosine_logits(embeddings, classifier, scale)
            total = F.cross_entropy(logits, targets(labels), label_smoothing=config.label_smoothing)
            if distill:
                total = total + self._distillation(
                    encoder, next(reference_batches), reference_texts, ctx
                )
            if start is not None:
                total = total + config.l2_weight * _l2_to(encoder, start)
            return total

        return loss

    def _distillation(
        self, encoder: ImageTextEncoder, pixels: torch.Tensor, texts: torch.Tensor, ctx: Context
    ) -> torch.Tensor:
        config, scale = self.config, ctx.backbone.logit_scale
        pixels = pixels.to(ctx.device)
        with torch.no_grad():
            teacher = cosine_logits(ctx.backbone.encode_images(pixels), texts, scale)
        student = cosine_logits(encoder(pixels), texts, scale)
        loss = torch.zeros((), device=ctx.device)
        if config.distill_images:  # each reference image: a distribution over the captions
            loss = loss + distillation_loss(student, teacher, config.temperature)
        if config.distill_texts:  # each caption: a distribution over the batch's images
            loss = loss + distillation_loss(student.T, teacher.T, config.temperature)
        return config.distill_weight * loss

    def _reference_set(self, ctx: Context) -> tuple[ReferenceSet, torch.Tensor]:
        # loaded once per method object; the captions' embeddings are the original CLIP's
        if self._reference is None:
            config = self.config
            references = load_reference_set(
                self.name,
                config.reference_images,
                config.reference_captions,
                config.reference_size,
                ctx.backbone.preprocess,
            )
            with torch.inference_mode():
                texts = ctx.backbone.encode_texts(references.captions, ctx.batch_size)
            self._reference = references, F.normalize(texts.float(), dim=-1).clone()
        return self._reference

    def _reference_batches(self, images, ctx: Context) -> Iterator[torch.Tensor]:
        seed = int(torch.randint(0, 2**62, (1,), generator=ctx.generator))
        sampler = RandomSampler(images, generator=torch.Generator().manual_seed(seed))
        size = self.config.reference_batch_size or self.config.batch_size
        loader = DataLoader(images, batch_size=size, sampler=sampler, drop_last=len(images) > size)
        while True:
            yield from loader

    def logits(self, batch: torch.Tensor, label_space: LabelSpace, ctx: Context) -> torch.Tensor:
        """``logit_scale · cos`` of the current image embeddings and the class texts (encoded by
        the method's own text tower when it trains)."""
        encoder = self.encoder(ctx)
        embeddings = encoder.encode(batch.to(ctx.device))
        if not self.config.train_text:
            classifier = ctx.text_embeddings(label_space)
        else:
            if self._own_texts is None:
                self._own_texts = TextEmbeddingCache(
                    OwnTextTower(encoder, ctx.backbone), ctx.batch_size
                )  # type: ignore[arg-type]
            classifier = self._own_texts(label_space)
        return cosine_logits(embeddings, classifier, ctx.backbone.logit_scale)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore both towers' weights."""
        super().load_state_dict(state)
        self._own_texts = None


def _l2_to(encoder: ImageTextEncoder, start: ImageTextEncoder) -> torch.Tensor:
    """Σ ‖θ − θ_start‖² over the parameters being trained (ZSCL's ``l2_loss``)."""
    terms = [
        (p - q).pow(2).sum()
        for p, q in zip(encoder.parameters(), start.parameters(), strict=True)
        if p.requires_grad
    ]
    return torch.stack(terms).sum()
