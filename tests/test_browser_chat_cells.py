"""The chat and the notebook's cells, in a real browser (JupyterLab on loopback, headless Debian
Chromium through Playwright, a real kernel whose Ollama is the loopback test peer): "Insert as
cell" on a code block of an answer puts exactly that code in a new code cell right below the
chat's cell, and nothing runs it; /model keeps the route label and the dropdown right.
(The saved notebook reopened: tests/test_browser_chat_reopen.py — one Playwright per module.)
"""
from __future__ import annotations


import pytest

from tests.browser_harness import lab_with_notebook, missing_requirement
from tests.test_browser import ARTIFACTS, Chat, kernel_environment

pytestmark = pytest.mark.skipif(missing_requirement() is not None, reason=str(missing_requirement()))

NOTEBOOK = "chat-cells.ipynb"
CELLS = ["%load_ext inference_magics", "%chat", "# the cell after the chat"]

# what a model might put in a block: quotes, braces, markup characters, a tab, a blank line, and a
# call that would leave a trace if anything ran it
CODE = ('import builtins\n\nbuiltins.INSERTED_CELL_RAN = True  # must not run\n'
        'print(f"{1 < 2} & \'quotes\' <b>not bold</b>")\nif True:\n\tpass')
ANSWER = f"Here is the code:\n\n```python\n{CODE}\n```\n\nRun it when you like."

# the open notebook's cells, from its model (source, type, run count, outputs)
CELLS_JS = """() => window.jupyterapp.shell.currentWidget.content.model.sharedModel.cells.map(c => ({
  type: c.cell_type, source: c.source, count: c.cell_type === 'code' ? c.execution_count : null,
  outputs: c.cell_type === 'code' ? c.outputs.length : 0}))"""


@pytest.fixture(scope="module")
def lab(ollama_server):
    try:
        with lab_with_notebook(NOTEBOOK, CELLS, lambda data: kernel_environment(ollama_server.url, data),
                               prefix="im-browser-cells-",
                               failure_screenshot=ARTIFACTS / "browser-chat-cells-failure.png") as page:
            yield page
    finally:
        ollama_server.reset()


@pytest.fixture
def chat(lab, ollama_peer):
    """The notebook back to CELLS, all run: a fresh chat widget, drawn and idle."""
    lab.page.evaluate("""(sources) => {
      const notebook = window.jupyterapp.shell.currentWidget.content.model.sharedModel;
      notebook.transact(() => {
        notebook.deleteCellRange(0, notebook.cells.length);
        notebook.insertCells(0, sources.map(source => ({cell_type: 'code', source, metadata: {}})));
      });
    }""", CELLS)
    lab.run_all_cells()
    widget = Chat(lab)
    widget.root.wait_for(state="visible", timeout=20_000)
    widget.root.locator(".im-model option").nth(1).wait_for(state="attached", timeout=10_000)  # models listed
    yield widget, ollama_peer


def test_insert_as_cell_puts_the_code_in_a_new_cell_below_the_chat_without_running_it(lab, chat):
    widget, ollama_peer = chat
    before = lab.page.evaluate(CELLS_JS)
    assert [c["source"] for c in before] == CELLS

    ollama_peer.set(text=ANSWER, token_delay=0.0)
    widget.input.fill("Write me a snippet")
    widget.send_button.click()
    widget.wait_for(lambda s: s["busy"] == "false" and any(t["kind"] == "assistant" and "when you like" in t["body"]
                                                           for t in s["turns"]), "the answer with a code block", 30)
    insert = widget.root.locator(".im-assistant .im-code .im-insert")
    assert insert.count() == 1 and insert.inner_text() == "Insert as cell"
    # a stock JupyterLab does not expose its app to the page: the button must not need it
    hidden = lab.page.evaluate("() => { window.__imApp = window.jupyterapp; delete window.jupyterapp; "
                               "return typeof window.jupyterapp; }")
    assert hidden == "undefined"
    try:
        insert.click()
        widget.root.locator(".im-insert", has_text="Inserted below").wait_for(timeout=10_000)
    finally:
        lab.page.evaluate("() => { window.jupyterapp = window.__imApp; }")
    lab.wait_for("n => window.jupyterapp.shell.currentWidget.content.model.sharedModel.cells.length === n",
                 "the inserted cell", 10, arg=len(CELLS) + 1)

    after = lab.page.evaluate(CELLS_JS)
    assert after[:2] == before[:2] and after[3] == before[2], after     # right below the chat's cell
    assert after[2] == {"type": "code", "source": CODE, "count": None, "outputs": 0}, after[2]  # exact, not run
    lab.wait_for_kernel_idle()
    # nothing ran it: ask the kernel itself, from one more cell run on its own
    lab.page.evaluate("""(source) => {
      const notebook = window.jupyterapp.shell.currentWidget.content;
      notebook.model.sharedModel.insertCell(4, {cell_type: 'code', source, metadata: {}});
      notebook.activeCellIndex = 4;
    }""", "import builtins\nprint('the inserted code ran:', hasattr(builtins, 'INSERTED_CELL_RAN'))")
    lab.execute("notebook:run-cell")
    lab.wait_for("() => document.body.innerText.includes('the inserted code ran:')", "the check cell's output", 30)
    assert "the inserted code ran: False" in lab.cell_outputs_text()
    assert lab.page.evaluate(CELLS_JS)[2]["count"] is None
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lab.page.screenshot(path=str(ARTIFACTS / "chat-insert-as-cell.png"))



