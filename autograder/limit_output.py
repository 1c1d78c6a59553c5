"""Autograde preprocessor: nbgrader's Execute, keeping at most `max_chars` of each cell's printed text.

nbgrader's own LimitOutput counts lines only, after the run: a notebook that prints 300 lines
of a million characters would fill the grader's memory, the autograded notebook and its
feedback page with 300 MB. Here text past the limit is dropped as it arrives.
"""
from nbgrader.preprocessors import Execute
from traitlets import Integer


class LimitedExecute(Execute):
    max_chars = Integer(100_000, help="characters of printed text kept per cell").tag(config=True)

    def output(self, outs, msg, display_id, cell_index):
        if msg["msg_type"] == "stream":
            room = self.max_chars - sum(len(o.text) for o in outs if o.output_type == "stream")
            if room <= 0:
                return None
            if len(msg["content"]["text"]) > room:
                msg["content"]["text"] = msg["content"]["text"][:room] + "\n... output truncated ...\n"
        return super().output(outs, msg, display_id, cell_index)
