"""How fast the command answers, and what a run's log looks like in a file.

Start-up: wall time of ``driftless --help`` and ``driftless list methods|benchmarks|backbones``
(median of ``--repeat`` runs, each a fresh interpreter) and, deterministic, how many modules each
imports and whether torch / transformers / lightning are among them. ``--tree DIR`` measures another
source tree (e.g. an older checkout's ``src``) for a before/after comparison.

Log: ``--piped-run`` runs a default ``driftless run`` (extra arguments after ``--``) with stdout and
stderr sent to a file and counts its lines, bytes, carriage returns and escape codes.

    python benchmarks/startup.py [--tree SRC] [--repeat 3] [--piped-run [-- run args]]

Writes ``benchmarks/results/startup.json`` (``--json PATH`` for another file).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = [["--help"], ["list", "methods"], ["list", "benchmarks"], ["list", "backbones"]]
HEAVY = ("torch", "transformers", "lightning")
PROBE = """
import contextlib, io, sys
from driftless.cli import main
argv = sys.argv[1:]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(argv)
    except SystemExit:
        pass
print(len(sys.modules), *[m for m in {heavy!r} if m in sys.modules])
"""


def _env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1"}


def measure_command(argv: list[str], tree: Path, repeat: int) -> dict:
    """Median wall seconds of ``driftless ARGV`` in a fresh interpreter, and what it imported."""
    seconds = []
    for _ in range(repeat):
        tick = time.perf_counter()
        subprocess.run([sys.executable, "-m", "driftless.cli", *argv], env=_env(tree),
                       stdout=subprocess.DEVNULL, check=True)  # fmt: skip
        seconds.append(time.perf_counter() - tick)
    probe = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv],
                           env=_env(tree), capture_output=True, text=True, check=True)  # fmt: skip
    count, *heavy = probe.stdout.split()
    return {
        "command": "driftless " + " ".join(argv),
        "median_seconds": round(statistics.median(seconds), 2),
        "seconds": [round(s, 2) for s in seconds],
        "modules_imported": int(count),
        "heavy_modules": heavy,
    }


def piped_run(tree: Path, extra: list[str]) -> dict:
    """A ``driftless run`` with its output in a file: lines, bytes, carriage returns, escapes."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "run.log"
        argv = ["run", "--out", str(Path(tmp) / "run"), *extra]
        tick = time.perf_counter()
        with log.open("w") as fh:
            code = subprocess.run([sys.executable, "-m", "driftless.cli", *argv], env=_env(tree),
                                  stdout=fh, stderr=subprocess.STDOUT).returncode  # fmt: skip
        text = log.read_text()
    return {
        "command": "driftless " + " ".join(argv[:1] + extra) + " > run.log 2>&1",
        "exit_code": code,
        "wall_seconds": round(time.perf_counter() - tick, 1),
        "lines": len(text.splitlines()),
        "bytes": len(text.encode()),
        "carriage_returns": text.count("\r"),
        "escape_codes": text.count("\x1b"),
        "log": text,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1] / "src")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--piped-run", action="store_true")
    parser.add_argument("--json", type=Path,
                        default=Path(__file__).parent / "results" / "startup.json")  # fmt: skip
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    load = os.getloadavg()[0]
    report: dict = {"tree": str(args.tree), "load_average_at_start": round(load, 1), "commands": []}
    print(f"tree {args.tree} · load average {load:.1f}")
    print("| command | median s | modules imported | heavy modules |\n|---|---:|---:|---|")
    for argv in COMMANDS:
        row = measure_command(argv, args.tree, args.repeat)
        report["commands"].append(row)
        heavy = ", ".join(row["heavy_modules"]) or "none"
        print(
            f"| `{row['command']}` | {row['median_seconds']} | {row['modules_imported']} | {heavy} |"
        )
    if args.piped_run:
        report["piped_run"] = run = piped_run(args.tree, extra)
        print(f"\n`{run['command']}`: exit {run['exit_code']}, {run['lines']} lines, "
              f"{run['bytes']:,} bytes, {run['carriage_returns']} carriage returns, "
              f"{run['escape_codes']} escape codes, {run['wall_seconds']} s")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
