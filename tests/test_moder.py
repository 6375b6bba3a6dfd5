"""MoDER and CoOp: the prompt learner's exactness on the text tower, the hub's file round trip, the
recomposition math, state round trips, and the acceptance criteria on the embedded benchmarks
(world-cil: CI-Transfer above zero-shot's and coop's, Last above zero-shot's; world-mtil: Transfer
above zero-shot's) in engine runs computed here, against baselines run in the same test."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from driftless.backbones.clip import tiny_random_clip
from driftless.backbones.registry import load_tiny_clip
from driftless.config import build_run_config
from driftless.engine import run
from driftless.errors import ConfigError
from driftless.methods import build_method
from driftless.methods.base import Context, LabelSpace, TaskData
from driftless.methods.parts.expert_hub import LOADED, ExpertHub, load_hub, retrieve, save_hub
from driftless.methods.parts.prompt_learner import PromptEncoder, TemplatedPrompts
from driftless.methods.parts.text_classifier import TextEmbeddingCache
from driftless.report import build_results

PROMPTS = [
    "a photo of a red circle.",
    "red circle",
    "the letter A in an unusual font.",
    "a stripes pattern.",
    "digit 7.",
    "a small blue hexagon on a white background",
]


@pytest.fixture(scope="module")
def tiny_clip():
    return load_tiny_clip()


@pytest.fixture(scope="module")
def random_clip():
    return tiny_random_clip(seed=0)


# --- the prompt learner ---------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["tiny_clip", "random_clip"])
def test_empty_context_reproduces_the_plain_text_embedding(which, request):
    backbone = request.getfixturevalue(which)
    encoder = PromptEncoder(backbone)
    layout = encoder.layout(PROMPTS, ["{}"] * len(PROMPTS), n_ctx=0)
    with torch.no_grad():
        ours = encoder.encode(layout)
        plain = backbone.encode_texts(PROMPTS)
    assert torch.equal(layout.input_ids, backbone.tokenize(PROMPTS)["input_ids"])
    assert torch.allclose(ours, plain, atol=1e-5)


@pytest.mark.parametrize("which", ["tiny_clip", "random_clip"])
def test_context_from_a_photo_of_a_reproduces_the_templated_prompt(which, request):
    backbone = request.getfixturevalue(which)
    encoder = PromptEncoder(backbone)
    context = encoder.context_from_text("a photo of a")
    names = ["red circle", "blue star", "letter A", "two objects"]
    templates = ["{}.", "{}", "{} on a white background.", "{}."]
    layout = encoder.layout(names, templates, n_ctx=len(context))
    with torch.no_grad():
        ours = encoder.encode(layout, context.expand(len(names), -1, -1))
        plain = backbone.encode_texts(
            [f"a photo of a {t.format(n)}" for n, t in zip(names, templates, strict=True)]
        )
    assert torch.allclose(ours, plain, atol=1e-5)


def test_templates_split_around_the_context_and_gradients_reach_it(tiny_clip):
    encoder = PromptEncoder(tiny_clip)
    templates = ["a {} pattern.", "the {} in an unusual font.", "a photo of the {}.", "{}."]
    for template in templates:  # tokenizing the pieces = tokenizing the whole prompt
        layout = encoder.layout(["letter B"], [template], n_ctx=0)
        assert torch.equal(
            layout.input_ids, tiny_clip.tokenize([template.format("letter B")])["input_ids"]
        )
    context = encoder.context_from_text("a photo of a")
    prompts = TemplatedPrompts(
        encoder, ["red circle", "dots"], [("a {}.", "a drawing of a {}."), ("a {} pattern.",)], 4
    )
    with torch.no_grad():  # "a {}" with context "a photo of a" reads "a a photo of a red circle."
        first = prompts.encode_rows(torch.tensor([0, 2]), context.expand(2, -1, -1))
        plain = F.normalize(
            tiny_clip.encode_texts(["a a photo of a red circle.", "a a photo of a dots pattern."]),
            dim=-1,
        )
    assert torch.allclose(first, plain, atol=1e-5)
    contexts = context.expand(2, -1, -1).clone().requires_grad_(True)
    prompts.prototypes(contexts).sum().backward()
    assert contexts.grad is not None and contexts.grad.abs().sum() > 0


# --- the hub and the recomposition math -------------------------------------------------------------


def _random_hub(
    n: int = 6, dim: int = 8, n_ctx: int = 3, width: int = 5, seed: int = 0
) -> ExpertHub:
    g = torch.Generator().manual_seed(seed)
    hub = ExpertHub(backbone="abc")
    hub.add(
        list(range(n)),
        [f"class {i}" for i in range(n)],
        ["toy" if i % 2 else "other" for i in range(n)],
        [("a {}.", "a photo of a {}.")] * n,
        F.normalize(torch.randn(n, dim, generator=g), dim=-1),
        torch.randn(n, n_ctx, width, generator=g),
        F.normalize(torch.randn(n, dim, generator=g), dim=-1),
        F.normalize(torch.randn(n, dim, generator=g), dim=-1),
    )
    return hub


def _assert_same_hub(a: ExpertHub, b: ExpertHub) -> None:
    assert (a.backbone, a.names, a.datasets, a.templates) == (
        b.backbone,
        b.names,
        b.datasets,
        b.templates,
    )
    for field in ("keys", "contexts", "prototypes", "image_means"):
        assert torch.equal(getattr(a, field), getattr(b, field))


def test_hub_file_round_trip_from_a_hub_file_a_checkpoint_and_a_run_directory(tmp_path):
    hub = _random_hub()
    save_hub(hub, tmp_path / "hub.pt")
    torch.load(tmp_path / "hub.pt", weights_only=True)  # plain data only
    loaded = load_hub(tmp_path / "hub.pt")
    _assert_same_hub(hub, loaded)
    assert loaded.class_ids == hub.class_ids
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    torch.save(
        {"method_state": {"hub": hub.state_dict()}}, tmp_path / "run" / "checkpoints" / "moder.pt"
    )
    _assert_same_hub(hub, load_hub(tmp_path / "run"))
    other = ExpertHub(backbone="abc")
    other.extend(loaded)  # foreign entries are retrieval sources only
    assert other.class_ids == [LOADED] * len(hub) and other.own_rows() == {}
    with pytest.raises(ConfigError, match="another backbone"):
        ExpertHub(backbone="xyz").extend(loaded)
    with pytest.raises(ConfigError, match="not found"):
        load_hub(tmp_path / "missing.pt")


def test_retrieval_weights_sum_to_one_k1_is_the_nearest_and_exclusions_hold():
    g = torch.Generator().manual_seed(1)
    keys = F.normalize(torch.randn(10, 8, generator=g), dim=-1)
    queries = F.normalize(torch.randn(4, 8, generator=g), dim=-1)
    rows, weights = retrieve(queries, keys, k=5, tau=0.1)
    assert rows.shape == weights.shape == (4, 5)
    assert torch.allclose(weights.sum(dim=1), torch.ones(4)) and (weights > 0).all()
    assert (weights[:, :-1] >= weights[:, 1:]).all()  # sorted by similarity
    nearest, one = retrieve(queries, keys, k=1, tau=0.1)
    assert torch.equal(nearest[:, 0], (queries @ keys.T).argmax(dim=1)) and torch.equal(
        one, torch.ones(4, 1)
    )
    sims = queries @ keys.T
    top = sims.topk(5, dim=1)
    assert torch.allclose(weights, torch.softmax(top.values / 0.1, dim=1))
    own, _ = retrieve(keys, keys, k=3, tau=0.1, exclude=torch.eye(10, dtype=torch.bool))
    assert not (own == torch.arange(10)[:, None]).any()  # leave-one-out never retrieves itself
    assert retrieve(queries, keys, k=50, tau=0.1)[0].shape == (4, 10)  # k larger than the hub


def test_alpha_smoothing_endpoints():
    from driftless.methods.moder import MoDER

    g = torch.Generator().manual_seed(2)
    recomposed = F.normalize(torch.randn(5, 8, generator=g), dim=-1)
    zero_shot = F.normalize(torch.randn(5, 8, generator=g), dim=-1)
    assert torch.equal(MoDER.smooth(recomposed, zero_shot, 0.0), zero_shot)
    assert torch.allclose(MoDER.smooth(recomposed, zero_shot, 1.0), recomposed, atol=1e-6)
    half = MoDER.smooth(recomposed, zero_shot, 0.5)
    assert torch.allclose(half, F.normalize(recomposed + zero_shot, dim=-1), atol=1e-6)
    mixed = MoDER.smooth(recomposed, zero_shot, torch.tensor([0.0, 1.0, 0.0, 0.5, 0.0]))
    assert torch.equal(mixed[[0, 2, 4]], zero_shot[[0, 2, 4]])


# --- MoDER and CoOp as methods (tiny random CLIP, synthetic features) ---------------------------------

NAMES = ["red circle", "blue circle", "red square", "blue square", "green star", "green ring"]
TEMPLATES = ("a photo of a {}.", "a {}.", "a drawing of a {}.")
FAST = {"epochs": 2, "batch_size": 16}


def _space(ids) -> LabelSpace:
    ids = tuple(ids)
    return LabelSpace(ids, tuple(NAMES[i] for i in ids), tuple(TEMPLATES for _ in ids),
                      tuple("toy" for _ in ids))  # fmt: skip


def _context(backbone, texts, seed: int = 0) -> Context:
    return Context(backbone, SimpleNamespace(device=torch.device("cpu")),
                   torch.Generator().manual_seed(seed), texts)  # fmt: skip


def _task(t: int, ids, backbone, per_class: int = 12) -> TaskData:
    g = torch.Generator().manual_seed(10 + t)
    texts = F.normalize(
        backbone.encode_texts([f"a photo of a {NAMES[i]}." for i in ids]).detach(), dim=-1
    )
    labels = torch.tensor(ids).repeat_interleave(per_class)
    features = texts.repeat_interleave(per_class, dim=0) + 0.05 * torch.randn(
        len(labels), texts.shape[1], generator=g
    )
    task = SimpleNamespace(
        index=t, name=f"task {t}", class_ids=tuple(ids), train=(SimpleNamespace(dataset="toy"),)
    )
    return TaskData(task, labels, _space(ids), _space(range(max(ids) + 1)), features=features)


def _round_trip(method, name: str, config: dict):
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    restored = build_method(name, config)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    return restored


@pytest.mark.parametrize("name", ["moder", "coop"])
def test_state_round_trip_gives_identical_logits(name, random_clip):
    texts = TextEmbeddingCache(random_clip)
    method = build_method(name, FAST)
    for t, ids in enumerate([[0, 1, 2], [3, 4]]):
        method.learn(_task(t, ids, random_clip), _context(random_clip, texts, t))
    restored = _round_trip(method, name, FAST)
    batch = torch.randn(7, random_clip.embed_dim, generator=torch.Generator().manual_seed(3))
    everything = _space(range(len(NAMES)))  # five seen classes and one never trained on
    ctx = _context(random_clip, texts)
    with torch.inference_mode():
        assert torch.equal(
            method.logits(batch, everything, ctx), restored.logits(batch, everything, ctx)
        )


def test_moder_untrained_is_zero_shot_and_seen_classes_use_their_experts(random_clip):
    texts = TextEmbeddingCache(random_clip)
    ctx = _context(random_clip, texts)
    method = build_method("moder", FAST)
    everything = _space(range(len(NAMES)))
    with torch.inference_mode():  # empty hub: every class by its zero-shot embedding
        assert torch.equal(method.prototypes(everything, ctx), texts(everything))
    method.learn(_task(0, [0, 1, 2], random_clip), ctx)
    hub = method.hub_
    assert hub.names == NAMES[:3] and hub.datasets == ["toy"] * 3 and hub.class_ids == [0, 1, 2]
    assert hub.contexts.shape == (3, 4, random_clip.model.config.text_config.hidden_size)
    prototypes = method.prototypes(everything, ctx)
    assert torch.equal(prototypes[:3], hub.prototypes)  # seen: their own refined prototypes
    assert not torch.allclose(
        prototypes[3:], texts(everything)[3:]
    )  # unseen: recomposed (α > 0 here)
    fixed_zero = build_method("moder", {**FAST, "alpha": 0.0})
    fixed_zero.learn(_task(0, [0, 1, 2], random_clip), ctx)
    assert torch.equal(fixed_zero.prototypes(everything, ctx)[3:], texts(everything)[3:])


def test_unseen_classes_of_another_dataset_take_the_cross_dataset_alpha(random_clip):
    """Whether an unseen class is "within" or "across" is its dataset's name, not its templates:
    the same templates under another dataset's name take the cross-dataset α (0 here, so exactly
    zero-shot), under the hub's dataset the within-dataset α (1 here, recomposed)."""
    texts = TextEmbeddingCache(random_clip)
    ctx = _context(random_clip, texts)
    method = build_method("moder", {**FAST, "alpha": 1.0})
    method.learn(_task(0, [0, 1, 2], random_clip), ctx)
    method.alpha_within_, method.alpha_across_ = 1.0, 0.0
    ids = (3, 4)
    within = LabelSpace(ids, tuple(NAMES[i] for i in ids), (TEMPLATES,) * 2, ("toy",) * 2)
    across = LabelSpace(ids, tuple(NAMES[i] for i in ids), (TEMPLATES,) * 2, ("other",) * 2)
    with torch.inference_mode():
        assert torch.equal(method.prototypes(across, ctx), texts(across))
        assert not torch.allclose(method.prototypes(within, ctx), texts(within))
    with pytest.raises(ValueError, match="2 class ids, 2 names, 2 template lists and 1 datasets"):
        LabelSpace(ids, ("a", "b"), (TEMPLATES,) * 2, ("toy",))


def test_moder_loads_a_hub_from_another_run_as_retrieval_sources(tmp_path, random_clip):
    texts = TextEmbeddingCache(random_clip)
    ctx = _context(random_clip, texts)
    source = build_method("moder", {**FAST, "export_path": str(tmp_path / "hub.pt")})
    source.learn(_task(0, [0, 1, 2, 3], random_clip), ctx)
    assert (tmp_path / "hub.pt").is_file()
    config = {**FAST, "hub_path": str(tmp_path / "hub.pt"), "alpha": 1.0}
    target = build_method("moder", config)
    unseen = _space([4, 5])
    with torch.inference_mode():  # before any task: the loaded experts recompose every class
        recomposed = target.prototypes(unseen, ctx)
    assert target.hub_.class_ids == [LOADED] * 4
    assert not torch.allclose(recomposed, texts(unseen))
    target.learn(_task(1, [4], random_clip), ctx)
    assert target.hub_.class_ids == [LOADED] * 4 + [4]
    restored = _round_trip(target, "moder", config)  # a resumed run does not load the file again
    restored.prototypes(unseen, ctx)
    assert len(restored.hub_) == 5
    other = tiny_random_clip(seed=1)
    with pytest.raises(ConfigError, match="another backbone"):
        build_method("moder", config).prototypes(unseen, _context(other, TextEmbeddingCache(other)))


