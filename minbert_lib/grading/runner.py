"""The student's process: runs a submission's definitions and answers the grader's requests.

    python -m minbert_lib.grading.runner      (started by the grader, inside the sandbox)

It speaks the frames of `minbert_lib.grading.remote` on its stdin and stdout; everything the
student's code prints goes to /dev/null, so it can neither break the protocol nor reach the
feedback. The first request, `setup`, brings the code to run: the notebook's own cells (from
the course's source, never the submission) and the student's solution cells, and the answer
keys of the notebook's exercises. Before any of it runs, the runner

- replaces each answer key (the reference implementation of an exercise, wherever
  `minbert_lib` exports it) by a version that raises while its exercise is under test, so
  that a definition which is, subclasses, wraps or calls it fails that exercise;
- forbids reading the source files of the modules that hold those answer keys (an audit hook,
  which Python does not let code remove), so that no fresh copy can be imported.

Nothing here decides a grade: the grader compares what comes back with the reference.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import inspect
import io
import os
import pickle
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from minbert_lib.grading.remote import HEADER, MAX_FRAME, RemoteRef, encode_reply, write_frame
from minbert_lib.notebook import GRADED_OUTSIDE_ENV

PLAIN_SCALARS = (int, float, bool, str, type(None))


class AnswerKeyCalled(BaseException):
    """Raised by a poisoned answer key; a BaseException so that `except Exception` does not hide it."""


class TimeLimit(Exception):
    """A cell or a request ran past its limit; raised inside the student's code, like Jupyter's interrupt."""


@contextlib.contextmanager
def time_limits(cpu_seconds: float, wall_seconds: float):
    """Raise TimeLimit in the code run inside after `cpu_seconds` of CPU time (all threads) or `wall_seconds`.

    CPU time is what code costs whatever else the machine runs, so a busy grading machine
    does not interrupt work that a quiet one finishes; the wall-clock limit catches sleeps.
    """
    def stop(signum, frame):
        kind = "CPU" if signum == signal.SIGPROF else "wall-clock"
        limit = cpu_seconds if signum == signal.SIGPROF else wall_seconds
        raise TimeLimit(f"ran past the limit of {limit:g} s of {kind} time and was interrupted")

    previous = signal.signal(signal.SIGPROF, stop), signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    signal.setitimer(signal.ITIMER_REAL, wall_seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGPROF, previous[0])
        signal.signal(signal.SIGALRM, previous[1])


class Runner:
    def __init__(self):
        self.cpu_seconds, self.wall_seconds = 120.0, 300.0
        self.namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
        self.objects: dict[int, Any] = {}
        self.active: set[str] = set()
        self.answer_key_hit: str | None = None

    # --- references ----------------------------------------------------------------------------

    def plain(self, value: Any, depth: int = 0) -> Any:
        """`value` as plain data where it is, else as a reference the grader can use."""
        import torch

        if isinstance(value, PLAIN_SCALARS) or isinstance(value, (torch.dtype, torch.Size)):
            return value
        if isinstance(value, torch.Tensor):
            return value.detach().cpu().clone() if type(value) in (torch.Tensor, torch.nn.Parameter) \
                else self.reference(value)
        if depth < 8 and type(value) in (list, tuple):
            return type(value)(self.plain(item, depth + 1) for item in value)
        if depth < 8 and type(value) is dict and all(isinstance(k, (str, int)) for k in value):
            return {key: self.plain(item, depth + 1) for key, item in value.items()}
        if type(value).__module__ == "numpy":
            import numpy

            if isinstance(value, numpy.ndarray):
                return torch.from_numpy(numpy.array(value))
            if isinstance(value, numpy.generic):
                return value.item()
        if type(value).__name__ == "OrderedDict" and depth < 8:
            return {str(key): self.plain(item, depth + 1) for key, item in value.items()}
        return self.reference(value)

    def reference(self, value: Any) -> dict:
        self.objects[id(value)] = value
        return {"__remote__": id(value), "type": getattr(type(value), "__name__", "object"),
                "callable": callable(value)}

    def resolve(self, payload: bytes) -> Any:
        runner = self

        class Unpickler(pickle.Unpickler):
            def find_class(self, module, name):
                if module == RemoteRef.__module__ and name == "RemoteRef":
                    return lambda ref: runner.objects[ref]
                return super().find_class(module, name)

        return Unpickler(io.BytesIO(payload)).load()

    # --- requests ------------------------------------------------------------------------------

    def handle(self, message: dict) -> dict:
        self.active = set(message.get("active", ()))
        self.answer_key_hit = None
        op = message["op"]
        try:
            if op == "setup":
                value = self.op_setup(message)
            else:
                with time_limits(self.cpu_seconds, self.wall_seconds):
                    value = getattr(self, f"op_{op}")(message)
            reply = {"value": self.plain(value)}
        except AnswerKeyCalled as err:
            reply = {"error": {"type": "AnswerKeyUsed", "message": str(err)}}
        except (Exception, SystemExit) as err:  # the student's code raised: its type and message go back
            reply = {"error": {"type": type(err).__name__, "message": str(err)[:2000]}}
        if self.answer_key_hit:
            reply["answer_key"] = self.answer_key_hit
        self.active = set()
        return reply

    def op_setup(self, message: dict) -> dict:
        import torch

        torch.set_num_threads(max(1, int(message.get("threads", 1))))
        self.cpu_seconds = float(message.get("cpu_seconds", self.cpu_seconds))
        self.wall_seconds = float(message.get("wall_seconds", self.wall_seconds))
        poison(message.get("answer_keys", {}), self)
        forbid_reading(message.get("answer_keys", {}))
        errors = {}
        course_cpu = float(message.get("course_cpu_seconds", self.cpu_seconds))
        for label, source, is_course in message["cells"]:
            limit = max(course_cpu, self.cpu_seconds) if is_course else self.cpu_seconds
            try:
                with time_limits(limit, max(self.wall_seconds, limit * 3)):
                    exec(compile(source, f"<{label}>", "exec"), self.namespace)
            except (Exception, SystemExit, AnswerKeyCalled) as err:  # reported; the other cells still run
                frame = traceback.extract_tb(err.__traceback__)[-1:] or [None]
                line = f" (line {frame[0].lineno})" if frame[0] is not None and \
                    frame[0].filename == f"<{label}>" else ""
                errors[label] = f"{type(err).__name__}: {str(err)[:300]}{line}"
        return {"cell_errors": errors, "names": sorted(k for k in self.namespace if not k.startswith("_"))}

    def op_get(self, message: dict) -> Any:
        if message["name"] not in self.namespace:
            raise NameError(f"name {message['name']!r} is not defined")
        return self.namespace[message["name"]]

    def op_call(self, message: dict) -> Any:
        args, kwargs = message.get("args", ()), message.get("kwargs", {})
        return self.objects[message["ref"]](*args, **kwargs)

    def op_getattr(self, message: dict) -> Any:
        return getattr(self.objects[message["ref"]], message["name"])

    def op_setattr(self, message: dict) -> None:
        setattr(self.objects[message["ref"]], message["name"], message["value"])

    def op_getitem(self, message: dict) -> Any:
        return self.objects[message["ref"]][message["key"]]

    def op_len(self, message: dict) -> int:
        return len(self.objects[message["ref"]])

    def op_list(self, message: dict) -> list:
        return list(self.objects[message["ref"]])

    def op_drive(self, message: dict) -> Any:
        module_name, qualname = message["driver"].split(":")
        if not module_name.startswith("minbert_lib."):
            raise PermissionError(f"{message['driver']} is not a driver of minbert_lib")
        driver: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            driver = getattr(driver, part)
        return driver(self.objects[message["ref"]], *message.get("args", ()), **message.get("kwargs", {}))


# --- answer keys ---------------------------------------------------------------------------------

def resolve_name(dotted: str) -> tuple[Any, str, Any]:
    """'minbert_lib.optim.AdamW' -> (module, 'AdamW', the object)."""
    module_name, _, attribute = dotted.rpartition(".")
    module = importlib.import_module(module_name)
    return module, attribute, getattr(module, attribute)


def poison(answer_keys: dict[str, list[str]], runner: Runner) -> None:
    """Make every answer key raise while its exercise is active, wherever it is referenced.

    Functions are replaced in every loaded `minbert_lib` module that holds them: as an attribute, as a
    value of a module-level dict, or as a field of a dataclass in such a dict (the losses of
    tasks.TASKS); a module imported later takes the replacement from there. Classes are guarded in
    place, which also catches aliases and subclasses.
    """
    for exercise, names in answer_keys.items():
        for dotted in names:
            try:
                _, _, original = resolve_name(dotted)
            except (ImportError, AttributeError):
                continue
            if inspect.isclass(original):
                _poison_class(original, exercise, dotted, runner)
            elif callable(original):
                _replace_everywhere(original, _guarded(original, exercise, dotted, runner))


def _replace_everywhere(original, replacement) -> None:
    """Put `replacement` wherever a loaded minbert_lib module holds `original` (see `poison`)."""
    for module in list(sys.modules.values()):
        if not getattr(module, "__name__", "").startswith("minbert_lib"):
            continue
        for attribute, value in list(vars(module).items()):
            if value is original:
                setattr(module, attribute, replacement)
            elif isinstance(value, dict):
                for key, item in list(value.items()):
                    if item is original:
                        value[key] = replacement
                    elif dataclasses.is_dataclass(item) and not isinstance(item, type):
                        for field in dataclasses.fields(item):
                            if getattr(item, field.name) is original:
                                object.__setattr__(item, field.name, replacement)  # frozen dataclasses too


def _guarded(function, exercise: str, dotted: str, runner: Runner):
    @functools.wraps(function)
    def guarded(*args, **kwargs):
        if exercise in runner.active:
            runner.answer_key_hit = f"{dotted} (the answer key of this exercise)"
            raise AnswerKeyCalled(f"{dotted} is the answer key of this exercise: write your own")
        return function(*args, **kwargs)
    with contextlib.suppress(TypeError, ValueError):  # a signature for help() and the checks
        guarded.__signature__ = inspect.signature(function)
    del guarded.__wrapped__  # functools.wraps would hand the unguarded answer key to whoever asks
    return guarded


def _poison_class(cls: type, exercise: str, dotted: str, runner: Runner) -> None:
    """Guard the class's own methods in place: aliases and subclasses that call them are caught."""
    for attribute, value in list(vars(cls).items()):
        if inspect.isfunction(value):
            setattr(cls, attribute, _guarded(value, exercise, dotted, runner))
        elif isinstance(value, (staticmethod, classmethod)):
            setattr(cls, attribute, type(value)(_guarded(value.__func__, exercise, dotted, runner)))


