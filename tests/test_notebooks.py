"""The example notebooks under nbval, beyond the default run against the loopback peers:

- replaying the committed notebooks/cache/responses.sqlite3 (INFERENCE_CACHE=replay): no model
  runs — llama-server is a tripwire — and every saved answer must come back word for word;
- against the embedded local model (a real model, no daemon, no key). Kept because replay only
  proves the recorded requests are still the ones the notebooks make: this run proves the
  notebooks still work on a real model when they change (before `scripts/notebooks --record`).
Each runs `pytest notebooks` in a subprocess with NOTEBOOKS_BACKEND set (see notebooks/conftest.py).
"""
import json
import os
import shutil
import subprocess
import sys

from tests.conftest import REPO, needs_local


def _environment(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OLLAMA", "ANTHROPIC", "INFERENCE_", "OPENAI_"))}
    return {**env, **extra}


def _nbval(env, *args, cwd=REPO):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=1500)
    return done, done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]


def test_every_notebook_replays_its_recorded_answers_without_a_model(tmp_path):
    note = tmp_path / "llama-server-started"
    done, summary = _nbval(_environment(NOTEBOOKS_BACKEND="replay", NOTEBOOKS_TRIPWIRE_NOTE=str(note)), "notebooks")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary
    assert not note.exists(), note.read_text()  # nothing started a model


def test_replay_fails_a_changed_answer_and_an_unrecorded_prompt(tmp_path):
    """The strict check can fail: a saved answer edited by hand, and a prompt never recorded."""
    copy = tmp_path / "notebooks"
    shutil.copytree(REPO / "notebooks", copy, ignore=shutil.ignore_patterns("0[2-9]-*.ipynb", "1*.ipynb"))
    notebook = json.loads((copy / "01-quickstart.ipynb").read_text())
    answers = [c for c in notebook["cells"] if c["cell_type"] == "code" and c["outputs"]
               and all("inference_magics" in o.get("metadata", {}) for o in c["outputs"])]
    output = answers[0]["outputs"][0]["data"]
    output["text/markdown"] = "An answer nobody recorded. " + output["text/markdown"]
    last = notebook["cells"][-1]  # im.stream("Count from one to five, in words."): nothing depends on it
    assert "im.stream(" in "".join(last["source"])
    last["source"] = "".join(last["source"]).replace("in words.", "in words, please.")
    (copy / "01-quickstart.ipynb").write_text(json.dumps(notebook))
    note = tmp_path / "llama-server-started"
    env = _environment(NOTEBOOKS_BACKEND="replay", NOTEBOOKS_TRIPWIRE_NOTE=str(note), PYTHONPATH=str(REPO))
    done, summary = _nbval(env, "--nbval-lax", f"--rootdir={tmp_path}", "notebooks", cwd=tmp_path)
    assert "2 failed" in summary, done.stdout[-6000:]
    assert "CacheMiss" in done.stdout and "INFERENCE_CACHE=replay" in done.stdout
    assert "An answer nobody recorded." in done.stdout  # nbval's diff of the strictly checked cell
    assert not note.exists()


@needs_local
def test_every_notebook_runs_on_the_embedded_model(tmp_path):
    done, summary = _nbval(_environment(NOTEBOOKS_BACKEND="local"), "notebooks")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary
