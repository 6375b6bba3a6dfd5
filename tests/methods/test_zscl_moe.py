"""ZSCL and MoE-Adapters: their exact pieces (weight ensemble, top-k gates, expert freezing, the
auto-selector's routing) and their behaviour on the toy benchmark with the tiny random CLIP."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from driftless.engine.threads import torch_threads
from driftless.errors import ConfigError, DataError
from driftless.methods.base import LabelSpace
from driftless.methods.parts.losses import distillation_loss
from driftless.methods.parts.moe_adapters import MoEAdapterLayer, MoEImageEncoder, top_k_gates
from driftless.methods.parts.task_selector import NO_TASK, AutoencoderSelector, FeatureAutoencoder
from driftless.methods.parts.text_classifier import cosine_logits
from driftless.methods.parts.weight_ensemble import WeightAverage
from driftless.methods.registry import build_method
from toy_tasks import image_context, image_task_data


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def _pixels(toy, every: int = 6) -> torch.Tensor:
    from driftless.engine.inputs import ImageSamples

    benchmark, backbone, _ = toy
    samples = ImageSamples(
        benchmark, [s.samples for s in benchmark.eval_splits], backbone.preprocess
    )
    return torch.stack([samples[i][0] for i in range(0, len(samples), every)])


def _everything(toy) -> LabelSpace:
    benchmark = toy[0]
    return LabelSpace.of(benchmark, range(len(benchmark.classes)))


# -- the weight ensemble ---------------------------------------------------------------------------


def test_weight_average_is_the_exact_mean_of_the_snapshots():
    layer = nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.fill_(1.0), layer.bias.fill_(-3.0)
        average = WeightAverage(layer)
        for weight, bias in ((2.0, 0.0), (6.0, 3.0), (3.0, 8.0)):
            layer.weight.fill_(weight), layer.bias.fill_(bias)
            average.add(layer)
    assert average.count == 4
    average.load_into(layer)
    assert torch.equal(layer.weight, torch.full((1, 2), 3.0))  # (1 + 2 + 6 + 3) / 4
    assert torch.equal(layer.bias, torch.full((1,), 2.0))  # (-3 + 0 + 3 + 8) / 4


# -- ZSCL ----------------------------------------------------------------------------------------------

ZSCL_OFF = {"distill_images": False, "distill_texts": False, "l2_weight": 0.0,
            "weight_ensemble": False, "train_text": False, "label_smoothing": 0.0}  # fmt: skip


def test_zscl_with_every_component_off_is_finetune(toy):
    common = {"iterations": 4, "loss_classes": "task"}
    zscl = build_method("zscl", {**common, **ZSCL_OFF})
    finetune = build_method("finetune", common)
    for t in range(2):
        for method in (zscl, finetune):
            method.learn(image_task_data(toy, t), image_context(toy, seed=t))
    pixels, space, ctx = _pixels(toy), _everything(toy), image_context(toy, seed=9)
    assert torch.equal(zscl.logits(pixels, space, ctx), finetune.logits(pixels, space, ctx))


def test_zscl_without_reference_set_names_the_field(toy):
    method = build_method("zscl", {"iterations": 2})
    with pytest.raises(ConfigError, match=r"zscl\.reference_images"):
        method.learn(image_task_data(toy, 0), image_context(toy, seed=0))
    missing = build_method("zscl", {"reference_images": "/nonexistent/imgs",
                                    "reference_captions": "/nonexistent/caps.txt"})  # fmt: skip
    with pytest.raises(DataError, match="/nonexistent/imgs"):
        missing.learn(image_task_data(toy, 0), image_context(toy, seed=0))


@pytest.fixture(scope="module")
def reference_folder(tmp_path_factory):
    """A reference set as a user gives one: a folder of images and a captions file."""
    root = tmp_path_factory.mktemp("reference")
    (root / "images" / "n01").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(12):
        pixels = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / "n01" / f"{i}.png")
    colours, shapes = ["red", "blue", "green", "gray"], ["circle", "square", "star"]
    captions = [f"a {c} {s} on a plain background" for c in colours for s in shapes]
    (root / "captions.txt").write_text("\n".join(captions) + "\n")
    return root


def _reference_drift(method, ctx) -> float:
    """ZSCL's image→text distillation loss (T = 1) on every reference image: how far the method's
    distribution over the reference captions has moved from the original CLIP's."""
    references, texts = method._reference_set(ctx)
    pixels = torch.stack([references.images[i] for i in range(len(references.images))])
    scale = ctx.backbone.logit_scale
    with torch.no_grad():
        before = cosine_logits(ctx.backbone.encode_images(pixels), texts, scale)
        after = cosine_logits(method.encoder(ctx).encode(pixels), texts, scale)
    return float(distillation_loss(after, before, 1.0))


