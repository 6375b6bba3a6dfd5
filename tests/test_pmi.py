"""PMI and its inversion parts: exact least-squares inversion of the patch embedding, per-layer
initialization beating noise, synthetic images the maker recognizes, the data-free guarantee, state
round trip, and the world-cil comparison with finetune and lwf (on the session's shared world-cil
run; benchmarks/pmi_inversion.py measures the same with its cost, docs/methods/pmi.md)."""

from __future__ import annotations

import io
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F

from driftless.config import build_run_config
from driftless.engine import run
from driftless.engine.inputs import ImageSamples
from driftless.engine.threads import torch_threads
from driftless.methods import registry
from driftless.methods.base import Context, LabelSpace, TaskData
from driftless.methods.parts.gaussian_stats import GaussianClassStats
from driftless.methods.parts.image_training import ImageEncoder
from driftless.methods.parts.inversion import (
    InversionConfig,
    TokenStatistics,
    invert_patch_embedding,
    mean_token_image,
    patch_difference_operator,
    pixel_bounds,
    synthesize,
    total_variation,
)
from driftless.methods.pmi import PMI
from driftless.methods.registry import build_method
from toy_tasks import image_context, image_task_data

FAST = {"iterations": 6, "synthetic_per_class": 2, "inversion_steps": 20, "layer_steps": 2,
        "first_block_factor": 2}  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    # module-scoped so that the module fixtures below train on one thread too
    with torch_threads(1):
        yield


def test_patch_embedding_least_squares_is_exact(tiny_backbone):
    vision = tiny_backbone.model.vision_model
    pixels = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        tokens = vision.embeddings(pixels)
        recovered = invert_patch_embedding(vision, tokens)
        again = vision.embeddings(recovered)
    torch.testing.assert_close(again, tokens, atol=1e-4, rtol=1e-4)
    # any patch tokens (the conv is wide: 192 inputs → 64 channels) are reached, CLS untouched
    wanted = tokens + 0.1 * torch.randn(tokens.shape, generator=torch.Generator().manual_seed(1))
    wanted[:, 0] = tokens[:, 0]
    with torch.no_grad():
        torch.testing.assert_close(
            vision.embeddings(invert_patch_embedding(vision, wanted)), wanted, atol=1e-4, rtol=1e-4
        )


def test_smoothest_patch_solution_is_exact_and_smoother(tiny_backbone):
    """Both solutions reproduce the tokens exactly (the conv is wide); the smoothest one has a
    smaller neighbour-difference energy than the minimum-norm one, which is the smallest in norm."""
    vision = tiny_backbone.model.vision_model
    pixels = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        tokens = vision.embeddings(pixels)
        smooth = invert_patch_embedding(vision, tokens, "smoothest")
        small = invert_patch_embedding(vision, tokens, "minimum-norm")
        torch.testing.assert_close(vision.embeddings(smooth), tokens, atol=1e-4, rtol=1e-4)
    patch = vision.embeddings.patch_size
    difference = patch_difference_operator(patch).float()

    def per_patch(image: torch.Tensor) -> torch.Tensor:  # (B·n, 3·P·P) in the conv's order
        grid = image.unfold(2, patch, patch).unfold(3, patch, patch)  # B, 3, g, g, P, P
        return grid.permute(0, 2, 3, 1, 4, 5).reshape(-1, 3 * patch * patch)

    energy = {name: (per_patch(x) @ difference.T).square().sum() for name, x in
              {"smooth": smooth, "small": small}.items()}  # fmt: skip
    assert energy["smooth"] < energy["small"]
    assert smooth.square().sum() >= small.square().sum()
    # optimal: no direction that leaves the tokens unchanged (A's null space) lowers vᵀMv
    matrix = vision.embeddings.patch_embedding.weight.reshape(-1, 3 * patch * patch).double()
    null = torch.linalg.svd(matrix, full_matrices=True).Vh[matrix.shape[0] :]  # (3P² − w, 3P²)
    metric = difference.double().T @ difference.double() + 1e-3 * torch.eye(3 * patch * patch)
    gradient = per_patch(smooth).double() @ metric @ null.T
    assert gradient.abs().max() < 1e-3 * (per_patch(smooth).double() @ metric).abs().max()
    assert total_variation(smooth).mean() < total_variation(small).mean()


