"""The course's nbgrader gradebook (`autograder/gradebook.db`), written by one process only.

SQLite takes one writer at a time, and a grading job may run on another machine. So nbgrader
never writes the course's gradebook while it grades: each job runs `nbgrader autograde` on a
private copy (`private_copy`), reads what nbgrader recorded there (`entries`), and the
process that started the jobs writes those entries, with the scores decided outside the
kernel, into the course's gradebook (`record`), one submission at a time.
"""
from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path


def path(root: Path) -> Path:
    return root / "autograder" / "gradebook.db"


def db_url(root: Path) -> str:
    return f"sqlite:///{path(root)}"


def open_gradebook(url: str):
    from nbgrader.api import Gradebook

    return Gradebook(url)


def private_copy(root: Path, target: Path) -> str:
    """A consistent copy of the course's gradebook at `target` (SQLite's backup, safe while it is written)."""
    source = sqlite3.connect(f"file:{path(root)}?mode=ro", uri=True)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        source.close()
        copy.close()
    return f"sqlite:///{target}"


def entries(url: str, name: str, student: str) -> dict | None:
    """What nbgrader recorded of one submission: its timestamp and each cell's automatic score and comment."""
    with open_gradebook(url) as gradebook:
        try:
            submission = gradebook.find_submission(name, student)
        except Exception:  # nbgrader stopped before recording the submission
            return None
        return {"timestamp": submission.timestamp,
                "scores": {grade.name: grade.auto_score for notebook in submission.notebooks
                           for grade in notebook.grades},
                "comments": {comment.name: comment.auto_comment for notebook in submission.notebooks
                             for comment in notebook.comments}}


def record(root: Path, name: str, student: str, recorded: dict | None, outside: dict[str, float] | None) -> None:
    """Write one graded submission into the course's gradebook.

    `recorded`: what nbgrader's run recorded (`entries`), or None; `outside`: grade_id -> points
    decided outside the kernel, which replace nbgrader's for those cells; None grades the
    submission 0 on every cell (it could not be run). An instructor's manual score is kept,
    and, as nbgrader does, a cell with one or without an automatic score needs manual grading.
    """
    recorded = recorded or {"timestamp": None, "scores": {}, "comments": {}}
    with open_gradebook(db_url(root)) as gradebook, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbgrader's own SQLAlchemy warnings when it adds a submission
        gradebook.update_or_create_student(student)
        extra = {"timestamp": recorded["timestamp"]} if recorded["timestamp"] else {}
        submission = gradebook.update_or_create_submission(name, student, **extra)
        for notebook in submission.notebooks:
            for grade in notebook.grades:
                if outside is None:
                    grade.auto_score, grade.manual_score, grade.needs_manual_grade = 0, None, False
                elif grade.name in outside:
                    grade.auto_score, grade.manual_score = outside[grade.name], None
                    grade.needs_manual_grade = False
                else:
                    grade.auto_score = recorded["scores"].get(grade.name)
                    grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None
            for comment in notebook.comments:
                comment.auto_comment = recorded["comments"].get(comment.name, comment.auto_comment)
        gradebook.db.commit()


def scores(root: Path, name: str, student: str) -> dict[str, float | None]:
    """grade_id -> score (auto or manual; None while ungraded) of one autograded submission."""
    with open_gradebook(db_url(root)) as gradebook:
        notebook = gradebook.find_submission_notebook(name, name, student)
        return {grade.name: grade.score if (grade.auto_score is not None or grade.manual_score is not None)
                else None for grade in notebook.grades}
