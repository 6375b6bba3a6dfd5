"""TEEN: its calibration formula against a hand computation, NCM as its α = 0 case, base classes
left alone, state round-trips, and the paper's defaults."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from driftless.methods import build_method
from driftless.methods.parts.text_classifier import cosine_logits
from driftless.methods.teen import TEENConfig, calibrate_prototypes
from toy_tasks import feature_context, feature_tasks, synthetic_label_space

DIM, NUM_CLASSES, SCALE = 4, 6, 10.0


def _data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 2.0, size=(NUM_CLASSES, DIM)) + 1.0
    labels = np.repeat(np.arange(NUM_CLASSES), 5)
    features = centres[labels] + rng.normal(0.0, 0.5, size=(len(labels), DIM))
    return torch.tensor(features, dtype=torch.float32), torch.tensor(labels)


def _learn(name: str, config: dict, split) -> object:
    features, labels = _data()
    method = build_method(name, config)
    for t, data in enumerate(feature_tasks(features, labels, split)):
        method.learn(data, feature_context(t, num_classes=NUM_CLASSES, dim=DIM, logit_scale=SCALE))
    return method


def test_calibration_by_hand():
    new = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    base = torch.tensor([[0.0, 2.0], [1.0, 1.0]], dtype=torch.float64)  # unnormalized on purpose
    # cos(new, base) = (0, 1/√2); weights = softmax(τ·cos) with τ = 2: (1, e^{√2}) / (1 + e^{√2})
    w1 = math.exp(math.sqrt(2)) / (1 + math.exp(math.sqrt(2)))
    mixture = torch.tensor([w1 / math.sqrt(2), (1 - w1) + w1 / math.sqrt(2)], dtype=torch.float64)
    delta = mixture / mixture.norm()
    expected = 0.75 * torch.tensor([1.0, 0.0], dtype=torch.float64) + 0.25 * delta
    got = calibrate_prototypes(new, base, temperature=2.0, shift_weight=0.25)
    torch.testing.assert_close(got[0], expected)


def test_paper_defaults():
    config = TEENConfig()
    assert (config.temperature, config.shift_weight) == (16.0, 0.5)


def test_alpha_zero_is_ncm_and_base_prototypes_never_move():
    split = [[0, 1, 2], [3, 4], [5]]
    features, _ = _data()
    everything = synthetic_label_space(range(NUM_CLASSES))
    ctx = feature_context(0, num_classes=NUM_CLASSES, dim=DIM, logit_scale=SCALE)
    ncm = _learn("ncm", {}, split)
    plain = _learn("teen", {"shift_weight": 0.0}, split)
    torch.testing.assert_close(
        plain.logits(features, everything, ctx), ncm.logits(features, everything, ctx)
    )
    teen = _learn("teen", {"shift_weight": 0.5}, split)
    assert teen.base_classes_ == [0, 1, 2]
    base = synthetic_label_space([0, 1, 2])
    torch.testing.assert_close(teen.logits(features, base, ctx), ncm.logits(features, base, ctx))
    moved = teen.prototypes([3, 4, 5])
    unmoved = F.normalize(ncm.class_means_.means([3, 4, 5]), dim=-1)
    assert (moved - unmoved).norm(dim=1).min() > 1e-3


def test_state_round_trip_and_untrained_classes_are_zero_shot():
    teen = _learn("teen", {}, [[0, 1, 2], [3, 4]])
    buffer = io.BytesIO()
    torch.save(teen.state_dict(), buffer)
    buffer.seek(0)
    restored = build_method("teen", {})
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    features, _ = _data()
    ctx = feature_context(0, num_classes=NUM_CLASSES, dim=DIM, logit_scale=SCALE)
    everything = synthetic_label_space(range(NUM_CLASSES))
    assert torch.equal(
        teen.logits(features, everything, ctx), restored.logits(features, everything, ctx)
    )
    unseen = synthetic_label_space([5])
    zero_shot = cosine_logits(features, ctx.text_embeddings(unseen), SCALE)
    assert torch.equal(restored.logits(features, unseen, ctx), zero_shot)


@pytest.mark.parametrize("bad", [{"shift_weight": 1.5}, {"temperature": 0}, {"tau": 16}])
def test_config_errors(bad):
    from driftless.errors import ConfigError

    with pytest.raises(ConfigError):
        build_method("teen", bad)
