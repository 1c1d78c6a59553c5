"""Grading outside the kernel: what a solution cell does cannot change how it is graded.

Each test builds a submission from the course's source notebook with some cells replaced,
grades it with `minbert_lib.grading.grader` (the runner as a plain subprocess here; the
sandboxed path is covered by tests/test_zoo.py) and checks each test cell's points.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from minbert_lib.grading import answer_keys, grader
from minbert_lib.grading.common import CheckError

ROOT = Path(__file__).resolve().parents[1]


def notebook(folder: str, assignment: str):
    return nbformat.read(ROOT / folder / assignment / f"{assignment}.ipynb", as_version=4)


def submission(assignment: str, replace: dict[str, str] | None = None, append: list[str] = (),
               prepend_to: dict[str, str] | None = None, append_to: dict[str, str] | None = None):
    """The reference solution with some solution cells replaced and code cells appended."""
    nb = copy.deepcopy(notebook("solutions", assignment))
    for cell in nb.cells:
        gid = grader.nbgrader_meta(cell).get("grade_id")
        if replace and gid in replace:
            cell.source = replace[gid]
        if prepend_to and gid in prepend_to:
            cell.source = prepend_to[gid] + "\n" + cell.source
        if append_to and gid in append_to:
            cell.source = cell.source + "\n" + append_to[gid]
    nb.cells += [nbformat.v4.new_code_cell(code) for code in append]
    return nb


def grade(assignment: str, submitted, **limits) -> dict[str, tuple[float, str]]:
    """grade_id -> (points, message), graded in a fresh grader and runner."""
    command = [sys.executable, "-m", "minbert_lib.grading.runner"]
    g = grader.Grader(assignment, notebook("solutions", assignment), notebook("notebooks", assignment),
                      submitted, command, {"PATH": "/usr/bin:/bin", "NBGRADER_EXECUTION": "autograde",
                                           "HOME": "/tmp", "MINBERT_DATA_DIR": os.environ.get("MINBERT_DATA_DIR", "")}, str(ROOT / "solutions" / assignment),
                      master_dir=ROOT / "solutions" / assignment, **limits)
    result = g.run()
    return {t.grade_id: (t.points, t.message) for t in result.tests}, result.notes


def test_reference_gets_full_marks_and_release_zero():
    scores, notes = grade("01_attention", notebook("solutions", "01_attention"))
    assert all(points > 0 and not message for points, message in scores.values()), scores
    scores, _ = grade("01_attention", notebook("notebooks", "01_attention"))
    assert all(points == 0 for points, _ in scores.values())
    assert "NotImplementedError" in scores["test_attention"][1]


def test_student_cells_cannot_disarm_the_checks():
    """Rebinding the checks, patching torch and shadowing modules only touch the student's process."""
    wrong = ("def scaled_dot_product_attention(query, key, value, additive_mask=None):\n"
             "    return value * 0\n")
    hostile = ("from minbert_lib import checks\nimport torch, sys, types\n"
               "checks.check_attention = lambda *a, **k: None\n"
               "checks.compare = lambda *a, **k: None\n"
               "torch.allclose = lambda *a, **k: True\n"
               "sys.modules['minbert_lib.checks'] = types.SimpleNamespace()\n")
    submitted = submission("01_attention", replace={"attention": wrong + hostile + (
        "def attention_weights(query, key, additive_mask=None):\n    return torch.zeros(1)\n")})
    scores, _ = grade("01_attention", submitted)
    assert scores["test_attention"][0] == 0
    assert scores["test_attention_weights"][0] == 0
    assert scores["test_padding_mask"][0] > 0  # the other exercises are still graded on their merits


def test_output_on_stdout_and_stderr_never_fails_a_test():
    noisy = ("import sys, warnings\nprint('debug', file=sys.stderr)\nwarnings.warn('a UserWarning')\n"
             "print('x' * 10000)\n")
    submitted = submission("01_attention", prepend_to={"padding_mask": noisy, "attention": noisy})
    scores, _ = grade("01_attention", submitted)
    assert all(points > 0 for points, _ in scores.values()), scores


@pytest.mark.parametrize("code", [
    "from minbert_lib.attention import scaled_dot_product_attention\n",
    "import minbert_lib.attention as ref\nscaled_dot_product_attention = ref.scaled_dot_product_attention\n",
    "from minbert_lib import attention\n"
    "def scaled_dot_product_attention(query, key, value, additive_mask=None):\n"
    "    return attention.scaled_dot_product_attention(query, key, value, additive_mask) + 0.0\n",
    "import importlib.util, minbert_lib.attention as a\n"
    "spec = importlib.util.spec_from_file_location('copy', a.__file__)\n"
    "copy = importlib.util.module_from_spec(spec)\nspec.loader.exec_module(copy)\n"
    "scaled_dot_product_attention = copy.scaled_dot_product_attention\n",
], ids=["import", "alias", "wrapper", "copy-from-file"])
def test_using_the_answer_key_scores_zero_for_that_part(code):
    own = ("import torch\ndef attention_weights(query, key, additive_mask=None):\n"
           "    scores = query @ key.transpose(-2, -1) / query.size(-1) ** 0.5\n"
           "    return torch.softmax(scores if additive_mask is None else scores + additive_mask, dim=-1)\n")
    scores, notes = grade("01_attention", submission("01_attention", replace={"attention": own + code}))
    assert scores["test_attention"][0] == 0
    assert "reference implementation" in scores["test_attention"][1] or "cannot be read" in " ".join(notes), \
        (scores["test_attention"], notes)
    assert scores["test_attention_weights"][0] > 0  # the student's own function still counts


