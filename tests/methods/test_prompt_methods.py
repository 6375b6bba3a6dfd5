"""L2P, DualPrompt, CODA-Prompt (prompts in a frozen CLIP image tower) and RAPF (a fused linear
adapter on frozen features): exact tests of prompt insertion, top-N selection, the surrogate key
loss, old-logit masking, orthogonal components, hard pairs, the hinge and the fusion; behaviour on
toy tasks (they learn, state round trips resume exactly, the backbone is untouched)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from driftless.backbones import tiny_random_clip
from driftless.engine.threads import torch_threads
from driftless.errors import ConfigError
from driftless.methods.base import LabelSpace
from driftless.methods.coda_prompt import ortho_penalty, orthogonal_rows
from driftless.methods.parts.fusion import svd_fuse
from driftless.methods.parts.prompted_classifier import mask_logits, masked_cross_entropy
from driftless.methods.parts.vision_prompts import (
    LayerPrompts,
    PromptedVisionTower,
    cosine_top_n,
    key_pull_loss,
    prefixed_layer,
)
from driftless.methods.rapf import RAPF, hard_pairs, pair_hinge
from driftless.methods.registry import available_methods, build_method
from toy_tasks import (
    feature_context,
    feature_tasks,
    image_context,
    image_task_data,
    synthetic_label_space,
)

PROMPT_METHODS = {
    # the tiny random CLIP has 2 layers: the papers' layer choices scaled down
    "l2p": {"iterations": 4, "batch_size": 16, "lr": 0.01},
    "dualprompt": {"iterations": 4, "batch_size": 16, "g_layers": [0], "e_layers": [1]},
    "coda-prompt": {
        "iterations": 4,
        "batch_size": 16,
        "layers": [0, 1],
        "ortho_weight": 0.1,
        "components_per_task": 4,
    },
}


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


# --- the prompted tower ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tower_and_backbone():
    backbone = tiny_random_clip(seed=0)
    return PromptedVisionTower.from_backbone(backbone), backbone


def test_tower_without_prompts_is_the_backbone_and_prompts_change_it(tower_and_backbone):
    tower, backbone = tower_and_backbone
    pixels = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        reference = backbone.encode_images(pixels)
        assert torch.equal(tower(pixels), reference)
        empty = torch.zeros(1, 0, tower.width)
        no_prefix = tower(pixels, LayerPrompts(prefixes={0: (empty, empty), 1: (empty, empty)}))
        torch.testing.assert_close(no_prefix, reference, atol=1e-5, rtol=1e-5)
        tokens = torch.randn(1, 2, tower.width)
        assert not torch.allclose(tower(pixels, LayerPrompts(tokens={0: tokens})), reference)
        prefix = torch.randn(1, 2, tower.width)
        assert not torch.allclose(
            tower(pixels, LayerPrompts(prefixes={1: (prefix, prefix)})), reference
        )
    assert not any(p.requires_grad for p in tower.parameters())


def test_prefix_tuning_is_attention_over_extra_keys_and_values(tower_and_backbone):
    # a prefix whose key equals a token's key and whose value equals its value duplicates that
    # token in the attention: the same result as the sequence with the token written twice
    tower, _ = tower_and_backbone
    layer = tower.layers[0]
    hidden = torch.randn(2, 5, tower.width, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        normed = layer.layer_norm1(hidden)
        key = layer.self_attn.k_proj(normed)[:, :1]
        value = layer.self_attn.v_proj(normed)[:, :1]
        with_prefix = prefixed_layer(layer, hidden, key, value, tower.num_heads)
        # manual attention where token 0 counts twice
        q = layer.self_attn.q_proj(normed)
        k = torch.cat([key, layer.self_attn.k_proj(normed)], 1)
        v = torch.cat([value, layer.self_attn.v_proj(normed)], 1)
        heads = lambda x: x.reshape(2, x.shape[1], tower.num_heads, -1).transpose(1, 2)  # noqa: E731
        weights = torch.softmax(
            heads(q) @ heads(k).transpose(-1, -2) / heads(q).shape[-1] ** 0.5, -1
        )
        attended = (weights @ heads(v)).transpose(1, 2).reshape(2, 5, tower.width)
        mid = hidden + layer.self_attn.out_proj(attended)
        expected = mid + layer.mlp(layer.layer_norm2(mid))
    torch.testing.assert_close(with_prefix, expected, atol=1e-5, rtol=1e-5)


# --- selection, key loss, masking -----------------------------------------------------------------


def test_cosine_top_n_picks_the_closest_keys_in_order_ties_by_index():
    keys = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0], [2.0, 0.0]])
    query = torch.tensor([[1.0, 0.0], [0.0, 3.0], [1.0, 0.9]])
    chosen = cosine_top_n(query, keys, 3)
    # query 0: keys 0 and 4 tie at cos 1 (index order), then key 2 (cos 0.707)
    # query 1: key 1 (1), key 2 (0.707), then keys 0 and 4 tie at 0 -> 0
    # query 2: key 2 (≈0.9986), then keys 0 and 4 (≈0.743) -> 0
    assert chosen.tolist() == [[0, 4, 2], [1, 2, 0], [2, 0, 4]]
    with pytest.raises(ValueError):
        cosine_top_n(query, keys, 6)


def test_key_pull_loss_is_the_sum_of_one_minus_cosines():
    query = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    keys = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, -1.0], [1.0, 1.0]]])
    # sample 0: (1 − 1) + (1 − 0) = 1; sample 1: (1 + 1) + (1 − 1/√2) ; mean over the batch
    expected = (1.0 + 2.0 + 1.0 - 2**-0.5) / 2
    assert float(key_pull_loss(query, keys)) == pytest.approx(expected, abs=1e-6)
    assert float(key_pull_loss(query, query * 3)) == pytest.approx(0.0, abs=1e-6)


def test_old_logit_masking_trains_only_the_task_columns():
    logits = torch.tensor([[2.0, 1.0, 0.5, -1.0], [0.0, 3.0, 1.0, 2.0]], requires_grad=True)
    allowed = torch.tensor([False, False, True, True])
    targets = torch.tensor([2, 3])
    masked = mask_logits(logits, allowed)
    assert torch.isinf(masked[:, :2]).all() and torch.equal(masked[:, 2:], logits[:, 2:])
    loss = masked_cross_entropy(logits, targets, allowed)
    expected = F.cross_entropy(logits[:, 2:], targets - 2).detach()
    assert float(loss.detach()) == pytest.approx(float(expected), abs=1e-6)
    assert float(F.cross_entropy(masked, targets).detach()) == pytest.approx(
        float(expected), abs=1e-6
    )
    loss.backward()
    assert torch.equal(logits.grad[:, :2], torch.zeros(2, 2))  # old classes: no gradient
    assert (logits.grad[:, 2:].abs() > 0).all()
    with pytest.raises(ValueError, match="masked column"):
        masked_cross_entropy(logits, torch.tensor([0, 3]), allowed)


# --- CODA-Prompt's orthogonal components ----------------------------------------------------------


def test_new_components_are_orthonormal_and_orthogonal_to_old_ones():
    generator = torch.Generator().manual_seed(0)
    old = torch.randn(5, 12, generator=generator)  # not orthogonal among themselves
    new = orthogonal_rows(old, 4, generator)
    torch.testing.assert_close(new @ new.T, torch.eye(4), atol=1e-6, rtol=0)
    torch.testing.assert_close(new @ old.T, torch.zeros(4, 5), atol=1e-5, rtol=0)
    first = orthogonal_rows(torch.empty(0, 12), 6, generator, dim=12)
    assert float(ortho_penalty(first)) == pytest.approx(0.0, abs=1e-10)
    assert float(ortho_penalty(2 * first)) == pytest.approx(9.0 * 6 / 36, abs=1e-5)
    with pytest.raises(ConfigError, match="components_per_task"):
        orthogonal_rows(old, 8, generator)


# --- the three prompt methods on toy-cil ----------------------------------------------------------


def _pixels(toy, t: int = 0, count: int = 12) -> torch.Tensor:
    images = image_task_data(toy, t).images
    return torch.stack([images[i][0] for i in range(0, count * 4, 4)])


def _everything(toy) -> LabelSpace:
    benchmark = toy[0]
    return LabelSpace.of(benchmark, range(len(benchmark.classes)))


@pytest.mark.parametrize("name", sorted(PROMPT_METHODS))
def test_prompt_method_round_trip_resumes_exactly_and_backbone_is_untouched(toy, name):
    _, backbone, _ = toy
    before = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    config = PROMPT_METHODS[name]
    method = build_method(name, config)
    pixels, space, ctx = _pixels(toy), _everything(toy), image_context(toy, seed=99)
    with torch.inference_mode():  # before any task: zero-shot CLIP
        zero_shot = build_method("zero-shot").logits(backbone.encode_images(pixels), space, ctx)
        assert torch.allclose(method.logits(pixels, space, ctx), zero_shot, atol=1e-4)
    for t in range(2):
        method.learn(image_task_data(toy, t), image_context(toy, seed=t))
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    restored = build_method(name, config)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    with torch.inference_mode():
        expected = method.logits(pixels, space, ctx)
        assert torch.equal(restored.logits(pixels, space, ctx), expected)
    method.learn(image_task_data(toy, 2), image_context(toy, seed=2))
    restored.learn(image_task_data(toy, 2), image_context(toy, seed=2))
    with torch.inference_mode():
        after = method.logits(pixels, space, ctx)
        assert torch.equal(restored.logits(pixels, space, ctx), after)
    assert not torch.equal(after, expected)
    for key, value in backbone.model.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_linear_head_keeps_old_rows_and_text_switch_has_no_head(toy):
    method = build_method("l2p", PROMPT_METHODS["l2p"])
    method.learn(image_task_data(toy, 0), image_context(toy, seed=0))
    rows_after_first = method.head_weight_.clone(), method.head_bias_.clone()
    first_ids = list(method.head_ids_)
    method.learn(image_task_data(toy, 1), image_context(toy, seed=1))
    # old-logit masking: the first task's rows did not move while the second task trained
    assert torch.equal(method.head_weight_[: len(first_ids)], rows_after_first[0])
    assert torch.equal(method.head_bias_[: len(first_ids)], rows_after_first[1])
    assert method.head_ids_[: len(first_ids)] == first_ids and len(method.head_ids_) == 6
    text = build_method("l2p", {**PROMPT_METHODS["l2p"], "classifier": "text"})
    text.learn(image_task_data(toy, 0), image_context(toy, seed=0))
    assert text.head_weight_ is None and text.state_dict()["head_weight"] is None


def test_coda_freezes_earlier_components_and_dualprompt_keeps_other_experts(toy):
    coda = build_method("coda-prompt", PROMPT_METHODS["coda-prompt"])
    coda.learn(image_task_data(toy, 0), image_context(toy, seed=0))
    first = {k: v.clone() for k, v in coda.prompts_[0].state_dict().items()}
    coda.learn(image_task_data(toy, 1), image_context(toy, seed=1))
    assert len(coda.prompts_) == 2
    assert not any(p.requires_grad for p in coda.prompts_[0].parameters())
    for key, value in coda.prompts_[0].state_dict().items():
        assert torch.equal(value, first[key]), key
    keys = coda._all("keys")[0]  # the second task's keys started orthogonal to the first's
    assert keys.shape[0] == 2 * PROMPT_METHODS["coda-prompt"]["components_per_task"]

    dual = build_method("dualprompt", PROMPT_METHODS["dualprompt"])
    dual.learn(image_task_data(toy, 0), image_context(toy, seed=0))
    expert0 = dual.prompts_.e_prompts[0].clone(), dual.prompts_.e_keys[0].clone()
    untouched = dual.prompts_.e_prompts[2:].clone()
    dual.learn(image_task_data(toy, 1), image_context(toy, seed=1))
    assert torch.equal(dual.prompts_.e_prompts[0], expert0[0])
    assert torch.equal(dual.prompts_.e_keys[0], expert0[1])
    assert torch.equal(dual.prompts_.e_prompts[2:], untouched)
    # at test time each image gets the expert whose key is closest to its query
    query = dual.prompts_.e_keys[:2].detach() * torch.tensor([[3.0], [0.5]])
    assert dual.expert_index(query).tolist() == [0, 1]


@pytest.mark.parametrize("name", sorted(PROMPT_METHODS))
def test_prompt_methods_learn_a_toy_task(toy, name):
    # the random tiny CLIP is at chance (25 %) on the first task's 4 classes; one task of training
    # lifts it (measured: l2p, dualprompt, coda-prompt from 25 % to 40 % or more)
    data = image_task_data(toy, 0)
    pixels = torch.stack([data.images[i][0] for i in range(len(data.images))])
    space, ctx = data.label_space, image_context(toy, seed=99)
    method = build_method(name, {**PROMPT_METHODS[name], "iterations": 15, "lr": 0.05})
    column = space.positions(data.labels)
    with torch.inference_mode():
        before = (method.logits(pixels, space, ctx).argmax(1) == column).float().mean()
    method.learn(data, image_context(toy, seed=0))
    with torch.inference_mode():
        after = (method.logits(pixels, space, ctx).argmax(1) == column).float().mean()
    assert float(after) >= float(before) + 0.125, (float(before), float(after))


def test_bad_layers_and_pools_are_config_errors(toy):
    method = build_method("dualprompt", {"iterations": 1, "e_layers": [1, 5], "g_layers": [0]})
    with pytest.raises(ConfigError, match="layers"):
        method.learn(image_task_data(toy, 0), image_context(toy, seed=0))
    with pytest.raises(ConfigError, match="overlap"):
        from driftless.config import build_run_config

        build_run_config(
            {"methods": ["dualprompt"], "method_config": {"dualprompt": {"g_layers": [0, 1],
                                                                          "e_layers": [1]}}}
        )  # fmt: skip
    assert build_method("l2p", {"iterations": 3}).config.epochs is None
    assert build_method("coda-prompt").config.epochs == 20


def test_l2p_pool_is_drawn_from_the_prompt_init_interval():
    from driftless.methods.l2p import PromptPool

    default = PromptPool(3, 2, 8, torch.Generator().manual_seed(5))
    draws = torch.Generator().manual_seed(5)
    assert torch.equal(default.prompts, torch.rand(3, 2, 8, generator=draws) * 2 - 1)
    assert torch.equal(default.keys, torch.rand(3, 8, generator=draws) * 2 - 1)
    small = PromptPool(3, 2, 8, torch.Generator().manual_seed(5), (0.0, 0.01))
    for values in (small.prompts.detach(), small.keys.detach()):
        assert float(values.min()) >= 0 and float(values.max()) < 0.01
    # the re-implementation's interval by default
    assert build_method("l2p").config.prompt_init == (-1.0, 1.0)
    with pytest.raises(ConfigError, match="prompt_init"):
        build_method("l2p", {"prompt_init": [0.5, 0.5]})


# --- RAPF -----------------------------------------------------------------------------------------


def test_hard_pairs_are_the_close_text_pairs_and_the_hinge_is_exact():
    old = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    new = torch.tensor([[0.9, 0.1, 0.0], [0.0, 0.0, 1.0], [0.1, 1.0, 0.0]])
    # distances: old0-new0 0.15, old1-new2 0.10; the others ≥ 1.3
    assert hard_pairs(old, new, 0.55) == [(0, 0), (1, 2)]
    assert hard_pairs(old, new, 0.05) == []
    adapted = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    own = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    rival = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    # row 0: relu(0 − 1 + 0.1) = 0; row 1: relu(1 − 0 + 0.1) = 1.1
    assert float(pair_hinge(adapted, own, rival, 0.1)) == pytest.approx(0.55, abs=1e-6)


DIM, NUM_CLASSES = 8, 6


def _feature_tasks():
    rng = np.random.default_rng(0)
    centres = rng.normal(0.0, 2.0, size=(NUM_CLASSES, DIM))
    labels = np.repeat(np.arange(NUM_CLASSES), 12)
    features = torch.tensor(
        centres[labels] + rng.normal(0, 1, (len(labels), DIM)), dtype=torch.float32
    )
    return feature_tasks(features, torch.tensor(labels), ((0, 1), (2, 3), (4, 5)))


def _feature_ctx(seed):
    return feature_context(seed, num_classes=NUM_CLASSES, dim=DIM, logit_scale=20.0)


SMALL_RAPF = {"epochs": 6, "batch_size": 8, "lr": 0.01, "hinge_threshold": 2.0}


def test_rapf_fuses_the_trained_adapter_by_svd(monkeypatch):
    tasks = _feature_tasks()
    method = build_method("rapf", SMALL_RAPF)
    method.learn(tasks[0], _feature_ctx(0))
    previous = method.adapter_.clone()
    trained = {}
    original = RAPF._train

    def keep(self, *args, **kwargs):
        trained["W"] = original(self, *args, **kwargs)
        return trained["W"]

    monkeypatch.setattr(RAPF, "_train", keep)
    method.learn(tasks[1], _feature_ctx(1))
    assert torch.equal(method.adapter_, svd_fuse(previous, trained["W"], 0.6))
    assert not torch.equal(method.adapter_, trained["W"])
    keep_new = build_method("rapf", {**SMALL_RAPF, "fusion_bias": 1.0})
    keep_new.learn(tasks[0], _feature_ctx(0))
    keep_new.learn(tasks[1], _feature_ctx(1))
    torch.testing.assert_close(keep_new.adapter_, trained["W"], atol=1e-5, rtol=1e-5)


def test_rapf_learns_resumes_and_is_zero_shot_before_training():
    tasks = _feature_tasks()
    space = synthetic_label_space(range(NUM_CLASSES))
    probe = torch.cat([t.features for t in tasks])
    labels = torch.cat([t.labels for t in tasks])
    method = build_method("rapf", {**SMALL_RAPF, "adapter_init": "identity"})
    zero_shot = build_method("zero-shot")
    ctx = _feature_ctx(9)
    assert torch.equal(method.logits(probe, space, ctx), zero_shot.logits(probe, space, ctx))
    for t in range(2):
        method.learn(tasks[t], _feature_ctx(t))
    restored = build_method("rapf", {**SMALL_RAPF, "adapter_init": "identity"})
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    method.learn(tasks[2], _feature_ctx(2))
    restored.learn(tasks[2], _feature_ctx(2))
    assert torch.equal(method.logits(probe, space, ctx), restored.logits(probe, space, ctx))
    accuracy = (method.logits(probe, space, ctx).argmax(1) == labels).float().mean()
    chance_free = (zero_shot.logits(probe, space, ctx).argmax(1) == labels).float().mean()
    assert float(accuracy) > float(chance_free) + 0.2


def test_all_four_are_listed():
    assert {"l2p", "dualprompt", "coda-prompt", "rapf"} <= set(available_methods())
