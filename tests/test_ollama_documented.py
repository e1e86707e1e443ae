"""The Ollama backend against responses exactly as ollama/ollama documents them (docs/api.md,
docs/api/errors.mdx, server/routes.go), replayed by a tiny loopback server — not the peer."""
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import inference_magics as im

JSON, NDJSON = "application/json; charset=utf-8", "application/x-ndjson"


class Replay:
    """path -> (status, content type, body); a list body is sent as NDJSON lines, chunked."""

    def __init__(self, routes):
        self.routes, self.requests = dict(routes), []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                size = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(size) or b"null")
                replay.requests.append((self.path, body))
                status, ctype, payload = replay.routes.get(self.path, (404, "text/plain", "404 page not found"))
                if isinstance(payload, list):
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for line in payload:
                        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_the_documented_chat_stream_without_done_reason(replay):
    # docs/api.md "Chat request (Streaming)": `images: null` on a chunk, no done_reason on the last
    replay.routes["/api/chat"] = (200, NDJSON, [
        {"model": "llama3.2", "created_at": "2023-08-04T08:52:19.385406455-07:00",
         "message": {"role": "assistant", "content": "The", "images": None}, "done": False},
        {"model": "llama3.2", "created_at": "2023-08-04T19:22:45.499127Z", "message": {"role": "assistant", "content": ""},
         "done": True, "total_duration": 4883583458, "load_duration": 1334875, "prompt_eval_count": 26,
         "prompt_eval_duration": 342546000, "eval_count": 282, "eval_duration": 4535599000}])
    result = im.infer("why is the sky blue?", model="llama3.2")
    assert (result.text, result.stop_reason) == ("The", "stop")
    assert (result.usage.input_tokens, result.usage.output_tokens) == (26, 282)


def test_a_server_without_api_embed_is_embedded_through_api_embeddings(replay):
    # before v0.2.6 only the legacy /api/embeddings exists (docs/api.md "Generate Embedding"): one
    # prompt a request, a vector that is not unit length
    replay.routes["/api/embeddings"] = (200, JSON, {"embedding": [0.5670403838157654, 0.009260174818336964,
                                                                  0.23178744316101074]})
    vectors = im.embed(["a", "b"], model="all-minilm", cache=False)
    assert vectors.shape == (2, 3) and math.isclose(float((vectors[0] ** 2).sum()), 1.0, rel_tol=1e-5)
    assert [path for path, _ in replay.requests] == ["/api/embed", "/api/embeddings", "/api/embeddings"]
    assert [body["prompt"] for path, body in replay.requests[1:]] == ["a", "b"]


def test_api_embed_model_not_found_is_not_retried_on_the_legacy_route(replay):
    replay.routes["/api/embed"] = (404, JSON, {"error": 'model "all-minilm" not found, try pulling it first'})
    with pytest.raises(im.ModelNotFound):
        im.embed(["a"], model="all-minilm", cache=False)
    assert [path for path, _ in replay.requests if path.startswith("/api/embed")] == ["/api/embed"]
