"""Fixtures of the reliability drills: one finished toy run to damage, and the CLI in-process."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from driftless.cli import main

#: the smallest real run: toy-cil (5 tasks), NCM on the tiny random CLIP, one thread
RUN_ARGS = ["--benchmark", "toy-cil", "--backbone", "tiny-random", "--method", "ncm",
            "--no-progress", "--threads", "1"]  # fmt: skip


@dataclass
class Outcome:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys) -> Callable[..., Outcome]:
    """``cli("run", ...)``: main() in this process; its exit code, stdout and stderr."""

    def invoke(*args: str | Path) -> Outcome:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return invoke


@pytest.fixture(scope="session")
def toy_run(tmp_path_factory) -> tuple[Path, Path]:
    """A finished run of RUN_ARGS: (its run directory, its cache directory). Copy it before
    damaging it (:func:`copy_run`)."""
    root = tmp_path_factory.mktemp("toy-run")
    out, cache = root / "run", root / "cache"
    assert main(["run", *RUN_ARGS, "--out", str(out), "--cache-dir", str(cache)]) == 0
    return out, cache


def copy_run(toy_run: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of the finished toy run and its cache."""
    out, cache = tmp_path / "run", tmp_path / "cache"
    shutil.copytree(toy_run[0], out)
    shutil.copytree(toy_run[1], cache)
    return out, cache


def results_without_timings(out: Path) -> dict:
    """A run's results.json without what varies from run to run (timings)."""
    results = json.loads((out / "results.json").read_text())
    results.pop("timings", None)
    results.get("config", {}).pop("out", None)
    for method in results["methods"].values():
        method.pop("timings", None)
    return results


def assert_one_clear_line(err: str, *fragments: str) -> None:
    """stderr is one ``driftless: error:`` line holding every fragment, and no traceback."""
    lines = [line for line in err.splitlines() if line.startswith("driftless: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