def test_jitter_is_seeded_and_needs_a_generator(toy, made_model):
    settings = {"jitter": 2, "inversion_steps": 5, "target_loss": 0.0, "layer_steps": 1}
    first, _ = _synthesize(toy, made_model, "noise", **settings)
    second, _ = _synthesize(toy, made_model, "noise", **settings)
    torch.testing.assert_close(first.pixels, second.pixels, atol=0, rtol=0)
    unjittered, _ = _synthesize(toy, made_model, "noise", **{**settings, "jitter": 0})
    assert not torch.equal(first.pixels, unjittered.pixels)


@pytest.fixture(scope="module")
def made_model(toy):
    """A tiny random model fine-tuned on toy-cil's first task, with its statistics."""
    _, _, texts = toy
    data = image_task_data(toy, 0)
    method = build_method("pmi", {"iterations": 40, "lr": 1e-3})
    method.learn(data, image_context(toy, seed=0))
    encoder = method.encoder_
    space = data.label_space
    return method, encoder, texts(space), space


def _synthesize(toy, made_model, init: str, per_class: int = 6, **overrides):
    _, backbone, _ = toy
    method, encoder, classifier, space = made_model
    ids = list(space.class_ids)
    targets = method.sample_targets(ids, per_class, torch.Generator().manual_seed(0))
    positions = torch.arange(len(ids)).repeat_interleave(per_class)
    config = InversionConfig(init=init, **overrides)
    bounds = pixel_bounds(backbone.preprocess.mean, backbone.preprocess.std)
    prototypes = method.class_stats_.means(ids).float()
    return synthesize(encoder, positions, targets, classifier, prototypes, backbone.logit_scale,
                      method.token_stats_, config, bounds, torch.Generator().manual_seed(0)), positions  # fmt: skip


def test_per_layer_init_reaches_the_target_in_fewer_iterations(toy, made_model):
    settings = {"target_loss": 0.2, "inversion_steps": 400}
    per_layer, _ = _synthesize(toy, made_model, "per-layer", **settings)
    noise, _ = _synthesize(toy, made_model, "noise", **settings)
    assert per_layer.reached_target and noise.reached_target
    assert per_layer.losses[0] < noise.losses[0]
    assert per_layer.iterations <= 0.8 * noise.iterations, (per_layer.iterations, noise.iterations)


def test_mean_init_is_one_image_whose_patch_tokens_are_the_real_mean(toy, made_model):
    method, encoder, _, _ = made_model
    vision = encoder.vision
    wide = (torch.full((3, 1, 1), -1e9), torch.full((3, 1, 1), 1e9))  # no clamping: test exactness
    start = mean_token_image(vision, method.token_stats_, 3, InversionConfig(), wide)
    assert torch.equal(start[0], start[1]) and torch.equal(start[0], start[2])
    with torch.no_grad():
        tokens = vision.embeddings(start[:1])[0, 1:]
    torch.testing.assert_close(tokens, method.token_stats_.mean(0)[1:], atol=1e-4, rtol=1e-4)
    settings = {"target_loss": 0.2, "inversion_steps": 400}
    mean, _ = _synthesize(toy, made_model, "mean", **settings)
    noise, _ = _synthesize(toy, made_model, "noise", **settings)
    assert mean.reached_target and mean.iterations < noise.iterations


def test_synthetic_images_are_recognized_by_their_maker(toy, made_model):
    result, positions = _synthesize(toy, made_model, "per-layer")
    _, encoder, classifier, _ = made_model
    with torch.no_grad():
        predicted = (F.normalize(encoder(result.pixels), dim=-1) @ classifier.T).argmax(1)
    assert (predicted == positions).float().mean() >= 0.9


