"""Ablation tables of the seed methods over seeds: each defining mechanism against the full method.

    .venv/bin/python benchmarks/ablations.py calfuse --seeds 0-4 --benchmark world-cil
    .venv/bin/python benchmarks/ablations.py moder --seeds 0-4 --benchmark world-mtil
    .venv/bin/python benchmarks/ablations.py pmi --seeds 0-2 --benchmark world-cil \
        --variants 'pmi' 'replay=none'

For every seed s and every variant (the full method and its controls, below) one engine run, in
this process: ``RunConfig(seed=s)`` on the benchmark as that run seed gives it — on the embedded
benchmarks (``order: run-seed``, ``seed: run-seed``) the seed draws the class order
(``seed:<1993 + s>``) and the images, exactly as ``driftless run --seeds`` does; other
class-incremental benchmarks take the class order ``seed:<s>`` — so a seed changes the data as well
as every random draw of the method. ``driftless run --seeds 0-4 --method m --method 'm[k=v]'``
followed by ``driftless compare <out> --baseline m`` gives the same table in one command; this
script adds controls that are not a setting (``hub_from``) and resumes from its JSON.
Prints, per variant and metric, the mean ± standard deviation over seeds
and the paired difference to the full method (variant − full, same seed) with its 95 % Student-t
confidence interval (scipy.stats.t), and how many seeds the full method wins. Writes JSON after
every run (default ``benchmarks/results/ablations_<method>_<benchmark>.json``) and reuses the runs
a previous invocation stored there with the same variant settings and seed (``--fresh`` to redo).

``--base key=value`` changes the full method's config for every variant (to measure a candidate
default); ``--variant 'name:key=value,key=value'`` adds a control of your own. The special key
``hub_from`` (MoDER) first runs MoDER on that benchmark with the same seed and loads its exported
hub.

One torch thread (``--threads``); each world-cil run of calfuse or moder takes seconds, pmi
minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from lightning.fabric import Fabric
from scipy import stats

from driftless.backbones.registry import load_backbone
from driftless.benchmarks.protocol import SampleSet
from driftless.benchmarks.registry import load_benchmark, load_benchmark_spec
from driftless.config import build_run_config
from driftless.engine.runner import Engine
from driftless.features.store import FeatureStore
from driftless.methods.base import LabelSpace
from driftless.methods.parts.text_classifier import TextEmbeddingCache
from driftless.methods.registry import method_class
from driftless.report.results import matrix_metrics

RESULTS = Path(__file__).parent / "results"

# the controls of each method (issue: "each defining mechanism must earn its place"); the first
# entry is the full method
VARIANTS: dict[str, dict[str, dict[str, Any]]] = {
    "calfuse": {
        "calfuse": {},
        "calibration=off": {"calibration": "off"},
        "calibration=scalar-per-task": {"calibration": "scalar-per-task"},
        # on world-cil and world-mtil the spec turns fusion off (it measured best there); the
        # fusion controls are then the fused ones
        "fusion=none": {"fusion": "none"},
        "fusion=qr": {"fusion": "qr"},
        "fusion=svd": {"fusion": "svd"},
        "replay=none": {"replay": "none"},
    },
    "moder": {
        "moder": {},
        "experts=untrained": {"experts": "untrained"},
        "composition=global-mean": {"composition": "global-mean"},
        "alpha=1": {"alpha": 1.0},
        "alpha=0": {"alpha": 0.0},
        "hub from the other benchmark": {"hub_from": "other"},
    },
    "pmi": {
        "pmi": {},
        "replay=none": {"replay": "none"},
        "replay=features": {"replay": "features"},
        "synthesis=every-task,synthetic_per_class=4": {
            "synthesis": "every-task",
            "synthetic_per_class": 4,
        },
        "init=noise": {"init": "noise"},
    },
}

# the metrics the tables show, by protocol (the first is the issue's judged one where it applies)
METRICS = {
    "class-incremental": ("last", "avg", "forgetting", "ci_transfer"),
    "multi-domain": ("transfer", "last", "avg"),
}
OTHER_BENCHMARK = {"world-cil": "world-mtil", "world-mtil": "world-cil"}


def parse_seeds(text: str) -> list[int]:
    """``0-4`` or ``0,2,5`` or ``3`` → the seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        if "-" in part:
            low, high = part.split("-")
            seeds.extend(range(int(low), int(high) + 1))
        else:
            seeds.append(int(part))
    return seeds


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``name:key=value,key=value`` (or ``key=value`` named by itself) → (name, overrides)."""
    name, _, body = text.rpartition(":") if ":" in text.split("=")[0] else ("", "", text)
    overrides = {}
    for item in filter(None, body.split(",")):
        key, _, raw = item.partition("=")
        overrides[key.strip()] = yaml.safe_load(raw)
    return (name or body), overrides


def benchmark_for_seed(benchmark: str, seed: int) -> str:
    """The benchmark as the run seed ``seed`` gives it: as it is where its spec draws the class
    order from the run seed (``order: run-seed``, as ``driftless run --seeds`` does), else with the
    class order ``seed:<seed>`` (class-incremental) or as it is."""
    spec = load_benchmark_spec(benchmark)
    if "class order" in spec.seed_varies() or spec.protocol != "class-incremental":
        return benchmark
    return f"{benchmark}@seed:{seed}"


class Session:
    """One benchmark (with the class order of ``seed``) and backbone, loaded once, run as often as
    there are variants: each :meth:`run` is the engine's own loop for one method (the code
    ``driftless run`` goes through), with that variant's settings."""

    def __init__(self, method: str, benchmark: str, seed: int, threads: int, workdir: Path):
        self.method, self.seed, self.workdir = method, seed, workdir
        self.name = benchmark
        config = build_run_config(
            {
                "benchmark": benchmark_for_seed(benchmark, seed),
                "methods": [method],
                "seed": seed,
                "threads": threads,
                "out": str(workdir / f"run-{benchmark}-{seed}"),
            }
        )
        self.engine = Engine(config, progress=False)
        self.engine.out.mkdir(parents=True, exist_ok=True)
        self.fabric = Fabric(accelerator=config.accelerator, devices=1, precision="32-true")
        # what the engine's run() sets before its loop, and its feature extraction and
        # evaluation read
        self.engine.fabric = self.fabric
        self.engine.num_workers = 0
        self.benchmark = load_benchmark(config.benchmark, config.data_root, run_seed=seed)
        self.backbone = load_backbone(config.backbone).to(self.fabric.device)
        self.texts = TextEmbeddingCache(self.backbone, batch_size=config.batch_size)
        self.texts(LabelSpace.of(self.benchmark, range(len(self.benchmark.classes))))
        self.features = None
        if method_class(method).inputs == "features":
            store = FeatureStore(config.cache_dir / "features", batch_size=config.batch_size)
            self.features = self.engine._extract_features(self.benchmark, self.backbone, store)

    def labelled_features(
        self, samples: list[SampleSet], space: LabelSpace
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The cached (unnormalized) features of ``samples`` and their labels as positions in
        ``space``, in the samples' order (for scripts that score a method's state directly)."""
        if self.features is None:
            raise ValueError(f"{self.method} takes images: this session cached no features")
        labels = np.concatenate([self.benchmark.labels(s) for s in samples])
        return self.features.rows(samples), space.positions(torch.from_numpy(labels))

    def run(self, settings: dict[str, Any], sessions: dict[str, Session]) -> dict[str, Any]:
        """Metrics and timings of one run with ``settings`` (``hub_from``: first a default run on
        that benchmark exporting its hub, through ``sessions``)."""
        settings = dict(settings)
        hub_from = settings.pop("hub_from", None)
        if hub_from is not None:
            source = OTHER_BENCHMARK[self.name] if hub_from == "other" else hub_from
            hub = self.workdir / f"hub-{source}-{self.seed}.pt"
            if not hub.exists():
                if source not in sessions:
                    sessions[source] = Session(self.method, source, self.seed, 1, self.workdir)
                sessions[source].run({"export_path": str(hub)}, sessions)
            settings["hub_path"] = str(hub)
        engine = self.engine
        engine.config = engine.config.model_copy(update={"method_config": {self.method: settings}})
        tick = time.perf_counter()
        threads = torch.get_num_threads()
        torch.set_num_threads(engine.config.threads or threads)
        try:
            outcome = engine._run_method(
                self.method, self.benchmark, self.backbone, self.fabric, self.texts, self.features
            )
        finally:
            torch.set_num_threads(threads)
        counts = [len(e.samples.indices) for e in self.benchmark.eval_splits]
        values = [[None if np.isnan(v) else v for v in row] for row in outcome.matrix.tolist()]
        return {
            "metrics": matrix_metrics(self.benchmark.protocol, values, counts),
            "learn_seconds": sum(outcome.learn_seconds),
            "wall_seconds": time.perf_counter() - tick,
        }


def cosine_accuracy(h: torch.Tensor, texts: torch.Tensor, targets: torch.Tensor) -> float:
    """Top-1 accuracy (percent) of cos(h, t_c) for unit-norm features h and text embeddings t_c."""
    return float(((h @ texts.T).argmax(1) == targets).float().mean()) * 100


def paired(full: list[float], other: list[float]) -> dict[str, float]:
    """Mean, std of ``other``; the paired difference other − full with its 95 % t interval."""
    diff = np.asarray(other, dtype=float) - np.asarray(full, dtype=float)
    n = len(diff)
    mean = float(diff.mean())
    if n > 1:
        sd = float(diff.std(ddof=1))
        half = float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n))
    else:
        sd, half = float("nan"), float("nan")
    return {
        "mean": float(np.mean(other)),
        "std": float(np.std(other, ddof=1)) if n > 1 else float("nan"),
        "diff": mean,
        "diff_low": mean - half,
        "diff_high": mean + half,
        "full_wins": int((diff < 0).sum()),
        "ties": int((diff == 0).sum()),
    }


def summarize(
    runs: dict[str, dict[int, dict]], names: list[str], seeds: list[int], metrics: tuple[str, ...]
) -> dict[str, dict[str, dict[str, float]]]:
    """Per variant and metric: :func:`paired` against the first variant, over the seeds both ran."""
    full = names[0]
    table: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        common = [s for s in seeds if s in runs.get(name, {}) and s in runs.get(full, {})]
        if not common:
            continue
        table[name] = {"seeds": common}  # type: ignore[dict-item]
        for metric in metrics:
            a = [runs[full][s]["metrics"].get(metric) for s in common]
            b = [runs[name][s]["metrics"].get(metric) for s in common]
            if any(v is None for v in a + b):
                continue
            table[name][metric] = paired(a, b)
    return table


def print_table(table: dict, metrics: tuple[str, ...], full: str) -> None:
    """Mean ± std, and the paired difference [95 % CI] (full wins / seeds), per metric."""
    print()
    header = f"{'variant':32s}" + "".join(f" | {m:>38s}" for m in metrics)
    print(header)
    print("-" * len(header))
    for name, row in table.items():
        cells = []
        n = len(row["seeds"])
        for metric in metrics:
            cell = row.get(metric)
            if cell is None:
                cells.append(f"{'–':>38s}")
            elif name == full:
                cells.append(f"{cell['mean']:6.2f} ± {cell['std']:4.2f}{'':>25s}")
            else:
                low, high = cell["diff_low"], cell["diff_high"]
                cells.append(
                    f"{cell['mean']:6.2f} ± {cell['std']:4.2f} Δ{cell['diff']:+6.2f} "
                    f"[{low:+6.2f},{high:+6.2f}] {cell['full_wins']}/{n}"
                )
        print(f"{name:32s}" + "".join(f" | {c}" for c in cells))
    print(f"\nΔ = variant − {full} (paired by seed) with its 95 % t interval; k/n = seeds on which")
    print(f"{full} is higher (for forgetting, lower is better: read the sign).")


def markdown_table(table: dict, metrics: tuple[str, ...], full: str) -> str:
    """The table as markdown: mean ± std per metric, and for each control the paired difference
    to the full method with its 95 % CI and the seeds the full method wins."""
    lines = [
        "| variant | seeds | " + " | ".join(metrics) + " |",
        "|---|---:|" + "---:|" * len(metrics),
    ]
    for name, row in table.items():
        cells = []
        for metric in metrics:
            cell = row.get(metric)
            if cell is None:
                cells.append("–")
            elif name == full:
                cells.append(f"**{cell['mean']:.2f} ± {cell['std']:.2f}**")
            else:
                cells.append(
                    f"{cell['mean']:.2f} ± {cell['std']:.2f}<br>Δ {cell['diff']:+.2f} "
                    f"[{cell['diff_low']:+.2f}, {cell['diff_high']:+.2f}] "
                    f"({cell['full_wins']}/{len(row['seeds'])})"
                )
        seeds = row["seeds"]
        lines.append(f"| {name} | {len(seeds)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("method", choices=sorted(VARIANTS))
    parser.add_argument("--benchmark", default="world-cil")
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--variants", nargs="*", help="only these of the method's variants")
    parser.add_argument("--variant", action="append", default=[], help="name:key=v,key=v")
    parser.add_argument("--base", action="append", default=[], help="key=value for every run")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--fresh", action="store_true", help="ignore runs stored in --out")
    parser.add_argument(
        "--skip-full",
        action="store_true",
        help="run the controls only (another invocation runs the full method into the same file)",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print the stored table as markdown; run nothing"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    seeds = parse_seeds(args.seeds)
    base = {k: v for b in args.base for k, v in parse_variant(b)[1].items()}
    variants = dict(VARIANTS[args.method])
    for text in args.variant:
        name, overrides = parse_variant(text)
        variants[name] = overrides
    full = next(iter(variants))
    names = [full] + [
        n for n in variants if n != full and (not args.variants or n in args.variants)
    ]
    protocol = load_benchmark_spec(args.benchmark).protocol
    metrics = METRICS[protocol]
    tag = "" if not base else "_" + "_".join(f"{k}-{v}" for k, v in sorted(base.items()))
    out = args.out or RESULTS / f"ablations_{args.method}_{args.benchmark}{tag}.json"

    # what a seed changes in the data; runs stored under another rule (before the run seed drew
    # the images) are redone
    data_rule = "run-seed" if load_benchmark_spec(args.benchmark).seed_varies() else "seed-order"
    stored: dict[str, Any] = {}
    if out.exists() and not args.fresh:
        stored = json.loads(out.read_text())
        if stored.get("data_rule", "seed-order") != data_rule:
            stored = {}
    runs: dict[str, dict[int, dict]] = {}
    for name, entry in stored.get("variants", {}).items():
        current = {**base, **variants[name]} if name in variants else None
        if current is None or entry.get("settings") == current:  # else: settings changed, redo
            runs[name] = {int(s): r for s, r in entry.get("runs", {}).items()}

    def save(table: dict) -> None:
        document = {
            "command": "benchmarks/ablations.py "
            + " ".join(
                [args.method, "--benchmark", args.benchmark, "--seeds", args.seeds]
                + [f"--base {b}" for b in args.base]
            ),
            "method": args.method,
            "benchmark": args.benchmark,
            "class_order": benchmark_for_seed(args.benchmark, 0).replace(":0", ":<seed>"),
            "data_rule": data_rule,
            "base": base,
            "threads": args.threads,
            "machine": platform.platform(),
            "variants": {
                name: {
                    "settings": (
                        {**base, **variants[name]}
                        if name in variants
                        else stored["variants"][name].get("settings")
                    ),
                    "runs": {str(s): r for s, r in sorted(runs.get(name, {}).items())},
                }
                for name in sorted(set(runs) | set(names), key=lambda n: (n != full, n))
            },
            "summary": table,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(document, indent=1, default=float))

    if args.markdown:
        print(markdown_table(summarize(runs, names, seeds, metrics), metrics, full))
        return
    with tempfile.TemporaryDirectory(prefix="driftless-ablations-") as tmp:
        workdir = Path(tmp)
        for seed in seeds:
            sessions: dict[str, Session] = {}
            for name in names:
                settings = {**base, **variants[name]}
                if seed in runs.get(name, {}) or (args.skip_full and name == full):
                    continue
                if args.benchmark not in sessions:
                    sessions[args.benchmark] = Session(
                        args.method, args.benchmark, seed, args.threads, workdir
                    )
                outcome = sessions[args.benchmark].run(settings, sessions)
                runs.setdefault(name, {})[seed] = outcome
                shown = ", ".join(
                    f"{m} {outcome['metrics'][m]:.2f}"
                    for m in metrics
                    if outcome["metrics"].get(m) is not None
                )
                print(f"seed {seed} {name}: {shown} ({outcome['wall_seconds']:.0f} s)", flush=True)
                save(summarize(runs, names, seeds, metrics))
    table = summarize(runs, names, seeds, metrics)
    save(table)
    print_table(table, metrics, full)
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