def test_subclassing_the_answer_key_scores_zero():
    code = ("from minbert_lib.attention import MultiHeadSelfAttention as Reference\n"
            "class MultiHeadSelfAttention(Reference):\n    pass\n")
    scores, _ = grade("01_attention", submission("01_attention", replace={"self_attention": code}))
    assert scores["test_self_attention"][0] == 0
    assert "reference implementation" in scores["test_self_attention"][1]


@pytest.mark.parametrize("assignment, cell, code, test", [
    ("03_adamw", "adamw", "from minbert_lib.optim import AdamW as Reference\n"
     "class AdamW(Reference):\n    __init__ = Reference.__init__.__wrapped__\n"
     "    step = Reference.step.__wrapped__\n", "test_first_step"),
    ("04_sentiment", "mean_pool", "from minbert_lib.model import mean_pool as guarded\n"
     "mean_pool = guarded.__wrapped__\n", "test_mean_pool"),
], ids=["method", "function"])
def test_the_guarded_answer_key_cannot_be_unwrapped(assignment, cell, code, test):
    scores, _ = grade(assignment, submission(assignment, replace={cell: code}))
    assert scores[test][0] == 0, scores[test]


def test_hidden_test_feedback_shows_no_values_and_no_student_chosen_words():
    g = grader.Grader.__new__(grader.Grader)  # explain() reads nothing of the grader's state
    named = grader.StudentError("Shape_2_7_16", "query was (2, 7, 16)")
    assert g.explain(named, hidden=True) == "your code raised an exception in a hidden test"
    assert "ValueError" in g.explain(grader.StudentError("ValueError", "bad"), hidden=True)
    exited = g.explain(grader.RunnerFailed("the runner exited (code 42): the code crashed Python"), hidden=True)
    assert "42" not in exited and "exited" in exited
    values = CheckError("attention case 3: (0, 1, 4) is 0.25, the reference 0.5; max abs difference 0.25")
    assert g.explain(values, hidden=True) == ("hidden test: attention case #: differs from the reference "
                                              "(a hidden test shows no values)")
    assert "(0, 1, 4) is 0.25" in g.explain(values, hidden=False)  # the visible test says where


def test_a_cell_that_kills_its_process_or_loops_gets_a_grade_and_a_reason():
    looping = "def padding_mask_to_additive(attention_mask, dtype):\n    while True:\n        pass\n"
    exiting = ("def attention_weights(query, key, additive_mask=None):\n    import os\n    os._exit(3)\n"
               "def scaled_dot_product_attention(query, key, value, additive_mask=None):\n    raise SystemExit\n")
    sleeping = "import time\ntime.sleep(3600)\n"
    scores, notes = grade("01_attention", submission("01_attention", replace={"padding_mask": looping,
                                                                              "attention": exiting},
                                                     append=[sleeping], append_to={"heads": sleeping}),
                          cell_cpu=3, cell_wall=5)
    assert any("wall-clock" in note for note in notes), notes  # the sleep in a solution cell was interrupted
    assert scores["test_padding_mask"][0] == 0 and "CPU time" in scores["test_padding_mask"][1]
    assert scores["test_attention_weights"][0] == 0 and "exited" in scores["test_attention_weights"][1]
    assert scores["test_attention"][0] == 0 and "SystemExit" in scores["test_attention"][1]
    assert scores["test_heads"][0] > 0  # a fresh runner grades the next cell


def test_deleted_copied_and_markdown_solution_cells_are_graded_by_the_release():
    nb = submission("01_attention")
    cells = nb.cells
    index = next(i for i, c in enumerate(cells) if grader.nbgrader_meta(c).get("grade_id") == "heads")
    cells.insert(index + 1, copy.deepcopy(cells[index]))  # copied in JupyterLab: one grade_id twice
    attention = next(c for c in cells if grader.nbgrader_meta(c).get("grade_id") == "attention")
    attention.cell_type = "markdown"
    nb.cells = [c for c in cells if grader.nbgrader_meta(c).get("grade_id") != "padding_mask"]
    scores, notes = grade("01_attention", nb)
    assert scores["test_heads"][0] > 0 and scores["test_attention"][0] > 0
    assert scores["test_padding_mask"][0] == 0
    assert any("appears 2 times" in n for n in notes) and any("missing" in n for n in notes)


