"""Print the README's method table from one or more results.json files (``driftless run`` writes
one); a method in several files takes its row from the last.

.venv/bin/python scripts/method_table.py runs/default/results.json [runs/pmi/results.json ...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from driftless.methods.registry import available_methods

PAPERS = {
    "zero-shot": "Continual-CLIP (Thengane et al., 2022)",
    "ncm": "SimpleCIL (Zhou et al., IJCV 2024)",
    "lda": "FSA / LDA head (Panos et al., ICCV 2023)",
    "ranpac": "RanPAC (McDonnell et al., NeurIPS 2023)",
    "acil": "ACIL / G-ACIL (Zhuang et al., NeurIPS 2022 / 2024)",
    "fecam": "FeCAM (Goswami et al., NeurIPS 2023)",
    "linear-probe": "sequential linear probe (reference)",
    "finetune": "continual fine-tuning (ZSCL's baseline, ICCV 2023)",
    "lwf": "LwF (Li & Hoiem, TPAMI 2017)",
    "wise-ft": "WiSE-FT (Wortsman et al., CVPR 2022)",
    "coop": "CoOp (Zhou et al., IJCV 2022)",
    "calfuse": "CalFuse (Guo et al., arXiv 2503.18672) — our definition",
    "moder": "MoDER (arXiv 2508.16463) — our definition",
    "pmi": "PMI (arXiv 2510.26311) — our definition",
}
ORDER = list(PAPERS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path, nargs="+")
    args = parser.parse_args()
    methods: dict = {}
    benchmarks = set()
    for path in args.results:
        results = json.loads(path.read_text())
        benchmarks.add(results["benchmark"]["name"])
        methods.update(results["methods"])
    if len(benchmarks) > 1:
        raise SystemExit(f"results of different benchmarks: {sorted(benchmarks)}")
    classes = available_methods()
    names = sorted(methods, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))
    print("| method | paper | inputs | Avg | Last | Forgetting | CI-Transfer | time (s) |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name in names:
        m = methods[name]
        metrics = m["metrics"]

        def cell(key: str, metrics: dict = metrics) -> str:
            value = metrics.get(key)
            return "–" if value is None else f"{value:.2f}"

        inputs = classes[name].inputs if name in classes else "?"
        print(f"| `{name}` | {PAPERS.get(name, '')} | {inputs} | {cell('avg')} | {cell('last')} | "
              f"{cell('forgetting')} | {cell('ci_transfer')} | {m['timings']['total_seconds']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
