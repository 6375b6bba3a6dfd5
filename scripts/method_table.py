"""Print the README's method table from results.json files (``driftless run`` writes one per seed).

Files of one seed are merged (a method in several takes its row from the last); with several seeds
each cell is mean ± sample standard deviation over the seeds that ran the method, and the last
column says how many did.

.venv/bin/python scripts/method_table.py runs/table/seed-*/results.json [runs/pmi/seed-*/results.json ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path

from driftless.methods.registry import available_methods

PAPERS = {
    "zero-shot": "Continual-CLIP (Thengane et al., 2022)",
    "ncm": "SimpleCIL (Zhou et al., IJCV 2024)",
    "lda": "FSA / LDA head (Panos et al., ICCV 2023)",
    "ranpac": "RanPAC (McDonnell et al., NeurIPS 2023)",
    "acil": "ACIL / G-ACIL (Zhuang et al., NeurIPS 2022 / 2024)",
    "fecam": "FeCAM (Goswami et al., NeurIPS 2023)",
    "teen": "TEEN (Wang et al., NeurIPS 2023)",
    "linear-probe": "sequential linear probe (reference)",
    "finetune": "continual fine-tuning (ZSCL's baseline, ICCV 2023)",
    "lwf": "LwF (Li & Hoiem, TPAMI 2017)",
    "wise-ft": "WiSE-FT (Wortsman et al., CVPR 2022)",
    "zscl": "ZSCL (Zheng et al., ICCV 2023)",
    "moe-adapters": "MoE-Adapters (Yu et al., CVPR 2024)",
    "l2p": "L2P (Wang et al., CVPR 2022)",
    "dualprompt": "DualPrompt (Wang et al., ECCV 2022)",
    "coda-prompt": "CODA-Prompt (Smith et al., CVPR 2023)",
    "coop": "CoOp (Zhou et al., IJCV 2022)",
    "rapf": "RAPF (Huang et al., ECCV 2024)",
    "calfuse": "CalFuse (Guo et al., arXiv 2503.18672) — our definition",
    "moder": "MoDER (arXiv 2508.16463) — our definition",
    "pmi": "PMI (arXiv 2510.26311) — our definition",
}
ORDER = list(PAPERS)
METRICS = ("avg", "last", "forgetting", "ci_transfer")


def _cell(values: list[float], digits: int = 2) -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path, nargs="+")
    parser.add_argument(
        "--no-time",
        action="store_true",
        help="leave out the time column (timings measured on a shared, busy machine mislead)",
    )
    args = parser.parse_args()
    by_seed: dict[int, dict] = defaultdict(dict)
    benchmarks = set()
    for path in args.results:
        results = json.loads(path.read_text())
        benchmarks.add(results["benchmark"]["name"])
        by_seed[results["seed"]].update(results["methods"])
    if len(benchmarks) > 1:
        raise SystemExit(f"results of different benchmarks: {sorted(benchmarks)}")
    rows: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for methods in by_seed.values():
        for name, m in methods.items():
            for key in METRICS:
                if m["metrics"].get(key) is not None:
                    rows[name][key].append(m["metrics"][key])
            rows[name]["seconds"].append(m["timings"]["total_seconds"])
    classes = available_methods()
    names = sorted(rows, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    time_head, time_rule = ("", "") if args.no_time else (" time (s) |", "---:|")
    print(f"| method | paper | inputs | Avg | Last | Forgetting | CI-Transfer |{time_head} seeds |")
    print(f"|---|---|---|---:|---:|---:|---:|{time_rule}---:|")
    for name in names:
        row = rows[name]
        base = name.split("[", 1)[0]
        inputs = classes[base].inputs if base in classes else "?"
        cells = " | ".join(_cell(row[k]) for k in METRICS)
        seconds = "" if args.no_time else f" {statistics.mean(row['seconds']):.1f} |"
        print(f"| `{name}` | {PAPERS.get(base, '')} | {inputs} | {cells} |{seconds} "
              f"{len(row['seconds'])} |")  # fmt: skip


if __name__ == "__main__":
    main()
