"""Statistics over runs: mean ± std over seeds, and paired differences against a baseline.

``driftless compare`` reads any number of ``results.json`` files, groups every method's metrics by
(benchmark, backbone, method label) and summarizes each metric over the seeds of the group. The
standard deviation is the sample one (``ddof = 1``: the spread of the seeds as a sample of all
seeds). Against a baseline, each metric's difference ``method − baseline`` is taken seed by seed over
the seeds both have; its 95 % confidence interval is Student's t on those paired differences,
``mean ± t(0.975, n − 1) · sd / √n``, and each side's wins are counted by the metric's direction
(lower Forgetting is better; every other metric, higher).

The statistics are pure functions (:func:`summarize_values`, :func:`paired_difference`); scipy is
imported only to compute the t quantile, and only when there is a baseline.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from driftless.errors import DataError, DriftlessError
from driftless.metrics import METRIC_ORDER
from driftless.report.table import METRIC_TITLES

LOWER_IS_BETTER = frozenset({"forgetting"})
"""Metrics where a smaller value is better; every other metric is better when larger."""

FORMATS = ("markdown", "csv", "latex", "json")


@dataclass(frozen=True)
class Summary:
    """A metric over seeds: the mean, the sample standard deviation (None for one seed) and n."""

    mean: float
    std: float | None
    n: int


@dataclass(frozen=True)
class PairedDifference:
    """``method − baseline`` over the seeds both have: the mean difference, its sample std, the 95 %
    Student-t confidence interval of the mean (None below two seeds), and the seeds each side wins
    (by the metric's direction) or ties."""

    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    wins: int
    losses: int
    ties: int
    seeds: tuple[int, ...]


def summarize_values(values: Sequence[float]) -> Summary:
    """Mean, sample standard deviation (``ddof = 1``; None for a single value) and count."""
    if not values:
        raise ValueError("summarize_values: no values")
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return Summary(mean, std, n)


def paired_difference(
    method: Mapping[int, float],
    baseline: Mapping[int, float],
    *,
    higher_is_better: bool = True,
    confidence: float = 0.95,
) -> PairedDifference | None:
    """The paired difference ``method[s] − baseline[s]`` over the seeds s both map (None when they
    share none). The interval is ``mean ± t_{(1+confidence)/2, n−1} · sd / √n``."""
    seeds = tuple(sorted(set(method) & set(baseline)))
    if not seeds:
        return None
    diffs = [method[s] - baseline[s] for s in seeds]
    summary = summarize_values(diffs)
    ci_low = ci_high = None
    if summary.std is not None:
        # Student t's quantile, as scipy.stats.t.ppf, from scipy.special: a third of the import
        from scipy.special import stdtrit

        quantile = float(stdtrit(summary.n - 1, (1 + confidence) / 2))
        half = quantile * summary.std / math.sqrt(summary.n)
        ci_low, ci_high = summary.mean - half, summary.mean + half
    sign = 1 if higher_is_better else -1
    return PairedDifference(
        mean=summary.mean,
        std=summary.std,
        ci_low=ci_low,
        ci_high=ci_high,
        n=summary.n,
        wins=sum(sign * d > 0 for d in diffs),
        losses=sum(sign * d < 0 for d in diffs),
        ties=sum(d == 0 for d in diffs),
        seeds=seeds,
    )


@dataclass(frozen=True)
class MethodRun:
    """One method's metrics in one results.json."""

    path: Path
    benchmark: str
    protocol: str
    backbone: str
    method: str
    seed: int
    metrics: dict[str, float | None]
    config: dict[str, Any]
    reference: dict[str, Any] | None = None


def find_results_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Every results.json named or found (recursively) under the given directories, each once."""
    found: dict[Path, None] = {}
    for item in paths:
        path = Path(item).expanduser()
        if path.is_file():
            found[path.resolve()] = None
        elif path.is_dir():
            for file in sorted(path.rglob("results.json")):
                found[file.resolve()] = None
        else:
            raise DataError(f"compare: {path} is neither a results.json file nor a directory")
    if not found:
        raise DataError(
            "compare: no results.json under "
            + ", ".join(str(p) for p in paths)
            + "; pass run directories of finished runs"
        )
    return list(found)


def read_method_runs(files: Iterable[Path], skipped: list[str] | None = None) -> list[MethodRun]:
    """Every method of every results file, as :class:`MethodRun` records. With ``skipped`` (a
    list), a results.json of another schema (not one run's results) is left out and named there
    instead of failing."""
    from driftless.report.results import RESULTS_SCHEMA, load_results

    runs = []
    for file in files:
        if skipped is not None:
            try:
                schema = json.loads(Path(file).read_text()).get("schema")
            except (OSError, ValueError, AttributeError):
                schema = None
            if schema != RESULTS_SCHEMA:
                skipped.append(f"{file}: not a {RESULTS_SCHEMA} document; left out")
                continue
        results = load_results(file)
        reference = (results.get("config") or {}).get("reference")
        for name, m in results["methods"].items():
            runs.append(
                MethodRun(
                    path=file,
                    benchmark=results["benchmark"]["name"],
                    protocol=results["benchmark"]["protocol"],
                    backbone=results["backbone"]["name"],
                    method=name,
                    seed=int(results["seed"]),
                    metrics=dict(m["metrics"]),
                    config=dict(m.get("config") or {}),
                    reference=reference,
                )
            )
    return runs


@dataclass
class MetricRow:
    """One (benchmark, backbone, method, metric): the summary over seeds, the paired difference
    against the baseline, and the published value when a reference gives one."""

    benchmark: str
    backbone: str
    method: str
    metric: str
    summary: Summary | None
    seeds: tuple[int, ...]
    difference: PairedDifference | None = None
    published: float | None = None


@dataclass
class Comparison:
    """The rows of a comparison, the baseline (if any), the published sources and the warnings."""

    rows: list[MetricRow]
    baseline: str | None = None
    sources: dict[tuple[str, str], str] = field(default_factory=dict)
    """(benchmark, method) → where its published numbers come from."""
    warnings: list[str] = field(default_factory=list)

    def format(self, kind: str = "markdown") -> str:
        """The comparison as text: ``markdown``, ``csv``, ``latex`` or ``json``."""
        if kind not in FORMATTERS:
            raise ValueError(f"format {kind!r}: expected one of {', '.join(FORMATTERS)}")
        return FORMATTERS[kind](self)

    def groups(self) -> dict[tuple[str, str], dict[str, list[MetricRow]]]:
        """(benchmark, backbone) → method → its rows, in first-seen order."""
        out: dict[tuple[str, str], dict[str, list[MetricRow]]] = {}
        for row in self.rows:
            out.setdefault((row.benchmark, row.backbone), {}).setdefault(row.method, []).append(row)
        return out


def _metric_order(names: Iterable[str]) -> list[str]:
    names = set(names)
    return [k for k in METRIC_ORDER if k in names] + sorted(names - set(METRIC_ORDER))


def compare_runs(
    runs: Sequence[MethodRun],
    baseline: str | None = None,
    reference: Mapping[str, Any] | None = None,
) -> Comparison:
    """Group ``runs`` by (benchmark, backbone, method) and summarize every metric over seeds;
    with ``baseline``, the paired difference of every other method against it on the same
    benchmark and backbone. ``reference`` (``{benchmark?, method?, source, metrics}``) adds
    published values; references saved in the runs' configurations are used too."""
    grouped: dict[tuple[str, str, str], dict[int, MethodRun]] = {}
    comparison = Comparison(rows=[], baseline=baseline)
    for run in runs:
        seeds = grouped.setdefault((run.benchmark, run.backbone, run.method), {})
        if run.seed in seeds:
            raise DriftlessError(
                f"compare: {run.method} on {run.benchmark} with seed {run.seed} appears twice "
                f"({seeds[run.seed].path} and {run.path}); pass only one of them"
            )
        seeds[run.seed] = run
    if baseline is not None and not any(key[2] == baseline for key in grouped):
        methods = sorted({key[2] for key in grouped})
        raise DriftlessError(
            f"compare --baseline {baseline}: no results for that method; methods found: "
            + ", ".join(methods)
        )
    published = _published_values(runs, reference, comparison)
    for (bench, backbone, method), by_seed in grouped.items():
        configs = {json.dumps(r.config, sort_keys=True) for r in by_seed.values()}
        if len(configs) > 1:
            comparison.warnings.append(
                f"{method} on {bench}: its configuration differs between seeds "
                f"({', '.join(str(r.path) for r in by_seed.values())})"
            )
        base = grouped.get((bench, backbone, baseline)) if baseline else None
        for metric in _metric_order(k for r in by_seed.values() for k in r.metrics):
            values = {s: r.metrics[metric] for s, r in sorted(by_seed.items())}
            present = {s: float(v) for s, v in values.items() if v is not None}
            row = MetricRow(
                bench,
                backbone,
                method,
                metric,
                summarize_values(list(present.values())) if present else None,
                tuple(present),
                published=published.get((bench, method), {}).get(metric),
            )
            if base is not None and method != baseline:
                base_values = {
                    s: float(r.metrics[metric])
                    for s, r in base.items()
                    if r.metrics.get(metric) is not None
                }
                row.difference = paired_difference(
                    present, base_values, higher_is_better=metric not in LOWER_IS_BETTER
                )
            comparison.rows.append(row)
    return comparison


def _published_values(
    runs: Sequence[MethodRun], reference: Mapping[str, Any] | None, comparison: Comparison
) -> dict[tuple[str, str], dict[str, float]]:
    """(benchmark, method) → published metrics, from the runs' saved references and ``reference``."""
    values: dict[tuple[str, str], dict[str, float]] = {}
    methods_of: dict[tuple[Path, str], list[str]] = {}
    for run in runs:
        methods_of.setdefault((run.path, run.benchmark), []).append(run.method)
    for run in runs:
        saved = run.reference
        if not saved:
            continue
        methods = methods_of[(run.path, run.benchmark)]
        target = saved.get("method") or (methods[0] if len(methods) == 1 else None)
        if target == run.method:
            values[(run.benchmark, run.method)] = dict(saved["metrics"])
            comparison.sources[(run.benchmark, run.method)] = str(saved.get("source", ""))
    if reference is not None:
        wanted_bench = reference.get("benchmark")
        wanted_method = reference.get("method")
        matched = False
        for run in runs:
            bench_ok = wanted_bench is None or run.benchmark in {
                wanted_bench,
                Path(wanted_bench).stem,
            }
            if bench_ok and (wanted_method is None or run.method == wanted_method):
                values[(run.benchmark, run.method)] = dict(reference["metrics"])
                comparison.sources[(run.benchmark, run.method)] = str(reference.get("source", ""))
                matched = True
        if not matched:
            raise DriftlessError(
                f"compare --reference: no results of method {wanted_method or '(any)'} on "
                f"benchmark {wanted_bench or '(any)'} among the files read"
            )
    return values


def load_reference(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``reference`` block of a run configuration (configs/reproduce/*.yaml), with the
    configuration's benchmark and, when it names one method, that method."""
    from driftless.config import Reference, load_yaml_config

    data = load_yaml_config(path)
    if not data.get("reference"):
        raise DriftlessError(f"compare --reference: {path} has no `reference:` block")
    try:
        block = Reference.model_validate(data["reference"])
    except ValueError as exc:
        raise DriftlessError(f"compare --reference: {path}: {exc}") from None
    methods = data.get("methods") or []
    return {
        "benchmark": data.get("benchmark"),
        "method": block.method or (methods[0] if len(methods) == 1 else None),
        "source": block.source,
        "metrics": dict(block.metrics),
    }


# ---- formatting -------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _mean_std(row: MetricRow) -> str:
    if row.summary is None:
        return "–"
    text = _number(row.summary.mean)
    if row.summary.std is not None:
        text += f" ± {_number(row.summary.std)}"
    return text


def _title(metric: str) -> str:
    return METRIC_TITLES.get(metric, metric)


def _pipe_table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    """A markdown table; the first ``left`` columns are text (left-aligned), the rest numbers."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.ljust(w) if i < left else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    rule = "|" + "|".join("-" * (w + 2) if i < left else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"  # fmt: skip
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def _seed_list(seeds: Iterable[int]) -> str:
    return ", ".join(str(s) for s in sorted(seeds))


def format_markdown(comparison: Comparison) -> str:
    """One table per (benchmark, backbone): mean ± std (sample std) over seeds and n; then the
    paired differences against the baseline; then published values beside ours."""
    blocks = []
    for (bench, backbone), methods in comparison.groups().items():
        metrics = _metric_order(r.metric for rows in methods.values() for r in rows)
        seeds = sorted({s for rows in methods.values() for r in rows for s in r.seeds})
        blocks.append(f"{bench} · backbone {backbone} · seeds {_seed_list(seeds)}")
        header = ["method", *(_title(m) for m in metrics), "n"]
        body = []
        for method, rows in methods.items():
            by_metric = {r.metric: r for r in rows}
            n = max((r.summary.n for r in rows if r.summary), default=0)
            cells = []
            for m in metrics:
                row = by_metric.get(m)
                cell = "–" if row is None else _mean_std(row)
                if row is not None and row.summary and row.summary.n != n:
                    cell += f" (n={row.summary.n})"
                cells.append(cell)
            body.append([method, *cells, str(n)])
        blocks.append(_pipe_table(header, body))
        diff_rows = [r for rows in methods.values() for r in rows if r.difference is not None]
        if diff_rows:
            blocks.append(
                f"\nminus {comparison.baseline}, paired over shared seeds "
                "(95 % CI: Student t; wins–losses–ties counted by each metric's direction)"
            )
            body = [
                [
                    r.method,
                    _title(r.metric),
                    _number(r.difference.mean, signed=True),
                    "–"
                    if r.difference.ci_low is None
                    else f"[{_number(r.difference.ci_low, signed=True)}, "
                    f"{_number(r.difference.ci_high, signed=True)}]",
                    f"{r.difference.wins}–{r.difference.losses}–{r.difference.ties}",
                    str(r.difference.n),
                ]
                for r in diff_rows
                if r.difference is not None
            ]
            header = ["method", "metric", "Δ", "95 % CI", "W–L–T", "n"]
            blocks.append(_pipe_table(header, body, left=2))
        for method, rows in methods.items():
            published = {r.metric: r for r in rows if r.published is not None}
            if not published:
                continue
            source = comparison.sources.get((bench, method), "")
            blocks.append(f"\npublished: {source}")
            ours = [_mean_std(r) for r in published.values()]
            theirs = [_number(r.published) for r in published.values()]
            blocks.append(
                _pipe_table(
                    ["", *(_title(m) for m in published)],
                    [[f"{method} (ours)", *ours], ["published", *theirs]],
                )
            )
        blocks.append("")
    return "\n".join(blocks).rstrip() + "\n"


CSV_COLUMNS = (
    "benchmark", "backbone", "method", "metric", "mean", "std", "n", "seeds",
    "baseline", "diff_mean", "diff_ci_low", "diff_ci_high", "diff_n", "wins", "losses", "ties",
    "published",
)  # fmt: skip


def _csv_number(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def _difference_cells(d: PairedDifference | None) -> list[Any]:
    if d is None:
        return [""] * 7
    return [_csv_number(d.mean), _csv_number(d.ci_low), _csv_number(d.ci_high), d.n, d.wins, d.losses, d.ties]  # fmt: skip


def format_csv(comparison: Comparison) -> str:
    """Long form, one line per (benchmark, backbone, method, metric); numbers at full precision,
    std the sample std; empty cells where a value does not exist."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in comparison.rows:
        d = r.difference
        writer.writerow(
            [
                r.benchmark,
                r.backbone,
                r.method,
                r.metric,
                _csv_number(r.summary.mean if r.summary else None),
                _csv_number(r.summary.std if r.summary else None),
                r.summary.n if r.summary else 0,
                " ".join(str(s) for s in r.seeds),
                comparison.baseline if d is not None else "",
                *_difference_cells(d),
                _csv_number(r.published),
            ]
        )
    return buffer.getvalue()


def format_json(comparison: Comparison) -> str:
    """Every row with its summary, difference and published value, as JSON."""
    rows = []
    for r in comparison.rows:
        item = asdict(r)
        item["seeds"] = list(r.seeds)
        if r.difference is not None:
            item["difference"]["seeds"] = list(r.difference.seeds)
        rows.append(item)
    document = {
        "baseline": comparison.baseline,
        "std": "sample standard deviation (ddof = 1)",
        "ci": "95 % Student-t interval of the mean paired difference",
        "rows": rows,
        "published_sources": [
            {"benchmark": b, "method": m, "source": s} for (b, m), s in comparison.sources.items()
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def _latex_escape(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                          ("#", r"\#"), ("$", r"\$"), ("{", r"\{"), ("}", r"\}")):  # fmt: skip
        text = text.replace(char, escaped)
    return text


def format_latex(comparison: Comparison) -> str:
    """A booktabs ``tabular`` per (benchmark, backbone): $mean \\pm std$ per metric, then the
    paired differences with their 95 % intervals when there is a baseline."""
    blocks = []
    for (bench, backbone), methods in comparison.groups().items():
        metrics = _metric_order(r.metric for rows in methods.values() for r in rows)
        seeds = sorted({s for rows in methods.values() for r in rows for s in r.seeds})
        lines = [
            f"% {_latex_escape(bench)}, backbone {_latex_escape(backbone)}, seeds "
            f"{_seed_list(seeds)}; mean $\\pm$ sample std over seeds",
            r"\begin{tabular}{l" + "r" * (len(metrics) + 1) + "}",
            r"\toprule",
            "Method & " + " & ".join(_title(m) for m in metrics) + r" & $n$ \\",
            r"\midrule",
        ]
        for method, rows in methods.items():
            by_metric = {r.metric: r for r in rows}
            cells = []
            for m in metrics:
                row = by_metric.get(m)
                if row is None or row.summary is None:
                    cells.append("--")
                elif row.summary.std is None:
                    cells.append(f"${row.summary.mean:.2f}$")
                else:
                    cells.append(f"${row.summary.mean:.2f} \\pm {row.summary.std:.2f}$")
            n = max((r.summary.n for r in rows if r.summary), default=0)
            lines.append(f"{_latex_escape(method)} & " + " & ".join(cells) + f" & {n} \\\\")
        published = [
            (method, {r.metric: r.published for r in rows if r.published is not None})
            for method, rows in methods.items()
        ]
        for method, values in published:
            if values:
                cells = [f"${values[m]:.2f}$" if m in values else "--" for m in metrics]
                lines.append(
                    f"{_latex_escape(method)} (published) & " + " & ".join(cells) + r" & \\"
                )
        lines += [r"\bottomrule", r"\end{tabular}"]
        diffs = [r for rows in methods.values() for r in rows if r.difference is not None]
        if diffs:
            lines += [
                f"% minus {_latex_escape(str(comparison.baseline))}: paired over shared seeds, "
                "95 % Student-t interval, wins-losses-ties",
                r"\begin{tabular}{llrrrr}",
                r"\toprule",
                r"Method & Metric & $\Delta$ & 95\,\% CI & W--L--T & $n$ \\",
                r"\midrule",
            ]
            for r in diffs:
                d = r.difference
                assert d is not None
                ci = "--" if d.ci_low is None else f"$[{d.ci_low:+.2f}, {d.ci_high:+.2f}]$"
                lines.append(
                    f"{_latex_escape(r.method)} & {_title(r.metric)} & ${d.mean:+.2f}$ & {ci} & "
                    f"{d.wins}--{d.losses}--{d.ties} & {d.n} \\\\"
                )
            lines += [r"\bottomrule", r"\end{tabular}"]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


FORMATTERS = {
    "markdown": format_markdown,
    "csv": format_csv,
    "latex": format_latex,
    "json": format_json,
}
