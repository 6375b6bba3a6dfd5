"""``driftless data check``: which of the real datasets are under a data root, whether they read
correctly, and whether their split sizes match the official ones (``assets/datasets.yaml``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from driftless.data.catalog import DatasetInfo, catalog
from driftless.data.ondisk import DatasetMissing, missing_files
from driftless.data.registry import DATASET_FACTORIES
from driftless.errors import DataError

Status = Literal["found", "missing", "malformed"]


@dataclass
class DatasetCheck:
    """What ``data check`` found for one dataset."""

    info: DatasetInfo
    status: Status
    folder: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    problem: str = ""
    expected: dict[str, int | None] | None = None
    """Sizes to compare with; None = the catalog's official ones."""

    def expected_size(self, split: str) -> int | None:
        """The size ``split`` should have, or None when no size is known."""
        sizes = self.info.sizes if self.expected is None else self.expected
        return sizes.get(split)

    def counts_match(self) -> bool:
        """True unless a split's size differs from a known one."""
        return all(self.expected_size(s) in (None, n) for s, n in self.counts.items())


def check_dataset(
    name: str, root: str | os.PathLike[str], verify_files: bool = True
) -> DatasetCheck:
    """Read dataset ``name`` under ``root`` with its default parameters; with ``verify_files``, also
    check that every image file it lists exists."""
    info = catalog()[name]
    try:
        dataset = DATASET_FACTORIES[name](Path(root).expanduser())
    except DatasetMissing as exc:
        return DatasetCheck(info, "missing", problem=str(exc))
    except DataError as exc:
        return DatasetCheck(info, "malformed", problem=str(exc))
    folder = str(dataset.metadata.get("folder", root))
    counts = {split: len(dataset.split(split)) for split in ("train", "test")}
    # PILOT/APER's pre-split folders: their sizes are not published (docs/datasets.md)
    expected = {"train": None, "test": None} if dataset.metadata.get("split") == "folders" else None
    if verify_files:
        for split in ("train", "test"):
            absent = missing_files(dataset.split(split))
            if absent:
                problem = (
                    f"{len(absent)} of the {counts[split]} {split} images it lists are missing, "
                    f"e.g. {absent[0]}. Expected layout: {info.layout}"
                )
                return DatasetCheck(info, "malformed", folder, counts, problem, expected)
    return DatasetCheck(info, "found", folder, counts, expected=expected)


def check_datasets(
    root: str | os.PathLike[str], names: Sequence[str] | None = None, verify_files: bool = True
) -> list[DatasetCheck]:
    """:func:`check_dataset` for ``names`` (default: every dataset of the catalog)."""
    known = catalog()
    for name in names or ():
        if name not in known:
            raise DataError(f"data check: unknown dataset {name!r}; known: {sorted(known)}")
    return [check_dataset(n, root, verify_files) for n in (names or list(known))]


def _status(check: DatasetCheck) -> str:
    return (
        "found, sizes differ"
        if check.status == "found" and not check.counts_match()
        else check.status
    )


def _count_cell(check: DatasetCheck, split: str) -> str:
    expected = check.expected_size(split)
    if split not in check.counts:
        return "–" if expected is None else f"– ({expected:,})"
    count = check.counts[split]
    if expected is None:
        return f"{count:,} (size not published)"
    return f"{count:,} ok" if count == expected else f"{count:,} ≠ {expected:,}"


def format_checks(checks: Sequence[DatasetCheck], root: str | os.PathLike[str]) -> str:
    """A table (dataset, status, train and test counts against the official sizes, folder), then
    what is expected and where to get it for every dataset not found or not read."""
    header = ["dataset", "status", "train", "test", "folder"]
    rows = [
        [
            c.info.name,
            _status(c),
            _count_cell(c, "train"),
            _count_cell(c, "test"),
            c.folder or "",
        ]
        for c in checks
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [f"data root: {Path(root).expanduser()}", ""]
    lines += [
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    ]
    for check in checks:
        if check.status == "found" and check.counts_match():
            continue
        lines += ["", f"{check.info.name} ({check.info.title}): {_status(check)}"]
        if check.status == "malformed":
            lines.append(f"  problem:  {check.problem}")
        else:
            lines.append(f"  expected: {check.info.layout}")
        if check.status == "found":
            lines.append(f"  splits:   {check.info.splits}")
        lines.append(f"  source:   {check.info.source}")
    found = sum(c.status == "found" for c in checks)
    lines += ["", f"{found} of {len(checks)} datasets found; details in docs/datasets.md"]
    return "\n".join(lines)
