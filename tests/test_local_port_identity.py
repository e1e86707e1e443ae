"""The embedded server's port is only trusted once our own llama-server listens on it. llama-server's
command line (with --port) is world-readable in /proc, so another local user can bind that port in
the moment before llama-server does and answer /health: the prompt must never go to that process."""
import os
import signal
import sys
import textwrap

import pytest

import inference_magics as im

SERVE = textwrap.dedent('''
    import json, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    port, answer, record = int(sys.argv[1]), sys.argv[2], sys.argv[3]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"status": "ok"}')

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with open(record, "ab") as out:
                out.write(body + b"\\n")
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            chunk = {"id": "x", "object": "chat.completion.chunk", "model": "m",
                     "choices": [{"index": 0, "delta": {"content": answer}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\\n\\n".encode())
            chunk["choices"] = [{"index": 0, "delta": {}, "finish_reason": "stop"}]
            self.wfile.write(f"data: {json.dumps(chunk)}\\n\\ndata: [DONE]\\n\\n".encode())

    HTTPServer(("127.0.0.1", port), Handler).serve_forever()
''')

FAKE_SERVER = textwrap.dedent('''
    #!{python}
    import os, subprocess, sys, time
    here = os.path.dirname(os.path.abspath(__file__))
    port = sys.argv[sys.argv.index("--port") + 1]
    if not os.path.exists(os.path.join(here, "squatted")):
        # the first start: another process takes our port first (as a user reading /proc would) ...
        open(os.path.join(here, "squatted"), "w").close()
        squatter = subprocess.Popen([sys.executable, os.path.join(here, "serve.py"), port, "IMPOSTOR",
                                     os.path.join(here, "impostor.log")], start_new_session=True)
        open(os.path.join(here, "impostor.pid"), "w").write(str(squatter.pid))
        time.sleep(1.0)  # ... while we load; then our bind fails, as llama-server reports it
        print("0.00.054.400 E srv         start: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: " + port,
              flush=True)
        print("0.00.054.519 E srv  llama_server: exiting due to HTTP server error", flush=True)
        sys.exit(1)
    os.execv(sys.executable, [sys.executable, os.path.join(here, "serve.py"), port, "HONEST",
                              os.path.join(here, "honest.log")])
''').lstrip()


@pytest.fixture
def squatted_server(tmp_path, monkeypatch):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "serve.py").write_text(SERVE)
    binary = fake / "llama-server"
    binary.write_text(FAKE_SERVER.replace("{python}", sys.executable))
    binary.chmod(0o755)
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setenv("INFERENCE_LOCAL_SERVER", str(binary))
    monkeypatch.setenv("INFERENCE_LOCAL_MODEL", str(model))
    monkeypatch.setenv("INFERENCE_LOCAL_IDLE_TIMEOUT", "1000")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    yield fake
    from inference_magics import backends

    for backend in list(backends._instances.values()):
        for server in getattr(backend, "_servers", {}).values():
            server.stop()
    if (fake / "impostor.pid").exists():
        try:
            os.kill(int((fake / "impostor.pid").read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_process_squatting_the_port_never_receives_the_prompt(squatted_server):
    result = im.infer("my PIN is 4812", backend="local", max_tokens=4)
    impostor_log = squatted_server / "impostor.log"
    assert not impostor_log.exists(), impostor_log.read_text()
    assert result.text == "HONEST"
    assert "4812" in (squatted_server / "honest.log").read_text()
