"""What a course notebook needs to know about where and how it runs.

- `assignment_dir()`: the folder of the running notebook, where its sanity tensors lie.
  Jupyter and nbgrader both start the kernel in the notebook's own folder, so this works
  the same in `notebooks/`, in a student's download folder and in nbgrader's
  `autograded/` folders. `MINBERT_ASSIGNMENT_DIR` overrides it.
- `quick_mode()`: True while nbgrader validates or autogrades (it sets
  `NBGRADER_EXECUTION` in the kernel), or when a student sets `MINBERT_QUICK=1`.
  Training cells use it to train briefly instead of for real.
- `autocast()`: bfloat16 mixed precision where the CPU supports it (AMX or AVX-512 BF16),
  which trains two to four times faster; elsewhere it changes nothing.
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
RUNS_DIR_ENV = "MINBERT_RUNS_DIR"


def assignment_dir() -> Path:
    """The folder holding the running notebook and its data files."""
    return Path(os.environ.get(ASSIGNMENT_DIR_ENV) or Path.cwd())


def quick_mode() -> bool:
    """Whether training cells should run their short version (autograding, or MINBERT_QUICK=1)."""
    if os.environ.get(NBGRADER_ENV):
        return True
    return os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def autocast():
    """A context in which matmuls run in bfloat16 on CPUs that support it; a no-op elsewhere."""
    from minbert_lib.train import bf16_supported

    if bf16_supported(torch.device("cpu")):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def runs_dir() -> Path:
    """$MINBERT_RUNS_DIR, else the `runs/` folder of the kit's checkout (where `minbert train` writes)."""
    if os.environ.get(RUNS_DIR_ENV):
        return Path(os.environ[RUNS_DIR_ENV]).expanduser()
    from minbert_lib.data import default_data_dir

    return default_data_dir().parent / "runs"
