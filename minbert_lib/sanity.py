"""Sanity tensors: inputs and reference outputs that the notebooks' tests compare against.

Every case is made by the reference library from a fixed seed; each notebook's cases are
defined in its grading module (`minbert_lib.grading.<notebook>.CASES`). The visible tests of
a notebook read the cases stored in its folder (`sanity.pt`, one per assignment); hidden
tests call the same case functions with other seeds and shapes.

    python -m minbert_lib.sanity            # regenerate solutions/<assignment>/sanity.pt
    python -m minbert_lib.sanity --check    # exit 1 when a stored file is out of date
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from minbert_lib.grading import adamw, attention, bert, extensions, multitask, sentiment
from minbert_lib.grading.common import SANITY_FILE, load  # noqa: F401  (load: one case of the running notebook)

ASSIGNMENT_CASES = {module.ASSIGNMENT: module.CASES
                    for module in (attention, bert, adamw, sentiment, multitask, extensions)}


def generate(assignment: str) -> dict:
    return {name: make() for name, make in ASSIGNMENT_CASES[assignment].items()}


def differences(stored, fresh, where: str = "") -> list[str]:
    """Where two nested cases differ beyond float noise, as readable paths.

    Float noise includes the CPU's own kernels: MiniLM's six fp32 layers end up to 5e-5 apart
    (on values up to 6) between an AMX Xeon and an AVX-512 EPYC, so the bound is 1e-4.
    """
    if isinstance(fresh, dict):
        if not isinstance(stored, dict) or set(stored) != set(fresh):
            return [f"{where or 'case'}: keys differ"]
        return [d for key in fresh for d in differences(stored[key], fresh[key], f"{where}/{key}")]
    if isinstance(fresh, (list, tuple)):
        if not isinstance(stored, (list, tuple)) or len(stored) != len(fresh):
            return [f"{where}: lengths differ"]
        return [d for i, (s, f) in enumerate(zip(stored, fresh)) for d in differences(s, f, f"{where}[{i}]")]
    if isinstance(fresh, torch.Tensor):
        same = (isinstance(stored, torch.Tensor) and stored.shape == fresh.shape
                and stored.dtype == fresh.dtype and torch.allclose(stored, fresh, rtol=1e-4, atol=1e-4))
        return [] if same else [f"{where}: tensors differ"]
    return [] if stored == fresh else [f"{where}: {stored!r} != {fresh!r}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minbert_lib.sanity", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("solutions"), help="the course source folder")
    parser.add_argument("--check", action="store_true", help="compare with the stored files, write nothing")
    parser.add_argument("assignments", nargs="*", default=sorted(ASSIGNMENT_CASES))
    args = parser.parse_args(argv)
    stale = []
    for assignment in args.assignments:
        path = args.root / assignment / SANITY_FILE
        fresh = generate(assignment)
        if args.check:
            stored = torch.load(path, weights_only=True) if path.is_file() else None
            problems = differences(stored, fresh) if stored is not None else ["missing"]
            if problems:
                stale.append(f"{path}: {problems[0]}")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(fresh, path)
            print(f"wrote {path}")
    for line in stale:
        print(f"out of date: {line} (run `python -m minbert_lib.sanity`)", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
