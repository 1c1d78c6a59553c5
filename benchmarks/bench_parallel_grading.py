"""Grading a class: serial against `autograde --jobs N`, and the time for a larger class projected.

Copies the course into a temporary folder, releases the assignments, collects a class of
students who all hand in the reference solution (every test runs to the end: the slowest
case), grades the class serially, then again with `--jobs`, and projects the time for a class
of `--project-students` on `--project-cores` cores: as many jobs as copies of this machine fit,
each as fast as a serial run here (the cores are assumed to scale; this machine cannot show it).

    python -m benchmarks.bench_parallel_grading [--students 20] [--jobs 2] [--assignments A ...]
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from autograder import course
from benchmarks.common import machine_header, write_report


def timed_grading(root: Path, names: list[str], jobs: int) -> tuple[float, list[dict]]:
    started = time.perf_counter()
    rows = course.autograde(names, root, regrade=True, require_sandbox=True, jobs=jobs)
    return time.perf_counter() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--assignments", nargs="+", default=["01_attention", "03_adamw"])
    parser.add_argument("--project-students", type=int, default=200)
    parser.add_argument("--project-cores", type=int, default=16)
    parser.add_argument("--full-submission-seconds", type=float,
                        help="serial seconds of one six-notebook submission (results/autograde.md), to project those too")
    parser.add_argument("--out", default="benchmarks/results/parallel-grading.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="minbert-bench-") as tmp:
        root = course.copy_course(Path(tmp) / "course")
        course.release(args.assignments, root, execute=False)
        for index in range(args.students):
            for name in args.assignments:
                target = Path(tmp) / "incoming" / f"student{index:03d}" / f"{name}.ipynb"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(course.notebook_file("solutions", name, root), target)
        course.collect(Path(tmp) / "incoming", root, args.assignments)
        serial, serial_rows = timed_grading(root, args.assignments, 1)
        parallel, parallel_rows = timed_grading(root, args.assignments, args.jobs)
    for rows in (serial_rows, parallel_rows):
        wrong = [r for r in rows if r["score"] != r["auto_max"]]
        if wrong:
            raise SystemExit(f"a reference submission lost points: {wrong[0]}")

    cores = os.cpu_count() or 1
    submissions = args.students * len(args.assignments)
    efficiency = serial / parallel / min(args.jobs, cores)  # 1.0: each job as fast as a serial one
    per_submission = serial / args.students  # seconds for one student's notebooks, alone on the machine
    projected_jobs = max(1, args.project_cores // cores)  # each job with as many cores as this machine
    projected = args.project_students * per_submission / projected_jobs
    lines = machine_header(f"Grading a class of {args.students}: serial against --jobs {args.jobs}")
    lines += [f"Each student hands in the reference solution of {', '.join(args.assignments)} "
              f"({submissions} notebooks in all), graded in the sandbox, `--regrade`.", "",
              "| run | wall time | per student | speed-up |", "|---|---:|---:|---:|",
              f"| serial | {serial:.0f} s | {serial / args.students:.1f} s | 1.00 |",
              f"| --jobs {args.jobs} | {parallel:.0f} s | {parallel / args.students:.1f} s | {serial / parallel:.2f} |",
              "",
              f"Parallel efficiency on {cores} cores: {efficiency:.2f} (1.0 = each job as fast as a serial run).",
              f"Projected: {args.project_students} students on {args.project_cores} cores "
              f"(--jobs {projected_jobs}, {cores} cores per job, each as fast as a serial run here): "
              f"{projected / 60:.0f} minutes for these notebooks."]
    if args.full_submission_seconds:
        full = projected * args.full_submission_seconds / per_submission
        lines.append(f"For full six-notebook submissions ({args.full_submission_seconds:.0f} s each, serial): "
                     f"{full / 60:.0f} minutes, against {args.project_students * args.full_submission_seconds / 3600:.1f} "
                     "hours serially on one machine.")
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
