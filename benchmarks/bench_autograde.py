"""Autograding time: seconds per notebook, and the wall-clock time of one full submission.

Releases a temporary copy of the course, collects two students (the reference solutions and
the untouched release) and autogrades each student's six notebooks alone, as an instructor's
`autograde --jobs N` would, once per value of --jobs and --repeats times. It reports each
notebook's median seconds (with one job) and each student's median wall-clock time for the
whole submission (with each number of jobs). One run on a shared VM varies by a third.

    python -m benchmarks.bench_autograde [--repeats N] [--jobs 1,2] [--out FILE]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from autograder import course
from benchmarks.common import machine_header, write_report

def grade_student(root: Path, names: list[str], student: str, jobs: int) -> tuple[float, dict[str, float]]:
    """Wall-clock seconds to grade one student's whole submission, and each notebook's seconds."""
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        rows = course.autograde(names, root, students=[student], regrade=True, jobs=jobs)
    wall = time.perf_counter() - started
    if student == "reference" and any(r["score"] != r["auto_max"] or r["status"] == "error" for r in rows):
        lost = [f"{r['assignment']}: {r['score']}/{r['auto_max']} {r['reason']}" for r in rows
                if r["score"] != r["auto_max"] or r["status"] == "error"]
        sys.exit(f"the reference lost points, so its time means nothing: {lost}\n(notebooks 04-06 need the "
                 "course data: `minbert data fetch`, or MINBERT_DATA_DIR)")
    return wall, {r["assignment"]: r["seconds"] for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="gradings of each student; medians are kept")
    parser.add_argument("--jobs", default="1,2", help="comma-separated values of autograde --jobs (default 1,2)")
    parser.add_argument("--out", default="benchmarks/results/autograde.md")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be 1 or more, not {args.repeats}")
    try:
        job_counts = [int(j) for j in args.jobs.split(",")]
    except ValueError:
        parser.error(f"--jobs takes numbers separated by commas, e.g. 1,2; not {args.jobs!r}")

    walls: dict[tuple[str, int], list[float]] = defaultdict(list)
    seconds: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    with tempfile.TemporaryDirectory(prefix="minbert-bench-") as tmp:
        with contextlib.redirect_stdout(io.StringIO()):
            root, names = course.demo_course(Path(tmp))
        for repeat in range(args.repeats):
            for jobs in job_counts:
                for student in course.DEMO_STUDENTS:
                    wall, per_notebook = grade_student(root, names, student, jobs)
                    walls[student, jobs].append(wall)
                    if jobs == 1:
                        for name, s in per_notebook.items():
                            seconds[student][name].append(s)
                    print(f"run {repeat + 1}, --jobs {jobs}, {student}: {wall:.1f} s", flush=True)

    what = "one run" if args.repeats == 1 else f"median of {args.repeats} runs"
    lines = machine_header(f"Autograding one submission ({what} per number)")
    if seconds:
        lines += ["Seconds per notebook, graded one at a time (`--jobs 1`):", "",
                  "| student | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for student in course.DEMO_STUDENTS:
            lines.append(f"| {student} | " + " | ".join(f"{statistics.median(seconds[student][n]):.1f} s"
                                                     for n in names) + " |")
        lines.append("")
    lines += ["Wall-clock time of one student's whole submission (all six notebooks):", "",
              "| student | " + " | ".join(f"--jobs {j}" for j in job_counts) + " |",
              "|---|" + "---:|" * len(job_counts)]
    for student in course.DEMO_STUDENTS:
        lines.append(f"| {student} | " + " | ".join(f"{statistics.median(walls[student, j]):.1f} s"
                                                   for j in job_counts) + " |")
    lines += ["", "Every run, in seconds: " + "; ".join(
        f"{student} --jobs {j}: " + ", ".join(f"{w:.0f}" for w in walls[student, j])
        for j in job_counts for student in course.DEMO_STUDENTS) + "."]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
