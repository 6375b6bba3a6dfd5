"""world-dil and world-fscil over several seeds: zero-shot, ncm, teen and finetune (any methods),
checking the properties the embedded protocols exist for: zero-shot far from perfect, fine-tuning
forgets, methods differ, and on world-fscil TEEN beats NCM on the last session's novel classes
without losing more than a point on its base classes.

    PYTHONPATH=src .venv/bin/python benchmarks/dil_fscil_seeds.py [--seeds 0 1 2] [--method ...]

Seed s is the run seed, which redraws everything these benchmarks draw (``run-seed`` in their
specs): the images, the few shots, the FSCIL class order (``seed:<1993 + s>``; s = 0 is
``seed1993``), and the methods' own randomness. Prints a table per benchmark and writes JSON (default:
benchmarks/results/dil_fscil_seeds.json).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from driftless.config import RunConfig
from driftless.engine.runner import run
from driftless.report.results import build_results

BENCHMARKS = ("world-dil", "world-fscil")
METHODS = ("zero-shot", "ncm", "teen", "finetune")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--benchmark", nargs="+", default=list(BENCHMARKS))
    parser.add_argument("--method", nargs="+", default=list(METHODS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "dil_fscil_seeds.json"
    )
    args = parser.parse_args()
    report: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.benchmark:
            report[name] = {}
            for seed in args.seeds:
                config = RunConfig(
                    benchmark=name,
                    methods=list(args.method),
                    seed=seed,
                    threads=args.threads,
                    out=Path(tmp) / f"{name}-{seed}",
                )
                results = build_results(run(config, progress=False))
                report[name][seed] = {m: r["metrics"] for m, r in results["methods"].items()}
                print(name, seed, json.dumps(report[name][seed]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, by_seed in report.items():
        keys = [k for k in ("avg", "last", "base", "novel", "pd", "forgetting", "transfer")
                if k in next(iter(next(iter(by_seed.values())).values()))]  # fmt: skip
        print(f"\n{name} (mean ± std over seeds {args.seeds})")
        print("| method | " + " | ".join(keys) + " |")
        for method in args.method:
            cells = []
            for key in keys:
                values = np.array([by_seed[s][method][key] for s in by_seed], dtype=float)
                spread = values.std(ddof=1) if len(values) > 1 else 0.0
                cells.append(f"{values.mean():.2f} ± {spread:.2f}")
            print(f"| {method} | " + " | ".join(cells) + " |")
        if "teen" in args.method and "ncm" in args.method and "base" in keys:
            for s, methods in by_seed.items():
                novel = methods["teen"]["novel"] - methods["ncm"]["novel"]
                base = methods["teen"]["base"] - methods["ncm"]["base"]
                verdict = "ok" if novel > 0 and base >= -1 else "FAILS"
                print(f"seed {s}: teen − ncm novel {novel:+.2f}, base {base:+.2f}: {verdict}")


if __name__ == "__main__":
    main()
