"""The ``driftless`` command: ``run``, ``list``, ``metrics``, ``compare``, ``data check``,
``check-method``."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from driftless.errors import DriftlessError

RUN_EXAMPLES = """examples:
  driftless run                                   # the default benchmark with every method
  driftless run --benchmark toy-mtil --method zero-shot --method ncm --out runs/mtil
  driftless run --config my.yaml --set seed=3 --set calfuse.steps=50
  driftless run --method calfuse --method 'calfuse[calibration=off,fusion=none]'   # an ablation
  driftless run --seeds 0-4 --method ncm --out runs/sweep   # one run per seed: runs/sweep/seed-N
  driftless run --out runs/mtil --resume          # continue a killed run (or sweep) as it was started
  driftless run --backbone openai/clip-vit-base-patch16 --benchmark cifar100-b0inc10 --data-root ~/data
  driftless run --devices 4 --precision bf16-mixed ...   # four GPUs (DDP); see docs/scaling.md
"""

log = logging.getLogger("driftless")


def import_plugin(spec: str) -> None:
    """Import a module (dotted name or .py file) that registers methods or datasets."""
    path = Path(spec)
    if path.suffix == ".py":
        if not path.is_file():
            raise DriftlessError(f"--import: file not found: {path}")
        loaded = sys.modules.get(path.stem)
        if loaded is not None and Path(getattr(loaded, "__file__", "")).resolve() == path.resolve():
            return  # already imported in this process: its methods are registered
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module
        module_spec.loader.exec_module(module)
    else:
        try:
            importlib.import_module(spec)
        except ModuleNotFoundError as exc:
            raise DriftlessError(f"--import: cannot import module {spec!r}: {exc}") from None


def parse_seeds(text: str) -> list[int]:
    """``--seeds``: ``11,12,13``, ``0-4`` or both (``0-2,7``) → the seeds, in order, distinct."""
    from driftless.errors import ConfigError

    seeds: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        first, dash, last = part.partition("-")
        try:
            values = range(int(first), int(last) + 1) if dash else [int(part)]
        except ValueError:
            raise ConfigError(
                f"--seeds {text!r}: {part!r} is not a seed or a range such as 0-4"
            ) from None
        if not values or min(values) < 0:
            raise ConfigError(f"--seeds {text!r}: {part!r} is empty or negative")
        seeds.extend(values)
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r}: a seed repeats")
    return seeds


def _run_config_data(
    args: argparse.Namespace, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The run configuration the flags describe, over ``base`` (a resumed run's saved config):
    base < --config file < flags < --set."""
    from driftless.config import apply_overrides, load_yaml_config

    data: dict[str, Any] = dict(base or {})
    if args.config:
        data.update(load_yaml_config(args.config))
    flags = {
        "benchmark": args.benchmark,
        "methods": args.method or None,
        "backbone": args.backbone,
        "out": args.out,
        "seed": args.seed,
        "data_root": args.data_root,
        "cache_dir": args.cache_dir,
        "accelerator": args.accelerator,
        "batch_size": args.batch_size,
        "num_workers": args.num_workers,
        "threads": args.threads,
        "precision": args.precision,
        "devices": args.devices,
        "num_nodes": args.num_nodes,
        "strategy": args.strategy,
    }
    data.update({k: v for k, v in flags.items() if v is not None})
    if args.logger:
        data["loggers"] = [] if "none" in args.logger else list(dict.fromkeys(args.logger))
    if args.no_eval_future:
        data["eval_future"] = False
    if args.download:
        data["download"] = True
    return apply_overrides(data, args.set or [])


RunPlan = list[tuple[Any, bool]]
"""(RunConfig, resume) for each run a command asks for: one, or one per seed of a sweep."""


def _fresh_plan(args: argparse.Namespace, seeds: list[int] | None) -> tuple[RunPlan, Any]:
    """New runs: one, or with ``--seeds`` one per seed in ``<out>/seed-<s>``. Also returns the
    sweep record to save (None for a single run)."""
    from driftless.config import build_run_config
    from driftless.engine.runner import new_run_dir, semantic_config

    config = build_run_config(_run_config_data(args))
    if seeds is None:
        return [(config, False)], None
    out = Path(config.out) if config.out else new_run_dir(config.benchmark)
    sweep = {"seeds": seeds, "config": {**semantic_config(config), "seed": None}, "out": out}
    plan = [(config.model_copy(update={"seed": s, "out": out / f"seed-{s}"}), False) for s in seeds]
    return plan, sweep


