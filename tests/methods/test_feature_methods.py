"""The closed-form and feature baselines (lda, ranpac, acil, fecam, linear-probe; ncm alongside):
exactness against their joint (all data at once) solutions, invariance to task split and batch order,
state round-trips, config errors, untrained classes, and one small end-to-end run."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from driftless.errors import ConfigError
from driftless.methods import build_method
from driftless.methods.base import Context, TaskData
from driftless.methods.parts.gaussian_stats import GaussianClassStats
from driftless.methods.parts.random_features import RandomReLUFeatures
from driftless.methods.parts.ridge import RecursiveRidge, RidgePath, RidgeStatistics
from driftless.methods.parts.text_classifier import cosine_logits
from toy_tasks import feature_context, feature_tasks, synthetic_label_space

DIM = 6
NUM_CLASSES = 6
LOGIT_SCALE = 10.0
SMALL = {  # method configs small enough for unit tests
    "ncm": {},
    "lda": {},
    "ranpac": {"num_features": 40, "chunk_size": 7},
    "acil": {"buffer_size": 40, "batch_size": 5},
    "fecam": {},
    "linear-probe": {"epochs": 3, "lr": 0.05, "batch_size": 8},
}
CLOSED_FORM = ["ncm", "lda", "ranpac", "acil", "fecam"]


def _context(seed: int = 0) -> Context:
    return feature_context(seed, num_classes=NUM_CLASSES, dim=DIM, logit_scale=LOGIT_SCALE)


def _dataset(seed: int = 0, per_class: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian blobs: features (N, DIM) float32 around class-specific centres, labels (N,)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 2.0, size=(NUM_CLASSES, DIM)) + 1.0
    labels = np.repeat(np.arange(NUM_CLASSES), per_class)
    features = centres[labels] + rng.normal(0.0, 1.0, size=(len(labels), DIM))
    return torch.tensor(features, dtype=torch.float32), torch.tensor(labels)


def _learn(name: str, tasks: list[TaskData], config: dict | None = None, seed: int = 0):
    method = build_method(name, config if config is not None else SMALL[name])
    for t, data in enumerate(tasks):
        method.learn(data, _context(seed + t))
    return method


def _relative(a, b) -> float:
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float((a - b).norm() / b.norm())


SPLITS = [
    [[0, 1, 2, 3, 4, 5]],
    [[0, 1], [2, 3], [4, 5]],
    [[3], [0, 5, 1], [4], [2]],
]


# --- acil: recursive = joint ridge --------------------------------------------------------------


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_acil_equals_joint_ridge_after_every_task(split, batch_size):
    features, labels = _dataset()
    config = {"buffer_size": 40, "batch_size": batch_size, "gamma": 0.1}
    method = build_method("acil", config)
    seen_rows = []
    for t, data in enumerate(feature_tasks(features, labels, split)):
        method.learn(data, _context(t))
        seen_rows.append(data)
        x = method.buffer_(torch.cat([d.features for d in seen_rows]))
        column = {c: i for i, c in enumerate(method.class_ids_)}
        columns = torch.tensor([column[int(c)] for c in torch.cat([d.labels for d in seen_rows])])
        y = F.one_hot(columns, len(column)).to(torch.float64)
        system = x.T @ x + 0.1 * torch.eye(x.shape[1], dtype=torch.float64)
        joint = torch.linalg.solve(system, x.T @ y)
        assert _relative(method.ridge_.weights, joint) < 1e-6
        assert _relative(method.ridge_.inverse_gram, torch.linalg.inv(system)) < 1e-6


def test_recursive_ridge_matches_joint_with_growing_targets():
    rng = np.random.default_rng(3)
    x = torch.tensor(rng.normal(size=(50, 9)))
    y = torch.tensor(rng.normal(size=(50, 4)))
    ridge = RecursiveRidge(9, gamma=0.5)
    ridge.grow_targets(2)
    ridge.update(x[:20], torch.cat([y[:20, :2], torch.zeros(20, 0, dtype=torch.float64)], 1))
    ridge.grow_targets(4)  # two new target columns, zero on the first 20 rows
    y_all = y.clone()
    y_all[:20, 2:] = 0
    ridge.update(x[20:], y_all[20:])
    joint = torch.linalg.solve(x.T @ x + 0.5 * torch.eye(9, dtype=torch.float64), x.T @ y_all)
    assert _relative(ridge.weights, joint) < 1e-10


# --- lda, ncm: incremental = joint --------------------------------------------------------------


@pytest.mark.parametrize("covariance", ["total", "pooled"])
def test_lda_equals_its_joint_version_and_the_direct_formula(covariance):
    features, labels = _dataset()
    config = {"covariance": covariance, "shrinkage": 0.5}
    incremental = _learn("lda", feature_tasks(features, labels, SPLITS[2]), config)
    joint = _learn("lda", feature_tasks(features, labels, SPLITS[0]), config)
    ids, weights, bias = incremental.head()
    joint_ids, joint_weights, joint_bias = joint.head()
    assert ids == joint_ids == list(range(NUM_CLASSES))
    assert _relative(weights, joint_weights) < 1e-10 and _relative(bias, joint_bias) < 1e-10
    # the textbook formulas on all the data at once
    f = features.double()
    means = torch.stack([f[labels == c].mean(0) for c in ids])
    if covariance == "total":
        sigma = torch.cov(f.T)
    else:
        centred = f - means[labels]
        sigma = centred.T @ centred / (len(f) - NUM_CLASSES)
    sigma = sigma + 0.5 * torch.eye(DIM, dtype=torch.float64)
    direct = torch.linalg.solve(sigma, means.T)
    assert _relative(weights, direct) < 1e-10
    assert _relative(bias, -0.5 * (means.T * direct).sum(0)) < 1e-10


def test_ncm_equals_its_joint_version():
    features, labels = _dataset()
    incremental = _learn("ncm", feature_tasks(features, labels, SPLITS[2]))
    joint = _learn("ncm", feature_tasks(features, labels, SPLITS[0]))
    ids = list(range(NUM_CLASSES))
    means = torch.stack([features[labels == c].double().mean(0) for c in ids])
    assert _relative(incremental.class_means_.means(ids), joint.class_means_.means(ids)) < 1e-12
    assert _relative(incremental.class_means_.means(ids), means) < 1e-12


def test_gaussian_stats_covariances_match_direct_computation():
    features, labels = _dataset(seed=5)
    stats = GaussianClassStats(per_class_scatter=True)
    for chunk in torch.randperm(len(labels), generator=torch.Generator().manual_seed(0)).split(5):
        stats.update(features[chunk], labels[chunk])
    f = features.double()
    assert _relative(stats.total_covariance(), torch.cov(f.T)) < 1e-10
    pooled = sum((labels == c).sum() - 1 for c in range(NUM_CLASSES))
    within = sum(
        torch.cov(f[labels == c].T) * ((labels == c).sum() - 1) for c in range(NUM_CLASSES)
    )
    assert _relative(stats.pooled_covariance(), within / pooled) < 1e-10
    for c in range(NUM_CLASSES):
        assert _relative(stats.class_covariance(c), torch.cov(f[labels == c].T)) < 1e-10


# --- ranpac: W is the ridge solution for the chosen λ -------------------------------------------


def test_ranpac_weights_equal_a_direct_solve_for_the_chosen_lambda():
    features, labels = _dataset(per_class=20)
    method = _learn("ranpac", feature_tasks(features, labels, SPLITS[1]))
    state = method.state_dict()
    gram, targets = state["stats"]["gram"], state["stats"]["targets"]
    # G and C are the sums over every expanded training row
    h = method.projection_(features)
    column = {c: i for i, c in enumerate(method.class_ids_)}
    y = F.one_hot(torch.tensor([column[int(c)] for c in labels]), NUM_CLASSES).double()
    assert _relative(gram, h.T @ h) < 1e-10 and _relative(targets, h.T @ y) < 1e-10
    lam = method.ridge_lambda_
    assert lam in method.config.ridge_lambdas and len(method.chosen_lambdas_) == 3
    direct = torch.linalg.solve(gram + lam * torch.eye(len(gram), dtype=torch.float64), targets)
    assert _relative(state["weights"], direct) < 1e-8


def test_ranpac_picks_the_lambda_a_brute_force_search_picks():
    features, labels = _dataset(per_class=20)
    (data,) = feature_tasks(features, labels, SPLITS[0])
    config = {"num_features": 40, "ridge_lambdas": [1e-3, 1e-1, 1e1, 1e3]}
    method = build_method("ranpac", config)
    method.learn(data, _context(7))
    # replay the method's draws from the same seed: W_rand, then the 80/20 permutation
    generator = torch.Generator().manual_seed(7)
    weight = torch.randn(DIM, 40, generator=generator, dtype=torch.float64)
    order = torch.randperm(len(labels), generator=generator)
    held_out, fit = order[: int(len(labels) * 0.2)], order[int(len(labels) * 0.2) :]
    h = torch.relu(data.features.double() @ weight)
    y = F.one_hot(data.labels, NUM_CLASSES).double()
    results = []
    for lam in config["ridge_lambdas"]:
        system = h[fit].T @ h[fit] + lam * torch.eye(40, dtype=torch.float64)
        scores = h[held_out] @ torch.linalg.solve(system, h[fit].T @ y[fit])
        correct = int((scores.argmax(1) == data.labels[held_out]).sum())
        error = float(((scores - y[held_out]) ** 2).sum())
        results.append((-correct, error, -lam))
    assert method.ridge_lambda_ == -min(results)[2]


def test_ridge_path_equals_direct_solves():
    rng = np.random.default_rng(1)
    h = rng.normal(size=(80, 30))
    targets = h.T @ rng.normal(size=(80, 3))
    stats = RidgeStatistics(30, 3)
    for start in range(0, 80, 11):
        stats.add(h[start : start + 11], np.zeros((len(h[start : start + 11]), 3)))
    gram = stats.gram()
    np.testing.assert_allclose(gram, h.T @ h, rtol=1e-12, atol=1e-10)
    path = RidgePath(gram, targets)
    for lam in (1e-2, 1.0, 1e2):
        direct = np.linalg.solve(gram + lam * np.eye(30), targets)
        assert _relative(path.weights(lam), direct) < 1e-9
    stacked = path.weights_stacked([1.0, 1e2])
    assert _relative(stacked[:, 3:], path.weights(1e2)) < 1e-12


def test_gram_symmetrization_works_block_by_block():
    from driftless.methods.parts.ridge import _copy_upper_to_lower

    full = np.random.default_rng(2).normal(size=(30, 30))
    full = full + full.T
    upper = np.triu(full)
    _copy_upper_to_lower(upper, block=7)  # blocks that do not divide 30
    np.testing.assert_array_equal(upper, full)


# --- invariance to task split and batch order (property) ----------------------------------------


def _closed_form_state(name: str, method) -> dict[str, torch.Tensor]:
    if name == "ncm":
        return {"means": method.class_means_.means(range(NUM_CLASSES))}
    if name == "lda":
        _, weights, bias = method.head()
        return {"weights": weights, "bias": bias}
    if name == "acil":
        return {"weights": method.ridge_.weights[:, _columns(method)]}
    if name == "ranpac":
        targets = torch.from_numpy(method.stats_.targets())[:, _columns(method)]
        return {"gram": torch.from_numpy(method.stats_.gram()), "targets": targets}
    ids = range(NUM_CLASSES)  # fecam
    covariances = [method.stats_.class_covariance(c) for c in ids]
    return {"means": method.stats_.means(ids), "covariances": torch.stack(covariances)}


def _columns(method) -> list[int]:  # columns in class-id order, whatever order classes came in
    return [method.class_ids_.index(c) for c in range(NUM_CLASSES)]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), seed=st.integers(0, 1000))
def test_closed_form_methods_ignore_task_split_and_batch_order(data, seed):
    features, labels = _dataset(seed, per_class=5)
    task_of_class = data.draw(
        st.lists(st.integers(0, 3), min_size=NUM_CLASSES, max_size=NUM_CLASSES)
    )
    split = [
        [c for c in range(NUM_CLASSES) if task_of_class[c] == t] for t in sorted(set(task_of_class))
    ]
    orders = [data.draw(st.permutations(range(5 * len(block)))) for block in split]
    batch_size = data.draw(st.integers(1, 12))
    for name in CLOSED_FORM:
        config = {**SMALL[name], "batch_size": batch_size} if name == "acil" else SMALL[name]
        reference = _learn(name, feature_tasks(features, labels, split), config)
        shuffled = _learn(name, feature_tasks(features, labels, split, orders), config)
        one_task = _learn(name, feature_tasks(features, labels, SPLITS[0]), config)
        for key, value in _closed_form_state(name, reference).items():
            assert _relative(_closed_form_state(name, shuffled)[key], value) < 1e-9, (name, key)
            # the random expansions are drawn from the first task's generator: the same here
            assert _relative(_closed_form_state(name, one_task)[key], value) < 1e-6, (name, key)


# --- state round-trip ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*CLOSED_FORM, "linear-probe"])
def test_state_dict_round_trip_gives_identical_logits_and_training(name):
    features, labels = _dataset()
    tasks = feature_tasks(features, labels, SPLITS[2])
    method = _learn(name, tasks[:2])
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    restored = build_method(name, SMALL[name])
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    everything = synthetic_label_space(range(NUM_CLASSES))  # trained and untrained classes
    ctx = _context()
    assert torch.equal(
        method.logits(features, everything, ctx), restored.logits(features, everything, ctx)
    )
    method.learn(tasks[2], _context(2))  # and it goes on learning exactly as the original
    restored.learn(tasks[2], _context(2))
    assert torch.equal(
        method.logits(features, everything, ctx), restored.logits(features, everything, ctx)
    )


@pytest.mark.parametrize("name", [*CLOSED_FORM, "linear-probe"])
def test_untrained_method_round_trips_and_is_zero_shot(name):
    method = build_method(name, SMALL[name])
    restored = build_method(name, SMALL[name])
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    features, _ = _dataset()
    everything = synthetic_label_space(range(NUM_CLASSES))
    ctx = _context()
    zero_shot = cosine_logits(features, ctx.text_embeddings(everything), LOGIT_SCALE)
    assert torch.equal(restored.logits(features, everything, ctx), zero_shot)


# --- untrained classes --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lda", "ranpac", "acil", "fecam"])
def test_mixed_label_spaces_rank_untrained_classes_below_trained_ones(name):
    features, labels = _dataset()
    method = _learn(name, feature_tasks(features, labels, SPLITS[1])[:1])  # classes 0 and 1 only
    everything = synthetic_label_space(range(NUM_CLASSES))
    ctx = _context()
    scores = method.logits(features, everything, ctx)
    assert set(scores.argmax(1).tolist()) <= {0, 1}
    untrained = synthetic_label_space(range(2, NUM_CLASSES))
    zero_shot = cosine_logits(features, ctx.text_embeddings(untrained), LOGIT_SCALE)
    assert torch.equal(method.logits(features, untrained, ctx), zero_shot)
    assert torch.equal(scores[:, 2:].argmax(1), zero_shot.argmax(1))  # their order is kept
    with pytest.raises(ConfigError, match=rf"{name}\.unseen=error"):
        _learn(
            name, feature_tasks(features, labels, SPLITS[1])[:1], {**SMALL[name], "unseen": "error"}
        ).logits(features, everything, ctx)


# --- fecam's distance ---------------------------------------------------------------------------


def test_fecam_scores_are_mahalanobis_with_shrunk_correlation_matrices():
    features, labels = _dataset(seed=2)
    method = _learn("fecam", feature_tasks(features, labels, SPLITS[0]), {"tukey_power": 0.5})
    f = features.double()
    phi = f.sign() * f.abs().sqrt()
    x = F.normalize(phi, dim=-1)
    expected = []
    for c in range(NUM_CLASSES):
        cov = torch.cov(phi[labels == c].T)
        off = ~torch.eye(DIM, dtype=torch.bool)
        shrunk = cov + cov.diagonal().mean() * torch.eye(DIM) + cov[off].mean() * off
        std = shrunk.diagonal().sqrt()
        precision = torch.linalg.inv(shrunk / torch.outer(std, std))
        centred = x - F.normalize(phi[labels == c].mean(0), dim=0)
        expected.append(-((centred @ precision) * centred).sum(1))
    scores = method.logits(features, synthetic_label_space(range(NUM_CLASSES)), _context())
    torch.testing.assert_close(scores, torch.stack(expected, 1).float(), rtol=1e-5, atol=1e-4)


# --- linear probe -------------------------------------------------------------------------------


def test_linear_probe_is_deterministic_and_learns_the_current_task():
    features, labels = _dataset()
    tasks = feature_tasks(features, labels, SPLITS[1])
    a = _learn("linear-probe", tasks, {"epochs": 20, "lr": 0.05})
    b = _learn("linear-probe", tasks, {"epochs": 20, "lr": 0.05})
    everything = synthetic_label_space(range(NUM_CLASSES))
    logits = a.logits(features, everything, _context())
    assert torch.equal(logits, b.logits(features, everything, _context()))
    last = torch.isin(labels, torch.tensor([4, 5]))
    assert (logits[last].argmax(1) == labels[last]).float().mean() > 0.9


def test_random_features_are_drawn_from_the_generator():
    a = RandomReLUFeatures.draw(4, 16, torch.Generator().manual_seed(1), "uniform")
    b = RandomReLUFeatures.draw(4, 16, torch.Generator().manual_seed(1), "uniform")
    assert torch.equal(a.weight, b.weight) and a.weight.abs().max() <= 0.5
    x = torch.randn(9, 4)
    assert torch.equal(a(x), torch.relu(x.double() @ a.weight))


# --- config errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("ranpac", "num_features", -1),
        ("ranpac", "ridge_lambdas", []),
        ("ranpac", "ridge_lambdas", [1.0, -1.0]),
        ("ranpac", "validation_fraction", 1.0),
        ("acil", "buffer_size", 0),
        ("acil", "gamma", 0.0),
        ("lda", "shrinkage", -1.0),
        ("lda", "covariance", "diagonal"),
        ("fecam", "tukey_power", 0.0),
        ("fecam", "shrink_diagonal", -1.0),
        ("linear-probe", "epochs", 0),
        ("linear-probe", "lr", 0.0),
        ("linear-probe", "optimizer", "rmsprop"),
        ("ranpac", "unknown_field", 1),
    ],
)
def test_bad_config_values_raise_config_error_naming_the_field(name, field, value):
    with pytest.raises(ConfigError, match=rf"{name}\.{field}"):
        build_method(name, {field: value})


# --- end to end ---------------------------------------------------------------------------------


def test_toy_cil_run_every_feature_method_beats_chance(tmp_path, cache_dir):
    from driftless.config import build_run_config
    from driftless.engine import run
    from driftless.report import build_results

    methods = ["zero-shot", "lda", "ranpac", "acil", "fecam", "linear-probe"]
    config = build_run_config(
        {
            "benchmark": "toy-cil", "backbone": "tiny-random", "methods": methods, "out": tmp_path / "run",
            "cache_dir": cache_dir, "seed": 0, "num_workers": 0,
            "method_config": {"ranpac": {"num_features": 256}, "acil": {"buffer_size": 256},
                              "linear-probe": {"lr": 0.05}},
        }
    )  # fmt: skip
    results = build_results(run(config, progress=False))
    chance = 100.0 / 12
    zero_shot_row = results["methods"]["zero-shot"]["accuracy_matrix"]["values"][0]
    for name in methods[1:]:
        method = results["methods"][name]
        assert method["metrics"]["last"] > chance, (name, method["metrics"])
        # before training every method scores all classes as zero-shot CLIP does
        assert method["accuracy_matrix"]["values"][0] == zero_shot_row, name
