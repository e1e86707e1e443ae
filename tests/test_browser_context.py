"""An answer's code offered as a new cell (issue 16), seen in a real JupyterLab page: headless
Debian Chromium, a real kernel whose Ollama is the loopback peer. `--insert` and `--fix` put the
code in a new cell right below the answer through IPython's set_next_input payload; it is not run."""
from __future__ import annotations


import pytest

from tests.browser_harness import lab_with_notebook, missing_requirement
from tests.test_browser import ARTIFACTS, kernel_environment

pytestmark = pytest.mark.skipif(missing_requirement() is not None, reason=str(missing_requirement()))

NOTEBOOK = "context.ipynb"
CODE = "import math\nprint(round(math.tau, 3))"
ANSWER = f"Use the `math` module:\n\n```python\n{CODE}\n```\n"
CELLS = ["%load_ext inference_magics", "%%infer --insert\nHow do I print tau to three places?"]

CELLS_JS = """() => window.jupyterapp.shell.currentWidget.content.widgets.map(c => ({
  type: c.model.type, source: c.model.sharedModel.getSource(),
  count: c.model.type === 'code' ? c.model.executionCount : null,
  outputs: c.model.type === 'code' ? c.model.outputs.length : 0,
  text: Array.from(c.node.querySelectorAll('.jp-OutputArea-output')).map(e => e.innerText).join('\\n')}))"""


@pytest.fixture
def lab(ollama_server):
    ollama_server.reset()
    ollama_server.set(text=ANSWER)
    try:
        with lab_with_notebook(NOTEBOOK, CELLS, lambda data: kernel_environment(ollama_server.url, data),
                               prefix="im-browser-context-",
                               failure_screenshot=ARTIFACTS / "browser-context-failure.png") as page:
            yield page
    finally:
        ollama_server.reset()


def test_the_offered_cell_appears_below_the_answer_and_is_not_run(lab):
    lab.execute("notebook:run-all-cells")
    lab.wait_for("""(code) => { const cells = window.jupyterapp.shell.currentWidget.content.widgets;
                   return cells.length === 3 && cells[2].model.sharedModel.getSource() === code
                          && cells[1].model.outputs.length > 0; }""",
                 "the offered cell below the answer", 90, arg=CODE)
    lab.wait_for_kernel_idle()
    cells = lab.page.evaluate(CELLS_JS)
    answer, offered = cells[1], cells[2]
    assert "Use the math module" in answer["text"] or "Use the" in answer["text"]
    assert "ollama" in answer["text"]  # the footer: the answer is complete above the new cell
    assert offered == {"type": "code", "source": CODE, "count": None, "outputs": 0, "text": ""}  # offered, never run
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lab.page.screenshot(path=str(ARTIFACTS / "browser-insert-cell.png"), full_page=False)
