"""Model inversion of a ``transformers`` CLIP image tower: per-layer inversion (feature → pixels, one
block at a time) and full-model inversion (pixels optimized through the whole tower).

The tower computes, for preprocessed pixels x (B, 3, H, W) with P×P patches:

    e   = [cls + pos₀ ; conv(x) + pos₁..ₙ]      (pre-LN tokens, "embeddings")
    h₀  = pre_layrnorm(e)
    hₗ₊₁ = blockₗ(hₗ)                             l = 0 … L−1
    f   = projection(post_layernorm(h_L[:, 0]))  (the image embedding)

Per-layer inversion walks this backwards from a target embedding z:
1. the CLS token of h_L: ``projection`` inverted by least squares, ``post_layernorm`` undone with the
   real tokens' typical mean and spread (its scale is lost in the normalization); the other tokens of
   h_L are the real tokens' mean at each position;
2. blocks L−1 … 1, last first: min_h Σ_tokens w·‖block(h) − target‖² + λ·prior(h), a few Adam
   steps starting from the previous solution (the target itself: residual blocks are close to the
   identity); the prior is a per-position, per-channel Gaussian of real tokens
   (:class:`TokenStatistics`); the CLS token weighs more than a patch token (it is what f reads);
3. block 0 with the embedding layer's non-pixel parts folded in: the free variable is the patch
   tokens p that the conv produces, h₀ = pre_layrnorm([cls + pos₀ ; p + pos₁..ₙ]) exactly — the CLS
   input does not depend on the pixels and stays fixed, no LayerNorm needs undoing — with a penalty
   keeping the least-squares pixels of p in the valid range;
4. the patch embedding — a linear map of each P×P patch, since the conv has kernel = stride = P and
   no bias — inverted per patch: when 3P² exceeds the width many patches reproduce a token exactly;
   the one of smallest norm is taken, or (``patch_solution``) the smoothest (smallest neighbour and
   colour differences).

Full-model inversion then minimizes, per image of class c with target z,
CE(s·cos(f(x), t), c) + w_f·‖f(x) − z‖²/‖z‖² + w_c·InfoNCE(f̂(x), prototypes, c) + w_tv·TV(x) + w_2·‖x‖²
with Adam on x (clamped to the valid pixel range; optionally seen through a random circular shift
of a few pixels at each step, ``jitter``), batched, and stops as soon as the batch's mean loss
reaches ``target_loss`` (or after ``inversion_steps``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from driftless.methods.base import MethodConfig


class InversionConfig(MethodConfig):
    """How images are synthesized from target embeddings (fields shared with the PMI method)."""

    init: Literal["per-layer", "mean", "noise"] = "per-layer"
    """Starting image of full-model inversion: "per-layer" (the per-layer walk toward each target),
    "mean" (the same image for every target: the pixels of the real images' mean patch tokens, a
    control that separates the walk from the statistics it starts from) or "noise"."""
    layer_steps: int = Field(default=10, ge=0)
    """Adam steps per block in the per-layer walk."""
    layer_lr: float = Field(default=0.05, gt=0)
    """Learning rate of the per-layer steps."""
    prior_weight: float = Field(default=1e-4, ge=0)
    """λ, the weight of the token-statistics prior in each block's inversion."""
    cls_weight: float = Field(default=16.0, gt=0)
    """Weight of the CLS token against one patch token in each block's fit (the CLS token is
    the one the embedding reads)."""
    first_block_factor: int = Field(default=8, ge=1)
    """Block 0 (with the embedding layer folded in) gets this many times ``layer_steps``."""
    range_weight: float = Field(default=1.0, ge=0)
    """Weight of the penalty keeping block 0's least-squares pixels in the valid range."""
    patch_solution: Literal["smoothest", "minimum-norm"] = "minimum-norm"
    """Which of the many pixel patches that reproduce a patch token exactly (the conv is wide when
    3·P² exceeds the width): the one with the smallest neighbour and colour differences, or the
    one of smallest norm (high-frequency)."""
    inversion_steps: int = Field(default=300, ge=1)
    """Maximum Adam steps of full-model inversion (it stops earlier at ``target_loss``)."""
    inversion_lr: float = Field(default=0.05, gt=0)
    """Learning rate of full-model inversion (normalized pixel units)."""
    target_loss: float = Field(default=0.3, ge=0)
    """Full-model inversion stops once the batch's mean loss is at most this."""
    feature_weight: float = Field(default=1.0, ge=0)
    """w_f, weight of the feature-matching term ‖f(x) − z‖² / ‖z‖²."""
    contrastive: bool = True
    """Use the contrastive term (pull toward the class prototype, push from the others)."""
    contrastive_weight: float = Field(default=0.1, ge=0)
    """w_c, weight of the contrastive (InfoNCE over class prototypes) term."""
    contrastive_temperature: float = Field(default=0.1, gt=0)
    """τ of the contrastive term."""
    tv_weight: float = Field(default=1e-2, ge=0)
    """w_tv, weight of the total-variation prior (mean absolute neighbour difference)."""
    l2_weight: float = Field(default=1e-3, ge=0)
    """w_2, weight of the ℓ2 prior (mean squared normalized pixel)."""
    jitter: int = Field(default=0, ge=0)
    """Full-model inversion sees the image shifted by a random offset of up to this many pixels
    (circularly) at each step, so no pattern tied to exact pixel positions can satisfy it."""


