"""`driftless compare`: statistics over seeds checked against numpy and scipy on hand-made numbers,
and the command on a tree of fabricated results.json files."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
from scipy import stats

from driftless.cli import main
from driftless.report.compare import (
    compare_runs,
    find_results_files,
    paired_difference,
    read_method_runs,
    summarize_values,
)
from fake_results import fake_results, matrix, write_seed_tree


def test_summary_is_mean_and_sample_std():
    s = summarize_values([70.0, 72.0, 74.0])
    assert (s.mean, s.std, s.n) == (72.0, 2.0, 3)  # ddof = 1: sqrt((4 + 0 + 4) / 2)
    values = [61.3, 64.9, 58.2, 66.0, 60.7]
    s = summarize_values(values)
    assert s.mean == pytest.approx(np.mean(values), abs=1e-12)
    assert s.std == pytest.approx(np.std(values, ddof=1), abs=1e-12)
    single = summarize_values([5.0])
    assert single.std is None and single.n == 1


def test_paired_difference_matches_scipy_ttest_rel():
    method = {0: 71.0, 1: 73.0, 2: 70.0, 3: 75.0}
    baseline = {0: 70.0, 1: 70.0, 2: 71.0, 3: 72.0, 9: 99.0}  # seed 9 is not shared
    d = paired_difference(method, baseline)
    assert d is not None and d.seeds == (0, 1, 2, 3) and d.n == 4
    # differences 1, 3, -1, 3: mean 1.5, sample std sqrt(11/3)
    assert d.mean == 1.5
    assert d.std == pytest.approx(math.sqrt(11 / 3), abs=1e-12)
    half = stats.t.ppf(0.975, 3) * math.sqrt(11 / 3) / 2
    assert (d.ci_low, d.ci_high) == pytest.approx((1.5 - half, 1.5 + half), abs=1e-12)
    reference = stats.ttest_rel([71, 73, 70, 75], [70, 70, 71, 72]).confidence_interval(0.95)
    assert (d.ci_low, d.ci_high) == pytest.approx((reference.low, reference.high), abs=1e-10)
    assert (d.wins, d.losses, d.ties) == (3, 1, 0)


def test_paired_difference_direction_ties_and_edges():
    # lower is better (forgetting): a positive difference is a loss
    d = paired_difference(
        {0: 5.0, 1: 2.0, 2: 4.0}, {0: 3.0, 1: 3.0, 2: 4.0}, higher_is_better=False
    )
    assert (d.wins, d.losses, d.ties) == (1, 1, 1)
    one = paired_difference({0: 5.0}, {0: 3.0})
    assert one.mean == 2.0 and one.ci_low is None and one.std is None
    assert paired_difference({0: 1.0}, {1: 1.0}) is None
    same = paired_difference({0: 1.0, 1: 2.0}, {0: 0.0, 1: 1.0})  # constant difference
    assert (same.ci_low, same.ci_high) == (1.0, 1.0)


def test_compare_csv_recomputes_from_each_seed(tmp_path, capsys):
    written = write_seed_tree(tmp_path / "runs")
    assert main(["compare", str(tmp_path / "runs"), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {"benchmark", "method", "metric", "mean", "std", "n"} <= set(rows[0])
    methods = {r["method"] for r in rows}
    assert methods == {"zero-shot", "ncm", "calfuse[calibration=off]"}
    assert len(rows) == 3 * 6  # 3 methods × avg, last, forgetting, bwt, faa, ci_transfer
    for row in rows:
        values = [
            written[s]["methods"][row["method"]]["metrics"][row["metric"]] for s in (11, 12, 13)
        ]
        assert int(row["n"]) == 3 and row["seeds"] == "11 12 13"
        assert float(row["mean"]) == pytest.approx(np.mean(values), abs=1e-9)
        assert float(row["std"]) == pytest.approx(np.std(values, ddof=1), abs=1e-9)
        assert row["benchmark"] == "world-cil" and row["baseline"] == ""


def test_compare_baseline_markdown_latex_json(tmp_path, capsys):
    written = write_seed_tree(tmp_path / "a", seeds=(0, 1, 2))
    # a fourth seed of ncm only: not shared with zero-shot, left out of the paired difference
    extra = fake_results(3, {"ncm": matrix(np.random.default_rng(5))})
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "results.json").write_text(json.dumps(extra))
    files = find_results_files([tmp_path / "a", tmp_path / "b" / "results.json", tmp_path / "a"])
    assert len(files) == 4  # each file once
    comparison = compare_runs(read_method_runs(files), baseline="zero-shot")
    last = next(r for r in comparison.rows if r.method == "ncm" and r.metric == "last")
    assert last.summary.n == 4 and last.difference.n == 3 and last.difference.seeds == (0, 1, 2)
    diffs = [written[s]["methods"]["ncm"]["metrics"]["last"] - written[s]["methods"]["zero-shot"]["metrics"]["last"]
             for s in (0, 1, 2)]  # fmt: skip
    ci = stats.ttest_1samp(diffs, 0.0).confidence_interval(0.95)
    assert (last.difference.ci_low, last.difference.ci_high) == pytest.approx((ci.low, ci.high))
    assert all(r.difference is None for r in comparison.rows if r.method == "zero-shot")

    assert main(["compare", str(tmp_path), "--baseline", "zero-shot"]) == 0
    out = capsys.readouterr().out
    assert "world-cil · backbone tiny-clip · seeds 0, 1, 2, 3" in out
    assert "minus zero-shot" in out and "95 % CI" in out and " ± " in out
    assert main(["compare", str(tmp_path), "--baseline", "zero-shot", "--format", "latex"]) == 0
    latex = capsys.readouterr().out
    assert (
        latex.count(r"\begin{tabular}") == 2
        and r"\pm" in latex
        and "calfuse[calibration=off]" in latex
    )
    assert main(["compare", str(tmp_path), "--baseline", "zero-shot", "--format", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["baseline"] == "zero-shot"
    assert any(r["difference"] and r["difference"]["n"] == 3 for r in document["rows"])


def test_compare_errors_exit_2(tmp_path, capsys):
    write_seed_tree(tmp_path / "a", seeds=(0, 1))
    assert main(["compare", str(tmp_path), "--baseline", "lda"]) == 2
    assert "no results for that method" in capsys.readouterr().err
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "results.json").write_text(
        (tmp_path / "a" / "seed-0" / "results.json").read_text()
    )
    assert main(["compare", str(tmp_path)]) == 2
    assert "seed 0 appears twice" in capsys.readouterr().err
    assert main(["compare", str(tmp_path / "nothing")]) == 2
    # a results.json of another kind (a summary) found in the tree is left out with a warning
    (tmp_path / "copy" / "results.json").write_text('{"schema": "something-else/1"}')
    assert main(["compare", str(tmp_path), "--format", "csv"]) == 0
    assert "left out" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty")]) == 2


def test_compare_prints_published_beside_ours(tmp_path, capsys):
    reference = {"source": "a paper, table 2", "metrics": {"last": 50.0}, "method": None}
    for seed in (0, 1):
        results = fake_results(
            seed, {"ncm": matrix(np.random.default_rng(seed))}, reference=reference
        )
        (tmp_path / f"s{seed}").mkdir()
        (tmp_path / f"s{seed}" / "results.json").write_text(json.dumps(results))
    assert main(["compare", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "published: a paper, table 2" in out and "ncm (ours)" in out and "50.00" in out
    config = tmp_path / "reproduce.yaml"
    config.write_text(
        "benchmark: world-cil\nmethods: [ncm]\nreference:\n  source: other\n  metrics: {avg: 61.5}\n"
    )
    assert main(["compare", str(tmp_path), "--reference", str(config), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["metric"]: r["published"] for r in rows if r["published"]} == {"avg": "61.5"}
