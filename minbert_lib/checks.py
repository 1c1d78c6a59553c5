"""What the notebooks' test cells call: `checks.check_xxx(student_code)`.

Each notebook's checks, cases, named mistakes and drivers live in its own module of
`minbert_lib.grading` (attention, bert, adamw, sentiment, multitask, extensions). This module
only gathers the check functions, `CheckError` and `MISTAKES` for the notebooks; it holds no
reference implementation and no reference to the grading modules.
"""
from minbert_lib.grading.common import MISTAKES, CheckError


def _check_functions() -> dict:
    from minbert_lib.grading import adamw, attention, bert, extensions, multitask, sentiment

    return {name: getattr(module, name)
            for module in (attention, bert, adamw, sentiment, multitask, extensions)
            for name in dir(module) if name.startswith("check_")}


globals().update(_check_functions())
__all__ = ["CheckError", "MISTAKES", *sorted(name for name in globals() if name.startswith("check_"))]
del _check_functions