def test_token_statistics_state_round_trip(tiny_backbone):
    stats = TokenStatistics()
    stats.update(tiny_backbone.model.vision_model, torch.randn(4, 3, 32, 32))
    restored = TokenStatistics()
    restored.load_state_dict(stats.state_dict())
    assert torch.equal(restored.mean(2), stats.mean(2)) and restored.count == 4


# -- the data-free guarantee ------------------------------------------------------------------------


class _WatchedPMI(PMI):
    """PMI that records what ``learn`` receives (test only)."""

    name = "pmi-watched"
    received: ClassVar[list[tuple[tuple[int, ...], torch.Tensor, torch.Tensor]]] = []

    def learn(self, data: TaskData, ctx: Context) -> None:
        pixels = torch.stack([data.images[i][0] for i in range(len(data.images))])
        labels = torch.tensor([data.images[i][1] for i in range(len(data.images))])
        type(self).received.append((tuple(data.task.class_ids), pixels, labels))
        super().learn(data, ctx)


def test_no_earlier_task_image_reaches_learn(tmp_path, cache_dir, monkeypatch):
    # registered for this test only: a run with no method list runs every registered method
    monkeypatch.setitem(registry._METHODS, _WatchedPMI.name, _WatchedPMI)
    _WatchedPMI.received.clear()
    values = {"benchmark": "toy-cil", "backbone": "tiny-random", "methods": ["pmi-watched"],
              "out": tmp_path / "run", "cache_dir": cache_dir, "num_workers": 0,
              "method_config": {"pmi-watched": FAST}}  # fmt: skip
    run(build_run_config(values), progress=False)
    received = _WatchedPMI.received
    assert len(received) == 5  # toy-cil: a 4-class base task, then 4 tasks of 2
    for t, (class_ids, pixels, labels) in enumerate(received):
        assert set(labels.tolist()) <= set(class_ids)
        for _, earlier_pixels, _ in received[:t]:
            flat, earlier = pixels.flatten(1), earlier_pixels.flatten(1)
            assert not (torch.cdist(flat, earlier) < 1e-6).any(), "an earlier image came back"


# -- state ----------------------------------------------------------------------------------------


def test_state_dict_round_trip_resumes_exactly(toy):
    benchmark, _, _ = toy
    method = build_method("pmi", FAST)
    for t in range(2):
        method.learn(image_task_data(toy, t), image_context(toy, seed=t))
    assert method.synthesis_log_ and method.synthesis_log_[0]["images"] == 4 * 2
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    restored = build_method("pmi", FAST)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    samples = ImageSamples(benchmark, [s.samples for s in benchmark.eval_splits], toy[1].preprocess)
    pixels = torch.stack([samples[i][0] for i in range(0, len(samples), 8)])
    space = LabelSpace.of(benchmark, range(len(benchmark.classes)))
    ctx = image_context(toy, seed=99)
    assert torch.equal(restored.logits(pixels, space, ctx), method.logits(pixels, space, ctx))
    method.learn(image_task_data(toy, 2), image_context(toy, seed=2))
    restored.learn(image_task_data(toy, 2), image_context(toy, seed=2))
    assert torch.equal(restored.logits(pixels, space, ctx), method.logits(pixels, space, ctx))
    # synthesis = once: task 2 inverts only task 1's two classes, the base task's four replay the
    # images kept in the state
    assert restored.synthesis_log_[-1]["images"] == method.synthesis_log_[-1]["images"] == 2 * 2


