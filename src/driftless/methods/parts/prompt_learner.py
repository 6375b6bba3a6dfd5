"""Learnable prompt contexts for a CLIP text tower (CoOp: Zhou et al., "Learning to Prompt for
Vision-Language Models", IJCV 2022).

A prompt is ``template.format(<context> + name)``: the template's words before ``{}``, then ``n_ctx``
context vectors that live in the token-embedding space (learned, not tokens), then the class name
and the template's words after ``{}``. The text tower sees

    [SOS] prefix-tokens  ctx_1 … ctx_n  name-and-suffix-tokens  [EOS] [pad …]

as its token embeddings, plus its position embeddings; the causal + padding masks, the final layer
norm, pooling at the [EOS] position and ``text_projection`` are those of ``transformers.CLIPModel``.
``transformers`` v5's ``CLIPTextModel.forward`` only takes ``input_ids``, so :class:`PromptEncoder`
drives its parts (``embeddings`` with ``inputs_embeds``, ``encoder``, ``final_layer_norm``) in the
order that ``forward`` does, with a causal + padding mask it builds itself
(:func:`causal_padding_mask`) rather than through transformers' internal mask helpers, whose
signature changes between releases. With no context the result equals
``backbone.encode_texts`` of the plain prompt; with a context initialised from the embeddings of
"a photo of a" it equals the plain "a photo of a {name}" (both tested).

Contexts are plain tensors ``(P, n_ctx, width)``, one per prompt: a shared context (CoOp) is one
tensor expanded over the prompts, per-class contexts (MoDER's experts) are indexed per prompt, and
gradients reach them through :meth:`PromptEncoder.encode`; the fixed tokens' embeddings are looked
up without grad. Prompts are tokenized once per :class:`PromptLayout` (per task, per label space).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from driftless.backbones.base import Backbone
from driftless.methods.base import Context, LabelSpace, MethodConfig, TaskData
from driftless.methods.parts.optimisation import train_on_minibatches

#: the placeholder every template must hold exactly once: where context + class name go
SLOT = "{}"


class PromptTrainingConfig(MethodConfig):
    """Config fields of every method that trains prompt contexts with :func:`fit_task_contexts`."""

    n_ctx: int = Field(default=4, ge=1)
    """Context vectors per learned context."""

    init: str | None = "a photo of a"
    """Text whose token embeddings initialise each context (None: N(0, 0.02²))."""

    epochs: int = Field(default=10, gt=0)
    """Passes over each task's features."""

    batch_size: int = Field(default=32, gt=0)
    """Features per optimizer step."""

    lr: float = Field(default=2e-3, gt=0.0)
    """Adam learning rate of the context vectors."""

    weight_decay: float = Field(default=0.0, ge=0.0)
    """Adam's L2 penalty on the context vectors."""

    cpu_threads: int | None = Field(default=1, ge=1)
    """Intra-op threads while the text tower trains or encodes prompts on a CPU (its operations
    are too small to gain from more); None keeps torch's setting."""


