"""JupyterLab driven in headless Chromium, for tests/test_browser.py.

JupyterLab starts as `./labkit lab` starts it (127.0.0.1, a token, no browser), on a
free port, serving a copy of the notebooks: a run in the browser saves into the copy,
never into labs/. Chromium and its driver are Debian's (lablib/machine/test-packages.txt).
"""
from __future__ import annotations

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

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ROOT = Path(__file__).resolve().parent.parent
JUPYTER = Path(sys.executable).parent / "jupyter"   # the running environment's
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
WINDOW = (1366, 900)   # a laptop screen


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """A JupyterLab server on 127.0.0.1 serving `root`, as `./labkit lab` runs it."""

    def __init__(self, root: Path, home: Path):
        self.root, self.port, self.token = root, free_port(), secrets.token_hex(16)
        args = [str(JUPYTER), "lab", f"--notebook-dir={root}", "--ServerApp.ip=127.0.0.1", "--no-browser",
                f"--ServerApp.port={self.port}", f"--ServerApp.token={self.token}", "--ServerApp.port_retries=0"]
        if os.geteuid() == 0:
            args.append("--allow-root")
        # Settings and workspaces of its own, so a run starts from JupyterLab's defaults.
        env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
                   JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), JUPYTER_RUNTIME_DIR=str(home / "runtime"))
        self.log = open(home / "jupyterlab.log", "wb")
        self.process = subprocess.Popen(args, cwd=root, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.base}/api/status?token={self.token}", timeout=2)
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start; see {home / 'jupyterlab.log'}") from None
                time.sleep(0.3)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}/lab/tree/{path}?token={self.token}&reset"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}", "--hide-scrollbars"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def copy_labs(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for path in (ROOT / "labs").glob("*.ipynb"):
        shutil.copy(path, target / path.name)
    return target


class Notebook:
    """One notebook open in JupyterLab, seen and worked as a learner would."""

    def __init__(self, driver: webdriver.Chrome, lab: JupyterLab, path: str):
        self.driver, self.lab, self.path = driver, lab, path
        driver.get(lab.url(path))
        self.wait(lambda: self.js("return !!document.querySelector('.jp-NotebookPanel .jp-Cell')"
                                  " && !!document.querySelector('.jp-Notebook-ExecutionIndicator')"), 90,
                  "the notebook to open")
        self.wait(self.kernel_ready, 90, "the kernel to start")
        time.sleep(1)   # a kernel dialog may come a moment after the kernel
        self.wait(self.kernel_ready, 90, "the kernel to start")

    def kernel_ready(self) -> bool:
        """The kernel is idle, once JupyterLab's "Select Kernel" question (if asked) is answered."""
        if self.js("return !!document.querySelector('.jp-Dialog')"):
            self.js("document.querySelector('.jp-Dialog .jp-mod-accept').click()")
            return False
        return self.kernel_idle()

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def wait(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if condition():
                    return
            except StaleElementReferenceException:
                pass
            if time.monotonic() > deadline:
                self.screenshot(f"timeout-{Path(self.path).stem}")
                raise AssertionError(f"waited {timeout:g} s for {what} in {self.path}")
            time.sleep(0.25)

    def kernel_idle(self) -> bool:
        return bool(self.js("""
            const i = document.querySelector('.jp-Notebook-ExecutionIndicator');
            return i && i.getAttribute('data-status') === 'idle';"""))

    def busy_cells(self) -> int:
        return self.js("""return [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-InputPrompt')]
                          .filter(p => p.textContent.includes('*')).length;""")

    def command(self, menu: str, item: str) -> None:
        """Click a menu of the menu bar, then one of its items (a regex), as a learner would."""
        for label in self.driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-itemLabel"):
            if label.text == menu:
                label.click()
                break
        else:
            raise AssertionError(f"no menu {menu!r}")
        for label in self.driver.find_elements(By.CSS_SELECTOR, ".lm-Menu-itemLabel"):
            if re.fullmatch(item, label.text):
                label.click()
                return
        raise AssertionError(f"no item {item!r} in the {menu} menu")

    def run_all(self, timeout: float = 900) -> None:
        self.command("Run", "Run All Cells")
        self.wait(lambda: self.busy_cells() > 0, 30, "Run All to start")
        self.wait(lambda: self.busy_cells() == 0 and self.kernel_idle(), timeout, "Run All to finish")

    def save(self) -> None:
        self.command("File", "Save Notebook")
        self.wait(lambda: not self.js("return !!document.querySelector('.jp-mod-dirty')"), 30, "the save")

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def panels(self) -> list[str]:
        """The titles of the docked panels (tabs) open in the main area."""
        return self.js("""return [...document.querySelectorAll('.lm-DockPanel-tabBar .lm-TabBar-tabLabel')]
                          .map(t => t.textContent);""")
