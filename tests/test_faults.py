"""Faults and odd inputs not covered elsewhere: each gives the right behaviour in bounded time."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import inference_magics as im
from inference_magics import history

SENTINEL = "sk-ant-sentinel-faults-DO-NOT-LEAK-5550123"


@pytest.fixture
def html_server():
    """Some other web server (a proxy, a dashboard) answering every path with a page."""
    class Page(BaseHTTPRequestHandler):
        def _page(self):
            body = b"<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"
            self.send_response(404 if self.path.startswith("/api") else 200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _page

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_ollama_url_pointing_at_a_web_page(monkeypatch, html_server):
    monkeypatch.setenv("OLLAMA_BASE_URL", html_server)
    with pytest.raises(im.BackendError, match="web page, not the Ollama API — check OLLAMA_BASE_URL"):
        im.infer("hi", model="llama3.2")


def test_anthropic_url_pointing_at_a_web_page(monkeypatch, html_server):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", html_server)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL)
    monkeypatch.setenv("ANTHROPIC_MAX_RETRIES", "0")
    with pytest.raises(im.InferenceError) as err:
        im.infer("hi", model="claude-haiku-4-5")
    assert "ANTHROPIC_BASE_URL" in err.value.message and SENTINEL not in str(err.value)


def test_a_one_megabyte_prompt_goes_through(monkeypatch, peers):
    ollama, _ = peers
    big = "lorem ipsum " * 87_400  # ~1 MB
    result = im.infer(big)
    assert result.text == ollama.expected_text()
    assert len(ollama.requests[-1].body["messages"][-1]["content"]) == len(big)


def test_a_slow_first_byte_within_the_timeout_is_fine(monkeypatch, peers):
    ollama, _ = peers
    monkeypatch.setenv("OLLAMA_TIMEOUT", "3000")
    ollama.set(fault="slow_headers", first_token_delay=0.8)
    result = im.infer("hi")
    assert result.text == ollama.expected_text() and result.metrics.ttft_s >= 0.8


@pytest.mark.parametrize("fault", ["forbidden", "too_large", "rate_limit", "overloaded", "server_error",
                                   "error_mid_stream", "drop_mid_stream", "html"])
def test_the_api_key_never_appears_on_any_error_path(monkeypatch, claude_peer, fault, tmp_path):
    claude_peer.set(api_key=SENTINEL, fault=fault, retry_after="0", fault_after=2)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", claude_peer.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", SENTINEL)
    monkeypatch.setenv("ANTHROPIC_MAX_RETRIES", "1")
    history._stores.clear()
    with pytest.raises(im.InferenceError) as err:
        im.infer("hello", model="claude-haiku-4-5")
    seen = [str(err.value), repr(err.value), "".join(err.value._render_traceback_()), repr(err.value.result)]
    assert not any(SENTINEL in text for text in seen)
    raw = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("history.sqlite3*"))
    assert raw and SENTINEL.encode() not in raw
    history._stores.clear()


def test_a_hostile_model_name_cannot_inject_html_into_the_footer(monkeypatch, claude_peer):
    from inference_magics.notebook.render import result_bundle
    from tests.hostile import assert_inert, visible_text

    monkeypatch.setenv("ANTHROPIC_BASE_URL", claude_peer.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", claude_peer.api_key)
    result = im.infer("hi", model="claude-haiku-4-5")
    result.model = "<img src=x onerror=alert(1)> [x](javascript:alert(3))"
    result.notices.append("<script>alert(2)</script>")
    shown = result_bundle(result)
    assert_inert(shown, "the footer")
    assert result.model in visible_text(shown["text/html"]) and "<script>alert(2)</script>" in visible_text(shown["text/html"])


def test_embedding_five_thousand_texts_is_batched(monkeypatch, ollama_peer):
    from inference_magics import embeddings

    monkeypatch.setenv("OLLAMA_BASE_URL", ollama_peer.url)
    monkeypatch.setenv("INFERENCE_EMBED_BATCH_SIZE", "250")
    words = [f"w{i}" for i in range(100)]
    texts = [f"{words[i % 100]} {words[i // 100]}" for i in range(5_000)]  # all different
    done = embeddings.run(texts, model="all-minilm", progress=False)
    assert done.vectors.shape == (5_000, 384) and done.requests == 20
    assert len([r for r in ollama_peer.requests if r.path == "/api/embed"]) == 20