@dataclass(frozen=True)
class PromptLayout:
    """Token layout of P prompts with ``n_ctx`` context slots each.

    ``input_ids`` (P, L) hold the prompts' tokens with a placeholder id in every context slot,
    ``attention_mask`` (P, L) is 1 on real positions, ``context_start`` (P,) the first slot's
    position, ``eos_position`` (P,) where the tower is pooled.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    context_start: torch.Tensor
    eos_position: torch.Tensor
    n_ctx: int

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def select(self, rows: torch.Tensor | Sequence[int]) -> PromptLayout:
        """The layout of a subset of the prompts (same padding length)."""
        rows = torch.as_tensor(rows, dtype=torch.long, device=self.input_ids.device)
        return PromptLayout(
            self.input_ids[rows],
            self.attention_mask[rows],
            self.context_start[rows],
            self.eos_position[rows],
            self.n_ctx,
        )


def split_template(template: str) -> tuple[str, str]:
    """``"a {} pattern."`` → ``("a ", " pattern.")``; the template must hold ``{}`` exactly once."""
    if template.count(SLOT) != 1:
        raise ValueError(f"prompt template {template!r} must contain {SLOT!r} exactly once")
    prefix, suffix = template.split(SLOT)
    return prefix, suffix


class PromptEncoder:
    """Encodes prompts whose context is a tensor of token embeddings, through a frozen
    ``transformers.CLIPModel`` text tower (``backbone.model``)."""

    def __init__(self, backbone: Backbone):
        self.backbone = backbone
        self.model = backbone.model
        self.text = backbone.model.text_model
        config = self.text.config
        self.max_length = int(config.max_position_embeddings)
        tokenizer = backbone.tokenizer  # type: ignore[attr-defined]
        self.tokenizer = tokenizer
        self.sos_id = int(tokenizer.bos_token_id)
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id
        )

    @property
    def width(self) -> int:
        """Size of a token embedding (one context vector)."""
        return int(self.text.config.hidden_size)

    @property
    def token_embedding(self) -> nn.Embedding:
        """The text tower's token-embedding table."""
        return self.text.embeddings.token_embedding

    def token_ids(self, text: str) -> list[int]:
        """The tokens of ``text`` without start/end tokens (empty text → no token)."""
        if not text.strip():
            return []
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def context_from_text(self, text: str) -> torch.Tensor:
        """(n, width) copy of the token embeddings of ``text``: a context that makes a prompt read
        as ``text`` (CoOp's initialisation). n is the number of tokens of ``text``."""
        ids = torch.tensor(self.token_ids(text), dtype=torch.long, device=self.backbone.device)
        with torch.no_grad():
            return self.token_embedding(ids).detach().float().clone()

    def layout(self, names: Sequence[str], templates: Sequence[str], n_ctx: int) -> PromptLayout:
        """Tokenize prompt i = ``templates[i]`` with ``n_ctx`` context slots before ``names[i]``.
        Prompts longer than the tower's maximum lose their last tokens before [EOS], as the
        tokenizer's truncation would."""
        if len(names) != len(templates):
            raise ValueError(f"{len(names)} names but {len(templates)} templates")
        rows, starts = [], []
        for name, template in zip(names, templates, strict=True):
            prefix, suffix = split_template(template)
            head = [self.sos_id, *self.token_ids(prefix)]
            tail = self.token_ids(name + suffix)
            room = self.max_length - len(head) - n_ctx - 1
            if room < 0:
                raise ValueError(
                    f"prompt {template!r} with {n_ctx} context vectors exceeds the text tower's "
                    f"{self.max_length} positions"
                )
            # the placeholder is never the end token, so it cannot be mistaken for [EOS]
            rows.append([*head, *([self.sos_id] * n_ctx), *tail[:room], self.eos_id])
            starts.append(len(head))
        length = max((len(r) for r in rows), default=1)
        device = self.backbone.device
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), length), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        return PromptLayout(
            ids.to(device),
            mask.to(device),
            torch.tensor(starts, dtype=torch.long, device=device),
            torch.tensor([len(r) - 1 for r in rows], dtype=torch.long, device=device),
            n_ctx,
        )

    def encode(self, layout: PromptLayout, contexts: torch.Tensor | None = None) -> torch.Tensor:
        """(P, embed_dim) unnormalized text embeddings of the prompts, with ``contexts``
        (P, n_ctx, width) in their slots (None when ``n_ctx`` is 0). Differentiable in
        ``contexts``; the tower's weights are used as they are (freeze them yourself)."""
        with torch.no_grad():
            embeds = self.token_embedding(layout.input_ids)
        if layout.n_ctx:
            if contexts is None or contexts.shape != (len(layout), layout.n_ctx, self.width):
                got = None if contexts is None else tuple(contexts.shape)
                raise ValueError(
                    f"contexts must be ({len(layout)}, {layout.n_ctx}, {self.width}), got {got}"
                )
            slots = layout.context_start[:, None] + torch.arange(layout.n_ctx, device=embeds.device)
            index = slots[:, :, None].expand(-1, -1, self.width)
            embeds = embeds.scatter(1, index, contexts.to(device=embeds.device, dtype=embeds.dtype))
        # the steps of CLIPTextModel.forward, from its token embeddings on
        hidden = self.text.embeddings(inputs_embeds=embeds)
        mask = causal_padding_mask(layout.attention_mask, hidden.dtype)
        hidden = self.text.encoder(
            inputs_embeds=hidden, attention_mask=mask, is_causal=True
        ).last_hidden_state
        hidden = self.text.final_layer_norm(hidden)
        pooled = hidden[torch.arange(len(layout), device=hidden.device), layout.eos_position]
        return self.model.text_projection(pooled)


