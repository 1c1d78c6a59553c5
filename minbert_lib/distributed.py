"""Data-parallel training across processes (`torchrun --nproc_per_node N -m minbert_lib.cli train ...`).

Every process builds the same model and walks the same batch schedule (same seeds);
each takes its own slice of every batch, and DistributedDataParallel averages the
gradients during backward, so the processes stay in step. Process 0 evaluates and
writes the run folder. Without torchrun (WORLD_SIZE unset or 1) nothing here does anything.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join the process group torchrun describes; on GPUs each process takes its own card."""
    if world_size() == 1 or dist.is_initialized():
        return device
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device


def wrap(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel around `module` when there are several processes."""
    if world_size() == 1:
        return module
    # a step may leave heads unused (BL trains only the sentiment head)
    return torch.nn.parallel.DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)


def shard(indices: list[int]) -> list[int]:
    """This process's slice of a batch of example indices."""
    return indices[rank()::world_size()]


def barrier() -> None:
    if world_size() > 1 and dist.is_initialized():
        dist.barrier()


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
