"""Devices, precision and processes: building the run's Lightning Fabric, and the few places where a
run with several processes (DDP: ``driftless run --devices N``, ``torchrun``, SLURM ``srun``)
splits work between them.

What runs where. Feature extraction: the batches of a split are dealt round-robin to the ranks,
each rank encodes its batches, rank 0 gathers them in order and writes one store entry; the others
wait at a barrier and then read it (a shared filesystem is assumed). Every batch is the batch a
single process would encode, so the features are bit for bit those of ``--devices 1``. Feature
methods run once, on rank 0. Image methods train on every rank under DDP: each global batch of a
single-process run is split between the ranks, and each rank's loss is weighted so that DDP's
gradient average is the gradient of the global batch's mean loss. Their evaluation is sharded by
batch and the correct counts are summed. Checkpoints and results are written by rank 0 only.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from datetime import timedelta

import numpy as np
import torch
from lightning.fabric import Fabric
from lightning.fabric.strategies import DDPStrategy
from torch.utils.data import DataLoader, Dataset, Sampler

from driftless.errors import ConfigError

#: GPU compute capability from which TF32 tensor-core matmuls exist (Ampere)
TF32_CAPABILITY = (8, 0)
#: how long a rank waits at a collective (the others wait there while rank 0 runs feature methods)
COLLECTIVE_TIMEOUT = timedelta(hours=12)


def build_fabric(
    accelerator: str, devices: int, num_nodes: int, strategy: str, precision: str
) -> Fabric:
    """The run's Fabric; a setting Fabric refuses (no GPU, fp16 autocast on a CPU) is a
    :class:`ConfigError`."""
    if precision == "16-mixed" and _resolved_accelerator(accelerator) == "cpu":
        raise ConfigError(
            "precision 16-mixed: fp16 autocast needs a GPU; use --precision bf16-mixed on a CPU"
        )
    chosen: str | DDPStrategy = strategy
    if strategy == "ddp" or devices * num_nodes > 1:
        # the other ranks wait while rank 0 runs the feature methods: allow for long ones
        chosen = DDPStrategy(timeout=COLLECTIVE_TIMEOUT)
    try:
        return Fabric(
            accelerator=accelerator,
            devices=devices,
            num_nodes=num_nodes,
            strategy=chosen,
            precision=precision,  # type: ignore[arg-type]
        )
    except (ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"devices: Lightning Fabric cannot run accelerator={accelerator!r}, devices={devices}, "
            f"num_nodes={num_nodes}, strategy={strategy!r}, precision={precision!r} here "
            f"({str(exc).splitlines()[0]})"
        ) from exc


def launched_as_rank_zero() -> bool:
    """Whether this process will be global rank 0 once the run's Fabric launches. The other ranks
    are started (by Fabric's launcher, torchrun or SLURM) with their rank in the environment; rank
    0 is the process that claims the run directory for all of them."""
    env = os.environ
    if "RANK" in env:  # torchrun, and any launcher that states the global rank
        return env["RANK"] == "0"
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_PROCID" in env:
        return env["SLURM_PROCID"] == "0"
    return env.get("NODE_RANK", "0") == "0" and env.get("LOCAL_RANK", "0") == "0"


def _resolved_accelerator(accelerator: str) -> str:
    if accelerator != "auto":
        return accelerator
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_num_workers(device_type: str, devices: int, cpu_count: int | None) -> int:
    """Image-decoding processes per device when the user sets none: none on a CPU (they would take
    cores from the model), else the node's cores shared between its devices, at most 8."""
    if device_type == "cpu":
        return 0
    return max(1, min(8, (cpu_count or 1) // max(1, devices) - 1))


def use_tf32(precision: str, device: torch.device) -> bool:
    """TF32 matmuls: on an Ampere-or-newer GPU, whenever the run is not strict fp32."""
    if precision == "32-true" or device.type != "cuda":
        return False
    return torch.cuda.get_device_capability(device) >= TF32_CAPABILITY


@contextlib.contextmanager
def tf32_matmuls(enabled: bool) -> Iterator[None]:
    """Allow TF32 in CUDA matmuls and convolutions for the block, then put the flags back."""
    if not enabled:
        yield
        return
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


# -- splitting work between ranks --------------------------------------------------------------
def batch_ranges(n: int, batch_size: int) -> list[tuple[int, int]]:
    """[start, stop) of every batch of ``n`` items, as a single process batches them."""
    return [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]


def my_batches(n: int, batch_size: int, rank: int, world: int) -> list[tuple[int, int]]:
    """The batches rank ``rank`` of ``world`` handles: batch k goes to rank k mod world."""
    return batch_ranges(n, batch_size)[rank::world]


def split_batch(size: int, rank: int, world: int) -> tuple[int, int]:
    """[start, stop) of rank ``rank``'s share of a global batch of ``size`` (contiguous, sizes
    differing by at most one)."""
    bounds = np.linspace(0, size, world + 1).round().astype(int)
    return int(bounds[rank]), int(bounds[rank + 1])


class _Rows(Dataset):
    def __init__(self, split, preprocess):
        self.split, self.preprocess = split, preprocess

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.preprocess(self.split.image(i))


class _FixedBatches(Sampler[list[int]]):
    def __init__(self, ranges: Sequence[tuple[int, int]]):
        self.ranges = list(ranges)

    def __iter__(self) -> Iterator[list[int]]:
        for start, stop in self.ranges:
            yield list(range(start, stop))

    def __len__(self) -> int:
        return len(self.ranges)


def encode_split_sharded(
    fabric: Fabric, backbone, split, batch_size: int, num_workers: int
) -> np.ndarray | None:
    """Encode ``split`` with every rank taking every ``world``-th batch; rank 0 gets the (N, D)
    float32 features in split order, the other ranks None."""
    world, rank = fabric.world_size, fabric.global_rank
    n = len(split)
    ranges = batch_ranges(n, batch_size)
    mine = ranges[rank::world]
    loader = DataLoader(
        _Rows(split, backbone.preprocess),
        batch_sampler=_FixedBatches(mine),
        num_workers=num_workers,
    )
    was_training = backbone.model.training
    backbone.model.eval()
    encoded: list[torch.Tensor] = []
    try:
        with torch.inference_mode():
            for pixels in loader:
                encoded.append(backbone.encode_images(pixels).float().cpu())
    finally:
        backbone.model.train(was_training)
    dim = backbone.embed_dim
    rounds = (len(ranges) + world - 1) // world
    gathered: list[np.ndarray] = []
    for r in range(rounds):  # one collective per round: every rank sends one (padded) batch
        block = torch.zeros(batch_size, dim)
        rows = 0
        if r < len(encoded):
            rows = len(encoded[r])
            block[:rows] = encoded[r]
        everything = fabric.all_gather(block.to(fabric.device)).cpu()  # (world, batch, dim)
        if world == 1:
            everything = everything.unsqueeze(0)
        if rank == 0:
            for source in range(world):
                k = r * world + source
                if k < len(ranges):
                    start, stop = ranges[k]
                    gathered.append(everything[source, : stop - start].numpy())
    if rank != 0:
        return None
    if not gathered:
        return np.zeros((0, dim), np.float32)
    return np.concatenate(gathered).astype(np.float32, copy=False)


def extract_sharded(fabric: Fabric, store, backbone, split, description: str = "") -> np.ndarray:
    """The store entry of ``split``: read when it exists; else encoded by all ranks, written by
    rank 0 through the store, read by everyone after a barrier."""
    if not store.has(backbone, split):
        features = encode_split_sharded(
            fabric, backbone, split, store.batch_size, store.num_workers
        )
        if fabric.global_rank == 0:
            assert features is not None
            store.put(backbone, split, features)
            store.stats.images_encoded += len(split)
        fabric.barrier()
    return store.get(backbone, split, description)


def reduce_counts(fabric: Fabric, correct: int, total: int) -> tuple[int, int]:
    """(correct, total) summed over every rank."""
    counts = torch.tensor([correct, total], dtype=torch.float64, device=fabric.device)
    summed = fabric.all_reduce(counts, reduce_op="sum")
    return int(summed[0].item()), int(summed[1].item())
