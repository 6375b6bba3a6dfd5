"""Several processes (Lightning Fabric DDP, gloo on the CPU): how work is split between ranks, the
loss weighting that makes DDP's gradient the single-process one, and a killed two-rank run that
resumes to the matrices of a one-process run."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import BatchSampler, RandomSampler

from driftless.config import build_run_config
from driftless.engine import run
from driftless.engine.distributed import (
    batch_ranges,
    build_fabric,
    default_num_workers,
    my_batches,
    split_batch,
    use_tf32,
)
from driftless.errors import ConfigError
from driftless.methods.parts.image_training import RankShares, _global_batch_size

PLUGIN = Path(__file__).parents[1] / "plugins" / "methods_for_tests.py"


@pytest.mark.parametrize("world", [1, 2, 3, 5])
def test_each_global_batch_is_split_into_contiguous_near_equal_shares(world: int) -> None:
    for size in range(0, 12):
        shares = [split_batch(size, r, world) for r in range(world)]
        assert shares[0][0] == 0 and shares[-1][1] == size
        assert all(a[1] == b[0] for a, b in itertools.pairwise(shares))
        lengths = [stop - start for start, stop in shares]
        assert max(lengths) - min(lengths) <= 1


def test_extraction_batches_are_dealt_round_robin_and_cover_the_split() -> None:
    ranges = batch_ranges(1000, 64)
    assert ranges[-1] == (960, 1000)
    dealt = [my_batches(1000, 64, r, 3) for r in range(3)]
    assert sorted(b for rank in dealt for b in rank) == ranges
    assert dealt[1][:2] == [(64, 128), (256, 320)]


def test_rank_shares_keep_the_single_process_batches_and_order() -> None:
    n, batch_size, world = 23, 8, 2
    batches = [
        list(
            BatchSampler(
                RandomSampler(range(n), generator=torch.Generator().manual_seed(3)),
                batch_size,
                False,
            )
        )
    ][0]
    per_rank = []
    for rank in range(world):
        sampler = RandomSampler(range(n), generator=torch.Generator().manual_seed(3))
        per_rank.append(list(RankShares(BatchSampler(sampler, batch_size, False), rank, world)))
    for k, batch in enumerate(batches):
        assert per_rank[0][k] + per_rank[1][k] == batch  # the global batch, in order
        assert _global_batch_size(k, n, batch_size) == len(batch)
    assert _global_batch_size(len(batches), n, batch_size) == batch_size  # the next epoch starts
    # a batch smaller than the world: the rank with no share gets one item (weighted zero)
    assert split_batch(1, 0, 2) == (0, 0) and split_batch(1, 1, 2) == (0, 1)
    assert list(RankShares([[7]], 0, 2)) == list(RankShares([[7]], 1, 2)) == [[7]]  # type: ignore[arg-type]


def test_weighted_shares_average_to_the_global_batch_gradient() -> None:
    # what train_loop does on each rank, with DDP's averaging done by hand
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    x, y = torch.randn(7, 4), torch.randint(0, 3, (7,))

    def gradient(inputs, labels, weight):
        model.zero_grad()
        (torch.nn.functional.cross_entropy(model(inputs), labels) * weight).backward()
        return model.weight.grad.clone()

    expected = gradient(x, y, 1.0)
    world = 3
    grads = []
    for rank in range(world):
        start, stop = split_batch(len(x), rank, world)
        grads.append(gradient(x[start:stop], y[start:stop], (stop - start) / len(x) * world))
    torch.testing.assert_close(torch.stack(grads).mean(0), expected, rtol=1e-6, atol=1e-7)


def test_device_settings() -> None:
    with pytest.raises(ConfigError, match="bf16-mixed"):
        build_fabric("cpu", 1, 1, "auto", "16-mixed")
    assert build_fabric("cpu", 1, 1, "auto", "bf16-mixed").world_size == 1
    assert default_num_workers("cpu", 1, 64) == 0
    assert default_num_workers("cuda", 4, 64) == 8
    assert default_num_workers("cuda", 8, 16) == 1
    assert not use_tf32("bf16-mixed", torch.device("cpu"))
    assert not use_tf32("32-true", torch.device("cpu"))


def _matrix(results: dict, method: str) -> np.ndarray:
    values = results["methods"][method]["accuracy_matrix"]["values"]
    return np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)


@pytest.mark.slow
def test_killed_two_rank_run_resumes_to_the_one_process_matrices(tmp_path, cache_dir) -> None:
    from driftless.report import build_results

    sys.path.insert(0, str(PLUGIN.parent))
    import methods_for_tests  # noqa: F401  (registers pausing-finetune)

    methods = ["ncm", "pausing-finetune"]
    single = run(
        build_run_config({"benchmark": "toy-cil", "backbone": "tiny-random", "methods": methods,
                          "out": tmp_path / "single", "cache_dir": tmp_path / "single-cache",
                          "threads": 1, "method_config": {"pausing-finetune": {"iterations": 4}}}),
        progress=False,
    )  # fmt: skip
    expected = build_results(single)

    out = tmp_path / "ddp"
    args = [sys.executable, "-m", "driftless.cli", "run", "--benchmark", "toy-cil", "--backbone", "tiny-random",
            "--method", "ncm", "--method", "pausing-finetune", "--set", "pausing-finetune.iterations=4",
            "--devices", "2", "--accelerator", "cpu", "--threads", "1", "--cache-dir", str(cache_dir),
            "--import", str(PLUGIN), "--no-progress", "--out", str(out)]  # fmt: skip
    marker = tmp_path / "paused"
    env = {**os.environ, "DRIFTLESS_TEST_PAUSE_AT": "2", "DRIFTLESS_TEST_PAUSE_MARKER": str(marker)}
    # its own session, so that the launcher and the rank it started are killed together
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 150
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "the two-rank run never reached task 3"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "results.json").exists()
    # one store entry per split, written once by rank 0
    entries = [p for p in (cache_dir / "features").iterdir() if (p / "meta.json").is_file()]
    assert len(entries) == 2

    resumed = subprocess.run([*args, "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    ddp = json.loads((out / "results.json").read_text())
    np.testing.assert_array_equal(_matrix(ddp, "ncm"), _matrix(expected, "ncm"))
    difference = np.abs(_matrix(ddp, "pausing-finetune") - _matrix(expected, "pausing-finetune"))
    assert np.nanmax(difference) <= 5.0  # a sample or two of a toy block, from float sums' order


def test_precision_changes_the_fingerprint_and_computes_close_features(tiny_backbone) -> None:
    from driftless.backbones import tiny_random_clip

    pixels = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        reference = tiny_backbone.encode_images(pixels)
    for precision in ("bf16-mixed", "bf16-true"):
        backbone = tiny_random_clip(seed=0).set_precision(precision)
        assert backbone.fingerprint != tiny_backbone.fingerprint  # features never mix in the store
        with torch.inference_mode():
            features = backbone.encode_images(pixels).float()
        cosine = torch.nn.functional.cosine_similarity(features, reference)
        assert float(cosine.min()) > 0.99, precision
    assert (
        tiny_random_clip(seed=0).set_precision("32-true").fingerprint == tiny_backbone.fingerprint
    )


def test_sharded_encoding_and_put_give_the_stores_own_entry(tiny_backbone, tmp_path) -> None:
    from driftless.data import ArrayImages, Split
    from driftless.engine.distributed import encode_split_sharded
    from driftless.features import FeatureStore

    rng = np.random.default_rng(0)
    split = Split(ArrayImages(rng.integers(0, 256, (37, 32, 32, 3), np.uint8)), np.zeros(37))
    fabric = build_fabric("cpu", 1, 1, "auto", "32-true")
    gathered = encode_split_sharded(fabric, tiny_backbone, split, batch_size=8, num_workers=0)
    extracted = FeatureStore(tmp_path / "a", batch_size=8, progress=False).get(tiny_backbone, split)
    np.testing.assert_array_equal(gathered, extracted)  # same batches, same rows, same order
    store = FeatureStore(tmp_path / "b", batch_size=8, progress=False)
    assert not store.has(tiny_backbone, split)
    np.testing.assert_array_equal(store.put(tiny_backbone, split, gathered), extracted)
    assert store.has(tiny_backbone, split) and store.stats.images_encoded == 0
    np.testing.assert_array_equal(store.get(tiny_backbone, split), extracted)
    assert store.stats.entries_reused == 1
