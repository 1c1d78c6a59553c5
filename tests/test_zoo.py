"""The fault zoo, graded in one sandboxed batch with the reference solution.

One session fixture generates the zoo from the current reference solution, grades it the
way `make zoo` does, in a temp folder, and the tests read the results: each case's grade and
feedback, no hidden test in any feedback page, nothing changed outside a submission's
folder, and a killed grading run that resumes without regrading.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
from autograder import course  # noqa: E402
from autograder import sandbox  # noqa: E402
from autograder import zoo  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sandbox.problem() is not None,
                                 reason=f"no sandbox: {sandbox.problem()} (.ci/run installs bubblewrap)")]
CASES = {case.name: case for case in zoo.CASES}
NAME = zoo.ASSIGNMENT


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    work = tmp_path_factory.mktemp("zoo")
    root, rows, problems = zoo.grade(work, zoo=work / "zoo")
    return {"work": work, "root": root, "rows": {row["student"]: row for row in rows}, "problems": problems}


def feedback_page(root: Path, student: str) -> Path:
    return root / "autograder" / "feedback" / student / NAME / f"{NAME}.html"


def test_the_zoo_holds_every_kind_of_fault():
    required = {"reference", "syntax_error", "error_in_first_cell", "wrong_shape", "nan_output",
                "hard_coded_visible", "infinite_loop", "sleep_past_timeout", "os_exit", "segfault",
                "huge_allocation", "print_flood", "edited_test", "deleted_test", "deleted_solution",
                "tests_reordered", "renamed", "tampered_sanity", "missing_notebook", "invalid_json", "empty_file",
                "reference_implementation", "reads_secrets", "writes_outside", "network", "fork_bomb"}
    assert required <= set(CASES) and len(CASES) >= 25
    from autograder import zoo_outside

    assert len(CASES) + len(zoo_outside.CASES) >= 60
    assert {case.assignment for case in zoo_outside.CASES} == set(course.assignments())
    kinds = {"sdpa_imported", "sdpa_wrapped", "sdpa_copied_from_file", "self_attention_subclassed",
             "checks_rebound", "torch_patched", "modules_shadowed", "reads_hidden_tests", "solution_copied",
             "test_metadata_edited", "adamw_decay_after_update", "adamw_efficient_bias_correction"}
    assert kinds <= {case.name for case in zoo_outside.CASES}
    assert all(case.status in ("ok", "flagged", "failed") and 0 <= case.score <= 5 for case in CASES.values())


@pytest.mark.parametrize("student", list(CASES))
def test_each_case_gets_its_grade_and_feedback(graded, student):
    case, row = CASES[student], graded["rows"][student]
    assert (row["score"], row["status"]) == (case.score, case.status), row
    assert row["sandboxed"]
    assert case.feedback in course.page_text(feedback_page(graded["root"], student))


def test_the_batch_checks_itself_and_summarises_every_failed_case(graded):
    assert graded["problems"] == []
    text = course.summary(list(graded["rows"].values()), 0)
    for case in CASES.values():
        row = graded["rows"][case.name]
        assert (f"{case.name}/{NAME}: {case.status}: {row['reason']}" in text) == (case.status != "ok")


def test_no_feedback_shows_hidden_tests_or_their_tracebacks(graded):
    hidden = course.secret_lines(graded["root"], NAME, kinds=("HIDDEN TESTS",))
    pages = list((graded["root"] / "autograder" / "feedback").glob(f"*/{NAME}/*.html"))
    assert len(pages) == len(CASES)
    for page in pages:
        text = course.page_text(page)
        assert not [line for line in hidden if line in text], page
        assert "checks.py" not in text and "HIDDEN" not in text, page  # no frame of a failed check


def test_student_code_changed_nothing_outside_its_folder(graded):
    root, work = graded["root"], graded["work"]
    submitted = root / "autograder" / "submitted" / "reference" / NAME / f"{NAME}.ipynb"
    assert submitted.read_bytes() == (work / "zoo" / "reference" / f"{NAME}.ipynb").read_bytes()
    assert (root / "solutions" / NAME / "sanity.pt").read_bytes() == (ROOT / "solutions" / NAME / "sanity.pt").read_bytes()
    assert not (root / "autograder" / "gradebook.db").read_bytes().endswith(b"zoo")
    assert course.scores_of(root, NAME, "reference")["test_trajectory"] == 2
    assert not (root / "ZOO_WAS_HERE").exists() and not (ROOT / "ZOO_WAS_HERE").exists()


def grade_command(root: Path) -> list[str]:
    return [sys.executable, str(ROOT / "autograder" / "course.py"), "--course", str(root), "autograde", NAME,
            "--require-sandbox", "--cell-timeout", str(zoo.CELL_TIMEOUT)]


def running_in(root: Path) -> list[str]:
    """Command lines of the processes that still work on this course (nbgrader's kernel names its folder)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(root) in text and "pytest" not in text:
            found.append(text)
    return found


def test_a_killed_grading_run_resumes_without_regrading(graded):
    root = graded["root"]
    results = root / "autograder" / "results"
    for student in ("reference", "renamed"):  # graded in this order, after every other case
        (results / student / f"{NAME}.json").unlink()
    finished = {p: p.stat().st_mtime_ns for p in results.glob("*/*.json")}
    with subprocess.Popen(grade_command(root), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as run:
        for line in run.stdout:
            if line.startswith("reference ") and "graded before" not in line:
                run.send_signal(signal.SIGKILL)
                break
        run.wait()
    deadline = time.monotonic() + 15
    while running_in(root) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert running_in(root) == [], "the killed grader left processes behind"
    assert (results / "reference" / f"{NAME}.json").is_file()
    assert not (results / "renamed" / f"{NAME}.json").is_file()

    rerun = subprocess.run(grade_command(root), capture_output=True, text=True, timeout=300)
    lines = [line for line in rerun.stdout.splitlines() if line.split() and line.split()[0] in CASES]
    regraded = [line.split()[0] for line in lines if "graded before" not in line]
    assert regraded == ["renamed"], rerun.stdout
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in finished.items())
    assert course.graded_before(root, NAME, "renamed")["score"] == 5


def test_the_export_flags_the_near_copy_for_the_instructor(graded, tmp_path):
    """A copy of the library's source keeps its points; the CSV's grading_notes tell the instructor."""
    import csv

    course.export(tmp_path / "grades.csv", graded["root"])
    with open(tmp_path / "grades.csv", newline="", encoding="utf-8") as f:
        rows = {row["student_id"]: row for row in csv.DictReader(f) if row["assignment"] == NAME}
    assert float(rows["near_copy"]["score"]) == 5
    assert "like the library's minbert_lib.optim.AdamW" in rows["near_copy"]["grading_notes"]
    assert rows["reference"]["grading_notes"] == ""
