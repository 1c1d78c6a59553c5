"""The nbgrader course: generated files up to date, metadata lint, release, autograde, feedback, export.

One session-scoped fixture copies the course into a temp folder, regenerates the source
notebooks and the release there, collects a zip of submissions (the reference solutions,
the untouched release, and a broken one) and autogrades them all once; the tests read
its results.
"""
import csv
import json
import os
import shutil
import stat
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
import torch

from minbert_lib import notebook, sanity

ROOT = Path(__file__).resolve().parents[1]
from autograder import course  # noqa: E402
from autograder import sandbox  # noqa: E402

NAMES = course.assignments(ROOT)
pytestmark = pytest.mark.slow


def test_the_six_assignments_exist():
    assert NAMES == ["01_attention", "02_bert", "03_adamw", "04_sentiment", "05_multitask", "06_extensions"]


def course_data_env() -> dict[str, str]:
    """Notebooks 04-06 read the course data through the library: point the course copy at the kit's
    own data folder, or at the CI mirror when that folder is empty (a clean clone)."""
    from minbert_lib.data import resolve_data_dir

    own = resolve_data_dir().resolve()
    if (own / "ids-sst-dev.csv").is_file():  # fetched into the kit: the course copy has no data of its own
        return {"MINBERT_DATA_DIR": str(own)}
    mirror = Path(os.environ.get("MINBERT_DATA_MIRROR") or ROOT.parent / "shared" / "data")
    if not (mirror / "ids-sst-dev.csv").is_file():
        pytest.skip("no course data: run `minbert data fetch` or set MINBERT_DATA_MIRROR")
    return {"MINBERT_DATA_DIR": str(mirror)}


# --- the session's course ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """A copy of the course, released and autograded for a class of test students."""
    root = course.copy_course(tmp_path_factory.mktemp("course") / "copy")
    course.release(NAMES, root=root, execute=False)

    class_zip = root / "class.zip"
    with zipfile.ZipFile(class_zip, "w") as archive:
        for name in NAMES:
            archive.write(course.notebook_file("solutions", name, root), f"reference/{name}.ipynb")
            archive.write(course.notebook_file("notebooks", name, root), f"untouched/downloads/{name}/{name}.ipynb")
        archive.writestr("broken/01_attention.ipynb", '{"cells": [')  # tests/test_zoo.py has many more
    collected = course.collect(class_zip, root=root)

    env = {"MINBERT_CELL_TIMEOUT": "120", **course_data_env()}  # read by nbgrader_config.py / the kernels
    os.environ.update(env)
    try:
        rows = course.autograde(NAMES, root=root, jobs=2)  # two at a time, as a class is graded
    finally:
        for key in env:
            del os.environ[key]
    return {"root": root, "collected": collected,
            "rows": {(r["student"], r["assignment"]): r for r in rows}}


def auto_scores(root, name, student):
    """(score, points) of every autograded test cell of one submission."""
    source = nbformat.read(course.notebook_file("solutions", name, root), as_version=4)
    scores = course.scores_of(root, name, student)
    return {gid: (scores[gid], points) for gid, points in course.grade_cells(source, "code").items()}


# --- generated files ------------------------------------------------------------------------------

def normalized(path, keep_outputs):
    """A notebook's content; without its outputs, those of the solutions are left to the run."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    for c in nb["cells"]:
        if not keep_outputs:
            c.pop("outputs", None)
            c.pop("execution_count", None)
    return nb


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_are_what_the_sources_generate(graded, name):
    root = graded["root"]
    assert normalized(course.notebook_file("solutions", name, ROOT), False) == \
        normalized(course.notebook_file("solutions", name, root), False), \
        f"solutions/{name}/{name}.ipynb is out of date: run `make release`"
    assert normalized(course.notebook_file("notebooks", name, ROOT), True) == \
        normalized(course.notebook_file("notebooks", name, root), True), \
        f"notebooks/{name} is out of date: run `make release`"
    released = sorted(p.name for p in (ROOT / "notebooks" / name).iterdir())
    assert released == sorted(p.name for p in (root / "notebooks" / name).iterdir())
    for path in (ROOT / "notebooks" / name).glob("*.pt"):
        assert path.read_bytes() == (ROOT / "solutions" / name / path.name).read_bytes()


def test_sanity_tensors_are_what_the_library_generates():
    assert sanity.main(["--check", "--root", str(ROOT / "solutions")]) == 0


@pytest.mark.parametrize("name", ["01_attention", "04_sentiment", "05_multitask", "06_extensions"])
def test_solution_notebooks_show_their_outputs_and_plots(name):
    nb = nbformat.read(course.notebook_file("solutions", name, ROOT), as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{name}: the plots are missing"
    assert not any(o.output_type == "error" for o in outputs)


# --- release and lint -----------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_release_holds_no_solution_and_no_hidden_test(graded, name):
    root = graded["root"]
    assert course.release_leaks(root, name) == []
    text = course.notebook_file("notebooks", name, root).read_text(encoding="utf-8")
    assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text and "Model answer" not in text
    assert not list((root / "notebooks" / name).glob("*.py"))


def test_leak_detection_finds_a_solution_line(graded, tmp_path):
    root = graded["root"]
    shutil.copytree(root / "solutions", tmp_path / "solutions")
    shutil.copytree(root / "notebooks", tmp_path / "notebooks")
    released = course.notebook_file("notebooks", "03_adamw", tmp_path)
    nb = nbformat.read(released, as_version=4)
    nb.cells[0].source += "\np.mul_(1.0 - lr * weight_decay)                  # decoupled weight decay"
    nbformat.write(nb, released)
    assert course.release_leaks(tmp_path, "03_adamw") == [
        "03_adamw.ipynb contains 'p.mul_(1.0 - lr * weight_decay)                  # decoupled weight decay'"]


def test_lint_passes_on_the_course():
    assert course.lint(ROOT) == []


def test_lint_finds_bad_metadata(tmp_path):
    source = tmp_path / "solutions" / "09_bad" / f"09_bad{course.SOURCE_SUFFIX}"
    source.parent.mkdir(parents=True)
    source.write_text(
        '# %% nbgrader="solution" grade_id="a"\nx = 1\n\n'
        '# %% nbgrader="tests" grade_id="a" points=0\nprint(x)\n\n'
        '# %%\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\n', encoding="utf-8")
    problems = course.lint(tmp_path)
    for expected in ("grade_id 'a' is used twice", "a is graded but has no positive points",
                     "solution cell a needs ### BEGIN SOLUTION", "test cell a tests nothing",
                     "has solution or hidden-test markers but no nbgrader role",
                     "no manually graded written question", "no hidden tests"):
        assert any(expected in p for p in problems), (expected, problems)


def test_build_rejects_an_unknown_role(tmp_path):
    source = tmp_path / f"x{course.SOURCE_SUFFIX}"
    source.write_text('# %% nbgrader="answer" grade_id="a"\nx = 1\n', encoding="utf-8")
    with pytest.raises(course.CourseError, match="nbgrader='answer'; use one of"):
        course.build_notebook(source)


@pytest.mark.parametrize("name", NAMES)
def test_test_cells_are_locked_and_worth_points(name):
    nb = nbformat.read(course.notebook_file("notebooks", name, ROOT), as_version=4)
    grades = [c.metadata.nbgrader for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    ids = [g["grade_id"] for g in grades]
    assert len(ids) == len(set(ids))
    assert all(g["points"] > 0 for g in grades)
    tests = [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]
    assert tests and all(c.metadata.nbgrader["locked"] and not c.metadata.editable for c in tests)


# --- collect ------------------------------------------------------------------------------------

def test_collect_takes_every_student_from_the_zip(graded):
    assert set(graded["collected"]) == {
        *(f"reference/{n}" for n in NAMES), *(f"untouched/{n}" for n in NAMES),
        "broken/01_attention"}


@pytest.mark.parametrize("entry", ["../evil/01_attention.ipynb", "/abs/01_attention.ipynb", "link"])
def test_collect_rejects_unsafe_zip_entries(tmp_path, entry):
    archive_path = tmp_path / "class.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr("alice/01_attention.ipynb", "{}")
        if entry == "link":
            info = zipfile.ZipInfo("bob/01_attention.ipynb")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
        else:
            archive.writestr(entry, "{}")
    (tmp_path / "autograder").mkdir()
    with pytest.raises(course.CourseError, match="unsafe entry|symbolic link"):
        course.collect(archive_path, root=tmp_path, names=["01_attention"])
    assert not (tmp_path / "autograder" / "submitted").exists()
    assert not (tmp_path.parent / "evil").exists() and not Path("/abs").exists()


def test_collect_from_a_folder_never_follows_symbolic_links(tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "01_attention.ipynb").write_text("{}")
    (tmp_path / "incoming" / "alice").mkdir(parents=True)
    (tmp_path / "incoming" / "alice" / "01_attention.ipynb").symlink_to(outside / "01_attention.ipynb")
    (tmp_path / "incoming" / "bob").symlink_to(outside, target_is_directory=True)
    root = tmp_path / "course"
    assert course.collect(tmp_path / "incoming", root=root, names=["01_attention"]) == ["alice/01_attention"]
    assert "bob: a symbolic link" in capsys.readouterr().out
    assert sorted(p.name for p in (root / "autograder" / "submitted").iterdir()) == ["alice"]
    assert sorted(p.name for p in (root / "autograder" / "submitted" / "alice" / "01_attention").iterdir()) == \
        ["submission_secret.txt", "timestamp.txt"]  # recorded as missing: the linked notebook was not read


def test_collect_takes_a_renamed_notebook_with_its_files_and_records_a_missing_one(tmp_path, capsys):
    incoming = tmp_path / "incoming"
    (incoming / "carol" / "sub").mkdir(parents=True)
    (incoming / "carol" / "sub" / "01_attention (1).ipynb").write_text("{}")
    (incoming / "carol" / "sub" / "helper.py").write_text("x = 1\n")
    (incoming / "dan").mkdir()
    (incoming / "dan" / "README.txt").write_text("I forgot")
    assert course.collect(incoming, root=tmp_path, names=["01_attention"]) == ["carol/01_attention",
                                                                               "dan/01_attention"]
    out = capsys.readouterr().out
    assert "carol: collected 01_attention (1).ipynb as 01_attention.ipynb" in out
    assert "dan: no 01_attention.ipynb in the submission: recorded as missing" in out
    carol = tmp_path / "autograder" / "submitted" / "carol" / "01_attention"
    assert sorted(p.name for p in carol.iterdir()) == ["01_attention.ipynb", "helper.py", "submission_secret.txt",
                                                       "timestamp.txt"]
    assert not (tmp_path / "autograder" / "submitted" / "dan" / "01_attention" / "01_attention.ipynb").exists()


def test_a_missing_course_folder_is_a_one_line_error(tmp_path, capsys):
    assert course.main(["--course", str(tmp_path / "nowhere"), "autograde"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere: not a course folder" in err
    assert not (tmp_path / "nowhere").exists()


def test_an_unknown_assignment_is_a_one_line_error(capsys):
    assert course.main(["autograde", "99_nope"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown assignment '99_nope': the course has 01_attention" in err


# --- autograde ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_reference_solutions_get_full_marks_on_every_autograded_cell(graded, name):
    scores = auto_scores(graded["root"], name, "reference")
    assert scores and all(score == points for score, points in scores.values()), scores
    assert graded["rows"][("reference", name)]["status"] == "ok"


@pytest.mark.parametrize("name", NAMES)
def test_untouched_release_scores_zero_on_every_test_cell(graded, name):
    scores = auto_scores(graded["root"], name, "untouched")
    assert scores and all(score == 0 for score, _ in scores.values()), scores


def test_a_broken_submission_is_graded_0_with_a_reason_and_never_stops_the_others(graded):
    rows = graded["rows"]
    assert rows[("broken", "01_attention")]["status"] == "failed"
    assert "not a readable notebook" in rows[("broken", "01_attention")]["reason"]
    assert course.scores_of(graded["root"], "01_attention", "broken") == {
        gid: 0 for gid in course.grade_cells(nbformat.read(
            course.notebook_file("solutions", "01_attention", graded["root"]), as_version=4))}
    assert len(rows) == 2 * len(NAMES) + 1


def test_without_a_sandbox_grading_warns_or_with_the_flag_refuses(graded, monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "problem", lambda: "bwrap (bubblewrap) is not installed")
    with pytest.raises(course.CourseError, match="cannot sandbox student code: bwrap"):
        course.autograde(["01_attention"], graded["root"], students=["broken"], require_sandbox=True)
    rows = course.autograde(["01_attention"], graded["root"], students=["broken"], regrade=True)
    assert "NOT SANDBOXED" in capsys.readouterr().err
    assert rows[0]["status"] == "failed" and not rows[0]["sandboxed"]


def test_feedback_shows_errors_but_no_hidden_tests(graded):
    root = graded["root"]
    course.feedback(NAMES, root=root)
    page = (root / "autograder" / "feedback" / "untouched" / "01_attention" / "01_attention.html")
    text = page.read_text(encoding="utf-8")
    assert "NotImplementedError" in text
    assert "seed=21" not in text and "HIDDEN" not in text
    assert "checks.py" not in text  # a failed test shows its error, not the frames of the check
    ok = (root / "autograder" / "feedback" / "reference" / "03_adamw" / "03_adamw.html").read_text(encoding="utf-8")
    assert "trajectory: OK" in ok and "seed=63" not in ok


def test_export_writes_one_csv_row_per_submission(graded, tmp_path):
    course.export(tmp_path / "new" / "grades.csv", root=graded["root"])  # missing folders are made
    with open(tmp_path / "new" / "grades.csv", newline="") as f:
        rows = {(r["student_id"], r["assignment"]): r for r in csv.DictReader(f)}
    attention_auto = sum(points for _, points in auto_scores(graded["root"], "01_attention", "reference").values())
    assert float(rows[("reference", "01_attention")]["raw_score"]) == attention_auto
    assert float(rows[("untouched", "02_bert")]["raw_score"]) == 0.0


def test_validate_fails_when_a_test_fails(graded, capsys):
    root = graded["root"]
    assert course.validate([course.notebook_file("solutions", "03_adamw", root)]) == 0
    assert course.validate([course.notebook_file("notebooks", "03_adamw", root)]) == 1
    assert "NotImplementedError" in capsys.readouterr().out
    with pytest.raises(course.CourseError, match="not a notebook file: .*missing.ipynb"):
        course.validate([root / "missing.ipynb"])
    with pytest.raises(course.CourseError, match="is a folder"):
        course.export(root, root=root)


# --- the notebook helpers --------------------------------------------------------------------------

def test_training_budget_follows_nbgrader_and_the_student_switch(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("MINBERT_QUICK", raising=False)
    assert notebook.training_budget() == "full"
    monkeypatch.setenv("MINBERT_QUICK", "1")
    assert notebook.training_budget() == "quick"
    monkeypatch.setenv("MINBERT_QUICK", "0")
    assert notebook.training_budget() == "full"
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")  # grading wins over the student's switch
    monkeypatch.setenv("MINBERT_QUICK", "1")
    monkeypatch.delenv("MINBERT_GRADED_OUTSIDE", raising=False)
    assert notebook.training_budget() == "grading"
    monkeypatch.setenv("MINBERT_GRADED_OUTSIDE", "1")  # the autograder's kernel: its tests run outside
    assert notebook.training_budget() == "preview"
    monkeypatch.delenv("NBGRADER_EXECUTION")  # outside nbgrader the switch means nothing
    assert notebook.training_budget() == "quick"


def test_notebook_device_is_the_best_available_or_the_one_named(monkeypatch):
    from minbert_lib.device import pick_device
    from minbert_lib.errors import ConfigError

    monkeypatch.delenv("MINBERT_DEVICE", raising=False)
    assert notebook.device() == pick_device()  # cuda, else mps, else cpu
    monkeypatch.setenv("MINBERT_DEVICE", "cpu")
    assert notebook.device() == torch.device("cpu")
    monkeypatch.setenv("MINBERT_DEVICE", "tpu")
    with pytest.raises(ConfigError, match="MINBERT_DEVICE: .*use cuda, cuda:N, mps or cpu"):
        notebook.device()
    notebook.synchronize(torch.device("cpu"))  # nothing to wait for on the CPU


def test_assignment_dir_is_the_working_folder_unless_set(monkeypatch, tmp_path):
    monkeypatch.delenv("MINBERT_ASSIGNMENT_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert notebook.assignment_dir() == tmp_path
    monkeypatch.setenv("MINBERT_ASSIGNMENT_DIR", "/somewhere")
    assert notebook.assignment_dir() == Path("/somewhere")


def test_collect_skips_folders_that_are_not_student_ids(tmp_path, capsys):
    (tmp_path / "incoming" / "bad name!").mkdir(parents=True)
    (tmp_path / "incoming" / "bad name!" / "01_attention.ipynb").write_text("{}")
    (tmp_path / "incoming" / "carol" / "sub").mkdir(parents=True)
    (tmp_path / "incoming" / "carol" / "sub" / "01_attention.ipynb").write_text("{}")
    assert course.collect(tmp_path / "incoming", root=tmp_path, names=["01_attention"]) == ["carol/01_attention"]
    assert "'bad name!' is not a valid student id" in capsys.readouterr().out
    assert (tmp_path / "autograder" / "submitted" / "carol" / "01_attention" / "01_attention.ipynb").is_file()


def test_a_relative_data_folder_reaches_kernels_and_runners_as_an_absolute_one(monkeypatch, tmp_path):
    """MINBERT_DATA_DIR=../shared/data named nothing where kernels start, and 04-06 lost points."""
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "kit").mkdir()
    monkeypatch.chdir(tmp_path / "kit")
    monkeypatch.setenv("MINBERT_DATA_DIR", "../shared/data")
    expected = str((tmp_path / "kit" / ".." / "shared" / "data").absolute())
    for limits, folder in ((None, "plain"), (sandbox.Limits(), "sandboxed")):  # with and without bwrap's command
        (tmp_path / folder).mkdir()
        spec = course.runner_spec(tmp_path / folder, limits, course.ROOT)
        assert spec["env"]["MINBERT_DATA_DIR"] == os.environ["MINBERT_DATA_DIR"] == expected
    assert expected in spec["command"]  # bound read-only into the sandbox
    assert Path(expected).is_dir()
