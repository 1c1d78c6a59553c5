"""The student's side and the grader's side of a check, possibly in two processes.

A check never touches a student's function or class directly: it calls

    drive(driver, student, *args, **kwargs)

where `driver` is a module-level function of `minbert_lib` (so that it can be found by name
in another process), `student` is the student's function or class, and the arguments and the
returned value are plain data: tensors, numbers, strings, bools, None, dtypes, and lists,
tuples and dicts of them. The driver runs the student's code on the arguments and returns
raw quantities (outputs, trajectories, parameters, gradients), never a verdict: the check
compares them with the reference outside the driver.

When grading, the student's definitions live in a sandboxed *runner* process
(`minbert_lib.grading.runner`) and the grader holds `RemoteObject` proxies for them. The wire:
a frame is an 8-byte length and a payload. The grader sends pickles (the runner trusts the
grader); the runner answers with `torch.save` payloads that the grader opens with
`torch.load(weights_only=True)`, which builds tensors and plain containers only, never
objects of the runner's choosing. Whatever is not plain data stays in the runner and comes
back as a reference, `{"__remote__": id, ...}`.
"""
from __future__ import annotations

import builtins
import io
import os
import pickle
import select
import signal
import struct
import subprocess
import time
from typing import Any, Callable

import torch

MAX_FRAME = 1 << 30  # 1 GiB: a runner that sends more is treated as broken
HEADER = struct.Struct("<Q")


def drive(driver: Callable[..., Any], student: Any, *args: Any, **kwargs: Any) -> Any:
    """Run `driver(student, *args, **kwargs)`: here, or in the student's process when grading."""
    remote_call = getattr(student, "__minbert_remote_drive__", None)
    if remote_call is not None:  # a proxy for a definition that lives in the sandboxed runner
        return remote_call(driver, *args, **kwargs)
    return driver(student, *args, **kwargs)


# --- errors the grader sees ----------------------------------------------------------------------

class StudentError(Exception):
    """The student's code raised an exception in the runner (its type name and message)."""

    def __init__(self, type_name: str, message: str):
        super().__init__(f"{type_name}: {message}" if message else type_name)
        self.type_name, self.message = type_name, message


def builtin_exception_name(type_name: str) -> str:
    """`type_name` if it is one of Python's own exceptions, else words that say nothing of the inputs."""
    builtin = getattr(builtins, type_name, None)
    return type_name if isinstance(builtin, type) and issubclass(builtin, BaseException) else "an exception"


class AnswerKeyUsed(Exception):
    """The student's definition used the reference implementation of the exercise under test."""


class RunnerFailed(Exception):
    """The runner died, went silent past its limit, or broke the protocol; the message says which."""


# --- frames --------------------------------------------------------------------------------------

def write_frame(stream, payload: bytes) -> None:
    stream.write(HEADER.pack(len(payload)) + payload)
    stream.flush()


def read_exactly(fd: int, size: int, ready: Callable[[], None]) -> bytes:
    """`size` bytes from `fd`; `ready()` is called while waiting and raises to give up."""
    chunks, left = [], size
    while left:
        ready()
        readable, _, _ = select.select([fd], [], [], 0.2)
        if not readable:
            continue
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise RunnerFailed("the runner closed its output (it exited or was killed)")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def encode_reply(value: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def decode_reply(payload: bytes) -> Any:
    return torch.load(io.BytesIO(payload), weights_only=True)


# --- the grader's side ---------------------------------------------------------------------------

def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its waited-for children, from /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and every process below it (bwrap's child, the runner, its threads)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += process_cpu_seconds(current)
        todo += children.get(current, [])
    return total


class Runner:
    """A runner process seen from the grader: send a request, wait for its reply within limits.

    Limits are in CPU seconds (what the request may burn, the same on a busy machine as on a
    quiet one) and, far above it, in wall-clock seconds (for code that sleeps or blocks).
    """

    def __init__(self, command: list[str], env: dict[str, str] | None = None, cwd: str | None = None):
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True)
        self.broken: str | None = None

    def request(self, message: dict, cpu_seconds: float, wall_seconds: float) -> Any:
        if self.broken:
            raise RunnerFailed(self.broken)
        try:
            write_frame(self.process.stdin, pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
        except (BrokenPipeError, OSError):
            self.fail("the runner exited before the request could be sent")
        start_cpu, start_wall = tree_cpu_seconds(self.process.pid), time.monotonic()
        last_check = [start_wall]

        def within_limits() -> None:
            now = time.monotonic()
            if now - start_wall > wall_seconds:
                self.fail(f"no answer within {wall_seconds:.0f} s (a loop that never ends, or a sleep?)")
            if now - last_check[0] > 1.0:
                last_check[0] = now
                used = tree_cpu_seconds(self.process.pid) - start_cpu
                if used > cpu_seconds:
                    self.fail(f"used more than {cpu_seconds:.0f} s of CPU time (a loop that never ends?)")
            if self.process.poll() is not None:
                self.fail(f"the runner exited (code {self.process.returncode}): the code crashed Python, "
                          "called exit, or ran out of memory")

        fd = self.process.stdout.fileno()
        try:
            size = HEADER.unpack(read_exactly(fd, HEADER.size, within_limits))[0]
            if size > MAX_FRAME:
                self.fail(f"the runner sent {size} bytes, more than the {MAX_FRAME} allowed")
            reply = decode_reply(read_exactly(fd, size, within_limits))
        except RunnerFailed as err:
            self.fail(str(err))
        except Exception as err:  # a payload torch.load refuses: not a reply of the runner's code
            self.fail(f"the runner's reply could not be read ({type(err).__name__})")
        if not isinstance(reply, dict):
            self.fail("the runner's reply is not a dict")
        return reply

    def fail(self, reason: str):
        self.broken = reason
        self.close()
        raise RunnerFailed(reason)

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


class Session:
    """The grader's conversation with one runner: names, references and the exercises under test."""

    def __init__(self, runner: Runner, cpu_seconds: float, wall_seconds: float):
        self.runner = runner
        self.cpu_seconds, self.wall_seconds = cpu_seconds, wall_seconds
        self.active: list[str] = []  # the exercises whose answer keys must not be used now

    def ask(self, op: str, **fields: Any) -> Any:
        reply = self.runner.request({"op": op, "active": list(self.active), **fields},
                                    self.cpu_seconds, self.wall_seconds)
        if reply.get("answer_key"):
            raise AnswerKeyUsed(reply["answer_key"])
        if "error" in reply:
            error = reply["error"]
            if error.get("type") == "AttributeError" and op == "getattr":
                raise AttributeError(error.get("message", ""))
            raise StudentError(str(error.get("type", "Exception")), str(error.get("message", ""))[:2000])
        return self.wrap(reply["value"])

    def wrap(self, value: Any) -> Any:
        """Turn the runner's references back into proxies, inside containers too."""
        if isinstance(value, dict):
            if "__remote__" in value:
                return RemoteObject(self, int(value["__remote__"]), str(value.get("type", "object")),
                                    bool(value.get("callable")))
            return {key: self.wrap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.wrap(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.wrap(item) for item in value)
        return value

    def setup(self, message: dict, cpu_seconds: float, wall_seconds: float) -> dict:
        reply = self.runner.request({"op": "setup", **message}, cpu_seconds, wall_seconds)
        if "error" in reply:
            raise RunnerFailed(f"the runner could not start: {reply['error'].get('message', '')}")
        return reply["value"]

    def name(self, name: str) -> Any:
        return self.ask("get", name=name)


class RemoteRef:
    """How a proxy travels back to the runner inside a pickled request."""

    def __init__(self, ref: int):
        self.ref = ref


class RemoteObject:
    """A proxy for an object that lives in the runner: calls, attributes, items and iteration."""

    def __init__(self, session: Session, ref: int, type_name: str, is_callable: bool):
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_ref", ref)
        object.__setattr__(self, "_type_name", type_name)
        object.__setattr__(self, "_callable", is_callable)

    def __reduce__(self):
        return RemoteRef, (self._ref,)

    def __repr__(self) -> str:
        return f"<{self._type_name} in the student's process>"

    def __call__(self, *args, **kwargs):
        return self._session.ask("call", ref=self._ref, args=args, kwargs=kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._session.ask("getattr", ref=self._ref, name=name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._session.ask("setattr", ref=self._ref, name=name, value=value)

    def __getitem__(self, key):
        return self._session.ask("getitem", ref=self._ref, key=key)

    def __len__(self) -> int:
        return self._session.ask("len", ref=self._ref)

    def __iter__(self):
        return iter(self._session.ask("list", ref=self._ref))

    def __minbert_remote_drive__(self, driver: Callable[..., Any], *args, **kwargs):
        return self._session.ask("drive", ref=self._ref, driver=f"{driver.__module__}:{driver.__qualname__}",
                                 args=args, kwargs=kwargs)

    @property
    def __name__(self) -> str:  # checks name the student's class in their messages
        return self._type_name
