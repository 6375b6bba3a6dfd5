"""CalFuse: the fusion math (QR, SVD, average), Gaussian replay sampling, the method's state and
switches on small synthetic tasks, and the world-cil criteria in one engine run."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from driftless.config import apply_overrides, build_run_config
from driftless.engine import run
from driftless.errors import ConfigError
from driftless.methods import build_method
from driftless.methods.base import Context, TaskData
from driftless.methods.parts.fusion import (
    average_fuse,
    fusion_mask,
    masked_merge,
    qr_fuse,
    svd_fuse,
)
from driftless.methods.parts.gaussian_replay import (
    cholesky_factor,
    class_gaussians,
    sample_gaussians,
)
from driftless.methods.parts.gaussian_stats import GaussianClassStats
from driftless.report import build_results
from toy_tasks import feature_context, feature_tasks, synthetic_label_space


def _matrix(rows: int, cols: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(rows, cols, generator=generator, dtype=torch.float64)


def _near_identity(dim: int, seed: int, spread: float = 0.3) -> torch.Tensor:
    """A well-conditioned square matrix, like an adapter after a few tasks."""
    return torch.eye(dim, dtype=torch.float64) + spread * _matrix(dim, dim, seed)


FUSE_WITH_MASK = [qr_fuse, svd_fuse]


# --- fusion math --------------------------------------------------------------------------------


@pytest.mark.parametrize("fuse", [*FUSE_WITH_MASK, average_fuse])
@pytest.mark.parametrize("shape", [(9, 9), (12, 5)])
def test_identical_old_and_new_weights_fuse_to_themselves(fuse, shape):
    old = _matrix(*shape, seed=1)
    fused = fuse(old, old.clone(), 0.6)
    torch.testing.assert_close(fused, old, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fuse", FUSE_WITH_MASK)
@pytest.mark.parametrize("bias", [1.0, 1.7])
def test_bias_of_one_or_more_gives_the_new_weights(fuse, bias):
    old, new = _near_identity(10, seed=2), _near_identity(10, seed=3)
    torch.testing.assert_close(fuse(old, new, bias), new, rtol=0, atol=1e-12)


def test_average_fusion_interpolates():
    old, new = _matrix(6, 6, seed=4), _matrix(6, 6, seed=5)
    torch.testing.assert_close(average_fuse(old, new, 0.0), old, rtol=0, atol=0)
    torch.testing.assert_close(average_fuse(old, new, 1.0), new, rtol=0, atol=0)
    torch.testing.assert_close(average_fuse(old, new, 0.25), 0.75 * old + 0.25 * new)


@pytest.mark.parametrize("bias", [0.0, 0.3, 0.6, 1.0])
def test_qr_fusion_stays_in_the_column_space_of_the_old_weights(bias):
    """The span, precisely: with W_old (m × n, m > n, full column rank) = Q R, the fused matrix is
    Q C for some C, so its columns lie in span(Q) = the column space of W_old, and in that basis
    C = R + M ⊙ (P − R), P = Qᵀ W_new, M ∈ [min(b, 1), 1] entry by entry: each coordinate lies on
    the segment from the old to the new coordinate. What W_new has outside span(W_old) is dropped,
    so b ≥ 1 gives its projection Q Qᵀ W_new (for a square invertible W_old, span(W_old) = R^D
    and b ≥ 1 gives W_new itself: test above)."""
    old, new = _matrix(12, 5, seed=6), _matrix(12, 5, seed=7)
    fused = qr_fuse(old, new, bias)
    projector = old @ torch.linalg.pinv(old)  # orthogonal projector onto the columns of W_old
    outside = fused - projector @ fused
    assert float(outside.norm()) < 1e-12 * float(fused.norm())
    assert float((new - projector @ new).norm()) > 0.5  # W_new itself does leave that space
    q, r = torch.linalg.qr(old)
    coords, new_coords = q.T @ fused, q.T @ new
    mask = fusion_mask(r, new_coords, bias)
    assert float(mask.min()) >= min(bias, 1.0) - 1e-12 and float(mask.max()) <= 1.0
    torch.testing.assert_close(coords, r + mask * (new_coords - r), rtol=0, atol=1e-12)
    low, high = torch.minimum(r, new_coords), torch.maximum(r, new_coords)
    assert bool(((coords >= low - 1e-12) & (coords <= high + 1e-12)).all())
    if bias >= 1.0:
        torch.testing.assert_close(fused, projector @ new, rtol=0, atol=1e-12)
    # the update is the new update, projected and damped in the basis Q
    torch.testing.assert_close(fused - old, q @ (mask * (q.T @ (new - old))), rtol=0, atol=1e-12)


def test_qr_fusion_moves_most_where_the_new_task_moved_most():
    """With b = 0 the mask is D / max(D): the coordinate that moved most takes its new value, an
    unmoved one keeps its old value, the others move in proportion."""
    old = _near_identity(6, seed=8)
    q, r = torch.linalg.qr(old)
    shift = torch.zeros(6, 6, dtype=torch.float64)
    shift[1, 4], shift[3, 0] = 2.0, 0.5
    fused_coords = q.T @ qr_fuse(old, q @ (r + shift), bias=0.0)
    expected = r.clone()
    expected[1, 4] += 2.0  # mask 1
    expected[3, 0] += 0.5 * 0.25  # mask 0.5 / 2
    torch.testing.assert_close(fused_coords, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fuse", FUSE_WITH_MASK)
def test_fusion_is_deterministic_and_keeps_the_dtype(fuse):
    old, new = _near_identity(16, seed=9).float(), _near_identity(16, seed=10).float()
    first, second = fuse(old, new, 0.6), fuse(old.clone(), new.clone(), 0.6)
    assert first.dtype == torch.float32
    assert torch.equal(first, second)


def test_mask_ignores_the_signs_of_the_basis():
    """Flipping basis vectors flips the matching rows of both coordinate matrices: same mask."""
    old, new = _near_identity(7, seed=11), _near_identity(7, seed=12)
    q, r = torch.linalg.qr(old)
    signs = torch.tensor([1.0, -1.0, 1.0, -1.0, -1.0, 1.0, 1.0], dtype=torch.float64)
    flipped_q, flipped_r = q * signs, signs[:, None] * r
    fused = q @ masked_merge(r, q.T @ new, 0.4)
    fused_flipped = flipped_q @ masked_merge(flipped_r, flipped_q.T @ new, 0.4)
    torch.testing.assert_close(fused, fused_flipped, rtol=0, atol=1e-12)
    torch.testing.assert_close(qr_fuse(old, new, 0.4), fused, rtol=0, atol=1e-12)


def test_svd_fusion_uses_the_singular_basis():
    old, new = _near_identity(8, seed=13), _near_identity(8, seed=14)
    u, s, vt = torch.linalg.svd(old)
    old_coords, new_coords = s[:, None] * vt, u.T @ new
    mask = fusion_mask(old_coords, new_coords, 0.6)
    expected = u @ (new_coords * mask + old_coords * (1 - mask))
    torch.testing.assert_close(svd_fuse(old, new, 0.6), expected, rtol=0, atol=1e-12)


def test_fusion_rejects_mismatched_or_wide_matrices():
    with pytest.raises(ValueError):
        qr_fuse(_matrix(4, 4, 0), _matrix(4, 5, 0))
    with pytest.raises(ValueError):
        svd_fuse(_matrix(3, 6, 0), _matrix(3, 6, 1))


# --- Gaussian replay ----------------------------------------------------------------------------


def _gaussian_data(per_class: int = 400, dim: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    means = rng.normal(0, 3, size=(3, dim))
    mixing = rng.normal(0, 1, size=(3, dim, dim))
    features = [means[c] + rng.normal(size=(per_class, dim)) @ mixing[c] for c in range(3)]
    labels = np.repeat([10, 20, 30], per_class)
    return torch.tensor(np.concatenate(features)), torch.tensor(labels)


@pytest.mark.parametrize("covariance", ["class", "shared"])
def test_replay_samples_have_the_stored_mean_and_covariance(covariance):
    features, labels = _gaussian_data()
    stats = GaussianClassStats(per_class_scatter=True)
    stats.update(features, labels)
    epsilon = 0.05
    means, factors = class_gaussians(stats, [30, 10], epsilon, covariance)
    draws, owners = sample_gaussians(
        means, factors, 20000, torch.Generator().manual_seed(0), dtype=torch.float64
    )
    assert draws.shape == (40000, 5) and owners.tolist() == [0] * 20000 + [1] * 20000
    for index, class_id in enumerate([30, 10]):
        rows = draws[owners == index]
        stored = (
            stats.class_covariance(class_id) if covariance == "class" else stats.pooled_covariance()
        )
        target = stored + epsilon * torch.eye(5, dtype=torch.float64)
        scale = float(target.diagonal().max().sqrt())
        assert float((rows.mean(0) - stats.means([class_id])[0]).abs().max()) < 0.05 * scale
        assert _relative(torch.cov(rows.T), target) < 0.05


def test_replay_sampling_is_deterministic_given_the_generator():
    features, labels = _gaussian_data(per_class=30)
    stats = GaussianClassStats(per_class_scatter=True)
    stats.update(features, labels)
    means, factors = class_gaussians(stats, [10, 20, 30], 0.01)
    first = sample_gaussians(means, factors, 7, torch.Generator().manual_seed(3))[0]
    second = sample_gaussians(means, factors, 7, torch.Generator().manual_seed(3))[0]
    third = sample_gaussians(means, factors, 7, torch.Generator().manual_seed(4))[0]
    assert torch.equal(first, second) and not torch.equal(first, third)


def test_cholesky_factor_of_a_singular_covariance():
    rows = _matrix(3, 6, seed=15)  # 3 samples in 6 dimensions: rank-2 covariance
    covariance = torch.cov(rows.T)
    factor = cholesky_factor(covariance, 1e-3)
    torch.testing.assert_close(factor @ factor.T, covariance + 1e-3 * torch.eye(6).double())


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


# --- the method on small synthetic tasks --------------------------------------------------------

DIM, NUM_CLASSES, LOGIT_SCALE = 8, 6, 20.0
SMALL = {"steps": 20, "calibration_steps": 10, "calibration_per_class": 8, "lr": 0.01}


def _context(seed: int = 0) -> Context:
    return feature_context(seed, num_classes=NUM_CLASSES, dim=DIM, logit_scale=LOGIT_SCALE)


def _tasks(split=((0, 1), (2, 3), (4, 5)), per_class: int = 10) -> list[TaskData]:
    rng = np.random.default_rng(0)
    centres = rng.normal(0.0, 2.0, size=(NUM_CLASSES, DIM))
    labels = np.repeat(np.arange(NUM_CLASSES), per_class)
    features = torch.tensor(
        centres[labels] + rng.normal(0, 1, size=(len(labels), DIM)), dtype=torch.float32
    )
    return feature_tasks(features, torch.tensor(labels), split)


def _probe() -> torch.Tensor:
    return torch.randn(15, DIM, generator=torch.Generator().manual_seed(5))


def _learned(config: dict, tasks: list[TaskData]):
    method = build_method("calfuse", config)
    for t, data in enumerate(tasks):
        method.learn(data, _context(t))
    return method


def test_untrained_calfuse_is_zero_shot():
    method = build_method("calfuse", SMALL)
    zero_shot = build_method("zero-shot", {})
    space = synthetic_label_space(range(NUM_CLASSES))
    ctx = _context()
    torch.testing.assert_close(
        method.logits(_probe(), space, ctx), zero_shot.logits(_probe(), space, ctx)
    )


def test_state_dict_round_trip_gives_identical_logits_and_training():
    tasks = _tasks()
    method = _learned(SMALL, tasks[:2])
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    restored = build_method("calfuse", SMALL)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    space = synthetic_label_space(range(NUM_CLASSES))  # learned and never-learned classes
    assert torch.equal(
        method.logits(_probe(), space, _context()), restored.logits(_probe(), space, _context())
    )
    method.learn(tasks[2], _context(2))
    restored.learn(tasks[2], _context(2))
    assert torch.equal(
        method.logits(_probe(), space, _context()), restored.logits(_probe(), space, _context())
    )


def test_calfuse_is_deterministic_given_the_generators():
    tasks = _tasks()
    space = synthetic_label_space(range(NUM_CLASSES))
    first = _learned(SMALL, tasks).logits(_probe(), space, _context())
    second = _learned(SMALL, tasks).logits(_probe(), space, _context())
    assert torch.equal(first, second)


SWITCHES = [
    {"calibration": "scalar-per-task"},
    {"calibration": "off"},
    {"fusion": "svd"},
    {"fusion": "none"},
    {"fusion": "average"},
    {"replay": "none"},
    {"distillation": False},
    {"replay_covariance": "shared"},
    {"batch_size": 7, "fuse_first_task": False},
    {"calibration_data": "holdout"},
    {"train_share": "calibrated"},
]


@pytest.mark.parametrize("switch", SWITCHES)
def test_every_switch_trains_and_learns_the_tasks(switch):
    tasks = _tasks()
    method = _learned({**SMALL, "steps": 60, **switch}, tasks)
    features = torch.cat([d.features for d in tasks])
    labels = torch.cat([d.labels for d in tasks])
    logits = method.logits(features, synthetic_label_space(range(NUM_CLASSES)), _context())
    accuracy = float((logits.argmax(1) == labels).float().mean())
    assert accuracy > 2.0 / NUM_CLASSES
    if switch.get("calibration") == "off":
        assert method.bias_ == SMALL.get("calibration_bias", -3.0) and method.slope_ == 0.0
    if switch.get("calibration") == "scalar-per-task":
        assert method.slope_ == 0.0


def test_fusion_none_keeps_the_trained_adapter_and_qr_damps_it():
    tasks = _tasks()[:1]
    plain = _learned({**SMALL, "fusion": "none"}, tasks).adapter_
    fused = _learned({**SMALL, "fusion": "qr", "fusion_bias": 0.6}, tasks).adapter_
    identity = torch.eye(DIM)
    # after the first task W_old = I, so QR fusion is the entrywise mask on W_new − I
    delta = plain - identity
    mask = torch.clamp(delta.abs() / delta.abs().max() + 0.6, max=1.0)
    torch.testing.assert_close(fused, identity + mask * delta, rtol=0, atol=1e-6)


def test_calibration_off_is_the_adapted_feature_and_scalar_is_constant():
    tasks = _tasks()[:1]
    off = _learned({**SMALL, "calibration": "off"}, tasks)
    features = _probe()
    adapted = F.normalize(F.normalize(features, dim=-1) @ off.adapter_.T, dim=-1)
    torch.testing.assert_close(off.features(features, LOGIT_SCALE), adapted)
    scalar = _learned({**SMALL, "calibration": "scalar-per-task"}, tasks)
    original = F.normalize(features, dim=-1)
    adapted = F.normalize(original @ scalar.adapter_.T, dim=-1)
    texts = scalar.seen_texts_
    share = scalar.original_share(original, adapted, texts, LOGIT_SCALE, 0.0, scalar.bias_)
    assert torch.allclose(share, share[0].expand_as(share))


def test_config_switches_parse_from_the_command_line_and_bad_values_fail():
    data = apply_overrides(
        {"methods": ["calfuse"]},
        ["calfuse.calibration=off", "calfuse.distillation=off", "calfuse.fusion=none",
         "calfuse.replay=none"],
    )  # fmt: skip
    config = build_run_config(data).method_config["calfuse"]
    method = build_method("calfuse", config)
    assert method.config.calibration == "off" and method.config.distillation is False
    assert method.config.fusion == "none" and method.config.replay == "none"
    with pytest.raises(ConfigError, match=r"calfuse\.fusion"):
        build_method("calfuse", {"fusion": "lerp"})
    with pytest.raises(ConfigError, match=r"calfuse\.nonsense"):
        build_method("calfuse", {"nonsense": 1})


# --- world-cil ------------------------------------------------------------------------------------


def test_calfuse_beats_the_feature_baselines_on_world_cil(tmp_path, cache_dir):
    """The issue's criteria, against baselines computed in the same run: CalFuse beats zero-shot,
    NCM and the linear probe on Avg and Last, forgets less than the linear probe, and its Last is
    at least 3 points above the best of the three."""
    baselines = ["zero-shot", "ncm", "linear-probe"]
    config = build_run_config(
        {"benchmark": "world-cil", "backbone": "tiny-clip", "methods": [*baselines, "calfuse"],
         "out": tmp_path / "run", "cache_dir": cache_dir, "seed": 0, "num_workers": 0}
    )  # fmt: skip
    metrics = {
        name: values["metrics"]
        for name, values in build_results(run(config, progress=False))["methods"].items()
    }
    calfuse = metrics["calfuse"]
    for name in baselines:
        assert calfuse["avg"] > metrics[name]["avg"], (name, metrics)
        assert calfuse["last"] > metrics[name]["last"], (name, metrics)
    assert calfuse["forgetting"] < metrics["linear-probe"]["forgetting"], metrics
    assert calfuse["last"] >= max(metrics[name]["last"] for name in baselines) + 3.0, metrics


# --- the mechanisms: each test fails when its mechanism breaks ----------------------------------


def test_the_more_confident_feature_gets_the_larger_share():
    """Dynamic calibration: λ = σ(a (m_orig − m_adapt) + b) grows with the original feature's
    confidence relative to the adapted one's (a > 0), and equals σ(b) when they are equally sure."""
    method = build_method("calfuse", {})
    texts = torch.eye(3)
    sure = F.normalize(torch.tensor([[1.0, 0.05, 0.0]]), dim=-1)  # close to class 0
    unsure = F.normalize(torch.tensor([[1.0, 1.0, 1.0]]), dim=-1)  # equally far from all
    scale, slope, bias = 10.0, 5.0, 0.2
    original_sure = method.original_share(sure, unsure, texts, scale, slope, bias)
    adapted_sure = method.original_share(unsure, sure, texts, scale, slope, bias)
    level = method.original_share(sure, sure, texts, scale, slope, bias)
    confident = torch.softmax(scale * sure @ texts.T, dim=1).amax()
    gap = float(confident - 1.0 / 3.0)  # m_orig − m_adapt of the first call
    torch.testing.assert_close(original_sure, torch.sigmoid(torch.tensor([[slope * gap + bias]])))
    torch.testing.assert_close(adapted_sure, torch.sigmoid(torch.tensor([[-slope * gap + bias]])))
    torch.testing.assert_close(level, torch.sigmoid(torch.tensor([[bias]])))
    assert float(original_sure) > float(level) > float(adapted_sure)


