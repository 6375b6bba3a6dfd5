"""Prompts for a frozen CLIP vision tower (``transformers`` ``CLIPVisionTransformer``), and the
key–query matching that chooses them.

The prompt-based class-incremental methods (L2P, DualPrompt, CODA-Prompt) keep the pre-trained
vision transformer frozen and learn small sets of vectors that enter chosen layers in one of two
ways:

- **prompt-tuning** (L2P): L extra tokens are inserted into the layer's input sequence; they take
  part in attention, and in every later layer, like image tokens;
- **prefix-tuning** (DualPrompt, CODA-Prompt): L_k vectors are prepended to the layer's attention
  *keys* and L_v to its *values* (after the key/value projections, split over the heads like them);
  the sequence length does not change, only what every token can attend to.

Which prompts an image gets depends on a **query**: the pooled output ([CLS] token after the final
layer norm) of the *untouched* tower on the same image. :func:`cosine_top_n` picks the N pool
entries whose keys are closest to it; :func:`key_pull_loss` is the surrogate loss that pulls chosen
keys toward their queries.

:class:`PromptedVisionTower` runs a frozen copy of the backbone's tower layer by layer, calling each
transformers ``CLIPEncoderLayer``'s own submodules (layer norms, q/k/v/out projections, MLP), so any
CLIP checkpoint that ``transformers`` loads works; a layer that gets no prompt runs exactly as the
library runs it. Its output is the CLIP image embedding (visual projection of the pooled [CLS]), so
prompted images can be scored with a linear head or with the text embeddings.

Our choices: prompt tokens are inserted right after [CLS] (``[CLS, prompts, patches]``) and carry no
position embedding (CLIP's position table has one row per patch); the method's feature is the [CLS]
token, as CLIP pools it (L2P's paper head averages the prompt tokens' outputs instead).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from driftless.backbones.base import Backbone


@dataclass
class LayerPrompts:
    """What enters the tower's layers for one batch, by 0-based layer index.

    ``tokens[i]`` (B, L, W): prompt-tuning tokens inserted into layer i's input after [CLS].
    ``prefixes[i]`` ((B, L_k, W), (B, L_v, W)): key and value prefixes of layer i's attention.
    W is the tower's width; B may be 1 (the same prompts for every image of the batch)."""

    tokens: dict[int, torch.Tensor] = field(default_factory=dict)
    prefixes: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


class PromptedVisionTower(nn.Module):
    """A frozen copy of a CLIP image tower and visual projection that accepts :class:`LayerPrompts`.

    The copy is the method's own (the run's backbone is shared and never changes) and has no
    trainable parameter: gradients flow through it to the prompts only."""

    def __init__(self, vision: nn.Module, projection: nn.Module):
        super().__init__()
        self.vision = vision
        self.projection = projection
        self.requires_grad_(False).eval()

    @classmethod
    def from_backbone(cls, backbone: Backbone) -> PromptedVisionTower:
        """A frozen deep copy of ``backbone``'s vision tower and visual projection."""
        model = backbone.model
        if not (hasattr(model, "vision_model") and hasattr(model, "visual_projection")):
            raise TypeError(
                f"backbone {backbone.name}: vision prompts need a CLIPModel-like model with "
                "vision_model and visual_projection"
            )
        with torch.inference_mode(False):  # may be built while the engine evaluates
            return cls(copy.deepcopy(model.vision_model), copy.deepcopy(model.visual_projection))

    def train(self, mode: bool = True) -> PromptedVisionTower:
        # the frozen tower has no dropout to switch on: it always runs as evaluated
        return super().train(False)

    @property
    def layers(self) -> nn.ModuleList:
        """The transformer layers, input side first."""
        return self.vision.encoder.layers

    @property
    def width(self) -> int:
        """Token width W of the transformer (the size of queries, keys and prompts)."""
        return int(self.vision.config.hidden_size)

    @property
    def num_heads(self) -> int:
        """Attention heads per layer."""
        return int(self.vision.config.num_attention_heads)

    def query(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, W) pooled output of the untouched tower: the query of key–query matching."""
        with torch.no_grad():
            return self.vision(pixel_values=pixels).pooler_output

    def forward(self, pixels: torch.Tensor, prompts: LayerPrompts | None = None) -> torch.Tensor:
        """Preprocessed pixels (B, 3, H, W) → (B, D) unnormalized CLIP image embeddings, with
        ``prompts`` inserted; without prompts this is the backbone's ``encode_images``."""
        prompts = prompts or LayerPrompts()
        for index in (*prompts.tokens, *prompts.prefixes):
            if not 0 <= index < len(self.layers):
                raise ValueError(
                    f"prompt for layer {index}: the tower has layers 0..{len(self.layers) - 1}"
                )
        hidden = self.vision.pre_layrnorm(self.vision.embeddings(pixels))
        batch = hidden.shape[0]
        for index, layer in enumerate(self.layers):
            if index in prompts.tokens:
                tokens = prompts.tokens[index].to(hidden.dtype).expand(batch, -1, -1)
                hidden = torch.cat([hidden[:, :1], tokens, hidden[:, 1:]], dim=1)
            if index in prompts.prefixes:
                keys, values = prompts.prefixes[index]
                hidden = prefixed_layer(layer, hidden, keys, values, self.num_heads)
            else:
                hidden = layer(hidden, None)
        pooled = self.vision.post_layernorm(hidden[:, 0])
        return self.projection(pooled)


