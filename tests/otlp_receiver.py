"""A real OTLP/HTTP trace receiver on loopback: accepts POST /v1/traces (protobuf, optionally
gzip), decodes each ExportTraceServiceRequest with the official `opentelemetry-proto` definitions,
answers as a collector does, and keeps every raw byte it received (for leak checks).

    with OtlpReceiver() as receiver:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.url
        ...
        receiver.spans()  # [Span(name, trace_id, span_id, parent_id, kind, attributes, events, status), ...]
"""
from __future__ import annotations

import gzip
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str  # "" for a root span
    kind: int       # the OTLP enum: 1 internal, 3 client
    start_ns: int
    end_ns: int
    attributes: dict
    events: list = field(default_factory=list)  # [(name, time_ns, attributes)]
    status_code: int = 0  # 0 unset, 1 ok, 2 error
    status_message: str = ""
    resource: dict = field(default_factory=dict)


def _value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in any_value.kvlist_value.values}
    return getattr(any_value, kind) if kind else None


def _attributes(pairs) -> dict:
    return {kv.key: _value(kv.value) for kv in pairs}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with receiver.lock:
            receiver.raw.append(body)
            receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
        if self.path != "/v1/traces":
            return self._answer(404, b"not found", "text/plain")
        encoding = (self.headers.get("Content-Encoding") or "").lower()
        data = gzip.decompress(body) if encoding == "gzip" else zlib.decompress(body) if encoding == "deflate" else body
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(data)
        except Exception:
            return self._answer(400, b"not an ExportTraceServiceRequest", "text/plain")
        with receiver.lock:
            receiver.requests.append(request)
        self._answer(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")

    def _answer(self, status: int, body: bytes, kind: str):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class OtlpReceiver:
    def __init__(self):
        self.lock = threading.Lock()
        self.raw: list[bytes] = []
        self.headers: list[dict] = []
        self.requests: list[ExportTraceServiceRequest] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.receiver = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="otlp-receiver", daemon=True)

    @property
    def url(self) -> str:
        """The base URL (what OTEL_EXPORTER_OTLP_ENDPOINT takes)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "OtlpReceiver":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.raw.clear()
            self.headers.clear()
            self.requests.clear()

    def everything(self) -> bytes:
        with self.lock:
            return b"".join(self.raw)

    def spans(self) -> list[Span]:
        found = []
        with self.lock:
            requests = list(self.requests)
        for request in requests:
            for resource_spans in request.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope_spans in resource_spans.scope_spans:
                    for s in scope_spans.spans:
                        found.append(Span(
                            s.name, s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(), s.kind,
                            s.start_time_unix_nano, s.end_time_unix_nano, _attributes(s.attributes),
                            [(e.name, e.time_unix_nano, _attributes(e.attributes)) for e in s.events],
                            s.status.code, s.status.message, resource))
        return found
