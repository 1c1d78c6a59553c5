"""The instructor's side of the course kit: nbgrader configuration, the `minbert-course`
commands (course.py), the sandbox, the feedback preprocessors and the fault zoo."""
