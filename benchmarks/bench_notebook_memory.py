"""What one student's kernel needs: peak memory and time of each solution notebook, for sizing a JupyterHub.

Runs each notebook of `solutions/` top to bottom in a fresh kernel (quick mode unless `--full`),
samples the resident memory of the kernel and every process it starts every 0.2 s, and writes
the peak, the wall time and the CPU time per notebook.

    python -m benchmarks.bench_notebook_memory [--full] [--threads 2] [ASSIGNMENT ...]
"""
from __future__ import annotations

import argparse
import os
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

from autograder import course
from benchmarks.common import machine_header, write_report


class PeakMemory:
    """The largest total RSS of a process tree, sampled in a thread until stopped."""

    def __init__(self, pid: int, every: float = 0.2):
        self.root, self.every, self.peak, self.cpu = psutil.Process(pid), every, 0, 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        while not self.done.is_set():
            try:
                tree = [self.root, *self.root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in tree))
                self.cpu = max(self.cpu, sum(sum(p.cpu_times()[:2]) for p in tree))
            except psutil.Error:  # a process ended while we looked
                pass
            self.done.wait(self.every)

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def run(name: str) -> tuple[float, float, float]:
    """(peak GiB, wall s, CPU s) of one solution notebook run in a fresh kernel."""
    path = course.notebook_file("solutions", name)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=3600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    with client.setup_kernel():
        meter = PeakMemory(client.km.provisioner.process.pid)
        try:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
        finally:
            meter.stop()
    return meter.peak / 2**30, time.perf_counter() - started, meter.cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="default: every notebook")
    parser.add_argument("--full", action="store_true", help="the full training budget (default: quick mode)")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of the kernel (default 2)")
    parser.add_argument("--out", default="benchmarks/results/notebook-memory.md")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if not args.full:
        os.environ["MINBERT_QUICK"] = "1"
    names = args.assignments or course.assignments()
    mode = "full" if args.full else "quick (MINBERT_QUICK=1)"
    lines = machine_header(f"One student's kernel per notebook, {mode} mode, {args.threads} threads")
    lines += ["| notebook | peak memory (kernel and children) | wall time | CPU time |", "|---|---:|---:|---:|"]
    for name in names:
        peak, wall, cpu = run(name)
        lines.append(f"| {name} | {peak:.2f} GiB | {wall:.0f} s | {cpu:.0f} s |")
        print(lines[-1], flush=True)
        Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")  # kept if a later notebook fails
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
