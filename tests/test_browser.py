"""The chat widget in a real browser: JupyterLab on loopback, headless Debian Chromium driven by
Playwright, a real kernel whose Ollama is the loopback test peer.

One JupyterLab server, one kernel and one browser page serve the whole module; each test gets a
fresh widget by clearing the notebook's outputs and running all cells again.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from inference_magics import settings
from tests.browser_harness import Lab, lab_with_notebook, missing_requirement, WCAG_HELPERS
from tests.conftest import NOT_INSTALLED, REPO

pytestmark = pytest.mark.skipif(missing_requirement() is not None, reason=str(missing_requirement()))

ARTIFACTS = REPO / "build" / "test-artifacts"
NOTEBOOK = "chat.ipynb"
CELLS = ["%load_ext inference_magics", "%chat"]


def kernel_environment(ollama_url: str, data_dir: Path) -> dict[str, str]:
    """The developer's environment minus every inference_magics setting, plus the peer."""
    env = dict(os.environ)
    for var in settings.VARS:
        for name in var.env:
            env.pop(name, None)
    for name in ("PAI_DIR", "OLLAMA_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
        env.pop(name, None)
    env.update(NOT_INSTALLED)
    env.update({"OLLAMA_BASE_URL": ollama_url, "INFERENCE_DATA_DIR": str(data_dir),
                "INFERENCE_DEFAULT_BACKEND": "ollama"})
    return env


@pytest.fixture(scope="module")
def lab(ollama_server):
    try:
        with lab_with_notebook(NOTEBOOK, CELLS, lambda data: kernel_environment(ollama_server.url, data),
                               prefix="im-browser-", failure_screenshot=ARTIFACTS / "browser-failure.png") as page:
            yield page
    finally:
        ollama_server.reset()   # the session's peer goes back clean to the other modules


class Chat:
    """The chat widget on the page, read and driven through its DOM contract (see widget.py)."""

    def __init__(self, lab: Lab):
        self.lab, self.page = lab, lab.page
        self.root = self.page.locator(".im-chat")
        self.input = self.root.locator(".im-input")
        self.send_button = self.root.locator(".im-send")
        self.stop_button = self.root.locator(".im-stop")

    def state(self) -> dict:
        """{busy, route, turns: [{kind, body, meta}]} in one round trip."""
        return self.root.evaluate("""root => ({
          busy: root.dataset.busy,
          route: (root.querySelector('.im-route') || {}).textContent || '',
          turns: Array.from(root.querySelectorAll('.im-transcript .im-turn')).map(t => ({
            kind: t.classList.contains('im-user') ? 'user' : t.classList.contains('im-assistant') ? 'assistant'
                : t.classList.contains('im-error') ? 'error' : 'other',
            body: (t.querySelector('.im-body') || t).innerText.trim(),
            meta: t.querySelector('.im-meta') ? t.querySelector('.im-meta').innerText.trim() : null,
          })),
        })""")

    def answers(self) -> list[dict]:
        return [t for t in self.state()["turns"] if t["kind"] == "assistant"]

    def wait_for(self, predicate, what: str, timeout: float, interval: float = 0.05) -> dict:
        """Poll state() until predicate(state) holds; fail with the last state and the page's console."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if predicate(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}\nlast widget state: "
                                     f"{state}\n{self.lab.diagnostics()}")
            time.sleep(interval)

    def wait_for_answer(self, n: int, text: str, timeout: float = 30) -> dict:
        """Until the n-th assistant turn (1-based) shows `text` and the widget is no longer busy."""
        def done(state):
            answers = [t for t in state["turns"] if t["kind"] == "assistant"]
            return state["busy"] == "false" and len(answers) >= n and answers[n - 1]["body"] == text
        return self.wait_for(done, f"answer {n} to read {text[:60]!r}…", timeout)

    def start_recording(self) -> None:
        """Record every distinct text of the latest assistant turn, in the page (no round-trip jitter)."""
        self.root.evaluate("""root => {
          clearInterval(window.__imRecorder);
          const samples = window.__imSamples = [];
          let last = null;
          window.__imSample = () => {
            const bodies = root.querySelectorAll('.im-turn.im-assistant .im-body');
            const text = bodies.length ? bodies[bodies.length - 1].innerText.trim() : null;
            if (text !== last) { last = text; samples.push(text); }
          };
          window.__imRecorder = setInterval(window.__imSample, 10);
        }""")

    def recorded(self) -> list[str | None]:
        return self.page.evaluate("() => { window.__imSample(); clearInterval(window.__imRecorder); return window.__imSamples; }")

    def screenshot(self, path: Path, margin: int = 12) -> None:
        """The widget with a margin of the notebook around it."""
        self.root.scroll_into_view_if_needed()
        box = self.root.bounding_box()
        self.page.screenshot(path=str(path), clip={"x": max(0, box["x"] - margin), "y": max(0, box["y"] - margin),
                                                   "width": box["width"] + 2 * margin,
                                                   "height": box["height"] + 2 * margin})


@pytest.fixture
def chat(lab, ollama_peer):
    """A fresh chat widget: outputs cleared, all cells run again, the widget drawn and idle."""
    lab.execute("notebook:clear-all-cell-outputs")
    lab.wait_for("() => document.querySelectorAll('.im-chat').length === 0", "the old widget to go", 10)
    lab.run_all_cells()
    widget = Chat(lab)
    try:
        widget.root.wait_for(state="visible", timeout=20_000)
        widget.root.locator(".im-model option").first.wait_for(state="attached", timeout=10_000)
    except Exception:
        raise AssertionError(f"the %chat widget did not appear; cell outputs:\n{lab.cell_outputs_text()}\n"
                             f"{lab.diagnostics()}") from None
    assert widget.root.get_attribute("data-busy") == "false"
    yield widget, ollama_peer


def test_the_answer_streams_into_the_page(chat):
    widget, peer = chat
    peer.set(tokens=40, token_delay=0.05)
    expected = peer.expected_text()
    root = widget.root
    assert root.locator(".im-model option").first.inner_text() == "auto (routing)"
    assert root.locator(".im-system").count() == 1
    assert widget.stop_button.is_disabled() and widget.send_button.is_enabled()

    widget.start_recording()
    widget.input.fill("Hello from the browser")
    widget.send_button.click()
    state = widget.wait_for_answer(1, expected, timeout=30)

    samples = [s for s in widget.recorded() if s and s != "…"]
    partials = [s for s in samples if s != expected]
    assert samples and samples[-1] == expected
    assert len({len(s) for s in partials}) >= 2, f"the answer did not arrive progressively: {samples}"
    assert all(expected.startswith(s) for s in partials), samples
    assert [(t["kind"], t["body"]) for t in state["turns"]] == [("user", "Hello from the browser"),
                                                               ("assistant", expected)]
    assert state["turns"][1]["meta"], "the answer has no token/latency line"
    assert "ollama" in state["route"], state["route"]
    assert widget.input.input_value() == ""
    assert widget.stop_button.is_disabled() and widget.send_button.is_enabled()


def test_shift_enter_sends_and_the_conversation_goes_to_the_model(chat):
    widget, peer = chat
    peer.set(tokens=8, token_delay=0.01)
    first = peer.expected_text()
    widget.input.fill("What is a process?")
    widget.send_button.click()
    widget.wait_for_answer(1, first)

    peer.set(tokens=12, token_delay=0.01, text="A thread shares its process's memory.")
    second = peer.expected_text()
    widget.input.press_sequentially("And a thread?")
    widget.input.press("Enter")                     # a plain Enter is a new line, not a send
    widget.input.press_sequentially("Briefly.")
    assert widget.input.input_value() == "And a thread?\nBriefly."
    assert len([t for t in widget.state()["turns"] if t["kind"] == "user"]) == 1
    widget.input.press("Shift+Enter")
    state = widget.wait_for_answer(2, second)

    assert [(t["kind"], t["body"]) for t in state["turns"]] == [   # Markdown: a single newline is a soft break
        ("user", "What is a process?"), ("assistant", first),
        ("user", "And a thread? Briefly."), ("assistant", second)]
    assert widget.input.input_value() == ""
    chats = [r.body for r in peer.requests if r.path == "/api/chat"]
    assert len(chats) == 2, chats
    sent = [(m["role"], m["content"]) for m in chats[-1]["messages"] if m["role"] in ("user", "assistant")]
    assert sent == [("user", "What is a process?"), ("assistant", first), ("user", "And a thread?\nBriefly.")]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "chat-widget.png"
    widget.screenshot(shot)
    assert shot.stat().st_size > 5_000


def test_stop_ends_the_stream_and_keeps_the_partial_answer(chat):
    widget, peer = chat
    peer.set(tokens=400, token_delay=0.05)   # 20 s if nobody stops it
    full = peer.expected_text()
    widget.input.fill("Tell me a very long story.")
    widget.send_button.click()
    widget.wait_for(lambda s: s["busy"] == "true" and any(t["kind"] == "assistant" and len(t["body"].split()) >= 8
                                                          for t in s["turns"]),
                    "the answer to start streaming", timeout=15)
    assert widget.stop_button.is_enabled() and widget.send_button.is_disabled()

    widget.stop_button.click()
    clicked = time.monotonic()
    widget.wait_for(lambda s: s["busy"] == "false", "the widget to stop being busy after Stop", timeout=3)
    time.sleep(max(0.0, clicked + 1.0 - time.monotonic()))
    after_1s = widget.answers()[-1]["body"]
    time.sleep(1.5)
    after_2_5s = widget.answers()[-1]["body"]

    assert after_1s == after_2_5s, "the answer kept growing after Stop"
    assert after_1s and after_1s != "…" and full.startswith(after_1s), after_1s
    assert len(after_1s.split()) < 200, "Stop did not end the stream early"
    assert peer.wait_until(lambda p: p.disconnects >= 1, timeout=3), "the HTTP stream to Ollama was not closed"
    assert widget.stop_button.is_disabled() and widget.send_button.is_enabled()


# --- how it looks: both themes, measured from the computed styles --------------------------------
MARKDOWN_ANSWER = ("Here is a **table** and some code:\n\n| name | size |\n|---|---|\n| alpha | 1 |\n| beta | 22 |\n\n"
                   "```python\ndef area(r):\n    return 3.14159 * r ** 2  # a circle\n```\n\nDone.")

CONTRAST = """root => {
""" + WCAG_HELPERS + """  const ratio = el => {
    if (!el) return null;
    const back = background(el), fore = rgba(getComputedStyle(el).color);
    const alpha = fore.length > 3 ? fore[3] : 1;
    const mixed = [0, 1, 2].map(i => fore[i] * alpha + back[i] * (1 - alpha));
    const [a, b] = [lum(mixed), lum(back)].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
  };
  const cell = root.querySelector('.im-assistant .im-body td');
  const area = root.closest('.jp-OutputArea-output') || root.parentElement;
  return {
    user: ratio(root.querySelector('.im-user .im-body')),
    assistant: ratio(root.querySelector('.im-assistant .im-body')),
    footer: ratio(root.querySelector('.im-assistant .im-meta')),
    route: ratio(root.querySelector('.im-route')),
    codeLanguage: ratio(root.querySelector('.im-code-language')),
    codeButton: ratio(root.querySelector('.im-code-tools button')),
    cellPadding: cell ? parseFloat(getComputedStyle(cell).paddingLeft) : null,
    codeButtons: root.querySelectorAll('.im-code .im-code-tools button').length,
    codeBackground: getComputedStyle(root.querySelector('.im-code pre')).backgroundColor,
    highlighted: root.querySelectorAll('.im-code pre span[style]').length,
    widthShare: root.getBoundingClientRect().width / area.getBoundingClientRect().width,
  };
}"""


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_the_chat_reads_well_in_the_light_and_the_dark_theme(chat, theme):
    widget, peer = chat
    lab = widget.lab
    lab.execute("apputils:change-theme", {"theme": theme})
    lab.wait_for("t => document.body.dataset.jpThemeName === t", f"the {theme} theme", 15, arg=theme)
    widget.page.wait_for_timeout(300)  # the theme's stylesheet applies after the attribute
    peer.set(text=MARKDOWN_ANSWER, token_delay=0.0)
    widget.input.fill("Show me a table and a function")
    widget.send_button.click()
    widget.wait_for(lambda s: s["busy"] == "false" and any(t["kind"] == "assistant" and "Done." in t["body"]
                                                           for t in s["turns"]), "the Markdown answer", 30)
    looks = widget.root.evaluate(CONTRAST)
    for part in ("user", "assistant", "footer", "route", "codeLanguage", "codeButton"):
        assert looks[part] >= 4.5, f"{part} text contrast {looks[part]:.2f}:1 in {theme} is below WCAG AA: {looks}"
    assert looks["cellPadding"] >= 4, looks                  # tables are padded
    assert looks["codeButtons"] == 2 and looks["highlighted"] >= 3, looks  # a highlighted block with Copy and Insert as cell
    assert looks["widthShare"] > 0.9, looks                  # the chat uses the output's width
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"chat-{theme.split()[-1].lower()}.png"
    widget.screenshot(shot)
    assert shot.stat().st_size > 5_000
    lab.execute("apputils:change-theme", {"theme": "JupyterLab Light"})


def test_regenerate_and_edit_replace_the_last_exchange_in_the_page(chat):
    widget, peer = chat
    peer.set(tokens=6, token_delay=0.0)
    widget.input.fill("first try")
    widget.send_button.click()
    widget.wait_for_answer(1, peer.expected_text())
    widget.root.locator(".im-assistant .im-turn-tools button").click()   # ↻ Regenerate
    widget.wait_for(lambda s: s["busy"] == "false" and len([r for r in peer.requests if r.path == "/api/chat"]) == 2,
                    "the regenerated answer", 30)
    chats = [r.body for r in peer.requests if r.path == "/api/chat"]
    assert chats[0]["messages"] == chats[1]["messages"]               # the same question again
    assert [t["kind"] for t in widget.state()["turns"]] == ["user", "assistant"]  # replaced, not added
    widget.input.fill("a draft")
    widget.root.locator(".im-user .im-turn-tools button").click()        # ✎ Edit: the kernel sends the text back
    widget.lab.wait_for("() => document.querySelector('.im-chat .im-input').value === 'first try\\n\\na draft'",
                        "the last message put back above the draft", 10)
    widget.input.fill("second try")
    widget.send_button.click()
    widget.wait_for(lambda s: s["busy"] == "false" and [t["body"] for t in s["turns"] if t["kind"] == "user"]
                    == ["second try"], "the edited message to replace the first", 30)