def _resume_plan(args: argparse.Namespace, seeds: list[int] | None) -> RunPlan:
    """Resumed runs, each from the configuration saved in its directory: flags given too must
    agree with it (the engine names any field that differs). A seed sweep resumes every seed;
    seeds it had not started yet start now."""
    import yaml

    from driftless.config import DEFAULT_BENCHMARK, build_run_config
    from driftless.engine.runner import (
        SWEEP_FILE,
        check_same_config,
        latest_run_dir,
        saved_config,
    )
    from driftless.errors import ResumeError

    explicit = _run_config_data(args)
    out = explicit.get("out") or latest_run_dir(explicit.get("benchmark", DEFAULT_BENCHMARK))
    out = Path(out)
    sweep_file = out / SWEEP_FILE
    if not sweep_file.is_file():
        if seeds is not None:
            raise ResumeError(f"--resume --seeds: {out} is not a seed sweep (no {SWEEP_FILE})")
        return [(build_run_config(_run_config_data(args, saved_config(out))), True)]
    sweep = yaml.safe_load(sweep_file.read_text()) or {}
    plan = []
    for seed in seeds or sweep.get("seeds", []):
        run_dir = out / f"seed-{seed}"
        started = (run_dir / "config.yaml").is_file()
        base = saved_config(run_dir) if started else {**sweep["config"], "seed": seed}
        config = build_run_config({**_run_config_data(args, base), "out": run_dir, "seed": seed})
        if not started:  # the engine checks a started run; check this one against the sweep
            check_same_config(base, config, out)
        plan.append((config, started))
    return plan


def _quiet_libraries(verbose: int) -> None:
    """Silence transformers' and huggingface_hub's own progress bars and warnings (a log should
    hold driftless's lines only); ``-v`` keeps them."""
    if verbose:
        return
    import warnings

    from huggingface_hub.utils import disable_progress_bars
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()  # its weight-loading bar too
    disable_progress_bars()
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    # deprecation notices are for developers (the library's API calls), not for a run's log
    warnings.simplefilter("ignore", FutureWarning)
    warnings.simplefilter("ignore", DeprecationWarning)


def cmd_run(args: argparse.Namespace) -> int:
    """``driftless run``: build the config, run every method, write and print the report; with
    ``--seeds``, once per seed."""
    from driftless.errors import ConfigError

    for plugin in args.imports or []:
        import_plugin(plugin)
    if args.seeds is not None and args.seed is not None:
        raise ConfigError("--seed and --seeds: give one of them")
    seeds = parse_seeds(args.seeds) if args.seeds is not None else None
    if args.resume:
        plan, sweep = _resume_plan(args, seeds), None
    else:
        plan, sweep = _fresh_plan(args, seeds)
    _warn_tiny_settings(plan[0][0])
    if args.dry_run:
        from driftless.engine.preflight import dry_run

        dry_run(plan[0][0], say=print)
        return 0
    _quiet_libraries(getattr(args, "verbose", 0))
    if plan[0][0].backbone == "tiny-random":
        log.warning(
            "note: tiny-random is a randomly initialised model: its numbers show that the pipeline "
            "runs, not how the methods compare."
        )
    if sweep is not None:
        _write_sweep(sweep)
    for config, resume in plan:
        _run_and_report(
            config,
            resume,
            progress=not args.no_progress,
            overwrite=args.overwrite,
            figures=args.figures,
        )
    if len(plan) > 1:
        dirs = ", ".join(str(c.out) for c, _ in plan)
        print(f"\n{len(plan)} runs, one per seed: {dirs}")
    return 0


def _write_sweep(sweep: dict[str, Any]) -> None:
    import yaml

    from driftless.atomic import atomic_write_bytes
    from driftless.engine.runner import SWEEP_FILE

    out = Path(sweep["out"])
    out.mkdir(parents=True, exist_ok=True)
    record = {"seeds": sweep["seeds"], "config": sweep["config"]}
    atomic_write_bytes(out / SWEEP_FILE, yaml.safe_dump(record, sort_keys=True).encode())


