"""Graders forked from the zygote (autograder/warm.py) grade exactly as graders started from scratch."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from autograder import course, warm

ROOT = Path(__file__).resolve().parents[1]
A = "01_attention"


def grader_argv(tmp: Path, student_notebook: Path) -> list[str]:
    spec = course.runner_spec(tmp, None, ROOT)  # the runner unsandboxed: this test is about the grader
    (tmp / "runner.json").write_text(json.dumps(spec), encoding="utf-8")
    return course.grader_argv(ROOT, A, student_notebook, tmp / "result.json", tmp / "runner.json")


@pytest.mark.parametrize("student", ["solutions", "notebooks"])
def test_a_warm_grader_grades_as_a_cold_one(tmp_path, monkeypatch, student):
    results = {}
    for how in ("cold", "warm"):
        tmp = tmp_path / how
        (tmp / "work").mkdir(parents=True)
        monkeypatch.setenv(warm.COLD_ENV, "1" if how == "cold" else "0")
        code = warm.run_grader(grader_argv(tmp / "work", course.notebook_file(student, A)),
                               {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}, ROOT / "solutions" / A,
                               tmp / "grader.log")
        assert code == 0, (tmp / "grader.log").read_text()
        assert (tmp / "grader.log.status").exists() == (how == "warm")  # only a forked grader leaves one
        results[how] = [(t["grade_id"], t["points"], t["message"])
                        for t in json.loads((tmp / "work" / "result.json").read_text())["tests"]]
    assert results["warm"] == results["cold"]
    points = sum(p for _, p, _ in results["warm"])
    assert (points > 0) == (student == "solutions")


def test_a_failing_warm_grader_gives_its_exit_code_and_its_error(tmp_path):
    log = tmp_path / "grader.log"
    assert warm.run_grader(["only-one-argument"], {"PATH": "/usr/bin:/bin"}, tmp_path, log) == 2  # argparse
    assert "usage" in log.read_text()
    missing = ["a.ipynb", "b.ipynb", "c.ipynb", "--out", str(tmp_path / "r.json"),
               "--runner-json", str(tmp_path / "nowhere.json")]
    assert warm.run_grader(missing, {"PATH": "/usr/bin:/bin"}, tmp_path, log) == 1
    assert "FileNotFoundError" in log.read_text() and "nowhere.json" in log.read_text()


def test_a_grader_that_dies_before_it_can_say_counts_as_failed(tmp_path):
    log = tmp_path / "no-such-folder" / "grader.log"  # it dies opening its log, and writes no status
    assert warm.run_grader(["--help"], {"PATH": "/usr/bin:/bin"}, tmp_path, log) == 1
    assert warm.Zygote.get().process.poll() is None  # the zygote goes on
