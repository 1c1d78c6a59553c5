"""Feedback preprocessor: remove hidden tests and every test cell's traceback.

nbgrader's feedback HTML shows the autograded notebook as it ran, hidden tests and their
tracebacks included. This removes each `### BEGIN HIDDEN TESTS` ... `### END HIDDEN TESTS`
region from the test cells, and replaces each test cell's error output with one line,
`ErrorName: message`, so students learn what failed but not the hidden code. Student code
can print the hidden tests that call it (through `inspect.stack()`): every output line that
contains a hidden-test line is removed too.
"""
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests

BEGIN, END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def hidden_lines(nb) -> set[str]:
    """The stripped lines inside the hidden-test regions of a notebook's test cells."""
    found, inside = set(), False
    for cell in nb.cells:
        if cell.cell_type == "code" and utils.is_grade(cell):
            for line in cell.source.splitlines():
                inside = (inside or BEGIN in line) and END not in line
                if inside and line.strip():
                    found.add(line.strip())
    return found


def without(text: str, hidden: set[str]) -> str:
    """`text` without the lines that contain a hidden-test line."""
    return "".join(line for line in text.splitlines(keepends=True) if not any(h in line for h in hidden))


class StripHiddenTests(ClearHiddenTests):
    """Autograding: remove the hidden tests before the notebook runs in its kernel.

    The grade is decided outside the kernel (minbert_lib.grading.grader), and the kernel runs
    no test cell (limit_output.LimitedExecute); without the hidden tests in its notebook, no
    student code can read them, or the inputs they pass, while it runs.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "code" and utils.is_grade(cell):
            self._remove_hidden_test_region(cell)
        return cell, resources


class HideHiddenTests(ClearHiddenTests):
    def preprocess(self, nb, resources):
        self.hidden = hidden_lines(nb)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code":
            return cell, resources
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                output.text = without(output.text, self.hidden)
            elif "text/plain" in output.get("data", {}):
                output.data["text/plain"] = without(output.data["text/plain"], self.hidden)
        if utils.is_grade(cell):
            self._remove_hidden_test_region(cell)
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources
