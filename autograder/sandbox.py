"""Run a student's Jupyter kernel in a bubblewrap sandbox (Linux).

`course.py autograde` runs nbgrader outside the sandbox, with the gradebook, and points it at
the kernel `minbert-sandbox`, whose command is this script:

    python autograder/sandbox.py [--memory-mib N] [--cpu-seconds N] [--processes N] [--disk-mib N]
                                 CONNECTION_FILE [KERNEL_ARGS ...]

It starts `python -m ipykernel_launcher` under `prlimit` and `bwrap`: no network, its own
process tree, a read-only view of the system, Python and `minbert_lib` only (never the
course's `solutions/`, `autograder/` or other students' folders), a private, size-limited
working folder that holds read-only copies of the submission's files (never the notebook,
which nbgrader fills with the hidden tests), and, when run as root, the user `nobody` with
no capabilities. nbgrader talks to the kernel through Unix sockets in the connection file's
folder, the only host folder the sandbox may write.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

KERNEL_NAME = "minbert-sandbox"
SANDBOX_UID = 65534  # nobody: the process limit counts this user's processes only
JOB_UIDS = range(1_900_000_000, 1_901_000_000)  # one each for submissions graded at once (job_uid)
ROOT = Path(__file__).resolve().parents[1]
SYSTEM_LINKS = ("/bin", "/lib", "/lib64", "/sbin")
PASSED_ENV = ("LANG", "LC_ALL", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
PASSED_ENV_PREFIXES = ("NBGRADER_", "MINBERT_")  # not JPY_PARENT_PID: the kernel would see pid 1 and quit


@dataclass
class Limits:
    """What one kernel may use; each process gets its own CPU time and address space."""
    memory_mib: int = 6144
    cpu_seconds: int = 900
    processes: int = 256
    disk_mib: int = 512  # the working folder and /tmp each, and the largest file
    # The whole submission (kernel, runner and every process they start, and what they write to
    # their tmpfs folders): memory and processes in one cgroup, where the machine lets us make one.
    submission_memory_mib: int = 8192
    runtime_mib: int = 16  # the kernel's runtime folder (connection file and sockets), a tmpfs
    # The user the sandbox runs as, when grading as root. The process limit counts all of one
    # user's processes, so submissions graded at once each get their own (`job_uid`).
    uid: int = SANDBOX_UID


CGROUP_ROOT = Path("/sys/fs/cgroup")


class SubmissionBounds:
    """One cgroup for everything a submission runs: its memory (tmpfs pages included) and its processes.

    cgroup v1 (a memory and a pids hierarchy) or v2 (one unified folder); made when we are root
    and the hierarchy is writable, else `paths` is empty and only the per-process limits hold.
    `close()` kills what is left in it and removes it.
    """

    def __init__(self, name: str, limits: Limits):
        self.paths: list[Path] = []
        settings = {"memory": {"memory.limit_in_bytes": limits.submission_memory_mib * 2**20},
                    "pids": {"pids.max": limits.processes}}
        unified = {"memory.max": limits.submission_memory_mib * 2**20, "memory.swap.max": 0,
                   "pids.max": limits.processes}
        if os.geteuid() != 0:
            return
        if (CGROUP_ROOT / "cgroup.controllers").is_file():  # v2
            candidates = [(CGROUP_ROOT / f"minbert-{name}", unified)]
        else:
            candidates = [(CGROUP_ROOT / kind / f"minbert-{name}", values) for kind, values in settings.items()]
        for path, values in candidates:
            try:
                path.mkdir(exist_ok=True)
                for key, value in values.items():
                    if (path / key).exists():
                        (path / key).write_text(str(value))
                self.paths.append(path)
            except OSError:  # not writable here: the per-process limits still hold
                continue

    def argument(self) -> str:
        return ",".join(str(p) for p in self.paths)

    def close(self) -> None:
        """Kill what is left in the cgroup and remove it."""
        self.kill()
        for path in self.paths:
            try:
                path.rmdir()
            except OSError:
                pass

    def kill(self) -> None:
        """Kill every process still in the cgroup (the kernel's leftovers, a fork bomb)."""
        for path in self.paths:
            for _ in range(50):
                try:
                    pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
                except OSError:
                    break
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.05)


