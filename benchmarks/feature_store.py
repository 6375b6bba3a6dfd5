"""Feature-store throughput: images encoded per second on a first extraction, and the cost of
reading an entry back, for the tiny test CLIP and a randomly initialised CLIP ViT-B/16.

    .venv/bin/python benchmarks/feature_store.py [--images 256] [--vit-images 64] [--out FILE]

Prints a table and writes JSON (default: benchmarks/results/feature_store.json).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import CLIPConfig, CLIPModel

from driftless.backbones import ImagePreprocess, char_tokenizer, tiny_random_clip
from driftless.backbones.clip import CLIPBackbone
from driftless.data import ArrayImages, Split
from driftless.features import FeatureStore


def vit_b16_random() -> CLIPBackbone:
    """CLIP ViT-B/16's architecture (as openai/clip-vit-base-patch16) with random weights."""
    tokenizer = char_tokenizer()
    vocab = tokenizer.get_vocab()
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 512, "intermediate_size": 2048,
                     "num_hidden_layers": 12, "num_attention_heads": 8, "max_position_embeddings": 77,
                     "bos_token_id": vocab["<|startoftext|>"], "eos_token_id": vocab["<|endoftext|>"]},
        vision_config={"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12,
                       "num_attention_heads": 12, "image_size": 224, "patch_size": 16},
        projection_dim=512,
    )  # fmt: skip
    torch.manual_seed(0)
    return CLIPBackbone(CLIPModel(config), tokenizer, ImagePreprocess(224, 224), "vit-b16-random")


def measure(backbone: CLIPBackbone, n: int, size: int, batch_size: int, device: str) -> dict:
    rng = np.random.default_rng(0)
    split = Split(
        ArrayImages(rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)), np.zeros(n)
    )
    backbone.to(device)
    _ = backbone.fingerprint  # hashing the weights is a one-off cost, not extraction
    with tempfile.TemporaryDirectory() as root:
        store = FeatureStore(root, batch_size=batch_size, progress=False)
        tick = time.perf_counter()
        store.get(backbone, split)
        extract = time.perf_counter() - tick
        tick = time.perf_counter()
        features = FeatureStore(root, progress=False).get(backbone, split)
        np.asarray(features).sum()
        reread = time.perf_counter() - tick
    return {"backbone": backbone.name, "images": n, "source_px": size, "batch_size": batch_size,
            "device": device, "extract_seconds": round(extract, 3),
            "images_per_second": round(n / extract, 1), "reread_seconds": round(reread, 4)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=2048, help="images for the tiny model")
    parser.add_argument("--vit-images", type=int, default=64, help="images for ViT-B/16")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "feature_store.json"
    )
    args = parser.parse_args()
    rows = [
        measure(tiny_random_clip(), args.images, 32, 256, args.device),
        measure(vit_b16_random(), args.vit_images, 256, 32, args.device),
    ]
    for r in rows:
        print(f"{r['backbone']:16s} {r['images']:6d} img  {r['images_per_second']:8.1f} img/s  "
              f"extract {r['extract_seconds']:7.2f} s  re-read {r['reread_seconds']:.4f} s  ({r['device']})")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": platform.machine(),
        "cpus": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
