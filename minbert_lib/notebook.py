"""What a course notebook needs to know about where and how it runs.

- `assignment_dir()`: the folder of the running notebook, where its sanity tensors lie.
  Jupyter and nbgrader both start the kernel in the notebook's own folder, so this works
  the same in `notebooks/`, in a student's download folder and in nbgrader's
  `autograded/` folders. `MINBERT_ASSIGNMENT_DIR` overrides it.
- `quick_mode()`: True while nbgrader validates or autogrades (it sets
  `NBGRADER_EXECUTION` in the kernel), or when a student sets `MINBERT_QUICK=1`.
  Training cells use it to train briefly instead of for real.
"""
from __future__ import annotations

import os
from pathlib import Path

ASSIGNMENT_DIR_ENV = "MINBERT_ASSIGNMENT_DIR"
QUICK_ENV = "MINBERT_QUICK"
NBGRADER_ENV = "NBGRADER_EXECUTION"


def assignment_dir() -> Path:
    """The folder holding the running notebook and its data files."""
    return Path(os.environ.get(ASSIGNMENT_DIR_ENV) or Path.cwd())


def quick_mode() -> bool:
    """Whether training cells should run their short version (autograding, or MINBERT_QUICK=1)."""
    if os.environ.get(NBGRADER_ENV):
        return True
    return os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes", "on")
