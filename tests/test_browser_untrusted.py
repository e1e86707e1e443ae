"""Model output is untrusted (issue 22), seen from a real page: JupyterLab on loopback, headless
Debian Chromium, a real kernel whose OpenAI-compatible server and Ollama are hostile loopback peers.

One notebook shows every surface (streamed answer with thinking and a hostile model name,
--no-stream, the Result's repr, --format json with a non-JSON answer, %%experiment, --map,
%infer_history, the chat widget, an error mid-stream with a hostile error text). The page must
never run a payload, hold a live element or fetch an image — and neither may the saved notebook
when it is reopened (JupyterLab trusts what it signed, so the saved output must be inert itself).
"""
from __future__ import annotations

import json
import time

import pytest

from tests import hostile
from tests.browser_harness import lab_with_notebook, missing_requirement
from tests.test_browser import ARTIFACTS, kernel_environment

pytestmark = pytest.mark.skipif(missing_requirement() is not None, reason=str(missing_requirement()))

NOTEBOOK = "hostile.ipynb"
CELLS = [
    "%load_ext inference_magics\nimport inference_magics as im",
    "%%infer --backend openai\nSummarize the document.",
    "%%infer --backend openai --no-stream\nAgain, at once.",
    "_infer",
    "try:\n    get_ipython().run_cell_magic('infer', '--backend openai --format json', 'As JSON.')\n"
    "except im.InferenceError as exc:\n    print('refused:', exc.message[:40])",
    "%%experiment --models openai,qwen3:4b\nCompare.",
    "items = ['a', 'b']\n%infer --map items --backend openai -- Say {row}",
    "%infer_history --limit 4",
    "chat = %chat --backend openai\nchat",
    "chat.ask('hello', wait=True)",
    "%%infer\nThis one fails mid-answer.",  # last: Run All stops at an error
]

# from the page: is anything live in the outputs? (the chat's own controls are ours: only its
# transcript holds model text)
INSPECT_JS = """(marker) => {
  const areas = Array.from(document.querySelectorAll('.jp-OutputArea-output'));
  const scopes = areas.map(a => a.querySelector('.im-chat') ? a.querySelector('.im-transcript') : a).filter(Boolean);
  const found = [];
  for (const scope of scopes) {
    for (const el of scope.querySelectorAll('script, iframe, frame, form, input, button, textarea, select, style, object, embed, img, link, meta, base')) {
      // an image output of ours (the experiment's chart) is a PNG from the kernel, not from the model
      const ours = (el.tagName === 'IMG' && (scope.dataset.mimeType || '').startsWith('image/')
                    && (el.getAttribute('src') || '').startsWith('data:image/png'))
                   // the chat's own Copy / Regenerate / Edit buttons, added by chat.js around the transcript
                   || (el.tagName === 'BUTTON' && el.closest('.im-code-tools, .im-turn-tools') !== null);
      if (!ours) found.push('<' + el.tagName.toLowerCase() + '>');
    }
    for (const el of [scope, ...scope.querySelectorAll('*')]) {
      for (const attr of Array.from(el.attributes)) {
        if (attr.name.toLowerCase().startsWith('on')) found.push(attr.name + ' on <' + el.tagName.toLowerCase() + '>');
      }
    }
    for (const a of scope.querySelectorAll('a[href]')) {
      const href = a.getAttribute('href').trim().toLowerCase();
      if (!/^(https?:\\/\\/|mailto:)/.test(href)) found.push('href ' + href.slice(0, 40));
    }
  }
  return {pwned: window[marker] !== undefined, found, outputs: areas.length,
          text: areas.map(a => a.innerText).join('\\n')};
}"""


@pytest.fixture(scope="module")
def hostile_lab(ollama_server, openai_server):
    ollama_server.reset()
    openai_server.reset()
    beacon = openai_server.url
    answer = hostile.hostile_answer(beacon)
    openai_server.set(text=answer, reasoning=hostile.hostile_thinking(beacon), reply_model=hostile.HOSTILE_MODEL_NAME,
                      token_delay=0.002)
    # Ollama: the thinking model of the experiment, and the answer that fails with a hostile error
    ollama_server.set(text=answer, thinking=hostile.hostile_thinking(beacon), error_text=hostile.HOSTILE_ERROR,
                      fault="error_mid_stream", fault_after=60, fail_times=None)
    def environment(data):
        env = kernel_environment(ollama_server.url, data)
        env["OPENAI_BASE_URL"] = openai_server.base_url
        return env

    def watch(lab, root):
        lab.root = root
        lab.requests = []  # every URL the page asked for, from any frame
        lab.browser.page.on("request", lambda request: lab.requests.append(request.url))

    try:
        with lab_with_notebook(NOTEBOOK, CELLS, environment, prefix="im-hostile-browser-",
                               failure_screenshot=ARTIFACTS / "browser-hostile-failure.png", on_browser=watch) as lab:
            yield lab
    finally:
        ollama_server.reset()
        openai_server.reset()


