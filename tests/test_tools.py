"""Tool calling (tools.py) over the real wire: the peers speak each protocol's tool calls (checked
with the official clients first), and the loop runs notebook functions, sends the results back
and returns the final answer. Privacy: a tool's secret never reaches Claude."""
from __future__ import annotations

import json

import anthropic
import ollama
import pytest

import inference_magics as im
from inference_magics import api
from inference_magics.errors import ConfigError, PrivacyError
from inference_magics.tools import as_tool

CALL = [{"name": "add", "arguments": {"a": 2, "b": 40}}]


def add(a: int, b: int) -> int:
    """Add two numbers.

    a: the first number
    b: the second number
    """
    return a + b


def leaky(name: str) -> str:
    """Look up a user's settings."""
    return "token = ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


def broken(x: int) -> int:
    raise ValueError("the sensor is offline")


# --- the peers speak tool calling as the services do (official clients) ------------------------
def test_ollama_peer_tool_calls_through_the_official_client(ollama_peer):
    ollama_peer.set(tool_calls=CALL)
    client = ollama.Client(host=ollama_peer.url)
    tools = [{"type": "function", "function": as_tool(add).spec}]
    messages = [{"role": "user", "content": "What is 2 + 40?"}]
    chunks = list(client.chat(model="llama3.2", messages=messages, tools=tools, stream=True))
    calls = [c for chunk in chunks for c in chunk.message.tool_calls or ()]
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [("add", {"a": 2, "b": 40})]
    messages += [{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "add",
                                                                                   "arguments": {"a": 2, "b": 40}}}]},
                 {"role": "tool", "content": "42", "tool_name": "add"}]
    reply = client.chat(model="llama3.2", messages=messages, tools=tools, stream=False)
    assert reply.message.content == "Tool results: 42" and not reply.message.tool_calls


def test_anthropic_peer_streams_tool_use_with_input_json_delta(claude_peer):
    claude_peer.set(tool_calls=CALL)
    client = anthropic.Anthropic(api_key=claude_peer.api_key, base_url=claude_peer.url, max_retries=0)
    tool = as_tool(add).spec
    tools = [{"name": "add", "description": tool["description"], "input_schema": tool["parameters"]}]
    messages = [{"role": "user", "content": "What is 2 + 40?"}]
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=messages, tools=tools) as s:
        kinds = [e.type for e in s]
        message = s.get_final_message()
    assert "input_json" in kinds  # the SDK saw input_json_delta events and gathered them
    use = next(b for b in message.content if b.type == "tool_use")
    assert (use.name, use.input, message.stop_reason) == ("add", {"a": 2, "b": 40}, "tool_use")
    messages += [{"role": "assistant", "content": [{"type": "tool_use", "id": use.id, "name": "add", "input": use.input}]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "42"}]}]
    answer = client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=messages, tools=tools)
    assert answer.content[0].text == "Tool results: 42"
    wrong = messages[:-1] + [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x",
                                                             "content": "42"}]}]
    with pytest.raises(anthropic.BadRequestError, match="tool_use_id"):
        client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=wrong, tools=tools)


def test_openai_peer_streams_tool_calls_through_the_official_client(openai_peer):
    openai = pytest.importorskip("openai")
    openai_peer.set(tool_calls=CALL)
    client = openai.OpenAI(base_url=openai_peer.url + "/v1", api_key="x", max_retries=0)
    tools = [{"type": "function", "function": as_tool(add).spec}]
    messages = [{"role": "user", "content": "What is 2 + 40?"}]
    model = openai_peer.model_ids()[0]
    with client.chat.completions.stream(model=model, messages=messages, tools=tools) as s:
        for _ in s:
            pass
        done = s.get_final_completion()
    call = done.choices[0].message.tool_calls[0]
    assert (call.function.name, json.loads(call.function.arguments)) == ("add", {"a": 2, "b": 40})
    assert done.choices[0].finish_reason == "tool_calls"
    messages += [done.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "42"}]
    answer = client.chat.completions.create(model=model, messages=messages, tools=tools)
    assert answer.choices[0].message.content == "Tool results: 42"


