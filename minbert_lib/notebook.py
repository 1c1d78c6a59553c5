"""What a course notebook needs to know about where and how it runs.

- `assignment_dir()`: the folder of the running notebook, where its sanity tensors lie.
  Jupyter and nbgrader both start the kernel in the notebook's own folder, so this works
  the same in `notebooks/`, in a student's download folder and in nbgrader's
  `autograded/` folders. `MINBERT_ASSIGNMENT_DIR` overrides it.
- `training_budget()`: how long the training cells of 04-06 train. "grading" while nbgrader
  validates or autogrades (it sets `NBGRADER_EXECUTION` in the kernel): just enough for the
  tests, so that a whole submission grades in about a minute; "preview" in the kernel of the
  kit's autograder (`MINBERT_GRADED_OUTSIDE=1`), whose tests run outside the notebook on a
  grading-budget run of their own: a few steps, enough to show that every cell runs; "quick"
  when a student sets `MINBERT_QUICK=1`: under a minute per notebook, with results that already mean something;
  else "full".
- `device()`: where the training cells of 04-06 run: a CUDA GPU, else Apple's MPS, else the
  CPU (`MINBERT_DEVICE=cpu`, `cuda:1`, ... chooses). `synchronize(device)` waits for it, so
  that a timing measures the work and not just its launch.
- `autocast(device)`: bfloat16 mixed precision where the device supports it (CPUs with AMX or
  AVX-512 BF16: two to four times faster; recent CUDA GPUs); elsewhere it changes nothing.
- `runs_dir()`: where `minbert train` and `minbert reproduce` write their run folders
  (`MINBERT_RUNS_DIR`, else the kit checkout's `runs/`), for notebook 06's ablation table.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

ASSIGNMENT_DIR_ENV = "MINBERT_ASSIGNMENT_DIR"
QUICK_ENV = "MINBERT_QUICK"
NBGRADER_ENV = "NBGRADER_EXECUTION"
GRADED_OUTSIDE_ENV = "MINBERT_GRADED_OUTSIDE"
RUNS_DIR_ENV = "MINBERT_RUNS_DIR"
DEVICE_ENV = "MINBERT_DEVICE"


def assignment_dir() -> Path:
    """The folder holding the running notebook and its data files."""
    return Path(os.environ.get(ASSIGNMENT_DIR_ENV) or Path.cwd())


def training_budget() -> str:
    """'preview' in the autograder's kernel, 'grading' under nbgrader, 'quick' when MINBERT_QUICK=1,
    else 'full' (see the module's docstring)."""
    if os.environ.get(NBGRADER_ENV):
        return "preview" if os.environ.get(GRADED_OUTSIDE_ENV) else "grading"
    if os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes", "on"):
        return "quick"
    return "full"


def device() -> torch.device:
    """$MINBERT_DEVICE if set, else the first of cuda, mps and cpu that this machine has."""
    from minbert_lib.device import pick_device
    from minbert_lib.errors import ConfigError

    try:
        return pick_device(os.environ.get(DEVICE_ENV) or None)
    except ConfigError as err:
        raise ConfigError(f"{DEVICE_ENV}: {err}") from None


def synchronize(device: torch.device) -> None:
    """Wait until the device has finished the work queued on it (GPUs run it asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def autocast(device: torch.device = torch.device("cpu")):
    """A context in which matmuls run in bfloat16 where `device` supports it; a no-op elsewhere."""
    from minbert_lib.device import bf16_supported

    if bf16_supported(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def runs_dir() -> Path:
    """$MINBERT_RUNS_DIR, else the `runs/` folder of the kit's checkout (where `minbert train` writes)."""
    if os.environ.get(RUNS_DIR_ENV):
        return Path(os.environ[RUNS_DIR_ENV]).expanduser()
    from minbert_lib.data import default_data_dir

    return default_data_dir().parent / "runs"
