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
cell, each replaced by one line that says so.
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

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
            cell.outputs, cell.execution_count = [], None  # a test cell: graded outside the kernel
            return cell, resources
        return super().preprocess_cell(cell, resources, index)

    def output(self, outs, msg, display_id, cell_index):
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            room = self.max_chars - sum(len(o.text) for o in outs if o.output_type == "stream")
            if room <= 0:
                return None
            if len(content["text"]) > room:
                content["text"] = content["text"][:room] + TRUNCATED
        elif kind in ("display_data", "execute_result", "update_display_data"):
            used = sum(rich_size(o) for o in outs if o.output_type in ("display_data", "execute_result"))
            if used + rich_size(content) > self.max_rich_bytes:
                if not any(o.get("text") == TRUNCATED for o in outs):
                    outs.append(new_output("stream", name="stdout", text=TRUNCATED))
                return None
        return super().output(outs, msg, display_id, cell_index)