def test_config_errors():
    with pytest.raises(ConfigError, match="alpha"):
        build_method("moder", {"alpha": 1.5})
    with pytest.raises(ConfigError, match="prompt"):
        build_method("coop", {"prompt": "no slot"})


# --- the acceptance criteria on the embedded benchmarks -------------------------------------------


def _metrics(benchmark: str, methods: list[str], tmp_path, cache_dir) -> dict[str, dict]:
    config = build_run_config(
        {
            "benchmark": benchmark,
            "methods": methods,
            "out": tmp_path / benchmark,
            "cache_dir": cache_dir,
            "seed": 0,
        }
    )
    results = build_results(run(config, progress=False))
    return {name: m["metrics"] for name, m in results["methods"].items()}


def test_world_cil_moder_beats_zero_shot_and_coop_on_unseen_and_zero_shot_on_seen(
    tmp_path, cache_dir
):
    metrics = _metrics("world-cil", ["zero-shot", "coop", "moder"], tmp_path, cache_dir)
    moder, zero_shot, coop = metrics["moder"], metrics["zero-shot"], metrics["coop"]
    print(
        {
            name: {k: round(v, 2) for k, v in m.items() if v is not None}
            for name, m in metrics.items()
        }
    )
    assert moder["ci_transfer"] > zero_shot["ci_transfer"]
    assert moder["ci_transfer"] > coop["ci_transfer"]
    assert moder["last"] > zero_shot["last"]