# -- the tower's pieces -------------------------------------------------------------------------


def hidden_states(vision: nn.Module, pixels: torch.Tensor) -> list[torch.Tensor]:
    """Every token state of the tower for ``pixels``: [e (pre-LN embeddings), h₀, h₁, …, h_L]."""
    embeddings = vision.embeddings(pixels)
    states = [embeddings, vision.pre_layrnorm(embeddings)]
    for block in vision.encoder.layers:
        states.append(block(states[-1], None))
    return states


def patch_matrix(vision: nn.Module) -> torch.Tensor:
    """The patch embedding as a matrix A (width, 3·P·P): token = A · vec(patch)."""
    weight = vision.embeddings.patch_embedding.weight  # (width, 3, P, P)
    return weight.reshape(weight.shape[0], -1)


def patch_difference_operator(patch: int) -> torch.Tensor:
    """D (rows, 3·P·P): horizontal and vertical neighbour differences within each channel of a
    P×P patch, and the differences between its channels at each pixel, in the conv weight's
    (channel, row, column) order."""
    index = torch.arange(3 * patch * patch).reshape(3, patch, patch)
    pairs = [
        (index[:, :, 1:], index[:, :, :-1]),
        (index[:, 1:, :], index[:, :-1, :]),
        (index[1:], index[:-1]),
    ]
    first = torch.cat([a.reshape(-1) for a, _ in pairs])
    second = torch.cat([b.reshape(-1) for _, b in pairs])
    operator = torch.zeros(len(first), 3 * patch * patch, dtype=torch.float64)
    rows = torch.arange(len(first))
    operator[rows, first] = 1.0
    operator[rows, second] = -1.0
    return operator


def patch_inverse(vision: nn.Module, solution: str = "minimum-norm") -> torch.Tensor:
    """G (3·P·P, width), float64: pixels = G · token for each patch. A tall or square A (full
    column rank) has one least-squares answer, its pseudo-inverse. A wide A (3·P² > width) is
    reproduced exactly by many patches: ``"minimum-norm"`` picks the one of smallest norm (A⁺),
    ``"smoothest"`` the one minimizing vᵀMv with M = DᵀD + εI (D: :func:`patch_difference_operator`),
    G = M⁻¹Aᵀ(AM⁻¹Aᵀ)⁻¹ — still A·G = I, but without the high-frequency pattern A⁺ leaves."""
    matrix = patch_matrix(vision).detach().to("cpu", torch.float64)
    width, inputs = matrix.shape
    if solution == "minimum-norm" or inputs <= width:
        return torch.linalg.pinv(matrix)
    if solution != "smoothest":
        raise ValueError(f"patch_solution: 'smoothest' or 'minimum-norm', not {solution!r}")
    difference = patch_difference_operator(vision.embeddings.patch_size)
    metric = difference.T @ difference + 1e-3 * torch.eye(inputs, dtype=torch.float64)
    spread = torch.linalg.solve(metric, matrix.T)  # M⁻¹Aᵀ (3P², width)
    return spread @ torch.linalg.inv(matrix @ spread)


