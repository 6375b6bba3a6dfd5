"""Building blocks shared by methods: text classifiers, running class statistics, solvers."""

from driftless.methods.parts.class_stats import RunningClassMeans
from driftless.methods.parts.text_classifier import TextEmbeddingCache, cosine_logits

__all__ = ["RunningClassMeans", "TextEmbeddingCache", "cosine_logits"]
