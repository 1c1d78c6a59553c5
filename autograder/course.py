"""The instructor's commands for the minBERT course, over nbgrader: `minbert-course COMMAND`
(installed with the kit; `python -m autograder.course` and `python autograder/course.py` work too).

    python autograder/course.py release [ASSIGNMENT ...]   build solutions/*.ipynb, regenerate notebooks/
    python autograder/course.py lint                        check the nbgrader metadata of the sources
    python autograder/course.py validate NOTEBOOK ...       run a notebook's tests; exit 1 when one fails
    python autograder/course.py collect FOLDER_OR_ZIP [A]   copy submissions into autograder/submitted/
    python autograder/course.py autograde [ASSIGNMENT ...]  grade the class, each submission sandboxed; resumable
    python autograder/course.py feedback [ASSIGNMENT ...]   HTML feedback without hidden tests
    python autograder/course.py export [--to FILE]          grades as CSV
    python autograder/course.py demo                        autograde the solutions and the release, in a temp copy

`--course DIR` (before the command) works on another copy of the course.

Each notebook is written as a jupytext percent-format source, `solutions/<a>/<a>.pct.py`,
whose cell headers carry a short nbgrader role that `build` expands:

    # %% nbgrader="solution" grade_id="sdpa"            code the student writes (### BEGIN/END SOLUTION)
    # %% nbgrader="tests" grade_id="test_sdpa" points=2 locked tests, may hold ### BEGIN HIDDEN TESTS
    # %% [markdown] nbgrader="written" grade_id="q1" points=2   a manually graded written answer
"""
from __future__ import annotations

import argparse
import concurrent.futures
import copy
import dataclasses
import hashlib
import html
import json
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zipfile
from pathlib import Path

from autograder import gradebook
from autograder.warm import die_with_parent, run_grader

ROOT = Path(__file__).resolve().parents[1]
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


def check_course(root: Path) -> None:
    """A CourseError unless `root` holds a course: solutions/ and autograder/nbgrader_config.py."""
    if not (root / "solutions").is_dir() or not (root / "autograder" / "nbgrader_config.py").is_file():
        raise CourseError(f"{root}: not a course folder (no solutions/ or autograder/nbgrader_config.py); "
                          "pass --course with the folder that holds them")


def check_assignments(names: list[str], root: Path) -> None:
    """A CourseError naming the first of `names` that is not an assignment of the course."""
    known = assignments(root)
    for name in names:
        if name not in known:
            raise CourseError(f"unknown assignment {name!r}: the course has {', '.join(known) or 'none'}")


def source_file(assignment: str, root: Path = ROOT) -> Path:
    return root / "solutions" / assignment / f"{assignment}{SOURCE_SUFFIX}"


def notebook_file(folder: str, assignment: str, root: Path = ROOT) -> Path:
    return root / folder / assignment / f"{assignment}.ipynb"


def nbgrader(*args: str, root: Path = ROOT, check: bool = True, timeout: float | None = None,
             env: dict[str, str] | None = None):
    """Run `nbgrader ARGS` from the autograder folder, with the environment's bin/ on PATH.

    nbgrader runs in its own session, without our terminal, and dies with this process; on a
    timeout its whole process group (kernel included) is killed and TimeoutExpired raised.
    """
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", **(env or {})}
    with subprocess.Popen([str(bin_dir / "nbgrader"), *args], cwd=root / "autograder", env=env, text=True,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          start_new_session=True, preexec_fn=die_with_parent) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
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
        NotebookClient(nb, timeout=1200, kernel_name="python3", record_timing=False,  # 06 trains minutes per cell
                       resources={"metadata": {"path": str(folder)}}).execute()
    except CellExecutionError as err:
        raise CourseError(f"{folder.name}: the solution notebook fails: {err.ename}: {err.evalue}") from None


def cell_contents(nb) -> list[tuple]:
    """What an author writes in a notebook: each cell's type, source and nbgrader role (not outputs)."""
    return [(c.cell_type, c.source.strip(), json.dumps(c.metadata.get("nbgrader", {}), sort_keys=True))
            for c in nb.cells]


def hand_edit(name: str, root: Path, built) -> str | None:
    """Why solutions/<a>/<a>.ipynb holds work its source lacks (edited after the .pct.py, e.g. with
    nbgrader's Create Assignment toolbar), or None."""
    import nbformat

    path, source = notebook_file("solutions", name, root), source_file(name, root)
    if not path.is_file() or path.stat().st_mtime <= source.stat().st_mtime:
        return None
    edited, fresh = cell_contents(nbformat.read(path, as_version=4)), cell_contents(built)
    if edited == fresh:
        return None
    first = next((i for i, (a, b) in enumerate(zip(edited, fresh)) if a != b), min(len(edited), len(fresh)))
    return (f"{path.relative_to(root)} was edited after its source {source.relative_to(root)} (cell {first} "
            f"differs), and release would overwrite it: the .pct.py is the source, so carry the change into "
            "it, or pass --force to drop the edit")


def build(names: list[str], root: Path = ROOT, execute: bool = True, force: bool = False) -> None:
    """Write solutions/<a>/<a>.ipynb from each percent-format source (never over a hand edit unless `force`)."""
    import nbformat

    for name in names:
        nb = build_notebook(source_file(name, root))
        edit = None if force else hand_edit(name, root, nb)
        if edit:
            raise CourseError(edit)
        if execute:
            execute_in_place(nb, source_file(name, root).parent)
            nb.metadata.pop("language_info", None)  # names the Python version of whoever ran it
        nbformat.write(nb, notebook_file("solutions", name, root))


def data_dir_for_kernels(root: Path) -> str:
    """The data folder as an absolute path, also put in $MINBERT_DATA_DIR for every kernel and runner.

    They start in other folders, where a relative MINBERT_DATA_DIR=../shared/data names nothing:
    04-06 then fail to read their data and the reference loses points.
    """
    data_dir = str(Path(os.environ.get("MINBERT_DATA_DIR") or root / "data").expanduser().absolute())
    if os.environ.get("MINBERT_DATA_DIR"):
        os.environ["MINBERT_DATA_DIR"] = data_dir
    return data_dir


def release(names: list[str], root: Path = ROOT, execute: bool = True, force: bool = False) -> None:
    """Build the source notebooks, then let nbgrader write the student release into notebooks/."""
    data_dir_for_kernels(root)
    build(names, root, execute, force)
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

    unreadable = [str(path) for path in paths if not (path.is_file() and path.suffix == ".ipynb")]
    if unreadable:
        raise CourseError(f"not a notebook file: {', '.join(unreadable)}; give .ipynb files, e.g. "
                          "notebooks/01_attention/01_attention.ipynb")
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


