"""The sandbox bounds a whole submission, not each process or file: memory of all its processes,
the kernel's runtime folder, and the rich outputs kept in the graded notebook."""
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
from autograder import sandbox  # noqa: E402
from autograder.limit_output import LimitedExecute  # noqa: E402

needs_sandbox = pytest.mark.skipif(sandbox.problem() is not None or os.geteuid() != 0,
                                   reason="needs bubblewrap and root (for the cgroup and the tmpfs)")

# Three processes of 200 MB each: every one is far below the per-process address-space limit,
# together they are over the submission's 400 MiB.
GREEDY = """
import os, sys, time
children = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        hog = bytearray(200 * 2**20)
        for i in range(0, len(hog), 4096):
            hog[i] = 1
        time.sleep(2)
        os._exit(0)
    children.append(pid)
killed = sum(os.WEXITSTATUS(s) != 0 or os.WIFSIGNALED(s) for s in (os.waitpid(p, 0)[1] for p in children))
print(f"killed {killed}")
"""


@needs_sandbox
def test_the_memory_of_all_a_submissions_processes_is_bounded(tmp_path):
    limits = sandbox.Limits(submission_memory_mib=400)
    bounds = sandbox.SubmissionBounds(f"test-{os.getpid()}", limits)
    if not bounds.paths:
        pytest.skip("no writable cgroup hierarchy here")
    try:
        work, runtime = tmp_path / "work", tmp_path / "run"
        work.mkdir()
        runtime.mkdir()
        command = sandbox.command(work, runtime, [sys.executable, "-c", GREEDY], limits)
        command = [sys.executable, sandbox.__file__, "exec", bounds.argument(), "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert "killed 0" not in result.stdout, (result.stdout, result.stderr)
    finally:
        bounds.close()
    assert not any(p.exists() for p in bounds.paths)


@needs_sandbox
def test_the_kernels_runtime_folder_is_a_small_tmpfs(tmp_path):
    limits = sandbox.Limits(runtime_mib=4)
    runtime = tmp_path / "run"
    runtime.mkdir()
    assert sandbox.mount_runtime(runtime, limits)
    try:
        with pytest.raises(OSError):
            (runtime / "big").write_bytes(b"x" * 8 * 2**20)
    finally:
        sandbox.unmount_runtime(runtime)


def test_rich_outputs_past_the_limit_are_dropped():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from IPython.display import HTML, display\n"
                                  "for _ in range(40):\n    display(HTML('<p>' + 'x' * 500_000 + '</p>'))\n"
                                  "'y' * 3_000_000"),
        nbformat.v4.new_code_cell("print('next cell')")])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    executed, _ = LimitedExecute(max_rich_bytes=1_000_000).preprocess(nb, {"metadata": {"path": "."}})
    kept = sum(len(str(o.get("data", ""))) for o in executed.cells[0].outputs)
    assert kept <= 1_100_000
    assert any("truncated" in o.get("text", "") for o in executed.cells[0].outputs)
    assert executed.cells[1].outputs[0].text == "next cell\n"



def test_the_whole_notebook_keeps_at_most_its_limit():
    """Cells each under their own limit add up: the notebook's total is bounded as well."""
    html_cell = "from IPython.display import HTML, display\ndisplay(HTML('<p>' + 'x' * 400_000 + '</p>'))"
    print_cell = "print('z' * 90_000)"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(html_cell if i % 2 else print_cell)
                                         for i in range(20)])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    executed, _ = LimitedExecute(max_notebook_bytes=1_500_000).preprocess(nb, {"metadata": {"path": "."}})
    kept = sum(len(o.get("text", "")) + len(str(o.get("data", ""))) for c in executed.cells for o in c.outputs)
    assert 1_000_000 < kept <= 1_600_000  # 20 cells would keep 4.9 MB without it
    assert any("truncated" in o.get("text", "") for o in executed.cells[-1].outputs)

WRITE_EVERYWHERE = """
import os
written = []
for folder in {folders!r}:
    try:
        with open(os.path.join(folder, "sandbox-was-here"), "wb") as f:
            f.write(b"x")
        written.append(folder)
    except OSError:
        pass
print("written:", written)
"""


@needs_sandbox
def test_the_runner_writes_no_host_folder(tmp_path):
    """The grader's runner talks over its pipes: no host folder is bound writable for it."""
    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    code = WRITE_EVERYWHERE.format(folders=[str(tmp_path), str(outside), str(ROOT)])
    command = sandbox.command(work, None, [sys.executable, "-c", code], sandbox.Limits())
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert "written: []" in result.stdout, (result.stdout, result.stderr)
    assert not list(tmp_path.rglob("sandbox-was-here")) and not (ROOT / "sandbox-was-here").exists()
