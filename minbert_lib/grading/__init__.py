"""Grading: run a student's code where it cannot change its own grade.

`drive` is the one door between a check and the student's function or class. In a
notebook it is a plain call; when grading, the student's definitions live in another,
sandboxed process and `drive` sends the driver's name and plain arguments there.
"""
from minbert_lib.grading.remote import drive

__all__ = ["drive"]