def test_synthesis_once_inverts_each_class_a_single_time_and_replays_its_kept_images(toy):
    """``synthesis = once``: before task t only the classes of task t − 1 are inverted (by the
    model that has just learned them); earlier classes replay the images kept from their own
    synthesis, unchanged, and the memory survives a state round trip."""
    config = {**FAST, "synthesis": "once"}
    method = build_method("pmi", config)
    tasks = toy[0].tasks
    for t in range(3):
        method.learn(image_task_data(toy, t), image_context(toy, seed=t))
        if t == 1:
            first_pixels = method.synthetic_pixels_.clone()
    per_class = FAST["synthetic_per_class"]
    assert [entry["images"] for entry in method.synthesis_log_] == [
        per_class * len(tasks[0].class_ids),
        per_class * len(tasks[1].class_ids),
    ]
    old = [c for task in tasks[:2] for c in task.class_ids]
    labels = method.synthetic_labels_
    assert sorted(labels.tolist()) == sorted(old * per_class)
    assert torch.equal(method.synthetic_pixels_[: len(first_pixels)], first_pixels)
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    restored = build_method("pmi", config)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(restored.synthetic_pixels_, method.synthetic_pixels_)
    assert torch.equal(restored.synthetic_labels_, labels)


def test_class_statistics_come_from_real_images_of_the_task(toy, made_model):
    method, encoder, _, space = made_model
    data = image_task_data(toy, 0)
    pixels = torch.stack([data.images[i][0] for i in range(len(data.images))])
    expected = GaussianClassStats()
    with torch.no_grad():
        expected.update(ImageEncoder.forward(encoder, pixels), data.images.labels)
    ids = list(space.class_ids)
    torch.testing.assert_close(method.class_stats_.means(ids), expected.means(ids))


def test_world_cil_pmi_forgets_less_and_ends_higher_than_finetune_and_lwf(world_cil_results):
    """The issue's criteria on the embedded benchmark (one engine run shared with test_embedded):
    less forgetting than finetune and LwF, a higher Last, and synthetic images that the model which
    made them classifies as their class at ≥ 90 % at every task."""
    results, out = world_cil_results
    metrics = {name: m["metrics"] for name, m in results["methods"].items()}
    for other in ("finetune", "lwf"):
        assert metrics["pmi"]["forgetting"] < metrics[other]["forgetting"], other
        assert metrics["pmi"]["last"] > metrics[other]["last"], other
    state = torch.load(out / "checkpoints" / "pmi.pt", weights_only=True)
    log = state["method_state"]["synthesis_log"]
    assert len(log) == 7  # tasks 2…8 replay their predecessors' classes
    assert all(entry["accuracy_by_maker"] >= 0.9 for entry in log)
    # synthesis = once: before each task only the previous task's 8 classes are inverted
    assert [entry["images"] for entry in log] == [16 * 8] * 7


# -- the mechanism: replay of inverted images -------------------------------------------------------


def _training_set(toy, made_model, monkeypatch, **config):
    """What learning toy-cil's second task hands the training loop (no training is done), and the
    model that learned the first task."""
    import copy

    import driftless.methods.pmi as pmi_module

    method = copy.deepcopy(made_model[0])
    method.config = method.config.model_copy(update=config)
    previous = method.encoder_.frozen_copy()
    seen = {}

    def capture(encoder, images, loss, config, ctx, description=""):
        seen["images"] = images
        return torch.zeros(1)

    monkeypatch.setattr(pmi_module, "train_loop", capture)
    monkeypatch.setattr(method, "update_statistics", lambda *args: None)
    method.learn(image_task_data(toy, 1), image_context(toy, seed=1))
    images = seen["images"]
    pixels = torch.stack([images[i][0] for i in range(len(images))])
    labels = torch.tensor([images[i][1] for i in range(len(images))])
    return pixels, labels, previous