MAX_EXTRA_FILE = 20 * 2**20  # bytes: larger files beside a notebook are not collected


# Learning-management systems download all submissions of an assignment as one flat zip, the
# student in each file name (the original file name last):
#   Canvas  alice_12345_678_01_attention.ipynb         login _ user id _ submission id _ file
#           alice_late_12345_678_01_attention-1.ipynb  "_late" when late; "-1", "-2" ... on a resubmission
#   Moodle  Alice Smith_1234_assignsubmission_file_01_attention.ipynb   full name _ participant id _ ...
#           (or, with "download submissions in folders", a folder "Alice Smith_1234_assignsubmission_file_")
CANVAS_NAME = re.compile(r"^(?P<student>[A-Za-z0-9]+)(?P<late>_late)?_(?P<uid>\d+)_\d+_(?P<file>.+)$")
MOODLE_NAME = re.compile(r"^(?P<student>.+?)_(?P<uid>\d+)_assign(?:submission|feedback)_[a-z]+_(?P<file>.*)$")
RESUBMISSION = re.compile(r"^(?P<stem>.+)-(?P<n>\d+)(?P<suffix>\.[^.]+)$")


def lms_student(name: str) -> tuple[str, str, str, str] | None:
    """(student id, user id, original file name, system) from an LMS download's file or folder name."""
    for system, pattern in (("Moodle", MOODLE_NAME), ("Canvas", CANVAS_NAME)):
        match = pattern.match(name)
        if match:
            student = re.sub(r"[^a-z0-9]+", "_", match["student"].lower()).strip("_") or "student"
            return student, match["uid"], match["file"], system
    return None


def unflatten_lms(source: Path, staging: Path) -> Path:
    """A Canvas or Moodle download as one folder per student (in `staging`); any other layout as it is.

    Files and folders are copied, never linked; links and names that fit neither pattern are
    skipped with a message. Two users whose names give the same id get their user id appended.
    Of a Canvas file resubmitted as `-1`, `-2` ..., the highest number is the student's last upload.
    """
    entries = sorted(p for p in source.iterdir() if not p.name.startswith((".", "__")))
    parsed = {entry: lms_student(entry.name) for entry in entries}
    if not any(info and not entry.is_symlink() and (entry.is_file() or info[3] == "Moodle")
               for entry, info in parsed.items()):
        return source
    uids: dict[str, set[str]] = {}
    for info in filter(None, parsed.values()):
        uids.setdefault(info[0], set()).add(info[1])
    latest: dict[tuple[str, str], int] = {}
    for entry, info in parsed.items():
        if entry.is_symlink() or info is None:
            print(f"skipped {entry.name}: " + ("a symbolic link" if entry.is_symlink() else
                                             "not named as in a Canvas or Moodle download"))
            continue
        student, uid, original, system = info
        if len(uids[student]) > 1:
            student = f"{student}_{uid}"
        folder = staging / student
        folder.mkdir(parents=True, exist_ok=True)
        if entry.is_dir():  # Moodle's "submissions in folders"
            shutil.copytree(entry, folder, dirs_exist_ok=True, symlinks=True)
            continue
        resubmitted = RESUBMISSION.match(original) if system == "Canvas" else None
        number = int(resubmitted["n"]) if resubmitted else 0
        if resubmitted:
            original = resubmitted["stem"] + resubmitted["suffix"]
        if number < latest.get((student, original), -1):
            continue
        latest[(student, original)] = number
        shutil.copyfile(entry, folder / original)
        late = system == "Canvas" and CANVAS_NAME.match(entry.name)["late"]
        notes = ([f"as {student}"] if info[0] != student else []) + ([f"resubmission {number}"] if number else []) \
            + (["late"] if late else [])
        if notes:
            print(f"{system}: {entry.name} ({', '.join(notes)})")
    return staging


def collect(source: Path, root: Path = ROOT, names: list[str] | None = None) -> list[str]:
    """Copy <student>/**/<assignment>.ipynb and the files beside it into autograder/submitted/.

    `source` is a folder or zip with one folder per student, or a Canvas or Moodle download
    (a flat zip or folder of files named after the student, see `unflatten_lms`).
    A notebook renamed by a download or a copy (`03_adamw (1).ipynb`, `03_adamw-Copy1.ipynb`)
    is taken when the exact name is missing. When one assignment is collected, a student
    folder without its notebook is recorded as a missing submission (graded 0). Symbolic
    links are never followed. Each submission gets the `timestamp.txt` and
    `submission_secret.txt` that nbgrader's own exchange writes (`nbgrader release_feedback`
    reads both).
    """
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
    with tempfile.TemporaryDirectory(prefix="minbert-collect-") as staging:
        return collect_folders(unflatten_lms(source, Path(staging)), root, names)


def collect_folders(source: Path, root: Path, names: list[str]) -> list[str]:
    """`collect` of a folder holding one folder per student."""
    collected = []
    for student_dir in sorted(p for p in source.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))):
        student = student_dir.name
        if student_dir.is_symlink():
            print(f"skipped {student_dir}: a symbolic link")
            continue
        if not STUDENT_ID.match(student):
            print(f"skipped {student_dir}: {student!r} is not a valid student id (letters, digits, _ . -)")
            continue
        found = {name: find_notebook(student_dir, name) for name in names}
        if not any(found.values()):
            if len(names) > 1:
                print(f"skipped {student_dir}: no notebook of {', '.join(names)}")
                continue
            print(f"{student}: no {names[0]}.ipynb in the submission: recorded as missing")
        for name, notebook in found.items():
            if notebook is None and len(names) > 1:
                continue
            target = root / "autograder" / "submitted" / student / name
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            if notebook is not None:
                others = [p.name for p in notebook.parent.glob("*.ipynb") if p != notebook
                          and p.name.lower().startswith(name.lower())]
                if notebook.name != f"{name}.ipynb" or others:
                    print(f"{student}: collected {notebook.name} as {name}.ipynb"
                          + (f" (the copy with the most work; not {', '.join(sorted(others))})" if others else ""))
                shutil.copyfile(notebook, target / f"{name}.ipynb")
                for note in normalize_submission(target / f"{name}.ipynb", notebook_file("notebooks", name, root)):
                    print(f"{student}/{name}: {note}")
                for extra in sorted(notebook.parent.iterdir()):
                    if extra.suffix != ".ipynb" and extra.is_file() and not extra.is_symlink() \
                            and extra.stat().st_size <= MAX_EXTRA_FILE:
                        shutil.copyfile(extra, target / extra.name)
            (target / "timestamp.txt").write_text(time.strftime("%Y-%m-%d %H:%M:%S UTC\n", time.gmtime()))
            if not (target / "submission_secret.txt").is_file():  # as nbgrader's exchange writes it
                (target / "submission_secret.txt").write_text(secrets.token_hex(64))
            collected.append(f"{student}/{name}")
    print(f"collected {len(collected)} submission(s): {', '.join(collected) or 'none'}")
    return collected