def test_features_mix_the_original_and_adapted_feature_by_the_share():
    """h = normalize(λ f̂ + (1 − λ) ĝ) with the learned (a, b) and W, after two tasks."""
    method = _learned(SMALL, _tasks()[:2])
    features = _probe()
    original = F.normalize(features, dim=-1)
    adapted = F.normalize(original @ method.adapter_.T, dim=-1)
    share = method.original_share(
        original, adapted, method.seen_texts_, LOGIT_SCALE, method.slope_, method.bias_
    )
    assert float(share.std()) > 0  # per sample, not one value
    expected = F.normalize(share * original + (1 - share) * adapted, dim=-1)
    torch.testing.assert_close(method.features(features, LOGIT_SCALE), expected)


def test_fusion_runs_after_every_task_with_the_previous_adapter_as_old():
    """After task 2 the kept matrix is qr_fuse(W after task 1, W trained on task 2)."""
    tasks = _tasks()
    method = _learned(SMALL, tasks[:1])
    kept = method.adapter_.clone()
    trained = {}
    original = method._fuse

    def spy(previous, new, first):
        trained["previous"], trained["new"] = previous.clone(), new.clone()
        return original(previous, new, first)

    method._fuse = spy
    method.learn(tasks[1], _context(1))
    torch.testing.assert_close(trained["previous"], kept)
    expected = qr_fuse(kept, trained["new"], SMALL.get("fusion_bias", 0.6))
    torch.testing.assert_close(method.adapter_, expected)
    assert _relative(method.adapter_, trained["new"]) > 1e-4  # fusion changed something


