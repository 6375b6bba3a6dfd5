"""The ``driftless`` command: ``run``, ``list``, ``metrics``, ``data check``, ``check-method``."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from driftless.errors import DriftlessError

RUN_EXAMPLES = """examples:
  driftless run                                   # the default benchmark with every method
  driftless run --benchmark toy-mtil --method zero-shot --method ncm --out runs/mtil
  driftless run --config my.yaml --set seed=3 --set ncm.unseen=error
  driftless run --out runs/mtil --resume          # continue a killed run
  driftless run --backbone openai/clip-vit-base-patch16 --benchmark cifar100-b0inc10 --data-root ~/data
"""


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


def _run_config_data(args: argparse.Namespace) -> dict[str, Any]:
    from driftless.config import apply_overrides, load_yaml_config

    data: dict[str, Any] = load_yaml_config(args.config) if args.config else {}
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
    }
    data.update({k: v for k, v in flags.items() if v is not None})
    if args.no_eval_future:
        data["eval_future"] = False
    if args.download:
        data["download"] = True
    if args.hub is not None:
        # MoDER's hub from another run or benchmark, as a path (not read as YAML like --set values);
        # a later --set moder.hub_path=... still wins
        method_config = dict(data.get("method_config") or {})
        method_config["moder"] = {**(method_config.get("moder") or {}), "hub_path": str(args.hub)}
        data["method_config"] = method_config
    data = apply_overrides(data, args.set or [])
    if args.hub is not None and "moder" not in (data.get("methods") or ["moder"]):
        from driftless.errors import ConfigError

        raise ConfigError("--hub loads a MoDER expert hub: add --method moder")
    return data


def cmd_run(args: argparse.Namespace) -> int:
    """``driftless run``: build the config, run every method, write and print the report."""
    from driftless.config import build_run_config
    from driftless.engine import run
    from driftless.report import build_results, comparison_table, write_report

    for plugin in args.imports or []:
        import_plugin(plugin)
    config = build_run_config(_run_config_data(args))
    if args.dry_run:
        return _dry_run(config)
    if config.backbone == "tiny-random":
        print(
            "note: tiny-random is a randomly initialised model: its numbers show that the pipeline "
            "runs, not how the methods compare.",
            file=sys.stderr,
        )
    if args.no_progress:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # its weight-loading bar too
    outcome = run(config, resume=args.resume, progress=not args.no_progress)
    results = build_results(outcome)
    written = write_report(results, outcome.out)
    metrics = {name: m["metrics"] for name, m in results["methods"].items()}
    seconds = {name: m["timings"]["total_seconds"] for name, m in results["methods"].items()}
    print(
        f"\n{results['benchmark']['name']} · backbone {results['backbone']['name']} · seed {config.seed}"
    )
    print(comparison_table(metrics, seconds))
    if config.reference is not None:
        print(_published_table(config, metrics))
    print(f"\nfeatures: {outcome.images_encoded} images encoded ({outcome.feature_seconds:.1f} s)")
    print(f"results: {written[0]}\nreport:  {', '.join(str(p.name) for p in written[1:])}")
    return 0


def _published_table(config: Any, metrics: dict[str, dict[str, float | None]]) -> str:
    """Ours beside the published numbers of ``config.reference``, on the reference's metrics."""
    from driftless.report import comparison_table

    reference = config.reference
    method = reference.method or (next(iter(metrics)) if len(metrics) == 1 else None)
    rows: dict[str, dict[str, float | None]] = {}
    if method in metrics:
        rows[f"{method} (ours)"] = {k: metrics[method].get(k) for k in reference.metrics}
    rows["published"] = dict(reference.metrics)
    return f"\npublished: {reference.source}\n{comparison_table(rows)}"


def _locate_backbone(spec: str, allow_download: bool) -> str:
    """Where backbone ``spec`` would be loaded from, without loading it; MissingModelError when it
    cannot be found."""
    from driftless.backbones.registry import BUILTIN_BACKBONES, TINY_CLIP_DIR
    from driftless.errors import MissingModelError

    if spec == "tiny-clip" and not (TINY_CLIP_DIR / "model.safetensors").is_file():
        raise MissingModelError(f"backbone tiny-clip: {TINY_CLIP_DIR}/model.safetensors is missing")
    if spec in BUILTIN_BACKBONES:
        return f"built-in {spec}"
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise MissingModelError(
                f"backbone: {path} exists but holds no config.json; expected a directory written "
                "by CLIPModel.save_pretrained"
            )
        return f"directory {path}"
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(spec, "config.json")
    except ValueError:  # not a valid Hub id either (e.g. a path that does not exist)
        cached = None
    if isinstance(cached, str):
        return f"Hugging Face cache ({Path(cached).parent})"
    if allow_download:
        return "Hugging Face Hub (will be downloaded: --download is set)"
    raise MissingModelError(
        f"backbone {spec!r} not found: no local directory {path} and no copy in the Hugging Face "
        f"cache. Get it with `huggingface-cli download {spec}` on a machine with network access, "
        "or pass --download."
    )