def _run_and_report(
    config: Any, resume: bool, progress: bool, overwrite: bool, figures: Sequence[str]
) -> None:
    """Run one configuration, write its report and print its table."""
    from driftless.engine import run
    from driftless.report import build_results, comparison_table, write_report
    from driftless.report.table import published_comparison

    outcome = run(config, resume=resume, progress=progress, overwrite=overwrite)
    if not outcome.is_global_zero:
        return  # rank 0 of a distributed run writes and prints the report
    results = build_results(outcome)
    try:
        written = write_report(results, outcome.out, formats=figures)
    except OSError as exc:  # a full disk while plotting: name the directory (checkpoints are whole)
        from driftless.atomic import storage_error
        from driftless.errors import StorageError

        if isinstance(exc, StorageError):
            raise
        raise storage_error(exc, outcome.out, "write the report into") from exc
    metrics = {name: m["metrics"] for name, m in results["methods"].items()}
    seconds = {name: m["timings"]["total_seconds"] for name, m in results["methods"].items()}
    print(
        f"\n{results['benchmark']['name']} · backbone {results['backbone']['name']} · seed {config.seed}"
    )
    print(comparison_table(metrics, seconds))
    if config.reference is not None:
        print(published_comparison(config.reference, metrics))
    print(f"\nfeatures: {outcome.images_encoded} images encoded ({outcome.feature_seconds:.1f} s)")
    print(f"results: {written[0]}\nreport:  {', '.join(str(p.name) for p in written[1:])}")


def _warn_tiny_settings(config: Any) -> None:
    """One warning when a real benchmark would run with the tiny models' hyper-parameters (printed
    by the launching process only, not by every rank of a distributed run)."""
    import os

    from driftless.benchmarks.registry import load_benchmark_spec
    from driftless.benchmarks.settings import tiny_settings_warning

    if os.environ.get("LOCAL_RANK", "0") != "0" or os.environ.get("RANK", "0") != "0":
        return
    spec = load_benchmark_spec(config.benchmark)
    warning = tiny_settings_warning(spec, config.resolved_methods(), config.method_config)
    if warning:
        print(warning, file=sys.stderr)


def cmd_data_check(args: argparse.Namespace) -> int:
    """``driftless data check``: per dataset, found / missing / malformed and the split sizes."""
    from driftless.config import default_data_root
    from driftless.data.check import check_datasets, format_checks

    root = args.root or default_data_root()
    checks = check_datasets(root, args.dataset, verify_files=not args.no_verify_files)
    print(format_checks(checks, root))
    bad = [c for c in checks if c.status == "malformed" or not c.counts_match()]
    return 1 if bad else 0


def cmd_list(args: argparse.Namespace) -> int:
    """``driftless list benchmarks|methods|backbones``."""
    if args.what == "benchmarks":
        from driftless.benchmarks.registry import list_benchmarks

        for name, spec in list_benchmarks().items():
            print(f"{name:22s} {spec.protocol:26s} {' '.join(spec.description.split())}")
    elif args.what == "methods":
        # the built-in methods from their source (importing them would import torch); a user's
        # --import module is imported, and its methods are listed with them
        from driftless.methods.catalog import builtin_method_entries, entry_of

        entries = {e.name: e for e in builtin_method_entries()}
        if args.imports:
            from driftless.methods.registry import registered_methods

            for plugin in args.imports:
                import_plugin(plugin)
            entries.update({n: entry_of(c) for n, c in registered_methods().items()})
        for name, entry in sorted(entries.items()):
            print(f"{name:14s} {entry.inputs:9s} {entry.summary}")
    else:
        from driftless.backbones.registry import BUILTIN_BACKBONES

        for name, (description, _) in BUILTIN_BACKBONES.items():
            print(f"{name:14s} {description}")
        print(
            "(also: any CLIPModel.save_pretrained directory, or a Hugging Face id in the local cache)"
        )
    return 0


