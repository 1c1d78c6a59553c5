"""Feedback preprocessor: remove hidden tests and every test cell's traceback.

nbgrader's feedback HTML shows the autograded notebook as it ran, hidden tests and their
tracebacks included. This removes each `### BEGIN HIDDEN TESTS` ... `### END HIDDEN TESTS`
region from the test cells, and replaces each test cell's error output with one line,
`ErrorName: message`, so students learn what failed but not the hidden code.
"""
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests


class HideHiddenTests(ClearHiddenTests):
    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or not utils.is_grade(cell):
            return cell, resources
        self._remove_hidden_test_region(cell)
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources
