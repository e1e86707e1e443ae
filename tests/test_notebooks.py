"""The example notebooks under nbval, beyond the default run against the loopback peers:

- in replay (INFERENCE_CACHE=replay against the committed notebooks/cache/responses.sqlite3):
  no model runs — llama-server is a tripwire — every cell runs, and every saved answer comes back
  word for word (checked here with nbclient: nbval ignores update_display_data, so it only sees
  a streamed answer's first draw);
- against the embedded local model (a real model, no daemon, no key). Kept because replay only
  proves the recorded requests are still the ones the notebooks make: this run proves the
  notebooks still work on a real model after they change (before `scripts/notebooks --record`).
"""
import os
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.conftest import REPO, needs_local
from tests.notebook_replay import NOTEBOOKS, answers, recorded, replay_environment

EXAMPLES = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))


def _environment(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA", "ANTHROPIC", "INFERENCE_", "OPENAI_"))}
    return {**env, **extra}


def _nbval(env):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "notebooks"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=2300)
    return done, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]


def test_the_nbval_run_replays_every_notebook_without_a_model(tmp_path):
    note = tmp_path / "llama-server-started"
    done, summary = _nbval(_environment(NOTEBOOKS_BACKEND="replay", NOTEBOOKS_TRIPWIRE_NOTE=str(note)))
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary
    assert not note.exists(), note.read_text()  # nothing started a model
    assert recorded() <= {p.name for p in EXAMPLES} and recorded()  # the manifest names real notebooks


@pytest.fixture
def replaying(tmp_path, monkeypatch):
    """This process's environment as a replaying kernel's (nbclient's kernels inherit it)."""
    for name in [n for n in os.environ if n.startswith(("OLLAMA", "ANTHROPIC", "INFERENCE_", "OPENAI_"))]:
        monkeypatch.delenv(name)
    note = tmp_path / "llama-server-started"
    for name, value in replay_environment(tmp_path / "data", note).items():
        monkeypatch.setenv(name, value)
    yield
    assert not note.exists(), note.read_text()  # nothing started a model


def execute(notebook, folder):
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return notebook


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_a_replayed_notebook_shows_its_saved_answers_word_for_word(path, replaying):
    if path.name not in recorded():
        pytest.skip(f"{path.name} is not in notebooks/cache/recorded.txt: run scripts/notebooks --record")
    saved = nbformat.read(path, as_version=4)
    expected = {i: answers(cell) for i, cell in enumerate(saved.cells) if answers(cell) is not None}
    replayed = execute(nbformat.read(path, as_version=4), path.parent)
    for index, texts in expected.items():
        assert answers(replayed.cells[index]) == texts, f"cell {index} of {path.name}"


def test_a_prompt_never_recorded_is_one_cache_miss(replaying):
    notebook = nbformat.read(NOTEBOOKS / "01-quickstart.ipynb", as_version=4)
    notebook.cells = notebook.cells[:2] + [nbformat.v4.new_code_cell("%%infer\nA question nobody recorded.")]
    with pytest.raises(CellExecutionError) as failed:
        execute(notebook, NOTEBOOKS)
    assert "CacheMiss" in str(failed.value) and "INFERENCE_CACHE=replay" in str(failed.value)


@needs_local
@pytest.mark.timeout(2400)  # eight notebooks on a 270M model: minutes on an idle machine, many more under load
def test_every_notebook_runs_on_the_embedded_model():
    done, summary = _nbval(_environment(NOTEBOOKS_BACKEND="local"))
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary


def test_the_notebook_runner_starts_its_kernel_without_the_tcp_warning(tmp_path):
    """Issue 14: the quickstart printed ipykernel's "Kernel is running over TCP without encryption"
    warning. scripts/run_notebooks.py's kernel listens on Unix sockets, so it has nothing to warn of."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("print('ran', 6 * 7)")]
    path = tmp_path / "im-runner-probe.ipynb"
    nbformat.write(notebook, path)
    probe = ("import sys; from pathlib import Path; sys.path.insert(0, 'scripts'); import run_notebooks; "
             f"sys.exit(1 if run_notebooks.execute(Path({str(path)!r}), True) else 0)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=_environment(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ran 42" in nbformat.read(path, as_version=4).cells[0].outputs[0]["text"]  # the kernel did run it
    assert "without encryption" not in done.stdout + done.stderr, done.stderr
    (REPO / "build" / "im-runner-probe.executed.ipynb").unlink(missing_ok=True)
