"""Fidelity to what a real Ollama server writes and documents (ollama/ollama docs/api.md,
api/types.go, types/model/name.go), replayed by a tiny loopback server or laid out on disk as
Ollama lays out its model store — names, cloud aliases, documented chunks."""
import hashlib
import json

import pytest

import inference_magics as im
from tests.test_ollama_documented import NDJSON


def _pull(root, host, namespace, model, tag, blob_bytes=b"GGUF"):
    """One pulled model as Ollama stores it: manifests/<host>/<namespace>/<model>/<tag> naming a blob."""
    digest = "sha256-" + hashlib.sha256(f"{host}/{namespace}/{model}:{tag}".encode()).hexdigest()
    (root / "blobs").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / digest).write_bytes(blob_bytes)
    manifest = root / "manifests" / host / namespace / model / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"layers": [
        {"mediaType": "application/vnd.ollama.image.model", "digest": digest.replace("-", ":", 1)}]}))
    return root / "blobs" / digest


def test_pulled_models_are_named_as_ollama_list_names_them(monkeypatch, tmp_path):
    """`ollama pull hf.co/user/repo:Q4_K_M` is listed by Ollama under that name, host included
    (Name.DisplayShortest); the default registry and namespace are left out."""
    from inference_magics.backends.local import ollama_gguf_models, resolve_model

    root = tmp_path / "models"
    hf = _pull(root, "hf.co", "bartowski", "Llama-3.2-1B-Instruct-GGUF", "Q4_K_M")
    other = _pull(root, "registry.example.com", "bartowski", "Llama-3.2-1B-Instruct-GGUF", "Q4_K_M")
    user = _pull(root, "registry.ollama.ai", "someone", "tiny", "v1")
    library = _pull(root, "registry.ollama.ai", "library", "llama3.2", "latest")
    monkeypatch.setenv("OLLAMA_MODELS", str(root))
    assert ollama_gguf_models() == {"hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M": hf,
                                    "registry.example.com/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M": other,
                                    "someone/tiny:v1": user, "llama3.2:latest": library}
    # each spelling Ollama accepts finds the same model (names compare without case, as Ollama's do)
    assert resolve_model("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M")[1] == hf
    assert resolve_model("hf.co/bartowski/llama-3.2-1b-instruct-gguf:q4_k_m")[1] == hf
    assert resolve_model("someone/tiny:v1")[1] == user
    for name in ("llama3.2", "llama3.2:latest", "library/llama3.2", "registry.ollama.ai/library/llama3.2:latest"):
        assert resolve_model(name)[1] == library, name
    with pytest.raises(im.ConfigError, match="hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"):
        resolve_model("bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M")  # no such model on Ollama's own registry


SECRET = "ghp_Q8vN2kLp7RzX4mWc9TfB1yHs6JdE3gUa0KoI"  # a GitHub token shape
PRIVATE = f"Why does git reject this token? {SECRET}"


@pytest.fixture
def aliased(monkeypatch, ollama_peer):
    """An Ollama with a model made FROM a cloud model under a plain name (`ollama cp
    gpt-oss:120b-cloud big`, or a Modelfile `FROM gpt-oss:120b-cloud`): Ollama forwards its
    requests to ollama.com and says so only in /api/show and /api/tags (remote_host)."""
    from tests.peers.ollama_peer import DEFAULT_MODELS, model_entry

    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    ollama_peer.set(models=DEFAULT_MODELS + (model_entry("big", remote_model="gpt-oss:120b"),
                                             model_entry("embedder", embedding=True, remote_model="embeddinggemma")))
    return ollama_peer


def test_the_peer_says_a_cloud_alias_is_forwarded_as_ollama_does(aliased):
    import httpx
    import ollama

    client = ollama.Client(host=aliased.url)
    assert "big:latest" in [m.model for m in client.list().models]  # the official client reads the listing
    shown = httpx.post(aliased.url + "/api/show", json={"model": "big"}).json()
    assert (shown["remote_model"], shown["remote_host"]) == ("gpt-oss:120b", "https://ollama.com:443")
    listed = {m["name"]: m for m in httpx.get(aliased.url + "/api/tags").json()["models"]}
    assert listed["big:latest"]["remote_host"] == "https://ollama.com:443"
    assert "remote_host" not in listed["llama3.2:latest"]
    assert client.show("big").capabilities == ["completion", "tools"]


def test_a_private_prompt_never_goes_to_a_cloud_model_under_a_plain_name(aliased):
    with pytest.raises(im.PrivacyError) as refused:
        im.infer(PRIVATE, model="big")
    assert "forwards to https://ollama.com:443" in refused.value.message and SECRET not in refused.value.message
    with pytest.raises(im.PrivacyError, match="text 1 to ollama .*forwards to https://ollama.com:443"):
        im.embed(["hello", PRIVATE], model="embedder", cache=False)
    assert not aliased.requests_to("/api/chat") and not aliased.requests_to("/api/embed")
    # a prompt with nothing private may go (the user chose that model); a local model gets anything
    assert im.infer("hello", model="big", cache=False).error is None
    assert im.infer(PRIVATE, model="llama3.2", cache=False).error is None
    assert len(aliased.requests_to("/api/chat")) == 2


def test_local_only_sends_nothing_to_a_cloud_alias(aliased, monkeypatch):
    monkeypatch.setenv("INFERENCE_PRIVACY", "local-only")
    with pytest.raises(im.PrivacyError, match="local-only: nothing is sent to ollama .*forwards to"):
        im.infer("hello", model="big", cache=False)
    assert not aliased.requests_to("/api/chat")
    assert im.infer("hello", model="llama3.2", cache=False).error is None


# -- documented chat responses, replayed as docs/api.md and docs/api/*.mdx print them --------------

