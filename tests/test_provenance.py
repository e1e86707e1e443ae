"""Provenance saved with the notebook: a notebook on disk is executed with nbclient against the
peers, saved, and im.provenance reads one row per answer back from the file."""
import hashlib
import json

import nbformat
import pytest
from nbclient import NotebookClient

import inference_magics as im
from inference_magics import cache, history


@pytest.fixture
def executed(peers, tmp_path, monkeypatch):
    ollama, claude = peers
    cache._caches.clear()
    history._stores.clear()
    monkeypatch.setenv("INFERENCE_CACHE", "on")
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%load_ext inference_magics"),
        nbformat.v4.new_code_cell("%%infer --temperature 0.2\nName a river."),
        nbformat.v4.new_code_cell("%%infer claude-haiku-4.5 --max-tokens 50\nName a mountain."),
        nbformat.v4.new_code_cell("items = ['a', 'b', 'c']"),
        nbformat.v4.new_code_cell("%%infer --map items\nClassify: {row}"),
        nbformat.v4.new_code_cell("%%infer --temperature 0.2\nName a river."),  # the first answer, cached
    ])
    path = tmp_path / "analysis.ipynb"
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    nbformat.write(notebook, path)
    return path, ollama, claude


def test_every_answer_carries_provenance_and_im_provenance_reads_it(executed):
    path, ollama, claude = executed
    frame = im.provenance(path)
    assert list(frame["kind"]) == ["answer", "answer", "map", "map", "map", "answer"]
    assert list(frame["cell"]) == [1, 2, 4, 4, 4, 5]
    river, mountain, *rows, again = frame.to_dict("records")
    assert (river["backend"], river["model"], river["options"]) == ("ollama", "llama3.2:latest", {"temperature": 0.2})
    assert (mountain["backend"], mountain["model"]) == ("anthropic", "claude-haiku-4-5-20251001")
    assert mountain["options"] == {"max_tokens": 50} and mountain["route_reason"]
    assert mountain["cost_usd"] > 0 and mountain["input_tokens"] > 0 and mountain["output_tokens"] > 0
    assert mountain["requested_at"].endswith("+00:00") and mountain["duration_s"] > 0
    assert mountain["version"] == im.__version__ and not mountain["cached"]
    sent = [r.body for r in claude.requests if r.path == "/v1/messages"]
    (body,) = sent
    exact = {"system": None, "messages": body["messages"]}
    assert mountain["messages_sha256"] == hashlib.sha256(
        json.dumps(exact, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    assert [r["backend"] for r in rows] == ["ollama"] * 3 and all(r["request_sha256"] for r in rows)
    assert again["cached"] and again["cached_at"] and again["request_sha256"] == river["request_sha256"]
    assert again["cost_usd"] == 0.0


def test_a_file_that_is_not_a_notebook_is_one_line(tmp_path):
    (tmp_path / "x.ipynb").write_text("not json")
    with pytest.raises(im.ConfigError, match="is not a notebook"):
        im.provenance(tmp_path / "x.ipynb")
    with pytest.raises(im.ConfigError, match="cannot read the notebook"):
        im.provenance(tmp_path / "missing.ipynb")


def test_an_example_notebook_replays_offline_from_its_recorded_cache(peers, tmp_path, monkeypatch):
    """What CI needs to re-run a notebook for nothing: record once (INFERENCE_CACHE=on), then
    replay with both backends unreachable — any model call would fail the run."""
    from tests.conftest import REPO, closed_port

    cache._caches.clear()
    history._stores.clear()
    recorded = tmp_path / "quickstart-responses.sqlite3"
    monkeypatch.setenv("INFERENCE_CACHE_FILE", str(recorded))
    source = nbformat.read(REPO / "notebooks" / "01-quickstart.ipynb", as_version=4)

    def execute():
        notebook = nbformat.from_dict(json.loads(json.dumps(source)))
        NotebookClient(notebook, timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO / "notebooks")}}).execute()
        return notebook

    monkeypatch.setenv("INFERENCE_CACHE", "on")
    first = execute()
    assert recorded.exists()
    nowhere = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("INFERENCE_CACHE", "replay")
    monkeypatch.setenv("OLLAMA_BASE_URL", nowhere)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", nowhere)
    again = execute()  # raises CellExecutionError if any cell missed the cache and tried a model

    def answers(notebook):
        return [o["data"]["text/plain"].split("\n\n— ")[0] for c in notebook.cells for o in c.get("outputs", [])
                if o.get("metadata", {}).get("inference_magics", {}).get("kind") == "answer"]

    assert answers(again) == answers(first) and len(answers(first)) == 3
    path = tmp_path / "replayed.ipynb"
    nbformat.write(again, path)
    assert im.provenance(path)["cached"].tolist() == [True, True, True]
