"""The instructor's commands for the minBERT course, over nbgrader.

    python autograder/course.py release [ASSIGNMENT ...]   build solutions/*.ipynb, regenerate notebooks/
    python autograder/course.py lint                        check the nbgrader metadata of the sources
    python autograder/course.py validate NOTEBOOK ...       run a notebook's tests; exit 1 when one fails
    python autograder/course.py collect FOLDER_OR_ZIP       copy submissions into autograder/submitted/
    python autograder/course.py autograde [ASSIGNMENT ...]  grade the whole class, one submission at a time
    python autograder/course.py feedback [ASSIGNMENT ...]   HTML feedback without hidden tests
    python autograder/course.py export [--to FILE]          grades as CSV
    python autograder/course.py demo                        autograde the solutions and the release, in a temp copy

Each notebook is written as a jupytext percent-format source, `solutions/<a>/<a>.pct.py`,
whose cell headers carry a short nbgrader role that `build` expands:

    # %% nbgrader="solution" grade_id="sdpa"            code the student writes (### BEGIN/END SOLUTION)
    # %% nbgrader="tests" grade_id="test_sdpa" points=2 locked tests, may hold ### BEGIN HIDDEN TESTS
    # %% [markdown] nbgrader="written" grade_id="q1" points=2   a manually graded written answer
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AUTOGRADER = Path(__file__).resolve().parent
SOURCE_SUFFIX = ".pct.py"
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ROLES = {
    "solution": {"grade": False, "solution": True, "locked": False},
    "tests": {"grade": True, "solution": False, "locked": True},
    "written": {"grade": True, "solution": True, "locked": False},
}


class CourseError(Exception):
    """A command cannot go on; the message says why in one line."""


# --- paths -----------------------------------------------------------------------------------

def assignments(root: Path = ROOT) -> list[str]:
    """Every assignment that has a percent-format source, in course order."""
    return sorted(p.parent.name for p in (root / "solutions").glob(f"*/*{SOURCE_SUFFIX}"))


def source_file(assignment: str, root: Path = ROOT) -> Path:
    return root / "solutions" / assignment / f"{assignment}{SOURCE_SUFFIX}"


def notebook_file(folder: str, assignment: str, root: Path = ROOT) -> Path:
    return root / folder / assignment / f"{assignment}.ipynb"


def nbgrader(*args: str, root: Path = ROOT, check: bool = True, timeout: float | None = None):
    """Run `nbgrader ARGS` from the autograder folder, with the environment's bin/ on PATH."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run([str(bin_dir / "nbgrader"), *args], cwd=root / "autograder", env=env,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise CourseError(f"nbgrader {' '.join(args)} failed: {last_error_line(result.stderr)}")
    return result


def last_error_line(log: str) -> str:
    """The most telling line of an nbgrader log: its last error, else its last line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"\[ERROR\]|Error\b|Exception\b|Timeout", line)]
    return (errors or lines or ["no output"])[-1]


# --- build: percent-format source -> nbgrader source notebook ----------------------------------

def build_notebook(source: Path):
    """Read a percent-format source and give its cells nbgrader metadata and stable ids."""
    import jupytext

    nb = jupytext.read(source)
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    for index, cell in enumerate(nb.cells):
        cell.metadata.pop("lines_to_next_cell", None)
        role = cell.metadata.pop("nbgrader", None)
        grade_id = cell.metadata.pop("grade_id", None)
        points = cell.metadata.pop("points", None)
        cell.id = grade_id or f"cell-{index}"
        if role is None:
            continue
        if role not in ROLES:
            raise CourseError(f"{source}: cell {index} has nbgrader={role!r}; use one of {sorted(ROLES)}")
        if not grade_id:
            raise CourseError(f"{source}: cell {index} ({role}) needs a grade_id")
        meta = {**ROLES[role], "grade_id": grade_id, "schema_version": 3, "task": False}
        if meta["grade"]:
            meta["points"] = points
        cell.metadata["nbgrader"] = meta
    return nb


def execute_in_place(nb, folder: Path) -> None:
    """Run a notebook in its folder, so that the solutions show their outputs and plots."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(folder)}}).execute()
    except CellExecutionError as err:
        raise CourseError(f"{folder.name}: the solution notebook fails: {err.ename}: {err.evalue}") from None


def build(names: list[str], root: Path = ROOT, execute: bool = True) -> None:
    """Write solutions/<a>/<a>.ipynb from each percent-format source."""
    import nbformat

    for name in names:
        nb = build_notebook(source_file(name, root))
        if execute:
            execute_in_place(nb, source_file(name, root).parent)
            nb.metadata.pop("language_info", None)  # names the Python version of whoever ran it
        nbformat.write(nb, notebook_file("solutions", name, root))


def release(names: list[str], root: Path = ROOT, execute: bool = True) -> None:
    """Build the source notebooks, then let nbgrader write the student release into notebooks/."""
    build(names, root, execute)
    for problem in lint(root, names):
        raise CourseError(problem)
    for name in names:
        nbgrader("generate_assignment", name, "--force", root=root)
        leaks = release_leaks(root, name)
        if leaks:
            raise CourseError(f"notebooks/{name}: {leaks[0]}")
        print(f"released notebooks/{name}/")


# --- lint ------------------------------------------------------------------------------------

def lint(root: Path = ROOT, names: list[str] | None = None) -> list[str]:
    """Problems in the nbgrader metadata of the source notebooks (an empty list when none)."""
    problems = []
    for name in names or assignments(root):
        nb = build_notebook(source_file(name, root))
        where = f"solutions/{name}"
        seen, written, hidden = set(), 0, 0
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            text = cell.source
            if meta is None:
                if "BEGIN SOLUTION" in text or "BEGIN HIDDEN TESTS" in text:
                    problems.append(f"{where}: cell {cell.id} has solution or hidden-test markers but no nbgrader role")
                continue
            gid = meta["grade_id"]
            if gid in seen:
                problems.append(f"{where}: grade_id {gid!r} is used twice")
            seen.add(gid)
            if meta["grade"] and not (isinstance(meta.get("points"), (int, float)) and meta["points"] > 0):
                problems.append(f"{where}: {gid} is graded but has no positive points")
            begins = text.count("### BEGIN SOLUTION")
            if meta["solution"] and cell.cell_type == "code" and not begins or begins != text.count("### END SOLUTION"):
                problems.append(f"{where}: solution cell {gid} needs ### BEGIN SOLUTION / ### END SOLUTION pairs")
            if meta["grade"] and cell.cell_type == "code":
                if not meta["locked"]:
                    problems.append(f"{where}: test cell {gid} must be locked")
                if "checks." not in text and "assert" not in text:
                    problems.append(f"{where}: test cell {gid} tests nothing (no checks.* call, no assert)")
                hidden += "### BEGIN HIDDEN TESTS" in text
            written += cell.cell_type == "markdown" and meta["grade"] and meta["solution"]
        if not written:
            problems.append(f"{where}: no manually graded written question")
        if not hidden:
            problems.append(f"{where}: no hidden tests")
    return problems


def region_lines(nb, begin: str, end: str) -> set[str]:
    """Lines found only inside `begin` ... `end` regions of a notebook, never outside them."""
    inside, outside = set(), set()
    for cell in nb.cells:
        in_region = False
        for line in cell.source.splitlines():
            text = line.strip()
            if begin in text or end in text:
                in_region = begin in text
            elif text:
                (inside if in_region else outside).add(text)
    return inside - outside


def secret_lines(root: Path, name: str, kinds=("SOLUTION", "HIDDEN TESTS")) -> set[str]:
    """The solution and/or hidden-test lines of an assignment's source notebook, with their markers."""
    import nbformat

    nb = nbformat.read(notebook_file("solutions", name, root), as_version=4)
    secrets = set().union(*(region_lines(nb, f"BEGIN {kind}", f"END {kind}") | {f"BEGIN {kind}"} for kind in kinds))
    if "SOLUTION" in kinds:  # a written answer's cell is its model answer, all of it
        secrets |= {line.strip() for cell in nb.cells if cell.cell_type == "markdown"
                    and cell.metadata.get("nbgrader", {}).get("solution") for line in cell.source.splitlines()
                    if line.strip()}
    return secrets


