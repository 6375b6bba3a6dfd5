"""The task loop end to end on generated data with a tiny random CLIP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from driftless.backbones.clip import CLIPBackbone
from driftless.config import build_run_config
from driftless.engine import run
from driftless.errors import ResumeError
from driftless.report import build_results, write_report

PLUGIN = Path(__file__).parent / "plugins" / "methods_for_tests.py"


def _config(tmp_path, cache_dir, **overrides):
    values = {"benchmark": "toy-cil", "backbone": "tiny-random", "methods": ["zero-shot", "ncm"], "out": tmp_path / "run",
              "cache_dir": cache_dir, "seed": 0, "num_workers": 0}  # fmt: skip
    values.update(overrides)
    return build_run_config(values)


def test_two_methods_encode_each_image_once_and_a_second_run_none(
    tmp_path, cache_dir, encode_counter
):
    outcome = run(_config(tmp_path, cache_dir), progress=False)
    bench = outcome.benchmark
    assert bench.num_tasks == 5
    dataset = next(iter(bench.datasets.values()))
    total = len(dataset.split("train")) + len(dataset.split("test"))
    assert encode_counter["images"] == total == outcome.images_encoded
    again = run(_config(tmp_path, cache_dir, out=tmp_path / "run2"), progress=False)
    assert encode_counter["images"] == total  # the second run re-encodes nothing
    assert again.images_encoded == 0
    for name in ("zero-shot", "ncm"):
        np.testing.assert_array_equal(outcome.methods[name].matrix, again.methods[name].matrix)


def test_class_incremental_matrix_and_metrics(tmp_path, cache_dir):
    outcome = run(_config(tmp_path, cache_dir), progress=False)
    results = build_results(outcome)
    T = outcome.benchmark.num_tasks
    for name in ("zero-shot", "ncm"):
        matrix = results["methods"][name]["accuracy_matrix"]
        values = matrix["values"]
        assert len(values) == T + 1 and all(len(r) == T for r in values)
        assert all(v is not None for row in values for v in row)  # future cells evaluated too
        assert sum(matrix["counts"]) == 144
        assert set(results["methods"][name]["metrics"]) == {
            "avg",
            "last",
            "forgetting",
            "bwt",
            "faa",
            "ci_transfer",
        }
    # before training NCM has no prototype and scores every class by its text: it is zero-shot
    assert (
        results["methods"]["ncm"]["accuracy_matrix"]["values"][0]
        == results["methods"]["zero-shot"]["accuracy_matrix"]["values"][0]
    )
    ncm, zs = results["methods"]["ncm"]["metrics"], results["methods"]["zero-shot"]["metrics"]
    chance = 100.0 / 12
    assert ncm["last"] > 2 * chance
    assert ncm["last"] > zs["last"] + 5
    # zero-shot learns nothing: after the last task every class is seen, so its final row scores
    # the same label space (all classes) as row 0 and must equal it exactly
    zs_values = np.array(results["methods"]["zero-shot"]["accuracy_matrix"]["values"], dtype=float)
    np.testing.assert_array_equal(zs_values[T], zs_values[0])
    np.testing.assert_array_equal(zs_values[T - 1, T - 1], zs_values[0, T - 1])


def test_multi_domain_run_has_mtil_metrics(tmp_path, cache_dir):
    outcome = run(_config(tmp_path, cache_dir, benchmark="toy-mtil"), progress=False)
    results = build_results(outcome)
    ncm = results["methods"]["ncm"]
    zs = results["methods"]["zero-shot"]
    assert set(ncm["metrics"]) == {"transfer", "avg", "last"}
    # on datasets not yet learned NCM has no prototype: it scores them exactly as zero-shot does
    assert ncm["metrics"]["transfer"] == pytest.approx(zs["metrics"]["transfer"])
    zs_rows = np.array(zs["accuracy_matrix"]["values"])
    assert (zs_rows == zs_rows[0]).all()  # zero-shot's rows never change in MTIL
    assert ncm["metrics"]["last"] > zs["metrics"]["last"]


def test_image_path_equals_feature_path(tmp_path, cache_dir):
    from driftless.cli import import_plugin

    if "methods_for_tests" not in sys.modules:  # registers pausing-ncm and image-ncm once
        import_plugin(str(PLUGIN))
    outcome = run(
        _config(tmp_path, cache_dir, methods=["ncm", "image-ncm"], batch_size=64), progress=False
    )
    np.testing.assert_allclose(
        outcome.methods["image-ncm"].matrix, outcome.methods["ncm"].matrix, atol=1e-9
    )


def test_report_files(tmp_path, cache_dir):
    outcome = run(_config(tmp_path, cache_dir), progress=False)
    written = write_report(build_results(outcome), outcome.out)
    names = sorted(p.name for p in written)
    figures = [
        f"{s}.{f}"
        for s in ("curves", "matrix-ncm", "matrix-zero-shot")
        for f in ("pdf", "png", "svg")
    ]
    assert names == sorted([*figures, "metrics.csv", "results.json"])
    for path in written:
        assert path.stat().st_size > 100
    assert (outcome.out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv_lines = (outcome.out / "metrics.csv").read_text().splitlines()
    assert csv_lines[0].startswith("method,") and len(csv_lines) == 3
    # seen and unseen accuracy after each task: acc_t, and the rows whose mean is CI-Transfer
    results = json.loads((outcome.out / "results.json").read_text())
    for m in results["methods"].values():
        seen, unseen = m["curves"]["seen"], m["curves"]["unseen"]
        assert len(seen) == len(unseen) == outcome.benchmark.num_tasks and unseen[-1] is None
        assert seen[-1] == pytest.approx(m["metrics"]["last"])
        assert np.mean(seen) == pytest.approx(m["metrics"]["avg"])
        assert np.mean(unseen[:-1]) == pytest.approx(m["metrics"]["ci_transfer"])


def test_resume_refuses_a_different_configuration(tmp_path, cache_dir):
    run(_config(tmp_path, cache_dir), progress=False)
    with pytest.raises(ResumeError, match="seed"):
        run(_config(tmp_path, cache_dir, seed=1), resume=True, progress=False)


def _without_timings(results: dict) -> dict:
    results = json.loads(json.dumps(results))
    results.pop("timings")
    for m in results["methods"].values():
        m.pop("timings")
    return results


@pytest.mark.slow
def test_sigkill_during_task_3_then_resume_equals_uninterrupted(tmp_path, cache_dir):
    args = ["--benchmark", "toy-cil", "--backbone", "tiny-random", "--method", "zero-shot", "--method", "pausing-ncm",
            "--cache-dir", str(cache_dir), "--import", str(PLUGIN), "--no-progress"]  # fmt: skip
    marker = tmp_path / "paused"
    env = {**os.environ, "DRIFTLESS_TEST_PAUSE_AT": "2", "DRIFTLESS_TEST_PAUSE_MARKER": str(marker)}
    killed_out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "driftless.cli", "run", *args, "--out", str(killed_out)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "the run never reached task 3"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed_out / "results.json").exists()

    resumed = subprocess.run([sys.executable, "-m", "driftless.cli", "run", *args, "--out", str(killed_out), "--resume"],
                             capture_output=True, text=True)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    straight_out = tmp_path / "straight"
    straight = subprocess.run([sys.executable, "-m", "driftless.cli", "run", *args, "--out", str(straight_out)],
                              capture_output=True, text=True)  # fmt: skip
    assert straight.returncode == 0, straight.stderr
    a = json.loads((killed_out / "results.json").read_text())
    b = json.loads((straight_out / "results.json").read_text())
    assert _without_timings(a) == _without_timings(b)
    # the resumed method kept its first two tasks' timings from the killed process
    assert len(a["methods"]["pausing-ncm"]["timings"]["learn_seconds"]) == 5


def test_threads_applies_during_the_run_only(tmp_path, cache_dir, monkeypatch):
    import scipy.linalg  # noqa: F401  (its OpenBLAS is one of the pools the limit must reach)
    import torch
    from threadpoolctl import threadpool_info

    def pools() -> dict[str, int]:
        return {i["filepath"]: i["num_threads"] for i in threadpool_info()}

    seen, seen_pools = [], []
    original = CLIPBackbone.encode_images

    def recording(self, pixels):
        seen.append(torch.get_num_threads())
        seen_pools.append(pools())
        return original(self, pixels)

    monkeypatch.setattr(CLIPBackbone, "encode_images", recording)
    before, pools_before = torch.get_num_threads(), pools()
    single = run(_config(tmp_path, cache_dir, threads=1, out=tmp_path / "a"), progress=False)
    assert seen and set(seen) == {1}
    # every BLAS/OpenMP pool (numpy's, scipy's OpenBLAS, torch's OpenMP) obeyed, then was restored
    assert any("openblas" in path for path in seen_pools[0])
    assert all(set(p.values()) == {1} for p in seen_pools)
    assert torch.get_num_threads() == before
    assert {k: v for k, v in pools().items() if k in pools_before} == pools_before
    default = run(_config(tmp_path, cache_dir, out=tmp_path / "b"), progress=False)
    for name in ("zero-shot", "ncm"):
        np.testing.assert_array_equal(single.methods[name].matrix, default.methods[name].matrix)
    # a thread count is not part of what a run computes: resuming with another one is allowed
    run(_config(tmp_path, cache_dir, threads=2, out=tmp_path / "a"), resume=True, progress=False)