GRADE_KEYS = ("grade_id", "grade", "solution", "locked", "points", "task")  # what decides how a cell is graded


def normalize_submission(path: Path, release_path: Path) -> list[str]:
    """Give a collected notebook the release's grade cells, so that nbgrader can run it whatever was edited.

    Each grade or solution cell keeps the student's text but gets the release's nbgrader
    metadata and cell type (points and grade_id edited, a cell turned into Markdown); when one
    grade_id appears twice (a cell copied in JupyterLab), the copy that counts keeps it (the
    last of a solution or written answer, the first of a test) and the other solution copies
    become ordinary cells (test copies are removed); a grade_id the release does not have is
    removed. Returns what was changed.
    """
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
        release = nbformat.read(release_path, as_version=4)
    except Exception:  # not a notebook, or no release: autograde says so
        return []
    released = {grade_id(c): c for c in release.cells if grade_id(c)}
    cells_by_id: dict[str, list] = {}
    for cell in nb.cells:
        if grade_id(cell):
            cells_by_id.setdefault(grade_id(cell), []).append(cell)
    notes = []
    for gid, cells in cells_by_id.items():
        original = released.get(gid)
        if original is None:
            notes.append(f"grade_id {gid!r} is not in the release: its cell is graded as an ordinary cell")
            for cell in cells:  # a test the release does not have is the student's (or a copy): not run
                if cell.metadata.nbgrader.get("grade") and not cell.metadata.nbgrader.get("solution"):
                    nb.cells.remove(cell)
        is_test = original is not None and original.metadata.nbgrader.get("grade") and original.cell_type == "code" \
            and not original.metadata.nbgrader.get("solution")
        keep = None if original is None else (cells[0] if is_test else cells[-1])
        if len(cells) > 1 and original is not None:
            notes.append(f"cell {gid!r} appears {len(cells)} times: the {'first' if is_test else 'last'} counts")
        for cell in cells:
            if cell is not keep and is_test:  # a copied test adds nothing: the release's tests are graded
                nb.cells.remove(cell)
                continue
            if cell is not keep:
                cell.metadata.pop("nbgrader", None)
                continue
            theirs = {key: cell.metadata.get("nbgrader", {}).get(key) for key in GRADE_KEYS}
            if theirs != {key: original.metadata.nbgrader.get(key) for key in GRADE_KEYS} \
                    or cell.cell_type != original.cell_type:
                notes.append(f"cell {gid!r}: the release's nbgrader metadata and cell type restored")
                if cell.cell_type != original.cell_type:
                    cell = _retype(nb, cell, original.cell_type)
                cell.metadata["nbgrader"] = copy.deepcopy(original.metadata.nbgrader)
    if notes:
        nbformat.write(nb, path)
    return notes


def _retype(nb, cell, cell_type: str):
    """Replace `cell` in `nb` by a cell of `cell_type` with the same text, id and metadata."""
    import nbformat

    new = (nbformat.v4.new_code_cell if cell_type == "code" else nbformat.v4.new_markdown_cell)(cell.source)
    new.metadata = cell.metadata
    if "id" in cell:
        new["id"] = cell["id"]
    nb.cells[nb.cells.index(cell)] = new
    return new


def find_notebook(student_dir: Path, name: str) -> Path | None:
    """The student's notebook of an assignment, never a link.

    Any file named like the assignment counts, whatever its case or suffix (`03_AdamW.ipynb`,
    `03_adamw (1).ipynb`, `03_adamw-final.ipynb`). With several, the one with the most solution
    cells written (not left as released) wins, then the exact name: an untouched copy beside the
    student's work is never the one graded.
    """
    notebooks = sorted(p for p in student_dir.rglob("*.ipynb")  # rglob enters no linked folder
                       if ".ipynb_checkpoints" not in p.parts and p.is_file() and not p.is_symlink()
                       and p.name.lower().startswith(name.lower()))
    if len(notebooks) <= 1:
        return (notebooks or [None])[0]
    return max(notebooks, key=lambda p: (solutions_written(p), p.name == f"{name}.ipynb", -len(p.name)))


