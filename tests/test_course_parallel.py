"""A class graded in parallel (`autograde --jobs N`) and on a Dask cluster gets the grades a serial run gives;
nbgrader's own autograde is refused.

The zoo (tests/test_zoo.py) grades its 32 whole submissions with two jobs at once and checks
each grade; here three students of 01_attention are graded serially, then again with two jobs,
then on a local Dask cluster of two worker processes, and the gradebook must hold the same
scores each time, with the instructor's manual grade of a written answer kept.
"""
import shutil
from pathlib import Path

import pytest

from autograder import course, gradebook, sandbox

A = "01_attention"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("parallel")
    root = course.copy_course(tmp / "course")
    course.release([A], root, execute=False)
    incoming = tmp / "incoming"
    for student, source in (("reference", course.notebook_file("solutions", A, root)),
                            ("untouched", course.notebook_file("notebooks", A, root))):
        (incoming / student).mkdir(parents=True)
        shutil.copyfile(source, incoming / student / f"{A}.ipynb")
    (incoming / "broken").mkdir()
    (incoming / "broken" / f"{A}.ipynb").write_text("{not json")
    course.collect(incoming, root, [A])
    return root


def class_scores(root: Path) -> dict:
    return {student: gradebook.scores(root, A, student) for student in ("reference", "untouched", "broken")}


def set_manual_score(root: Path, student: str, cell: str, points: float) -> None:
    with gradebook.open_gradebook(gradebook.db_url(root)) as book:
        book.find_grade(cell, A, A, student).manual_score = points
        book.db.commit()


def test_jobs_and_a_dask_cluster_give_the_serial_grades(released, capsys):
    root = released
    serial = course.autograde([A], root, regrade=True)
    expected = class_scores(root)
    assert {r["student"]: r["score"] for r in serial} == {"reference": 9, "untouched": 0, "broken": 0}
    assert expected["reference"]["test_attention"] == 2 and expected["reference"]["why_scale"] is None
    assert set(expected["broken"].values()) == {0}
    set_manual_score(root, "reference", "why_scale", 1.5)  # the instructor's grade of a written answer
    expected["reference"]["why_scale"] = 1.5

    rows = course.autograde([A], root, regrade=True, jobs=2)
    assert sorted(r["student"] for r in rows) == ["broken", "reference", "untouched"]
    assert class_scores(root) == expected

    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        rows = course.autograde([A], root, regrade=True, scheduler=cluster.scheduler_address)
    assert {r["student"]: r["score"] for r in rows} == {"reference": 9, "untouched": 0, "broken": 0}
    assert class_scores(root) == expected
    out = capsys.readouterr().out
    assert out.count("autograded 3 submission(s)") == 3


def test_each_submission_graded_at_once_runs_as_its_own_user():
    users = {sandbox.job_uid(student, A) for student in ("alice", "bob", "carol", "dave")}
    assert len(users) == 4 and all(uid in sandbox.JOB_UIDS and uid + 1 in sandbox.JOB_UIDS for uid in users)
    assert all(uid % 2 == 0 for uid in users)  # uid for the kernel, uid + 1 for the runner
    assert sandbox.job_uid("alice", A) == sandbox.job_uid("alice", A)


def test_bad_jobs_and_an_unreachable_scheduler_say_what_to_do(released, capsys, monkeypatch):
    assert course.main(["--course", str(released), "autograde", A, "--regrade", "--jobs", "0"]) == 1
    assert "--jobs must be 1 or more" in capsys.readouterr().err
    pytest.importorskip("distributed")
    monkeypatch.setattr(course, "SCHEDULER_TIMEOUT", 2)
    assert course.main(["--course", str(released), "autograde", A, "--regrade",
                        "--scheduler", "tcp://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err and "dask worker" in err


def test_plain_nbgrader_autograde_is_refused_with_the_kits_command(released):
    """Plain `nbgrader autograde` (and formgrader's button, the same converter) would grade unsandboxed."""
    result = course.nbgrader("autograde", A, "--student", "reference", "--force", root=released, check=False)
    assert result.returncode != 0
    assert "minbert-course autograde" in result.stderr and "sandbox" in result.stderr
    assert not course.notebook_file("autograder/autograded/reference", A, released).exists()