def test_the_route_label_follows_model_and_the_dropdown_gains_no_duplicate(lab, chat):
    widget, ollama_peer = chat
    options = lambda: widget.root.evaluate("r => Array.from(r.querySelectorAll('.im-model option'))"
                                           ".map(o => [o.value, o.textContent])")
    listed = options()
    assert widget.state()["route"].startswith("auto:")
    for typed in ("/model llama3.2", "/model llama3.2:latest", "/model llama3.2"):   # listed as llama3.2:latest
        widget.input.fill(typed)
        widget.send_button.click()
        widget.wait_for(lambda s: s["route"] == "ollama · llama3.2:latest — you chose it",
                        f"the route label after {typed}", 10)
        assert widget.root.locator(".im-model").input_value() == "ollama llama3.2:latest"
        assert options() == listed                      # no entry added, none twice
    assert len({value for value, _ in listed}) == len(listed) and len({label for _, label in listed}) == len(listed)
    ollama_peer.set(tokens=5, token_delay=0.0)
    widget.input.fill("hello")
    widget.send_button.click()
    widget.wait_for_answer(1, ollama_peer.expected_text())
    assert [r.body["model"] for r in ollama_peer.requests if r.path == "/api/chat"] == ["llama3.2:latest"]
    widget.input.fill("/model auto")
    widget.send_button.click()
    widget.wait_for(lambda s: s["route"].startswith("auto:"), "the route label back on auto", 10)
    assert widget.root.locator(".im-model").input_value() == "auto"




def test_a_message_sent_while_the_kernel_is_busy_is_answered_once(lab, chat):
    """The kernel reads a chat message only between cells: while a long cell runs, the widget says
    so and gives the text back; when the message does arrive, the given-back text goes (no resend)."""
    widget, ollama_peer = chat
    ollama_peer.set(tokens=4, token_delay=0.0)
    lab.page.evaluate("""() => {
      const notebook = window.jupyterapp.shell.currentWidget.content;
      notebook.model.sharedModel.insertCell(3, {cell_type: 'code', source: 'import time\\ntime.sleep(12)', metadata: {}});
      notebook.activeCellIndex = 3;
    }""")
    # not lab.execute: its promise (and so the call) ends only when the cell does
    lab.page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-cell'); }")
    lab.wait_for("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'busy'",
                 "the long cell to start", 10)
    widget.input.fill("Are you there?")
    widget.send_button.click()
    notice = widget.root.locator(".im-unanswered")
    notice.wait_for(state="visible", timeout=15_000)
    assert "busy running a cell" in notice.inner_text()
    assert widget.input.input_value() == "Are you there?"
    state = widget.wait_for_answer(1, ollama_peer.expected_text(), timeout=60)
    assert [t["body"] for t in state["turns"] if t["kind"] == "user"] == ["Are you there?"]
    assert widget.input.input_value() == "" and notice.is_hidden()
    assert len(ollama_peer.requests_to("/api/chat")) == 1


def test_where_no_notebook_holds_the_chat_insert_copies_the_code_and_says_so(lab, ollama_peer):
    """In a code console there is no notebook to insert into (its widget manager has no document):
    the button copies the code exactly and asks for it to be pasted into a new cell."""
    page = lab.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=lab.server.base_url)
    lab.execute("console:create", {"kernelPreference": {"name": "python3"}})
    lab.wait_for("""() => { const panel = window.jupyterapp.shell.currentWidget;
                            const kernel = panel && panel.console && panel.sessionContext.session
                                           && panel.sessionContext.session.kernel;
                            return !!kernel && kernel.status === 'idle'; }""", "a console with an idle kernel", 60)
    try:
        page.evaluate("() => window.jupyterapp.shell.currentWidget.console.inject('%load_ext inference_magics\\n%chat')")
        root = page.locator(".jp-CodeConsole .im-chat")
        root.wait_for(state="visible", timeout=30_000)
        ollama_peer.set(text=ANSWER, token_delay=0.0)
        root.locator(".im-input").fill("Write me a snippet")
        root.locator(".im-send").click()
        insert = root.locator(".im-assistant .im-code .im-insert")
        insert.wait_for(timeout=30_000)
        insert.click()
        root.locator(".im-insert", has_text="Copied — paste it into a new cell").wait_for(timeout=10_000)
        assert page.evaluate("() => navigator.clipboard.readText()") == CODE
    finally:
        page.evaluate("() => window.jupyterapp.shell.currentWidget.dispose()")