def solutions_written(path: Path) -> int:
    """How many solution cells of a notebook no longer raise NotImplementedError (-1: not a notebook)."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return sum(1 for c in cells if c.get("metadata", {}).get("nbgrader", {}).get("solution")
                   and "NotImplementedError" not in "".join(c.get("source", "")))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return -1


# --- autograde -------------------------------------------------------------------------------

def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def grade_cells(nb, cell_type: str | None = None) -> dict[str, float]:
    """grade_id -> points of the graded cells (only code: autograded tests; markdown: written answers)."""
    return {grade_id(c): c.metadata.nbgrader.get("points", 0) for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade") and cell_type in (None, c.cell_type)}


def scores_of(root: Path, name: str, student: str) -> dict[str, float | None]:
    """grade_id -> score (auto or manual; None while ungraded) of one autograded submission."""
    return gradebook.scores(root, name, student)


# What no exercise needs, and what could dig a guarded answer key out of its wrapper.
PRYING = re.compile(r"__wrapped__|__closure__|cell_contents|__code__|__globals__|\bgc\.get_(referents|objects)")


def review(source, released, submitted) -> tuple[list[str], list[str]]:
    """What a grader should know about a readable submission: (notes, flags for a human to check)."""
    tests = grade_cells(source, "code")
    notes = []
    deleted = sorted(set(grade_cells(source)) - set(grade_cells(submitted)))
    if deleted:
        notes.append(f"grade cells deleted: {', '.join(deleted)} (graded with the release's cells)")
    solutions = {grade_id(c) for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")}
    missing = sorted(solutions - {grade_id(c) for c in submitted.cells} - set(deleted))
    if missing:
        notes.append(f"solution cells deleted: {', '.join(missing)}")
    originals = {gid: {c.source for c in (source.cells + released.cells) if grade_id(c) == gid} for gid in tests}
    edited = sorted(grade_id(c) for c in submitted.cells  # as released, or with its hidden tests
                    if grade_id(c) in tests and c.source not in originals[grade_id(c)])
    if edited:
        notes.append(f"test cells edited: {', '.join(edited)} (graded with the original tests)")
    given = {line.strip() for c in released.cells for line in c.source.splitlines()}
    own = sorted({line.strip() for c in submitted.cells if c.cell_type == "code" and grade_id(c) not in tests
                  for line in c.source.splitlines() if "minbert_lib" in line and line.strip() not in given})
    flags = [f"uses the reference library in its own code ({own[0]}): check by hand that the work "
             "is the student's"] if own else []
    prying = sorted({line.strip() for c in submitted.cells if c.cell_type == "code" and grade_id(c) not in tests
                     for line in c.source.splitlines() if PRYING.search(line) and line.strip() not in given})
    if prying:
        flags.append(f"reaches into functions' internals ({prying[0]}), a way to unwrap the guarded "
                     "answer keys: check by hand that the work is the student's")
    return notes, flags


def sandbox_args(tmp: Path, limits, bounds=None) -> tuple[list[str], dict[str, str]]:
    """nbgrader options and environment that run the kernel in the sandbox (see sandbox.py)."""
    from autograder import sandbox

    sandbox.write_kernelspec(tmp, limits, bounds.argument() if bounds else "")
    run = tmp / "run"  # the connection file and the kernel's Unix sockets
    run.mkdir()
    if sandbox.mount_runtime(run, limits):
        os.chmod(run, 0o755)
    args = [f"--Execute.kernel_name={sandbox.KERNEL_NAME}", "--KernelManager.transport=ipc",
            f"--KernelManager.ip={run / 'kernel'}", f"--KernelManager.connection_file={run / 'kernel.json'}"]
    return args, {"JUPYTER_PATH": os.pathsep.join(filter(None, [str(tmp), os.environ.get("JUPYTER_PATH")]))}


def autograde_one(root: Path, name: str, student: str, timeout: float, limits=None,
                  cell_timeout: int | None = None, threads: int | None = None) -> dict:
    """Autograde one submission (in the sandbox when `limits` are given); failures come back with their reason.

    Two runs, at the same time: nbgrader runs the notebook in its kernel, for the outputs, the
    plots and the written answers the instructor reads; and the grade is decided outside that
    kernel (`minbert_lib.grading.grader`): the student's solution cells run in a fresh sandboxed
    process and the course's tests run in the grader's own, so nothing a cell does to its
    kernel changes the grade. The outside grade replaces nbgrader's test scores. The kernel and
    the runner share the submission's bounds (`split_limits`) and its `threads`.

    Nothing here writes the course's gradebook: nbgrader records into a private copy, and the
    row's "gradebook" entry carries what `gradebook.record` then writes (see `autograde`), so
    many of these can run at once, on this machine or on others.
    """
    import nbformat

    row = {"student": student, "assignment": name, "score": 0.0, "auto_max": 0.0, "status": "ok", "reason": "",
           "sandboxed": limits is not None}
    # The runner trains for the tests; the kernel only previews (see notebook.training_budget)
    runner_threads = threads or grading_threads()
    kernel_threads = max(1, runner_threads // 2)
    source = nbformat.read(notebook_file("solutions", name, root), as_version=4)
    tests = grade_cells(source, "code")
    row["auto_max"] = sum(tests.values())
    path = notebook_file(f"autograder/submitted/{student}", name, root)
    if not path.is_file():
        return failed(root, row, f"no {name}.ipynb in the submission")
    try:
        submitted = nbformat.read(path, as_version=4)
        notes, flags = review(source, nbformat.read(notebook_file("notebooks", name, root), as_version=4),
                              submitted)
    except Exception as err:  # any unreadable file: grade it 0 and say why
        return failed(root, row, f"not a readable notebook ({type(err).__name__})")
    kernel_limits, runner_limits = split_limits(limits, student, name)
    kernel_bounds = submission_bounds(kernel_limits, student, f"{name}-kernel")
    runner_bounds = submission_bounds(runner_limits, student, f"{name}-runner")
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as beside:
            outside = beside.submit(grade_outside, root, name, student, runner_limits, cell_timeout,
                                    runner_bounds, runner_threads)
            result, kernel_note, recorded = run_notebook(root, name, student, timeout, kernel_limits,
                                                         cell_timeout, kernel_threads, kernel_bounds)
            grading = outside.result()
    finally:
        for bounds in (kernel_bounds, runner_bounds):
            if bounds:
                bounds.close()
    if result is not None and "before replying to kernel_info" in result.stderr:  # the grader's problem
        return {**row, "status": "error", "reason": f"the kernel did not start: {last_error_line(result.stderr)}"}
    if result is not None and ("DeadKernelError" in result.stderr or "Kernel died" in result.stderr):
        kernel_note = ("the kernel died while running the notebook (it crashed Python, ran out of memory "
                       "or CPU time)")
    elif result is not None and result.returncode != 0:
        kernel_note = f"nbgrader could not run the notebook: {last_error_line(result.stderr)}"
    elif result is not None and re.search(r"Timeout waiting|CellTimeoutError|timed out", result.stderr):
        notes.append("a cell ran past the time limit and was interrupted")
    if kernel_note:
        notes.insert(0, kernel_note + "; the tests were still run on your solution cells")
        shutil.rmtree(root / "autograder" / "autograded" / student / name, ignore_errors=True)
    annotate_autograded(root, name, student, grading)
    row["gradebook"] = {"recorded": recorded, "outside": {t["grade_id"]: t["points"] for t in grading["tests"]}}
    row["score"] = sum(t["points"] for t in grading["tests"])
    failures = [f"{t['grade_id']}: {t['message']}" for t in grading["tests"] if t["message"]]
    row["tests"] = {t["grade_id"]: t["points"] for t in grading["tests"]}
    flags += grading.get("copies", [])
    row["reason"] = "; ".join(notes + grading["notes"] + flags)
    row["failures"] = failures
    answer_key = any("reference implementation" in f for f in failures)
    row["status"] = "flagged" if flags or answer_key or kernel_note else "ok"
    return row


def split_limits(limits, student: str, name: str):
    """The sandbox limits of a submission's kernel and of its runner, which run at the same time:
    half the submission's memory each, and each its own user, so that a fork bomb in one (the
    process limit counts one user's processes) cannot starve the other. (None, None) unsandboxed."""
    if limits is None:
        return None, None
    from autograder import sandbox

    half, uid = limits.submission_memory_mib // 2, sandbox.job_uid(student, name)
    return (dataclasses.replace(limits, submission_memory_mib=half, uid=uid),
            dataclasses.replace(limits, submission_memory_mib=half, uid=uid + 1))