def leaks(text: str, secrets: set[str]) -> list[str]:
    lines = {line.strip() for line in text.splitlines()}
    return sorted(secret for secret in secrets if secret in lines or secret.startswith("BEGIN") and secret in text)


def release_leaks(root: Path, name: str) -> list[str]:
    """Solution code or hidden-test text found in a released assignment."""
    import nbformat

    release_dir = root / "notebooks" / name
    found = [f"{path.name} is a percent-format source" for path in release_dir.glob(f"*{SOURCE_SUFFIX}")]
    secrets = secret_lines(root, name)
    for path in release_dir.glob("*.ipynb"):
        text = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
        found += [f"{path.name} contains {line!r}" for line in leaks(text, secrets)]
    return found


# --- validate --------------------------------------------------------------------------------

def validate(paths: list[Path]) -> int:
    """Run each notebook's tests with nbgrader's validator; 1 when any test fails (nbgrader says 0)."""
    from nbgrader.validator import Validator
    from traitlets.config import Config

    config = Config()
    config.Execute.timeout = 120
    failures = 0
    for path in paths:
        results = Validator(config=config).validate(str(path))
        bad = results.get("failed", []) + results.get("changed", []) + results.get("type_changed", [])
        if bad:
            failures += 1
            print(f"FAILED {path}: {len(bad)} cell(s)")
            for cell in results.get("failed", []):
                error = re.sub(r"\x1b\[[0-9;]*m", "", cell["raw_error"]).strip().splitlines() or ["error"]
                print(f"    {cell['source'].splitlines()[0]}  ->  {error[-1]}")
            for kind in ("changed", "type_changed"):
                if results.get(kind):
                    print(f"    {len(results[kind])} test cell(s) were {kind.replace('_', ' ')}")
        else:
            print(f"passed {path}")
    return 1 if failures else 0


# --- collect ---------------------------------------------------------------------------------

def safe_zip_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The archive's entries, or a CourseError naming the first unsafe one."""
    for info in archive.infolist():
        name = info.filename
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in Path(name).parts \
                or ".." in name.split("\\"):
            raise CourseError(f"{archive.filename}: unsafe entry {name!r} (absolute path or ..): nothing was collected")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise CourseError(f"{archive.filename}: entry {name!r} is a symbolic link: nothing was collected")
    return archive.infolist()


