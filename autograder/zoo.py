"""The fault zoo: submissions that break grading in every way we know of, each with the grade it must get.

    python autograder/zoo.py generate [--to DIR]   write the zoo (default autograder/zoo/, gitignored)
    python autograder/zoo.py grade [--work DIR]    grade the zoo and the reference in one batch, and check

`generate` makes one student folder per case in CASES from the reference solution and the
release of 03_adamw as they are now, so the zoo follows the course. `grade` (`make zoo`)
copies the course into --work (default build/zoo/), releases it, collects the zoo, grades
every case in the sandbox (it refuses to grade without one), writes the feedback, and checks
each case's score, status and feedback page against its definition; it exits 1 on any
difference. Run again after a kill, it grades only the cases left; after a change to the
course or the grader, `--regrade` starts from a fresh copy.
"""
from __future__ import annotations

import argparse
import inspect
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat

from autograder import course
from minbert_lib import optim

ASSIGNMENT = "03_adamw"
CELL_TIMEOUT = 20  # seconds per cell: the loop and the sleep of the zoo hit it, once each
SUBMISSION_TIMEOUT = 180  # seconds per submission
JOBS = 2  # submissions graded at once: the zoo also checks that parallel grading changes no grade
ZOO = course.ROOT / "autograder" / "zoo"
WORK = course.ROOT / "build" / "zoo"


@dataclass
class Case:
    name: str  # the student id
    what: str  # the fault, in words
    make: Callable[[Path], None]  # writes the submission into its folder
    score: float  # autograded points, of 5
    status: str  # ok, flagged or failed (course.autograde's row status)
    feedback: str  # text the feedback page must show


# --- making submissions from the reference ---------------------------------------------------

def reference():
    return nbformat.read(course.notebook_file("solutions", ASSIGNMENT), as_version=4)


def released():
    return nbformat.read(course.notebook_file("notebooks", ASSIGNMENT), as_version=4)


def cell(nb, cell_id: str):
    return next(c for c in nb.cells if c.id == cell_id)


def first_code_cell(nb):
    return next(c for c in nb.cells if c.cell_type == "code")


def notebook(change: Callable | None = None, base: Callable = reference, filename: str = f"{ASSIGNMENT}.ipynb"):
    """A case maker: the base notebook changed by `change(nb)`, saved under `filename`."""
    def make(folder: Path) -> None:
        nb = base()
        if change is not None:
            change(nb)
        nbformat.write(nb, folder / filename)
    return make


def text_file(text: str, filename: str = f"{ASSIGNMENT}.ipynb"):
    def make(folder: Path) -> None:
        (folder / filename).write_text(text, encoding="utf-8")
    return make


def edit(cell_id: str, old: str, new: str):
    """A change that replaces `old` (which must be there) by `new` in one cell."""
    def change(nb) -> None:
        target = cell(nb, cell_id)
        assert old in target.source, f"{cell_id}: {old!r} is gone from the reference; update the zoo"
        target.source = target.source.replace(old, new, 1)
    return change


def append(cell_id: str, code: str):
    def change(nb) -> None:
        cell(nb, cell_id).source += "\n\n" + code
    return change


def new_cell(code: str):
    def change(nb) -> None:
        nb.cells.append(nbformat.v4.new_code_cell(code, id="added-by-the-student"))  # a fixed id: same file each time
    return change


def remove(cell_id: str):
    def change(nb) -> None:
        nb.cells.remove(cell(nb, cell_id))
    return change


def move(cell_id: str, after: str):
    def change(nb) -> None:
        moved = cell(nb, cell_id)
        nb.cells.remove(moved)
        nb.cells.insert(nb.cells.index(cell(nb, after)) + 1, moved)
    return change


def first_cell_raises(nb) -> None:
    first_code_cell(nb).source = 'raise RuntimeError("the first cell fails")\n' + first_code_cell(nb).source


def library_copy(nb) -> None:
    """The solution cell replaced by the library's AdamW source, its short names renamed."""
    source = inspect.getsource(optim.AdamW)
    for short, long in {"m": "first", "v": "second", "g": "grad", "t": "count", "p": "weight"}.items():
        source = re.sub(rf"\b{short}\b", long, source)
    cell(nb, "adamw").source = source


