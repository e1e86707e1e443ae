"""%%infer's modes (a prompt, --explain, --workflow review|summarize, --map, --map --batch-api)
share one option table; a flag given to a mode that does not take it is one usage line, before
anything is sent. In-process shell, real peers."""
import pytest
from IPython.core.error import UsageError

from inference_magics.notebook.options import INFER_OPTIONS, MODES


@pytest.mark.parametrize("line, cell, expected", [
    ("--batch-api", "hi", "--batch-api does not go with a prompt — it goes with --map --batch-api."),
    ("--map rows --workflow review", "x", "--map and --workflow review are two modes of %%infer — use one at a time."),
    ("--explain --map rows", "{row}", "--explain and --map are two modes of %%infer — use one at a time."),
    ("--map rows --batch-api --concurrency 3", "{row}", "--concurrency does not go with --map --batch-api"),
    ("--map rows --file notes.txt", "{row}", "--file does not go with --map — it goes with --workflow review, "
                                             "--workflow summarize or a prompt."),
    ("--workflow review --format json", "x", "--format does not go with --workflow review"),
    ("--workflow review --no-cache", "x", "--no-cache does not go with --workflow review"),
    ("--workflow summarize --format json", "x", "a summary is bullets or paragraph, not json"),
    ("--map rows --format bullets", "{row}", "--format bullets shapes a summary"),
    ("llama3.2 qwen3", "hi", "%%infer takes at most one MODEL"),
])
def test_a_flag_outside_its_mode_is_one_line_and_nothing_is_sent(shell, peers, line, cell, expected):
    ollama, claude = peers
    shell.user_ns["rows"] = ["a", "b"]
    with pytest.raises(UsageError) as err:
        shell.run_cell_magic("infer", line, cell)
    assert expected in str(err.value) and "\n" not in str(err.value)
    assert not [r for r in ollama.requests if r.path in ("/api/chat", "/api/generate")] and not claude.requests


def test_each_mode_runs_its_handler(shell, peers):
    ollama, _ = peers
    ollama.set(echo=True)
    shell.run_cell_magic("infer", "llama3.2:3b --out answer", "Say {word}")  # a MODEL word, then options
    shell.user_ns["word"] = "hi"
    shell.run_line_magic("infer", "-m llama3.2:3b -- one line")
    assert shell.user_ns["_infer"].text == "echo: one line" and shell.user_ns["_infer"].model == "llama3.2:3b"
    shell.user_ns["rows"] = ["x", "y"]
    shell.run_cell_magic("infer", "llama3.2:3b --map rows --out labels", "Label {row}")
    assert shell.user_ns["labels"] == ["echo: Label x", "echo: Label y"]
    shell.run_line_magic("infer", "--workflow summarize --var word --length short")
    assert "hi" in [r for r in ollama.requests if r.path == "/api/chat"][-1].body["messages"][-1]["content"]


def test_every_option_names_real_modes():
    assert all(option.modes and set(option.modes) <= set(MODES) for option in INFER_OPTIONS)
