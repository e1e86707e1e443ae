"""A real JupyterLab server and a headless Chromium driven by Playwright, for browser tests.

Nothing here downloads anything: JupyterLab runs from this environment with its network features
(news feed, update check, PyPI extension manager) off, and the browser is the system's Chromium,
never a Playwright build. Every wait is bounded and fails saying what it waited for, with the tail
of the server log and the page's console attached.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def missing_requirement() -> str | None:
    """Why browser tests cannot run here, or None."""
    if not CHROMIUM.exists():
        return (f"{CHROMIUM} is missing: install Debian's Chromium "
                "(apt-get install --no-install-recommends chromium; .ci/run does it)")
    for module in ("playwright.sync_api", "jupyterlab"):
        try:
            __import__(module)
        except ImportError as exc:
            return f"{module.split('.')[0]} cannot be imported ({exc}); pip install playwright jupyterlab"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_notebook(path: Path, sources: list[str]) -> Path:
    """An nbformat 4 notebook of code cells, tied to the python3 kernel (so no kernel picker)."""
    cells = [{"cell_type": "code", "execution_count": None, "id": f"cell-{i}", "metadata": {},
              "outputs": [], "source": source} for i, source in enumerate(sources)]
    notebook = {"cells": cells, "nbformat": 4, "nbformat_minor": 5,
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                            "language": "python"},
                             "language_info": {"name": "python"}}}
    path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    return path


class JupyterLab:
    """`jupyter lab` on a free loopback port with a token, in its own process group.

    `env` is the whole environment of the server, and so of the kernels it starts; Jupyter's
    config, runtime and settings folders and IPython's profile are kept under `home` so nothing
    from the developer's machine applies."""

    def __init__(self, root_dir: Path, home: Path, env: dict[str, str]):
        self.root_dir, self.home = Path(root_dir), Path(home)
        self.token = secrets.token_hex(16)
        self.env = dict(env)
        for name, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                          ("JUPYTER_DATA_DIR", "data"),
                          ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
                          ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces"), ("IPYTHONDIR", "ipython")):
            folder = self.home / sub
            folder.mkdir(parents=True, exist_ok=True)
            self.env[name] = str(folder)
        # answer JupyterLab's "get notified about Jupyter news?" toast in advance: never
        notification = Path(self.env["JUPYTERLAB_SETTINGS_DIR"], "@jupyterlab", "apputils-extension",
                            "notification.jupyterlab-settings")
        notification.parent.mkdir(parents=True, exist_ok=True)
        notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}), encoding="utf-8")
        self.env.pop("JUPYTER_TOKEN", None)
        self.env["PYTHONUNBUFFERED"] = "1"
        self.log_path = self.home / "jupyterlab.log"
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}?token={self.token}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "jupyterlab",
            "--no-browser", "--ip=127.0.0.1", f"--port={self.port}", "--port-retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--ServerApp.disable_check_xsrf=True",
            # no network: no news feed, no update check, no PyPI-backed extension manager
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            # window.jupyterapp: lets the test read the kernel's status and run commands
            "--LabApp.expose_app_in_browser=True",
            # a left-over workspace must not reopen other documents or layouts
            "--LabApp.workspaces_dir=" + self.env["JUPYTERLAB_WORKSPACES_DIR"],
            "--ServerApp.terminals_enabled=False",
            *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),  # CI runs as root
        ]

    def start(self, timeout: float = 60) -> "JupyterLab":
        """Start and wait until the REST API answers; a port taken in the meantime means a retry."""
        for _attempt in range(3):
            self.port = free_port()
            log = open(self.log_path, "ab")
            self.process = subprocess.Popen(self.command(), cwd=self.root_dir, env=self.env, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
            if self._wait_ready(timeout):
                return self
            if self.process.poll() is None:
                self.stop()
                raise TimeoutError(f"JupyterLab did not answer on {self.base_url} within {timeout} s\n{self.log_tail()}")
            if "already in use" not in self.log_tail():
                raise RuntimeError(f"JupyterLab exited with {self.process.returncode}\n{self.log_tail()}")
        raise RuntimeError(f"JupyterLab could not get a free port\n{self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                self._api("GET", "status", timeout=2)
                return True
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.2)
        return False

    def _api(self, method: str, path: str, timeout: float = 5):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
        request = urllib.request.Request(f"{self.base_url}/api/{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with opener.open(request, timeout=timeout) as response:
            body = response.read()
            return json.loads(body) if body else None

    def _shutdown_kernels(self) -> None:
        """Kernels run in sessions of their own: ask the server to end them before it goes."""
        try:
            for kernel in self._api("GET", "kernels"):
                self._api("DELETE", f"kernels/{kernel['id']}", timeout=10)
        except (urllib.error.URLError, OSError, ValueError):
            pass   # the server is going anyway; ipykernel also exits when its parent dies

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no server log)"
        text = text.replace(self.token, "<token>")
        return "--- JupyterLab log (tail) ---\n" + "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM to the server's process group (the server and its kernels), then SIGKILL."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            self._shutdown_kernels()
        for sig, wait in ((signal.SIGINT, timeout / 3), (signal.SIGTERM, timeout / 3), (signal.SIGKILL, timeout / 3)):
            if process.poll() is not None:
                break
            try:
                os.killpg(process.pid, sig)
                if sig == signal.SIGINT:   # jupyter asks to confirm a single ^C; a second one stops it
                    time.sleep(0.1)
                    os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        try:   # kernels (same group) that outlived the server
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


class Browser:
    """Headless system Chromium through Playwright's sync API; one page, its console kept."""

    def __init__(self, viewport=(1280, 1000)):
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        try:
            # launch() gives every run a fresh temporary profile (user-data dir)
            self.browser = self._playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                            args=CHROMIUM_ARGS, timeout=60_000)
            self.context = self.browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            self.page = self.context.new_page()
        except BaseException:
            self._playwright.stop()
            raise
        self.page.set_default_timeout(20_000)
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"[{m.type}] {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"[pageerror] {e}"))

    def console_tail(self, lines: int = 25) -> str:
        return "--- browser console (tail) ---\n" + "\n".join(self.console[-lines:])

    def close(self) -> None:
        try:
            self.context.close()
            self.browser.close()
        finally:
            self._playwright.stop()


