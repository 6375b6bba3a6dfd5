"""The comparison table printed at the end of a run (plain text, aligned, markdown-compatible)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from driftless.metrics import METRIC_ORDER

if TYPE_CHECKING:
    from driftless.config import Reference

METRIC_TITLES = {
    "avg": "Avg",
    "last": "Last",
    "first": "First",
    "pd": "PD",
    "base": "Base",
    "novel": "Novel",
    "hm": "HM",
    "domain_avg": "Domain-Avg",
    "forgetting": "Forgetting",
    "bwt": "BWT",
    "faa": "FAA",
    "ci_transfer": "CI-Transfer",
    "transfer": "Transfer",
}


def comparison_table(
    metrics: dict[str, dict[str, float | None]], seconds: dict[str, float] | None = None
) -> str:
    """A markdown table: one row per method, one column per metric (percent), plus time."""
    keys = [k for k in METRIC_ORDER if any(k in m for m in metrics.values())]
    header = ["method", *(METRIC_TITLES[k] for k in keys)] + (["time (s)"] if seconds else [])
    rows = []
    for name, values in metrics.items():
        cells = ["–" if values.get(k) is None else f"{values[k]:.2f}" for k in keys]
        if seconds:
            cells.append(f"{seconds.get(name, 0.0):.1f}")
        rows.append([name, *cells])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[Any]) -> str:
        """One table row."""
        return (
            "| "
            + " | ".join(
                str(c).ljust(w) if i == 0 else str(c).rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
            + " |"
        )

    rule = (
        "|"
        + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths))
        + "|"
    )
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def published_comparison(reference: Reference, metrics: dict[str, dict[str, float | None]]) -> str:
    """Our numbers beside the published ones of ``reference``, on the reference's metrics (ours
    for the reference's method, or for the only method run)."""
    method = reference.method or (next(iter(metrics)) if len(metrics) == 1 else None)
    rows: dict[str, dict[str, float | None]] = {}
    if method in metrics:
        rows[f"{method} (ours)"] = {k: metrics[method].get(k) for k in reference.metrics}
    rows["published"] = dict(reference.metrics)
    return f"\npublished: {reference.source}\n{comparison_table(rows)}"
