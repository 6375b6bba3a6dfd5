"""The domain-incremental and few-shot class-incremental protocols: tasks, evaluation label spaces,
fixed session lists, their specs, and the results' metrics and curves for them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from driftless.benchmarks import (
    BenchmarkSpec,
    domain_incremental,
    few_shot_class_incremental,
    list_benchmarks,
)
from driftless.data import ArrayImages, Dataset, Split, toy_shapes
from driftless.data.sessions import read_cec_sessions
from driftless.errors import ConfigError, DataError
from driftless.report.results import matrix_metrics, seen_unseen_curves


def _split(labels: list[int]) -> Split:
    pixels = np.zeros((len(labels), 2, 2, 3), dtype=np.uint8)
    pixels[:, 0, 0, 0] = np.arange(len(labels))
    return Split(ArrayImages(pixels), np.asarray(labels))


def _domains() -> Dataset:
    splits = {}
    for d, domain in enumerate(("a", "b", "c")):
        splits[f"{domain}/train"] = _split([0, 1, 2, 0, 1, 2][: 6 - d])
        splits[f"{domain}/test"] = _split([0, 1, 2][: 3 - (d == 2)])
    return Dataset("doms", ("x", "y", "z"), splits)


def test_domain_incremental_tasks_share_every_class():
    b = domain_incremental(_domains(), ["b", "a"], ["a", "b", "c"])
    assert b.protocol == "domain-incremental"
    assert [t.name for t in b.tasks] == ["b", "a"]
    assert all(t.class_ids == (0, 1, 2) for t in b.tasks)
    assert [s.split for t in b.tasks for s in t.train] == ["b/train", "a/train"]
    assert [len(t.train[0].indices) for t in b.tasks] == [5, 6]
    assert [(e.name, e.samples.split, e.task_index) for e in b.eval_splits] == [
        ("a", "a/test", 1), ("b", "b/test", 0), ("c", "c/test", -1),
    ]  # fmt: skip
    assert b.seen_class_ids(2) == (0, 1, 2)  # once, not once per task
    for tasks_done in range(3):
        for split in b.eval_splits:
            assert b.eval_label_space(tasks_done, split, eval_future=False) == (0, 1, 2)
    np.testing.assert_array_equal(b.labels(b.tasks[1].train[0]), [0, 1, 2, 0, 1, 2])


def test_domain_incremental_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"domains: .*no train split for \['q'\]"):
        domain_incremental(_domains(), ["a", "q"])
    with pytest.raises(ConfigError, match="test_domains"):
        domain_incremental(_domains(), ["a"], ["zz"])
    with pytest.raises(ConfigError, match="repeats"):
        domain_incremental(_domains(), ["a", "a"])


def _toy() -> Dataset:
    return toy_shapes(num_classes=10, train_per_class=8, test_per_class=2, image_size=8, seed=0)


def test_few_shot_sessions_drawn_with_the_seed():
    toy = _toy()
    b = few_shot_class_incremental(toy, base=4, ways=2, shots=3, order="seed:3", seed=5)
    assert b.protocol == "few-shot class-incremental" and b.num_tasks == 4
    assert [len(t.class_ids) for t in b.tasks] == [4, 2, 2, 2]
    assert len(b.tasks[0].train[0].indices) == 4 * 8  # the base session keeps every image
    assert [len(t.train[0].indices) for t in b.tasks[1:]] == [6, 6, 6]
    for t in b.tasks[1:]:
        labels = b.labels(t.train[0])
        assert sorted(set(labels.tolist())) == sorted(t.class_ids)
    again = few_shot_class_incremental(toy, base=4, ways=2, shots=3, order="seed:3", seed=5)
    other = few_shot_class_incremental(toy, base=4, ways=2, shots=3, order="seed:3", seed=6)
    same = [
        np.array_equal(x.train[0].indices, y.train[0].indices)
        for x, y in zip(b.tasks, again.tasks, strict=True)
    ]
    assert all(same)
    assert any(
        not np.array_equal(x.train[0].indices, y.train[0].indices)
        for x, y in zip(b.tasks[1:], other.tasks[1:], strict=True)
    )
    # evaluated as class-incremental: seen sessions over all classes seen so far
    assert b.eval_label_space(2, b.eval_splits[1], False) == b.seen_class_ids(2)
    assert b.eval_label_space(2, b.eval_splits[3], False) is None
    with pytest.raises(ConfigError, match="multiple of the ways"):
        few_shot_class_incremental(toy, base=5, ways=2, shots=3)


def test_few_shot_fixed_sessions_and_the_implied_base_session():
    toy = _toy()
    train = toy.split("train").labels
    lists = (
        [np.flatnonzero(train == c)[:2] for c in (6, 7)],
        [np.flatnonzero(train == c)[:2] for c in (8, 9)],
    )
    sessions = [np.concatenate(s) for s in lists]
    b = few_shot_class_incremental(toy, base=6, ways=2, shots=2, sessions=sessions)
    assert [t.class_ids for t in b.tasks] == [(0, 1, 2, 3, 4, 5), (6, 7), (8, 9)]
    assert len(b.tasks[0].train[0].indices) == 6 * 8
    np.testing.assert_array_equal(b.tasks[2].train[0].indices, np.sort(sessions[1]))
    with pytest.raises(ConfigError, match="not base 6 then 3-way"):
        few_shot_class_incremental(toy, base=6, ways=3, shots=2, sessions=sessions)
    with pytest.raises(ConfigError, match="do not follow the benchmark's class order"):
        few_shot_class_incremental(toy, base=6, ways=2, shots=2, sessions=sessions[::-1])
    with pytest.raises(ConfigError, match="session 2 repeats"):
        few_shot_class_incremental(
            toy, base=6, ways=2, shots=2, sessions=[sessions[0], sessions[0]]
        )


def test_cec_integer_lists_from_the_data_root(tmp_path: Path):
    toy = _toy()
    folder = tmp_path / "index_list" / "toy"
    folder.mkdir(parents=True)
    train = toy.split("train").labels
    (folder / "session_2.txt").write_text(
        "\n".join(str(i) for i in np.flatnonzero(train == 8)[:2]) + "\n"
    )
    (folder / "session_3.txt").write_text(
        "\n".join(str(i) for i in np.flatnonzero(train == 9)[:2]) + "\n"
    )
    sessions = read_cec_sessions(tmp_path, "toy", toy)
    assert [train[s].tolist() for s in sessions] == [[8, 8], [9, 9]]
    (folder / "session_3.txt").write_text("99999\n")
    with pytest.raises(DataError, match=r"session_3\.txt: line 1: index 99999"):
        read_cec_sessions(tmp_path, "toy", toy)
    with pytest.raises(DataError, match=r"index_list/other/session_<k>\.txt"):
        read_cec_sessions(tmp_path, "other", toy)


def test_specs_of_the_new_protocols():
    specs = list_benchmarks()
    for name in ("core50-dil", "domainnet-dil", "world-dil"):
        assert specs[name].protocol == "domain-incremental" and specs[name].domains
    for name in ("cifar100-fscil", "miniimagenet-fscil", "cub200-fscil", "world-fscil"):
        assert specs[name].protocol == "few-shot class-incremental"
    assert specs["core50-dil"].test_domains == ["s3", "s7", "s10"]
    assert (specs["cifar100-fscil"].base, specs["cifar100-fscil"].increment) == (60, 5)
    assert (specs["cub200-fscil"].base, specs["cub200-fscil"].increment) == (100, 10)
    assert specs["miniimagenet-fscil"].session_lists == "mini_imagenet"
    spec = BenchmarkSpec(name="x", protocol="domain-incremental", datasets=[{"type": "toy-shapes"}])
    with pytest.raises(ConfigError, match=r"x\.domains: required"):
        spec.build(Path("."))


def test_results_curves_for_the_new_protocols():
    values = [[50.0, 40.0, 30.0], [60.0, 45.0, 35.0], [55.0, 70.0, 40.0]]  # row 0 = zero-shot
    counts = [10, 10, 20]
    dil = seen_unseen_curves("domain-incremental", values, counts, [1, 0, -1])
    # not one column per task (a test-only domain): seen = all test domains, weighted
    assert dil == {"seen": [pytest.approx(43.75), pytest.approx(51.25)], "unseen": [None, None]}
    aligned = seen_unseen_curves("domain-incremental", [r[:2] for r in values], counts[:2], [1, 0])
    # columns in task order: (45, 60) then (70, 55); seen after task 1 = 45, unseen = 60
    assert aligned == {"seen": [45.0, 62.5], "unseen": [60.0, None]}
    m = matrix_metrics("domain-incremental", [r[:2] for r in values], counts[:2], [1, 0])
    # forgetting: max(45) − 70 = −25 (it improved); bwt: 70 − 45
    assert m["forgetting"] == pytest.approx(-25.0) and m["bwt"] == pytest.approx(25.0)
