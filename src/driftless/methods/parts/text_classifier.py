"""Zero-shot text classifiers: template-averaged, normalized class embeddings, and cosine logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from driftless.backbones.base import Backbone
from driftless.methods.base import LabelSpace


def cosine_logits(features: torch.Tensor, prototypes: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale · cos(features, prototypes)`` for every pair: (B, D) × (C, D) → (B, C)."""
    return scale * F.normalize(features.float(), dim=-1) @ F.normalize(prototypes.float(), dim=-1).T


class TextEmbeddingCache:
    """Class text embeddings as CLIP builds its zero-shot classifier: encode every template with the
    class name, normalize each, average, normalize again. Computed once per class and kept.

    Embeddings depend (in the last float bits) on which prompts share a padded batch, so the engine
    encodes the benchmark's whole class list once, in a fixed order, before anything else: every
    run, resumed or not, then sees the same numbers."""

    def __init__(self, backbone: Backbone, batch_size: int = 256):
        self.backbone = backbone
        self.batch_size = batch_size
        self._cache: dict[int, torch.Tensor] = {}

    def __call__(self, label_space: LabelSpace) -> torch.Tensor:
        """(C, D) normalized text embeddings of the label space, on the backbone's device."""
        missing = [i for i, c in enumerate(label_space.class_ids) if c not in self._cache]
        if missing:
            self._encode_many(label_space, missing)
        rows = [self._cache[c] for c in label_space.class_ids]
        return torch.stack(rows).to(self.backbone.device)

    def _encode_many(self, label_space: LabelSpace, positions: list[int]) -> None:
        # one batched pass over every (class, template) prompt rather than one call per class
        prompts, owners = [], []
        for i in positions:
            for template in label_space.templates[i]:
                prompts.append(template.format(label_space.names[i]))
                owners.append(i)
        with torch.inference_mode():
            encoded = F.normalize(
                self.backbone.encode_texts(prompts, self.batch_size).float(), dim=-1
            )
        owner = torch.tensor(owners)
        for i in positions:
            mean = encoded[(owner == i).to(encoded.device)].mean(dim=0)
            self._cache[label_space.class_ids[i]] = F.normalize(mean, dim=-1).cpu()
