"""What every benchmark report shares: the machine header, the matmul limit, writing the table."""
from __future__ import annotations

import datetime
import os
import platform
import time
from pathlib import Path

import torch


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_header(title: str) -> list[str]:
    """A Markdown title and the facts that make a number reproducible."""
    try:
        import transformers
        hf_version = transformers.__version__
    except ImportError:
        hf_version = "not installed"
    return [f"## {title}", "",
            f"{datetime.date.today().isoformat()}; {cpu_name()}; {os.cpu_count()} cores, "
            f"torch threads {torch.get_num_threads()}; Python {platform.python_version()}, "
            f"torch {torch.__version__}, transformers {hf_version}.", ""]


def matmul_gflops(dtype: torch.dtype, size: int = 2048, reps: int = 5) -> float:
    """The best rate of a square matmul: what this machine can do at most, in GFLOP/s."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    a @ b  # warm-up
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def write_report(path: str | Path, lines: list[str]) -> None:
    """Print the Markdown report and write it to `path`."""
    text = "\n".join(lines) + "\n"
    print(text)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(f"wrote {path}")