def test_world_mtil_moder_transfer_beats_zero_shot(tmp_path, cache_dir):
    # measured 56.74 vs 56.61 with seeds 0, 1 and 2 (docs/methods/moder.md): a small margin.
    # Recomposition across these unrelated datasets gains little; the leave-one-dataset-out α
    # keeps it from hurting (with the within-dataset α everywhere Transfer falls to 53.7)
    metrics = _metrics("world-mtil", ["zero-shot", "moder"], tmp_path, cache_dir)
    print(metrics)
    assert metrics["moder"]["transfer"] > metrics["zero-shot"]["transfer"]
    assert metrics["moder"]["last"] > metrics["zero-shot"]["last"] + 10


# --- the mechanisms: each test fails when its mechanism breaks ----------------------------------


def _hub_method(random_clip, config: dict):
    """MoDER with a hand-made hub of four experts: two near "circle" keys, two near "star"."""
    texts = TextEmbeddingCache(random_clip)
    method = build_method("moder", {**FAST, **config})
    width = random_clip.model.config.text_config.hidden_size
    g = torch.Generator().manual_seed(4)
    dim = random_clip.embed_dim
    base = F.normalize(torch.randn(2, dim, generator=g), dim=-1)
    keys = F.normalize(
        torch.cat([base[0] + 0.2 * torch.randn(2, dim, generator=g),
                   base[1] + 0.2 * torch.randn(2, dim, generator=g)]), dim=-1
    )  # fmt: skip
    contexts = torch.randn(4, 4, width, generator=g)
    names = ["red circle", "blue circle", "green star", "blue square"]
    method.hub_.add(range(4), names, ["toy"] * 4, [TEMPLATES] * 4, keys, contexts,
                    F.normalize(torch.randn(4, dim, generator=g), dim=-1), keys)  # fmt: skip
    return method, _context(random_clip, texts), base, keys, contexts


