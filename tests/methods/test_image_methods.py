"""The image baselines (finetune, lwf, wise-ft) on the toy class-incremental benchmark with the tiny
random CLIP: they learn, finetune forgets, LwF forgets less, WiSE-FT at α = 0 is zero-shot, runs are
deterministic and a state round trip resumes exactly."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from driftless.config import build_run_config
from driftless.engine import run
from driftless.engine.inputs import ImageSamples
from driftless.engine.threads import torch_threads
from driftless.errors import ConfigError
from driftless.methods.base import LabelSpace
from driftless.methods.parts.image_training import ImageEncoder
from driftless.methods.registry import build_method
from driftless.report import build_results
from toy_tasks import image_context, image_task_data

IMAGE_METHODS = ["finetune", "lwf", "wise-ft"]
CHANCE = 100.0 / 12


@pytest.fixture(autouse=True)
def one_thread():
    # the tiny model trains several times faster on one thread than on two contended ones
    with torch_threads(1):
        yield


def _run(tmp_path, cache_dir, name, methods, method_config=None, seed=0):
    values = {"benchmark": "toy-cil", "backbone": "tiny-random", "methods": methods, "out": tmp_path / name,
              "cache_dir": cache_dir, "seed": seed, "num_workers": 0,
              "method_config": method_config or {}}  # fmt: skip
    return run(build_run_config(values), progress=False)


def test_finetune_forgets_lwf_forgets_less_and_all_beat_chance(tmp_path, cache_dir):
    results = build_results(_run(tmp_path, cache_dir, "run", IMAGE_METHODS))
    metrics = {m: results["methods"][m]["metrics"] for m in IMAGE_METHODS}
    for name in IMAGE_METHODS:
        assert metrics[name]["last"] > CHANCE, name
        # every method learned something: its best seen-class accuracy is far above chance
        assert metrics[name]["avg"] > 2 * CHANCE, name
    assert metrics["finetune"]["forgetting"] >= 30
    assert metrics["lwf"]["forgetting"] <= metrics["finetune"]["forgetting"] - 20
    assert metrics["wise-ft"]["forgetting"] < metrics["finetune"]["forgetting"]


def test_lwf_distillation_alone_reduces_forgetting(tmp_path, cache_dir):
    # same cross-entropy (task classes) for both: the difference is the distillation term only
    config = {"finetune": {"loss_classes": "task"}, "lwf": {"loss_classes": "task"}}
    results = build_results(_run(tmp_path, cache_dir, "run", ["finetune", "lwf"], config))
    finetune = results["methods"]["finetune"]["metrics"]
    lwf = results["methods"]["lwf"]["metrics"]
    assert finetune["forgetting"] >= 5
    assert lwf["forgetting"] <= finetune["forgetting"] - 3


def test_wise_ft_alpha_zero_is_zero_shot(tmp_path, cache_dir):
    config = {"wise-ft": {"alpha": 0.0, "iterations": 4}}
    outcome = _run(tmp_path, cache_dir, "run", ["zero-shot", "wise-ft"], config)
    wise, zero_shot = outcome.methods["wise-ft"].matrix, outcome.methods["zero-shot"].matrix
    np.testing.assert_array_equal(wise[-1], zero_shot[-1])
    np.testing.assert_array_equal(wise, zero_shot)  # every row, not only the last


def test_same_seed_same_matrices(tmp_path, cache_dir):
    config = {name: {"iterations": 6} for name in IMAGE_METHODS}
    first = _run(tmp_path, cache_dir, "a", IMAGE_METHODS, config)
    second = _run(tmp_path, cache_dir, "b", IMAGE_METHODS, config)
    for name in IMAGE_METHODS:
        np.testing.assert_array_equal(first.methods[name].matrix, second.methods[name].matrix)
    other_seed = _run(tmp_path, cache_dir, "c", ["finetune"], config, seed=1)
    assert not np.array_equal(
        other_seed.methods["finetune"].matrix, first.methods["finetune"].matrix
    )


# -- state round trip, outside the engine ----------------------------------------------------------


def _test_pixels(toy) -> torch.Tensor:
    benchmark, backbone, _ = toy
    samples = ImageSamples(
        benchmark, [s.samples for s in benchmark.eval_splits], backbone.preprocess
    )
    return torch.stack([samples[i][0] for i in range(0, len(samples), 6)])


@pytest.mark.parametrize("name", IMAGE_METHODS)
def test_state_dict_round_trip_resumes_exactly(toy, name):
    benchmark, backbone, _ = toy
    backbone_before = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    config = {"iterations": 3, "train_last_blocks": 1}
    method = build_method(name, config)
    for t in range(2):
        method.learn(image_task_data(toy, t), image_context(toy, seed=t))
    state = method.state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    restored = build_method(name, config)
    restored.load_state_dict(torch.load(buffer, weights_only=True))

    pixels = _test_pixels(toy)
    everything = LabelSpace.of(benchmark, range(len(benchmark.classes)))
    ctx = image_context(toy, seed=99)
    expected = method.logits(pixels, everything, ctx)
    assert torch.equal(restored.logits(pixels, everything, ctx), expected)
    # the next task from the restored state equals the next task from the original
    method.learn(image_task_data(toy, 2), image_context(toy, seed=2))
    restored.learn(image_task_data(toy, 2), image_context(toy, seed=2))
    after = method.logits(pixels, everything, ctx)
    assert torch.equal(restored.logits(pixels, everything, ctx), after)
    assert not torch.equal(after, expected)  # it did learn

    # the shared backbone is untouched; with train_last_blocks=1 the first block never moved
    for key, value in backbone.model.state_dict().items():
        assert torch.equal(value, backbone_before[key]), key
    trained = method.encoder_.state_dict()
    original = ImageEncoder.weights_of(backbone)
    first_block = [k for k in trained if k.startswith("vision.encoder.layers.0.")]
    last_block = [k for k in trained if k.startswith("vision.encoder.layers.1.")]
    assert first_block and all(torch.equal(trained[k], original[k]) for k in first_block)
    assert any(not torch.equal(trained[k], original[k]) for k in last_block)


def test_state_before_any_task_is_empty_and_loads(toy):
    method = build_method("finetune")
    assert method.state_dict() == {"encoder": {}}
    method.load_state_dict({"encoder": {}})
    benchmark, backbone, _ = toy
    pixels = _test_pixels(toy)
    space = LabelSpace.of(benchmark, range(len(benchmark.classes)))
    zero_shot = build_method("zero-shot")
    ctx = image_context(toy, seed=0)
    with torch.inference_mode():
        features = backbone.encode_images(pixels)
        assert torch.equal(
            method.logits(pixels, space, ctx), zero_shot.logits(features, space, ctx)
        )


# -- configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "values", "field"),
    [
        ("finetune", {"lr": -1}, "finetune.lr"),
        ("finetune", {"loss_classes": "all"}, "finetune.loss_classes"),
        ("finetune", {"optimizer": "adam"}, "finetune.optimizer"),
        ("finetune", {"iterations": 10, "epochs": 2}, "finetune.epochs"),
        ("finetune", {"train_last_blocks": 0}, "finetune.train_last_blocks"),
        ("lwf", {"temperature": 0}, "lwf.temperature"),
        ("lwf", {"distill_weigth": 2}, "lwf.distill_weigth"),
        ("wise-ft", {"alpha": 1.5}, "wise-ft.alpha"),
    ],
)
def test_bad_config_names_the_field(method, values, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        build_run_config({"methods": [method], "method_config": {method: values}})


def test_epochs_replace_the_default_iterations():
    config = build_method("finetune", {"epochs": 2}).config
    assert config.epochs == 2 and config.iterations is None
    assert build_method("lwf").config.loss_classes == "task"
    assert build_method("finetune").config.loss_classes == "seen"
