"""Reliability, round 2: the cases a hostile test found, each one line (or a visible notice), the
partial answer kept, against the real peers over loopback HTTP."""
import os

import pytest

import inference_magics as im
from inference_magics import history, settings, workflows
from inference_magics.errors import ConfigError, Incomplete
from inference_magics.interpolate import interpolate
from inference_magics.notebook.render import footer, result_plain
from inference_magics.notebook.widget import ChatWidget


@pytest.fixture
def ollama(monkeypatch, ollama_peer):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    return ollama_peer


def posts(peer, path):
    return [r for r in peer.requests if r.path == path]


def last_history_row():
    return history.store_for(settings.load()).recent(1)[0]


# --- user strings made safe before the wire -------------------------------------------------------
def test_a_lone_surrogate_in_the_prompt_and_the_system_prompt_is_replaced_visibly(ollama, claude):
    for choice in ({"backend": "ollama", "model": "llama3.2"}, {"model": "claude-haiku-4-5"}):
        result = im.infer("bad \udcff byte", system="be \ud800 brief", **choice)
        assert result.text and result.error is None
    ollama_body = posts(ollama, "/api/chat")[-1].body["messages"]
    assert ollama_body[0]["content"] == "be ? brief" and ollama_body[-1]["content"] == "bad ? byte"
    claude_body = posts(claude, "/v1/messages")[-1].body
    assert claude_body["system"] == "be ? brief" and claude_body["messages"][-1]["content"] == "bad ? byte"
    assert last_history_row().prompt == "bad ? byte"


def test_a_lone_surrogate_in_a_chat_history_message_is_replaced_too(ollama):
    im.infer("next", backend="ollama", model="llama3.2",
             messages=[{"role": "user", "content": "a\udc80b"}, {"role": "assistant", "content": "ok"}])
    assert posts(ollama, "/api/chat")[-1].body["messages"][0]["content"] == "a?b"


def test_rows_and_system_sent_to_the_batch_api_are_cleaned_too(claude):
    from inference_magics import message_batches as batch

    batch.submit("Classify {row}\udcff", ["a"], model="haiku", system="sys \ud800", namespace={})
    params = posts(claude, "/v1/messages/batches")[-1].body["requests"][0]["params"]
    assert params["system"] == "sys ?" and params["messages"][0]["content"] == "Classify a?"


class Record:
    @property
    def title(self):
        raise RuntimeError("database is down\nsecond line")


def test_a_property_that_raises_is_one_line_naming_the_field():
    with pytest.raises(ConfigError) as err:
        interpolate("Summarize {rec.title} please", {"rec": Record()})
    message = err.value.message
    assert "{rec.title}" in message and "RuntimeError: database is down second line" in message
    assert "\n" not in message