def forbid_reading(answer_keys: dict[str, list[str]]) -> None:
    """From now on, no code in this process may open the source of a module holding an answer key."""
    protected = set()
    for names in answer_keys.values():
        for dotted in names:
            module = sys.modules.get(dotted.rpartition(".")[0])
            if module is not None and getattr(module, "__file__", None):
                path = Path(module.__file__).resolve()
                protected.add(str(path))
                protected.add(str(path.parent / "__pycache__" / path.stem))
    if not protected:
        return

    def hook(event: str, args: tuple) -> None:
        if event in ("open", "os.open") and args and isinstance(args[0], (str, bytes, os.PathLike)):
            path = os.fsdecode(args[0])
            try:
                resolved = str(Path(path).resolve())
            except (OSError, RuntimeError):
                resolved = path
            if any(resolved == p or resolved.startswith(p + ".") for p in protected):
                raise PermissionError(f"{path}: the reference library's source cannot be read while grading")

    sys.addaudithook(hook)


# --- the loop ------------------------------------------------------------------------------------

def main() -> None:
    protocol_in = os.fdopen(os.dup(0), "rb", buffering=0)
    protocol_out = os.fdopen(os.dup(1), "wb")
    quiet = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # the student's prints, and anything that writes to the standard streams
        os.dup2(quiet, fd)
    sys.stdin = open(os.devnull)  # noqa: SIM115
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.pop(GRADED_OUTSIDE_ENV, None)  # the tests read this process's training: the grading budget
    runner = Runner()
    while True:
        header = _read(protocol_in, HEADER.size)
        if header is None:
            return
        size = HEADER.unpack(header)[0]
        if size > MAX_FRAME:
            return
        payload = _read(protocol_in, size)
        if payload is None:
            return
        message = runner.resolve(payload)
        reply = runner.handle(message)
        try:
            data = encode_reply(reply)
        except Exception as err:  # a value torch.save cannot write
            data = encode_reply({"error": {"type": type(err).__name__, "message": "the result could not be sent"}})
        write_frame(protocol_out, data)


def _read(stream, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


if __name__ == "__main__":
    main()
