"""Autograde preprocessor: nbgrader's Execute, without the test cells and keeping at most so much
of each cell's output.

The kernel runs the notebook for what the instructor and the student read (outputs, plots,
written answers); the grade is decided outside it (minbert_lib.grading.grader), and
course.py writes each test cell's outside verdict in place of its output. So the test cells
are not run in the kernel at all: they would cost time and decide nothing.

nbgrader's own LimitOutput counts lines only, after the run: a notebook that prints 300 lines
of a million characters would fill the grader's memory, the autograded notebook and its
feedback page with 300 MB. Here output past the limits is dropped as it arrives: printed text
past `max_chars`, and rich outputs (HTML, images, returned values) past `max_rich_bytes` per
cell, each replaced by one line that says so; and, for the whole notebook, any output past
`max_notebook_bytes` (many cells each under their own limit add up: 300 cells of 2 MB).
"""
from nbformat.v4 import new_output
from nbgrader import utils
from nbgrader.preprocessors import Execute
from traitlets import Integer

TRUNCATED = "\n... output truncated ...\n"


def rich_size(content: dict) -> int:
    """Bytes of a display_data / execute_result message's data, all its formats together."""
    return sum(len(value) if isinstance(value, str) else len(str(value))
               for value in content.get("data", {}).values())


class LimitedExecute(Execute):
    max_chars = Integer(100_000, help="characters of printed text kept per cell").tag(config=True)
    max_rich_bytes = Integer(2_000_000, help="bytes of rich output (HTML, images, values) kept per cell"
                             ).tag(config=True)
    max_notebook_bytes = Integer(20_000_000, help="bytes of output, text and rich, kept in the whole notebook"
                                 ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self.kept_bytes = 0  # output kept so far in this notebook, all cells together
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
            cell.outputs, cell.execution_count = [], None  # a test cell: graded outside the kernel
            return cell, resources
        return super().preprocess_cell(cell, resources, index)

    def output(self, outs, msg, display_id, cell_index):
        kind, content = msg["msg_type"], msg["content"]
        notebook_room = self.max_notebook_bytes - self.kept_bytes
        if kind == "stream":
            room = min(notebook_room, self.max_chars - sum(len(o.text) for o in outs if o.output_type == "stream"))
            if room <= 0:
                return None
            if len(content["text"]) > room:
                content["text"] = content["text"][:room] + TRUNCATED
            self.kept_bytes += len(content["text"])
        elif kind in ("display_data", "execute_result", "update_display_data"):
            used = sum(rich_size(o) for o in outs if o.output_type in ("display_data", "execute_result"))
            size = rich_size(content)
            if used + size > self.max_rich_bytes or size > notebook_room:
                if not any(o.get("text") == TRUNCATED for o in outs):
                    outs.append(new_output("stream", name="stdout", text=TRUNCATED))
                return None
            self.kept_bytes += size
        return super().output(outs, msg, display_id, cell_index)
