"""Tests of driftless.benchmarks: class orders, the class-incremental and multi-domain protocols,
few-shot sampling, evaluation label spaces and the YAML registry."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml

from driftless.benchmarks import (
    CONTINUAL_CLIP_CIFAR100_ORDER,
    Benchmark,
    BenchmarkSpec,
    class_incremental,
    list_benchmarks,
    load_benchmark,
    load_benchmark_spec,
    multi_domain,
    resolve_order,
    seeded_permutation,
)
from driftless.data import Dataset, toy_shapes
from driftless.errors import ConfigError, DataError

# ---------------------------------------------------------------------------------------------
# helpers


def _toy(num_classes: int = 12, train: int = 4, test: int = 3, seed: int = 0) -> Dataset:
    return toy_shapes(
        num_classes=num_classes, train_per_class=train, test_per_class=test, image_size=8, seed=seed
    )


@pytest.fixture(scope="module")
def toy12() -> Dataset:
    return _toy(12, train=6, test=3)


def _global_numpy_permutation(seed: int, n: int) -> list[int]:
    """``numpy.random.seed(seed); numpy.random.permutation(n)`` with the global API, restoring the
    global state afterwards."""
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        return [int(c) for c in np.random.permutation(n)]
    finally:
        np.random.set_state(state)


def _same_numpy_state(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and tuple(a[2:]) == tuple(b[2:])


def _write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


TOY_CIL_SPEC = {
    "name": "my-toy",
    "protocol": "class-incremental",
    "datasets": [
        {
            "type": "toy-shapes",
            "params": {
                "num_classes": 6,
                "train_per_class": 2,
                "test_per_class": 2,
                "image_size": 8,
            },
        }
    ],
    "base": 2,
    "increment": 2,
    "order": "seed:5",
}


# ---------------------------------------------------------------------------------------------
# resolve_order


def test_resolve_order_identity() -> None:
    assert resolve_order("identity", 7) == list(range(7))
    assert resolve_order(None, 4) == [0, 1, 2, 3]


def test_resolve_order_continual_clip() -> None:
    order = resolve_order("continual-clip", 100)
    assert len(order) == 100
    assert order[:3] == [87, 0, 52]
    assert order[-3:] == [26, 35, 39]
    assert sorted(order) == list(range(100))
    assert order == list(CONTINUAL_CLIP_CIFAR100_ORDER)
    with pytest.raises(ConfigError, match="100"):
        resolve_order("continual-clip", 12)


def test_resolve_order_seed1993_matches_global_numpy() -> None:
    expected = _global_numpy_permutation(1993, 100)
    before = np.random.get_state()
    order = resolve_order("seed1993", 100)
    assert _same_numpy_state(before, np.random.get_state())  # global state untouched
    assert order == expected
    assert seeded_permutation(1993, 100) == expected
    assert resolve_order("seed:1993", 100) == expected


def test_resolve_order_any_seed() -> None:
    expected = _global_numpy_permutation(7, 12)
    assert resolve_order("seed:7", 12) == expected
    assert resolve_order("seed7", 12) == expected
    assert resolve_order("seed:8", 12) != expected
    assert sorted(resolve_order("seed:7", 12)) == list(range(12))


def test_resolve_order_explicit_lists() -> None:
    assert resolve_order([2, 0, 1], 3) == [2, 0, 1]
    assert resolve_order((3, 1, 0, 2), 4) == [3, 1, 0, 2]
    assert resolve_order(np.array([1, 0]), 2) == [1, 0]


@pytest.mark.parametrize(
    "order",
    [[0, 0, 1], [0, 1], [0, 1, 2, 3], [1, 2, 3]],
    ids=["repeat", "short", "long", "out-of-range"],
)
def test_resolve_order_rejects_non_permutations(order: list[int]) -> None:
    with pytest.raises(ConfigError, match="permutation"):
        resolve_order(order, 3)


@pytest.mark.parametrize("order", ["random", "seed:", "seed:abc", "seedx", "seed:-1"])
def test_resolve_order_rejects_bad_names(order: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_order(order, 5)
    assert str(info.value).startswith("order:")
    assert repr(order) in str(info.value)


# ---------------------------------------------------------------------------------------------
# class_incremental


def _check_class_incremental(bench: Benchmark, ds: Dataset, sizes: list[int], order) -> None:
    permutation = resolve_order(order, ds.num_classes)
    assert bench.protocol == "class-incremental"
    assert bench.num_tasks == len(sizes)
    assert [len(t.class_ids) for t in bench.tasks] == sizes
    # classes follow the order, block by block
    flat = [c for t in bench.tasks for c in t.class_ids]
    assert flat == permutation
    assert list(bench.all_class_ids()) == permutation

    train_labels = ds.split("train").labels
    test_labels = ds.split("test").labels
    start = 0
    all_test = []
    for t, (task, split) in enumerate(zip(bench.tasks, bench.eval_splits, strict=True)):
        block = permutation[start : start + sizes[t]]
        start += sizes[t]
        assert task.index == t
        assert list(task.class_ids) == block
        assert len(task.train) == 1
        (train,) = task.train
        assert train.split == "train" and train.dataset == ds.name
        # exactly the task's classes, and all of their samples
        np.testing.assert_array_equal(train.indices, np.flatnonzero(np.isin(train_labels, block)))
        assert set(train_labels[train.indices].tolist()) == set(block)
        np.testing.assert_array_equal(bench.labels(train), train_labels[train.indices])
        # its evaluation split holds exactly the block's test samples
        assert split.task_index == t
        assert list(split.class_ids) == block
        assert split.samples.split == "test"
        assert set(test_labels[split.samples.indices].tolist()) == set(block)
        np.testing.assert_array_equal(
            split.samples.indices, np.flatnonzero(np.isin(test_labels, block))
        )
        all_test.extend(split.samples.indices.tolist())
    # every test sample is in exactly one evaluation split
    assert sorted(all_test) == list(range(len(test_labels)))


def test_class_incremental_b0(toy12: Dataset) -> None:
    bench = class_incremental(toy12, 0, 3, "seed:3")
    _check_class_incremental(bench, toy12, [3, 3, 3, 3], "seed:3")
    assert bench.name == f"{toy12.name}-b0inc3"
    assert bench.datasets == {toy12.name: toy12}
    assert [c.id for c in bench.classes] == list(range(12))
    assert [c.name for c in bench.classes] == list(toy12.class_names)
    assert all(c.templates == toy12.templates for c in bench.classes)


def test_class_incremental_with_a_base_task(toy12: Dataset) -> None:
    bench = class_incremental(toy12, 4, 2, "identity", name="toy-b4inc2", description="d")
    _check_class_incremental(bench, toy12, [4, 2, 2, 2, 2], "identity")
    assert bench.name == "toy-b4inc2"
    assert bench.description == "d"
    assert bench.tasks[0].class_ids == (0, 1, 2, 3)
    assert bench.tasks[-1].class_ids == (10, 11)
    assert bench.seen_class_ids(2) == (0, 1, 2, 3, 4, 5)


def test_class_incremental_explicit_sizes_and_order(toy12: Dataset) -> None:
    order = [11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    bench = class_incremental(toy12, 0, [5, 1, 6], order)
    _check_class_incremental(bench, toy12, [5, 1, 6], order)
    assert bench.tasks[1].class_ids == (6,)


def test_class_incremental_increment_must_divide(toy12: Dataset) -> None:
    with pytest.raises(ConfigError) as info:
        class_incremental(toy12, 0, 5)
    message = str(info.value)
    assert message.startswith("increment:")
    assert "12" in message and "not a multiple of 5" in message

    with pytest.raises(ConfigError, match=r"base 4 leave 8, not a multiple of 3"):
        class_incremental(toy12, 4, 3)


def test_class_incremental_explicit_sizes_must_sum(toy12: Dataset) -> None:
    with pytest.raises(ConfigError) as info:
        class_incremental(toy12, 0, [4, 4, 3])
    assert "increment" in str(info.value)
    assert "sum to 12" in str(info.value)
    with pytest.raises(ConfigError, match="positive"):
        class_incremental(toy12, 0, [6, 0, 6])


@pytest.mark.parametrize(
    ("base", "increment", "field"),
    [(0, 0, "increment"), (0, -2, "increment"), (-1, 2, "base"), (12, 2, "base")],
)
def test_class_incremental_rejects_bad_sizes(toy12: Dataset, base, increment, field) -> None:
    with pytest.raises(ConfigError, match=f"^{field}:"):
        class_incremental(toy12, base, increment)


def test_class_incremental_rejects_bad_orders(toy12: Dataset) -> None:
    with pytest.raises(ConfigError, match="permutation"):
        class_incremental(toy12, 0, 3, list(range(11)))
    with pytest.raises(ConfigError, match="continual-clip"):
        class_incremental(toy12, 0, 3, "continual-clip")


def test_class_incremental_few_shot() -> None:
    ds = _toy(8, train=6, test=2)
    bench = class_incremental(ds, 0, 2, "seed:1", shots=2, seed=4)
    labels = ds.split("train").labels
    for task in bench.tasks:
        (train,) = task.train
        chosen = labels[train.indices]
        counts = {c: int((chosen == c).sum()) for c in task.class_ids}
        assert counts == dict.fromkeys(task.class_ids, 2)
        assert len(set(train.indices.tolist())) == len(train.indices)
        assert list(train.indices) == sorted(train.indices)
        assert set(chosen.tolist()) == set(task.class_ids)
    # test samples are never subsampled
    assert sum(len(s.samples.indices) for s in bench.eval_splits) == len(ds.split("test"))

    # deterministic in the seed
    again = class_incremental(ds, 0, 2, "seed:1", shots=2, seed=4)
    other = class_incremental(ds, 0, 2, "seed:1", shots=2, seed=5)
    for a, b in zip(bench.tasks, again.tasks, strict=True):
        np.testing.assert_array_equal(a.train[0].indices, b.train[0].indices)
    assert any(
        not np.array_equal(a.train[0].indices, b.train[0].indices)
        for a, b in zip(bench.tasks, other.tasks, strict=True)
    )

    # all shots available = the whole training set
    full = class_incremental(ds, 0, 2, "seed:1", shots=6)
    plain = class_incremental(ds, 0, 2, "seed:1")
    for a, b in zip(full.tasks, plain.tasks, strict=True):
        np.testing.assert_array_equal(a.train[0].indices, b.train[0].indices)

    with pytest.raises(ConfigError, match="shots"):
        class_incremental(ds, 0, 2, shots=7)


def test_eval_label_space_class_incremental(toy12: Dataset) -> None:
    bench = class_incremental(toy12, 4, 4, "seed:2")
    blocks = [t.class_ids for t in bench.tasks]
    everything = blocks[0] + blocks[1] + blocks[2]
    assert len(everything) == 12

    # row 0 (before training): every block over all classes, with or without eval_future
    for split in bench.eval_splits:
        assert bench.eval_label_space(0, split, eval_future=True) == everything
        assert bench.eval_label_space(0, split, eval_future=False) == everything

    for done in (1, 2, 3):
        seen = tuple(c for b in blocks[:done] for c in b)
        assert bench.seen_class_ids(done) == seen
        for k, split in enumerate(bench.eval_splits):
            if k < done:  # learned blocks: over the classes seen so far
                assert bench.eval_label_space(done, split, eval_future=True) == seen
                assert bench.eval_label_space(done, split, eval_future=False) == seen
            else:  # future blocks: over all classes, or not evaluated
                assert bench.eval_label_space(done, split, eval_future=True) == everything
                assert bench.eval_label_space(done, split, eval_future=False) is None

    # explicitly: after one task, block 1 is predicted over its 4 classes only
    assert bench.eval_label_space(1, bench.eval_splits[0], True) == blocks[0]


# ---------------------------------------------------------------------------------------------
# multi_domain


@pytest.fixture(scope="module")
def three_toys() -> list[Dataset]:
    return [_toy(4, 3, 2, seed=1), _toy(6, 2, 3, seed=2), _toy(3, 4, 1, seed=3)]


def test_multi_domain_offsets_and_labels(three_toys: list[Dataset]) -> None:
    bench = multi_domain(three_toys, name="mtil-toy")
    assert bench.protocol == "multi-domain"
    assert bench.name == "mtil-toy"
    assert bench.num_tasks == 3
    assert list(bench.datasets) == [d.name for d in three_toys]
    assert len(bench.classes) == 4 + 6 + 3

    offsets = [0, 4, 10]
    for ds, offset, task, split in zip(
        three_toys, offsets, bench.tasks, bench.eval_splits, strict=True
    ):
        ids = tuple(range(offset, offset + ds.num_classes))
        assert task.class_ids == ids
        assert task.name == ds.name
        assert split.class_ids == ids
        assert split.name == ds.name
        for local, gid in enumerate(ids):
            info = bench.classes[gid]
            assert info.id == gid
            assert info.dataset == ds.name
            assert info.local_label == local
            assert info.name == ds.class_names[local]
            assert info.templates == ds.templates
        # whole splits, labels mapped to global ids
        (train,) = task.train
        assert train.dataset == ds.name
        np.testing.assert_array_equal(train.indices, np.arange(len(ds.split("train"))))
        np.testing.assert_array_equal(split.samples.indices, np.arange(len(ds.split("test"))))
        np.testing.assert_array_equal(bench.labels(train), ds.split("train").labels + offset)
        np.testing.assert_array_equal(bench.labels(split.samples), ds.split("test").labels + offset)
        assert set(bench.labels(split.samples).tolist()) == set(ids)

    assert bench.all_class_ids() == tuple(range(13))


def test_multi_domain_evaluates_each_dataset_over_its_own_classes(
    three_toys: list[Dataset],
) -> None:
    bench = multi_domain(three_toys)
    assert bench.name == "-".join(d.name for d in three_toys)
    expected = [tuple(range(0, 4)), tuple(range(4, 10)), tuple(range(10, 13))]
    for done in range(bench.num_tasks + 1):
        for split, ids in zip(bench.eval_splits, expected, strict=True):
            assert bench.eval_label_space(done, split, eval_future=True) == ids
            assert bench.eval_label_space(done, split, eval_future=False) == ids


def test_multi_domain_few_shot(three_toys: list[Dataset]) -> None:
    bench = multi_domain(three_toys, shots=1, seed=3)
    for ds, task in zip(three_toys, bench.tasks, strict=True):
        labels = ds.split("train").labels[task.train[0].indices]
        assert sorted(labels.tolist()) == list(range(ds.num_classes))
    again = multi_domain(three_toys, shots=1, seed=3)
    for a, b in zip(bench.tasks, again.tasks, strict=True):
        np.testing.assert_array_equal(a.train[0].indices, b.train[0].indices)
    with pytest.raises(ConfigError, match="shots"):
        multi_domain(three_toys, shots=3)  # the second dataset has 2 per class


def test_multi_domain_rejects_duplicate_names() -> None:
    a, b = _toy(4, 1, 1, seed=1), _toy(4, 1, 1, seed=2)
    assert a.name == b.name
    with pytest.raises(ConfigError) as info:
        multi_domain([a, b])
    assert repr(a.name) in str(info.value)
    assert "twice" in str(info.value)
    with pytest.raises(ConfigError, match="at least one"):
        multi_domain([])


# ---------------------------------------------------------------------------------------------
# the YAML registry


def test_list_benchmarks_has_the_builtin_specs() -> None:
    specs = list_benchmarks()
    assert {"toy-cil", "toy-mtil", "cifar100-b0inc10"} <= set(specs)
    assert all(isinstance(s, BenchmarkSpec) for s in specs.values())
    cifar = specs["cifar100-b0inc10"]
    assert cifar.protocol == "class-incremental"
    assert (cifar.base, cifar.increment, cifar.order) == (0, 10, "continual-clip")
    assert cifar.datasets[0].type == "cifar100"
    assert specs["toy-mtil"].protocol == "multi-domain"
    assert load_benchmark_spec("toy-cil") == specs["toy-cil"]


def test_world_cil_shift_learns_world_cils_images_and_scores_a_shifted_test_set() -> None:
    specs = list_benchmarks()
    cil, shift = specs["world-cil"], specs["world-cil-shift"]
    assert (shift.protocol, shift.base, shift.increment) == ("class-incremental", 0, 8)
    params = dict(shift.datasets[0].params)
    assert params.pop("test_nuisance") == [0.1, 2.5]
    assert params == cil.datasets[0].params  # same classes, same training images
    assert shift.method_config == cil.method_config


def test_world_cil_long_is_world_cil_in_tasks_of_two() -> None:
    specs = list_benchmarks()
    cil, long = specs["world-cil"], specs["world-cil-long"]
    assert long.datasets == cil.datasets and (long.order, long.seed) == (cil.order, cil.seed)
    assert (long.protocol, long.base, long.increment) == ("class-incremental", 0, 2)
    # world-cil's method settings, except CalFuse's: fused here, not calibrated
    settings = dict(long.method_config)
    assert settings.pop("calfuse") == {"calibration": "off"}
    assert settings == {m: c for m, c in cil.method_config.items() if m != "calfuse"}


def test_load_builtin_toy_cil(tmp_path: Path) -> None:
    bench = load_benchmark("toy-cil", tmp_path)
    spec = load_benchmark_spec("toy-cil")
    assert bench.name == "toy-cil"
    assert [len(t.class_ids) for t in bench.tasks] == [spec.base] + [spec.increment] * (
        (12 - spec.base) // spec.increment
    )
    assert list(bench.all_class_ids()) == _global_numpy_permutation(1993, 12)


def test_load_builtin_toy_mtil(tmp_path: Path) -> None:
    bench = load_benchmark("toy-mtil", tmp_path)
    assert bench.protocol == "multi-domain"
    assert [len(t.class_ids) for t in bench.tasks] == [4, 6, 8]
    assert bench.tasks[1].class_ids[0] == 4 and bench.tasks[2].class_ids[0] == 10


def _write_cifar_100(folder: Path) -> None:
    """A miniature CIFAR-100: 100 classes, one train and one test image each."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        entry = {
            "data": rng.integers(0, 256, size=(100, 3072), dtype=np.uint8),
            "fine_labels": list(range(99, -1, -1)),
        }
        (folder / split).write_bytes(pickle.dumps(entry, protocol=2))
    meta = {"fine_label_names": [f"class_{i:02d}" for i in range(100)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))


