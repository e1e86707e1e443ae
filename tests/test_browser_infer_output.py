"""What `%%infer` and `%embed --similar-to` draw in a real JupyterLab page (headless Debian Chromium,
a real kernel whose Ollama is the loopback peer), in the light and the dark theme (issue 14 items 2
and 9): an answer cut inside a code block keeps its footer and notice outside the block, as text,
never `<sub>` markup; the footer, the notice and the answer read at WCAG AA (4.5:1), measured from
the computed styles; the similarity table's caption takes the output's width, not the narrow table's. Screenshots:
build/test-artifacts/infer-output-light.png and infer-output-dark.png."""
from __future__ import annotations

import pytest

from tests.browser_harness import lab_with_notebook, missing_requirement, WCAG_HELPERS
from tests.peers.base import split_tokens
from tests.test_browser import ARTIFACTS, kernel_environment

pytestmark = pytest.mark.skipif(missing_requirement() is not None, reason=str(missing_requirement()))

NOTEBOOK = "infer-output.ipynb"
BEFORE_THE_CUT = "Here is the function:\n\n```python\ndef area(r):\n    return 3.14159 * r"
ANSWER = BEFORE_THE_CUT + " ** 2\n```\n\nThat is all."
LIMIT = len(split_tokens(BEFORE_THE_CUT))  # --max-tokens cuts the answer inside its code block
CELLS = ["%load_ext inference_magics",
         f"%%infer --max-tokens {LIMIT}\nShow me a function for the area of a circle.",
         "docs = ['the cat sat on the mat', 'stocks fell sharply today', 'a cat sleeps in the sun']\n"
         '%embed -v docs --similar-to "where is the cat" -k 2']

LOOKS = """(index) => {
""" + WCAG_HELPERS + """  const ratio = el => {
    const back = background(el), fore = rgba(getComputedStyle(el).color);
    const alpha = fore.length > 3 ? fore[3] : 1;
    const mixed = [0, 1, 2].map(i => fore[i] * alpha + back[i] * (1 - alpha));
    const [a, b] = [lum(mixed), lum(back)].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
  };
  const area = document.querySelectorAll('.jp-Cell')[index];
  const output = area.querySelector('.jp-OutputArea-output');
  const notes = Array.from(output.querySelectorAll('.im-output > div[style]'));
  const footer = notes.find(d => d.innerText.includes('ollama · '));
  const notice = notes.find(d => d.innerText.includes('cut at the token limit'));
  return {
    text: output.innerText,
    pres: output.querySelectorAll('pre').length,
    codeText: Array.from(output.querySelectorAll('pre')).map(p => p.innerText).join('\\n'),
    footerInCode: footer ? !!footer.closest('pre, code') : null,
    noticeInCode: notice ? !!notice.closest('pre, code') : null,
    sub: output.querySelectorAll('sub').length,
    contrast: {
      answer: ratio(output.querySelector('.im-output p') || output),
      footer: footer ? ratio(footer) : null,
      notice: notice ? ratio(notice) : null,
    },
  };
}"""

CAPTION = """(index) => {
  const output = document.querySelectorAll('.jp-Cell')[index].querySelector('.jp-OutputArea-output');
  const caption = Array.from(output.querySelectorAll('div')).find(d => d.innerText.startsWith('most similar to') && !d.querySelector('table'));
  const style = getComputedStyle(caption);
  const line = parseFloat(style.lineHeight) || 1.4 * parseFloat(style.fontSize);
  return {found: !!caption, lines: caption.getBoundingClientRect().height / line,
          table: output.querySelector('table').getBoundingClientRect().width,
          caption: caption.getBoundingClientRect().width, output: output.getBoundingClientRect().width};
}"""

@pytest.fixture(scope="module")
def lab(ollama_server):
    ollama_server.reset()
    ollama_server.set(text=ANSWER, token_delay=0.0)
    try:
        with lab_with_notebook(NOTEBOOK, CELLS, lambda data: kernel_environment(ollama_server.url, data),
                               prefix="im-browser-infer-",
                               failure_screenshot=ARTIFACTS / "browser-infer-failure.png") as page:
            page.run_all_cells(timeout=90)
            yield page
    finally:
        ollama_server.reset()


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_a_cut_answer_keeps_its_footer_outside_the_code_and_every_line_reads_in_both_themes(lab, theme):
    lab.execute("apputils:change-theme", {"theme": theme})
    lab.wait_for("t => document.body.dataset.jpThemeName === t", f"the {theme} theme", 15, arg=theme)
    lab.page.wait_for_timeout(300)  # the theme's stylesheet applies after the attribute
    looks = lab.page.evaluate(LOOKS, 1)
    assert looks["pres"] == 1 and "def area(r):" in looks["codeText"], looks
    # the footer and the notice are lines of their own, after the block, never inside it or as markup
    assert looks["footerInCode"] is False and looks["noticeInCode"] is False, looks
    assert "ollama" not in looks["codeText"] and "<sub>" not in looks["text"] and looks["sub"] == 0, looks
    assert f"{LIMIT} out tokens" in looks["text"] and "$" not in looks["text"], looks["text"]
    for part, ratio in looks["contrast"].items():
        assert ratio is not None and ratio >= 4.5, f"{part} contrast {ratio}:1 in {theme} is below WCAG AA: {looks}"
    caption = lab.page.evaluate(CAPTION, 2)
    # the caption takes the output's width, not the narrow table's (where it wrapped onto three lines)
    assert caption["found"] and caption["caption"] > 2 * caption["table"], caption
    assert caption["caption"] >= 0.9 * caption["output"] - 40 and caption["lines"] < 1.6, caption  # one line
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"infer-output-{theme.split()[-1].lower()}.png"
    lab.page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 5_000
    lab.execute("apputils:change-theme", {"theme": "JupyterLab Light"})