def test_old_classes_are_replayed_by_images_their_previous_model_recognizes(
    toy, made_model, monkeypatch
):
    """Learning task 2 trains on its real images plus ``synthetic_per_class`` inverted images of
    each task-1 class, which the model that learned task 1 classifies as their class (noise or a
    blank would not be); ``replay = none`` trains on the real images only."""
    benchmark = toy[0]
    old = list(benchmark.tasks[0].class_ids)
    new = set(benchmark.tasks[1].class_ids)
    pixels, labels, previous = _training_set(toy, made_model, monkeypatch, synthetic_per_class=3)
    synthetic = torch.isin(labels, torch.tensor(old))
    assert int(synthetic.sum()) == 3 * len(old) and set(labels[~synthetic].tolist()) <= new
    classifier = toy[2](LabelSpace.of(benchmark, old))
    with torch.no_grad():
        predicted = (F.normalize(previous(pixels[synthetic]), dim=-1) @ classifier.T).argmax(1)
    positions = torch.tensor([old.index(c) for c in labels[synthetic].tolist()])
    assert (predicted == positions).float().mean() >= 0.9
    real, real_labels, _ = _training_set(toy, made_model, monkeypatch, replay="none")
    assert set(real_labels.tolist()) <= new and len(real) == int((~synthetic).sum())


# -- the control without images: Gaussian token-state replay -----------------------------------


def test_class_token_gaussians_are_the_per_class_moments_and_sample_them(toy, made_model):
    from driftless.methods.parts.token_replay import ClassTokenGaussians

    generator = torch.Generator().manual_seed(0)
    tokens = torch.randn(10, 3, 4, generator=generator, dtype=torch.float64)
    labels = torch.tensor([7, 7, 7, 7, 9, 9, 9, 9, 9, 9])
    gaussians = ClassTokenGaussians()
    gaussians.update(tokens[:5], labels[:5])  # running sums: two batches give the same moments
    gaussians.update(tokens[5:], labels[5:])
    for c in (7, 9):
        rows = tokens[labels == c]
        torch.testing.assert_close(gaussians.mean(c), rows.mean(0))
        torch.testing.assert_close(gaussians.std(c), rows.std(0))
    draws, owners = gaussians.sample([7, 9], 4000, torch.Generator().manual_seed(1))
    assert draws.shape == (4000, 3, 4) and set(owners.tolist()) == {7, 9}
    torch.testing.assert_close(
        draws[owners == 9].mean(0).double(), gaussians.mean(9), atol=0.1, rtol=0
    )
    restored = ClassTokenGaussians()
    restored.load_state_dict(gaussians.state_dict())
    again, _ = restored.sample([7, 9], 4000, torch.Generator().manual_seed(1))
    assert torch.equal(again, draws)


def test_embedding_from_a_block_continues_the_tower_exactly(toy, made_model):
    from driftless.methods.parts.inversion import hidden_states

    _, encoder, _, _ = made_model
    data = image_task_data(toy, 0)
    pixels = torch.stack([data.images[i][0] for i in range(4)])
    with torch.no_grad():
        states = hidden_states(encoder.vision, pixels)
        whole = encoder(pixels)
        for first in range(len(encoder.blocks)):
            torch.testing.assert_close(encoder.embed_from_block(states[first + 1], first), whole)


def test_feature_replay_trains_on_token_draws_of_the_old_classes_and_no_image(toy):
    """``replay = features`` stores the token Gaussians of every learned class, hands the training
    loop the task's real images only, and still trains differently from ``replay = none`` (the
    draws enter the loss); its state round-trips."""
    config = {**FAST, "replay": "features"}
    method = build_method("pmi", config)
    control = build_method("pmi", {**FAST, "replay": "none"})
    for t in range(2):
        method.learn(image_task_data(toy, t), image_context(toy, seed=t))
        control.learn(image_task_data(toy, t), image_context(toy, seed=t))
    learned = [c for task in toy[0].tasks[:2] for c in task.class_ids]
    assert sorted(method.token_gaussians_.counts) == sorted(learned)
    assert not method.synthesis_log_  # nothing inverted
    first = method.token_gaussians_.mean(learned[0])
    assert first.shape == method.token_stats_.mean(0).shape  # (tokens, width) of one state
    benchmark = toy[0]
    samples = ImageSamples(benchmark, [s.samples for s in benchmark.eval_splits], toy[1].preprocess)
    pixels = torch.stack([samples[i][0] for i in range(0, len(samples), 8)])
    space = LabelSpace.of(benchmark, range(len(benchmark.classes)))
    ctx = image_context(toy, seed=99)
    assert not torch.equal(method.logits(pixels, space, ctx), control.logits(pixels, space, ctx))
    restored = build_method("pmi", config)
    restored.load_state_dict(method.state_dict())
    assert torch.equal(restored.logits(pixels, space, ctx), method.logits(pixels, space, ctx))
    torch.testing.assert_close(restored.token_gaussians_.mean(learned[0]), first)