# --- JupyterLab, seen from the page ---------------------------------------------------------------

# true once the current notebook is loaded and its kernel is connected and idle
_KERNEL_IDLE_JS = """() => {
  const app = window.jupyterapp;
  const panel = app && app.shell && app.shell.currentWidget;
  const sc = panel && panel.sessionContext;
  const kernel = sc && sc.session && sc.session.kernel;
  return !!(panel && panel.context && panel.context.isReady && sc.isReady && kernel
            && kernel.connectionStatus === 'connected' && kernel.status === 'idle');
}"""

_KERNEL_STATE_JS = """() => {
  const app = window.jupyterapp;
  const panel = app && app.shell && app.shell.currentWidget;
  const sc = panel && panel.sessionContext;
  const kernel = sc && sc.session && sc.session.kernel;
  return JSON.stringify({app: !!app, widget: panel ? panel.constructor.name + ' ' + (panel.title && panel.title.label) : null,
                         sessionReady: sc ? sc.isReady : null, connection: kernel ? kernel.connectionStatus : null,
                         status: kernel ? kernel.status : null});
}"""


class Lab:
    """A JupyterLab page: open a notebook, wait for its kernel, run commands."""

    def __init__(self, server: JupyterLab, browser: Browser, failure_screenshot: Path | None = None):
        self.server, self.browser, self.page = server, browser, browser.page
        self.failure_screenshot = failure_screenshot

    def diagnostics(self) -> str:
        """What a failure message needs: the app's state, the console, the server log, a screenshot."""
        try:
            state = self.page.evaluate(_KERNEL_STATE_JS)
        except Exception as exc:  # the page itself may be gone
            state = f"(page state unavailable: {exc})"
        shot = ""
        if self.failure_screenshot is not None:
            try:
                self.failure_screenshot.parent.mkdir(parents=True, exist_ok=True)
                self.page.screenshot(path=str(self.failure_screenshot), timeout=5_000)
                shot = f"screenshot of the page: {self.failure_screenshot}\n"
            except Exception:
                pass
        return f"page state: {state}\n{shot}{self.browser.console_tail()}\n{self.server.log_tail()}"

    def wait_for(self, js: str, what: str, timeout: float, arg=None) -> None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_function(js, arg=arg, timeout=timeout * 1000, polling=100)
        except PlaywrightTimeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{self.diagnostics()}") from None

    def open_notebook(self, name: str, timeout: float = 45) -> None:
        self.page.goto(self.server.url(f"lab/tree/{name}"), wait_until="domcontentloaded", timeout=timeout * 1000)
        self.wait_for_kernel_idle(f"the notebook {name} to open with an idle kernel", timeout)

    def wait_for_kernel_idle(self, what: str = "the kernel to be idle", timeout: float = 60) -> None:
        self.wait_for(_KERNEL_IDLE_JS, what, timeout)

    def execute(self, command: str, args: dict | None = None) -> None:
        """Run a JupyterLab command (as a menu item or shortcut would)."""
        self.page.evaluate("([id, args]) => window.jupyterapp.commands.execute(id, args || {})", [command, args])

    def run_all_cells(self, timeout: float = 60) -> None:
        """Run menu → Run All Cells, then wait until every code cell has run again and the kernel is idle."""
        before = self.page.evaluate("""() => Math.max(0, ...window.jupyterapp.shell.currentWidget.content.widgets
                                         .map(c => c.model.type === 'code' ? (c.model.executionCount || 0) : 0))""")
        self.execute("notebook:run-all-cells")
        self.wait_for("""(before) => {
          const panel = window.jupyterapp.shell.currentWidget;
          const cells = panel.content.widgets.filter(c => c.model.type === 'code');
          const kernel = panel.sessionContext.session.kernel;
          return cells.length > 0 && cells.every(c => (c.model.executionCount || 0) > before) && kernel.status === 'idle';
        }""", "all cells to run", timeout, arg=before)

    def cell_outputs_text(self) -> str:
        return self.page.evaluate("""() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))
                                       .map(e => e.innerText).join('\\n')""")