def test_holdout_calibration_sets_aside_a_share_of_every_class():
    """``calibration_data = holdout``: per class, round(share · n) samples (at least one, never
    all) are set aside, disjoint from the rows W trains on, and together they cover the task."""
    method = build_method("calfuse", {"calibration_data": "holdout", "calibration_holdout": 0.3})
    targets = torch.tensor([0] * 10 + [1] * 4 + [2] * 2)
    kept, held = method._holdout_split(targets, torch.Generator().manual_seed(0))
    assert sorted(kept.tolist() + held.tolist()) == list(range(len(targets)))
    assert torch.bincount(targets[held]).tolist() == [3, 1, 1]
    assert torch.bincount(targets[kept]).tolist() == [7, 3, 1]


def test_holdout_calibration_fits_the_share_on_the_held_out_features():
    """The share is refined on the held-out real features: W never trained on them, so (a, b)
    end elsewhere than when they are fitted on the replayed Gaussians; and W itself is trained
    on the kept rows only (it differs from W trained on all of them)."""
    tasks = _tasks()[:2]
    replay = _learned(SMALL, tasks)
    holdout = _learned({**SMALL, "calibration_data": "holdout"}, tasks)
    assert (holdout.slope_, holdout.bias_) != (replay.slope_, replay.bias_)
    assert _relative(holdout.adapter_, replay.adapter_) > 1e-4


