"""nbgrader configuration of the minBERT course. Run nbgrader from this folder.

The course root is the repository: nbgrader's source is `solutions/`, its release is
`notebooks/`; submissions, autograded copies, feedback and the gradebook are
instructor data under `autograder/` and never enter git.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
from autograder.hide_hidden_tests import HideHiddenTests, StripHiddenTests  # noqa: E402
from autograder.kit_only import KitCommandOnly  # noqa: E402
from autograder.limit_output import LimitedExecute  # noqa: E402
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.converters import Autograde  # noqa: E402
from nbgrader.preprocessors import Execute, GetGrades  # noqa: E402

c = get_config()  # noqa: F821 (nbgrader provides it)

c.CourseDirectory.course_id = "minbert"
c.CourseDirectory.root = os.path.dirname(HERE)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "autograder/submitted"
c.CourseDirectory.autograded_directory = "autograder/autograded"
c.CourseDirectory.feedback_directory = "autograder/feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, "gradebook.db")
# The percent-format sources contain the solutions: never copy them into the release.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.pct.py"]

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# A cell may run for 2 minutes (MINBERT_CELL_TIMEOUT seconds); an infinite loop ends as a
# timeout error in that cell.
c.Execute.timeout = int(os.environ.get("MINBERT_CELL_TIMEOUT", "120"))
c.Execute.interrupt_on_timeout = True
c.Execute.iopub_timeout = 30  # after an interrupt, a busy machine may take a while to say the cell ended
# Once the last cell has run, the kernel is killed rather than asked to exit: a graceful exit
# costs over a second per notebook, and killing the sandbox ends everything it started.
c.Execute.shutdown_kernel = "immediate"
# Autograding keeps at most 100,000 printed characters and 2 MB of rich output per cell.
c.Autograde.autograde_preprocessors = [LimitedExecute if p is Execute else p
                                       for p in Autograde.class_traits()["autograde_preprocessors"].default()]
# The kernel runs no test cell (LimitedExecute skips them) and its notebook holds no hidden test:
# the grade is decided outside it (minbert_lib.grading.grader), so student code never sees a
# hidden test or its inputs.
# Only the kit's command may autograde: plain nbgrader and formgrader's button are refused (kit_only.py).
_sanitize = Autograde.class_traits()["sanitize_preprocessors"].default()
c.Autograde.sanitize_preprocessors = [KitCommandOnly] + _sanitize + [StripHiddenTests]

# Feedback shows visible tests only, and for failed tests the error name and message only.
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