def run_notebook(root: Path, name: str, student: str, timeout: float, limits, cell_timeout: int | None,
                 threads: int, bounds=None) -> tuple:
    """nbgrader's run of the notebook in the sandbox's kernel, recorded in a private gradebook:
    (nbgrader's CompletedProcess or None, why the run failed or None, what it recorded)."""
    from autograder.kit_only import KIT_ENV
    from minbert_lib.notebook import GRADED_OUTSIDE_ENV, RUNS_DIR_ENV

    args = ["autograde", name, "--student", student, "--create", "--force"]
    if cell_timeout:
        args.append(f"--Execute.timeout={cell_timeout}")
    kernel_note = None
    with tempfile.TemporaryDirectory(prefix="minbert-grade-") as tmp:
        private_db = gradebook.private_copy(root, Path(tmp) / "gradebook.db")
        extra, env = sandbox_args(Path(tmp), limits, bounds) if limits else ([], {})
        env["OMP_NUM_THREADS"] = str(threads)
        env[KIT_ENV] = "1"  # nbgrader_config.py refuses autograde without it
        env[GRADED_OUTSIDE_ENV] = "1"  # 04-06 train in the "preview" budget: the runner trains for the tests
        # 06 trains rows into run folders: the sandbox's own /tmp, or this job's folder without a sandbox
        env[RUNS_DIR_ENV] = "/tmp/minbert-runs" if limits else str(Path(tmp) / "runs")
        try:
            result = nbgrader(*args, *extra, f"--CourseDirectory.db_url={private_db}", root=root, check=False,
                              timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            result, kernel_note = None, f"running the notebook took over {timeout:.0f} s and was stopped"
        finally:
            if limits:
                from autograder import sandbox

                sandbox.unmount_runtime(Path(tmp) / "run")
        return result, kernel_note, gradebook.entries(private_db, name, student)


def submission_bounds(limits, student: str, name: str):
    """The cgroup that bounds everything one submission runs (None without a sandbox)."""
    if limits is None:
        return None
    from autograder import sandbox

    return sandbox.SubmissionBounds(f"{os.getpid()}-{student}-{name}", limits)


def runner_spec(tmp: Path, limits, root: Path, bounds=None, threads: int | None = None) -> dict:
    """How the grader starts the student's process: sandboxed like the kernel, with the grading budget."""
    from autograder import sandbox

    workdir = tmp / "work"
    workdir.mkdir()
    # Threads that wait sleep instead of spinning: a busy machine then adds no CPU time to a cell.
    env = {"NBGRADER_EXECUTION": "autograde", "MPLBACKEND": "Agg", "OMP_WAIT_POLICY": "PASSIVE"}
    data_dir = env["MINBERT_DATA_DIR"] = data_dir_for_kernels(root)
    runner = [sys.executable, "-m", "minbert_lib.grading.runner"]
    if limits is None:
        command = runner
        env = {**{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}, **env}
    else:
        # The runner talks over its pipes: it gets no host folder to write (a kernel gets its runtime folder).
        command = sandbox.command(workdir, None, runner, limits, extra_env=env, readonly=[Path(data_dir)])
        if bounds is not None and bounds.paths:
            command = [sys.executable, sandbox.__file__, "exec", bounds.argument(), "--", *command]
    return {"command": command, "env": env, "cwd": str(workdir), "threads": threads or grading_threads()}


def grading_threads(jobs: int = 1) -> int:
    """Threads for student code when `jobs` submissions grade at once: MINBERT_GRADING_THREADS, else
    an equal share of this machine's cores, at most 2."""
    return int(os.environ.get("MINBERT_GRADING_THREADS") or max(1, min(2, (os.cpu_count() or 1) // jobs)))


def grader_argv(root: Path, name: str, submission: Path, out: Path, runner_json: Path,
                cell_timeout: int | None = None) -> list[str]:
    """The arguments of `python -m minbert_lib.grading.grader` for one submitted notebook."""
    argv = [str(notebook_file("solutions", name, root)), str(notebook_file("notebooks", name, root)),
            str(submission), "--out", str(out), "--runner-json", str(runner_json)]
    if cell_timeout:  # the same limit as the notebook's cells, in CPU and in wall-clock seconds
        argv += ["--cell-cpu", str(cell_timeout), "--cell-wall", str(cell_timeout)]
    return argv


def grade_outside(root: Path, name: str, student: str, limits, cell_timeout: int | None = None,
                  bounds=None, threads: int | None = None) -> dict:
    """Run the course's tests on the submission's solution cells outside its kernel (see grading/grader.py)."""
    with tempfile.TemporaryDirectory(prefix="minbert-outside-") as tmp:
        tmp = Path(tmp)
        spec = runner_spec(tmp, limits, root, bounds, threads)
        (tmp / "runner.json").write_text(json.dumps(spec), encoding="utf-8")
        out = tmp / "result.json"
        argv = grader_argv(root, name, notebook_file(f"autograder/submitted/{student}", name, root), out,
                           tmp / "runner.json", cell_timeout)
        env = {**os.environ, "MINBERT_ASSIGNMENT_DIR": str(root / "solutions" / name),
               "OMP_NUM_THREADS": "1"}
        code = run_grader(argv, env, root / "solutions" / name, tmp / "grader.log")
        if code != 0 or not out.is_file():
            log = (tmp / "grader.log").read_text(encoding="utf-8", errors="replace")
            raise CourseError(f"the grader failed on {student}/{name}: {last_error_line(log)}")
        return json.loads(out.read_text(encoding="utf-8"))


def annotate_autograded(root: Path, name: str, student: str, grading: dict) -> None:
    """Show each test cell's outside verdict in the autograded notebook (what feedback and formgrader show)."""
    import nbformat

    path = notebook_file(f"autograder/autograded/{student}", name, root)
    if not path.is_file():
        return
    nb = nbformat.read(path, as_version=4)
    results = {t["grade_id"]: t for t in grading["tests"]}
    for cell in nb.cells:
        result = results.get(grade_id(cell))
        if cell.cell_type != "code" or result is None:
            continue
        if result["message"]:
            cell.outputs = [nbformat.v4.new_output("error", ename="Failed", evalue=result["message"],
                                                   traceback=[f"Failed: {result['message']}"])]
        else:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=(
                f"passed: {result['points']:g} / {result['max_points']:g} (graded outside the notebook)\n"))]
    nbformat.write(nb, path)


def failed(root: Path, row: dict, reason: str) -> dict:
    """A submission graded 0 for `reason` (0 on every cell in the gradebook, no autograded copy)."""
    shutil.rmtree(root / "autograder" / "autograded" / row["student"] / row["assignment"], ignore_errors=True)
    return {**row, "status": "failed", "reason": reason, "gradebook": {"recorded": None, "outside": None}}


def result_file(root: Path, name: str, student: str) -> Path:
    return root / "autograder" / "results" / student / f"{name}.json"


def submission_digest(root: Path, name: str, student: str) -> str:
    """A hash of a collected submission's files (not its timestamp): it changes when the student resubmits."""
    folder = root / "autograder" / "submitted" / student / name
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()
                       and p.name not in ("timestamp.txt", "submission_secret.txt")):
        digest.update(f"{path.relative_to(folder)}\0".encode() + path.read_bytes() + b"\0")
    return digest.hexdigest()


def graded_before(root: Path, name: str, student: str) -> dict | None:
    """The stored result of a submission, unless it was resubmitted since."""
    row = graded_row(root, name, student)
    return row if row is not None and row.get("digest") == submission_digest(root, name, student) else None


def save_result(root: Path, row: dict) -> None:
    """Store one submission's result, atomically: a killed grader leaves a whole file or none."""
    path = result_file(root, row["assignment"], row["student"])
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(row, indent=1) + "\n", encoding="utf-8")
    os.replace(partial, path)


