"""Grader processes that start warm: forked from a process that has already imported the grader.

Every notebook's grade is decided by a fresh grader process (`minbert_lib.grading.grader`).
Started from scratch, each one spends about 2.5 CPU seconds importing torch, the checks and
the course's plotting libraries before it grades anything: an eighth of a whole submission's
grading time on two cores. `run_grader` instead forks it from a *zygote*: one process per
instructor's command that imported those modules once and does nothing but fork. Each grader
still starts from a process that has never seen a submission, only without the wait.

    zygote  <- one JSON request per line: argv, env, cwd, log, status
            -> the forked grader's pid; the grader writes its exit code to `status` when done

The zygote ends with its parent: its stdin closes. (Not by PR_SET_PDEATHSIG, which fires when
the *thread* that started it ends: grading threads come and go.) Each grader gets SIGKILL when
the zygote ends. Off Linux, or with MINBERT_COLD_GRADER=1, each grader starts from scratch.
"""
from __future__ import annotations

import ctypes
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path

# What every grader imports before it grades: torch, the checks, the grader, and the course's
# notebook imports (matplotlib and seaborn among them).
PRELOAD = ["minbert_lib.grading.grader", "minbert_lib.checks", "nbformat", "matplotlib.pyplot", "seaborn"]
COLD_ENV = "MINBERT_COLD_GRADER"
GRADER = [sys.executable, "-m", "minbert_lib.grading.grader"]
KIT = Path(__file__).resolve().parents[1]  # where autograder/ and minbert_lib/ are


def die_with_parent() -> None:
    """In a child process: get SIGKILL when the parent dies (Linux), so a killed grader leaves nothing running."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_grader(argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> int:
    """Run `python -m minbert_lib.grading.grader ARGV` with `env` in `cwd`, its stderr in `log`: its exit code."""
    if not sys.platform.startswith("linux") or os.environ.get(COLD_ENV, "") in ("1", "true", "yes"):
        with open(log, "w", encoding="utf-8") as err:
            return subprocess.run([*GRADER, *argv], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=err,
                                  preexec_fn=die_with_parent).returncode
    status = log.with_name(log.name + ".status")
    pid = Zygote.get().fork({"argv": argv, "env": env, "cwd": str(cwd), "log": str(log), "status": str(status)})
    wait_for_exit(pid)
    try:
        return int(status.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # killed before it could say: a crash, or out of memory
        return 1


def wait_for_exit(pid: int) -> None:
    """Wait for a process that is not our child (the zygote reaps it)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return  # already gone
    try:
        select.select([pidfd], [], [])
    finally:
        os.close(pidfd)


class Zygote:
    """The one zygote of this process, started on first use."""
    _instance: Zygote | None = None
    _instance_lock = threading.Lock()

    def __init__(self):
        env = {**os.environ, "MPLBACKEND": "Agg"}
        self.process = subprocess.Popen([sys.executable, "-m", "autograder.warm"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env, cwd=KIT)
        self.lock = threading.Lock()

    @classmethod
    def get(cls) -> Zygote:
        with cls._instance_lock:
            if cls._instance is None or cls._instance.process.poll() is not None:
                cls._instance = cls()
            return cls._instance

    def fork(self, request: dict) -> int:
        with self.lock:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            reply = self.process.stdout.readline()
        if not reply.strip():
            raise RuntimeError("the grader zygote exited before it could start a grader")
        return int(reply)


def serve() -> None:
    """The zygote: import the grader's modules, then fork one grader per request until stdin closes."""
    for module in PRELOAD:
        importlib.import_module(module)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the graders: no zombies
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                grade(**request)  # ends with os._exit
            finally:
                os._exit(1)  # never back into this loop: a failed grader must not become a second zygote
        print(pid, flush=True)


def grade(argv: list[str], env: dict[str, str], cwd: str, log: str, status: str) -> None:
    """In a forked grader: the environment, folder and streams a fresh process would have, then grade."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the grader waits for its runner
    die_with_parent()
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    with open(os.devnull, "rb") as null_in, open(os.devnull, "wb") as null_out, open(log, "wb") as err:
        os.dup2(null_in.fileno(), 0)
        os.dup2(null_out.fileno(), 1)
        os.dup2(err.fileno(), 2)
    import torch

    from minbert_lib.grading import grader

    torch.set_num_threads(int(env.get("OMP_NUM_THREADS", "1")))
    try:
        code = grader.main(argv) or 0
    except SystemExit as exit_:  # argparse's refusal
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # noqa: BLE001: whatever stops the grader is written to its log
        traceback.print_exc()
        code = 1
    sys.stderr.flush()
    Path(status).write_text(str(code), encoding="utf-8")
    os._exit(code)


if __name__ == "__main__":
    serve()
