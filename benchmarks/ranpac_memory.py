"""One RanPAC task update at scale: wall time and peak memory.

    .venv/bin/python benchmarks/ranpac_memory.py [--samples 50000] [--dim 512] [--classes 100]
        [--num-features 10000] [--out FILE]

Feeds ``ranpac.learn`` one task of random features (Gaussian class blobs) through a minimal context
and measures the whole update (random expansion, G and C in chunks, one eigendecomposition for the
17 ridge candidates, the final Cholesky solve), with a breakdown by phase, and the process's peak
resident memory (``ru_maxrss``). Prints a table and writes JSON (default:
benchmarks/results/ranpac_memory.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

import driftless.methods.ranpac as ranpac_module
from driftless.methods import build_method
from driftless.methods.base import LabelSpace, TaskData

GIB = 2**30


def current_rss_bytes() -> int:
    """Resident memory of this process now (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed(phases: dict[str, float], name: str, function):
    """``function`` wrapped to add its wall time to ``phases[name]``."""

    def wrapper(*args, **kwargs):
        tick = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            phases[name] = phases.get(name, 0.0) + time.perf_counter() - tick

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--num-features", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ranpac_memory.json"))
    args = parser.parse_args()

    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(args.samples) % args.classes
    centres = torch.randn(args.classes, args.dim, generator=generator)
    features = centres[labels] + 2.0 * torch.randn(args.samples, args.dim, generator=generator)
    space = LabelSpace(
        tuple(range(args.classes)),
        tuple(f"class {c}" for c in range(args.classes)),
        tuple(("{}",) for _ in range(args.classes)),
        tuple("synthetic" for _ in range(args.classes)),
    )
    task = SimpleNamespace(index=0, name="task 0", class_ids=space.class_ids)
    data = TaskData(task, labels, space, space, features=features)
    ctx = SimpleNamespace(generator=torch.Generator().manual_seed(1))
    method = build_method("ranpac", {"num_features": args.num_features})

    phases: dict[str, float] = {}
    cls = type(method)
    cls._accumulate = timed(phases, "expand + accumulate G, C", cls._accumulate)
    ranpac_module.RidgePath = timed(phases, "eigendecomposition", ranpac_module.RidgePath)
    cls._select_lambda = timed(phases, "λ selection (incl. eigendecomposition)", cls._select_lambda)
    ranpac_module.solve_ridge = timed(phases, "final Cholesky solve", ranpac_module.solve_ridge)

    rss_before = current_rss_bytes()
    tick = time.perf_counter()
    method.learn(data, ctx)
    wall = time.perf_counter() - tick
    peak = peak_rss_bytes()
    state_bytes = sum(
        t.numel() * t.element_size()
        for part in method.state_dict().values()
        for t in (part.values() if isinstance(part, dict) else [part])
        if isinstance(t, torch.Tensor)
    )
    m = args.num_features
    result = {
        "samples": args.samples,
        "dim": args.dim,
        "classes": args.classes,
        "num_features": m,
        "wall_seconds": round(wall, 2),
        "phase_seconds": {k: round(v, 2) for k, v in phases.items()},
        "rss_before_gib": round(rss_before / GIB, 3),
        "peak_rss_gib": round(peak / GIB, 3),
        "peak_minus_before_gib": round((peak - rss_before) / GIB, 3),
        "gram_gib": round(8 * m * m / GIB, 3),
        "expanded_features_if_materialized_gib": round(8 * args.samples * m / GIB, 3),
        "state_gib": round(state_bytes / GIB, 3),
        "chosen_lambda": method.ridge_lambda_,
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    rows = [
        ("task", f"{args.samples:,} × {args.dim} features, {args.classes} classes, M = {m:,}"),
        ("wall time (s)", f"{wall:.1f}"),
        *((f"  {k} (s)", f"{v:.1f}") for k, v in phases.items()),
        ("RSS before learn (GiB)", f"{rss_before / GIB:.2f}"),
        ("peak RSS (GiB)", f"{peak / GIB:.2f}"),
        ("G alone (GiB)", f"{8 * m * m / GIB:.2f}"),
        ("H if materialized (GiB)", f"{8 * args.samples * m / GIB:.2f}"),
        ("state / checkpoint (GiB)", f"{state_bytes / GIB:.2f}"),
        ("chosen λ", f"{method.ridge_lambda_:g}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