def save(lab, timeout: float = 60) -> None:
    """Save the notebook. The command is not awaited: JupyterLab may first ask whether to overwrite
    a file it thinks changed on disk, and the answer is Overwrite."""
    lab.page.evaluate("() => { window.jupyterapp.commands.execute('docmanager:save'); }")
    overwrite = lab.page.locator(".jp-Dialog button", has_text="Overwrite")
    deadline = time.monotonic() + timeout
    while lab.page.evaluate("() => window.jupyterapp.shell.currentWidget.context.model.dirty"):
        if overwrite.count():
            overwrite.first.click()
        if time.monotonic() > deadline:
            raise AssertionError(f"the notebook was not saved within {timeout} s\n{lab.diagnostics()}")
        time.sleep(0.2)


def beacon_hits(lab, peer) -> list[str]:
    """Image or form requests that reached the hostile server, or left the page for it."""
    seen = [r.path for r in peer.requests if not r.path.startswith("/v1/")]
    asked = [url for url in lab.requests if url.startswith(peer.url) and "/v1/" not in url]
    return seen + asked


def inspect(lab) -> dict:
    return lab.page.evaluate(INSPECT_JS, hostile.MARKER)


@pytest.mark.timeout(1500)  # about 200 s idle; a loaded 2-core machine once took over 600 s
def test_every_surface_is_inert_in_the_page_and_after_reopening(hostile_lab, openai_server):
    lab = hostile_lab
    lab.run_all_cells(timeout=180)
    lab.wait_for("() => document.querySelectorAll('.im-transcript .im-assistant .im-meta').length > 0",
                 "the chat answer to finish", 60)
    lab.wait_for("() => document.querySelector('.jp-OutputArea-output[data-mime-type=\"application/vnd.jupyter.stderr\"]')",
                 "the failing cell's error line", 30)
    lab.page.wait_for_timeout(1500)  # time for anything that would fire late (ontoggle, onerror, timers)

    seen = inspect(lab)
    assert not seen["pwned"], "a payload ran in the page"
    assert not seen["found"], seen["found"][:10]
    assert hostile.HOSTILE_MODEL_NAME in seen["text"], "the server's model name is not shown as text"
    assert "<script>window.__pwned=1</script>" in seen["text"], "the payloads are not shown as text"
    assert not beacon_hits(lab, openai_server), beacon_hits(lab, openai_server)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lab.page.screenshot(path=str(ARTIFACTS / "browser-hostile-outputs.png"), full_page=False)

    # saved and reopened: JupyterLab trusts the notebook it signed, so the file itself must be inert
    save(lab)
    saved = json.loads((lab.root / NOTEBOOK).read_text(encoding="utf-8"))
    outputs = [o for cell in saved["cells"] for o in cell.get("outputs", []) if "data" in o]
    assert len(outputs) > 8
    for output in outputs:
        data = {mime: "".join(v) if isinstance(v, list) else v for mime, v in output["data"].items()}
        hostile.assert_inert(data, "a saved output")
    lab.requests.clear()
    lab.page.goto(lab.server.url(f"lab/tree/{NOTEBOOK}"), wait_until="domcontentloaded", timeout=60_000)
    # the outputs come from the file: no need to wait for the kernel
    lab.wait_for("""() => { const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                           return !!(panel && panel.context && panel.context.isReady)
                                  && document.querySelectorAll('.jp-OutputArea-output').length > 8; }""",
                 "the saved notebook and its outputs", 60)
    lab.page.wait_for_timeout(1500)
    reopened = inspect(lab)
    assert not reopened["pwned"], "a payload ran when the saved notebook was reopened"
    assert not reopened["found"], reopened["found"][:10]
    assert hostile.HOSTILE_MODEL_NAME in reopened["text"]
    assert not beacon_hits(lab, openai_server), beacon_hits(lab, openai_server)