def test_adapted_training_is_the_uncalibrated_adapter_plus_a_calibration():
    """``train_share = adapted`` (the default): W trains through ĝ alone, so every W equals the
    one ``calibration = off`` trains (same draws, same teacher); only the share then mixes in the
    original feature. ``calibrated`` trains W through the mix, a different W."""
    tasks = _tasks()
    off = _learned({**SMALL, "calibration": "off"}, tasks)
    adapted = _learned({**SMALL, "train_share": "adapted"}, tasks)
    torch.testing.assert_close(adapted.adapter_, off.adapter_, rtol=0, atol=1e-5)
    features = _probe()
    assert (
        _relative(adapted.features(features, LOGIT_SCALE), off.features(features, LOGIT_SCALE))
        > 1e-3
    )
    calibrated = _learned({**SMALL, "train_share": "calibrated"}, tasks)
    assert _relative(calibrated.adapter_, off.adapter_) > 1e-4


def test_defaults_mix_the_off_adapter_with_the_original_by_a_fixed_share():
    """The default calibration: W is the ``calibration = off`` adapter, (a, b) stay at their
    starting values (5, −3) through every task (no refinement), and h mixes f̂ into ĝ by
    λ = σ(5 · gap − 3): under 0.05 where the original is no more confident than the adapted."""
    tasks = _tasks()
    default = _learned({"steps": 20, "lr": 0.01}, tasks)
    off = _learned({"steps": 20, "lr": 0.01, "calibration": "off"}, tasks)
    assert (default.slope_, default.bias_) == (5.0, -3.0)
    torch.testing.assert_close(default.adapter_, off.adapter_, rtol=0, atol=1e-5)
    original = F.normalize(_probe(), dim=-1)
    adapted = F.normalize(original @ default.adapter_.T, dim=-1)
    share = default.original_share(original, adapted, default.seen_texts_, LOGIT_SCALE, 5.0, -3.0)
    confident = torch.softmax(LOGIT_SCALE * original @ default.seen_texts_.T, dim=1).amax(1)
    adapted_confident = torch.softmax(LOGIT_SCALE * adapted @ default.seen_texts_.T, 1).amax(1)
    gap = confident - adapted_confident
    torch.testing.assert_close(share[:, 0], torch.sigmoid(5.0 * gap - 3.0))
    assert bool((share[gap <= 0] < 0.05).all())
    expected = F.normalize(share * original + (1 - share) * adapted, dim=-1)
    torch.testing.assert_close(default.features(_probe(), LOGIT_SCALE), expected)


