"""Autograding time: seconds per notebook and per full submission (all the course's notebooks).

Runs the instructor's `course.py demo` (a temporary copy of the course: release, then
autograde the reference solutions and the untouched release as two students) and reads the
seconds of every graded notebook from its table.

    python benchmarks/bench_autograde.py [--out FILE]
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from benchmarks.common import machine_header, write_report

ROOT = Path(__file__).resolve().parents[1]
ROW = re.compile(r"^(?P<student>\S+)\s+(?P<assignment>\S+)\s+(?P<score>[\d.]+) / +(?P<max>[\d.]+) auto points\s+"
                 r"(?P<seconds>[\d.]+) s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/autograde.md")
    args = parser.parse_args()

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

    assignments = sorted({a for per_student in seconds.values() for a in per_student})
    lines = machine_header("Autograding one submission (course.py demo)")
    lines += ["| student | " + " | ".join(assignments) + " | full submission |",
              "|---|" + "---:|" * (len(assignments) + 1)]
    for student, per_assignment in seconds.items():
        cells = [f"{per_assignment.get(a, float('nan')):.1f} s" for a in assignments]
        lines.append(f"| {student} | " + " | ".join(cells) + f" | {sum(per_assignment.values()):.1f} s |")
    lines += ["", f"The whole demo (release + both students) took {total:.0f} s."]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