def tampered_sanity(folder: Path) -> None:
    """A wrong solution (no weight decay) with sanity tensors changed to expect exactly its results."""
    import torch

    from minbert_lib.grading import adamw

    notebook(edit("adamw", "p.mul_(1.0 - lr * weight_decay)", "pass"))(folder)
    cases = torch.load(course.ROOT / "solutions" / ASSIGNMENT / "sanity.pt", weights_only=True)
    for case in cases.values():
        if "grads" in case:
            grad_fn, groups, steps = adamw.given_grads(case["grads"]), case["groups"], len(case["grads"])
        else:
            grad_fn = adamw.regression_grads(case.get("inputs"), case.get("targets"))
            groups, steps = [{**case["hyper"], "params": [0, 1]}], case["steps"]
        case["expected"] = adamw.reference_adamw(case["params"], groups, grad_fn, steps, mistake="adamw_no_decay")
    torch.save(cases, folder / "sanity.pt")


# What a curious student tries. The working folder is <course>/autograder/autograded/<student>/03_adamw,
# and nbgrader writes the notebook it runs, hidden tests included, into it.
READ_SECRETS = '''
from pathlib import Path
secrets = []
for name in ["solutions/03_adamw/03_adamw.ipynb", "solutions/03_adamw/03_adamw.pct.py", "autograder/gradebook.db",
             "autograder/submitted/reference/03_adamw/03_adamw.ipynb", "autograder/autograded/03_adamw.ipynb"]:
    for path in [Path.cwd().parents[3] / name, Path(REPOSITORY) / name, Path("03_adamw.ipynb")]:
        try:
            path.read_bytes()
            secrets.append(str(path))
        except OSError:
            pass
print(f"secrets read: {secrets}")
'''

WRITE_OUTSIDE = '''
from pathlib import Path
written = []
for up in [Path.cwd().parents[3], Path(REPOSITORY)]:
    for name in ["autograder/gradebook.db", "autograder/submitted/reference/03_adamw/03_adamw.ipynb",
                 "autograder/autograded/reference/03_adamw/03_adamw.ipynb", "solutions/03_adamw/sanity.pt",
                 "ZOO_WAS_HERE"]:
        try:
            with open(up / name, "ab") as f:
                f.write(b"zoo")
            written.append(str(up / name))
        except OSError:
            pass
print(f"writes that worked: {written}")
'''

NETWORK = '''
import socket
reached = []
for host, port in [("pypi.org", 443), ("1.1.1.1", 53), ("127.0.0.1", 22)]:
    try:
        socket.create_connection((host, port), timeout=3).close()
        reached.append(host)
    except OSError:
        pass
print(f"network reached: {reached}")
'''

FORK_BOMB = '''
import os, time
children = 0
try:
    while True:
        if os.fork() == 0:  # a child forks for ever too, and never returns to the kernel
            try:
                while True:
                    try:
                        os.fork()
                    except OSError:
                        time.sleep(0.2)
            finally:
                os._exit(0)
        children += 1
except OSError as err:
    print(f"fork bomb stopped after {children} processes: {type(err).__name__}")
'''

PRINT_CALLERS = '''import linecache, sys
        frame = sys._getframe()
        while frame:  # up to the test cell's line that calls it, hidden or not
            if "ipykernel_" in frame.f_code.co_filename:
                print("caller:", linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip())
            frame = frame.f_back
        '''


def with_repository(code: str) -> str:
    return code.replace("REPOSITORY", repr(str(course.ROOT)))


