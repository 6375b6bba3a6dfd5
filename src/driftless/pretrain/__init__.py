"""Recipes that pretrain models shipped with driftless (the tiny CLIP of the embedded default)."""