def invert_patch_embedding(
    vision: nn.Module, embeddings: torch.Tensor, solution: str = "minimum-norm"
) -> torch.Tensor:
    """Pre-LN token states e (B, 1 + n, width) → pixels (B, 3, H, W) whose patch embedding
    reproduces them (exactly when A is wide and of full row rank; best in least squares
    otherwise): position embeddings removed, then each patch's pixels = G · token with G from
    :func:`patch_inverse`. The CLS token does not depend on the pixels and is ignored."""
    # float64: the solve is ill-conditioned in float32
    return pixels_from_tokens(vision, embeddings, patch_inverse(vision, solution))


def pixels_from_tokens(
    vision: nn.Module, embeddings: torch.Tensor, inverse: torch.Tensor
) -> torch.Tensor:
    """:func:`invert_patch_embedding` with the patch inverse G (3·P·P, width) already computed."""
    module = vision.embeddings
    size, patch = module.image_size, module.patch_size
    grid = size // patch
    positions = module.position_embedding.weight[1:]  # (n, width)
    patches = embeddings[:, 1:] - positions  # (B, n, width)
    inverse = inverse.to("cpu", torch.float64)
    flat = patches.detach().reshape(-1, patches.shape[-1]).to("cpu", torch.float64)
    values = (flat @ inverse.T).to(embeddings.device, embeddings.dtype)
    values = values.reshape(-1, grid, grid, 3, patch, patch)
    return values.permute(0, 3, 1, 4, 2, 5).reshape(-1, 3, size, size)


def undo_layernorm(
    normalized: torch.Tensor, norm: nn.LayerNorm, token_mean: torch.Tensor, token_std: torch.Tensor
) -> torch.Tensor:
    """A pre-image of ``norm``: (y − β)/γ rescaled to the per-token channel mean and spread of real
    tokens (both lost in the normalization). ``token_mean``/``token_std`` broadcast over the rows."""
    gamma = norm.weight
    gamma = torch.where(gamma.abs() < 1e-6, torch.full_like(gamma, 1e-6), gamma)
    unit = (normalized - norm.bias) / gamma
    unit = (unit - unit.mean(-1, keepdim=True)) / unit.std(-1, keepdim=True).clamp_min(1e-6)
    return token_mean[..., None] + token_std[..., None] * unit


# -- token statistics ---------------------------------------------------------------------------