def test_scored_share_takes_the_confidences_over_the_label_space_being_scored():
    """``share_classes = scored``: m_orig and m_adapt are taken over the scored label space's
    classes (on a multi-domain benchmark, the dataset's own), not over every learned class."""
    tasks = _tasks()[:2]
    learned = _learned({"steps": 20, "lr": 0.01}, tasks)
    scored = _learned({"steps": 20, "lr": 0.01, "share_classes": "scored"}, tasks)
    torch.testing.assert_close(scored.adapter_, learned.adapter_, rtol=0, atol=0)
    space = synthetic_label_space([4, 5])  # classes never learned: their own confidences
    ctx = _context()
    texts = ctx.text_embeddings(space).float()
    expected = LOGIT_SCALE * scored.features(_probe(), LOGIT_SCALE, texts) @ texts.T
    torch.testing.assert_close(scored.logits(_probe(), space, ctx), expected)
    assert (
        _relative(scored.logits(_probe(), space, ctx), learned.logits(_probe(), space, ctx)) > 1e-4
    )


def test_refit_keeps_the_held_out_share_and_trains_w_again_on_every_sample():
    """``calibration_refit``: (a, b) are those fitted on the held-out rows (as without refit), and
    W is trained again afterwards, so it is not the matrix the share was fitted with."""
    tasks = _tasks()[:1]
    config = {**SMALL, "calibration_data": "holdout", "train_share": "adapted"}
    once = _learned(config, tasks)
    refit = _learned({**config, "calibration_refit": True}, tasks)
    assert (refit.slope_, refit.bias_) == (once.slope_, once.bias_)
    assert _relative(refit.adapter_, once.adapter_) > 1e-4