def test_zscl_distillation_keeps_the_reference_behaviour(toy, reference_folder):
    # same task, same steps: distilling toward the original CLIP on reference images keeps the
    # model's reference-image predictions closer to the original's than plain fine-tuning does
    common = {"iterations": 8, "lr": 3e-3, "train_text": False, "weight_ensemble": False,
              "l2_weight": 0.0, "label_smoothing": 0.0, "reference_batch_size": 12,
              "reference_images": str(reference_folder / "images"),
              "reference_captions": str(reference_folder / "captions.txt")}  # fmt: skip
    zscl = build_method("zscl", {**common, "distill_weight": 5.0})
    plain = build_method("zscl", {**common, "distill_images": False, "distill_texts": False})
    for method in (zscl, plain):
        method.learn(image_task_data(toy, 0), image_context(toy, seed=0))
    ctx = image_context(toy, seed=0)
    assert _reference_drift(zscl, ctx) < 0.5 * _reference_drift(plain, ctx)


def test_zscl_state_round_trip_resumes_exactly(toy, reference_folder):
    config = {"iterations": 3, "ensemble_every": 2, "reference_batch_size": 6,
              "reference_images": str(reference_folder / "images"),
              "reference_captions": str(reference_folder / "captions.txt")}  # fmt: skip
    method = build_method("zscl", config)
    method.learn(image_task_data(toy, 0), image_context(toy, seed=0))
    restored = build_method("zscl", config)
    restored.load_state_dict(_through_bytes(method.state_dict()))
    pixels, space, ctx = _pixels(toy), _everything(toy), image_context(toy, seed=9)
    assert torch.equal(restored.logits(pixels, space, ctx), method.logits(pixels, space, ctx))
    for m in (method, restored):
        m.learn(image_task_data(toy, 1), image_context(toy, seed=1))
    assert torch.equal(restored.logits(pixels, space, ctx), method.logits(pixels, space, ctx))


def _through_bytes(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


# -- MoE-Adapters: router, experts, freezing -----------------------------------------------------------


def test_top_k_gates_are_the_softmax_of_the_k_largest_logits():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.0], [0.0, 0.0, 5.0, 5.0]])
    gates = top_k_gates(logits, 2)
    e = torch.tensor([3.0, 2.0]).softmax(0)
    assert torch.allclose(gates[0], torch.tensor([0.0, e[0], e[1], 0.0]))
    assert torch.equal(gates[1], torch.tensor([0.0, 0.0, 0.5, 0.5]))
    assert torch.equal((gates > 0).sum(dim=1), torch.tensor([2, 2]))


def test_a_fresh_mixture_adds_nothing_and_most_used_experts_freeze():
    layer = MoEAdapterLayer(dim=8, experts=4, top_k=2, width=3, scale=0.1, dropout=0.0)
    layer.add_router()
    x = torch.randn(5, 3, 8)
    assert torch.equal(layer(x, 0), torch.zeros_like(x))  # up-projections start at zero
    layer.usage.copy_(torch.tensor([5.0, 9.0, 1.0, 7.0]))
    layer.freeze_most_used(2)
    assert layer.frozen.tolist() == [False, True, False, True]
    trainable = {id(p) for p in layer.trainable(0)}
    assert all(id(p) not in trainable for p in layer.experts[1].parameters())
    assert all(id(p) in trainable for p in layer.experts[0].parameters())
    assert all(id(p) in trainable for p in layer.routers[0].parameters())


