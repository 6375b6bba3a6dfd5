"""How much any share of CLIP's original feature could add to CalFuse's adapted one, at best.

    .venv/bin/python benchmarks/calfuse_share_headroom.py --seeds 0-4 --benchmark world-cil
    .venv/bin/python benchmarks/calfuse_share_headroom.py --seeds 0-4 --benchmark world-cil-shift

For each seed: one engine run of ``calfuse[calibration=off]`` (W trained through ĝ alone; the
run seed draws the class order and the images, as ``driftless run --seeds`` does), then the final
adapter's test accuracy over every learned class (Last) when its feature is mixed, after the fact,
with the original one: h = normalize(λ f̂ + (1 − λ) ĝ) for fixed λ, and for the dynamic share
λ(x) = σ(a (m_orig − m_adapt) + b) on a grid of (a, b). The grid is scored on the *test* set, so
its best entry is an upper bound on what a calibration fitted on any other data could reach with
this adapter. Since calfuse's default trains W through ĝ alone and keeps (a, b) fixed, each grid
entry is also exactly the Last of ``calfuse[calibration_slope=a,calibration_bias=b]``.
Writes ``benchmarks/results/calfuse_share_headroom_<benchmark>.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from ablations import RESULTS, Session, cosine_accuracy, parse_seeds  # benchmarks/ablations.py

from driftless.methods import calfuse as calfuse_module
from driftless.methods.base import LabelSpace

SHARES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
SLOPES = (-5.0, 2.0, 5.0, 10.0, 20.0, 40.0)
BIASES = (-6.0, -5.0, -4.0, -3.0, -2.0, -1.0)


def headroom(benchmark: str, seed: int, workdir: Path) -> dict:
    """Last of the off adapter mixed with f̂ by each fixed and dynamic share, for one seed."""
    kept: dict = {}
    learn = calfuse_module.CalFuse.learn

    def recording(self, data, ctx):  # keep the method and its context to score it afterwards
        kept["method"], kept["ctx"] = self, ctx
        return learn(self, data, ctx)

    calfuse_module.CalFuse.learn = recording
    try:
        session = Session("calfuse", benchmark, seed, 1, workdir)
        run = session.run({"calibration": "off"}, {})
    finally:
        calfuse_module.CalFuse.learn = learn
    method, ctx, bench = kept["method"], kept["ctx"], session.benchmark
    space = LabelSpace.of(bench, bench.seen_class_ids(bench.num_tasks))
    texts = ctx.text_embeddings(space).float()
    scale = float(ctx.backbone.logit_scale)
    features, targets = session.labelled_features([s.samples for s in bench.eval_splits], space)
    original = F.normalize(features, dim=-1)
    adapted = F.normalize(original @ method.adapter_.T, dim=-1)
    learned = method.seen_texts_
    gap = (
        torch.softmax(scale * original @ learned.T, 1).amax(1)
        - torch.softmax(scale * adapted @ learned.T, 1).amax(1)
    )[:, None]
    fixed = {
        str(share): cosine_accuracy(
            F.normalize(share * original + (1 - share) * adapted, dim=-1), texts, targets
        )
        for share in SHARES
    }
    dynamic = {}
    for slope in SLOPES:
        for bias in BIASES:
            share = torch.sigmoid(slope * gap + bias)
            h = F.normalize(share * original + (1 - share) * adapted, dim=-1)
            dynamic[f"a={slope},b={bias}"] = cosine_accuracy(h, texts, targets)
    return {"run_last": run["metrics"]["last"], "fixed": fixed, "dynamic": dynamic}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benchmark", default="world-cil")
    parser.add_argument("--seeds", default="0-2")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = {}
    with tempfile.TemporaryDirectory(prefix="driftless-headroom-") as tmp:
        for seed in parse_seeds(args.seeds):
            out[seed] = result = headroom(args.benchmark, seed, Path(tmp))
            best = max(result["dynamic"].items(), key=lambda kv: kv[1])
            print(
                f"seed {seed}: Last with λ = 0 {result['fixed']['0.0']:.2f}; fixed λ "
                + ", ".join(f"{k}: {v:.2f}" for k, v in result["fixed"].items())
                + f"; best dynamic {best[0]}: {best[1]:.2f}",
                flush=True,
            )
    path = RESULTS / f"calfuse_share_headroom_{Path(args.benchmark).stem}.json"
    path.write_text(
        json.dumps(
            {
                "command": f"benchmarks/calfuse_share_headroom.py --seeds {args.seeds} --benchmark {args.benchmark}",
                "seeds": out,
            },
            indent=1,
        )
    )
    print(f"written: {path}")


if __name__ == "__main__":
    main()