@pytest.mark.parametrize("var", ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"])
@pytest.mark.parametrize("pasted", ["sk-abc\u2019def-0123456789", "sk-abc def-0123456789", "sk-abc\u200bdef-01234"])
def test_a_key_with_a_character_a_header_cannot_carry_is_named_never_echoed(monkeypatch, var, pasted):
    monkeypatch.setenv(var, pasted)
    with pytest.raises(ConfigError) as err:
        settings.load()
    message = err.value.message
    assert message.startswith(var) and "paste the key again" in message and "\n" not in message
    assert pasted not in message and "abc" not in message and "0123" not in message


def test_file_refuses_what_is_not_a_regular_file_and_what_is_too_large(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    big = tmp_path / "big.txt"
    with open(big, "wb") as handle:
        handle.truncate(workflows.MAX_FILE_BYTES + 1)  # sparse: costs no disk
    cases = {"/dev/zero": "a device, pipe or socket", str(fifo): "a device, pipe or socket",
             str(tmp_path): "a folder", str(big): "larger than 5 MB", str(tmp_path / "nope.txt"): "cannot read"}
    for path, expected in cases.items():
        with pytest.raises(ConfigError) as err:
            workflows.read_input_file(path)
        assert expected in err.value.message and "\n" not in err.value.message, err.value.message
    exact = tmp_path / "exact.txt"
    exact.write_bytes(b"x" * workflows.MAX_FILE_BYTES)
    assert len(workflows.read_input_file(str(exact))) == workflows.MAX_FILE_BYTES


# --- a Claude stream without message_stop ----------------------------------------------------------
def test_a_claude_stream_that_ends_without_message_stop_is_incomplete(claude):
    claude.set(tokens=6, message_stop=False)
    with pytest.raises(Incomplete) as err:
        im.infer("hi", model="claude-haiku-4-5")
    result = err.value.result
    assert result.text == claude.expected_text() and result.stop_reason == "incomplete"
    assert "incomplete: the stream ended before Claude finished" in footer(result)
    assert "incomplete: the stream ended before Claude finished" in result_plain(result)
    row = last_history_row()
    assert row.output == result.text and row.stop_reason == "incomplete" and row.error.startswith("incomplete:")


# --- retry waits capped ----------------------------------------------------------------------------
def test_claude_asking_to_wait_a_day_is_one_line_saying_when_without_waiting(claude):
    claude.set(fault="rate_limit", retry_after="86400")
    waits = []
    with pytest.raises(im.RateLimited) as err:
        im.stream("hi", model="claude-haiku-4-5").each(lambda text: None, on_waiting=waits.append)
    message = err.value.message
    assert len(posts(claude, "/v1/messages")) == 1 and waits == []  # no retry was waited for
    assert "asks to wait 24 h, more than INFERENCE_MAX_RETRY_WAIT_S (60 s) allows — try again after" in message
    assert "UTC" in message and "\n" not in message


def test_claude_retries_stop_at_the_configured_total_wait_and_say_why(monkeypatch, claude):
    # a 1 s budget and a server asking for 1 s: one wait fits, a second would pass the budget
    monkeypatch.setenv("INFERENCE_MAX_RETRY_WAIT_S", "1")
    claude.set(fault="rate_limit", retry_after="1")
    waits = []
    with pytest.raises(im.RateLimited) as err:
        im.stream("hi", model="claude-haiku-4-5").each(lambda text: None, on_waiting=waits.append)
    assert len(posts(claude, "/v1/messages")) == 2
    assert waits == ["rate limited by Claude (429); retrying in 1 s"]
    assert "more than INFERENCE_MAX_RETRY_WAIT_S (1 s) allows" in err.value.message


def test_claude_rate_limit_then_success_says_why_it_waited(claude):
    claude.set(fault="rate_limit", retry_after="0", fail_times=1)
    waits = []
    result = im.stream("hi", model="claude-haiku-4-5").each(lambda text: None, on_waiting=waits.append)
    assert result.text == claude.expected_text() and len(posts(claude, "/v1/messages")) == 2
    assert waits == ["rate limited by Claude (429); retrying in 0 s"]


def test_a_day_long_retry_after_on_the_model_list_never_holds_up_routing(claude):
    """Every Anthropic call (the model list behind `sonnet`, the batch endpoints) uses the same
    capped retries: the SDK's own would honour a day-long retry-after."""
    claude.set(fault="rate_limit", retry_after="86400", fault_paths=("/v1/models",))
    assert im.route("hi", model="sonnet").model == "claude-sonnet-4-6"  # the fallback id, at once
    assert len(posts(claude, "/v1/models")) == 1


def test_no_waiting_at_all_when_the_budget_is_zero(monkeypatch, claude):
    monkeypatch.setenv("INFERENCE_MAX_RETRY_WAIT_S", "0")
    claude.set(fault="overloaded")
    with pytest.raises(im.RateLimited, match="529 overloaded_error") as err:
        im.infer("hi", model="claude-haiku-4-5")
    assert len(posts(claude, "/v1/messages")) == 1 and "INFERENCE_MAX_RETRY_WAIT_S" in err.value.message


def test_openai_compatible_server_asking_for_a_day_is_one_line(monkeypatch, openai_peer):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.base_url)
    openai_peer.set(fault="rate_limit", retry_after="86400")
    with pytest.raises(im.RateLimited) as err:
        im.infer("hi", backend="openai", model="gemma-3-270m")
    assert len(posts(openai_peer, "/v1/chat/completions")) == 1
    assert "asks to wait 24 h" in err.value.message and "try again after" in err.value.message


def test_openai_compatible_503_retries_say_why(monkeypatch, openai_peer):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.base_url)
    openai_peer.set(fault="rate_limit", retry_after="0", fail_times=1)
    waits = []
    result = im.stream("hi", backend="openai", model="gemma-3-270m").each(lambda t: None, on_waiting=waits.append)
    assert result.text == openai_peer.expected_text()
    assert waits == ["rate limited by the OpenAI-compatible server; retrying in 0 s"]


# --- empty answers are reported ----------------------------------------------------------------------
def test_an_empty_answer_gets_a_visible_notice(ollama):
    ollama.set(text="")
    result = im.infer("hi", backend="ollama", model="llama3.2")
    assert result.text == "" and result.error is None
    assert any("the model returned an empty answer" in n for n in result.notices)
    assert "the model returned an empty answer" in result_plain(result)


