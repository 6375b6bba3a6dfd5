"""The feature store: each image encoded once per backbone and transform, memory-mapped from disk."""

from driftless.features.store import FeatureStore, StoreStats

__all__ = ["FeatureStore", "StoreStats"]