def join_cgroups(argument: str) -> None:
    """Move this process (and so everything it starts) into the submission's cgroups."""
    for path in filter(None, argument.split(",")):
        (Path(path) / "cgroup.procs").write_text(str(os.getpid()))


def mount_runtime(folder: Path, limits: Limits) -> bool:
    """Make the kernel's runtime folder a small tmpfs (as root), so that writing there is bounded too."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={limits.runtime_mib}m,mode=0755", "tmpfs",
                             str(folder)], capture_output=True)
    return result.returncode == 0


def unmount_runtime(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def problem() -> str | None:
    """Why the sandbox cannot run on this machine, or None when it can."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return "bwrap (bubblewrap) is not installed"
    user_ns = [] if os.geteuid() == 0 else ["--unshare-user"]
    result = subprocess.run([bwrap, *user_ns, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        return f"bwrap does not start here: {result.stderr.strip() or result.returncode}"
    return None


def write_kernelspec(folder: Path, limits: Limits, cgroups: str = "") -> None:
    """Write the `minbert-sandbox` kernelspec under folder/kernels/, for JUPYTER_PATH=folder."""
    spec = folder / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, str(Path(__file__).resolve()), f"--memory-mib={limits.memory_mib}",
            f"--cpu-seconds={limits.cpu_seconds}", f"--processes={limits.processes}",
            f"--disk-mib={limits.disk_mib}", f"--uid={limits.uid}", f"--cgroups={cgroups}", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": argv, "display_name": "minBERT sandbox", "language": "python"}), encoding="utf-8")


def readonly_paths() -> list[Path]:
    """The host folders the kernel sees, read-only: the system, Python, minbert_lib, the data."""
    package = importlib.util.find_spec("minbert_lib")
    paths = [Path("/usr"), Path("/etc"), Path(sys.base_prefix), Path(sys.prefix), ROOT / "data"]
    paths += [Path(p) for p in SYSTEM_LINKS if not os.path.islink(p)]
    if package is not None and package.origin:
        paths.append(Path(package.origin).parent)
    if os.environ.get("MINBERT_DATA_DIR"):
        paths.append(Path(os.environ["MINBERT_DATA_DIR"]))
    return [p.absolute() for p in paths if p.exists()]  # bwrap follows a link in the source, not in the target


def command(workdir: Path, runtime: Path | None, kernel: list[str], limits: Limits,
            extra_env: dict[str, str] | None = None, readonly: list[Path] = ()) -> list[str]:
    """prlimit + bwrap around the kernel command; `workdir` becomes a private folder.

    `runtime` is the one host folder the process may write (a kernel's connection file and
    sockets); None for a process that talks over its pipes only, which then writes nothing
    but bounded tmpfs folders.

    `extra_env` is set inside the sandbox; `readonly` folders are shown read-only, besides the usual ones.
    """
    disk = str(limits.disk_mib * 2**20)
    processes = limits.processes if os.geteuid() == 0 else limits.processes + user_tasks()
    cmd = ["prlimit", f"--as={limits.memory_mib * 2**20}", f"--cpu={limits.cpu_seconds}",
           f"--nproc={processes}", f"--fsize={disk}", "--core=0", "--",
           "bwrap", "--die-with-parent", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
           "--unshare-cgroup-try", "--clearenv", "--proc", "/proc", "--dev", "/dev",
           "--perms", "1777", "--size", disk, "--tmpfs", "/tmp"]
    if os.geteuid() != 0:
        cmd.append("--unshare-user")
    for link in SYSTEM_LINKS:  # merged-/usr systems link these into /usr
        if os.path.islink(link):
            cmd += ["--symlink", os.readlink(link), link]
    made = {Path("/"), Path("/tmp")}

    def parents(path: Path) -> list[str]:  # bwrap would make missing parents readable by root only
        new = [p for p in reversed(path.parents) if p not in made]
        made.update(new)
        return [arg for p in new for arg in ("--perms", "0755", "--dir", str(p))]

    for path in dict.fromkeys(readonly_paths() + [p.absolute() for p in readonly if p.exists()]):
        cmd += [*parents(path), "--ro-bind", str(path), str(path)]
    cmd += [*parents(workdir), "--perms", "0777", "--size", disk, "--tmpfs", str(workdir)]
    for entry in sorted(workdir.iterdir()):  # the submission's files, never the notebook under grading
        if entry.suffix != ".ipynb" and not entry.is_symlink():
            cmd += ["--ro-bind", str(entry), str(entry)]
    if runtime is not None:
        cmd += [*parents(runtime), "--bind", str(runtime), str(runtime)]
    cmd += ["--chdir", str(workdir)]
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp",
           **{k: v for k, v in os.environ.items() if k in PASSED_ENV or k.startswith(PASSED_ENV_PREFIXES)},
           **(extra_env or {})}
    for key, value in sorted(env.items()):
        cmd += ["--setenv", key, value]
    if os.geteuid() == 0:
        cmd += ["setpriv", f"--reuid={limits.uid}", f"--regid={limits.uid}", "--clear-groups",
                "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    return cmd + kernel


def job_uid(student: str, assignment: str) -> int:
    """The sandbox's user for one submission graded beside others, from a hash of its name: an
    even id of JOB_UIDS, for its kernel; the next one is its runner's."""
    digest = hashlib.sha256(f"{student}/{assignment}".encode()).digest()
    return JOB_UIDS[int.from_bytes(digest[:8], "big") % (len(JOB_UIDS) // 2) * 2]


def user_tasks() -> int:
    """How many processes and threads this user runs now (the process limit counts them all)."""
    count = 0
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:  # the process ended while we looked
            continue
        if int(fields["Uid"].split()[0]) == os.getuid():
            count += int(fields["Threads"])
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Start an IPython kernel in a bubblewrap sandbox.")
    for name, default in vars(Limits()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=default)
    parser.add_argument("--cgroups", default="", help="cgroup folders to join first (comma-separated)")
    parser.add_argument("connection_file", type=Path)
    parser.add_argument("kernel_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    limits = Limits(**{name: getattr(args, name) for name in vars(Limits())})
    join_cgroups(args.cgroups)
    runtime = args.connection_file.resolve().parent
    if os.geteuid() == 0:  # the kernel runs as limits.uid: it must read the connection file and make its sockets
        for path in (runtime, args.connection_file):
            os.chown(path, limits.uid, limits.uid)
    kernel = [sys.executable, "-m", "ipykernel_launcher", "-f", str(args.connection_file.resolve()),
              *args.kernel_args]
    cmd = command(Path.cwd(), runtime, kernel, limits)
    # Jupyter interrupts a kernel with SIGINT to its process group: bwrap must not die of it (the
    # kernel sets its own handler while it runs a cell).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.execvp(cmd[0], cmd)


def exec_in_cgroups(argv: list[str]) -> None:
    """`sandbox.py exec CGROUPS -- COMMAND ...`: join the cgroups, then become COMMAND (the grader's runner)."""
    cgroups, command = argv[0], argv[argv.index("--") + 1:]
    try:
        join_cgroups(cgroups)
    except OSError as err:  # the per-process limits still hold; say why the submission-wide ones do not
        print(f"sandbox.py: could not join {cgroups}: {err}", file=sys.stderr)
    os.execvp(command[0], command)


if __name__ == "__main__":
    if sys.argv[1:2] == ["exec"]:
        exec_in_cgroups(sys.argv[2:])
    else:
        main()