def test_an_empty_chat_answer_is_said_in_the_transcript(ollama):
    ollama.set(text="  ")
    chat = ChatWidget("llama3.2", backend="ollama")
    chat.ask("hello?", wait=True)
    notes = [t.text for t in chat.conversation.turns if t.role == "notice"]
    assert any("the model returned an empty answer" in n for n in notes)
    assert "the model returned an empty answer" in chat.transcript_html
    assert chat.history == [{"role": "user", "content": "hello?"}]  # the model never sees an empty answer


def test_empty_partial_summaries_are_said_and_never_merged_as_summaries(monkeypatch, ollama):
    ollama.set(text="")
    article = "\n\n".join(f"Paragraph {i} says that the river rises in spring. " * 30 for i in range(12))
    running = workflows.summarize_stream(article, backend="ollama", model="llama3.2", progress=False)
    result = running.each(lambda text: None)
    assert running.chunks > 1
    assert any(f"empty summary for {running.chunks} of {running.chunks} parts" in n for n in result.notices)
    assert any("the model returned an empty answer" in n for n in result.notices)
    merge_prompt = posts(ollama, "/api/chat")[-1].body["messages"][-1]["content"]
    assert "Part 1:\nParagraph 0 says that the river rises in spring." in merge_prompt


# --- in a real kernel: what the user sees -----------------------------------------------------------
def test_in_a_cell_a_wrong_shaped_ollama_line_is_one_line_and_the_partial_is_in_infer(kernel, peers_reset):
    ollama, _ = peers_reset
    line = b'{"model":"llama3.2","created_at":"2025-10-26T17:15:24Z","message":{"role":"assistant","content":"kept "},"done":false}\n'
    ollama.set(raw_stream=[line, b"[1,2,3]\n"])
    run = kernel.run("%%infer llama3.2\nhi")
    assert run.reply["status"] == "error" and run.reply["ename"] == "BackendError"
    assert len(run.errors[0]["traceback"]) == 1 and "not Ollama's protocol" in run.errors[0]["traceback"][0]
    assert "stopped by an error" in run.final_markdown and run.final_markdown.startswith("kept ")
    shown = kernel.run("print(repr(_infer.text), _infer.error is not None)")
    assert shown.stdout.strip() == "'kept ' True"


def test_in_a_cell_a_rate_limit_says_why_it_waits(kernel, peers_reset):
    _, claude = peers_reset
    claude.set(fault="rate_limit", retry_after="1", fail_times=1)
    run = kernel.run("%%infer claude-haiku-4.5\nhello")
    assert run.reply["status"] == "ok"
    shown = [m["content"]["data"]["text/plain"] for m in run.displays]
    assert any("rate limited by Claude (429); retrying in 1 s" in text for text in shown)
    assert run.final_markdown.startswith(claude.expected_text())


def test_in_a_cell_file_dev_zero_is_refused_at_once(kernel, peers_reset):
    run = kernel.run("%infer --workflow review --file /dev/zero")
    assert run.reply["status"] == "error" and "Traceback" not in run.everything()
    assert "'/dev/zero' is a device, pipe or socket, not a regular file" in run.stderr


# --- whole (non-streamed) replies of the wrong shape --------------------------------------------------
@pytest.fixture(params=[b"[1,2,3]", b"null", b'{"error": 5}', b'{"data": "x", "choices": 5, "models": 7}'])
def json_server(request):
    """A server answering every path with 200 and one JSON value that is not what the API sends."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = request.param

    class Reply(BaseHTTPRequestHandler):
        def _reply(self):
            self.rfile.read(int(self.headers.get("content-length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _reply

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Reply)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_whole_replies_of_the_wrong_shape_are_one_line(monkeypatch, json_server):
    from inference_magics.backends import get_backend

    monkeypatch.setenv("OLLAMA_BASE_URL", json_server)
    monkeypatch.setenv("OPENAI_BASE_URL", json_server + "/v1")
    calls = [lambda: im.infer("hi", backend="ollama", model="llama3.2", stream=False),
             lambda: im.infer("hi", backend="openai", model="m", stream=False),
             lambda: im.embed(["a", "b"], backend="ollama", model="nomic-embed-text"),
             lambda: im.embed(["a", "b"], backend="openai", model="m"),
             lambda: get_backend("ollama", settings.load()).list_models(),
             lambda: get_backend("openai", settings.load()).list_models()]
    for call in calls:
        try:
            call()
        except im.InferenceError as error:
            assert "\n" not in error.message and not error.message.startswith("unexpected "), error.message