def cmd_check_method(args: argparse.Namespace) -> int:
    """``driftless check-method NAME``: the method-conformance suite; exit 1 if a check fails."""
    import tempfile

    from driftless.engine.conformance import iter_checks
    from driftless.methods.registry import parse_field_value

    for spec in args.imports or []:
        import_plugin(spec)
    values: dict[str, Any] = {}
    for item in args.set or []:
        field, sep, raw = item.partition("=")
        if not sep or not field.strip():
            raise DriftlessError(f"--set {item!r}: expected field=value")
        values[field.strip()] = parse_field_value(args.name, field.strip(), raw)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="driftless-check-") as root:
        for outcome in iter_checks(
            args.name, values, data_root=Path(root), tasks=args.tasks, seed=args.seed
        ):
            failed += not outcome.passed
            verdict = "PASS" if outcome.passed else "FAIL"
            print(f"{verdict}  {outcome.check}: {outcome.detail}", flush=True)
    print(f"{args.name}: {'every check passed' if not failed else f'{failed} check(s) failed'}")
    return 1 if failed else 0


def cmd_metrics(args: argparse.Namespace) -> int:
    """``driftless metrics RESULTS``: recompute and print metrics from saved matrices."""
    from driftless.report import comparison_table, load_results, recompute_metrics

    results = load_results(args.results)
    print(comparison_table(recompute_metrics(results)))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``driftless compare PATH ...``: mean ± std over seeds per (benchmark, method, metric),
    paired differences against ``--baseline``, published values beside ours."""
    from driftless.report.compare import (
        FORMATTERS,
        compare_runs,
        find_results_files,
        load_reference,
        read_method_runs,
    )

    files = find_results_files(args.paths)
    skipped: list[str] = []
    runs = read_method_runs(files, skipped)
    for line in skipped:
        print(f"driftless: warning: {line}", file=sys.stderr)
    if not runs:
        raise DriftlessError("compare: none of the results.json files found holds a run's results")
    reference = load_reference(args.reference) if args.reference else None
    comparison = compare_runs(runs, baseline=args.baseline, reference=reference)
    for warning in comparison.warnings:
        print(f"driftless: warning: {warning}", file=sys.stderr)
    text = FORMATTERS[args.format](comparison)
    if args.output:
        args.output.write_text(text)
        print(f"wrote {args.output} ({len(files)} results files)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    if args.plot:
        from driftless.report.plots import plot_seed_curves

        written = plot_seed_curves(files, args.plot, args.figures)
        print(f"figures: {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0


def cmd_pretrain_tiny(args: argparse.Namespace) -> int:
    """``driftless pretrain-tiny``: pretrain the tiny CLIP on the generated world."""
    from dataclasses import replace

    from driftless.backbones.registry import TINY_CLIP_DIR
    from driftless.pretrain.tiny_clip import TinyClipRecipe, pretrain_tiny_clip

    recipe = TinyClipRecipe()
    changes = {
        k: getattr(args, k)
        for k in ("seed", "steps", "corpus_size", "batch_size")
        if getattr(args, k) is not None
    }
    recipe = replace(recipe, **changes)
    out = args.out or TINY_CLIP_DIR
    log = pretrain_tiny_clip(recipe, out, progress=not args.no_progress)
    probes = ", ".join(f"{k} {v:.1f}%" for k, v in log["final_probes"].items())
    print(
        f"wrote {out} in {log['total_seconds'] / 60:.1f} min ({log['pairs_per_second']:.0f} pairs/s)"
    )
    print(f"zero-shot probes: {probes}")
    return 0


def _figure_formats(text: str) -> list[str]:
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    if not formats or any(f not in ("png", "pdf", "svg") for f in formats):
        raise argparse.ArgumentTypeError(f"{text!r}: expected formats among png, pdf, svg")
    return formats


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``driftless`` command."""
    parser = argparse.ArgumentParser(prog="driftless", description=__doc__)
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the traceback behind an error"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run methods on a benchmark",
        epilog=RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--benchmark", help="registered benchmark name or YAML spec file")
    run.add_argument(
        "--method",
        action="append",
        help="a method to run (repeatable; default: all); NAME[field=value,...] runs a variant with "
        "those config fields under exactly that label, e.g. 'calfuse[fusion=none]'",
    )
    run.add_argument(
        "--backbone", help="tiny-random, a save_pretrained directory or a Hugging Face id"
    )
    run.add_argument(
        "--out", type=Path, help="run directory (default: runs/<benchmark>/<timestamp>)"
    )
    run.add_argument("--seed", type=int)
    run.add_argument(
        "--resume",
        action="store_true",
        help="continue the run (or seed sweep) in --out, or the latest one, with the configuration "
        "saved there; other flags must agree with it",
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="discard the run already in --out and start afresh (without it, such a run is refused)",
    )
    run.add_argument("--config", type=Path, help="YAML run configuration")
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config field; <method>.<field>=v sets a method's hyper-parameter, "
        "parsed by its type (e.g. moder.hub_path=runs/cil loads another run's MoDER hub)",
    )
    run.add_argument(
        "--data-root",
        type=Path,
        help="where datasets live (default: $DRIFTLESS_DATA_ROOT or ~/data)",
    )
    run.add_argument(
        "--cache-dir", type=Path, help="feature store location (default: ~/.cache/driftless)"
    )
    run.add_argument("--accelerator", choices=["auto", "cpu", "cuda", "mps"])
    run.add_argument(
        "--precision",
        choices=["32-true", "bf16-mixed", "16-mixed", "bf16-true"],
        help="compute precision (default 32-true; bf16-mixed on recent GPUs)",
    )
    run.add_argument(
        "--devices", type=int, help="processes per node: GPUs, or CPU processes (default 1)"
    )
    run.add_argument("--num-nodes", type=int, help="nodes of a multi-node run (default 1)")
    run.add_argument(
        "--strategy", choices=["auto", "ddp"], help="Fabric strategy (auto: DDP when devices > 1)"
    )
    run.add_argument("--batch-size", type=int)
    run.add_argument(
        "--num-workers",
        type=int,
        help="image-decoding processes (default: 0 on a CPU; on a GPU, the cores per device, ≤ 8)",
    )
    run.add_argument(
        "--threads",
        type=int,
        help="CPU threads of torch and every BLAS pool (default: one per core; on a busy shared "
        "CPU, 1 is often faster)",
    )
    run.add_argument(
        "--no-eval-future", action="store_true", help="skip evaluating unseen blocks (CI-Transfer)"
    )
    run.add_argument(
        "--download", action="store_true", help="allow downloading a Hugging Face backbone"
    )
    run.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE",
        help="import a module or .py file that registers extra methods (repeatable)",
    )
    run.add_argument(
        "--seeds",
        metavar="SEEDS",
        help="run once per seed (11,12,13 or 0-4), each in <out>/seed-<s>, sharing the feature store",
    )
    run.add_argument(
        "--no-progress",
        action="store_true",
        help="hide progress (default: one bar per method on a terminal, else one line per task)",
    )
    run.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="show the traceback behind an error, and transformers' and Lightning's own messages "
        "and progress bars",
    )
    run.add_argument(
        "--logger",
        action="append",
        choices=["csv", "tensorboard", "wandb", "none"],
        help="where training losses and per-task metrics go, under OUT/logs/ (repeatable; "
        "default csv; tensorboard and wandb need their package; none: nowhere)",
    )
    run.add_argument(
        "--figures",
        type=_figure_formats,
        default=("png", "pdf", "svg"),
        metavar="FORMATS",
        help="figure formats, comma-separated, among png, pdf, svg (default: all three)",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the config and its data (build the benchmark, find the backbone); no training",
    )
    run.set_defaults(func=cmd_run)

    lst = sub.add_parser("list", help="list benchmarks, methods or backbones")
    lst.add_argument("what", choices=["benchmarks", "methods", "backbones"])
    lst.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE",
        help="import a module or .py file that registers methods, and list them too (repeatable)",
    )
    lst.set_defaults(func=cmd_list)

    pre = sub.add_parser(
        "pretrain-tiny", help="pretrain the bundled tiny CLIP on the generated world"
    )
    pre.add_argument(
        "--out", type=Path, help="model directory (default: the package's bundled tiny-clip)"
    )
    pre.add_argument("--seed", type=int)
    pre.add_argument("--steps", type=int)
    pre.add_argument("--corpus-size", type=int)
    pre.add_argument("--batch-size", type=int)
    pre.add_argument("--no-progress", action="store_true")
    pre.set_defaults(func=cmd_pretrain_tiny)

    data = sub.add_parser("data", help="inspect the real datasets on disk")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser(
        "check",
        help="per dataset: found / missing / malformed, expected layout, sizes vs the official ones",
    )
    check.add_argument(
        "--root", type=Path, help="the data root (default: $DRIFTLESS_DATA_ROOT or ~/data)"
    )
    check.add_argument(
        "--dataset", action="append", metavar="NAME", help="check only this dataset (repeatable)"
    )
    check.add_argument(
        "--no-verify-files",
        action="store_true",
        help="skip checking that every listed image file exists (faster on slow disks)",
    )
    check.set_defaults(func=cmd_data_check)

    chk = sub.add_parser(
        "check-method",
        help="check a method against the Method contract on a toy benchmark (exit 1 on failure)",
    )
    chk.add_argument("name", help="a registered method (see `driftless list methods`)")
    chk.add_argument(
        "--import",
        dest="imports",
        action="append",
        metavar="MODULE",
        help="import a module or .py file that registers the method (repeatable)",
    )
    chk.add_argument(
        "--set", action="append", metavar="FIELD=VALUE", help="a config field of the method"
    )
    chk.add_argument("--tasks", type=int, default=2, help="toy-cil tasks to learn (default 2)")
    chk.add_argument("--seed", type=int, default=0)
    chk.set_defaults(func=cmd_check_method)

    met = sub.add_parser("metrics", help="recompute metrics from a results.json")
    met.add_argument("results", type=Path, help="results.json or its run directory")
    met.set_defaults(func=cmd_metrics)

    cmp = sub.add_parser(
        "compare",
        help="mean ± std over seeds and paired differences across results.json files",
        description="Read results.json files (or run directories, searched recursively), group "
        "by (benchmark, backbone, method) and print every metric's mean ± sample std (ddof=1) "
        "and n over seeds.",
    )
    cmp.add_argument("paths", nargs="+", type=Path, help="results.json files or run directories")
    cmp.add_argument(
        "--baseline",
        metavar="METHOD",
        help="add each method's paired difference against METHOD over the seeds both have "
        "(95%% Student-t CI, seeds each side wins)",
    )
    cmp.add_argument(
        "--format",
        choices=["markdown", "csv", "latex", "json"],
        default="markdown",
        help="output format (default markdown; csv: one line per benchmark, method and metric)",
    )
    cmp.add_argument(
        "--reference",
        type=Path,
        metavar="CONFIG",
        help="a run configuration with a `reference:` block (configs/reproduce/*.yaml): print "
        "the published numbers beside ours (references saved in the runs are used anyway)",
    )
    cmp.add_argument("--output", "-o", type=Path, help="write the table to a file, not stdout")
    cmp.add_argument(
        "--plot",
        type=Path,
        metavar="DIR",
        help="also draw mean curves with a ± std band over seeds into DIR (PNG, PDF, SVG)",
    )
    cmp.add_argument(
        "--figures",
        type=_figure_formats,
        default=("png", "pdf", "svg"),
        metavar="FORMATS",
        help="with --plot: figure formats, comma-separated, among png, pdf, svg (default: all)",
    )
    cmp.set_defaults(func=cmd_compare)
    for command in (lst, pre, check, chk, met, cmp):  # -v also after the command (run has its own)
        command.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
        )
    return parser


def _report_error(args: argparse.Namespace, line: str) -> int:
    """One line on stderr (after the traceback with ``-v``); exit status 2."""
    if getattr(args, "verbose", False):
        traceback.print_exc()
    print(f"driftless: error: {line}", file=sys.stderr)
    return 2


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is when a message is logged (not the one
    it was created with: a test or a notebook may have replaced it since)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _configure_logging(verbose: int) -> None:
    """driftless's messages to stderr, one line each; ``-v`` adds debug messages."""
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        log.addHandler(_StderrHandler())
        log.propagate = False
    log.setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors print one line and exit 2."""
    args = build_parser().parse_args(argv)
    _configure_logging(getattr(args, "verbose", 0))
    try:
        return args.func(args)
    except DriftlessError as exc:
        return _report_error(args, str(exc))
    except OSError as exc:  # a file system problem outside driftless's own writes
        from driftless.atomic import storage_error

        where = Path(exc.filename) if exc.filename else None
        return _report_error(args, str(storage_error(exc, where, "use")))
    except KeyboardInterrupt:
        print("driftless: interrupted; resume with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
