"""%%experiment's output in a real browser (JupyterLab + Chromium), in the light and the dark theme:
the comparison table's headers are for people and readable, the model load has its own column,
and the chart (a transparent PNG) shows with text that reads on the theme's background. The saved
notebooks/04-experiment.ipynb is opened as a newcomer would, in both themes. Screenshots are kept
in build/test-artifacts/ (experiment-*.png, notebook-04-*.png)."""
from __future__ import annotations

import shutil

import pytest

from tests.browser_harness import lab_with_notebook, missing_requirement, WCAG_HELPERS
from tests.conftest import REPO
from tests.test_browser import kernel_environment

pytestmark = pytest.mark.skipif(missing_requirement() is not None, reason=str(missing_requirement()))

ARTIFACTS = REPO / "build" / "test-artifacts"
THEMES = ["JupyterLab Light", "JupyterLab Dark"]
CELLS = ["%load_ext inference_magics",
         "%%experiment --models llama3.2,qwen2.5-coder:7b --out runs\nExplain recursion in one paragraph."]
CHART_TEXT = (0x76, 0x76, 0x76)  # experiment_output.TEXT

# the notebook panel open on `path` (another notebook may be the current one after a reload)
PANEL = "path => Array.from(window.jupyterapp.shell.widgets('main')).find(w => w.context && w.context.path === path)"
LOOKS = """([path, cell, chartText]) => {
""" + WCAG_HELPERS + """  const contrast = (fore, back) => { const [a, b] = [lum(fore), lum(back)].sort((x, y) => y - x); return (a + 0.05) / (b + 0.05); };
  const ratio = el => el ? contrast(rgba(getComputedStyle(el).color), background(el)) : null;
  const root = (""" + PANEL + """)(path).content.widgets[cell].node;
  const table = Array.from(root.querySelectorAll('table')).find(t => t.innerText.includes('First token'))
             || Array.from(root.querySelectorAll('table')).pop();
  const image = root.querySelector('.jp-OutputArea-output img');
  return {
    headers: table ? Array.from(table.querySelectorAll('th')).map(th => th.innerText.trim()) : [],
    firstRow: table && table.querySelector('tbody tr') ? Array.from(table.querySelector('tbody tr').children).map(td => td.innerText.trim()) : [],
    header: ratio(table && table.querySelector('th')),
    cell: ratio(table && table.querySelector('td')),
    image: image ? {width: image.naturalWidth, height: image.naturalHeight, alt: image.alt} : null,
    chartText: image ? contrast(chartText, background(image)) : null,
  };
}"""


def _use_theme(lab, theme: str) -> None:
    lab.execute("apputils:change-theme", {"theme": theme})
    lab.wait_for("t => document.body.dataset.jpThemeName === t", f"the {theme} theme", 15, arg=theme)
    lab.page.wait_for_timeout(400)  # the theme's stylesheet applies after the attribute


def _shoot(lab, path: str, cell: int, shot) -> None:
    """A screenshot of one cell, scrolled to (JupyterLab renders cells lazily)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lab.page.evaluate(f"async ([path, i]) => {{ const panel = ({PANEL})(path);"
                      " window.jupyterapp.shell.activateById(panel.id); panel.content.activeCellIndex = i;"
                      " await panel.content.scrollToItem(i, 'start'); }", [path, cell])
    lab.page.wait_for_timeout(300)
    node = lab.page.evaluate_handle(f"([path, i]) => ({PANEL})(path).content.widgets[i].node", [path, cell])
    node.as_element().screenshot(path=str(shot))


@pytest.fixture(scope="module")
def experiment_lab(ollama_server):
    ollama_server.reset()
    ollama_server.set(load_delay=1.0, tokens=40, token_delay=0.01)
    try:
        with lab_with_notebook("experiment.ipynb", CELLS, lambda data: kernel_environment(ollama_server.url, data),
                               prefix="im-browser-experiment-",
                               failure_screenshot=ARTIFACTS / "browser-experiment-failure.png") as lab:
            lab.run_all_cells(timeout=90)
            lab.wait_for(f"() => !!({PANEL})('experiment.ipynb').content.widgets[1].node.querySelector('img')",
                         "the experiment's chart", 30)
            yield lab
    finally:
        ollama_server.reset()


@pytest.mark.parametrize("theme", THEMES)
def test_the_experiment_table_and_chart_read_well_in_both_themes(experiment_lab, theme):
    lab = experiment_lab
    _use_theme(lab, theme)
    _shoot(lab, "experiment.ipynb", 1, ARTIFACTS / f"experiment-{theme.split()[-1].lower()}.png")
    looks = lab.page.evaluate(LOOKS, ["experiment.ipynb", 1, list(CHART_TEXT)])
    assert looks["headers"] == ["Model", "Backend", "Load (s)", "First token (s)", "Total (s)", "Tokens/s",
                                "Output tokens", "Cost (USD)"], looks
    assert looks["firstRow"][:2] == ["llama3.2", "ollama"] and float(looks["firstRow"][2]) >= 1.0, looks  # loaded
    assert looks["header"] >= 4.5 and looks["cell"] >= 4.5, looks
    assert looks["image"] and looks["image"]["width"] > 400, looks
    # mid-grey on a transparent PNG: 4.5:1 on the light theme, 4.2:1 on the dark one (no grey does 4.5 on both)
    assert looks["chartText"] >= (4.5 if theme.endswith("Light") else 4.0), looks
    _use_theme(lab, "JupyterLab Light")


def test_the_saved_experiment_notebook_as_a_newcomer_sees_it(experiment_lab):
    """notebooks/04-experiment.ipynb opened (not run) in both themes: its saved table and chart."""
    lab = experiment_lab
    shutil.copyfile(REPO / "notebooks" / "04-experiment.ipynb", lab.server.root_dir / "04-experiment.ipynb")
    lab.open_notebook("04-experiment.ipynb")
    lab.wait_for(f"() => {{ const p = ({PANEL})('04-experiment.ipynb'); return !!p && p.content.widgets.length > 4; }}",
                 "notebook 04 to open", 30)
    cell = lab.page.evaluate(f"""path => ({PANEL})(path).content.widgets.findIndex(c => c.model.type === 'code'
                                   && c.model.sharedModel.source.startsWith('%%experiment'))""", "04-experiment.ipynb")
    assert cell >= 0
    looks = {}
    for theme in THEMES:
        _use_theme(lab, theme)
        _shoot(lab, "04-experiment.ipynb", cell, ARTIFACTS / f"notebook-04-{theme.split()[-1].lower()}.png")
        looks[theme] = lab.page.evaluate(LOOKS, ["04-experiment.ipynb", cell, list(CHART_TEXT)])
    _use_theme(lab, "JupyterLab Light")
    for theme, seen in looks.items():
        assert "First token (s)" in seen["headers"] and "ttft_s" not in seen["headers"], seen
        assert seen["header"] >= 4.5 and seen["cell"] >= 4.5, seen
        assert seen["image"] and seen["image"]["width"] > 400, seen