def test_routes_mix_expert_outputs_by_their_gates():
    layer = MoEAdapterLayer(dim=2, experts=3, top_k=1, width=2, scale=1.0, dropout=0.0)
    layer.add_router()
    layer.eval()  # after add_router: a router added later trains (noisy gates) until eval()
    with torch.no_grad():
        for e, expert in enumerate(layer.experts):  # expert e maps x to (e + 1) · x
            expert.down.weight.copy_(torch.eye(2)), expert.down.bias.zero_()
            expert.up.weight.copy_((e + 1) * torch.eye(2)), expert.up.bias.zero_()
        layer.routers[0].weight.copy_(torch.tensor([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]]))
    x = torch.tensor([[[2.0, 1.0]], [[1.0, 3.0]]])  # rows route to experts 0 and 1 (top-1)
    assert torch.equal(layer(x, 0), torch.tensor([[[2.0, 1.0]], [[2.0, 6.0]]]))


# -- MoE-Adapters: the auto-selector ---------------------------------------------------------------------


def _constant_autoencoder(dim: int, output: float) -> FeatureAutoencoder:
    """An autoencoder that outputs ``output`` everywhere (zero weights, decoder bias logit(output))."""
    autoencoder = FeatureAutoencoder(dim, code=2)
    with torch.no_grad():
        for p in autoencoder.parameters():
            p.zero_()
        autoencoder.decode[0].bias.fill_(float(torch.logit(torch.tensor(output))))
    return autoencoder


def test_ddas_routes_each_image_to_the_closest_task_or_to_clip():
    selector = AutoencoderSelector(dim=4, code=2, threshold=0.01)
    selector.autoencoders.append(_constant_autoencoder(4, 0.2))
    selector.autoencoders.append(_constant_autoencoder(4, 0.8))
    targets = torch.tensor(
        [0.25, 0.75, 0.5, 0.95]
    )  # sigmoid-space: near 0.2, near 0.8, far, far-ish
    features = torch.logit(targets)[:, None].expand(4, 4)
    errors = selector.errors(features)
    expected = torch.stack([(targets - 0.2) ** 2, (targets - 0.8) ** 2], dim=1)
    assert torch.allclose(errors, expected, atol=1e-6)
    # 0.25 → task 0 (err 0.0025); 0.75 → task 1; 0.5 → best err 0.09 > 0.01: CLIP; 0.95 → 0.0225
    assert selector.route(features).tolist() == [0, 1, NO_TASK, NO_TASK]


@pytest.mark.parametrize("quantile", [None, 0.99])
def test_ddas_trained_on_two_distributions_tells_them_and_a_third_apart(quantile):
    # the paper's kind of threshold (one number) or ours (each task's own 0.99 error quantile)
    generator = torch.Generator().manual_seed(0)
    selector = AutoencoderSelector(dim=16, code=4, threshold=0.02, quantile=quantile)
    centres = [torch.full((16,), -2.0), torch.full((16,), 2.0)]
    centres[1][::2] = -2.0  # the second distribution differs from the first in half the features
    for centre in centres:
        selector.add_task(
            centre + 0.3 * torch.randn(200, 16, generator=generator), generator, 400, 1e-2
        )
    tests = [c + 0.3 * torch.randn(50, 16, generator=generator) for c in centres]
    tests.append(torch.zeros(50, 16) + 0.3 * torch.randn(50, 16, generator=generator))  # unseen
    routes = [selector.route(t) for t in tests]
    assert (routes[0] == 0).float().mean() > 0.9
    assert (routes[1] == 1).float().mean() > 0.9
    assert (routes[2] == NO_TASK).float().mean() > 0.95


