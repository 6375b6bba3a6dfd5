"""Reliability drills too slow for the test suite, and the cost of verifying the feature store.

    .venv/bin/python benchmarks/reliability.py [--kills 3] [--out FILE]

1. verification cost: sha256 of a page-cached feature file (s/GB) beside reading the same file
   once (what using the features costs anyway), and on a warm-cache toy-cil run, the time spent
   verifying against the whole run;
2. SIGKILL drills: `driftless run` killed at random moments, resumed, compared cell for cell with
   an uninterrupted run;
3. a real full disk: --out on a 96 KiB tmpfs (only where this process may mount one, i.e. root).

Prints a summary and writes JSON (default: benchmarks/results/reliability.json).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RUN = ["run", "--benchmark", "toy-cil", "--backbone", "tiny-random", "--method", "zero-shot",
       "--method", "ncm", "--no-progress", "--threads", "1"]  # fmt: skip


def verification_cost(megabytes: int) -> dict:
    """sha256 of a float32 file that is in the page cache, against one full read of it."""
    from driftless.integrity import file_sha256

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "features.npy"
        rows = megabytes * 2**20 // (512 * 4)
        np.save(path, np.random.default_rng(0).standard_normal((rows, 512), dtype=np.float32))
        file_sha256(path)  # warm the page cache
        tick = time.perf_counter()
        file_sha256(path)
        hashing = time.perf_counter() - tick
        tick = time.perf_counter()
        float(np.load(path, mmap_mode="r").sum(dtype=np.float64))
        reading = time.perf_counter() - tick
    gb = rows * 512 * 4 / 1e9
    return {"file_gb": round(gb, 3), "sha256_seconds_per_gb": round(hashing / gb, 3),
            "read_once_seconds_per_gb": round(reading / gb, 3)}  # fmt: skip


def warm_run_share() -> dict:
    """A toy-cil run on a warm cache: seconds spent verifying entries of the whole run."""
    import driftless.features.store as store_module
    from driftless.cli import main

    spent = [0.0]
    original = store_module.file_sha256

    def timed(path):
        tick = time.perf_counter()
        try:
            return original(path)
        finally:
            spent[0] += time.perf_counter() - tick

    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch) / "cache"
        assert main([*RUN, "--out", f"{scratch}/a", "--cache-dir", str(cache)]) == 0
        store_module.file_sha256 = timed
        try:
            tick = time.perf_counter()
            assert main([*RUN, "--out", f"{scratch}/b", "--cache-dir", str(cache)]) == 0
            total = time.perf_counter() - tick
        finally:
            store_module.file_sha256 = original
    return {"run_seconds": round(total, 2), "verify_seconds": round(spent[0], 4),
            "verify_share": round(spent[0] / total, 5)}  # fmt: skip


def _results(out: Path) -> dict:
    results = json.loads((out / "results.json").read_text())
    results.pop("timings")
    for method in results["methods"].values():
        method.pop("timings")
    return results


def kill_drills(kills: int, seed: int) -> list[dict]:
    """Kill a run after a random delay, resume it, compare with an uninterrupted run."""
    rng = random.Random(seed)
    cli = [sys.executable, "-m", "driftless.cli"]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        cache = f"{scratch}/cache"
        straight = Path(scratch) / "straight"
        tick = time.perf_counter()
        subprocess.run([*cli, *RUN, "--out", str(straight), "--cache-dir", f"{scratch}/cold"],
                       check=True, capture_output=True)  # fmt: skip
        full = time.perf_counter() - tick  # a cold-cache run: kills land in extraction too
        subprocess.run([*cli, *RUN, "--out", f"{scratch}/warm", "--cache-dir", cache], check=True,
                       capture_output=True)  # fmt: skip
        for i in range(kills):
            out = Path(scratch) / f"killed{i}"
            # a fresh cache for half the drills, so that kills land in feature extraction too
            kill_cache = cache if i % 2 else f"{scratch}/cache{i}"
            delay = rng.uniform(0.2, 0.9) * full
            proc = subprocess.Popen([*cli, *RUN, "--out", str(out), "--cache-dir", kill_cache],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            finished_before = (out / "results.json").exists()  # the kill came too late
            started = (out / "config.yaml").exists()  # killed before validation ended: rerun
            again = ["--resume"] if started else []
            resumed = subprocess.run([*cli, *RUN, "--out", str(out), "--cache-dir", kill_cache, *again],
                                     capture_output=True, text=True)  # fmt: skip
            same = resumed.returncode == 0 and _results(out) == _results(straight)
            debris = [str(p) for p in Path(scratch).rglob("*.tmp")]
            rows.append({"kill_after_seconds": round(delay, 2), "run_had_started": started,
                         "resume_exit": resumed.returncode,
                         "identical": same, "temp_files_left": debris,
                         "stderr": resumed.stderr.strip().splitlines()[-1:] if not same else [],
                         "resumed_a_finished_run": finished_before})  # fmt: skip
    return rows


def full_disk_drill() -> dict:
    """--out on a tiny tmpfs: the run must stop with one line and exit 2."""
    with tempfile.TemporaryDirectory() as scratch:
        mount = Path(scratch) / "tiny"
        mount.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)],
                                 capture_output=True)  # fmt: skip
        if mounted.returncode != 0:
            return {"skipped": "cannot mount a tmpfs here (not root)"}
        try:
            run = subprocess.run([sys.executable, "-m", "driftless.cli", *RUN, "--out", f"{mount}/run",
                                  "--cache-dir", f"{scratch}/cache"], capture_output=True, text=True)  # fmt: skip
            lines = run.stderr.strip().splitlines()
            return {"exit": run.returncode, "last_line": lines[-1] if lines else "",
                    "traceback": "Traceback" in run.stderr,
                    "temp_files_left": [str(p) for p in mount.rglob("*.tmp")]}  # fmt: skip
        finally:
            subprocess.run(["umount", str(mount)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "reliability.json"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report = {
        "verification": [verification_cost(mb) for mb in (64, 512)],
        "warm_run": warm_run_share(),
        "kills": kill_drills(args.kills, args.seed),
        "full_disk": full_disk_drill(),
    }
    print(json.dumps(report, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