# -- how replayed images enter the loss -----------------------------------------------------------


def _two_dataset_task(toy):
    """toy-cil's second task with its base classes relabelled as dataset "A" and its own as "B"."""
    import dataclasses

    data = image_task_data(toy, 1)
    old_ids = list(toy[0].tasks[0].class_ids)
    seen = data.seen_label_space
    datasets = tuple("A" if c in old_ids else "B" for c in seen.class_ids)
    data = dataclasses.replace(data, seen_label_space=dataclasses.replace(seen, datasets=datasets))
    return data, old_ids


def test_replayed_images_are_scored_over_their_dataset_and_weighted_apart(toy, made_model):
    """``replay_classes = dataset``: a replayed image's CE runs over its own dataset's classes only
    (``seen``: over all); ``replay_weight = w``: the loss is the real images' mean CE plus w × the
    replayed images' mean CE (None: one mean over both)."""
    from driftless.methods.parts.text_classifier import cosine_logits

    _, encoder, _, _ = made_model
    data, old_ids = _two_dataset_task(toy)
    old = data.seen_label_space.subspace(old_ids)
    ctx = image_context(toy, seed=0)
    previous = encoder.frozen_copy()
    real = 6
    pixels = torch.stack([data.images[i][0] for i in range(real + 2 * len(old_ids))])
    labels = torch.cat([data.labels[:real], torch.tensor(old_ids * 2)])
    with torch.no_grad():
        embeddings = encoder(pixels)
    logits = cosine_logits(embeddings, toy[2](data.seen_label_space), toy[1].logit_scale)
    seen_ids = list(data.seen_label_space.class_ids)
    columns = torch.tensor([seen_ids.index(c) for c in labels.tolist()])
    old_columns = [seen_ids.index(c) for c in old_ids]
    new_columns = [seen_ids.index(c) for c in data.label_space.class_ids]
    local = F.cross_entropy(
        logits[:real][:, new_columns],
        torch.tensor([new_columns.index(int(c)) for c in columns[:real]]),
        reduction="none",
    )
    replayed_over_seen = F.cross_entropy(logits[real:], columns[real:], reduction="none")
    replayed_over_dataset = F.cross_entropy(
        logits[real:][:, old_columns],
        torch.tensor([old_columns.index(int(c)) for c in columns[real:]]),
        reduction="none",
    )

    def loss(**config):
        settings = {**FAST, "distill_weight": 0.0, "balanced": False, "replay_weight": None}
        settings.update(config)
        method = build_method("pmi", settings)
        with torch.no_grad():
            fn = method.task_loss_with_replay(data, old, previous, ctx, labels)
            return fn(embeddings, pixels, labels)

    both = lambda replayed: torch.cat([local, replayed]).mean()  # noqa: E731
    torch.testing.assert_close(loss(replay_classes="seen"), both(replayed_over_seen))
    torch.testing.assert_close(loss(replay_classes="dataset"), both(replayed_over_dataset))
    assert not torch.allclose(replayed_over_seen, replayed_over_dataset)
    torch.testing.assert_close(
        loss(replay_classes="dataset", replay_weight=0.5),
        local.mean() + 0.5 * replayed_over_dataset.mean(),
    )
    torch.testing.assert_close(loss(replay_weight=0.0), local.mean())


def test_dataset_replay_refuses_label_smoothing():
    from driftless.errors import ConfigError

    with pytest.raises(ConfigError, match="label_smoothing"):
        build_method("pmi", {"replay_classes": "dataset", "label_smoothing": 0.1})
