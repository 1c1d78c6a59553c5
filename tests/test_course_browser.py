"""JupyterLab in a real headless browser: a released notebook opens and runs a cell, and the
nbgrader formgrader loads.

Needs Debian's chromium (`apt-get install chromium`, done by .ci/run) and playwright
(requirements-dev.txt). The screenshots go to build/screenshots/ (gitignored):
jupyterlab.png and formgrader.png.
"""
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = shutil.which("chromium")
from autograder import course  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a released copy of the course; yields its base URL and token."""
    root = course.copy_course(tmp_path_factory.mktemp("lab") / "course")
    course.release(["01_attention"], root=root, execute=False)
    port, token = free_port(), secrets.token_hex(16)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces")}
    log = open(root / "jupyter.log", "w")
    # The server starts in autograder/, where nbgrader finds the course's nbgrader_config.py.
    server = subprocess.Popen(
        [str(bin_dir / "jupyter"), "lab", "--no-browser", "--allow-root", f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}"],
        cwd=root / "autograder", env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"JupyterLab did not start; see {root / 'jupyter.log'}") from None
                time.sleep(0.5)
        yield url, token
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def assert_real_image(path: Path, width: int, height: int) -> None:
    """The file is a PNG of the page's size with many colours, not a blank or uniform picture."""
    import matplotlib.image
    import numpy as np

    pixels = matplotlib.image.imread(path)  # (height, width, channels), floats in [0, 1]
    assert pixels.shape[:2] == (height, width)
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50 and pixels[..., :3].std() > 0.05, f"{path} looks blank"


def test_a_released_notebook_opens_and_runs_a_cell(lab, browser):
    from playwright.sync_api import expect

    url, token = lab
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{url}/lab/tree/notebooks/01_attention/01_attention.ipynb?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=90_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    first_code = page.locator(".jp-Notebook .jp-CodeCell").first
    assert "from minbert_lib import checks" in first_code.inner_text()
    prompt = first_code.locator(".jp-InputPrompt")
    for attempt in range(3):  # on a busy machine the page may still swallow the first key press
        first_code.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        try:
            expect(prompt).to_have_text(re.compile(r"\[\d+\]:"), timeout=40_000)  # it ran
            break
        except AssertionError:
            if attempt == 2:
                raise
    assert first_code.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "jupyterlab.png")
    page.close()
    assert_real_image(SCREENSHOTS / "jupyterlab.png", 1280, 900)


def test_the_formgrader_lists_the_released_assignment(lab, browser):
    url, token = lab
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{url}/formgrader?token={token}")
    page.wait_for_selector("text=01_attention", timeout=60_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "formgrader.png")
    page.close()
    assert_real_image(SCREENSHOTS / "formgrader.png", 1280, 900)
