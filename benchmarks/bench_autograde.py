"""Autograding time: seconds per notebook and per full submission (all the course's notebooks).

Runs the instructor's `course.py demo` (a temporary copy of the course: release, then
autograde the reference solutions and the untouched release as two students) and reads the
seconds of every graded notebook from its table. With --repeats N the demo runs N times and
each notebook's median is reported (one run on a shared VM varies by a third).

    python benchmarks/bench_autograde.py [--repeats N] [--out FILE]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import statistics
import time
from collections import defaultdict
from pathlib import Path

from benchmarks.common import machine_header, write_report

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^(?P<student>\S+)\s+(?P<assignment>\S+)\s+(?P<score>[\d.]+) / +(?P<max>[\d.]+) auto points\s+"
                 r"(?P<seconds>[\d.]+) s")


def demo_seconds() -> tuple[dict[str, dict[str, float]], float]:
    """One `course.py demo`: seconds per student and notebook, and the demo's own wall time."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "autograder" / "course.py"), "demo"],
                            capture_output=True, text=True, cwd=ROOT)
    total = time.perf_counter() - started
    seconds: dict[str, dict[str, float]] = defaultdict(dict)
    for line in result.stdout.splitlines():
        match = ROW.match(line)
        if match:
            seconds[match["student"]][match["assignment"]] = float(match["seconds"])
            if match["student"] == "reference" and match["score"] != match["max"]:  # its training did not run
                sys.exit(f"the reference lost points, so its time means nothing: {line}\n(notebooks 04-06 "
                         "need the course data: `minbert data fetch`, or MINBERT_DATA_DIR)")
    if result.returncode != 0 or not seconds:
        sys.exit(f"course.py demo failed (exit {result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return seconds, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="runs of the demo; each notebook's median is kept")
    parser.add_argument("--out", default="benchmarks/results/autograde.md")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be 1 or more, not {args.repeats}")

    runs = [demo_seconds() for _ in range(args.repeats)]
    students = list(runs[0][0])
    assignments = sorted({a for per_student in runs[0][0].values() for a in per_student})
    what = "one run" if args.repeats == 1 else f"median of {args.repeats} runs"
    lines = machine_header(f"Autograding one submission (course.py demo, {what})")
    lines += ["| student | " + " | ".join(assignments) + " | full submission |",
              "|---|" + "---:|" * (len(assignments) + 1)]
    for student in students:
        medians = [statistics.median(run[student].get(a, float("nan")) for run, _ in runs) for a in assignments]
        full = statistics.median(sum(run[student].values()) for run, _ in runs)
        lines.append(f"| {student} | " + " | ".join(f"{m:.1f} s" for m in medians) + f" | {full:.1f} s |")
    totals = ", ".join(f"{total:.0f} s" for _, total in runs)
    lines += ["", f"The whole demo (release + both students) took {totals}."]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
