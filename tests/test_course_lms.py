"""course.py collect with Canvas and Moodle downloads, and the first-steps messages of an empty course."""
import os
import stat
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
from autograder import course  # noqa: E402

A = "01_attention"


def notebook(text: str) -> str:
    return '{"cells": [], "metadata": {"who": "%s"}, "nbformat": 4, "nbformat_minor": 5}' % text


def make_zip(path: Path, entries: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in entries.items():
            archive.writestr(name, text)
    return path


def submitted(root: Path, student: str) -> Path:
    return root / "autograder" / "submitted" / student / A


def test_canvas_flat_zip(tmp_path, capsys):
    archive = make_zip(tmp_path / "canvas.zip", {
        f"alice_12345_678_{A}.ipynb": notebook("alice first"),
        f"alice_late_12345_679_{A}-1.ipynb": notebook("alice resubmitted late"),
        "alice_12345_678_helper.py": "x = 1\n",
        f"bob_23456_680_{A}.ipynb": notebook("bob"),
        f"zoe_34567_681_{A} (1).ipynb": notebook("zoe"),
        "readme.txt": "not a submission",
    })
    assert course.collect(archive, root=tmp_path, names=[A]) == [f"alice/{A}", f"bob/{A}", f"zoe/{A}"]
    out = capsys.readouterr().out
    assert f"Canvas: alice_late_12345_679_{A}-1.ipynb (resubmission 1, late)" in out
    assert "skipped readme.txt: not named as in a Canvas or Moodle download" in out
    alice = submitted(tmp_path, "alice")
    assert "alice resubmitted late" in (alice / f"{A}.ipynb").read_text()  # the last upload wins
    assert sorted(p.name for p in alice.iterdir()) == [f"{A}.ipynb", "helper.py", "submission_secret.txt",
                                                       "timestamp.txt"]
    assert len((alice / "submission_secret.txt").read_text()) == 128
    assert "zoe" in (submitted(tmp_path, "zoe") / f"{A}.ipynb").read_text()


def test_moodle_flat_zip_and_folders(tmp_path, capsys):
    archive = make_zip(tmp_path / "moodle.zip", {
        f"Alice Smith_1234_assignsubmission_file_{A}.ipynb": notebook("alice 1234"),
        f"Alice Smith_9999_assignsubmission_file_{A}.ipynb": notebook("alice 9999"),
        f"Bob Jones_2345_assignsubmission_file_{A}.ipynb": notebook("bob"),
        f"Carol Li_3456_assignsubmission_file_/{A}.ipynb": notebook("carol, in folders"),
        "Carol Li_3456_assignsubmission_onlinetext_/onlinetext.html": "<p>hi</p>",
    })
    assert course.collect(archive, root=tmp_path, names=[A]) == [
        f"alice_smith_1234/{A}", f"alice_smith_9999/{A}", f"bob_jones/{A}", f"carol_li/{A}"]
    assert "Moodle: Alice Smith_9999_assignsubmission_file_01_attention.ipynb (as alice_smith_9999)" \
        in capsys.readouterr().out
    assert "alice 9999" in (submitted(tmp_path, "alice_smith_9999") / f"{A}.ipynb").read_text()
    assert "carol, in folders" in (submitted(tmp_path, "carol_li") / f"{A}.ipynb").read_text()


@pytest.mark.parametrize("entry", [f"../alice_1_2_{A}.ipynb", f"/abs/alice_1_2_{A}.ipynb", "link"])
def test_flat_zips_keep_the_safety_checks(tmp_path, entry):
    archive_path = tmp_path / "canvas.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr(f"bob_2_3_{A}.ipynb", notebook("bob"))
        if entry == "link":
            info = zipfile.ZipInfo(f"eve_4_5_{A}.ipynb")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
        else:
            archive.writestr(entry, notebook("evil"))
    with pytest.raises(course.CourseError, match="unsafe entry|symbolic link"):
        course.collect(archive_path, root=tmp_path, names=[A])
    assert not (tmp_path / "autograder" / "submitted").exists()


def test_a_link_in_a_flat_folder_is_skipped(tmp_path, capsys):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / f"bob_2_3_{A}.ipynb").write_text(notebook("bob"))
    (tmp_path / "secret.ipynb").write_text(notebook("not a submission"))
    (incoming / f"eve_4_5_{A}.ipynb").symlink_to(tmp_path / "secret.ipynb")
    assert course.collect(incoming, root=tmp_path, names=[A]) == [f"bob/{A}"]
    assert f"skipped eve_4_5_{A}.ipynb: a symbolic link" in capsys.readouterr().out


