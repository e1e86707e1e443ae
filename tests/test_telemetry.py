"""Tracing: every completion as an OpenTelemetry GenAI span, exported over real OTLP/HTTP to a
receiver on loopback that decodes it with the official protobuf definitions (tests/otlp_receiver.py).
No sleeps: the provider is flushed. No timing is asserted: bench/observability.py measures the cost."""
import json
import os
import subprocess
import sys

import pytest

import inference_magics as im
from inference_magics import cache, experiments, telemetry, workflows
from tests.conftest import REPO, closed_port, peer_environment
from tests.otlp_receiver import OtlpReceiver

SECRET = "sk-ant-api03-otelsecret-DO-NOT-LEAK-4242424242"
MARKER = "ZEBRA-HARBOUR-7781"  # words of a private prompt that must reach no collector


@pytest.fixture(scope="session")
def receiver():
    with OtlpReceiver() as found:
        yield found


@pytest.fixture
def collector(receiver, peers, monkeypatch):
    """Tracing on, pointed at the receiver; nothing left over from an earlier test."""
    telemetry.flush()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setattr(telemetry, "_notice_given", False)
    receiver.reset()
    cache._caches.clear()
    yield receiver
    telemetry.flush()
    cache._caches.clear()


@pytest.fixture
def capture(monkeypatch):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")


def exported(receiver):
    assert telemetry.flush()
    return receiver.spans()


def table(execution) -> dict:
    """%infer_otel's text table as {item: value}."""
    lines = execution.displays[-1]["content"]["data"]["text/plain"].splitlines()[2:]  # caption, header
    return dict(line.split(None, 1) for line in lines)


def children_of(parent, spans):
    return [s for s in spans if s.parent_id == parent.span_id]


def test_an_ollama_completion_is_one_genai_span_with_the_peers_token_counts(collector, peers):
    ollama, _ = peers
    ollama.set(tokens=7)
    result = im.infer("What is the capital of France?", max_tokens=50, temperature=0.2)
    [span] = exported(collector)
    assert span.name == "chat llama3.2:latest" and span.kind == 3 and span.parent_id == ""  # a CLIENT root span
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == a["gen_ai.system"] == "ollama"
    assert a["gen_ai.request.model"] == "llama3.2:latest" == a["gen_ai.response.model"]
    assert a["gen_ai.request.max_tokens"] == 50 and a["gen_ai.request.temperature"] == 0.2
    # what the peer put on the wire: eval_count 7, prompt_eval_count = the words of the prompt
    assert a["gen_ai.usage.output_tokens"] == 7 == result.usage.output_tokens
    assert a["gen_ai.usage.input_tokens"] == 6 == result.usage.input_tokens
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert a["inference_magics.route.reason"] == result.route.reason and a["inference_magics.private"] is False
    assert a["inference_magics.cached"] is False and "inference_magics.cost_usd" not in a  # local costs nothing
    assert "gen_ai.conversation.id" not in a  # only chat widget turns belong to a conversation
    [(event, at, details)] = span.events
    assert event == "gen_ai.first_token" and span.start_ns < at <= span.end_ns
    assert details["gen_ai.response.time_to_first_chunk"] == pytest.approx(result.metrics.ttft_s)
    assert span.status_code == 0 and span.resource["service.name"] == "inference_magics"
    # content is opt-in: without the convention's switch, no text goes out
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output.messages", "gen_ai.system_instr")) for k in a)
    assert b"capital of France" not in collector.everything()