def test_the_documented_final_chunk_without_a_message_still_ends_the_answer(replay):
    # docs/api.md "Chat request (With History)": its final response has no `message` at all
    replay.routes["/api/chat"] = (200, NDJSON, [
        {"model": "llama3.2", "created_at": "2023-08-04T08:52:19.385406455-07:00",
         "message": {"role": "assistant", "content": "The"}, "done": False},
        {"model": "llama3.2", "created_at": "2023-08-04T19:22:45.499127Z", "done": True,
         "total_duration": 8113331500, "load_duration": 6396458, "prompt_eval_count": 61,
         "prompt_eval_duration": 398801000, "eval_count": 468, "eval_duration": 7701267000}])
    history = [{"role": "user", "content": "why is the sky blue?"},
               {"role": "assistant", "content": "due to rayleigh scattering."}]
    result = im.infer("how is that different than mie scattering?", model="llama3.2", messages=history, cache=False)
    assert (result.text, result.stop_reason, result.error) == ("The", "stop", None)
    assert (result.usage.input_tokens, result.usage.output_tokens) == (61, 468)


def test_a_final_chunk_that_is_not_ollamas_is_still_refused(replay):
    replay.routes["/api/chat"] = (200, NDJSON, [{"model": "llama3.2", "done": True, "message": "not an object"}])
    with pytest.raises(im.BackendError, match="not Ollama's protocol"):
        im.infer("hi", model="llama3.2", cache=False)
    replay.routes["/api/chat"] = (200, NDJSON, [{"model": "llama3.2", "done": False}])  # not final: not an end
    with pytest.raises(im.BackendError, match="not Ollama's protocol"):
        im.infer("hi", model="llama3.2", cache=False)


def test_the_documented_streamed_text_on_the_final_chunk_is_kept(replay):
    # docs/api/streaming.mdx: the last chunk carries the last token and done_reason
    replay.routes["/api/chat"] = (200, NDJSON, [
        {"model": "gemma4", "created_at": "2025-10-26T17:15:24.097767Z",
         "message": {"role": "assistant", "content": "That"}, "done": False},
        {"model": "gemma4", "created_at": "2025-10-26T17:15:24.166576Z",
         "message": {"role": "assistant", "content": "'s great!"}, "done": True, "done_reason": "stop"}])
    result = im.infer("hi", model="gemma4", cache=False)
    assert (result.text, result.stop_reason, result.error) == ("That's great!", "stop", None)


def test_the_documented_tool_call_arrives_whole_and_its_counts_are_read(replay):
    # docs/api.md "Chat request (Streaming with tools)": the call in one chunk, no id, arguments an object
    from inference_magics import settings
    from inference_magics.backends import get_backend
    from inference_magics.backends.base import Done, Request, ToolCall

    replay.routes["/api/chat"] = (200, NDJSON, [
        {"model": "llama3.2", "created_at": "2025-07-07T20:22:19.184789Z", "message": {
            "role": "assistant", "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}}]}, "done": False},
        {"model": "llama3.2", "created_at": "2025-07-07T20:22:19.19314Z", "message": {"role": "assistant", "content": ""},
         "done_reason": "stop", "done": True, "total_duration": 182242375, "load_duration": 41295167,
         "prompt_eval_count": 169, "prompt_eval_duration": 24573166, "eval_count": 15, "eval_duration": 115959084}])
    tool = {"name": "get_weather", "description": "Get the weather in a given city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
    events = list(get_backend("ollama", settings.load()).stream(
        Request(model="llama3.2", messages=({"role": "user", "content": "what is the weather in tokyo?"},),
                tools=(tool,))))
    calls = [e for e in events if isinstance(e, ToolCall)]
    done = events[-1]
    assert [(c.name, c.arguments) for c in calls] == [("get_weather", {"city": "Tokyo"})]
    assert isinstance(done, Done) and (done.usage.input_tokens, done.usage.output_tokens) == (169, 15)
    assert done.server_tokens_per_s == pytest.approx(15 / 115959084 * 1e9)
    sent = replay.requests[-1][1]
    assert sent["tools"] == [{"type": "function", "function": tool}]


@pytest.mark.parametrize("raw, url", [
    # envconfig.Host(): a bare IPv6 address is a host without a port (net.ParseIP), `::` a bind address
    ("::1", "http://[::1]:11434"), ("::", "http://127.0.0.1:11434"), ("http://::1", "http://[::1]:80"),
    ("[::1]", "http://[::1]:11434"), ("0.0.0.0", "http://127.0.0.1:11434"), (":56789", "http://127.0.0.1:56789"),
    ("https://localhost/ollama/", "https://localhost:443/ollama"),
])
def test_ollama_host_forms_as_ollama_reads_them(monkeypatch, raw, url):
    from inference_magics import settings
    from inference_magics.backends import keeps_data_local

    monkeypatch.delenv("OLLAMA_BASE_URL", raising=False)
    monkeypatch.setenv("OLLAMA_HOST", raw)
    loaded = settings.load()
    assert loaded.ollama_base_url == url
    assert keeps_data_local("ollama", loaded, "llama3.2")  # all of them are this machine


def test_an_unreachable_ollama_leaves_the_decision_to_the_send(monkeypatch):
    """Asking Ollama where a model runs must not turn "Ollama is down" into a different failure:
    the send reports it (or an embedding falls back to the embedded model where privacy allows)."""
    from inference_magics import policy, settings
    from tests.conftest import closed_port

    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    policy.check(PRIVATE, "ollama", "nomic-embed-text:latest", settings.load())  # no error: nothing can be sent
    with pytest.raises(im.BackendUnavailable, match="cannot connect to Ollama"):
        im.infer(PRIVATE, backend="ollama", model="llama3.2", cache=False)