def test_every_answer_key_resolves():
    from minbert_lib.grading.runner import resolve_name

    for assignment, exercises in answer_keys.ANSWER_KEYS.items():
        source = notebook("solutions", assignment)
        solution_ids = {grader.nbgrader_meta(c).get("grade_id") for c in source.cells
                        if grader.role(c) == "solution"}
        for exercise, names in exercises.items():
            assert exercise in solution_ids, (assignment, exercise)
            for dotted in names:
                resolve_name(dotted)


def test_a_copy_of_the_library_is_flagged_and_the_course_solution_is_not():
    import inspect

    from minbert_lib import attention

    solutions = {"heads": inspect.getsource(attention.split_heads).replace("x", "tensor")
                 + inspect.getsource(attention.merge_heads).replace("x", "tensor")}
    assert grader.near_copies("01_attention", solutions)
    for assignment in answer_keys.ANSWER_KEYS:
        own, _ = grader.student_solutions(notebook("notebooks", assignment), notebook("solutions", assignment))
        assert grader.near_copies(assignment, own) == [], assignment


def test_collect_gives_a_submission_the_releases_grade_cells(tmp_path):
    from autograder import course

    nb = copy.deepcopy(notebook("notebooks", "03_adamw"))  # what a student downloads
    test = next(c for c in nb.cells if grader.nbgrader_meta(c).get("grade_id") == "test_first_step")
    test.metadata.nbgrader["points"] = 50
    nb.cells.insert(nb.cells.index(test) + 1, copy.deepcopy(test))  # a copied test cell
    renamed = next(c for c in nb.cells if grader.nbgrader_meta(c).get("grade_id") == "test_trajectory")
    renamed.metadata.nbgrader["grade_id"] = "mine"
    solution = next(c for c in nb.cells if grader.nbgrader_meta(c).get("grade_id") == "adamw")
    nb.cells[nb.cells.index(solution)] = nbformat.v4.new_markdown_cell(solution.source, metadata=solution.metadata)
    path = tmp_path / "03_adamw.ipynb"
    nbformat.write(nb, path)
    notes = course.normalize_submission(path, ROOT / "notebooks" / "03_adamw" / "03_adamw.ipynb")
    fixed = nbformat.read(path, as_version=4)
    ids = [grader.nbgrader_meta(c).get("grade_id") for c in fixed.cells if grader.nbgrader_meta(c)]
    assert ids.count("test_first_step") == 1 and "mine" not in ids
    first = next(c for c in fixed.cells if grader.nbgrader_meta(c).get("grade_id") == "test_first_step")
    assert first.metadata.nbgrader["points"] == 1
    assert next(c for c in fixed.cells if grader.nbgrader_meta(c).get("grade_id") == "adamw").cell_type == "code"
    assert len(notes) == 4, notes  # points, the copy, the unknown grade_id, the Markdown cell
    assert course.normalize_submission(path, ROOT / "notebooks" / "03_adamw" / "03_adamw.ipynb") == []


def test_only_the_object_under_test_must_not_be_the_answer_key():
    assert grader.names_under_test("checks.check_train_step(train_step, SentimentClassifier, seed=1)\n"
                                   "x = merge_heads(split_heads(y, 2))") == {"train_step", "merge_heads", "split_heads"}


def test_only_course_cells_whose_results_a_test_reads_run_whole():
    """Training that no test reads costs the runner nothing; what a test reads is computed."""
    def cell(source, grade_id=None, kind=None):
        meta = {"solution": kind == "solution", "grade": kind == "tests", "grade_id": grade_id} if kind else {}
        return nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta} if meta else {})

    source = nbformat.v4.new_notebook(cells=[
        cell("tokenizer = make_tokenizer()\n\ndef encode(texts):\n    return tokenizer(texts)"),  # encode needs it
        cell("def train(model):\n    batch = encode(['a'])\n    return model(batch)", "train", "solution"),
        cell("batch = encode(['warm-up'])\nlosses = [train(m) for m in range(3)]\nprint([loss for loss in losses])"),
        cell("loss = 0.0\nfor step in range(2):\n    loss += train(step)\nscores = {}\nscores['final'] = loss"),
        cell("checks.check_loss(scores['final'])", "test_loss", "tests"),
    ])
    solutions = {"train": source.cells[1].source}
    whole = {label for label, code, course in grader.runner_cells(source, solutions)
             if course and code.strip() == source.cells[int(label.split()[-1]) - 1].source.strip()}
    # cell 3 binds `batch` (also a local name of `train`) and `loss` (only inside a comprehension):
    # neither is what the test reads, so its warm-up training is left out; cell 4 fills `scores`
    assert whole == {"course cell 1", "course cell 4"}


def test_prying_into_functions_is_flagged_for_the_instructor():
    from autograder import course

    source, released = notebook("solutions", "04_sentiment"), notebook("notebooks", "04_sentiment")
    prying = submission("04_sentiment", replace={"mean_pool": "import gc\nmean_pool = gc.get_referents(print)\n"})
    assert any("internals (mean_pool = gc.get_referents" in flag for flag in course.review(source, released, prying)[1])
    for name in sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir()):
        assert not course.review(notebook("solutions", name), notebook("notebooks", name),
                                 notebook("solutions", name))[1], name  # the course's own code is not flagged
