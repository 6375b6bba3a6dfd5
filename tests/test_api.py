"""The Python API: docs/api.md's example runs as written, in memory, without a progress bar."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from driftless.metrics import class_incremental_summary, mtil_summary, summarize

DOC = Path(__file__).parents[1] / "docs" / "api.md"


def test_api_doc_example_runs_in_memory_and_silently(tmp_path, monkeypatch, capfd):
    import torch

    monkeypatch.setenv("DRIFTLESS_CACHE", str(tmp_path / "cache"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert blocks
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        namespace: dict = {}
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)
    finally:
        torch.set_num_threads(threads)
    captured = capfd.readouterr()
    # no bar of driftless, transformers' weight loading or tqdm anywhere
    assert "\r" not in captured.err and "it/s" not in captured.err and "Loading" not in captured.err
    assert "Results(toy-cil, seed 0" in captured.out
    # the in-memory run left nothing; the example's save() wrote only runs/toy
    assert sorted(p.name for p in work.iterdir()) == ["runs"]
    assert (work / "runs" / "toy" / "results.json").is_file()
    results = namespace["results"]
    assert results.out == Path("runs/toy")
    assert set(results.matrices) == {"zero-shot", "ncm", "linear-probe"}
    assert sum(results.training("linear-probe")["loss"]["steps"]) > 0


def test_metrics_accept_the_saved_matrix_with_nulls():
    # rows 1-2 without their future cells (--no-eval-future), as results.json stores them
    saved = [[10.0, 20.0, 30.0], [80.0, None, None], [70.0, 90.0, None], [60.0, 85.0, 75.0]]
    trained = np.array([[80.0, np.nan, np.nan], [70.0, 90.0, np.nan], [60.0, 85.0, 75.0]])
    assert summarize("class-incremental", saved, [1, 1, 2]) == summarize(
        "class-incremental", trained, [1, 1, 2]
    )
    ci = class_incremental_summary(saved)
    assert "ci_transfer" not in ci
    assert ci["last"] == pytest.approx((60 + 85 + 75) / 3)
    assert ci["forgetting"] == pytest.approx(((80 - 60) + (90 - 85)) / 2)
    square = [[50.0, 40.0], [60.0, 70.0], [55.0, 75.0]]
    # rows after training: [60, 70], [55, 75]; Avg = mean(57.5, 72.5)
    assert mtil_summary(square) == {"transfer": 70.0, "avg": 65.0, "last": 65.0}
    with pytest.raises(ValueError, match=r"\(T\+1\)×T"):
        summarize("multi-domain", [[1.0, 2.0, 3.0]])
