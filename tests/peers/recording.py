"""Two hostile stand-ins for the privacy tests, standard library only:

* RecordingProxy: a corporate HTTP proxy on loopback. It records every request it receives
  (absolute-form requests and CONNECT tunnels alike) and forwards plain-HTTP requests to a
  loopback target, so a client that honours the proxy (Claude's SDK) still gets its answer.
  CONNECT is refused (502): nothing here tunnels TLS.
* Redirector: a "server on this machine" that answers every request with a redirect to another
  server (whose own recording shows whether a client followed it).
"""
from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade"}


@dataclass(frozen=True)
class Seen:
    method: str
    target: str   # as the client wrote it: an absolute URL, host:port for CONNECT
    body: bytes


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner, handler):
        self.owner = owner
        super().__init__(("127.0.0.1", 0), handler)


class _Recorder:
    Handler: type

    def __init__(self):
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self._server = _Server(self, self.Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name=type(self).__name__)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while (size := int(self.rfile.readline().split(b";")[0], 16)):
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return data
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _reply(self, status: int, body: bytes = b"", headers=()) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _ProxyHandler(_Handler):
    def do_CONNECT(self):
        self.server.owner._record(Seen("CONNECT", self.path, b""))
        self.close_connection = True
        self._reply(502, b"this test proxy does not tunnel")

    def _forward(self):
        body = self._body()
        self.server.owner._record(Seen(self.command, self.path, body))
        target = urlsplit(self.path)
        if target.scheme != "http" or target.hostname not in ("127.0.0.1", "localhost"):
            return self._reply(502, b"this test proxy only forwards to loopback")
        upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"content-length"}}
        path = target.path + (f"?{target.query}" if target.query else "")
        try:
            upstream.request(self.command, path or "/", body=body or None, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()  # whole: a stream arrives in one piece, which is all a proxy owes
            kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}]
            self._reply(answer.status, data, kept)
        finally:
            upstream.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward


class RecordingProxy(_Recorder):
    Handler = _ProxyHandler

    def environment(self) -> dict[str, str]:
        """Every proxy variable a corporate laptop may have, pointing here (and no NO_PROXY)."""
        return {name: self.url for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                                            "ALL_PROXY", "all_proxy")}


class _RedirectHandler(_Handler):
    def _redirect(self):
        self.server.owner._record(Seen(self.command, self.path, self._body()))
        location = self.server.owner.location + self.path
        self._reply(self.server.owner.status, b"", [("Location", location)])

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _redirect


class Redirector(_Recorder):
    """Answers every request with `status` and `Location: <location><same path>`."""

    Handler = _RedirectHandler

    def __init__(self, location: str, status: int = 307):
        self.location, self.status = location.rstrip("/"), status
        super().__init__()