def sandbox_limits(require: bool):
    """The sandbox's limits, or None with a loud warning where it cannot run (a CourseError if `require`)."""
    from autograder import sandbox

    problem = sandbox.problem()
    if problem is None:
        return sandbox.Limits()
    if require:
        raise CourseError(f"cannot sandbox student code: {problem}; install bubblewrap "
                          "(apt-get install bubblewrap) or grade without --require-sandbox")
    print(f"\n{'!' * 88}\nWARNING: student code runs NOT SANDBOXED ({problem}): it can read and write "
          "your files,\nuse the network and exhaust the machine. Install bubblewrap (apt-get install "
          f"bubblewrap),\nor pass --require-sandbox to refuse to grade without it.\n{'!' * 88}\n",
          file=sys.stderr, flush=True)
    return None


def autograde(names: list[str], root: Path = ROOT, students: list[str] | None = None, timeout: float = 600,
              require_sandbox: bool = False, cell_timeout: int | None = None, regrade: bool = False,
              jobs: int = 1, scheduler: str | None = None) -> list[dict]:
    """Grade every collected submission and print a table and a summary.

    `jobs` submissions grade at once, each in its own sandbox with an equal share of the cores;
    with `scheduler` (a Dask scheduler's address) they grade on that cluster's workers instead.
    One broken submission never stops the rest. This process alone writes the gradebook, and
    stores each result as soon as it is known, so a killed run, started again, grades only what
    is left (and what was resubmitted since); `regrade` grades everything again.
    """
    if jobs < 1:
        raise CourseError(f"--jobs must be 1 or more, not {jobs}")
    data_dir_for_kernels(root)
    limits = sandbox_limits(require_sandbox)
    submitted = root / "autograder" / "submitted"
    if not students:
        students = sorted(p.name for p in submitted.iterdir() if p.is_dir()) if submitted.is_dir() else []
    rows, skipped, todo, threads = [], 0, [], grading_threads(jobs)
    for student in students:
        for name in names:
            if not (submitted / student / name).is_dir():
                continue
            row = None if regrade else graded_before(root, name, student)
            if row is None:
                todo.append((root, name, student, timeout, limits, cell_timeout, threads))
                continue
            skipped += 1
            print(format_row(row) + "  (graded before)", flush=True)
            rows.append(row)
    import_job_modules()
    for row in run_jobs(grade_job, todo, jobs, scheduler):
        record = row.pop("gradebook", None)
        if record is not None:
            gradebook.record(root, row["assignment"], row["student"], record["recorded"], record["outside"])
        if row["status"] != "error":  # a grader error is retried by the next run
            save_result(root, row)
        rows.append(row)
        print(format_row(row), flush=True)
    print(summary(rows, skipped))
    return rows


SCHEDULER_TIMEOUT = 30  # seconds to reach a Dask scheduler
JOB_IMPORTS = threading.Lock()


def import_job_modules() -> None:
    """Import what a job needs, one thread at a time: a thread could otherwise get one of nbgrader's
    modules half-initialised while another imports it (an ImportError seen with --jobs). Called by
    `autograde` and by every job, so that a Dask worker with several threads is safe too."""
    with JOB_IMPORTS:
        import nbgrader.api  # noqa: F401

        import autograder.kit_only  # noqa: F401


def grade_job(root: Path, name: str, student: str, timeout: float, limits, cell_timeout: int | None,
              threads: int) -> dict:
    """One submission's row, whatever happens to it: what `run_jobs` runs, here or on a cluster's worker."""
    digest, started = submission_digest(root, name, student), time.monotonic()
    try:
        import_job_modules()
        row = autograde_one(root, name, student, timeout, limits, cell_timeout, threads)
    except Exception as err:  # whatever one submission does, the class goes on: record why
        row = {"student": student, "assignment": name, "score": 0.0, "auto_max": 0.0,
               "status": "error", "reason": f"{type(err).__name__}: {err}"}
    return {**row, "seconds": round(time.monotonic() - started, 1), "digest": digest}


def run_jobs(function, calls: list[tuple], jobs: int = 1, scheduler: str | None = None):
    """Yield function(*call) for each call as it finishes: `jobs` at a time here, or on a Dask cluster."""
    if scheduler:
        try:
            from distributed import Client, as_completed
        except ImportError:
            raise CourseError("--scheduler needs Dask: pip install 'distributed'") from None
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT)
        except OSError as err:
            raise CourseError(f"cannot reach the Dask scheduler at {scheduler}: {err}; start it with "
                              "`dask scheduler` and workers with `dask worker ADDRESS` (autograder/README.md)")
        with client:
            futures = [client.submit(function, *call, pure=False) for call in calls]
            for future in as_completed(futures):
                yield future.result()
        return
    with concurrent.futures.ThreadPoolExecutor(jobs, thread_name_prefix="grade") as pool:
        futures = [pool.submit(function, *call) for call in calls]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()


