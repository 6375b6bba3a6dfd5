"""Scaling figures on the CPU: feature extraction and a fine-tuning task with 1 and 2 processes
(Lightning Fabric DDP over gloo), and CLIP ViT-B/16's image-encoding rate beside the machine's
measured fp32 matmul peak.

    .venv/bin/python benchmarks/distributed.py [--vit-images 16] [--extract-images 32]
        [--finetune-iterations 40] [--out FILE]

Prints a table and writes JSON (default: benchmarks/results/distributed.json). Every process uses
one torch thread, so 2 processes use 2 cores: on a machine shared with other jobs the 2-process
figures measure the contention as much as the code (say so when quoting them).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

# ViT-B/16 image tower: 12 blocks over 197 tokens of width 768, MLP 3072, patch embedding 16×16×3
TOKENS, WIDTH, LAYERS = 197, 768, 12
VIT_B16_MACS = (
    LAYERS * (12 * TOKENS * WIDTH**2 + 2 * TOKENS**2 * WIDTH) + 196 * 768 * 768 + 768 * 512
)


def matmul_peak_gflops(threads: int, n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 GFLOP/s of an n×n×n torch.mm over ``repeats`` tries on ``threads`` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        tick = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - tick)
    return 2 * n**3 / best / 1e9


def vit_encode_rate(threads: int, images: int, batch_size: int = 8) -> float:
    """Images/s of the random-weight ViT-B/16 image tower on preprocessed 224 px pixels."""
    from feature_store import vit_b16_random

    torch.set_num_threads(threads)
    backbone = vit_b16_random()
    pixels = torch.randn(batch_size, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        backbone.encode_images(pixels[:2])  # warm-up
        tick = time.perf_counter()
        for _ in range(images // batch_size):
            backbone.encode_images(pixels)
        seconds = time.perf_counter() - tick
    return (images // batch_size) * batch_size / seconds


def extraction_worker(processes: int, images: int, out: Path) -> None:
    """One rank of a sharded extraction (ViT-B/16, random weights, 224 px images)."""
    from feature_store import vit_b16_random

    from driftless.data import ArrayImages, Split
    from driftless.engine.distributed import build_fabric, encode_split_sharded

    torch.set_num_threads(1)
    fabric = build_fabric("cpu", processes, 1, "ddp" if processes > 1 else "auto", "32-true")
    fabric.launch()
    backbone = vit_b16_random()
    rng = np.random.default_rng(0)
    split = Split(
        ArrayImages(rng.integers(0, 256, (images, 224, 224, 3), np.uint8)), np.zeros(images)
    )
    fabric.barrier()
    tick = time.perf_counter()
    features = encode_split_sharded(fabric, backbone, split, batch_size=8, num_workers=0)
    fabric.barrier()
    seconds = time.perf_counter() - tick
    if fabric.global_rank == 0:
        assert features is not None and features.shape == (images, 512)
        out.write_text(json.dumps({"seconds": seconds, "images": images}))


def run_extraction(processes: int, images: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--worker", str(processes), "--extract-images", str(images),
               "--worker-out", str(out)]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        result = json.loads(out.read_text())
    return {"processes": processes, "images": images, "seconds": round(result["seconds"], 2),
            "images_per_second": round(images / result["seconds"], 2)}  # fmt: skip


def run_finetune(processes: int, iterations: int) -> dict:
    """A `driftless run` of finetune on toy-cil (tiny-random): its learning seconds per step."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "driftless.cli", "run", "--benchmark", "toy-cil", "--backbone", "tiny-random",
               "--method", "finetune", "--set", f"finetune.iterations={iterations}", "--threads", "1",
               "--devices", str(processes), "--accelerator", "cpu", "--no-progress",
               "--cache-dir", f"{tmp}/cache", "--out", f"{tmp}/run"]  # fmt: skip
        subprocess.run(cmd, check=True, capture_output=True)
        results = json.loads(Path(f"{tmp}/run/results.json").read_text())
    learn = sum(results["methods"]["finetune"]["timings"]["learn_seconds"])
    steps = iterations * len(results["benchmark"]["tasks"])
    return {"processes": processes, "steps": steps, "learn_seconds": round(learn, 2),
            "steps_per_second": round(steps / learn, 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vit-images", type=int, default=16, help="images per ViT rate")
    parser.add_argument("--extract-images", type=int, default=32, help="images per extraction")
    parser.add_argument("--finetune-iterations", type=int, default=40, help="steps per task")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "distributed.json")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        extraction_worker(args.worker, args.extract_images, args.worker_out)
        return

    gflop_per_image = 2 * VIT_B16_MACS / 1e9
    vit = []
    for threads in (1, 2):
        peak = matmul_peak_gflops(threads)
        rate = vit_encode_rate(threads, args.vit_images)
        vit.append({"threads": threads, "images_per_second": round(rate, 2),
                    "matmul_peak_gflops": round(peak, 1),
                    "fraction_of_peak": round(rate * gflop_per_image / peak, 3)})  # fmt: skip
    extraction = [run_extraction(p, args.extract_images) for p in (1, 2)]
    finetune = [run_finetune(p, args.finetune_iterations) for p in (1, 2)]
    result = {
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "vit_b16_gflop_per_image": round(gflop_per_image, 2),
        "vit_b16_encode": vit,
        "extraction_vit_b16": extraction,
        "extraction_speedup_2_vs_1": round(
            extraction[1]["images_per_second"] / extraction[0]["images_per_second"], 2
        ),
        "finetune_tiny": finetune,
        "finetune_speedup_2_vs_1": round(
            finetune[1]["steps_per_second"] / finetune[0]["steps_per_second"], 2
        ),
    }
    print(f"ViT-B/16 image tower: {gflop_per_image:.1f} GFLOP per image")
    for row in vit:
        print(f"  {row['threads']} thread(s): {row['images_per_second']:.2f} img/s, matmul peak "
              f"{row['matmul_peak_gflops']:.1f} GFLOP/s, {100 * row['fraction_of_peak']:.0f} % of it")  # fmt: skip
    for row in extraction:
        print(f"extraction, {row['processes']} process(es): {row['images_per_second']:.2f} img/s")
    for row in finetune:
        print(f"finetune, {row['processes']} process(es): {row['steps_per_second']:.2f} steps/s")
    print(f"2 vs 1 process: extraction ×{result['extraction_speedup_2_vs_1']}, "
          f"finetune ×{result['finetune_speedup_2_vs_1']}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