def prefixed_layer(
    layer: nn.Module,
    hidden: torch.Tensor,
    key_prefix: torch.Tensor,
    value_prefix: torch.Tensor,
    num_heads: int,
) -> torch.Tensor:
    """One ``CLIPEncoderLayer`` step with prefixes on its attention's keys and values.

    ``hidden`` (B, N, W); ``key_prefix`` (B or 1, L_k, W), ``value_prefix`` (B or 1, L_v, W), with
    L_k = L_v (every key needs its value). The layer's own submodules do the work: pre-norm, q/k/v
    projections, the prefixes concatenated in front of the projected keys and values, scaled
    dot-product attention per head, output projection, residual, pre-norm MLP, residual."""
    if key_prefix.shape[1] != value_prefix.shape[1]:
        raise ValueError(
            f"prefix-tuning needs as many key as value prefixes, got {key_prefix.shape[1]} "
            f"and {value_prefix.shape[1]}"
        )
    attention = layer.self_attn
    batch, length, width = hidden.shape
    head_dim = width // num_heads
    normed = layer.layer_norm1(hidden)
    queries = attention.q_proj(normed)
    keys = torch.cat(
        [key_prefix.to(hidden.dtype).expand(batch, -1, -1), attention.k_proj(normed)], 1
    )
    values = torch.cat(
        [value_prefix.to(hidden.dtype).expand(batch, -1, -1), attention.v_proj(normed)], 1
    )

    def heads(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(batch, x.shape[1], num_heads, head_dim).transpose(1, 2)

    attended = F.scaled_dot_product_attention(heads(queries), heads(keys), heads(values))
    attended = attended.transpose(1, 2).reshape(batch, length, width)
    hidden = hidden + attention.out_proj(attended)
    return hidden + layer.mlp(layer.layer_norm2(hidden))


def cosine_top_n(query: torch.Tensor, keys: torch.Tensor, n: int) -> torch.Tensor:
    """(B, n) indices of the ``n`` keys (P, W) most cosine-similar to each query (B, W), most
    similar first; ties go to the lower index."""
    if not 1 <= n <= len(keys):
        raise ValueError(f"cannot choose {n} of {len(keys)} keys")
    similarity = F.normalize(query.float(), dim=-1) @ F.normalize(keys.float(), dim=-1).T
    # a stable sort keeps equal similarities in index order (topk does not promise it)
    return torch.sort(similarity, dim=1, descending=True, stable=True).indices[:, :n]


def key_pull_loss(query: torch.Tensor, chosen_keys: torch.Tensor) -> torch.Tensor:
    """L2P's surrogate loss: Σ over the chosen keys of (1 − cos(query, key)), averaged over the
    batch. ``query`` (B, W), ``chosen_keys`` (B, n, W) or (B, W). Zero when every chosen key points
    where its query does."""
    if chosen_keys.ndim == 2:
        chosen_keys = chosen_keys[:, None]
    similarity = F.cosine_similarity(query[:, None].float(), chosen_keys.float(), dim=-1)
    return (1.0 - similarity).sum(dim=1).mean()
