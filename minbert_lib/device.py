"""Where training runs and how it starts: the device, bf16 autocast, and seeding.

    device = pick_device()                 # cuda, then mps, then cpu (or the one asked for, checked)
    use_bf16 = bf16_supported(device)      # whether bf16 autocast pays off there
    seed_everything(0)                     # Python, numpy and torch draw the same numbers every run
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from minbert_lib.errors import ConfigError


def available_device_types() -> dict[str, bool]:
    """Which of the device types the kit trains on this machine has, in the order they are preferred."""
    return {"cuda": torch.cuda.is_available(),
            "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available(),
            "cpu": True}


def pick_device(requested: str | None = None) -> torch.device:
    """The requested device, checked; else the first available of cuda, mps and cpu."""
    if requested:
        return checked_device(requested)
    return torch.device(next(kind for kind, present in available_device_types().items() if present))


def checked_device(requested: str) -> torch.device:
    """torch.device(requested), or a ConfigError that says why this machine cannot train there."""
    available = available_device_types()
    try:
        device = torch.device(requested)
    except RuntimeError:
        device = None
    if device is None or device.type not in available:
        raise ConfigError(f"--device {requested!r} is not a device the kit trains on: use cuda, cuda:N, mps or cpu")
    if not available[device.type]:
        raise ConfigError(f"--device {requested}: torch finds no {device.type} device on this machine; "
                          "leave --device out to train on the first available one")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {requested}: this machine has {torch.cuda.device_count()} CUDA device(s), "
                          f"numbered from 0")
    return device


def bf16_supported(device: torch.device) -> bool:
    """bf16 autocast pays off on GPUs that support it and on CPUs with AMX or AVX-512 BF16."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
        return "amx_bf16" in flags or "avx512_bf16" in flags
    return False


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
