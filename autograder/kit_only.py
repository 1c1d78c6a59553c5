"""nbgrader's own `autograde` (the command, or formgrader's Autograde button) refuses to run.

It would run student code unsandboxed and decide the grade inside the student's kernel. The
kit's command (`minbert-course autograde`, `make autograde`) sets `KIT_ENV` for the nbgrader
it starts; without it, this first preprocessor stops the notebook before anything runs, with
a message that names the kit's command (nbgrader prints it, and formgrader shows it in its log).
"""
import os

from nbgrader.preprocessors import NbGraderPreprocessor

KIT_ENV = "MINBERT_KIT_AUTOGRADE"
REFUSAL = ("this course is graded with `minbert-course autograde` (or `make autograde`), which runs "
           "student code in a sandbox and decides the grade outside the student's kernel; plain "
           "`nbgrader autograde` and formgrader's Autograde button would do neither "
           "(see autograder/README.md)")


class KitCommandOnly(NbGraderPreprocessor):
    def preprocess(self, nb, resources):
        if os.environ.get(KIT_ENV) != "1":
            raise RuntimeError(REFUSAL)
        return nb, resources