CASES = [
    Case("reference", "the reference solution", notebook(), 5, "ok", "passed: 2 / 2"),
    Case("untouched", "the release, not a line written", notebook(base=released), 0, "ok", "NotImplementedError"),
    Case("syntax_error", "a syntax error in the solution cell",
         notebook(edit("adamw", "def step(self):", "def step(self)")), 0, "ok", "SyntaxError"),
    Case("error_in_first_cell", "the first cell raises: the solution cell is still graded with the course's imports",
         notebook(first_cell_raises), 5, "ok", "the first cell fails"),
    Case("wrong_shape", "parameters come back flattened",
         notebook(edit("adamw", "### END SOLUTION", "p.data = p.data.flatten()\n                ### END SOLUTION")),
         0, "ok", "RuntimeError"),
    Case("nan_output", "parameters become NaN",
         notebook(edit("adamw", "### END SOLUTION", "p.fill_(float('nan'))\n                ### END SOLUTION")),
         0, "ok", "NaN or inf"),
    Case("hard_coded_visible", "betas hard-coded to the visible tests' values: the hidden tests use others",
         notebook(edit("adamw", 'group["betas"]', "(0.9, 0.999)")), 3, "ok", "AdamW trajectory: differs"),
    Case("infinite_loop", "an infinite loop in the solution cell, before the class",
         notebook(edit("adamw", "class AdamW(Optimizer):", "while True:\n    pass\n\n\nclass AdamW(Optimizer):")),
         0, "ok", "ran past the time limit"),
    Case("sleep_past_timeout", "a cell sleeps for an hour after defining the class",
         notebook(append("adamw", "import time\ntime.sleep(3600)")), 5, "ok", "ran past the time limit"),
    Case("os_exit", "os._exit kills the kernel, and the grading process too",
         notebook(append("adamw", "import os\nos._exit(1)")), 0, "flagged", "the kernel died"),
    Case("segfault", "a segmentation fault", notebook(append("adamw", "import ctypes\nctypes.string_at(0)")), 0,
         "flagged", "the kernel died"),
    Case("huge_allocation", "a 12 GB tensor", notebook(append("adamw", "hog = torch.ones(3 * 10**9)")), 5, "ok",
         "allocate"),
    Case("print_flood", "prints 300 MB",
         notebook(append("adamw", "for _ in range(300):\n    print('x' * 1_000_000)")), 5, "ok",
         "passed: 2 / 2"),
    Case("edited_test", "a test cell replaced by a print",
         notebook(lambda nb: setattr(cell(nb, "test_first_step"), "source", 'print("first step: OK")')), 5, "ok",
         "test cells edited: test_first_step"),
    Case("deleted_test", "a test cell deleted: the release's tests are run all the same",
         notebook(remove("test_trajectory")), 5, "ok", "grade cells deleted: test_trajectory"),
    Case("deleted_solution", "the solution cell deleted", notebook(remove("adamw")), 0, "ok",
         "solution cells deleted: adamw"),
    Case("tests_reordered", "the test cells in another order",
         notebook(move("test_first_step", after="test_trajectory")), 5, "ok", "passed: 2 / 2"),
    Case("solution_after_tests", "the solution cell moved below the tests: graded in the release's order",
         notebook(move("adamw", after="test_trajectory")), 5, "ok", "passed: 2 / 2"),
    Case("renamed", "the notebook renamed by a second download",
         notebook(filename=f"{ASSIGNMENT} (1).ipynb"), 5, "ok", "passed: 2 / 2"),
    Case("tampered_sanity", "a wrong solution with sanity tensors changed to match it", tampered_sanity, 0, "ok",
         "no weight decay was applied"),
    Case("missing_notebook", "no notebook, only a note", text_file("I forgot to attach it", "README.txt"), 0,
         "failed", "no 03_adamw.ipynb in the submission"),
    Case("invalid_json", "a notebook cut short", text_file('{"cells": [{"cell_type": "code", "sou'), 0, "failed",
         "not a readable notebook"),
    Case("empty_file", "an empty file", text_file(""), 0, "failed", "not a readable notebook"),
    Case("reference_implementation", "imports the library's AdamW instead of writing one",
         notebook(lambda nb: setattr(cell(nb, "adamw"), "source", "from minbert_lib.optim import AdamW")), 0,
         "flagged", "uses the reference implementation minbert_lib.optim.AdamW"),
    Case("reads_secrets", "reads the solutions, the gradebook, the hidden tests and other students",
         notebook(new_cell(with_repository(READ_SECRETS))), 5, "ok", "secrets read: []"),
    Case("writes_outside", "writes the gradebook, the solutions and another student's files",
         notebook(new_cell(with_repository(WRITE_OUTSIDE))), 5, "ok", "writes that worked: []"),
    Case("network", "opens network connections", notebook(new_cell(NETWORK)), 5, "ok", "network reached: []"),
    Case("fork_bomb", "a fork bomb after the tests", notebook(new_cell(FORK_BOMB)), 5, "ok",
         "fork bomb stopped after"),
    Case("edited_grade_metadata", "a test cell's points set to 50 and another test's grade_id changed",
         notebook(lambda nb: (cell(nb, "test_first_step").metadata.nbgrader.update(points=50),
                              cell(nb, "test_trajectory").metadata.nbgrader.update(grade_id="mine"))),
         5, "ok", "passed: 2 / 2"),
    Case("duplicated_test_cell", "a test cell copied in JupyterLab",
         notebook(lambda nb: nb.cells.insert(nb.cells.index(cell(nb, "test_trajectory")) + 1,
                                             nbformat.from_dict({**cell(nb, "test_trajectory"), "id": "a-copy"}))),
         5, "ok", "passed: 2 / 2"),
    Case("untouched_beside_final", "the untouched release beside 03_adamw-final.ipynb, in another case",
         lambda folder: (notebook(base=released)(folder), notebook(filename="03_AdamW-final.ipynb")(folder)),
         5, "ok", "passed: 2 / 2"),
    Case("near_copy", "the library's AdamW copied into the cell, its names changed: flagged, not zeroed",
         notebook(library_copy), 5, "flagged", "passed: 2 / 2"),
    Case("exits_after_tests", "a last cell that ends the kernel (os._exit) once the tests have run",
         notebook(new_cell("import os\nos._exit(0)")), 5, "flagged", "the kernel died"),
    Case("prints_hidden_tests", "prints the test lines that call it, the hidden ones too",
         notebook(edit("adamw", "super().__init__(params", PRINT_CALLERS + "super().__init__(params")), 5, "ok",
         "passed: 2 / 2"),
]