def _dry_run(config: Any) -> int:
    """Validate a run configuration and its data without training: build the benchmark (reading
    every dataset's index files), check that every image file exists, locate the backbone."""
    from driftless.benchmarks.registry import load_benchmark
    from driftless.data.ondisk import missing_files

    benchmark = load_benchmark(config.benchmark, config.data_root)
    print(
        f"benchmark {benchmark.name}: {benchmark.protocol}, {benchmark.num_tasks} tasks, "
        f"{len(benchmark.classes)} classes (data root {config.data_root})"
    )
    problems = []
    for name, dataset in benchmark.datasets.items():
        counts = ", ".join(f"{s} {len(split):,}" for s, split in sorted(dataset.splits.items()))
        where = dataset.metadata.get("folder", "generated")
        print(f"  {name}: {dataset.num_classes} classes, {counts} ({where})")
        for split_name, split in sorted(dataset.splits.items()):
            absent = missing_files(split)
            if absent:
                problems.append(
                    f"{name}/{split_name}: {len(absent)} image files missing, e.g. {absent[0]}"
                )
    print(f"backbone {config.backbone}: {_locate_backbone(config.backbone, config.download)}")
    print(f"methods: {', '.join(config.resolved_methods())}")
    if config.reference is not None:
        values = ", ".join(f"{k} {v}" for k, v in config.reference.metrics.items())
        print(f"reproduces: {values} ({config.reference.source})")
    if problems:
        raise DriftlessError("dry run: " + "; ".join(problems))
    print("dry run: configuration and data are valid; nothing was trained")
    return 0


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
        from driftless.methods.registry import available_methods

        for name, cls in available_methods().items():
            doc = cls.__doc__ or sys.modules[cls.__module__].__doc__ or ""
            summary = (doc.strip().splitlines() or [""])[0]
            print(f"{name:14s} {cls.inputs:9s} {summary}")
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

    import yaml

    from driftless.engine.conformance import iter_checks

    for spec in args.imports or []:
        import_plugin(spec)
    values: dict[str, Any] = {}
    for item in args.set or []:
        field, sep, raw = item.partition("=")
        if not sep or not field.strip():
            raise DriftlessError(f"--set {item!r}: expected field=value")
        values[field.strip()] = yaml.safe_load(raw)
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


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``driftless`` command."""
    parser = argparse.ArgumentParser(prog="driftless", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser(
        "run",
        help="run methods on a benchmark",
        epilog=RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--benchmark", help="registered benchmark name or YAML spec file")
    run.add_argument("--method", action="append", help="a method to run (repeatable; default: all)")
    run.add_argument(
        "--backbone", help="tiny-random, a save_pretrained directory or a Hugging Face id"
    )
    run.add_argument(
        "--out", type=Path, help="run directory (default: runs/<benchmark>/<timestamp>)"
    )
    run.add_argument("--seed", type=int)
    run.add_argument(
        "--resume", action="store_true", help="continue the run in --out (or the latest one)"
    )
    run.add_argument("--config", type=Path, help="YAML run configuration")
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a config field; <method>.<field>=v sets a method's hyper-parameter",
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
    run.add_argument("--batch-size", type=int)
    run.add_argument("--num-workers", type=int)
    run.add_argument(
        "--hub",
        type=Path,
        help="MoDER: an expert hub to retrieve from (a hub file, a run's checkpoints/moder.pt or "
        "a run directory), loaded before the first task",
    )
    run.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default: one per core; on a busy shared CPU, 1 is often faster)",
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
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="validate the config and its data (build the benchmark, find the backbone); no training",
    )
    run.set_defaults(func=cmd_run)

    lst = sub.add_parser("list", help="list benchmarks, methods or backbones")
    lst.add_argument("what", choices=["benchmarks", "methods", "backbones"])
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; user errors print one line and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except DriftlessError as exc:
        print(f"driftless: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("driftless: interrupted; resume with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
