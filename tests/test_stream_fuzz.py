"""Every stream parser against arbitrary and mutated streams, over real loopback HTTP.

Each peer serves the exact bytes hypothesis made (the `raw_stream` knob) as the body of a 200
streaming reply; the backend reads them through its real client (the official `ollama` client,
the official `anthropic` SDK, our httpx SSE reader). The properties, for any byte sequence:

- the call either returns a Result or raises one of our InferenceError subclasses — never
  anything else (no raw traceback can reach a cell);
- the text of every well-formed event before the first fault is kept (in the Result, or in the
  error's `.result`, which is what `_infer` gets);
- a failure is one line from the backend's own parser (not the API's catch-all for the
  unforeseen), and the history gets a row marked with that error.
"""
import json
import string

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import inference_magics as im
from inference_magics import history, settings as im_settings

SETTINGS = settings(max_examples=60, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# any JSON value (no NaN: the peers write real JSON)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8)
# answer text that survives every layer unchanged (no line breaks, nothing that looks like a secret),
# with multi-byte characters, so that the arbitrary HTTP chunk splits below fall inside them too
words = st.text(alphabet=string.ascii_letters + " .,éß中😀", min_size=1, max_size=8)
junk = st.binary(min_size=1, max_size=40)


def run(prompt="hi", **choice):
    """(Result, error or None); any exception that is not ours fails the test right here."""
    try:
        return im.infer(prompt, **choice), None
    except im.InferenceError as error:
        assert error.result is not None, "a stream failure must carry the partial Result"
        return error.result, error


def check(result, error, kept: str, rows_before: int):
    assert result.text.startswith(kept), (result.text, kept)
    store = history.store_for(im_settings.load())
    rows = store.recent(1)
    assert store.count() == rows_before + 1, "every completion, failed or not, gets a history row"
    if error is not None:
        # one line, from the backend's own parser — not the API's catch-all for the unforeseen
        assert "\n" not in error.message and not error.message.startswith("unexpected "), error.message
        assert result.error == error.message and rows[0].error == error.message
        assert rows[0].output == result.text
    else:
        assert result.error is None and rows[0].error is None


def rows():
    store = history.store_for(im_settings.load())
    return store.count() if store is not None else 0


@st.composite
def mutated(draw, events: list[bytes], fault_events):
    """A well-formed stream (`events`, one bytes each) with one fault: a well-formed event swapped
    for a hostile one, or the bytes cut, corrupted or padded somewhere. Returns (body chunks,
    how many leading events are untouched)."""
    how = draw(st.sampled_from(["replace", "truncate", "insert", "flip"]))
    if how == "replace":
        at = draw(st.integers(0, len(events)))
        stream = events[:at] + [draw(fault_events)] + events[at + 1:]
        return stream, at
    body = b"".join(events)
    cut = draw(st.integers(0, len(body)))
    if how == "truncate":
        body = body[:cut]
    elif how == "insert":
        body = body[:cut] + draw(junk) + body[cut:]
    else:
        body = body[:cut] + bytes([draw(st.integers(0, 255))]) + body[cut + 1:]
    intact, length = 0, 0
    for event in events:
        if length + len(event) > cut:
            break
        length += len(event)
        intact += 1
    # split the body at arbitrary points: the parsers must not care where HTTP chunks end
    splits = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
    chunks = [body[a:b] for a, b in zip([0] + splits, splits + [len(body)])]
    return chunks, intact


# --- Ollama NDJSON, through the official client ------------------------------------------------
def ollama_line(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode() + b"\n"


def ollama_chunk(text, **extra):
    return {"model": "llama3.2", "created_at": "2025-10-26T17:15:24.1Z",
            "message": {"role": "assistant", "content": text}, "done": False, **extra}


OLLAMA_DONE = {"model": "llama3.2", "created_at": "2025-10-26T17:15:25Z", "message": {"role": "assistant", "content": ""},
               "done": True, "done_reason": "stop", "prompt_eval_count": 3, "eval_count": 4, "eval_duration": 1000}


@st.composite
def hostile_ollama_line(draw):
    kind = draw(st.sampled_from(["value", "field", "message", "content", "error", "bytes"]))
    if kind == "value":  # [1,2,3], null, 5, "text"…
        return ollama_line(draw(json_values))
    if kind == "bytes":
        return draw(junk) + b"\n"
    chunk = ollama_chunk("x")
    if kind == "field":
        chunk[draw(st.sampled_from(["model", "done", "created_at", "eval_count", "done_reason"]))] = draw(json_values)
    elif kind == "message":
        chunk["message"] = draw(json_values)
    elif kind == "content":
        chunk["message"]["content"] = draw(json_values)
    else:
        chunk = {"error": draw(json_values)}
    return ollama_line(chunk)


@pytest.fixture
def ollama_raw(monkeypatch, ollama_peer):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    return ollama_peer


@SETTINGS
@given(texts=st.lists(words, max_size=5), data=st.data())
def test_ollama_any_ndjson_is_text_or_one_line(ollama_raw, texts, data):
    events = [ollama_line(ollama_chunk(t)) for t in texts] + [ollama_line(OLLAMA_DONE)]
    body, intact = data.draw(mutated(events, hostile_ollama_line()))
    ollama_raw.set(raw_stream=body)
    before = rows()
    result, error = run(backend="ollama", model="llama3.2")
    check(result, error, "".join(texts[:min(intact, len(texts))]), before)


@SETTINGS
@given(value=json_values)
def test_ollama_a_valid_json_line_of_the_wrong_shape(ollama_raw, value):
    """[1,2,3], null or {"error": 5} after some text: one line, the text kept."""
    ollama_raw.set(raw_stream=[ollama_line(ollama_chunk("kept ")), ollama_line(value), ollama_line(OLLAMA_DONE)])
    before = rows()
    result, error = run(backend="ollama", model="llama3.2")
    check(result, error, "kept ", before)


# --- the OpenAI-compatible SSE, through our httpx reader -------------------------------------------
def sse(obj) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def openai_chunk(delta, finish=None, **extra):
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gemma-3-270m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


@st.composite
def hostile_openai_event(draw):
    kind = draw(st.sampled_from(["value", "choices", "choice", "delta", "content", "meta", "bytes"]))
    if kind == "value":
        return sse(draw(json_values))
    if kind == "bytes":
        return b"data: " + draw(junk) + b"\n\n"
    chunk = openai_chunk({"content": "x"})
    if kind == "choices":  # {"choices": 5}
        chunk["choices"] = draw(json_values)
    elif kind == "choice":  # a choice that is a string
        chunk["choices"] = [draw(json_values)]
    elif kind == "delta":
        chunk["choices"][0]["delta"] = draw(json_values)
    elif kind == "content":  # numeric content
        chunk["choices"][0]["delta"] = {draw(st.sampled_from(["content", "reasoning_content"])): draw(json_values)}
    else:  # usage as a list, a model that is a number, timings…
        chunk[draw(st.sampled_from(["usage", "model", "timings"]))] = draw(json_values)
        chunk["choices"][0]["finish_reason"] = draw(json_values)
    return sse(chunk)


@pytest.fixture
def openai_raw(monkeypatch, openai_peer):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.base_url)
    return openai_peer


@SETTINGS
@given(texts=st.lists(words, max_size=5), data=st.data())
def test_openai_any_sse_is_text_or_one_line(openai_raw, texts, data):
    events = ([sse(openai_chunk({"role": "assistant", "content": None}))]
              + [sse(openai_chunk({"content": t})) for t in texts]
              + [sse(openai_chunk({}, "stop")),
                 sse({"id": "c", "choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 3}}),
                 sse("[DONE]")])
    body, intact = data.draw(mutated(events, hostile_openai_event()))
    openai_raw.set(raw_stream=body)
    before = rows()
    result, error = run(backend="openai", model="gemma-3-270m")
    check(result, error, "".join(texts[:max(0, min(intact - 1, len(texts)))]), before)


@pytest.mark.parametrize("event", [
    {"choices": 5}, {"choices": ["a string"]}, {"choices": [{"delta": {"content": 5}}]},
    {"choices": [{"delta": "text"}]}, {"usage": [1, 2], "choices": []}, {"model": 7, "choices": []},
])
def test_openai_the_reported_shapes(openai_raw, event):
    """The shapes a hostile test found: each is one line (or ignored metadata), the text kept."""
    openai_raw.set(raw_stream=[sse(openai_chunk({"content": "kept "})), sse(event), sse(openai_chunk({}, "stop")),
                               sse("[DONE]")])
    before = rows()
    result, error = run(backend="openai", model="gemma-3-270m")
    check(result, error, "kept ", before)
    if "usage" in event or "model" in event:  # metadata of the wrong type is ignored, the answer stands
        assert error is None and result.text == "kept " and result.model == "gemma-3-270m"
    else:
        assert "not the OpenAI API" in error.message


# --- Anthropic SSE, through the official SDK ------------------------------------------------------
def named(name, obj) -> bytes:
    return f"event: {name}\ndata: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()


MESSAGE = {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-haiku-4-5-20251001", "content": [],
           "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 3, "output_tokens": 1}}


def claude_events(texts):
    return ([named("message_start", {"type": "message_start", "message": MESSAGE}),
             named("content_block_start", {"type": "content_block_start", "index": 0,
                                           "content_block": {"type": "text", "text": ""}})]
            + [named("content_block_delta", {"type": "content_block_delta", "index": 0,
                                             "delta": {"type": "text_delta", "text": t}}) for t in texts]
            + [named("content_block_stop", {"type": "content_block_stop", "index": 0}),
               named("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                                         "stop_sequence": None},
                                       "usage": {"output_tokens": len(texts)}}),
               named("message_stop", {"type": "message_stop"})])


@st.composite
def hostile_claude_event(draw):
    kind = draw(st.sampled_from(["value", "delta", "text", "index", "name", "bytes", "usage"]))
    if kind == "bytes":
        return b"event: content_block_delta\ndata: " + draw(junk) + b"\n\n"
    if kind == "value":
        name = draw(st.sampled_from(["message_start", "content_block_delta", "message_delta", "message_stop",
                                     "content_block_start", "error"]))
        return named(name, draw(json_values))
    event = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}
    if kind == "delta":
        event["delta"] = draw(json_values)
    elif kind == "text":
        event["delta"]["text"] = draw(json_values)
    elif kind == "index":
        event["index"] = draw(json_values)
    elif kind == "usage":
        return named("message_delta", {"type": "message_delta", "delta": {"stop_reason": draw(json_values)},
                                       "usage": draw(json_values)})
    else:
        return named(draw(st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=12)), event)
    return named("content_block_delta", event)


@pytest.fixture
def claude_raw(monkeypatch, claude_peer):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", claude_peer.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", claude_peer.api_key)
    monkeypatch.setenv("ANTHROPIC_MAX_RETRIES", "0")
    return claude_peer


@SETTINGS
@given(texts=st.lists(words, max_size=5), data=st.data())
def test_claude_any_sse_is_text_or_one_line(claude_raw, texts, data):
    events = claude_events(texts)
    body, intact = data.draw(mutated(events, hostile_claude_event()))
    claude_raw.set(raw_stream=body)
    before = rows()
    result, error = run(model="claude-haiku-4-5")
    check(result, error, "".join(texts[:max(0, min(intact - 2, len(texts)))]), before)
    if error is None:  # a Result without an error is a finished answer: Claude said message_stop
        assert result.stop_reason != "incomplete"