class TokenStatistics:
    """Running per-position, per-channel mean and variance of every token state of the tower
    (:func:`hidden_states`), plus each position's typical channel mean and spread (what a
    LayerNorm removes), from float64 sums over real images."""

    def __init__(self) -> None:
        self.count = 0
        self.sums: torch.Tensor | None = None  # (K, 1 + n, width)
        self.squares: torch.Tensor | None = None
        self.channel_means: torch.Tensor | None = None  # (K, 1 + n): Σ of each token's mean
        self.channel_stds: torch.Tensor | None = None  # (K, 1 + n): Σ of each token's std

    @torch.no_grad()
    def update(self, vision: nn.Module, pixels: torch.Tensor) -> None:
        """Add the token states of a batch of real preprocessed images."""
        self.add(hidden_states(vision, pixels))

    @torch.no_grad()
    def add(self, states_of_batch: list[torch.Tensor]) -> None:
        """Add a batch's token states as :func:`hidden_states` returns them (computed once by a
        caller that needs them for something else too)."""
        states = torch.stack(states_of_batch, dim=1).to("cpu", torch.float64)
        parts = (
            states.sum(0),
            states.square().sum(0),
            states.mean(-1).sum(0),
            states.std(-1).sum(0),
        )
        if self.sums is None:
            self.sums, self.squares, self.channel_means, self.channel_stds = parts
        else:
            self.sums += parts[0]
            self.squares += parts[1]
            self.channel_means += parts[2]
            self.channel_stds += parts[3]
        self.count += len(states)

    def mean(self, k: int, device: torch.device | None = None) -> torch.Tensor:
        """(1 + n, width) mean of state k (0 = pre-LN embeddings, 1 = h₀, …)."""
        assert self.sums is not None, "no token statistics yet"
        return (self.sums[k] / self.count).to(device, torch.float32)

    def std(self, k: int, device: torch.device | None = None) -> torch.Tensor:
        """(1 + n, width) standard deviation of state k."""
        assert self.squares is not None, "no token statistics yet"
        mean = self.sums[k] / self.count  # type: ignore[index]
        variance = (self.squares[k] / self.count - mean.square()).clamp_min(1e-8)
        return variance.sqrt().to(device, torch.float32)

    def token_scale(
        self, k: int, device: torch.device | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each position's average channel mean and channel std in state k, (1 + n,) each."""
        assert self.channel_means is not None and self.channel_stds is not None
        return (
            (self.channel_means[k] / self.count).to(device, torch.float32),
            (self.channel_stds[k] / self.count).to(device, torch.float32),
        )

    def state_dict(self) -> dict[str, Any]:
        """Counts and sums as tensors."""
        return {
            "count": self.count,
            "sums": self.sums,
            "squares": self.squares,
            "channel_means": self.channel_means,
            "channel_stds": self.channel_stds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict`."""
        self.count = int(state["count"])
        for key in ("sums", "squares", "channel_means", "channel_stds"):
            value = state[key]
            setattr(self, key, None if value is None else value.clone())


# -- per-layer inversion ------------------------------------------------------------------------


def _token_weights(tokens: int, cls_weight: float, device: torch.device) -> torch.Tensor:
    weights = torch.ones(tokens, device=device)
    weights[0] = cls_weight
    return weights / weights.sum()


def invert_block(
    block: nn.Module,
    target: torch.Tensor,
    start: torch.Tensor,
    prior_mean: torch.Tensor,
    prior_std: torch.Tensor,
    config: InversionConfig,
) -> torch.Tensor:
    """min_h Σ_tokens w·‖block(h) − target‖² + λ·mean(((h − μ)/σ)²) by ``config.layer_steps`` Adam
    steps from ``start`` (the CLS token weighs ``config.cls_weight`` times a patch token)."""
    h = start.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([h], lr=config.layer_lr)
    weights = _token_weights(h.shape[1], config.cls_weight, h.device)
    for _ in range(config.layer_steps):
        fit = ((block(h, None) - target).square().sum(-1) * weights).sum(-1).mean()
        prior = ((h - prior_mean) / prior_std).square().mean()
        loss = fit + config.prior_weight * prior
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return h.detach()


def invert_first_block(
    vision: nn.Module,
    target: torch.Tensor,
    stats: TokenStatistics,
    config: InversionConfig,
    pixel_range: tuple[torch.Tensor, torch.Tensor],
    inverse: torch.Tensor,
) -> torch.Tensor:
    """Block 0 with the embedding layer's non-pixel parts folded in: the free variable is the patch
    tokens p (B, n, width) — what the conv produces — so that h₀ = pre_layrnorm([cls + pos₀ ;
    p + pos]) is exact (the CLS token is fixed, the LayerNorm needs no undoing). Besides the fit and
    the token prior, a penalty keeps the pixels G·p of each patch (:func:`patch_inverse`) inside the
    valid range (G = ``inverse``, float64). Returns the pre-LN tokens e."""
    module = vision.embeddings
    positions = module.position_embedding.weight  # (1 + n, width)
    cls = (module.class_embedding + positions[0])[None, None]
    device = target.device
    prior_mean, prior_std = stats.mean(0, device)[1:], stats.std(0, device)[1:]
    inverse = inverse.float().to(target.device)  # (3P², width)
    patch = module.patch_size
    low = pixel_range[0].reshape(3, 1, 1).expand(3, patch, patch).reshape(-1)
    high = pixel_range[1].reshape(3, 1, 1).expand(3, patch, patch).reshape(-1)
    p = prior_mean.expand(len(target), -1, -1).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([p], lr=config.layer_lr)
    block = vision.encoder.layers[0]
    weights = _token_weights(target.shape[1], config.cls_weight, target.device)

    def tokens() -> torch.Tensor:
        return torch.cat([cls.expand(len(p), 1, -1), p + positions[1:]], dim=1)

    for _ in range(config.layer_steps * config.first_block_factor):
        out = block(vision.pre_layrnorm(tokens()), None)
        fit = ((out - target).square().sum(-1) * weights).sum(-1).mean()
        prior = ((p - prior_mean) / prior_std).square().mean()
        values = p @ inverse.T  # (B, n, 3P²): the pixels each patch token will become
        outside = (F.relu(values - high) + F.relu(low - values)).square().mean()
        loss = fit + config.prior_weight * prior + config.range_weight * outside
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return tokens().detach()


def per_layer_inversion(
    vision: nn.Module,
    projection: nn.Module,
    targets: torch.Tensor,
    stats: TokenStatistics,
    config: InversionConfig,
    pixel_range: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """Target embeddings z (B, D) → pixels (B, 3, H, W), walking the tower back one layer at a time
    (module docstring, steps 1–4). Only the tower's own weights and ``stats`` are used."""
    blocks = list(vision.encoder.layers)
    depth = len(blocks)
    with torch.no_grad():
        weight = projection.weight.to(torch.float64)  # (D, width), no bias in CLIP
        pooled = torch.linalg.pinv(weight) @ targets.to(torch.float64).T  # (width, B)
        device = targets.device
        last_mean, last_spread = stats.token_scale(depth + 1, device)
        cls = undo_layernorm(pooled.T.float(), vision.post_layernorm, last_mean[0], last_spread[0])
        state = stats.mean(depth + 1, device).expand(len(targets), -1, -1).clone()
        state[:, 0] = cls
    with torch.enable_grad():
        for index in reversed(range(1, depth)):
            prior_mean, prior_std = stats.mean(index + 1, device), stats.std(index + 1, device)
            state = invert_block(blocks[index], state, state, prior_mean, prior_std, config)
        inverse = patch_inverse(vision, config.patch_solution)  # one G for block 0 and the pixels
        embeddings = invert_first_block(vision, state, stats, config, pixel_range, inverse)
    pixels = pixels_from_tokens(vision, embeddings, inverse)
    return pixels.clamp(pixel_range[0], pixel_range[1])


# -- full-model inversion -----------------------------------------------------------------------


def total_variation(pixels: torch.Tensor) -> torch.Tensor:
    """Per image, the mean absolute difference between horizontal and vertical neighbours (B,)."""
    dx = (pixels[..., :, 1:] - pixels[..., :, :-1]).abs().flatten(1).mean(1)
    dy = (pixels[..., 1:, :] - pixels[..., :-1, :]).abs().flatten(1).mean(1)
    return dx + dy


@dataclass
class InversionResult:
    """Synthesized pixels, the full-inversion steps taken, the loss after every step, the seconds
    spent in each phase."""

    pixels: torch.Tensor
    iterations: int
    losses: list[float] = field(default_factory=list)
    init_seconds: float = 0.0
    full_seconds: float = 0.0
    reached_target: bool = False


def inversion_losses(
    embeddings: torch.Tensor,
    pixels: torch.Tensor,
    positions: torch.Tensor,
    targets: torch.Tensor,
    classifier: torch.Tensor,
    prototypes: torch.Tensor,
    scale: float,
    config: InversionConfig,
) -> torch.Tensor:
    """The full-inversion loss of each image (B,): class CE through the classifier (rows =
    normalized class text embeddings), feature matching to ``targets``, contrastive alignment to
    ``prototypes`` (rows in the classifier's class order), total-variation and ℓ2 priors."""
    unit = F.normalize(embeddings, dim=-1)
    logits = scale * unit @ F.normalize(classifier, dim=-1).T
    loss = F.cross_entropy(logits, positions, reduction="none")
    feature = (embeddings - targets).square().sum(-1) / targets.square().sum(-1).clamp_min(1e-8)
    loss = loss + config.feature_weight * feature
    if config.contrastive and config.contrastive_weight > 0:
        similarity = unit @ F.normalize(prototypes, dim=-1).T / config.contrastive_temperature
        contrast = F.cross_entropy(similarity, positions, reduction="none")
        loss = loss + config.contrastive_weight * contrast
    loss = loss + config.tv_weight * total_variation(pixels)
    return loss + config.l2_weight * pixels.square().flatten(1).mean(1)


def full_inversion(
    encoder: nn.Module,
    start: torch.Tensor,
    positions: torch.Tensor,
    targets: torch.Tensor,
    classifier: torch.Tensor,
    prototypes: torch.Tensor,
    scale: float,
    config: InversionConfig,
    pixel_range: tuple[torch.Tensor, torch.Tensor],
    generator: torch.Generator | None = None,
) -> InversionResult:
    """Optimize pixels from ``start`` by Adam on :func:`inversion_losses` until the batch's mean
    loss is at most ``config.target_loss`` or ``config.inversion_steps`` were taken. ``encoder``
    maps pixels to embeddings; its weights are not touched. With ``config.jitter`` the encoder sees
    the batch shifted by an offset drawn from ``generator`` at each step."""
    pixels = start.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([pixels], lr=config.inversion_lr)
    losses: list[float] = []
    reached = False
    if config.jitter and generator is None:
        raise ValueError("jitter needs a generator (the shifts must be seeded)")
    with torch.enable_grad():
        for _ in range(config.inversion_steps):
            seen = pixels
            if config.jitter:
                dx, dy = torch.randint(-config.jitter, config.jitter + 1, (2,), generator=generator)
                seen = torch.roll(pixels, shifts=(int(dy), int(dx)), dims=(-2, -1))
            loss = inversion_losses(
                encoder(seen), pixels, positions, targets, classifier, prototypes, scale, config
            ).mean()
            losses.append(float(loss.detach()))
            if losses[-1] <= config.target_loss:
                reached = True
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                pixels.copy_(torch.maximum(torch.minimum(pixels, pixel_range[1]), pixel_range[0]))
    iterations = len(losses) - 1 if reached else len(losses)
    return InversionResult(pixels.detach(), iterations, losses, reached_target=reached)


def mean_token_image(
    vision: nn.Module,
    stats: TokenStatistics,
    count: int,
    config: InversionConfig,
    pixel_range: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """``count`` copies of the image whose patch embedding is the real images' mean pre-LN token
    at every position (no target involved): what the per-layer walk starts its first block from."""
    device = pixel_range[0].device
    mean = stats.mean(0, device)[None].expand(count, -1, -1)
    pixels = invert_patch_embedding(vision, mean, config.patch_solution)
    return pixels.clamp(pixel_range[0], pixel_range[1])


def noise_start(
    count: int, shape: tuple[int, int, int], generator: torch.Generator, device: torch.device
) -> torch.Tensor:
    """Gaussian noise in normalized pixel units (the baseline starting image)."""
    noise = torch.randn((count, *shape), generator=generator)
    return noise.to(device)


def synthesize(
    encoder: nn.Module,
    positions: torch.Tensor,
    targets: torch.Tensor,
    classifier: torch.Tensor,
    prototypes: torch.Tensor,
    scale: float,
    stats: TokenStatistics,
    config: InversionConfig,
    pixel_range: tuple[torch.Tensor, torch.Tensor],
    generator: torch.Generator,
) -> InversionResult:
    """Images of the classes at ``positions`` (columns of ``classifier``) aimed at ``targets``:
    per-layer inversion (or noise, as ``config.init`` says), then full-model inversion. ``encoder``
    is an :class:`~driftless.methods.parts.image_training.ImageEncoder` (``vision`` +
    ``projection``)."""
    vision, projection = encoder.vision, encoder.projection  # type: ignore[union-attr]
    tick = time.perf_counter()
    if config.init == "per-layer":
        start = per_layer_inversion(vision, projection, targets, stats, config, pixel_range)
    elif config.init == "mean":
        start = mean_token_image(vision, stats, len(targets), config, pixel_range)
    elif config.init == "noise":
        size = vision.embeddings.image_size
        start = noise_start(len(targets), (3, size, size), generator, targets.device)
        start = start.clamp(pixel_range[0], pixel_range[1])
    else:
        raise ValueError(f"init: 'per-layer', 'mean' or 'noise', not {config.init!r}")
    init_seconds = time.perf_counter() - tick
    tick = time.perf_counter()
    result = full_inversion(
        encoder,
        start,
        positions,
        targets,
        classifier,
        prototypes,
        scale,
        config,
        pixel_range,
        generator,
    )
    result.init_seconds = init_seconds
    result.full_seconds = time.perf_counter() - tick
    return result


def pixel_bounds(
    mean: tuple[float, ...], std: tuple[float, ...], device: torch.device | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lowest and highest normalized pixel value per channel, shaped (3, 1, 1)."""
    m = torch.tensor(mean, device=device)[:, None, None]
    s = torch.tensor(std, device=device)[:, None, None]
    return (0 - m) / s, (1 - m) / s
