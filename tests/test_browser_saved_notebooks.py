"""The saved example notebooks as a newcomer first sees them: a fresh clone's notebook is untrusted,
so JupyterLab sanitizes its HTML outputs and drops every style declaration holding var(--jp-*).
What our outputs mean by their styles must survive that, in the light and the dark theme: the
footer is quieter than the answer yet reads at WCAG AA, a notice keeps its bar, an answer that
opens with "31077." (a Markdown list starting there) shows its whole number, and the charts of
05 and 07 are saved. Screenshots: build/test-artifacts/saved-notebook-07-light.png and -dark.png."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.browser_harness import Browser, JupyterLab, Lab, missing_requirement, WCAG_HELPERS
from tests.conftest import REPO
from tests.test_browser import kernel_environment

pytestmark = pytest.mark.skipif(missing_requirement() is not None, reason=str(missing_requirement()))

ARTIFACTS = REPO / "build" / "test-artifacts"
THEMES = ["JupyterLab Light", "JupyterLab Dark"]

LOOKS = """() => {
""" + WCAG_HELPERS + """  const opacity = el => { let o = 1; for (let n = el; n; n = n.parentElement) o *= parseFloat(getComputedStyle(n).opacity); return o; };
  const ratio = el => {   // the text's colour as painted: its alpha and its ancestors' opacity mixed into the background
    const back = background(el), fore = rgba(getComputedStyle(el).color);
    const alpha = (fore.length > 3 ? fore[3] : 1) * opacity(el);
    const mixed = [0, 1, 2].map(i => fore[i] * alpha + back[i] * (1 - alpha));
    const [a, b] = [lum(mixed), lum(back)].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
  };
  const panel = window.jupyterapp.shell.currentWidget;
  const outputs = Array.from(panel.node.querySelectorAll('.jp-OutputArea-output'));
  const divs = outputs.flatMap(o => Array.from(o.querySelectorAll('.im-output div')));
  const footer = divs.find(d => /^local · gemma/.test(d.innerText) && !d.querySelector('div'));
  const notice = divs.find(d => d.innerText.startsWith('⚠'));
  const answer = footer.closest('.im-output').querySelector('p');
  const lists = outputs.flatMap(o => Array.from(o.querySelectorAll('.im-output ol[start]')))
    .filter(ol => ol.getAttribute('start').length >= 3)
    .map(ol => ({start: ol.getAttribute('start'), pad: parseFloat(getComputedStyle(ol).paddingLeft),
                 ch: parseFloat(getComputedStyle(ol).fontSize) * 0.55}));
  return {footer: ratio(footer), answer: ratio(answer), footerOpacity: opacity(footer),
          noticeBar: notice ? parseFloat(getComputedStyle(notice).borderLeftWidth) : null, lists,
          images: outputs.filter(o => o.querySelector('img')).length};
}"""


@pytest.fixture(scope="module")
def lab():
    with tempfile.TemporaryDirectory(prefix="im-browser-saved-") as tmp:
        tmp = Path(tmp)
        shutil.copytree(REPO / "notebooks", tmp / "root")   # untrusted: never signed here
        server = JupyterLab(tmp / "root", tmp / "home", kernel_environment("http://127.0.0.1:9", tmp / "data")).start()
        browser = None
        try:
            browser = Browser(viewport=(1280, 16000))   # tall: every cell of the notebook is rendered
            yield Lab(server, browser, failure_screenshot=ARTIFACTS / "browser-saved-failure.png")
        finally:
            if browser is not None:
                browser.close()
            server.stop()


@pytest.mark.parametrize("theme", THEMES)
def test_a_fresh_saved_notebook_keeps_a_quiet_footer_a_notice_bar_and_whole_list_numbers(lab, theme):
    lab.open_notebook("07-notebook-context.ipynb")
    lab.execute("apputils:change-theme", {"theme": theme})
    lab.wait_for("t => document.body.dataset.jpThemeName === t", f"the {theme} theme", 15, arg=theme)
    lab.wait_for("() => !!window.jupyterapp.shell.currentWidget.node.querySelector('.im-output ol[start]')",
                 "07's saved answers to render", 20)
    looks = lab.page.evaluate(LOOKS)
    assert looks["footerOpacity"] < 0.9, f"the footer is as loud as the answer once sanitized: {looks}"
    assert looks["footer"] >= 4.5 and looks["footer"] < looks["answer"], looks
    assert looks["noticeBar"] and looks["noticeBar"] >= 2, f"the notice lost its bar once sanitized: {looks}"
    assert looks["lists"], looks   # 07 saves the answer "31077. We have been averaging..."
    for ol in looks["lists"]:
        assert ol["pad"] >= (len(ol["start"]) + 1) * ol["ch"], f"list number {ol['start']} is cut at the left: {ol}"
    assert looks["images"] >= 1, "07's bar chart was not saved"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lab.page.screenshot(path=str(ARTIFACTS / f"saved-notebook-07-{theme.split()[-1].lower()}.png"), full_page=True)


def test_the_heatmap_of_notebook_05_is_saved(lab):
    lab.open_notebook("05-embeddings-semantic-search.ipynb")
    # one look at the page counts it: JupyterLab lays a notebook out in windows, and a second query moments
    # later may find the cell's output taken out of the page while the layout settles
    lab.wait_for("() => window.jupyterapp.shell.currentWidget.node.querySelectorAll('.jp-OutputArea-output img')"
                 ".length === 1", "the similarity heatmap promised by 05 in its saved outputs (one image)", 20)