def test_load_builtin_cifar100_b0inc10(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_benchmark("cifar100-b0inc10", tmp_path)
    assert str(tmp_path) in str(info.value)

    _write_cifar_100(tmp_path / "cifar-100-python")
    bench = load_benchmark("cifar100-b0inc10", tmp_path)
    assert bench.num_tasks == 10
    assert bench.tasks[0].class_ids == CONTINUAL_CLIP_CIFAR100_ORDER[:10]
    assert bench.classes[87].name == "class 87"
    assert bench.classes[0].templates == ("a bad photo of a {}.",)
    first = bench.eval_splits[0]
    assert sorted(bench.labels(first.samples).tolist()) == sorted(
        CONTINUAL_CLIP_CIFAR100_ORDER[:10]
    )


def test_load_spec_from_yaml_file(tmp_path: Path) -> None:
    path = _write_yaml(tmp_path / "mine.yaml", TOY_CIL_SPEC)
    spec = load_benchmark_spec(str(path))
    assert spec.name == "my-toy"
    bench = load_benchmark(str(path), tmp_path)
    assert [len(t.class_ids) for t in bench.tasks] == [2, 2, 2]
    assert list(bench.all_class_ids()) == _global_numpy_permutation(5, 6)

    # a template override reaches every class
    data = {**TOY_CIL_SPEC, "datasets": [{**TOY_CIL_SPEC["datasets"][0], "templates": ["x {}"]}]}
    bench = load_benchmark(str(_write_yaml(tmp_path / "t.yml", data)), tmp_path)
    assert all(c.templates == ("x {}",) for c in bench.classes)


def test_load_spec_unknown_key_is_named(tmp_path: Path) -> None:
    path = _write_yaml(tmp_path / "typo.yaml", {**TOY_CIL_SPEC, "incremnt": 2})
    with pytest.raises(ConfigError) as info:
        load_benchmark_spec(str(path))
    assert "incremnt" in str(info.value)
    assert str(path) in str(info.value)

    nested = {**TOY_CIL_SPEC, "datasets": [{"type": "toy-shapes", "paramz": {}}]}
    path = _write_yaml(tmp_path / "nested.yaml", nested)
    with pytest.raises(ConfigError, match=r"datasets\.0\.paramz"):
        load_benchmark_spec(str(path))


def test_load_spec_bad_increment(tmp_path: Path) -> None:
    # not a multiple: found when the benchmark is built
    path = _write_yaml(tmp_path / "inc4.yaml", {**TOY_CIL_SPEC, "base": 0, "increment": 4})
    with pytest.raises(ConfigError, match=r"^increment:.*not a multiple of 4"):
        load_benchmark(str(path), tmp_path)
    # not a number: found when the spec is read
    path = _write_yaml(tmp_path / "incx.yaml", {**TOY_CIL_SPEC, "increment": "ten"})
    with pytest.raises(ConfigError, match="increment"):
        load_benchmark_spec(str(path))
    # sizes that do not sum to the class count
    path = _write_yaml(tmp_path / "list.yaml", {**TOY_CIL_SPEC, "increment": [2, 2]})
    with pytest.raises(ConfigError, match="sum to 6"):
        load_benchmark(str(path), tmp_path)
    # missing for a class-incremental spec
    data = {k: v for k, v in TOY_CIL_SPEC.items() if k != "increment"}
    with pytest.raises(ConfigError, match=r"my-toy\.increment"):
        load_benchmark(str(_write_yaml(tmp_path / "none.yaml", data)), tmp_path)


def test_load_spec_other_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown benchmark 'no-such-bench'"):
        load_benchmark_spec("no-such-bench")
    missing = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as info:
        load_benchmark_spec(str(missing))
    assert str(missing) in str(info.value)

    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\nprotocol: : :\n")
    with pytest.raises(ConfigError) as info:
        load_benchmark_spec(str(broken))
    assert str(broken) in str(info.value)

    with pytest.raises(ConfigError, match="protocol"):
        load_benchmark_spec(
            str(_write_yaml(tmp_path / "p.yaml", {**TOY_CIL_SPEC, "protocol": "x"}))
        )
    with pytest.raises(ConfigError, match="shots"):
        load_benchmark_spec(str(_write_yaml(tmp_path / "s.yaml", {**TOY_CIL_SPEC, "shots": 0})))

    # dataset parameters are checked with the spec's name in the field path
    bad_param = {**TOY_CIL_SPEC, "datasets": [{"type": "toy-shapes", "params": {"colour": 1}}]}
    with pytest.raises(ConfigError, match=r"my-toy\.datasets\[0\]\.colour"):
        load_benchmark(str(_write_yaml(tmp_path / "bp.yaml", bad_param)), tmp_path)
    bad_type = {**TOY_CIL_SPEC, "datasets": [{"type": "mnist-9"}]}
    with pytest.raises(ConfigError, match=r"my-toy\.datasets\[0\]\.type"):
        load_benchmark(str(_write_yaml(tmp_path / "bt.yaml", bad_type)), tmp_path)

    # class-incremental takes one dataset
    two = {**TOY_CIL_SPEC, "datasets": TOY_CIL_SPEC["datasets"] * 2}
    with pytest.raises(ConfigError, match="one dataset"):
        load_benchmark(str(_write_yaml(tmp_path / "two.yaml", two)), tmp_path)