def collect(source: Path, root: Path = ROOT, names: list[str] | None = None) -> list[str]:
    """Copy <student>/**/<assignment>.ipynb from a folder or zip into autograder/submitted/."""
    names = names or assignments(root)
    if zipfile.is_zipfile(source):
        staging = root / "autograder" / ".collect"
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(source) as archive:
            archive.extractall(staging, members=safe_zip_members(archive))
        try:
            return collect(staging, root, names)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if not source.is_dir():
        raise CourseError(f"{source}: not a folder or a zip file of submissions")
    collected = []
    for student_dir in sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))):
        student = student_dir.name
        if not STUDENT_ID.match(student):
            print(f"skipped {student_dir}: {student!r} is not a valid student id (letters, digits, _ . -)")
            continue
        for name in names:
            found = sorted(p for p in student_dir.rglob(f"{name}.ipynb") if ".ipynb_checkpoints" not in p.parts)
            if not found:
                continue
            target = notebook_file(f"autograder/submitted/{student}", name, root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(found[0], target)
            (target.parent / "timestamp.txt").write_text(time.strftime("%Y-%m-%d %H:%M:%S UTC\n", time.gmtime()))
            collected.append(f"{student}/{name}")
    print(f"collected {len(collected)} submission(s): {', '.join(collected) or 'none'}")
    return collected


# --- autograde -------------------------------------------------------------------------------

def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def grade_cells(nb, cell_type: str | None = None) -> dict[str, float]:
    """grade_id -> points of the graded cells (only code: autograded tests; markdown: written answers)."""
    return {grade_id(c): c.metadata.nbgrader.get("points", 0) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") and cell_type in (None, c.cell_type)}


def scores_of(root: Path, name: str, student: str) -> dict[str, float | None]:
    """grade_id -> score (auto or manual; None while ungraded) of one autograded submission."""
    from nbgrader.api import Gradebook

    db_url = "sqlite:///" + str(root / "autograder" / "gradebook.db")
    with Gradebook(db_url) as gradebook:
        notebook = gradebook.find_submission_notebook(name, name, student)
        return {grade.name: grade.score if (grade.auto_score is not None or grade.manual_score is not None)
                else None for grade in notebook.grades}


def autograde_one(root: Path, name: str, student: str, timeout: float) -> dict:
    """Autograde one submission; the failures a submission can cause come back with their reason."""
    import nbformat

    row = {"student": student, "assignment": name, "score": 0.0, "auto_max": 0.0, "status": "ok", "reason": ""}
    source = nbformat.read(notebook_file("solutions", name, root), as_version=4)
    tests = grade_cells(source, "code")
    row["auto_max"] = sum(tests.values())
    try:
        submitted = nbformat.read(notebook_file(f"autograder/submitted/{student}", name, root), as_version=4)
    except Exception as err:  # any unreadable file: grade it 0 and say why
        return {**row, "status": "failed", "reason": f"not a readable notebook ({type(err).__name__})"}
    deleted = sorted(set(grade_cells(source)) - set(grade_cells(submitted)))
    released = nbformat.read(notebook_file("notebooks", name, root), as_version=4)
    originals = {gid: {c.source for c in (source.cells + released.cells) if grade_id(c) == gid} for gid in tests}
    edited = sorted(grade_id(c) for c in submitted.cells  # as released, or with its hidden tests
                    if grade_id(c) in tests and c.source not in originals[grade_id(c)])
    try:
        result = nbgrader("autograde", name, "--student", student, "--create", "--force",
                          root=root, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**row, "status": "failed", "reason": f"autograding took over {timeout:.0f} s"}
    if "DeadKernelError" in result.stderr:
        return {**row, "status": "failed", "reason": "the kernel died while running the notebook "
                                                    "(it crashed Python or ran out of memory): graded 0"}
    if result.returncode != 0:
        return {**row, "status": "failed", "reason": last_error_line(result.stderr)}
    scores = scores_of(root, name, student)
    row["score"] = sum(scores.get(gid) or 0.0 for gid in tests)
    reasons = [f"grade cells deleted: {', '.join(deleted)} (0 points)"] if deleted else []
    if edited:
        reasons.append(f"test cells edited: {', '.join(edited)} (graded with the original tests)")
    if re.search(r"Timeout waiting|CellTimeoutError|timed out", result.stderr):
        reasons.append("a cell ran past the time limit and was interrupted")
    row["reason"] = "; ".join(reasons)
    return row


def autograde(names: list[str], root: Path = ROOT, students: list[str] | None = None,
              timeout: float = 600) -> list[dict]:
    """Grade every collected submission; print a table; one broken submission never stops the rest."""
    submitted = root / "autograder" / "submitted"
    if not students:
        students = sorted(p.name for p in submitted.iterdir() if p.is_dir()) if submitted.is_dir() else []
    rows = []
    for student in students:
        for name in names:
            if notebook_file(f"autograder/submitted/{student}", name, root).is_file():
                started = time.monotonic()
                try:
                    row = autograde_one(root, name, student, timeout)
                except Exception as err:  # whatever one submission does, the class goes on: record why
                    row = {"student": student, "assignment": name, "score": 0.0, "auto_max": 0.0,
                           "status": "failed", "reason": f"{type(err).__name__}: {err}"}
                row["seconds"] = round(time.monotonic() - started, 1)
                rows.append(row)
                print(format_row(row), flush=True)
    failed = [r for r in rows if r["status"] != "ok"]
    print(f"autograded {len(rows)} submission(s); {len(failed)} failed"
          + "".join(f"\n  {r['student']}/{r['assignment']}: {r['reason']}" for r in failed))
    return rows


def format_row(row: dict) -> str:
    note = f"  {row['status']}: {row['reason']}" if row["status"] != "ok" else (
        f"  note: {row['reason']}" if row["reason"] else "")
    return (f"{row['student']:<16} {row['assignment']:<14} {row['score']:5.1f} / {row['auto_max']:4.1f} "
            f"auto points  {row.get('seconds', 0):5.1f} s{note}")


# --- feedback and export -----------------------------------------------------------------------

def feedback(names: list[str], root: Path = ROOT) -> None:
    """HTML feedback for every autograded submission, then a check that nothing hidden leaked."""
    import html

    for name in names:
        nbgrader("generate_feedback", name, "--force", root=root)
        hidden = secret_lines(root, name, kinds=("HIDDEN TESTS",))
        for page in (root / "autograder" / "feedback").glob(f"*/{name}/*.html"):
            text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))
            shown = leaks(text, hidden)
            if shown:
                raise CourseError(f"{page}: the feedback shows the hidden test line {shown[0]!r}")
    print(f"feedback in {root / 'autograder' / 'feedback'}")


