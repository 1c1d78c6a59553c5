"""The student's side and the grader's side of a check, possibly in two processes.

A check never touches a student's function or class directly: it calls

    drive(driver, student, *args, **kwargs)

where `driver` is a module-level function of `minbert_lib` (so that it can be found by name
in another process), `student` is the student's function or class, and the arguments and the
returned value are plain data: tensors, numbers, strings, bools, None, dtypes, and lists,
tuples and dicts of them. The driver runs the student's code on the arguments and returns
raw quantities (outputs, trajectories, parameters, gradients), never a verdict: the check
compares them with the reference outside the driver.
"""
from __future__ import annotations

from typing import Any, Callable


def drive(driver: Callable[..., Any], student: Any, *args: Any, **kwargs: Any) -> Any:
    """Run `driver(student, *args, **kwargs)`: here, or in the student's process when grading."""
    remote_call = getattr(student, "__minbert_remote_drive__", None)
    if remote_call is not None:  # a proxy for a definition that lives in the sandboxed runner
        return remote_call(driver, *args, **kwargs)
    return driver(student, *args, **kwargs)