def test_a_claude_completion_carries_cost_and_the_resolved_model(collector, peers):
    _, claude = peers
    claude.set(tokens=5)
    result = im.infer("Say hi.", model="claude-haiku-4.5", max_tokens=100)
    [span] = exported(collector)
    a = span.attributes
    assert span.name == "chat claude-haiku-4-5"
    assert a["gen_ai.provider.name"] == "anthropic" and a["gen_ai.response.model"] == result.model
    assert a["gen_ai.usage.output_tokens"] == 5 and a["gen_ai.usage.input_tokens"] == result.usage.input_tokens == 2
    assert a["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert a["inference_magics.cost_usd"] == pytest.approx(result.cost_usd) and result.cost_usd > 0


def test_a_failed_completion_is_an_error_span_with_the_one_line(collector, peers):
    with pytest.raises(im.ModelNotFound) as failed:
        im.infer("Hello", model="no-such-model:1b")
    [span] = exported(collector)
    assert span.status_code == 2 and span.status_message == failed.value.message
    assert span.attributes["error.type"] == "ModelNotFound"


def test_a_failed_private_completion_keeps_the_servers_words_to_itself(collector, peers):
    with pytest.raises(im.ModelNotFound):
        im.infer(f"Confidential: {MARKER}", model="no-such-model:1b")
    [span] = exported(collector)
    assert span.status_code == 2 and span.status_message == "ModelNotFound (the message is withheld: private)"
    assert MARKER.encode() not in collector.everything()


def test_content_is_captured_only_when_asked_and_secrets_in_answers_are_redacted(collector, capture, peers):
    ollama, _ = peers
    ollama.set(text=f"Sure. The key is {SECRET} as you asked.")
    im.infer("Write a haiku about the sea.", system="You are a poet.")
    [span] = exported(collector)
    a = span.attributes
    assert a["inference_magics.content"] == "captured"
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Write a haiku about the sea."}]}]
    assert json.loads(a["gen_ai.system_instructions"]) == [{"type": "text", "content": "You are a poet."}]
    [answer] = json.loads(a["gen_ai.output.messages"])
    assert answer["role"] == "assistant" and answer["finish_reason"] == "stop"
    assert answer["parts"][0]["content"] == "Sure. The key is [redacted: an Anthropic API key] as you asked."
    assert SECRET.encode() not in collector.everything()


def test_a_private_prompt_never_reaches_the_collector_even_with_capture_on(collector, capture, peers):
    ollama, claude = peers
    ollama.set(echo=True)  # the answer repeats the prompt: it must be withheld too
    prompts = [f"Confidential: plan {MARKER} for the merger.",
               f"Check this config: ANTHROPIC_API_KEY={SECRET} and plan {MARKER}"]
    for prompt in prompts:
        result = im.infer(prompt)
        assert result.route.private and result.backend == "ollama" and MARKER in result.text
    im.infer(f"Summarize {MARKER}", system=f"password = {SECRET}")  # the secret is in the system prompt
    spans = exported(collector)
    assert len(spans) == 3
    for span in spans:
        assert span.attributes["inference_magics.content"] == "withheld: private"
        assert span.attributes["inference_magics.private"] is True
        assert not any(k in span.attributes for k in ("gen_ai.input.messages", "gen_ai.output.messages"))
    everything = collector.everything()
    assert everything and MARKER.encode() not in everything and SECRET.encode() not in everything
    assert b"merger" not in everything
    assert not claude.requests


def test_local_only_sends_no_content_to_a_collector_off_this_machine(monkeypatch, capture):
    monkeypatch.setenv("INFERENCE_PRIVACY", "local-only")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://collector.example.com:4318/v1/traces")
    remote = telemetry.config()  # decided before anything is sent: no request is made here
    assert remote.on and remote.content.startswith("withheld: INFERENCE_PRIVACY=local-only")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces")
    assert telemetry.config().content == "captured"  # on this machine, the text of a non-private prompt may go
    monkeypatch.delenv("INFERENCE_PRIVACY")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://collector.example.com:4318/v1/traces")
    assert telemetry.config().content == "captured"


def test_local_only_with_a_loopback_collector_still_withholds_routed_prompts(collector, capture, monkeypatch, peers):
    monkeypatch.setenv("INFERENCE_PRIVACY", "local-only")
    im.infer(f"Tell me about {MARKER}")  # local-only keeps every prompt local, so it is private
    [span] = exported(collector)
    assert span.attributes["inference_magics.content"] == "withheld: private"
    assert MARKER.encode() not in collector.everything()


def test_a_map_is_a_parent_span_with_one_child_per_row(collector, peers):
    ollama, _ = peers
    ollama.set(echo=True)
    mapped = im.map("Classify: {row}", ["alpha", "beta", "gamma"], progress=False)
    assert mapped.failed == 0
    spans = exported(collector)
    [parent] = [s for s in spans if s.name == "map"]
    rows = children_of(parent, spans)
    assert len(rows) == 3 and len(spans) == 4
    assert {s.trace_id for s in spans} == {parent.trace_id}
    assert all(s.name == "chat llama3.2:latest" and s.attributes["inference_magics.cached"] is False for s in rows)
    assert sum(s.attributes["gen_ai.usage.output_tokens"] for s in rows) == sum(r.tokens for r in mapped.rows)
    assert parent.attributes["inference_magics.rows"] == 3 and parent.kind == 1  # INTERNAL

    collector.reset()
    again = im.map("Classify: {row}", ["alpha", "beta", "gamma"], progress=False)  # every row from the cache
    assert all(r.cached for r in again.rows)
    spans = exported(collector)
    [parent] = [s for s in spans if s.name == "map"]
    rows = children_of(parent, spans)
    assert len(rows) == 3 and all(s.attributes["inference_magics.cached"] is True for s in rows)
    assert not [r for r in ollama.requests if r.path == "/api/chat"][3:]  # no request the second time


def test_an_experiment_is_a_parent_span_with_a_child_per_run(collector, peers):
    done = experiments.experiment("Explain recursion.", ["llama3.2", "claude-haiku-4.5"], repeat=2)
    assert not [r.error for r in done.runs if r.error]
    spans = exported(collector)
    [parent] = [s for s in spans if s.name == "experiment"]
    runs = children_of(parent, spans)
    assert len(runs) == 4 and len(spans) == 5
    assert sorted(s.attributes["gen_ai.provider.name"] for s in runs) == ["anthropic", "anthropic", "ollama", "ollama"]
    assert parent.attributes["inference_magics.models"] == ["llama3.2", "claude-haiku-4.5"]


def test_a_long_summary_is_a_parent_span_with_every_step_as_a_child(collector, peers):
    text = "\n\n".join(f"Paragraph {i} talks about topic {i}. " * 40 for i in range(40))
    running = workflows.summarize_stream(text, progress=False)
    running.each(lambda piece: None)
    spans = exported(collector)
    [parent] = [s for s in spans if s.name == "summarize"]
    steps = children_of(parent, spans)
    assert len(steps) == running.chunks + 1 == len(spans) - 1  # every chunk, then the final summary
    assert parent.attributes["inference_magics.chunks"] == running.chunks


def test_each_embedding_request_is_a_span(collector, peers, monkeypatch):
    monkeypatch.setenv("INFERENCE_EMBED_BATCH_SIZE", "2")
    vectors = im.embed(["one", "two", "three", "four", "five"], cache=False)
    assert len(vectors) == 5
    spans = exported(collector)
    assert [s.name for s in spans] == ["embeddings nomic-embed-text:latest"] * 3
    assert sorted(s.attributes["inference_magics.texts"] for s in spans) == [1, 2, 2]
    assert all(s.attributes["gen_ai.operation.name"] == "embeddings" and s.kind == 3 for s in spans)
    assert b"three" not in collector.everything()  # embedding inputs are never content

    collector.reset()
    with pytest.raises(im.ModelNotFound):
        im.embed(["four"], model="no-such-embedder", cache=False)
    [failed] = exported(collector)
    assert failed.status_code == 2 and failed.status_message == "ModelNotFound"
    assert failed.attributes["error.type"] == "ModelNotFound"


def test_chat_widget_turns_are_spans_with_the_conversation(collector, capture, peers):
    from inference_magics.notebook.widget import ChatWidget

    ollama, _ = peers
    ollama.set(tokens=4)
    widget = ChatWidget()
    try:
        widget.ask("first question", wait=True)
        widget.ask("second question", wait=True)
        widget.ask("/clear")
        widget.ask("a new topic", wait=True)
    finally:
        widget.stop()
        widget._loader.join(timeout=10)
    spans = [s for s in exported(collector) if s.name.startswith("chat ")]
    assert [s.name for s in spans] == ["chat llama3.2:3b"] * 3
    sent = json.loads(spans[1].attributes["gen_ai.input.messages"])
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[-1]["parts"][0]["content"] == "second question"
    first, second, third = (s.attributes["gen_ai.conversation.id"] for s in spans)
    assert first == second != third  # one conversation until /clear starts another


def test_a_collector_that_is_down_fails_no_cell_and_gives_one_notice(peers, monkeypatch, capfd):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")  # seconds: the exporter's own retries give up sooner
    monkeypatch.setattr(telemetry, "_notice_given", False)
    ollama, _ = peers
    first = im.infer("Hello there")
    assert first.text == ollama.expected_text() and first.notices == []
    telemetry.flush()  # the export is attempted (and fails) in the background; wait for it here
    assert "1 failed" in telemetry.status()["exports"]
    second = im.infer("Hello again")
    assert second.text == ollama.expected_text()
    [notice] = second.notices
    assert notice.startswith("tracing: spans could not be sent to http://127.0.0.1:") and "shows once" in notice
    assert "(connection refused: nothing listens there)" in notice
    assert "\n" not in notice
    telemetry.flush()
    assert im.infer("And again").notices == []  # once per kernel
    err = capfd.readouterr().err
    assert "Failed to export" not in err and "Transient error" not in err  # the notice says it, the log does not


def test_a_collector_that_rejects_the_spans_is_named_with_its_status(collector, monkeypatch, peers):
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{collector.url}/not-traces")  # the receiver says 404
    assert im.infer("Hello").notices == []
    telemetry.flush()
    assert collector.raw  # the request did arrive
    [notice] = im.infer("Hello again").notices
    assert "(the collector answered HTTP 404 Not Found)" in notice


def test_off_imports_no_opentelemetry_and_off_wins_over_an_endpoint(receiver, ollama_peer, claude_peer, tmp_path):
    script = ("import sys, inference_magics as im\n"
              "assert im.infer('Hello').text\n"
              "print('opentelemetry' in sys.modules)\n")
    base = {k: v for k, v in os.environ.items() if k not in telemetry.NAMES}
    env = {**base, **peer_environment(ollama_peer.url, claude_peer), "INFERENCE_DATA_DIR": str(tmp_path),
           "PYTHONPATH": str(REPO)}
    receiver.reset()
    for extra in ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "INFERENCE_OTEL": "off"}):
        done = subprocess.run([sys.executable, "-c", script], env={**env, **extra}, cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "False"
    assert receiver.raw == []


def test_a_separate_process_exports_its_spans_at_exit(receiver, ollama_peer, claude_peer, tmp_path):
    base = {k: v for k, v in os.environ.items() if k not in telemetry.NAMES}
    env = {**base, **peer_environment(ollama_peer.url, claude_peer), "INFERENCE_DATA_DIR": str(tmp_path),
           "PYTHONPATH": str(REPO), "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_SERVICE_NAME": "notebook-42"}
    receiver.reset()
    done = subprocess.run([sys.executable, "-c", "import inference_magics as im; im.infer('Hello')"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    [span] = receiver.spans()  # no flush called: the batch went out when the process ended
    assert span.name == "chat llama3.2:latest" and span.resource["service.name"] == "notebook-42"


# --- in a real kernel ------------------------------------------------------------------------------
def test_infer_otel_and_an_infer_cell_in_a_kernel(kernel, receiver, peers_reset):
    receiver.reset()
    off = kernel.run("%infer_otel")
    assert off.reply["status"] == "ok"
    shown = table(off)
    assert shown["tracing"] == "off" and "OTEL_EXPORTER_OTLP_ENDPOINT" in shown["why"]
    setup = kernel.run(f"%env OTEL_EXPORTER_OTLP_ENDPOINT={receiver.url}\n"
                       "%env OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true\n"
                       "%env OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer%20otel-header-secret-991")
    assert setup.reply["status"] == "ok"
    on = kernel.run("%infer_otel")
    shown = table(on)
    assert shown["tracing"] == "on" and shown["endpoint"] == f"{receiver.url}/v1/traces"
    assert shown["content"].startswith("captured") and "withheld: private" in shown["content"]
    assert shown["headers"] == "authorization" and "otel-header-secret-991" not in on.everything()
    run = kernel.run("%%infer\nWhat is two plus two?")
    assert run.reply["status"] == "ok"
    private = kernel.run(f"%%infer\nConfidential: {MARKER}")
    assert private.reply["status"] == "ok"
    flushed = kernel.run("from inference_magics import telemetry\nprint(telemetry.flush())")
    assert flushed.stdout.strip() == "True"
    spans = receiver.spans()
    assert [s.name for s in spans] == ["chat llama3.2:latest"] * 2
    asked = json.loads(spans[0].attributes["gen_ai.input.messages"])
    assert asked[0]["parts"][0]["content"].strip() == "What is two plus two?"
    assert spans[1].attributes["inference_magics.content"] == "withheld: private"
    assert MARKER.encode() not in receiver.everything()
    assert all(h.get("authorization") == "Bearer otel-header-secret-991" for h in receiver.headers)
    assert table(kernel.run("%infer_otel"))["exports"].endswith("sent, 0 failed")


def test_tracing_on_without_the_sdk_is_one_notice_and_the_answer_still_comes(receiver, ollama_peer, claude_peer,
                                                                             tmp_path):
    script = ("import sys\n"
              "sys.modules['opentelemetry'] = None  # as if the package were not installed\n"
              "import inference_magics as im\n"
              "first, second = im.infer('Hello'), im.infer('Hello again')\n"
              "print(repr(first.text), first.notices, second.notices, sep='\\n')\n")
    base = {k: v for k, v in os.environ.items() if k not in telemetry.NAMES}
    env = {**base, **peer_environment(ollama_peer.url, claude_peer), "INFERENCE_DATA_DIR": str(tmp_path),
           "PYTHONPATH": str(REPO), "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    text, first, second = done.stdout.splitlines()
    assert text == repr(ollama_peer.expected_text())
    assert "is not installed — pip install opentelemetry-sdk" in first and second == "[]"