# --- the commands ----------------------------------------------------------------------------

def generate(target: Path = ZOO) -> None:
    """Write every case's submission into target/<case>/, from the course as it is now."""
    shutil.rmtree(target, ignore_errors=True)
    for case in CASES:
        (target / case.name).mkdir(parents=True)
        case.make(target / case.name)
    (target / "cases.json").write_text(json.dumps(
        [{"student": c.name, "fault": c.what, "score": c.score, "status": c.status, "feedback": c.feedback}
         for c in CASES], indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(CASES)} submissions into {target}")


def check(root: Path, rows: list[dict]) -> list[str]:
    """Every difference between the graded zoo and the definitions in CASES."""
    graded = {row["student"]: row for row in rows}
    problems = []
    for case in CASES:
        row = graded.get(case.name)
        page = root / "autograder" / "feedback" / case.name / ASSIGNMENT / f"{ASSIGNMENT}.html"
        if row is None:
            problems.append(f"{case.name}: not graded")
        elif (row["score"], row["status"]) != (case.score, case.status):
            problems.append(f"{case.name}: {row['score']:g} points, {row['status']} ({row['reason']}); "
                            f"the zoo expects {case.score:g}, {case.status}")
        if not page.is_file():
            problems.append(f"{case.name}: no feedback page")
        elif case.feedback not in course.page_text(page):
            problems.append(f"{case.name}: the feedback does not show {case.feedback!r}")
    return problems


def grade(work: Path = WORK, zoo: Path = ZOO, regrade: bool = False) -> tuple[Path, list[dict], list[str]]:
    """Grade the zoo in a copy of the course in `work`, resuming a killed run; (course, rows, problems)."""
    generate(zoo)
    root = work / "course"
    if regrade or not (root / ".released").is_file():
        shutil.rmtree(root, ignore_errors=True)
        course.copy_course(root)
        course.release([ASSIGNMENT], root, execute=False)
        (root / ".released").touch()
    course.collect(zoo, root, [ASSIGNMENT])
    rows = course.autograde([ASSIGNMENT], root, timeout=SUBMISSION_TIMEOUT, require_sandbox=True,
                            cell_timeout=CELL_TIMEOUT, jobs=JOBS)
    course.feedback([ASSIGNMENT], root)
    problems = check(root, rows)
    from autograder import zoo_outside

    problems += zoo_outside.grade_all(course.sandbox_limits(require=True), JOBS)
    print("\n".join(["the zoo differs from its definitions:", *problems]) if problems
          else f"zoo: all {len(CASES) + len(zoo_outside.CASES)} cases got the grade and the feedback they must")
    return root, rows, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zoo.py", description="The fault zoo of the autograder.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("generate").add_argument("--to", type=Path, default=ZOO)
    grade_parser = sub.add_parser("grade")
    grade_parser.add_argument("--work", type=Path, default=WORK, help=f"default: {WORK}")
    grade_parser.add_argument("--regrade", action="store_true", help="start again instead of resuming")
    args = parser.parse_args(argv)
    try:
        if args.command == "generate":
            generate(args.to)
            return 0
        return 1 if grade(args.work, regrade=args.regrade)[2] else 0
    except course.CourseError as err:
        print(f"zoo.py: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