def fake_course(tmp_path: Path) -> Path:
    """The course's sources and nbgrader configuration, without instructor data (nothing released)."""
    return course.copy_course(tmp_path / "course")


def test_an_empty_course_says_what_to_run(tmp_path, capsys):
    root = fake_course(tmp_path)
    for command, expected in (("autograde", "nothing to grade: no submission of 01_attention"),
                              ("feedback", "nothing graded yet for 01_attention"),
                              ("export", "nothing graded yet for 01_attention")):
        assert course.main(["--course", str(root), command]) == 1, command
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"minbert-course: error: {expected}") and "\n" not in err, err
        assert "collect FOLDER_OR_ZIP" in err
    assert not (root / "autograder" / "grades.csv").exists()


def test_autograde_before_a_release_names_the_release_command(tmp_path, capsys):
    root = fake_course(tmp_path)
    incoming = tmp_path / "incoming" / "alice"
    incoming.mkdir(parents=True)
    (incoming / f"{A}.ipynb").write_text(notebook("alice"))
    course.collect(tmp_path / "incoming", root=root, names=[A])
    capsys.readouterr()
    assert course.main(["--course", str(root), "autograde", A]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"minbert-course: error: {A} not released on this machine (the gradebook "
                   f"{root / 'autograder' / 'gradebook.db'} has no such assignment; it is not committed): run "
                   f"`minbert-course release {A}` (or `make release`) first, then autograde")


@pytest.mark.slow
def test_nbgrader_release_feedback_works_after_collect(tmp_path):
    """nbgrader's own release_feedback reads timestamp.txt and submission_secret.txt from each feedback folder."""
    root = fake_course(tmp_path)
    assert course.main(["--course", str(root), "release", A, "--no-execute"]) == 0
    incoming = tmp_path / "incoming" / "alice"
    incoming.mkdir(parents=True)
    (incoming / f"{A}.ipynb").write_bytes(course.notebook_file("solutions", A, root).read_bytes())
    course.collect(tmp_path / "incoming", root=root, names=[A])
    assert course.main(["--course", str(root), "autograde", A]) == 0
    assert course.main(["--course", str(root), "feedback", A]) == 0
    feedback = root / "autograder" / "feedback" / "alice" / A
    assert {"timestamp.txt", "submission_secret.txt", f"{A}.html"} <= {p.name for p in feedback.iterdir()}
    exchange = tmp_path / "exchange"  # nbgrader's exchange: made by the instructor, writable by all
    exchange.mkdir()
    exchange.chmod(0o777)
    result = course.nbgrader("release_feedback", A, f"--Exchange.root={exchange}", root=root, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(list((exchange / "minbert" / "feedback").glob("*.html"))) == 1


def test_release_refuses_to_overwrite_a_hand_edited_solution_notebook(tmp_path, capsys):
    """An edit made with nbgrader's Create Assignment toolbar lives in the .ipynb, not in the .pct.py source."""
    import nbformat

    root = fake_course(tmp_path)
    assert course.main(["--course", str(root), "release", A, "--no-execute"]) == 0
    path = course.notebook_file("solutions", A, root)
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\nA sentence the instructor added in JupyterLab."
    nbformat.write(nb, path)
    later = course.source_file(A, root).stat().st_mtime + 60
    os.utime(path, (later, later))
    capsys.readouterr()
    assert course.main(["--course", str(root), "release", A, "--no-execute"]) == 1
    err = capsys.readouterr().err
    assert f"solutions/{A}/{A}.ipynb was edited after its source solutions/{A}/{A}.pct.py (cell 0 differs)" in err
    assert "--force" in err and "instructor added" in path.read_text()
    assert course.main(["--course", str(root), "release", A, "--no-execute", "--force"]) == 0
    assert "instructor added" not in path.read_text()
    os.utime(path, (later + 60, later + 60))  # newer but the same cells: nothing to lose, released
    assert course.main(["--course", str(root), "release", A, "--no-execute"]) == 0
