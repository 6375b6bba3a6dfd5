"""Shared fixtures. Tests never touch the network: HF_HUB_OFFLINE is set before anything imports
transformers, and every cache lives under pytest's tmp_path."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    """A private feature-store/cache root for one test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("DRIFTLESS_CACHE", str(path))
    return path


@pytest.fixture(scope="session")
def tiny_backbone():
    from driftless.backbones import tiny_random_clip

    return tiny_random_clip(seed=0)