# -- MoE-Adapters: the method --------------------------------------------------------------------------

MOE_SMALL = {"experts": 4, "top_k": 2, "iterations": 6, "lr": 5e-3}


def test_moe_adapters_before_training_and_for_unrouted_images_is_clip(toy):
    backbone = toy[1]
    method = build_method("moe-adapters", MOE_SMALL)
    pixels, space, ctx = _pixels(toy), _everything(toy), image_context(toy, seed=0)
    with torch.no_grad():
        clip = cosine_logits(
            backbone.encode_images(pixels), ctx.text_embeddings(space), backbone.logit_scale
        )
    assert torch.equal(method.logits(pixels, space, ctx), clip)
    method.learn(image_task_data(toy, 0), ctx)
    encoder: MoEImageEncoder = method.encoder(ctx)
    encoder.routing.task = None
    assert torch.equal(encoder.encode(pixels), backbone.encode_images(pixels))
    # an unreachable threshold sends every image to the untouched CLIP
    method.selector_.threshold = -1.0
    assert torch.equal(method.logits(pixels, space, ctx), clip)


def test_moe_adapters_learn_freeze_and_resume_exactly(toy):
    method = build_method("moe-adapters", MOE_SMALL)
    for t in range(2):
        method.learn(image_task_data(toy, t), image_context(toy, seed=t))
    encoder = method.encoder(image_context(toy, 0))
    frozen_after_two = [layer.frozen.clone() for layer in encoder.moe_layers]
    assert all(int(f.sum()) >= 2 for f in frozen_after_two)
    frozen_weights = {k: v.clone() for k, v in encoder.adapter_state().items()}
    restored = build_method("moe-adapters", MOE_SMALL)
    restored.load_state_dict(_through_bytes(method.state_dict()))
    pixels, space, ctx = _pixels(toy), _everything(toy), image_context(toy, seed=9)
    assert torch.equal(restored.logits(pixels, space, ctx), method.logits(pixels, space, ctx))
    for m in (method, restored):
        torch.manual_seed(2)  # router noise and dropout draw from torch's global stream, which
        m.learn(image_task_data(toy, 2), image_context(toy, seed=2))  # the engine seeds per task
    assert torch.equal(restored.logits(pixels, space, ctx), method.logits(pixels, space, ctx))
    # experts frozen after the first two tasks did not move in the third
    after = method.encoder(ctx).adapter_state()
    for b, frozen in enumerate(frozen_after_two):
        for e in torch.nonzero(frozen).flatten().tolist():
            key = f"vision.encoder.layers.{b}.mlp.moe.experts.{e}.up.weight"
            assert torch.equal(after[key], frozen_weights[key]), key


def test_moe_adapters_shared_router_is_one_router_that_every_task_trains(toy):
    # the paper's class-incremental code: one router (task id 0), no expert frozen
    config = {**MOE_SMALL, "router": "shared", "freeze_top": 0}
    method = build_method("moe-adapters", config)
    pixels, ctx = _pixels(toy), image_context(toy, seed=9)
    method.learn(image_task_data(toy, 0), image_context(toy, seed=0))
    encoder = method.encoder(ctx)
    router = {k: v.clone() for k, v in encoder.adapter_state().items() if ".routers." in k}
    method.learn(image_task_data(toy, 1), image_context(toy, seed=1))
    assert encoder.num_tasks == 1 and all(
        int(layer.frozen.sum()) == 0 for layer in encoder.moe_layers
    )
    after = encoder.adapter_state()
    assert set(router) == {k for k in after if ".routers." in k}
    assert any(not torch.equal(after[k], v) for k, v in router.items())  # task 2 trained it
    routes = method.routes(pixels.to(ctx.device), ctx)  # DDAS picks experts or CLIP, router 0
    assert set(routes.tolist()) <= {0, NO_TASK} and (routes == 0).any()