# --- the schema of a function -----------------------------------------------------------------
def test_a_tools_schema_comes_from_its_signature_hints_and_docstring():
    def search(query: str, limit: int = 5, exact: bool = False) -> list:
        """Search the notes.

        query: words to look for
        """
    tool = as_tool(search)
    assert tool.spec == {"name": "search", "description": "Search the notes.", "parameters": {
        "type": "object", "required": ["query"], "properties": {
            "query": {"type": "string", "description": "words to look for"},
            "limit": {"type": "integer"}, "exact": {"type": "boolean"}}}}
    assert tool.notice is None


def test_a_function_without_hints_gets_string_parameters_and_a_notice():
    def lookup(key, default=None):
        return key

    tool = as_tool(lookup)
    assert tool.spec["parameters"]["properties"] == {"key": {"type": "string"}, "default": {"type": "string"}}
    assert "no type hint" in tool.notice and "key, default" in tool.notice


def test_bad_tools_are_one_line():
    with pytest.raises(ConfigError, match="named function"):
        as_tool(lambda x: x)

    def spread(*values: int) -> int:
        return 0

    with pytest.raises(ConfigError, match=r"\*args"):
        as_tool(spread)


# --- the loop, per backend --------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["ollama", "anthropic", "openai"])
def test_the_tool_result_reaches_the_final_answer(backend, peers, openai_peer, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.url + "/v1")
    for peer in (*peers, openai_peer):
        peer.set(tool_calls=CALL)
    result = im.infer("What is 2 + 40? Use the tool.", backend=backend, tools=[add])
    assert result.text == "Tool results: 42"
    [run] = result.tool_runs
    assert (run.name, run.arguments, run.result, run.error) == ("add", {"a": 2, "b": 40}, "42", None)
    assert result.usage.output_tokens >= 3