def causal_padding_mask(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The additive attention mask of CLIP's text tower, (B, 1, L, L): query i may attend to key j
    when j <= i (causal) and j is a real token (``attention_mask[b, j] == 1``); 0 where allowed, the
    dtype's most negative value where not. Eager and SDPA attention both add it to the scores.
    Every query keeps key 0 ([SOS]), so no row is fully masked."""
    batch, length = attention_mask.shape
    device = attention_mask.device
    causal = torch.ones(length, length, dtype=torch.bool, device=device).tril()
    allowed = causal[None, None] & attention_mask.bool()[:, None, None, :]
    mask = torch.zeros(batch, 1, length, length, dtype=dtype, device=device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)


def reuse_encoder(encoder: PromptEncoder | None, backbone: Backbone) -> PromptEncoder:
    """``encoder`` if it drives ``backbone``'s text tower, else a new encoder for ``backbone``: a
    method keeps its encoder (and its tokenizer look-ups) from task to task."""
    if encoder is None or encoder.backbone is not backbone:
        return PromptEncoder(backbone)
    return encoder


class TemplatedPrompts:
    """Every (class, template) prompt of some classes, laid out once: row ``offsets[c] + j`` is
    class c in its template j. Used to encode class prototypes with per-class contexts, either
    template-averaged (:meth:`prototypes`) or with one template per class drawn at random
    (:meth:`draw`, :meth:`encode_rows`: template augmentation)."""

    def __init__(
        self,
        encoder: PromptEncoder,
        names: Sequence[str],
        templates: Sequence[Sequence[str]],
        n_ctx: int,
    ):
        if len(names) != len(templates):
            raise ValueError(f"{len(names)} names but {len(templates)} template lists")
        if any(len(t) == 0 for t in templates):
            raise ValueError("every class needs at least one template")
        self.encoder = encoder
        self.counts = torch.tensor([len(t) for t in templates], dtype=torch.long)
        self.offsets = torch.cumsum(self.counts, 0) - self.counts
        self.owner = torch.repeat_interleave(torch.arange(len(names)), self.counts)
        flat_names = [n for n, ts in zip(names, templates, strict=True) for _ in ts]
        flat_templates = [t for ts in templates for t in ts]
        self.layout = encoder.layout(flat_names, flat_templates, n_ctx)

    def __len__(self) -> int:
        return len(self.counts)

    def prompt_embeddings(self, contexts: torch.Tensor | None) -> torch.Tensor:
        """(P, D) normalized embedding of every prompt, each with its class's context from
        ``contexts`` (C, n_ctx, width)."""
        device = self.layout.input_ids.device
        per_prompt = None if contexts is None else contexts.to(device)[self.owner.to(device)]
        return F.normalize(self.encoder.encode(self.layout, per_prompt).float(), dim=-1)

    def prototypes(self, contexts: torch.Tensor | None) -> torch.Tensor:
        """(C, D) normalized class prototypes: every template encoded with the class's context
        (C, n_ctx, width), each normalized, averaged per class, normalized again (CLIP's prompt
        ensembling)."""
        encoded = self.prompt_embeddings(contexts)
        owner = self.owner.to(encoded.device)
        summed = torch.zeros(len(self), encoded.shape[1], device=encoded.device)
        return F.normalize(summed.index_add(0, owner, encoded), dim=-1)

    def draw(self, generator: torch.Generator) -> torch.Tensor:
        """(C,) prompt rows: one template per class, drawn uniformly (template augmentation)."""
        draws = (torch.rand(len(self), generator=generator) * self.counts).long()
        return self.offsets + torch.minimum(draws, self.counts - 1)

    def encode_rows(self, rows: torch.Tensor, contexts: torch.Tensor | None) -> torch.Tensor:
        """(C, D) normalized embeddings of prompt ``rows`` (one per class, e.g. from
        :meth:`draw`) with the classes' contexts (C, n_ctx, width)."""
        encoded = self.encoder.encode(self.layout.select(rows), contexts)
        return F.normalize(encoded.float(), dim=-1)


def initial_context(encoder: PromptEncoder, n_ctx: int, init: str | None, std: float = 0.02,
                    generator: torch.Generator | None = None) -> torch.Tensor:  # fmt: skip
    """(n_ctx, width) starting context: the token embeddings of ``init`` (CoOp's "a photo of a").
    When ``init`` has fewer tokens than ``n_ctx`` the first vectors are N(0, std²) and ``init``'s
    embeddings sit last, right before the class name; when it has more, its last ``n_ctx`` tokens
    are kept. ``init = None``: every vector N(0, std²)."""
    words = encoder.context_from_text(init).cpu() if init else torch.empty(0, encoder.width)
    words = words[len(words) - n_ctx :] if len(words) > n_ctx else words
    noise = torch.randn(n_ctx - len(words), encoder.width, generator=generator) * std
    return torch.cat([noise, words])


def fit_contexts(
    contexts: torch.Tensor,
    step: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]],
    features: torch.Tensor,
    targets: torch.Tensor,
    *,
    scale: float,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    generator: torch.Generator,
    log: Callable[[dict[str, torch.Tensor]], None] | None = None,
) -> torch.Tensor:
    """Train context vectors by cross-entropy on cached image features; returns them detached.

    ``step(contexts)`` gives the (C, D) normalized prototypes of the classes (it may draw
    templates) and an optional penalty added to the loss; logits are
    ``scale · cos(f(x), prototype)`` and ``targets`` index the prototypes' rows. ``epochs`` passes
    of Adam over mini-batches in an order drawn from ``generator``; the prototypes are re-encoded
    at every step. ``log`` (e.g. ``ctx.log_metrics``) receives each step's loss.
    """
    device = features.device
    features = F.normalize(features.float(), dim=-1)
    targets = targets.to(device)
    parameter = nn.Parameter(contexts.detach().clone().to(device))
    optimizer = torch.optim.Adam([parameter], lr=lr, weight_decay=weight_decay)

    def batch_loss(rows: torch.Tensor) -> torch.Tensor:
        prototypes, penalty = step(parameter)
        loss = F.cross_entropy(scale * features[rows] @ prototypes.T, targets[rows])
        return loss if penalty is None else loss + penalty

    train_on_minibatches(optimizer, batch_loss, len(features), epochs=epochs,
                         batch_size=batch_size, generator=generator, device=device, log=log)  # fmt: skip
    return parameter.detach().cpu()


def fit_task_contexts(
    contexts: torch.Tensor,
    step: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]],
    data: TaskData,
    space: LabelSpace,
    ctx: Context,
    config: PromptTrainingConfig,
) -> torch.Tensor:
    """:func:`fit_contexts` on a task's cached features with ``config``'s optimizer settings, the
    backbone's logit scale and the context's generator. ``step``'s prototypes are the classes of
    ``space`` in its order; every label of the task must be one of them."""
    assert data.features is not None
    targets = torch.tensor(space.columns(data.labels.tolist()))
    return fit_contexts(
        contexts,
        step,
        data.features.to(ctx.device),
        targets,
        scale=ctx.backbone.logit_scale,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        generator=ctx.generator,
        log=ctx.log_metrics,
    )
