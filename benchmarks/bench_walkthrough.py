"""The instructor's walk-through, timed: from a clone to exported grades, step by step.

Copies the course into a temporary folder and runs the steps of autograder/README.md on a
Canvas download of a small class: `release` (the gradebook; `--no-execute`, the committed
solutions already show their outputs), `collect` of the flat zip, `autograde`, `feedback`
and `export`. The class: one student hands in the reference solutions, one the untouched
release, one the reference with 01's attention exercise left undone. The times of `make setup` and of
a release that runs the solutions are elsewhere (the README's CI time, `make release`).

    python -m benchmarks.bench_walkthrough [--assignments A ...] [--out FILE]
"""
from __future__ import annotations

import argparse
import csv
import tempfile
import time
import zipfile
from pathlib import Path

from autograder import course
from benchmarks.common import machine_header, write_report

UNDONE = "attention"  # the third student hands in 01 with this exercise as released


def canvas_zip(root: Path, names: list[str], target: Path) -> None:
    """A Canvas 'download submissions' zip: flat files named login_userid_submissionid_<notebook>."""
    import nbformat

    def read(folder: str, name: str):
        return nbformat.read(course.notebook_file(folder, name, root), as_version=4)

    with zipfile.ZipFile(target, "w") as archive:
        for number, (login, folder) in enumerate((("ada", "solutions"), ("ben", "notebooks"), ("cy", "solutions"))):
            for name in names:
                nb = read(folder, name)
                if login == "cy" and name == "01_attention":
                    stub = next(c for c in read("notebooks", name).cells if course.grade_id(c) == UNDONE)
                    for cell in nb.cells:
                        if course.grade_id(cell) == UNDONE:
                            cell.source = stub.source
                archive.writestr(f"{login}_{1000 + number}_{5000 + number}_{name}.ipynb", nbformat.writes(nb))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", nargs="+", help="default: all of the course's")
    parser.add_argument("--out", default="benchmarks/results/walkthrough.md")
    args = parser.parse_args()

    steps: list[tuple[str, float]] = []

    def timed(label: str, step) -> None:
        started = time.perf_counter()
        step()
        steps.append((label, time.perf_counter() - started))

    with tempfile.TemporaryDirectory(prefix="minbert-walk-") as tmp:
        root = course.copy_course(Path(tmp) / "course")
        names = args.assignments or course.assignments(root)
        download, export_file = Path(tmp) / "canvas.zip", Path(tmp) / "grades.csv"
        timed(f"release {len(names)} notebooks (--no-execute)", lambda: course.release(names, root, execute=False))
        canvas_zip(root, names, download)  # what the students hand in, as Canvas gives it back
        timed("collect a Canvas zip of 3 students", lambda: course.collect(download, root, names))
        timed("autograde (sandboxed)", lambda: course.autograde(names, root, require_sandbox=True))
        timed("feedback (HTML, hidden tests removed)", lambda: course.feedback(names, root))
        timed("export (CSV)", lambda: course.export(export_file, root))
        with export_file.open(newline="") as handle:
            grades = list(csv.DictReader(handle))
    if not grades:
        raise SystemExit("the export is empty: the walk-through did not grade anyone")

    total = sum(seconds for _, seconds in steps)
    lines = machine_header("The instructor's walk-through: a clone to exported grades")
    lines += [f"A Canvas download of 3 students (reference, untouched release, the reference with 01's attention exercise undone) "
              f"for {', '.join(names)}; steps as in autograder/README.md, in a copy of the course.", "",
              "| step | seconds |", "|---|---:|"]
    lines += [f"| {label} | {seconds:.1f} |" for label, seconds in steps]
    lines += [f"| **all** | **{total:.1f}** |", "",
              f"The export holds {len(grades)} rows; its columns: {', '.join(grades[0])}."]
    write_report(args.out, lines)


if __name__ == "__main__":
    main()
