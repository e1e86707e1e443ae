"""The embedded llama-server asks for a key only its owner can read (docs/RELIABILITY.md): any other
local user could otherwise use its CPU and slots, read /props (the home path in model_path) and share
the KV cache that holds the prompts. And a text too long for the embedding model is named, with
what to do. Both for real, with the packaged models."""
import json
import stat

import httpx
import pytest

import inference_magics as im
from inference_magics import settings, write_behind
from inference_magics.backends import get_backend
from inference_magics.errors import BackendError
from tests.conftest import needs_local

pytestmark = [needs_local, pytest.mark.usefixtures("local_model")]


def _read(path) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def test_the_server_answers_only_requests_with_its_key_which_no_other_user_can_read(tmp_path, capsys):
    result = im.infer("What is the capital of France?", backend="local", max_tokens=4, temperature=0)
    assert result.error is None and result.text.strip()  # we send the key: it works
    backend = get_backend("local", settings.load())
    server = next(iter(backend._servers.values()))

    # without the key: 401 for generation, tokenizing and /props; /slots is off even with it
    chat = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    with httpx.Client(trust_env=False, timeout=30) as http:
        assert http.post(f"{server.url}/v1/chat/completions", json=chat).status_code == 401
        assert http.post(f"{server.url}/v1/completions", json={"prompt": "hi", "max_tokens": 1}).status_code == 401
        assert http.post(f"{server.url}/tokenize", json={"content": "hi"}).status_code == 401
        assert http.get(f"{server.url}/props").status_code == 401
        assert http.get(f"{server.url}/slots").status_code == 401
        key = server.api_key.get()
        assert len(key) >= 40  # secrets.token_urlsafe(32)
        wrong = {"Authorization": "Bearer " + key[:-1] + ("A" if key[-1] != "A" else "B")}
        assert http.post(f"{server.url}/v1/chat/completions", json=chat, headers=wrong).status_code == 401
        keyed = {"Authorization": f"Bearer {key}"}
        slots = http.get(f"{server.url}/slots", headers=keyed)
        assert slots.status_code != 200 and "is_processing" not in slots.text
        assert http.get(f"{server.url}/health").status_code == 200  # public: says only "ok"

    # the key is in llama-server's environment (owner-only), never on a command line anyone can read
    for pid in (server.pid, server.supervisor_pid):
        assert key.encode() not in _read(f"/proc/{pid}/cmdline")
    assert b"--no-slots" in _read(f"/proc/{server.pid}/cmdline")
    assert f"LLAMA_API_KEY={key}".encode() in _read(f"/proc/{server.pid}/environ").split(b"\0")

    # the state file that holds it is the owner's alone, and so is its folder
    state_file = server._state_path
    assert json.loads(state_file.read_text())["api_key"] == key
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_file.parent.stat().st_mode) == 0o700

    # the estimate's tokenizer calls carry the key too (a 401 would give no count)
    from inference_magics import budget

    counted = budget.estimate("local", "gemma-3-270m", ["What is the capital of France?"], count=True)
    assert counted.method == budget.counted_by("local")

    # nowhere in what the user sees or what is kept: the answer, its footer, an error line, the history, the log
    from inference_magics.notebook.render import footer

    assert key not in repr(result) and key not in footer(result) and key not in " ".join(result.notices)
    assert key not in BackendError(f"the server said: bad key {key}").message  # registered as a secret
    write_behind.flush()
    for path in tmp_path.rglob("*"):
        if path.is_file() and path != state_file:
            assert key.encode() not in _read(path), path
    assert key.encode() not in _read(server.log_path)
    out = capsys.readouterr()
    assert key not in out.out and key not in out.err


def test_a_restarted_server_has_a_new_key_and_the_client_follows_it():
    im.infer("Hello", backend="local", max_tokens=2)
    backend = get_backend("local", settings.load())
    server = next(iter(backend._servers.values()))
    assert httpx.post(f"{server.url}/v1/completions", json={"prompt": "hi", "max_tokens": 1},
                      trust_env=False, timeout=30).status_code == 401
    first_key, first_wire = server.api_key, backend._wire(server, False)
    assert first_wire.api_key == first_key
    server.stop()
    result = im.infer("What is the capital of France?", backend="local", max_tokens=4, temperature=0)
    assert result.error is None and server.api_key != first_key
    assert backend._wire(server, False).api_key == server.api_key  # not the old client, with the old key


def test_a_text_longer_than_the_embedding_model_takes_is_named_with_its_limit(monkeypatch):
    """all-MiniLM-L6-v2 has 512 positions: llama-server said "increase the physical batch size",
    which a user cannot do. Now: which text, how long, the limit, what to do — in the caller's own
    numbering, and the texts that fit still embed."""
    texts = ["a short sentence", "another one", "word " * 700, "and a last one"]
    with pytest.raises(im.BackendError) as err:
        im.embed(texts, backend="local", cache=False)
    message = err.value.message
    assert message.startswith("text 2 (702 tokens) is longer than all-minilm-l6-v2 can embed: its limit is 512 tokens")
    assert "split the text" in message and "physical batch" not in message and "\n" not in message
    with pytest.raises(im.BackendError, match=r"^the text \(702 tokens\) is longer than all-minilm-l6-v2"):
        im.embed("word " * 700, backend="local", cache=False)
    # with cached vectors, the text's index is still the caller's, not its place among the texts sent
    im.embed(["a short sentence", "another one"], backend="local")
    with pytest.raises(im.BackendError, match=r"^text 3 \(702 tokens\) is longer"):
        im.embed(["another one", "and a last one", "a short sentence", "word " * 700], backend="local")
    assert im.embed(texts[:2] + texts[3:], backend="local", cache=False).shape == (3, 384)
