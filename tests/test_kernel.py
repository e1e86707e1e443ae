"""%%infer in a real ipykernel: what a notebook receives on iopub."""
import json

import pytest

from tests.conftest import NOT_INSTALLED, needs_local, wait_until

SENTINEL = "sk-ant-sentinel-kernel-DO-NOT-LEAK-987654"


def test_loading_imports_no_sdk_and_touches_no_network(kernel):
    assert kernel.loaded.reply["status"] == "ok"
    assert kernel.loaded.stdout.strip() == "[]"
    assert kernel.requests_during_load == []


def test_tokens_stream_in_several_updates_and_the_final_output_is_the_text(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(tokens=40, token_delay=0.03)
    run = kernel.run("%%infer\nWhat is the capital of France?")
    assert run.reply["status"] == "ok"
    updates = run.of_type("update_display_data")
    partial = [u for u in updates[:-1] if u["content"]["data"]["text/plain"].startswith("word0")]
    assert len(partial) >= 3  # text arrived in pieces before the end
    texts = [u["content"]["data"]["text/plain"] for u in partial]
    assert texts == sorted(texts, key=len) and len(set(texts)) == len(texts)  # growing, never repeated
    final = updates[-1]["content"]
    assert final["data"]["text/plain"].startswith(ollama.expected_text() + "\n")
    assert "ollama · llama3.2:latest · default backend" in final["data"]["text/plain"]
    assert "first token" in final["data"]["text/plain"] and "40 out tokens" in final["data"]["text/plain"]
    assert "text/markdown" not in final["data"] and final["data"]["text/html"].count("word0") == 1
    assert final["metadata"]["inference_magics"]["backend"] == "ollama"
    # every update goes to the one display the cell opened
    ids = {m["content"]["transient"]["display_id"] for m in run.displays}
    assert len(ids) == 1


def test_a_long_fast_stream_sends_a_bounded_number_of_updates(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(tokens=6000, token_delay=0.0002)
    run = kernel.run("%%infer\nwrite a lot")
    assert run.reply["status"] == "ok"
    assert run.final_markdown.startswith(ollama.expected_text())
    stream_time = run.messages[-1][0] - run.messages[0][0]
    # ~10 updates per second at most, plus the opening display and the final update
    assert len(run.displays) <= 10 * stream_time + 3, (len(run.displays), stream_time)
    assert len(run.displays) < 6000 / 20


def test_interrupt_stops_the_stream_closes_the_connection_and_keeps_the_partial(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(tokens=2000, token_delay=0.02)
    running = kernel.start("%%infer\ntell me a long story")

    def some_text_shown(execution):
        return any(m["content"]["data"]["text/plain"].startswith("word0 word1 word2")
                   for m in execution.of_type("update_display_data"))

    kernel.collect(running, until=some_text_shown, timeout=30)
    kernel.interrupt()
    kernel.collect(running, timeout=10)
    assert wait_until(lambda: ollama.disconnects == 1, timeout=3)
    assert ollama.completed == 0
    final = running.of_type("update_display_data")[-1]["content"]["data"]["text/plain"]
    assert final.startswith("word0 word1 word2") and "interrupted" in final
    assert running.reply["status"] == "error" and running.reply["ename"] == "InferenceInterrupted"
    assert len(running.errors) == 1 and len(running.errors[0]["traceback"]) == 1  # one line, no traceback
    check = kernel.run("print(_infer.interrupted, len(_infer.text) > 10, _infer.stop_reason, "
                       "_infer.usage.output_tokens, len(_infer.text.split()))")
    interrupted, long_enough, stop, arrived, words = check.stdout.split()
    assert [interrupted, long_enough, stop] == ["True", "True", "interrupted"]
    # what arrived is counted (the peer streams one word per piece), never a made-up "≈ $0.0000"
    assert arrived == words and int(arrived) >= 3
    assert f"≈ {arrived} out tokens arrived" in final and "$" not in final, final
    history = kernel.run("%infer_history --limit 1").of_type("display_data")[0]["content"]["data"]["text/plain"]
    assert f"— / {arrived}" in history and "interrupted" in history, history  # not 0 / 0


def test_line_form_out_and_interpolation(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(tokens=5)
    run = kernel.run('city = "Lyon"\ncode = "d = {1: 2}"\n%infer -o answer Tell me about {city} and {missing}; {{city}}; {code}')
    assert run.reply["status"] == "ok"
    sent = [r for r in ollama.requests if r.path == "/api/chat"][-1].body["messages"][-1]["content"]
    assert sent == "Tell me about Lyon and {missing}; {city}; d = {1: 2}"
    check = kernel.run("print(answer.text == _infer.text, answer.backend)")
    assert check.stdout.split() == ["True", "ollama"]


def test_model_positional_and_claude_footer_with_cost(kernel, peers_reset):
    _, claude = peers_reset
    claude.set(tokens=6)
    run = kernel.run("%%infer claude-haiku-4.5 --temperature 0.2\nhello there")
    assert run.reply["status"] == "ok"
    final = run.final_markdown
    assert final.startswith(claude.expected_text())
    assert "anthropic · claude-haiku-4-5" in final and "< $0.0001" in final  # 2 in / 6 out: not "≈ $0.0000"
    body = [r for r in claude.requests if r.path == "/v1/messages"][-1].body
    assert body["model"] == "claude-haiku-4-5" and body["temperature"] == 0.2


def test_json_format_shows_json_and_out_holds_the_object(kernel, peers_reset):
    run = kernel.run("%%infer --format json --out obj\nreturn an object")
    assert run.reply["status"] == "ok" and '<code class="language-json">' in run.final_html
    check = kernel.run("print(type(obj).__name__, sorted(obj))")
    assert check.stdout.split() == ["dict", "['answer']"]


def test_explain_shows_the_route_and_calls_no_model(kernel, peers_reset):
    ollama, claude = peers_reset
    run = kernel.run("%%infer --explain\nThis is confidential: prove the Riemann hypothesis")
    shown = run.of_type("display_data")[0]["content"]["data"]["text/html"]
    assert "<b>ollama</b>" in shown and "private prompt" in shown
    assert not [r for r in ollama.requests if r.path == "/api/chat"] and not claude.requests


@pytest.mark.parametrize("cell, expected", [
    ("%%infer --bogus\nhi", "unrecognized arguments: --bogus — %infer? lists the options."),
    ("%%infer --out class\nhi", "--out 'class' is not a valid variable name"),
    ("%%infer --out print\nhi", "--out 'print' would replace a name Python or IPython needs"),
    ("%%infer --out In\nhi", "--out 'In' would replace a name Python or IPython needs"),
    ("%%experiment --models llama3.2 --repeat 1000\nhi", "--repeat must be from 1 to 20, not 1000"),
    ("%%infer --temperature abc\nhi", "invalid float value: 'abc'"),
    ("%infer --max-tokens abc hi", "invalid int value: 'abc' — %infer? lists the options."),  # no '--' hint here
    ("%infer what does --force do", "(in a one-line prompt, put `--` before text that looks like a flag)"),
    ("%%infer\n   \n", "the prompt is empty"),
    ("%%infer --backend foo\nhi", "unknown backend 'foo'"),
    ("%%infer --temperature 5\nhi", "temperature must be a number from 0 to 2"),
    ("%%infer --max-tokens 0\nhi", "max_tokens must be a whole number"),
    ("%%infer --temperature -1\nhi", "temperature must be a number from 0 to 2"),
    ("%%infer --max-tokens -5\nhi", "max_tokens must be a whole number"),
    ("%%infer --max-tokens 99999999999\nhi", "max_tokens must be a whole number"),
    ("%%infer --model ''\nhi", "the model name is empty"),
    ("class Bad:\n    def __str__(self):\n        raise ValueError('nope')\nbad = Bad()\n%infer tell me about {bad}",
     "str() of it raised ValueError: nope"),
    ("%%infer --format bullets\nhi", "--format bullets shapes a summary"),
    ("%%infer no-such-model:1b\nhi", "`ollama pull no-such-model:1b`"),
    ("%%infer claude-opus-4.5\nmy password is hunter2hunter2", "refused to send this prompt to anthropic"),
    # a quote opened and never closed on the line was a ValueError traceback through IPython's shlex
    ('%%infer --system "Be brief\nhi', "a quote on the %infer line is never closed — close it or remove it."),
    ("%infer 'hello there", "a quote on the %infer line is never closed"),
    ("%%experiment --models 'llama3.2,qwen3:4b\nhi", "a quote on the %experiment line is never closed"),
    ('%embed --similar-to "query -v docs', "a quote on the %embed line is never closed"),
])
def test_mistakes_get_one_line_without_a_traceback(kernel, peers_reset, cell, expected):
    run = kernel.run(cell)
    assert run.reply["status"] == "error"
    shown = run.stderr + "".join("".join(e["traceback"]) for e in run.errors)
    assert expected in shown, shown
    assert "Traceback" not in shown and "File " not in shown
    assert all(len(e["traceback"]) == 1 for e in run.errors)


def test_error_mid_stream_keeps_the_partial_text_on_screen(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(tokens=10, fault="error_mid_stream", fault_after=4)
    run = kernel.run("%%infer\nhi")
    assert run.reply["status"] == "error"
    assert run.final_markdown.startswith("word0 word1 word2 word3") and "stopped by an error" in run.final_markdown
    assert "failed mid-answer" in run.errors[0]["traceback"][0]


def test_the_api_key_never_appears_on_iopub(kernel, peers_reset):
    kernel.run(f"import os; os.environ['ANTHROPIC_API_KEY'] = {SENTINEL!r}")  # a key the peer rejects
    try:
        runs = [kernel.run("%%infer claude-haiku-4.5\nhi"), kernel.run("%%infer --backend anthropic --no-stream\nhi"),
                kernel.run("import inference_magics as im\nprint(repr(im.api.settings_module.load()))")]
    finally:
        # the reset cell names the key only through the peer's variable, so that no message carries it
        kernel.run(f"os.environ['ANTHROPIC_API_KEY'] = os.environ['ANTHROPIC_BASE_URL'] and {peers_reset[1].api_key!r}")
    assert "401" in "".join(runs[0].errors[0]["traceback"])
    for run in runs:
        assert SENTINEL not in run.everything()


def test_help_is_available(kernel):
    run = kernel.run("%%infer?\n")
    assert "Ask a model" in json.dumps(run.reply) + json.dumps([m["content"] for _, m in run.messages])


def test_config_traits_override_settings(kernel, peers_reset):
    ollama, _ = peers_reset
    kernel.run("%config InferenceMagics.ollama_default_model = 'llama3.2:3b'")
    try:
        run = kernel.run("%%infer\nhi")
        assert run.final_markdown.count("llama3.2:3b") >= 1
        bad = kernel.run("%config InferenceMagics.default_backend = 'cloud'")
        assert "default_backend='cloud' is not valid" in json.dumps(bad.errors) + bad.stderr
    finally:  # IPython keeps even a rejected %config value in the shell's config: drop both
        kernel.run("%config InferenceMagics.ollama_default_model = None\n"
                   "%config InferenceMagics.default_backend = None")


def test_a_deprecated_model_shows_one_footer_line_not_a_python_warning(kernel, peers_reset):
    run = kernel.run("%%infer claude-sonnet-4.5\nhello")
    assert run.reply["status"] == "ok"
    assert "⚠ claude-sonnet-4-5" in run.final_markdown and "is deprecated and reaches end of life" in run.final_markdown
    assert "Warning" not in run.stderr and "warn" not in run.stderr.lower()


def test_thinking_is_shown_while_it_happens_then_folded_away(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(tokens=3, token_delay=0.12)
    run = kernel.run("%%infer qwen3:4b\nwhy is the sky blue?")
    assert run.reply["status"] == "ok"
    shown = [m["content"]["data"]["text/plain"] for m in run.of_type("update_display_data")]
    assert any(text.startswith("thinking… Let me think") for text in shown)
    final = run.final_html
    assert "<details><summary>Thinking (8 words)</summary>" in final and "word0 word1 word2" in final
    assert final.index("Thinking") < final.index("word0")


@needs_local
def test_the_embedded_model_streams_in_a_kernel_and_survives_an_interrupt(kernel):
    """A real model in a real kernel. The interrupt (SIGINT to the kernel's process group) stops the
    answer but must not kill the llama-server the kernel started."""
    kernel.run("import os; os.environ.pop('INFERENCE_LOCAL_SERVER', None)")
    try:
        run = kernel.run("%%infer --backend local --max-tokens 16 --temperature 0\nWhat is the capital of France?",
                         timeout=180)
        assert run.reply["status"] == "ok", run.reply
        assert "Paris" in run.final_markdown and "local · gemma-3-270m" in run.final_markdown, run.final_markdown
        running = kernel.start("%%infer --backend local --max-tokens 3000 --temperature 0\n"
                               "Write a long story about a forest.")  # at temperature 0 it writes to the limit
        kernel.collect(running, timeout=60, until=lambda e: len(e.of_type("update_display_data")) >= 3)
        kernel.interrupt()
        kernel.collect(running, timeout=10)
        assert running.reply.get("ename") == "InferenceInterrupted", (running.reply, running.stderr)
        again = kernel.run("%%infer --backend local --max-tokens 8\nWhat is the capital of Spain?", timeout=60)
        assert again.reply["status"] == "ok", (again.reply, again.errors)
        assert "restarted" not in again.final_markdown, again.final_markdown
    finally:
        kernel.run(f"os.environ['INFERENCE_LOCAL_SERVER'] = {NOT_INSTALLED['INFERENCE_LOCAL_SERVER']!r}")


def test_embed_magic_forms(kernel, peers_reset):
    ollama, _ = peers_reset
    one = kernel.run("%embed the cat sat on the mat")
    shown = one.of_type("display_data")[0]["content"]["data"]["text/plain"]
    assert one.reply["status"] == "ok" and "nomic-embed-text:latest (ollama) · 768 dimensions · 1 text" in shown
    length = kernel.run("%embed --output length hello")
    assert length.of_type("execute_result")[0]["content"]["data"]["text/plain"] == "768"
    ranked = kernel.run('docs = ["the cat sat on the mat", "stock markets fell", "a cat and a dog"]\n'
                        '%embed -v docs --similar-to "where is the cat" -k 2 --out top')
    table = ranked.of_type("display_data")[0]["content"]["data"]["text/html"]
    assert "<td style='text-align:left'>the cat sat on the mat</td>" in table and "stock markets" not in table
    # the caption counts the query apart from the ranked texts (the first text was cached just above)
    caption = ranked.of_type("display_data")[0]["content"]["data"]["text/plain"]
    assert "· 3 texts and the query · 1 from the cache, 1 request" in caption, caption
    check = kernel.run("print(len(top), top[0]['text'])\nv = %embed --output array -v docs\nprint(v.shape)")
    assert check.stdout.split("\n")[:2] == ["2 the cat sat on the mat", "(3, 768)"]
    cell = kernel.run("%%embed --out doc_vec\nA whole cell\nof text.")
    assert cell.reply["status"] == "ok" and "1 text" in cell.of_type("display_data")[0]["content"]["data"]["text/plain"]
    again = kernel.run("%embed the cat sat on the mat")
    assert "1 from the cache, 0 requests" in again.of_type("display_data")[0]["content"]["data"]["text/plain"]


@pytest.mark.parametrize("cell, expected", [
    ("%embed", "nothing to embed"),
    ("%embed -v nowhere", "no variable named 'nowhere'"),
    ("empty = []\n%embed -v empty", "the list is empty"),
    ("mixed = ['a', 2]\n%embed -v mixed", "item 1 is a int"),
    ("%embed --backend anthropic hi", "Claude has no embeddings API"),
])
def test_embed_mistakes_are_one_line(kernel, peers_reset, cell, expected):
    run = kernel.run(cell)
    shown = run.stderr + "".join("".join(e["traceback"]) for e in run.errors)
    assert run.reply["status"] == "error" and expected in shown and "Traceback" not in shown


def test_models_and_health_magics(kernel, peers_reset):
    run = kernel.run("%models --out listing")
    html = run.of_type("display_data")[0]["content"]["data"]["text/html"]
    for text in ("llama3.2:latest", "nomic-embed-text:latest", "embeddings", "claude-sonnet-4-6", "sonnet", "3.2B"):
        assert text in html
    frame = kernel.run("print(type(listing).__name__, len(listing) > 5, list(listing.columns)[:3])")
    assert frame.stdout.strip() == "DataFrame True ['backend', 'name', 'kind']"
    as_json = kernel.run("%models --backend anthropic --format json")
    assert as_json.of_type("display_data")[0]["content"]["data"]["application/json"][0]["backend"] == "anthropic"
    down = kernel.run("%config InferenceMagics.ollama_base_url = 'http://127.0.0.1:9'\n%models")
    try:
        assert "unavailable: cannot connect to Ollama" in down.of_type("display_data")[0]["content"]["data"]["text/html"]
        health = kernel.run("%infer_health")
        text = health.of_type("display_data")[0]["content"]["data"]["text/plain"]
        assert "ollama" in text and "down" in text and "ollama serve" in text and "anthropic  ok" in text
    finally:
        kernel.run("%config InferenceMagics.ollama_base_url = None")


def test_history_magic_and_no_secret_in_the_database(kernel, peers_reset):
    kernel.run("%%infer\nmy password = 'hunter2-kernel-secret' — why is login failing?")
    kernel.run("%%infer\nthe quokka sat on the mat")
    recent = kernel.run("%infer_history --limit 2")
    html = recent.of_type("display_data")[0]["content"]["data"]["text/html"]
    assert "the quokka sat on the mat" in html and "[redacted: a password]" in html and "hunter2-kernel" not in html
    found = kernel.run("%infer_history --search QUOKKA --out hits\nprint(len(hits), hits[0].prompt)")
    assert found.stdout.strip() == "1 the quokka sat on the mat"
    similar = kernel.run('%infer_history --semantic "where did the quokka sit" --limit 1')
    assert "the quokka sat on the mat" in similar.of_type("display_data")[0]["content"]["data"]["text/html"]
    raw = b"".join(p.read_bytes() for p in kernel.data_dir.glob("history.sqlite3*"))
    assert b"hunter2-kernel-secret" not in raw and b"the quokka sat on the mat" in raw


def _transcripts(states):
    return [s["transcript_html"] for s in states if "transcript_html" in s]


def test_chat_widget_streams_over_the_comm_while_the_kernel_stays_free(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(tokens=60, token_delay=0.05)
    made = kernel.run("%chat")
    assert "application/vnd.jupyter.widget-view+json" in made.of_type("execute_result")[0]["content"]["data"]
    comm_id = kernel.run("w = _chat\nprint(w.model_id)").stdout.strip()
    kernel.send_comm(comm_id, {"type": "send", "text": "hello widget", "system": "", "choice": "auto"})
    kernel.widget_states(comm_id, lambda states: any(s.get("busy") is True for s in states))
    meanwhile = kernel.run("print(21 * 2, w.busy)")  # another cell runs while the answer streams
    assert meanwhile.stdout.split() == ["42", "True"]
    states = kernel.widget_states(comm_id, lambda states: any(s.get("busy") is False for s in states))
    growing = [t for t in _transcripts(states) if "word0" in t and ollama.expected_text() not in t]
    assert len(growing) >= 3  # streamed in several updates, not one
    assert len(_transcripts(states)) <= 3 + 10 * 3 * 1.5  # bounded: ~10 updates/s over a ~3 s answer
    final = _transcripts(states)[-1]
    assert ollama.expected_text() in final and "hello widget" in final and "im-meta" in final
    check = kernel.run("print(len(w.history), w.history[-1]['content'] == %r)" % ollama.expected_text())
    assert check.stdout.split() == ["2", "True"]


def test_chat_widget_stop_over_the_comm(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(tokens=500, token_delay=0.02)
    comm_id = kernel.run("w2 = %chat\nprint(w2.model_id)").stdout.strip()
    kernel.send_comm(comm_id, {"type": "send", "text": "a long story please"})
    kernel.widget_states(comm_id, lambda states: any("word5" in t for t in _transcripts(states)))
    kernel.send_comm(comm_id, {"type": "stop"})
    kernel.widget_states(comm_id, lambda states: bool(states) and states[-1].get("busy") is False
                         or any(s.get("busy") is False for s in states), timeout=5)
    assert wait_until(lambda: ollama.disconnects == 1, timeout=3) and ollama.completed == 0
    check = kernel.run("t = w2.history[-1]['content']\nprint(t.startswith('word0'), len(t.split()) < 500)")
    assert check.stdout.split() == ["True", "True"]


def test_review_and_summarize_workflows_in_a_cell(kernel, peers_reset, tmp_path):
    ollama, _ = peers_reset
    review = kernel.run("%%infer --workflow review\ndef f(x):\n    return x / 0\n")
    assert review.reply["status"] == "ok" and "qwen2.5-coder:7b" in review.final_markdown
    assert "code review stays on this machine" in review.final_markdown
    notes = tmp_path / "notes.txt"
    notes.write_text("Cats sleep a lot. " * 50)
    summary = kernel.run(f"%infer --workflow summarize --file {notes} --length short --format paragraph")
    assert summary.reply["status"] == "ok"
    prompt = [r for r in ollama.requests if r.path == "/api/chat"][-1].body["messages"][-1]["content"]
    assert "Cats sleep a lot." in prompt and "two or three sentences" in prompt
    bad = kernel.run("%%infer --workflow summarize --format json\ntext")
    assert bad.reply["status"] == "error" and "bullets or paragraph" in bad.stderr
    missing = kernel.run("%infer --workflow review --file /nowhere/x.py")
    assert "cannot read --file '/nowhere/x.py'" in missing.stderr


def test_experiment_magic_table_chart_and_frame(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(tokens=15, token_delay=0.02)
    run = kernel.run("%%experiment --models llama3.2,qwen2.5-coder:7b,claude-haiku-4.5 --out runs\nExplain recursion.")
    assert run.reply["status"] == "ok"
    updates = run.of_type("update_display_data")
    assert len(updates) >= 2 and "word0" in updates[-1]["content"]["data"]["text/html"]
    tables = [m["content"]["data"] for m in run.of_type("display_data") if "text/html" in m["content"]["data"]
              and "Tokens/s" in m["content"]["data"]["text/html"]]
    assert tables and tables[0]["text/html"].count("<tr>") == 4  # a header and one row per model
    assert any("image/png" in m["content"]["data"] for m in run.of_type("display_data"))
    check = kernel.run("print(len(runs), sorted(runs.backend.unique()), runs.text.str.len().min() > 0)")
    assert check.stdout.split() == ["3", "['anthropic',", "'ollama']", "True"]


def test_interrupting_an_experiment_stops_every_worker(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(tokens=2000, token_delay=0.02)
    running = kernel.start("%%experiment --models llama3.2,qwen2.5-coder:7b,llama3.2:3b --out runs\ntell a long story")
    kernel.collect(running, timeout=30, until=lambda e: any("word5" in m["content"]["data"]["text/html"]
                                                            for m in e.of_type("update_display_data")))
    kernel.interrupt()
    kernel.collect(running, timeout=10)
    assert running.reply["ename"] == "InferenceInterrupted"
    assert "every stream was stopped" in running.errors[0]["traceback"][0]
    assert wait_until(lambda: ollama.disconnects == 3, timeout=3) and ollama.completed == 0
    # the partial runs are kept, as an interrupted --map keeps its rows
    # (some column showed word5 before the interrupt, not necessarily the first)
    kept = kernel.run("print(type(_experiment).__name__, len(runs), any('word5' in t for t in runs['text']))")
    assert kept.stdout.strip() == "Experiment 3 True", kept.stdout + kept.stderr


def test_map_over_an_empty_frame_or_a_generator_is_one_line_or_works(kernel, peers_reset):
    kernel.run("import pandas as pd\nempty_frame = pd.DataFrame({'a': []})\nwords = (w for w in ['x', 'y'])")
    for cell in ("%%infer --map empty_frame\n{row.a}", "%%infer --map empty_frame --column a\n{row}"):
        run = kernel.run(cell)
        assert run.reply["status"] == "error" and len(run.errors[0]["traceback"]) == 1, run.errors
        assert "there are no rows to map over (the DataFrame is empty)" in run.errors[0]["traceback"][0]
    mapped = kernel.run("%%infer --map words --out answers\n{row}")  # a generator: each item once
    assert mapped.reply["status"] == "ok", mapped.errors
    assert kernel.run("print(len(answers))").stdout.strip() == "2"


# --no-cache: an earlier test in this kernel may have embedded "hello", and a cached text asks no server
@pytest.mark.parametrize("cell", ["%embed --no-cache hello", "%models", "%infer_health"])
def test_the_stop_button_on_a_request_that_is_not_a_stream_is_one_line(kernel, peers_reset, cell):
    ollama, claude = peers_reset
    ollama.set(fault="hang", fault_paths=("/api/tags", "/api/version", "/api/show", "/api/ps", "/api/embed"))
    claude.set(fault="hang", fault_paths=("/v1/models",))
    hung = ("/api/tags", "/api/version", "/api/show", "/api/ps", "/api/embed")
    running = kernel.start(cell)
    # interrupt once the request waits on the hung server (not while the cell still imports)
    assert wait_until(lambda: any(r.path in hung for r in ollama.requests), timeout=30)
    kernel.interrupt()
    kernel.collect(running, timeout=60)
    assert running.reply["ename"] == "InferenceInterrupted", running.errors
    assert len(running.errors[0]["traceback"]) == 1 and "was stopped" in running.errors[0]["traceback"][0]


def test_an_interrupt_during_a_retry_backoff_stops_at_once(kernel, peers_reset):
    _, claude = peers_reset
    claude.set(fault="rate_limit", retry_after="30")  # the SDK would wait 30 s before retrying
    running = kernel.start("%%infer claude-haiku-4.5\nhello")
    assert wait_until(lambda: len([r for r in claude.requests if r.path == "/v1/messages"]) == 1, timeout=10)
    kernel.interrupt()
    kernel.collect(running, timeout=10)
    assert running.reply["status"] == "error" and running.reply["ename"] == "InferenceInterrupted"
    assert len([r for r in claude.requests if r.path == "/v1/messages"]) == 1  # no retry after the interrupt


def test_map_over_a_dataframe_in_a_cell_then_resume_after_an_interrupt(kernel, peers_reset):
    ollama, _ = peers_reset
    ollama.set(echo=True)
    run = kernel.run("import pandas as pd\ndf = pd.DataFrame({'title': [f't{i}' for i in range(30)]})\n"
                     "%infer --map df --out labelled -- Label: {row.title}")
    assert run.reply["status"] == "ok", run.errors
    table = run.of_type("display_data")[-1]["content"]["data"]["text/plain"]
    assert "30 of 30 rows · 0 failed" in table
    progress = [m["content"]["data"]["text/plain"] for m in run.displays if "map" in m["content"]["data"]["text/plain"]]
    assert progress[-1].startswith("✓ map: 30/30 rows in ")  # what a saved notebook shows: how the run ended
    assert not any("embedding" in text for text in progress)
    check = kernel.run("print(list(labelled.columns), labelled.output[3])")
    assert check.stdout.strip() == "['title', 'output', 'backend', 'model', 'tokens', 'error'] echo: Label: t3"
    ollama.set(echo=True, token_delay=0.02)
    cell = "items = [f'item {i}' for i in range(60)]\n%infer --map items --concurrency 2 -- Say {row}"
    running = kernel.start(cell)
    assert wait_until(lambda: len([r for r in ollama.requests if r.path == "/api/chat"]) >= 40, timeout=30)
    kernel.interrupt()
    kernel.collect(running, timeout=15)
    assert running.reply["ename"] == "InferenceInterrupted"
    sent_before = len([r for r in ollama.requests if r.path == "/api/chat"])
    again = kernel.run(cell, timeout=60)
    assert again.reply["status"] == "ok"
    resent = len([r for r in ollama.requests if r.path == "/api/chat"]) - sent_before
    assert resent < 60 - 5  # only the rows the interrupted run had not finished
    assert "60 of 60 rows · 0 failed" in again.of_type("display_data")[-1]["content"]["data"]["text/plain"]


def test_the_readme_map_example_sends_each_rows_text_and_a_misspelt_field_sends_nothing(kernel, peers_reset):
    """Issue 14 item 1, in a kernel: `%%infer --map df --column text` with `{row.text}` (the README's own
    example) sent the literal `{row.text}` for every row, to the code model."""
    ollama, _ = peers_reset
    ollama.set(echo=True)
    run = kernel.run("import pandas as pd\nreviews = pd.DataFrame({'text': ['good film', 'bad film'], 'stars': [5, 1]})")
    run = kernel.run("%%infer --map reviews --column text --out labelled\nClassify the sentiment of: {row.text}")
    assert run.reply["status"] == "ok", run.errors
    chats = [r.body for r in ollama.requests if r.path == "/api/chat"]
    assert sorted(c["messages"][-1]["content"].strip() for c in chats) == [
        "Classify the sentiment of: bad film", "Classify the sentiment of: good film"]
    assert {c["model"] for c in chats} == {"llama3.2:latest"}  # the general model, not the code one
    sent = len(chats)
    typo = kernel.run("%%infer --map reviews --out labelled\nClassify the sentiment of: {row.txt}")
    assert typo.reply["status"] == "error" and len(typo.errors) == 1 and len(typo.errors[0]["traceback"]) == 1
    line = typo.errors[0]["evalue"]
    assert "{row.txt} matches nothing in any row" in line and "text, stars" in line and "\n" not in line
    assert len([r for r in ollama.requests if r.path == "/api/chat"]) == sent  # nothing sent


def test_batch_api_from_a_cell_and_collect_later(kernel, peers_reset):
    _, claude = peers_reset
    claude.set(batch_seconds=0.2, tokens=3)
    sent = kernel.run("qs = ['one', 'two', 'three']\n%infer --map qs --batch-api --model haiku -- Answer: {row}")
    text = sent.of_type("display_data")[-1]["content"]["data"]["text/plain"]
    assert sent.reply["status"] == "ok" and "submitted Message Batch msgbatch_" in text
    batch_id = text.split("Message Batch ")[1].split(":")[0]
    listed = kernel.run("%infer_batches")
    assert batch_id in listed.of_type("display_data")[-1]["content"]["data"]["text/plain"]
    assert wait_until(lambda: claude.batches[batch_id].status == "ended", timeout=5)
    got = kernel.run(f"%infer_batches {batch_id} --out answers\nprint(answers.output.tolist())")
    assert got.stdout.strip() == str([claude.expected_text()] * 3)


def test_config_shows_the_value_in_force_and_keeps_it_when_a_value_is_rejected(kernel, peers_reset):
    def shown(name):
        run = kernel.run(f"%config InferenceMagics.{name}")
        return run.of_type("execute_result")[0]["content"]["data"]["text/plain"]

    assert shown("ollama_timeout") == "30000"  # the value in force, not an unset trait
    kernel.run("%config InferenceMagics.privacy = 'local-only'")
    try:
        bad = kernel.run("%config InferenceMagics.privacy = 'off'")
        assert len([line for line in bad.stderr.splitlines() if "not valid" in line]) == 1
        assert shown("privacy") == "'local-only'"  # the rejected value changed nothing
        assert "local-only" in kernel.run("%%infer --explain\nhi").final_text
    finally:
        kernel.run("%config InferenceMagics.privacy = None")
    assert shown("privacy") == "'default'"


OURS = ("print(sorted(n for kind in ('line', 'cell') for n in get_ipython().magics_manager.magics[kind] "
        "if 'infer' in n or n in ('embed', 'models', 'chat', 'experiment')), "
        "[f.__module__ for e in ('pre_run_cell', 'post_run_cell') for f in get_ipython().events.callbacks[e] "
        "if 'inference_magics' in f.__module__], "
        "[k for k in get_ipython().display_formatter.formatters['text/html'].deferred_printers if 'inference' in k[0]])")


def test_unload_takes_back_the_magics_hooks_and_formatter_and_reload_restores_them(kernel, peers_reset):
    loaded = kernel.run(OURS).stdout
    assert "'infer'" in loaded and "inference_magics" in loaded
    try:
        assert kernel.run("%unload_ext inference_magics\n" + OURS).stdout.strip() == "[] [] []"
        gone = kernel.run("%%infer\nhello")
        assert gone.reply["status"] == "error" and "%%infer" in gone.everything() and "not found" in gone.everything()
    finally:
        reloaded = kernel.run("%load_ext inference_magics\n%reload_ext inference_magics\n" + OURS)
    assert reloaded.stdout == loaded  # each hook once again, not twice
    assert kernel.run("%%infer\nhello").reply["status"] == "ok"
