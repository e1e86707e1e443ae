"""The saved example notebook 06-chat.ipynb reopened in a real browser (JupyterLab on loopback,
headless Debian Chromium through Playwright): trusted, with no cell run, it shows the conversation
saved in its widget state, in the light and the dark theme; untrusted, JupyterLab draws no widget
and the chat cell shows its text line, none of the model's text.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.browser_harness import Browser, JupyterLab, Lab, missing_requirement
from tests.conftest import REPO
from tests.test_browser import ARTIFACTS, Chat, kernel_environment

pytestmark = pytest.mark.skipif(missing_requirement() is not None, reason=str(missing_requirement()))

SAVED = REPO / "notebooks" / "06-chat.ipynb"
VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def saved_conversation(path: Path) -> list[tuple[str, str]]:
    """(role, text) of every message of the chat's transcript saved in the notebook's widget state,
    whitespace folded (what a reader sees, however the browser breaks lines)."""
    from html.parser import HTMLParser

    notebook = json.loads(path.read_text(encoding="utf-8"))
    states = notebook["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    transcript = next(s["state"]["transcript_html"] for s in states.values() if "transcript_html" in s["state"])

    class Turns(HTMLParser):
        def __init__(self):
            super().__init__()
            self.turns, self.depth, self.role, self.in_body = [], 0, None, 0

        def handle_starttag(self, tag, attrs):
            classes = (dict(attrs).get("class") or "").split()
            self.depth += 1
            if "im-turn" in classes:
                self.role = next((r for r in ("user", "assistant") if f"im-{r}" in classes), None)
                self.turn_depth = self.depth
            elif "im-body" in classes and self.role:
                self.in_body = self.depth
                self.turns.append([self.role, ""])

        def handle_endtag(self, tag):
            if self.in_body == self.depth:
                self.in_body = 0
            self.depth -= 1

        def handle_data(self, data):
            if self.in_body:
                self.turns[-1][1] += data

    parser = Turns()
    parser.feed(transcript)
    return [(role, " ".join(text.split())) for role, text in parser.turns]


@pytest.fixture(scope="module")
def reopened(ollama_server):
    """JupyterLab on a copy of notebooks/06-chat.ipynb, trusted as its owner would (`jupyter trust`),
    and an untrusted second copy; no cell is ever run."""
    assert VIEW_MIME in json.dumps(json.loads(SAVED.read_text())["cells"]), "06-chat.ipynb has no saved widget"
    with tempfile.TemporaryDirectory(prefix="im-browser-reopen-") as tmp:
        tmp = Path(tmp)
        root = tmp / "root"
        root.mkdir()
        shutil.copy(SAVED, root / "trusted.ipynb")
        # trust goes by content, not by file: the untrusted copy differs (as someone else's would)
        other = json.loads(SAVED.read_text(encoding="utf-8"))
        other["metadata"]["copied_for"] = "the untrusted reopen test"
        (root / "untrusted.ipynb").write_text(json.dumps(other, indent=1), encoding="utf-8")
        server = JupyterLab(root, tmp / "home", kernel_environment(ollama_server.url, tmp / "data"))
        # the notebook's signature goes in the same Jupyter data folder the server reads
        signed = subprocess.run([sys.executable, "-m", "nbformat.sign", str(root / "trusted.ipynb")], env=server.env,
                                capture_output=True, text=True, timeout=60)
        assert signed.returncode == 0, signed.stderr
        server.start()
        browser = None
        try:
            browser = Browser()
            yield Lab(server, browser, failure_screenshot=ARTIFACTS / "browser-reopen-failure.png")
        finally:
            if browser is not None:
                browser.close()
            server.stop()


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_the_saved_chat_notebook_reopens_with_its_conversation(reopened, theme):
    lab = reopened
    expected = saved_conversation(SAVED)
    assert [role for role, _ in expected] == ["user", "assistant", "user", "assistant"], expected
    lab.open_notebook("trusted.ipynb")
    lab.execute("apputils:change-theme", {"theme": theme})
    lab.wait_for("t => document.body.dataset.jpThemeName === t", f"the {theme} theme", 15, arg=theme)
    widget = Chat(lab)
    lab.wait_for("n => document.querySelectorAll('.im-chat .im-transcript .im-turn.im-assistant').length >= n",
                 "the saved conversation in the chat widget", 30, arg=2)
    shown = [(t["kind"], " ".join(t["body"].split())) for t in widget.state()["turns"] if t["kind"] in ("user", "assistant")]
    assert shown == expected
    # nothing ran: every code cell still has the run count it was saved with
    saved_counts = [c.get("execution_count") for c in json.loads(SAVED.read_text())["cells"] if c["cell_type"] == "code"]
    assert lab.page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets
                                 .filter(c => c.model.type === 'code').map(c => c.model.executionCount)""") == saved_counts
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    widget.page.wait_for_timeout(300)  # the theme's stylesheet applies after the attribute
    shot = ARTIFACTS / f"chat-reopened-{theme.split()[-1].lower()}.png"
    widget.screenshot(shot)
    assert shot.stat().st_size > 5_000
    lab.execute("apputils:change-theme", {"theme": "JupyterLab Light"})


def test_an_untrusted_copy_shows_the_text_line_and_no_model_text(reopened):
    """JupyterLab draws no widget in an untrusted notebook: the chat cell's output falls back to its
    text/plain line (what it is, how to see it), and none of the saved conversation is shown there."""
    lab = reopened
    lab.open_notebook("untrusted.ipynb")
    lab.wait_for("() => Array.from(window.jupyterapp.shell.currentWidget.node.querySelectorAll('.jp-OutputArea-output'))"
                 ".some(e => e.innerText.includes('inference_magics chat'))", "the chat cell's fallback line", 30)
    assert lab.page.evaluate("() => window.jupyterapp.shell.currentWidget.node.querySelectorAll('.im-chat').length") == 0
    # the %chat cell's own output (later cells print the conversation themselves)
    shown = lab.page.evaluate("""() => window.jupyterapp.shell.currentWidget.content.widgets[2].node
                                   .querySelector('.jp-OutputArea').innerText""")
    saved_line = json.loads(SAVED.read_text())["cells"][2]["outputs"][0]["data"]["text/plain"]
    assert "".join(saved_line) in shown
    assert all(text not in shown for _, text in saved_conversation(SAVED)), shown
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lab.page.screenshot(path=str(ARTIFACTS / "chat-reopened-untrusted.png"))


def test_a_message_sent_from_the_saved_copy_comes_back_with_the_reason(reopened):
    """The reopened chat has no kernel side until its cell runs: a message sent from it is never
    answered, so the widget says why and gives the text back instead of losing it."""
    lab = reopened
    lab.open_notebook("trusted.ipynb")
    widget = Chat(lab)
    lab.wait_for("() => document.querySelectorAll('.im-chat .im-turn.im-assistant').length >= 2",
                 "the saved conversation", 30)
    turns = widget.state()["turns"]
    widget.input.fill("Are you there?")
    widget.send_button.click()
    notice = widget.root.locator(".im-unanswered")
    notice.wait_for(state="visible", timeout=15_000)
    assert "saved copy" in notice.inner_text() and "run its cell" in notice.inner_text()
    assert widget.input.input_value() == "Are you there?"
    assert widget.state()["turns"] == turns
