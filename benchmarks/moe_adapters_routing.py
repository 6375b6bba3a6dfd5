"""Where MoE-Adapters' auto-selector sends each evaluation split's images, and what that costs.

    .venv/bin/python benchmarks/moe_adapters_routing.py RUN_DIR [--method LABEL] [--out FILE]

Reads a finished run (its results.json and the method's last checkpoint), rebuilds the method with
the run's config and, for every evaluation split, prints the share of its test images the selector
routes to each task's experts (-1: the untouched CLIP) and the accuracy over the split's own
classes three ways: as routed, with every image forced through its own task's experts, and through
plain CLIP. A gap between "routed" and "own task" is the selector's cost; a gap between "own task"
and the accuracy right after that task (the run's matrix) is forgetting in the experts. Writes JSON
(default: benchmarks/results/moe_adapters_routing.json).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from driftless.backbones.registry import load_backbone
from driftless.benchmarks.registry import load_benchmark
from driftless.engine.checkpoint import load_checkpoint
from driftless.engine.inputs import ImageSamples
from driftless.methods.base import Context, LabelSpace
from driftless.methods.parts.text_classifier import TextEmbeddingCache, cosine_logits
from driftless.methods.registry import build_method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished run directory")
    parser.add_argument("--method", default="moe-adapters", help="the method's label in the run")
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/moe_adapters_routing.json")
    )
    args = parser.parse_args()
    from lightning.fabric import Fabric  # slow import: after argument parsing

    torch.set_num_threads(1)
    results = json.loads((args.run / "results.json").read_text())
    benchmark = load_benchmark(results["benchmark"]["name"], Path("~/data"), results["seed"])
    backbone = load_backbone(results["backbone"]["name"])
    method = build_method("moe-adapters", results["methods"][args.method]["config"])
    checkpoint = load_checkpoint(args.run / "checkpoints" / f"{args.method}.pt")
    if checkpoint is None:
        raise SystemExit(f"{args.run}: no checkpoint of {args.method}")
    method.load_state_dict(checkpoint["method_state"])
    fabric = Fabric(accelerator="cpu", devices=1)
    ctx = Context(
        backbone, fabric, torch.Generator().manual_seed(0), TextEmbeddingCache(backbone), 64, False
    )
    encoder = method.encoder(ctx)
    rows = []
    for split in benchmark.eval_splits:
        samples = ImageSamples(benchmark, [split.samples], backbone.preprocess)
        pixels = torch.stack([samples[i][0] for i in range(len(samples))])
        labels = torch.tensor([samples[i][1] for i in range(len(samples))])
        space = LabelSpace.of(benchmark, split.class_ids)
        targets = space.position_table(torch.device("cpu"))(labels)
        routes = method.routes(pixels, ctx)
        shares = {int(t): float((routes == t).float().mean()) for t in routes.unique()}
        routed = float((method.logits(pixels, space, ctx).argmax(1) == targets).float().mean())
        forced = {}
        own = split.task_index if split.task_index < encoder.num_tasks else None
        if method.config.router == "shared":
            own = 0  # every task's images go through the one router
        for name, task in (("clip", None), ("own_task", own)):
            encoder.routing.task = task
            logits = cosine_logits(
                encoder.encode(pixels).float(), ctx.text_embeddings(space), backbone.logit_scale
            )
            forced[name] = float((logits.argmax(1) == targets).float().mean())
        rows.append(
            {
                "split": split.name,
                "task": split.task_index,
                "routes": shares,
                "routed": routed,
                **forced,
            }
        )
        print(
            f"{split.name:24s} routed {100 * routed:5.1f}  own task {100 * forced['own_task']:5.1f}  "
            f"clip {100 * forced['clip']:5.1f}  routes "
            + " ".join(f"{t}:{100 * v:.1f}%" for t, v in sorted(shares.items()))
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"run": str(args.run), "method": args.method, "splits": rows}, indent=1)
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