def test_a_tools_exception_goes_back_to_the_model_as_an_error(ollama_peer, monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    ollama_peer.set(tool_calls=[{"name": "broken", "arguments": {"x": 1}}])
    result = im.infer("Read the sensor.", backend="ollama", tools=[broken])
    assert result.tool_runs[0].error == "ValueError: the sensor is offline"
    assert result.text == "Tool results: ValueError: the sensor is offline"


def test_bad_arguments_and_unknown_tools_go_back_as_errors(ollama_peer, monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    ollama_peer.set(tool_calls=[{"name": "add", "arguments": {"a": "two", "b": 1}}])
    result = im.infer("Add.", backend="ollama", tools=[add])
    assert result.tool_runs[0].error.startswith("bad arguments for add: a:")


def test_the_loop_stops_at_max_steps_with_a_notice(ollama_peer, monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    ollama_peer.set(tool_calls=CALL)
    # the peer answers every request that does not end with tool results with a call: here the
    # second request ends with results, so one step of calls, then the answer; max_steps=1 stops first
    result = im.infer("Add.", backend="ollama", tools=[add], max_steps=1)
    assert result.tool_runs == [] and any("--max-steps" in n for n in result.notices)
    assert len(ollama_peer.requests_to("/api/chat")) == 1


def test_confirm_can_skip_a_call(ollama_peer, monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    ollama_peer.set(tool_calls=CALL)
    asked = []
    result = im.infer("Add.", backend="ollama", tools=[add], confirm=lambda run: asked.append(run.name) or False)
    assert asked == ["add"] and result.tool_runs[0].skipped
    assert result.text == "Tool results: the user declined to run this call"


def test_history_records_the_calls(ollama_peer, monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    ollama_peer.set(tool_calls=CALL)
    im.infer("What is 2 + 40?", backend="ollama", tools=[add])
    from inference_magics import settings
    from inference_magics.history import store_for

    entry = store_for(settings.load()).recent(1)[0]  # the final request, after the calls
    recorded = entry.options["tool_calls"]
    assert recorded == [{"step": 1, "name": "add", "arguments": {"a": 2, "b": 40}, "result": "42", "error": None,
                         "skipped": False, "seconds": recorded[0]["seconds"]}]
    assert entry.output == "Tool results: 42"


# --- privacy -----------------------------------------------------------------------------------
def test_a_tool_result_with_a_secret_never_reaches_claude(claude, ollama_peer):
    claude.set(tool_calls=[{"name": "leaky", "arguments": {"name": "ada"}}])
    with pytest.raises(PrivacyError, match="refused to send the result of tool leaky to anthropic") as caught:
        im.infer("What are Ada's settings?", backend="anthropic", tools=[leaky])
    bodies = json.dumps([r.body for r in claude.requests])
    assert "ghp_" not in bodies and len(claude.requests_to("/v1/messages")) == 1
    kept = caught.value.result
    assert kept.tool_runs[0].name == "leaky" and kept.error.startswith("refused to send")


def test_a_tool_result_with_a_secret_goes_to_a_model_on_this_machine(ollama_peer, monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    ollama_peer.set(tool_calls=[{"name": "leaky", "arguments": {"name": "ada"}}])
    result = im.infer("What are Ada's settings?", backend="ollama", tools=[leaky])
    assert "ghp_" in result.text  # on this machine: allowed, as for a prompt


def test_a_model_without_tools_gets_one_line(local_model):
    with pytest.raises(ConfigError, match="cannot call tools"):
        im.infer("Add 2 and 40.", backend="local", tools=[add])


def test_schema_and_tools_together_are_refused_plainly():
    with pytest.raises(ConfigError, match="together"):
        api.infer("x", tools=[add], schema={"type": "object"})


def test_a_peer_set_to_auto_calls_the_first_tool_with_arguments_that_follow_its_schema(claude):
    claude.set(tool_calls="auto")
    result = im.infer("Add.", backend="anthropic", tools=[add])
    assert [(r.name, r.arguments, r.result) for r in result.tool_runs] == [("add", {"a": 7, "b": 7}, "14")]


def test_a_tool_use_cut_at_max_tokens_is_not_run_with_half_its_arguments(claude):
    """Claude stops at max_tokens while writing a call's arguments: the SDK reads the partial JSON as
    far as it goes (123456789 arrives as 123), so the call must not run — the API's advice is
    to ask again with more max_tokens, which the cell says."""
    claude.set(tool_calls=[{"name": "add", "arguments": {"a": 2, "b": 123456789}}])
    client = anthropic.Anthropic(api_key=claude.api_key, base_url=claude.url, max_retries=0)
    tools = [{"name": "add", "description": "Add.", "input_schema": as_tool(add).spec["parameters"]}]
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=2, tools=tools,
                                messages=[{"role": "user", "content": "Add."}]) as s:
        cut = s.get_final_message()  # the peer as the SDK sees it: a tool_use block, cut, max_tokens
    assert cut.stop_reason == "max_tokens" and cut.content[-1].input == {"a": 2, "b": 123}
    claude.reset()
    claude.set(tool_calls=[{"name": "add", "arguments": {"a": 2, "b": 123456789}}])
    result = im.infer("Add.", backend="anthropic", tools=[add], max_tokens=2)
    assert result.tool_runs == [] and len(claude.requests_to("/v1/messages")) == 1
    assert result.stop_reason == "max_tokens" and any("raise --max-tokens" in n for n in result.notices)


def test_an_openai_compatible_tool_call_cut_at_the_length_limit_is_not_run(openai_peer, monkeypatch):
    """finish_reason "length" with a tool call: the server stopped while writing its arguments, so
    the call is not run and the loop ends with the --max-tokens notice (before: the cut JSON went back
    to the model as bad arguments, and another request followed, to be cut the same way)."""
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.url + "/v1")
    openai_peer.set(tool_calls=[{"name": "add", "arguments": {"a": 2, "b": 123456789}}])
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=openai_peer.url + "/v1", api_key="x", max_retries=0)
    cut = client.chat.completions.create(model=openai_peer.model_ids()[0], max_tokens=2, tools=[
        {"type": "function", "function": as_tool(add).spec}], messages=[{"role": "user", "content": "Add."}])
    assert cut.choices[0].finish_reason == "length"  # the peer as the official client sees it
    assert cut.choices[0].message.tool_calls[0].function.arguments == '{"a":2,"b":123'
    openai_peer.reset()
    openai_peer.set(tool_calls=[{"name": "add", "arguments": {"a": 2, "b": 123456789}}])
    result = im.infer("Add. Use the tool.", backend="openai", tools=[add], max_tokens=2)
    assert result.tool_runs == [] and len([r for r in openai_peer.requests if r.path.endswith("/chat/completions")]) == 1
    assert result.stop_reason == "length" and any("raise --max-tokens" in n for n in result.notices)


def test_a_backend_without_tools_or_schema_gets_one_line_before_anything_is_sent(monkeypatch):
    from inference_magics import backends
    from tests.toy_backend import SPEC

    monkeypatch.setitem(backends.REGISTRY, "toy", SPEC)  # declares chat and list only
    with pytest.raises(ConfigError, match="^the toy backend cannot call tools"):
        im.infer("x", backend="toy", tools=[add])
    with pytest.raises(ConfigError, match="^the toy backend cannot constrain an answer to a schema"):
        im.infer("x", backend="toy", schema={"type": "object", "properties": {"n": {"type": "integer"}}})


@pytest.mark.parametrize("backend", ["ollama", "anthropic", "openai"])
def test_tools_without_streaming(backend, peers, openai_peer, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.url + "/v1")
    for peer in (*peers, openai_peer):
        peer.set(tool_calls=CALL)
    result = im.infer("What is 2 + 40?", backend=backend, tools=[add], stream=False)
    assert result.text == "Tool results: 42" and result.tool_runs[0].result == "42"


def test_an_interrupt_in_a_tool_keeps_what_was_said_and_the_calls(ollama_peer, monkeypatch):
    from inference_magics.errors import InferenceInterrupted

    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    ollama_peer.set(tool_calls=[{"name": "stuck", "arguments": {}}])

    def stuck() -> str:
        raise KeyboardInterrupt

    with pytest.raises(InferenceInterrupted) as caught:
        im.infer("Wait.", backend="ollama", tools=[stuck])
    assert caught.value.result.interrupted and [r.name for r in caught.value.result.tool_runs] == ["stuck"]


# --- what a hostile model writes is bounded in the cell; what a tool returns is not an error -----
def test_a_megabyte_argument_is_shortened_in_the_call_line(ollama_peer, monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)

    def count(text: str) -> int:
        """Count the characters."""
        return len(text)

    ollama_peer.set(tool_calls=[{"name": "count", "arguments": {"text": "A" * 1_000_000}}])
    [run] = im.infer("Count.", backend="ollama", tools=[count]).tool_runs
    assert run.result == "1000000"  # the tool got the whole argument
    assert len(run.line()) < 500 and run.line().startswith('count(text="AAAA') and "…" in run.line()


def test_a_result_json_cannot_hold_is_sent_as_its_repr_not_as_an_error(ollama_peer, monkeypatch):
    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)

    def graph() -> dict:
        """A graph that points at itself."""
        node = {"name": "a"}
        node["next"] = node
        return node

    ollama_peer.set(tool_calls=[{"name": "graph", "arguments": {}}])
    [run] = im.infer("Walk the graph.", backend="ollama", tools=[graph]).tool_runs
    assert run.error is None and run.result == "{'name': 'a', 'next': {...}}"


def test_arguments_nested_past_the_json_decoder_go_back_as_an_error(openai_peer, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", openai_peer.url + "/v1")
    deep = '{"x": ' + "[" * 5000 + "]" * 5000 + "}"
    chunks = [{"id": "x", "object": "chat.completion.chunk", "model": "m", "choices": [{"index": 0, "delta": {
                  "role": "assistant", "tool_calls": [{"index": 0, "id": "c0", "type": "function",
                                                       "function": {"name": "add", "arguments": deep}}]},
                  "finish_reason": None}]},
              {"id": "x", "object": "chat.completion.chunk", "model": "m",
               "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}]
    openai_peer.set(raw_stream=b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks)
                    + b"data: [DONE]\n\n")
    result = im.infer("Add.", backend="openai", tools=[add], max_steps=2)
    assert result.tool_runs[0].error.startswith("the arguments are not a JSON object")