def summary(rows: list[dict], skipped: int) -> str:
    """How many were graded, and every submission that failed or needs a look, with its reason."""
    bad = [r for r in rows if r["status"] != "ok"]
    counts = ", ".join(f"{sum(r['status'] == s for r in rows)} {s}" for s in ("failed", "flagged", "error"))
    return (f"autograded {len(rows)} submission(s) ({skipped} graded before, not regraded); {counts}"
            + "".join(f"\n  {r['student']}/{r['assignment']}: {r['status']}: {r['reason']}" for r in bad))


def format_row(row: dict) -> str:
    note = f"  {row['status']}: {row['reason']}" if row["status"] != "ok" else (
        f"  note: {row['reason']}" if row["reason"] else "")
    return (f"{row['student']:<16} {row['assignment']:<14} {row['score']:5.1f} / {row['auto_max']:4.1f} "
            f"auto points  {row.get('seconds', 0):5.1f} s{note}")


# --- first steps: what to run before a command can do anything ---------------------------------

COURSE_PY = "minbert-course"


def require_collected(names: list[str], root: Path, students: list[str] | None = None) -> list[str]:
    """The assignments of `names` with a collected submission (by `students`); a CourseError naming
    `collect` when there is none."""
    submitted = root / "autograder" / "submitted"
    found = [p for p in submitted.glob("*/*") if p.is_dir() and p.name in names
             and (not students or p.parent.name in students)] if submitted.is_dir() else []
    if not found:
        who = f" by {', '.join(students)}" if students else ""
        raise CourseError(f"nothing to grade: no submission of {', '.join(names)}{who} in {submitted}; run "
                          f"`{COURSE_PY} collect FOLDER_OR_ZIP` (or `make collect SUBMISSIONS=FILE.zip`) first")
    return sorted({p.name for p in found})


def require_released(names: list[str], root: Path) -> None:
    """A CourseError naming `release` for an assignment the gradebook does not know (nbgrader's MissingEntry)."""
    from nbgrader.api import MissingEntry

    database = gradebook.path(root)
    missing = list(names)
    if database.is_file():
        with gradebook.open_gradebook(gradebook.db_url(root)) as book, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            missing = []
            for name in names:
                try:
                    book.find_assignment(name)
                except MissingEntry:
                    missing.append(name)
    if missing:
        raise CourseError(f"{', '.join(missing)} not released on this machine (the gradebook {database} has no "
                          f"such assignment; it is not committed): run `{COURSE_PY} release {' '.join(missing)}` "
                          "(or `make release`) first, then autograde")


def require_graded(names: list[str], root: Path) -> None:
    """A CourseError naming `autograde` when nothing of `names` has been graded yet."""
    results = root / "autograder" / "results"
    if not any(any(results.glob(f"*/{name}.json")) for name in names):
        raise CourseError(f"nothing graded yet for {', '.join(names)}: run `{COURSE_PY} collect FOLDER_OR_ZIP`, "
                          f"then `{COURSE_PY} autograde` first")


# --- feedback and export -----------------------------------------------------------------------

def feedback(names: list[str], root: Path = ROOT) -> None:
    """HTML feedback for every graded submission, with the grader's notes, then a check that nothing hidden leaked.

    nbgrader writes the pages of the notebooks it ran; a submission that could not run (not a
    notebook, a dead kernel, ...) gets a short page with its score and the reason.
    """
    for name in names:
        rows = [json.loads(p.read_text(encoding="utf-8"))
                for p in sorted((root / "autograder" / "results").glob(f"*/{name}.json"))]
        if any((root / "autograder" / "autograded").glob(f"*/{name}/{name}.ipynb")):
            nbgrader("generate_feedback", name, "--force", root=root)
        for row in rows:
            page = root / "autograder" / "feedback" / row["student"] / name / f"{name}.html"
            if not notebook_file(f"autograder/autograded/{row['student']}", name, root).is_file():
                page.parent.mkdir(parents=True, exist_ok=True)
                page.write_text(failure_page(row), encoding="utf-8")
            elif row["reason"]:
                text = page.read_text(encoding="utf-8")
                body = re.search(r"<body[^>]*>", text)
                page.write_text(text[:body.end()] + notes_box(row) + text[body.end():], encoding="utf-8")
        hidden = secret_lines(root, name, kinds=("HIDDEN TESTS",))
        for page in (root / "autograder" / "feedback").glob(f"*/{name}/*.html"):
            shown = sorted(line for line in hidden if line in page_text(page))
            if shown:
                raise CourseError(f"{page}: the feedback shows the hidden test line {shown[0]!r}")
    print(f"feedback in {root / 'autograder' / 'feedback'}")


def page_text(page: Path) -> str:
    """What a feedback page shows, without its HTML."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def notes_box(row: dict) -> str:
    items = "".join(f"<li>{html.escape(note)}</li>" for note in row["reason"].split("; "))
    return (f'<div style="border: 2px solid #c60; padding: 0.5em 1em; margin: 1em">'
            f"<strong>Grading notes</strong><ul>{items}</ul></div>")


def failure_page(row: dict) -> str:
    """The feedback of a submission without an autograded notebook: its score, why, and each test's verdict."""
    title = html.escape(f"{row['assignment']}: feedback for {row['student']}")
    why = ("Your submission could not be graded" if row["status"] == "failed"
           else "Your notebook could not be run to the end, so it is not shown here")
    tests = "".join(f"<li>{html.escape(gid)}: {points:g} points</li>" for gid, points in row.get("tests", {}).items())
    failures = "".join(f"<li>{html.escape(f)}</li>" for f in row.get("failures", []))
    return (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{title}</title></head><body>\n'
            f"<h1>{title}</h1>\n<p>Score: {row['score']:g} / {row['auto_max']:g} autograded points.</p>\n"
            f"<p>{why}: {html.escape(row['reason'])}.</p>\n"
            + (f"<p>Your solution cells were still tested:</p><ul>{tests}</ul>\n" if tests else "")
            + (f"<p>What failed:</p><ul>{failures}</ul>\n" if failures else "") + "</body></html>\n")


