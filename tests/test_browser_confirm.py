"""The cost confirmation as buttons, in a real browser: JupyterLab on loopback, headless Chromium,
a real kernel whose Claude is the loopback peer. The click has to reach a cell that is still
running (the kernel reads no shell message meanwhile): Skip sends nothing, Run sends the map."""
from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests.browser_harness import Browser, JupyterLab, Lab, missing_requirement, write_notebook
from tests.conftest import REPO, peer_environment
from tests.test_browser import kernel_environment

pytestmark = pytest.mark.skipif(missing_requirement() is not None, reason=str(missing_requirement()))

ARTIFACTS = REPO / "build" / "test-artifacts"
NOTEBOOK = "confirm.ipynb"
CELL = "%%infer --map reviews claude-haiku-4.5 --max-tokens 100\nClassify: {row}"
CELLS = ["%load_ext inference_magics\nreviews = ['good film', 'bad film', 'fine film']", CELL]


@pytest.fixture(scope="module")
def lab(ollama_server, claude_server):
    with tempfile.TemporaryDirectory(prefix="im-browser-confirm-") as tmp:
        tmp = Path(tmp)
        root = tmp / "root"
        root.mkdir()
        write_notebook(root / NOTEBOOK, CELLS)
        env = {**kernel_environment(ollama_server.url, tmp / "data"),
               **peer_environment(ollama_server.url, claude_server), "INFERENCE_CONFIRM_USD": "0.0001"}
        server = JupyterLab(root, tmp / "home", env)
        server.start()
        browser = None
        try:
            browser = Browser()
            page = Lab(server, browser, failure_screenshot=ARTIFACTS / "browser-confirm-failure.png")
            page.open_notebook(NOTEBOOK)
            yield page
        finally:
            if browser is not None:
                browser.close()
            server.stop()


def messages_sent(peer):
    return [r for r in peer.requests if r.path == "/v1/messages"]


def run_and_answer(lab: Lab, button: str) -> str:
    """Run all cells, click `button` when the question shows, wait for the end; the outputs' text."""
    lab.execute("notebook:run-all-cells")
    lab.wait_for("() => document.querySelector('.im-confirm .im-confirm-yes')", "the Run / Skip buttons", 60)
    lab.page.locator(f".im-confirm .im-confirm-{button}").last.click()
    lab.wait_for("""() => {
        const panel = window.jupyterapp.shell.currentWidget;
        return panel.sessionContext.session.kernel.status === 'idle'
            && document.querySelectorAll('.im-confirm button:disabled').length === 2;
    }""", f"the cell to finish after {button}", 60)
    return lab.cell_outputs_text()


def test_skip_sends_nothing_and_run_sends_the_map(lab, claude_server):
    claude_server.reset()
    skipped = run_and_answer(lab, "no")
    assert "above INFERENCE_CONFIRM_USD" in skipped and "Skip" in skipped
    assert "not started: declined" in skipped and not messages_sent(claude_server)
    lab.execute("notebook:clear-all-cell-outputs")
    ran = run_and_answer(lab, "yes")
    lab.wait_for_kernel_idle()
    assert "declined" not in ran and len(messages_sent(claude_server)) == 3
