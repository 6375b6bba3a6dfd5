"""The ceiling of CalFuse's adapter on a class-incremental benchmark: the same adapter trained once
on every class's real training features together (joint training, nothing continual).

    .venv/bin/python benchmarks/calfuse_joint_bound.py --benchmark world-cil --seeds 0-9

For each seed (the run seed draws the class order and the images, as ``driftless run --seeds``
does): W = I, then Adam (CalFuse's lr, 10⁻³) on CE(s · cos(normalize(W f̂(x)), t_c)) over all the
benchmark's classes, full batch on all training features at once — CalFuse's adapter and loss with
``calibration=off``, no replay, no distillation, no fusion, because every class's real features are
there. Reports the test accuracy over all classes (what Last measures at the end of a continual
run) after several step counts. A continual run of ``calfuse[calibration=off]`` that reaches this
figure has nothing left for a forgetting protection (such as the fusion) to win back.
Writes ``benchmarks/results/calfuse_joint_bound_<benchmark>.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from ablations import RESULTS, Session, cosine_accuracy, parse_seeds  # benchmarks/ablations.py

from driftless.methods.base import LabelSpace
from driftless.methods.calfuse import CalFuseConfig

STEPS = (100, 200, 400, 800)


def joint_accuracies(benchmark: str, seed: int, workdir: Path) -> dict[str, float]:
    """Test accuracy (percent, over every class) of the jointly trained adapter after each of STEPS."""
    session = Session("calfuse", benchmark, seed, 1, workdir)
    bench = session.benchmark
    space = LabelSpace.of(bench, range(len(bench.classes)))
    texts = session.texts(space).float()
    scale = float(session.backbone.logit_scale)
    train_x, train_y = session.labelled_features([s for t in bench.tasks for s in t.train], space)
    test_x, test_y = session.labelled_features([s.samples for s in bench.eval_splits], space)
    train_x, test_x = F.normalize(train_x, dim=-1), F.normalize(test_x, dim=-1)
    adapter = torch.nn.Parameter(torch.eye(train_x.shape[1]))
    optimizer = torch.optim.Adam([adapter], lr=CalFuseConfig().lr)
    accuracies = {}
    for step in range(1, max(STEPS) + 1):
        logits = scale * F.normalize(train_x @ adapter.T, dim=-1) @ texts.T
        loss = F.cross_entropy(logits, train_y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step in STEPS:
            with torch.no_grad():
                adapted = F.normalize(test_x @ adapter.T, dim=-1)
            accuracies[str(step)] = cosine_accuracy(adapted, texts, test_y)
    return accuracies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benchmark", default="world-cil")
    parser.add_argument("--seeds", default="0-4")
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = {}
    with tempfile.TemporaryDirectory(prefix="driftless-joint-") as tmp:
        for seed in parse_seeds(args.seeds):
            out[seed] = joint_accuracies(args.benchmark, seed, Path(tmp))
            print(f"seed {seed}: " + ", ".join(f"{k} steps {v:.2f}" for k, v in out[seed].items()),
                  flush=True)  # fmt: skip
    means = {k: float(np.mean([acc[k] for acc in out.values()])) for k in map(str, STEPS)}
    print("mean: " + ", ".join(f"{k} steps {v:.2f}" for k, v in means.items()))
    path = RESULTS / f"calfuse_joint_bound_{Path(args.benchmark).stem}.json"
    command = f"benchmarks/calfuse_joint_bound.py --benchmark {args.benchmark} --seeds {args.seeds}"
    path.write_text(json.dumps({"command": command, "seeds": out, "mean": means}, indent=1))
    print(f"written: {path}")


if __name__ == "__main__":
    main()