def export(to: Path, root: Path = ROOT) -> None:
    if to.is_dir():
        raise CourseError(f"--to {to} is a folder: give the CSV file to write, e.g. {to / 'grades.csv'}")
    to.parent.mkdir(parents=True, exist_ok=True)
    nbgrader("export", "--to", str(to.resolve()), root=root)
    add_grading_notes(to, root)
    print(f"grades written to {to}")


def add_grading_notes(csv_file: Path, root: Path) -> None:
    """Add a column `grading_notes` to nbgrader's CSV: the status and reason of each flagged or failed row."""
    import csv

    with open(csv_file, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    for row in rows:
        result = graded_row(root, row.get("assignment", ""), row.get("student_id", ""))
        row["grading_notes"] = f"{result['status']}: {result['reason']}" if result and result["status"] != "ok" \
            else ""
    with open(csv_file, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def graded_row(root: Path, name: str, student: str) -> dict | None:
    """The stored result of a submission (results/<student>/<a>.json), or None."""
    try:
        return json.loads(result_file(root, name, student).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --- demo ----------------------------------------------------------------------------------------

def copy_course(target: Path, root: Path = ROOT) -> Path:
    """Copy the course's sources and nbgrader configuration into `target`, without instructor data."""
    for name in assignments(root):
        shutil.copytree(root / "solutions" / name, target / "solutions" / name,
                        ignore=shutil.ignore_patterns("*.ipynb", ".ipynb_checkpoints", "__pycache__"))
    shutil.copytree(root / "autograder", target / "autograder", ignore=shutil.ignore_patterns(
        "submitted", "autograded", "feedback", "results", "zoo", "gradebook.db", "grades.csv", ".collect",
        "__pycache__"))
    return target


DEMO_STUDENTS = {"reference": "solutions", "untouched": "notebooks"}  # student -> the folder they hand in


def demo_course(target: Path) -> tuple[Path, list[str]]:
    """A copy of the course in `target`, released, with the DEMO_STUDENTS' submissions collected."""
    root = copy_course(target)
    names = assignments(root)
    release(names, root, execute=False)
    for student, folder in DEMO_STUDENTS.items():
        for name in names:
            incoming = root / "incoming" / student / f"{name}.ipynb"
            incoming.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(notebook_file(folder, name, root), incoming)
    collect(root / "incoming", root)
    return root, names


def demo() -> int:
    """Release a copy of the course and autograde two students: the solutions and the untouched release."""
    with tempfile.TemporaryDirectory() as tmp:
        root, names = demo_course(Path(tmp))
        rows = autograde(names, root)
    return 0 if all(r["status"] == "ok" for r in rows) else 1


# --- command line ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="minbert-course", description="The minBERT course's instructor commands.")
    parser.add_argument("--course", type=Path, default=ROOT, help="the course folder (default: this repository)")
    sub = parser.add_subparsers(dest="command", required=True)
    for command, summary in (("release", "regenerate notebooks/ (the student release) from solutions/"),
                             ("autograde", "grade the collected submissions, student code in the sandbox"),
                             ("feedback", "HTML feedback for every graded submission, hidden tests left out")):
        p = sub.add_parser(command, help=summary)
        p.add_argument("assignments", nargs="*", help="default: every assignment")
    sub.choices["release"].add_argument("--no-execute", action="store_true",
                                        help="do not run the solutions (their outputs stay empty)")
    sub.choices["release"].add_argument("--force", action="store_true",
                                        help="overwrite solutions/*.ipynb even where edited by hand")
    grade = sub.choices["autograde"]
    grade.add_argument("--student", action="append", help="only these students")
    grade.add_argument("--require-sandbox", action="store_true", help="refuse to grade where bwrap cannot run")
    grade.add_argument("--timeout", type=float, default=600, help="seconds for one submission (default 600)")
    grade.add_argument("--cell-timeout", type=int, help="seconds for one cell (default $MINBERT_CELL_TIMEOUT or 120)")
    grade.add_argument("--regrade", action="store_true", help="grade again the submissions graded before")
    grade.add_argument("--jobs", type=int, default=1,
                       help="grade this many submissions at once, sharing the cores (default 1)")
    grade.add_argument("--scheduler", metavar="ADDRESS",
                       help="grade on a Dask cluster: its scheduler's address, e.g. tcp://10.0.0.5:8786")
    sub.add_parser("lint", help="check the nbgrader metadata of the source notebooks")
    sub.add_parser("demo", help="release a temp copy and autograde the solutions and the untouched release")
    validate_parser = sub.add_parser("validate", help="run notebooks' tests with nbgrader's validator (exit 1 on a failure)")
    validate_parser.add_argument("notebooks", nargs="+", type=Path)
    collect_parser = sub.add_parser("collect",
                                    help="copy students' notebooks from a folder or zip into autograder/submitted/")
    collect_parser.add_argument("source", type=Path, help="a folder or zip, one folder per student")
    collect_parser.add_argument("assignments", nargs="*", help="default: every assignment")
    export_parser = sub.add_parser("export", help="write the gradebook as CSV")
    export_parser.add_argument("--to", type=Path, help="default: autograder/grades.csv")
    args = parser.parse_args(argv)
    root = args.course.resolve()
    try:
        check_course(root)
        names = getattr(args, "assignments", None) or assignments(root)
        check_assignments(names, root)
        if args.command == "release":
            release(names, root, execute=not args.no_execute, force=args.force)
        elif args.command == "demo":
            return demo()
        elif args.command == "lint":
            problems = lint(root)
            print("\n".join(problems) or f"lint: {len(assignments(root))} assignment(s) OK")
            return 1 if problems else 0
        elif args.command == "validate":
            return validate(args.notebooks)
        elif args.command == "collect":
            collect(args.source, root, names)
        elif args.command == "autograde":
            require_released(require_collected(names, root, args.student), root)
            rows = autograde(names, root, args.student, args.timeout, args.require_sandbox,
                             args.cell_timeout, args.regrade, args.jobs, args.scheduler)
            return 1 if any(r["status"] in ("failed", "error") for r in rows) else 0
        elif args.command == "feedback":
            require_graded(names, root)
            feedback(names, root)
        elif args.command == "export":
            require_graded(assignments(root), root)
            export(args.to or root / "autograder" / "grades.csv", root)
    except CourseError as err:
        print(f"minbert-course: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # grading jobs still running die with this process (die_with_parent)
        print(f"\nminbert-course: interrupted; what was graded is kept: run `{args.command}` again to go on",
              file=sys.stderr, flush=True)
        os._exit(130)
    return 0


if __name__ == "__main__":
    sys.exit(main())