@contextlib.contextmanager
def lab_with_notebook(name: str, cells: list[str], environment, *, prefix: str, failure_screenshot: Path,
                      on_browser=None):
    """JupyterLab on a fresh root holding one notebook (`cells`), a browser with it open, and
    everything stopped afterwards. `environment(data_dir)` gives the kernel's environment;
    `on_browser(lab, root)` runs before the notebook opens (to watch requests, say)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        tmp = Path(tmp)
        root = tmp / "root"
        root.mkdir()
        write_notebook(root / name, cells)
        server = JupyterLab(root, tmp / "home", environment(tmp / "data"))
        server.start()
        browser = None
        try:
            browser = Browser()
            lab = Lab(server, browser, failure_screenshot=failure_screenshot)
            if on_browser is not None:
                on_browser(lab, root)
            lab.open_notebook(name)
            yield lab
        finally:
            if browser is not None:
                browser.close()
            server.stop()

# WCAG 2 contrast of an element's text against the first opaque background behind it, as
# JavaScript helpers the browser tests put at the top of their page.evaluate() functions
WCAG_HELPERS = """  const rgba = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = el => {
    for (let node = el; node; node = node.parentElement) {
      const c = rgba(getComputedStyle(node).backgroundColor);
      if (c.length >= 3 && (c.length < 4 || c[3] > 0.5)) return c;
    }
    return [255, 255, 255];
  };
"""