def test_recomposition_mixes_the_retrieved_experts_contexts_by_their_weights(random_clip):
    """p_u = encode(Σ_top-k softmax(cos(k_u, k_c)/τ) ctx_c + name of u): the nearest experts weigh
    most (not every hub entry alike, not uniform weights)."""
    method, ctx, base, keys, contexts = _hub_method(random_clip, {"k": 2, "tau": 0.1})
    query = base[:1]  # near the two "circle" entries
    sims = F.normalize(query, dim=-1) @ keys.T
    top = sims.topk(2, dim=1)
    assert set(top.indices[0].tolist()) == {0, 1}
    weights = torch.softmax(top.values / 0.1, dim=1)
    assert float((weights[0, 0] - weights[0, 1]).abs()) > 1e-3  # not uniform
    mixed = torch.einsum("uk,ukcw->ucw", weights, contexts[top.indices])
    names, templates = ["green circle"], [TEMPLATES]
    with torch.inference_mode():
        composed = method.compose(query, names, templates, ctx)
        expected = method.encode_with_contexts(names, templates, mixed, ctx)
        uniform = method.encode_with_contexts(names, templates, contexts[[0, 1]].mean(0)[None], ctx)
        everything = method.encode_with_contexts(names, templates, contexts.mean(0)[None], ctx)
    torch.testing.assert_close(composed, expected, atol=1e-5, rtol=0)
    assert not torch.allclose(composed, uniform, atol=1e-4)
    assert not torch.allclose(composed, everything, atol=1e-4)


def test_global_mean_control_composes_every_hub_entry_alike(random_clip):
    method, ctx, base, _, contexts = _hub_method(random_clip, {"composition": "global-mean"})
    names, templates = ["green circle", "red star"], [TEMPLATES] * 2
    with torch.inference_mode():
        composed = method.compose(base, names, templates, ctx)
        mean = contexts.mean(0)[None].expand(2, *contexts.shape[1:])
        expected = method.encode_with_contexts(names, templates, mean, ctx)
        # leave-one-out: the mean of the other entries
        held_out = method.compose(base[:1], names[:1], templates[:1], ctx,
                                  torch.tensor([[True, False, False, False]]))  # fmt: skip
        others = method.encode_with_contexts(
            names[:1], templates[:1], contexts[1:].mean(0)[None], ctx
        )
    torch.testing.assert_close(composed, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(held_out, others, atol=1e-5, rtol=0)


def test_untrained_experts_keep_the_initial_context(random_clip):
    texts = TextEmbeddingCache(random_clip)
    ctx = _context(random_clip, texts)
    trained = build_method("moder", FAST)
    untrained = build_method("moder", {**FAST, "experts": "untrained"})
    trained.learn(_task(0, [0, 1, 2], random_clip), ctx)
    untrained.learn(_task(0, [0, 1, 2], random_clip), _context(random_clip, texts))
    initial = untrained.hub_.contexts[0]
    assert torch.equal(untrained.hub_.contexts, initial.expand_as(untrained.hub_.contexts))
    assert not torch.allclose(trained.hub_.contexts, untrained.hub_.contexts)


def test_alpha_rule_picks_the_grid_value_the_leave_one_out_score_prefers(random_clip):
    """α by leave-one-class-out: the chosen α maximizes the held-out score over the grid (and a
    score that prefers zero-shot prototypes gives α = 0)."""
    method, ctx, *_ = _hub_method(random_clip, {"alpha_grid": 11})
    hub = method.hub_
    with torch.inference_mode():
        within, across = method.choose_alphas(ctx)
        recomposed = method.compose(hub.keys, hub.names, hub.templates, ctx, torch.eye(4) > 0)
    from driftless.methods.parts.expert_hub import within_dataset_score

    grid = torch.linspace(0, 1, 11).tolist()
    scores = [within_dataset_score(hub, method.smooth(recomposed, hub.keys, a),
                                   random_clip.logit_scale, "images") for a in grid]  # fmt: skip
    assert within == grid[max(range(11), key=scores.__getitem__)] and across == 0.0
    hub.image_means = hub.keys.clone()  # each class's images sit on its zero-shot key
    hub.prototypes = hub.keys.clone()
    with torch.inference_mode():
        assert method.choose_alphas(ctx)[0] == 0.0
