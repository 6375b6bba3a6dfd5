"""Metric formulas against hand-computed matrices and a published MTIL matrix."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from driftless import metrics

NAN = float("nan")

# 3 class-incremental tasks; rows after task 1..3, columns = blocks; upper cells = future blocks
CIL = [
    [90.0, 10.0, 20.0],
    [70.0, 80.0, 30.0],
    [60.0, 50.0, 85.0],
]
COUNTS = [100, 100, 200]


def test_incremental_accuracies_are_sample_weighted():
    accs = metrics.incremental_accuracies(CIL, COUNTS)
    # t=1: 90; t=2: (70*100 + 80*100)/200 = 75; t=3: (60*100 + 50*100 + 85*200)/400 = 70
    assert accs.tolist() == pytest.approx([90.0, 75.0, 70.0])


def test_class_incremental_summary_hand_computed():
    s = metrics.class_incremental_summary(CIL, COUNTS)
    assert s["avg"] == pytest.approx((90 + 75 + 70) / 3)
    assert s["last"] == pytest.approx(70.0)
    # forgetting: block 1 max(90, 70) - 60 = 30; block 2 max(80) - 50 = 30 → 30
    assert s["forgetting"] == pytest.approx(30.0)
    # bwt: (60 - 90 + 50 - 80) / 2 = -30
    assert s["bwt"] == pytest.approx(-30.0)
    # faa: (60 + 50 + 85) / 3
    assert s["faa"] == pytest.approx(65.0)
    # ci_transfer: t=1: mean(10, 20) = 15; t=2: 30 → mean 22.5
    assert s["ci_transfer"] == pytest.approx(22.5)


def test_forgetting_uses_the_best_earlier_row_not_the_first():
    acc = [[50.0, NAN, NAN], [80.0, 60.0, NAN], [40.0, 60.0, 70.0]]
    # block 1: max(50, 80) - 40 = 40; block 2: 60 - 60 = 0
    assert metrics.forgetting(acc) == pytest.approx(20.0)
    assert metrics.backward_transfer(acc) == pytest.approx(((40 - 50) + (60 - 60)) / 2)


def test_without_counts_avg_is_task_averaged():
    s = metrics.class_incremental_summary(CIL)
    assert s["last"] == pytest.approx(65.0)  # = FAA when blocks weigh equally
    assert s["avg"] == pytest.approx((90 + 75 + 65) / 3)


def test_future_cells_missing_gives_no_ci_transfer():
    acc = [[90.0, NAN], [70.0, 80.0]]
    s = metrics.class_incremental_summary(acc)
    assert "ci_transfer" not in s
    assert s["forgetting"] == pytest.approx(20.0)


def test_single_task_has_no_forgetting():
    s = metrics.class_incremental_summary([[42.0]])
    assert s["forgetting"] is None and s["bwt"] is None
    assert s["avg"] == s["last"] == s["faa"] == 42.0


def test_missing_required_cell_is_an_error():
    with pytest.raises(ValueError, match=r"\[1\]\[0\]"):
        metrics.class_incremental_summary([[90.0, NAN], [NAN, 80.0]])
    with pytest.raises(ValueError, match="T×T"):
        metrics.mtil_summary([[1.0, 2.0]])


def test_mtil_summary_hand_computed():
    acc = [
        [80.0, 30.0, 40.0],
        [70.0, 90.0, 50.0],
        [60.0, 85.0, 95.0],
    ]
    s = metrics.mtil_summary(acc)
    # transfer: j=2: 30; j=3: mean(40, 50) = 45 → 37.5
    assert s["transfer"] == pytest.approx(37.5)
    assert s["avg"] == pytest.approx(np.mean([70.0, 205 / 3, 185 / 3]))
    assert s["last"] == pytest.approx(80.0)


def _zscl():
    return json.loads((Path(__file__).parent / "data" / "zscl_mtil_order1.json").read_text())


def test_mtil_summary_reproduces_zscl_order1():
    data = _zscl()
    s = metrics.mtil_summary(data["matrix"])
    for key, published in data["published"].items():
        assert round(s[key], 1) == published, (key, s[key])


def test_mtil_summary_of_zero_shot_row_reproduces_published_clip():
    data = _zscl()["zero_shot_clip_vit_b16"]
    acc = [data["row"]] * len(data["row"])  # zero-shot: every row equals the untrained model
    s = metrics.mtil_summary(acc)
    for key, published in data["published"].items():
        assert round(s[key], 1) == published, (key, s[key])


def test_summarize_dispatches_and_rejects_unknown_protocols():
    assert metrics.summarize("multi-domain", [[50.0]])["last"] == 50.0
    assert metrics.summarize("class-incremental", [[50.0]])["last"] == 50.0
    with pytest.raises(ValueError, match="protocol"):
        metrics.summarize("task-free", [[50.0]])


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=6).flatmap(
        lambda T: st.tuples(
            st.lists(st.lists(st.floats(0, 100), min_size=T, max_size=T), min_size=T, max_size=T),
            st.lists(st.integers(1, 500), min_size=T, max_size=T),
        )
    )
)
def test_metric_invariants(case):
    acc, counts = case
    s = metrics.class_incremental_summary(acc, counts)
    assert 0.0 <= s["avg"] <= 100.0 and 0.0 <= s["last"] <= 100.0
    if len(acc) > 1:
        # per block, the best earlier accuracy is at least the one just after learning it,
        # so forgetting is never below -BWT (it may be negative when a block improves at the end)
        assert s["forgetting"] + 1e-9 >= -s["bwt"]
    # scaling every count by the same factor changes nothing
    scaled = metrics.class_incremental_summary(acc, [3 * c for c in counts])
    assert all(
        (a is None and b is None) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
        for a, b in zip(s.values(), scaled.values(), strict=True)
    )


def test_seen_and_unseen_after_each_task_by_hand():
    acc = np.array([[80.0, 30.0, 10.0], [70.0, 90.0, 20.0], [60.0, 85.0, 95.0]])
    seen, unseen = metrics.seen_unseen_accuracies(acc, counts=[100, 300, 100])
    np.testing.assert_allclose(seen, [80.0, (70 * 100 + 90 * 300) / 400, (60 + 85 * 3 + 95) / 5])
    np.testing.assert_allclose(unseen[:2], [(30 + 10) / 2, 20.0])
    assert np.isnan(unseen[2])
    assert np.mean(unseen[:2]) == pytest.approx(metrics.ci_transfer(acc))  # 22.5 = CI-Transfer
    plain, _ = metrics.seen_unseen_accuracies(acc)
    np.testing.assert_allclose(plain, [80.0, 80.0, 80.0])
    acc[0, 2] = np.nan  # a future cell not evaluated: no unseen value for that row
    _, partial = metrics.seen_unseen_accuracies(acc)
    assert np.isnan(partial[0]) and partial[1] == 20.0


# --- few-shot class-incremental and domain-incremental ------------------------------------------

# FSCIL: a base session (block 0, 300 test images) then two sessions (50 test images each)
FSCIL = [
    [80.0, NAN, NAN],
    [78.0, 40.0, NAN],
    [76.0, 30.0, 50.0],
]
FSCIL_COUNTS = [300, 50, 50]


def test_few_shot_summary_hand_computed():
    s = metrics.few_shot_summary(FSCIL, FSCIL_COUNTS)
    # acc: 80; (78·300 + 40·50)/350 = 25400/350; (76·300 + 30·50 + 50·50)/400 = 26800/400 = 67
    accs = [80.0, 25400 / 350, 67.0]
    assert s["first"] == pytest.approx(80.0)
    assert s["last"] == pytest.approx(67.0)
    assert s["avg"] == pytest.approx(sum(accs) / 3)
    assert s["pd"] == pytest.approx(13.0)
    assert s["base"] == pytest.approx(76.0)
    assert s["novel"] == pytest.approx(40.0)  # (30·50 + 50·50) / 100
    assert s["hm"] == pytest.approx(2 * 76 * 40 / 116)
    assert "ci_transfer" not in s
    assert metrics.summarize("few-shot class-incremental", FSCIL, FSCIL_COUNTS) == s


def test_few_shot_summary_single_session_has_no_novel():
    s = metrics.few_shot_summary([[70.0]], [10])
    assert (s["pd"], s["base"], s["novel"], s["hm"]) == (0.0, 70.0, None, None)


# domain-incremental, columns in evaluation order, tasks trained in the order of column_tasks
DIL = [
    [60.0, 20.0, 30.0],
    [55.0, 50.0, 35.0],
    [50.0, 45.0, 70.0],
]
DIL_COUNTS = [100, 100, 200]


def test_domain_incremental_summary_hand_computed():
    s = metrics.domain_incremental_summary(DIL, DIL_COUNTS, column_tasks=[0, 1, 2])
    # all: (60+20+60)/4 = 35; (55+50+70)/4 = 43.75; (50+45+140)/4 = 58.75
    assert metrics.domain_accuracies(DIL, DIL_COUNTS).tolist() == pytest.approx([35, 43.75, 58.75])
    assert s["avg"] == pytest.approx((35 + 43.75 + 58.75) / 3)
    assert s["last"] == pytest.approx(58.75)
    assert s["domain_avg"] == pytest.approx(55.0)
    # forgetting: domain 0 max(60, 55) − 50 = 10; domain 1: 50 − 45 = 5 → 7.5
    assert s["forgetting"] == pytest.approx(7.5)
    assert s["bwt"] == pytest.approx(((50 - 60) + (45 - 50)) / 2)
    # transfer: column 1 before it is learned: 20; column 2: mean(30, 35) → mean 26.25
    assert s["transfer"] == pytest.approx(26.25)


def test_domain_incremental_columns_out_of_task_order_and_test_only_domains():
    reordered = [[row[2], row[0], row[1]] for row in DIL]
    counts = [DIL_COUNTS[2], DIL_COUNTS[0], DIL_COUNTS[1]]
    s = metrics.domain_incremental_summary(reordered, counts, column_tasks=[2, 0, 1])
    assert s == pytest.approx(metrics.domain_incremental_summary(DIL, DIL_COUNTS, [0, 1, 2]))
    # CORe50's shape: 2 training domains, 3 test-only columns: no per-domain forgetting
    core = [[40.0, 50.0, 60.0], [45.0, 55.0, 80.0]]
    s = metrics.domain_incremental_summary(core, [1, 1, 2], column_tasks=[-1, -1, -1])
    assert s == pytest.approx({"avg": (52.5 + 65) / 2, "last": 65.0, "domain_avg": 60.0})
