"""Data-parallel training under torchrun (``torchrun --nproc_per_node N -m recxplore train``).

Each process holds the whole model in DistributedDataParallel (NCCL on GPUs, gloo on CPUs) and
trains on its share of every global batch: the windows ``batch[rank::world]``. Each process's
loss is weighted by its share of the batch's targets, so the averaged gradient is the one of the
whole batch's mean loss, as one process with the same global ``train.batch_size`` computes it.
Every process evaluates the same model, so all take the same early-stopping decisions without
talking; only rank 0 writes the run folder.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.distributed as dist

from recxplore.world import world


def start(device: torch.device) -> Optional[str]:
    """Join the job's process group (once); the backend, or None for a single process."""
    if not world().distributed:
        return None
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return backend


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def total(value: float, device: torch.device) -> float:
    """``value`` summed over the processes (itself for one process)."""
    if not dist.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item())