def export(to: Path, root: Path = ROOT) -> None:
    nbgrader("export", "--to", str(to.resolve()), root=root)
    print(f"grades written to {to}")


# --- demo ----------------------------------------------------------------------------------------

def copy_course(target: Path, root: Path = ROOT) -> Path:
    """Copy the course's sources and nbgrader configuration into `target`, without instructor data."""
    for name in assignments(root):
        shutil.copytree(root / "solutions" / name, target / "solutions" / name,
                        ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__"))
    shutil.copytree(root / "autograder", target / "autograder", ignore=shutil.ignore_patterns(
        "submitted", "autograded", "feedback", "gradebook.db", "grades.csv", ".collect", "__pycache__"))
    return target


def demo() -> int:
    """Release a copy of the course and autograde two students: the solutions and the untouched release."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        root = copy_course(Path(tmp))
        names = assignments(root)
        release(names, root, execute=False)
        for student, folder in (("reference", "solutions"), ("untouched", "notebooks")):
            for name in names:
                target = root / "incoming" / student / f"{name}.ipynb"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(notebook_file(folder, name, root), target)
        collect(root / "incoming", root)
        rows = autograde(names, root)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


# --- command line ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="course.py", description="The minBERT course's instructor commands.")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in ("release", "autograde", "feedback"):
        p = sub.add_parser(command)
        p.add_argument("assignments", nargs="*", help="default: every assignment")
    sub.choices["release"].add_argument("--no-execute", action="store_true",
                                        help="do not run the solutions (their outputs stay empty)")
    sub.choices["autograde"].add_argument("--student", action="append", help="only these students")
    sub.add_parser("lint")
    sub.add_parser("demo", help="release a temp copy and autograde the solutions and the untouched release")
    sub.add_parser("validate").add_argument("notebooks", nargs="+", type=Path)
    sub.add_parser("collect").add_argument("source", type=Path, help="a folder or zip, one folder per student")
    sub.add_parser("export").add_argument("--to", type=Path, default=AUTOGRADER / "grades.csv")
    args = parser.parse_args(argv)
    names = getattr(args, "assignments", None) or assignments()
    try:
        if args.command == "release":
            release(names, execute=not args.no_execute)
        elif args.command == "demo":
            return demo()
        elif args.command == "lint":
            problems = lint()
            print("\n".join(problems) or f"lint: {len(assignments())} assignment(s) OK")
            return 1 if problems else 0
        elif args.command == "validate":
            return validate(args.notebooks)
        elif args.command == "collect":
            collect(args.source)
        elif args.command == "autograde":
            rows = autograde(names, students=args.student)
            return 1 if any(r["status"] != "ok" for r in rows) else 0
        elif args.command == "feedback":
            feedback(names)
        elif args.command == "export":
            export(args.to)
    except CourseError as err:
        print(f"course.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
