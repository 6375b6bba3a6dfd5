"""Print the README's method table from a results.json (``driftless run`` writes one).

.venv/bin/python scripts/method_table.py runs/world-cil/<stamp>/results.json
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
    parser.add_argument("results", type=Path)
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    classes = available_methods()
    names = sorted(results["methods"], key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))
    print("| method | paper | inputs | Avg | Last | Forgetting | CI-Transfer | time (s) |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for name in names:
        m = results["methods"][name]
        metrics = m["metrics"]

        def cell(key: str, metrics: dict = metrics) -> str:
            value = metrics.get(key)
            return "–" if value is None else f"{value:.2f}"

        inputs = classes[name].inputs if name in classes else "?"
        print(f"| `{name}` | {PAPERS.get(name, '')} | {inputs} | {cell('avg')} | {cell('last')} | "
              f"{cell('forgetting')} | {cell('ci_transfer')} | {m['timings']['total_seconds']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
