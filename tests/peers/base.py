"""Plumbing shared by the test peers: server thread, knobs, request log, stream writing.

Standard library only, so the peers import anywhere (notebooks, CI, a bare python).
"""
import json
import re
import select
import socket
import socketserver
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

# Knobs every peer has; each peer adds its own (see OllamaPeer.KNOBS / AnthropicPeer.KNOBS).
COMMON_KNOBS = {
    "tokens": 12,             # text tokens in a default reply
    "token_delay": 0.0,       # seconds between tokens
    "first_token_delay": 0.0, # seconds before the first token (after headers)
    "text": None,             # fixed reply text instead of "word0 word1 ..."
    "fault": None,            # fault name, see the peer's FAULTS
    "fault_after": 3,         # tokens written before a mid-stream fault
    "fail_times": None,       # the fault hits this many requests, then the peer heals
    "raw_stream": None,       # bytes (or a list of byte chunks) served verbatim as a streaming reply's body
    # tool calling: [{"name": ..., "arguments": {...}}] asked for when the request offers tools and
    # does not end with tool results; a request that ends with tool results is answered
    # "Tool results: <each result>" (so a test sees that a result reached the final answer)
    "tool_calls": None,
}
MID_STREAM_FAULTS = ("error_mid_stream", "drop_mid_stream", "malformed_line")


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str                 # without the query string
    headers: dict             # lower-case names
    body: object              # parsed JSON, or None (no body / not JSON)
    query: dict = field(default_factory=dict)
    time: float = 0.0         # time.monotonic() when the request was read


class ClientGone(Exception):
    """A write failed: the client closed the connection mid-stream."""


class Stopping(Exception):
    """The peer is shutting down; abandon the response quietly."""


def split_tokens(text):
    """Tokens that keep their leading whitespace; "".join(tokens) == text."""
    return re.findall(r"\s*\S+|\s+", text)


def reply_tokens(knobs, json_mode=False, schema=None):
    """The tokens a generation reply streams for these knobs. With a JSON schema (constrained
    output), a value that follows it, as a constrained model's answer would."""
    if knobs["text"] is not None:
        return split_tokens(knobs["text"])
    if isinstance(schema, dict) and schema.get("properties"):  # "any object" keeps the default reply
        return split_tokens(json.dumps(example_of(schema, schema)))
    words = [f"word{i}" if i == 0 else f" word{i}" for i in range(knobs["tokens"])]
    return ['{"answer": "', *words, '"}'] if json_mode else words


def example_of(schema, root, depth=0):
    """A small value that follows a JSON schema (objects, arrays, scalars, enums, anyOf, $ref)."""
    if not isinstance(schema, dict) or depth > 6:
        return None
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return example_of(target, root, depth + 1)
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return example_of(schema[key][0], root, depth + 1)
    kind = schema.get("type")
    kind = next((k for k in kind if k != "null"), "null") if isinstance(kind, list) else kind
    if kind == "object" or "properties" in schema:
        return {name: example_of(sub, root, depth + 1) for name, sub in (schema.get("properties") or {}).items()}
    return {"array": lambda: [example_of(schema.get("items") or {}, root, depth + 1)], "string": lambda: "word0",
            "integer": lambda: 7, "number": lambda: 0.5, "boolean": lambda: True}.get(kind, lambda: None)()


def planned_calls(knobs, offered_tools, after_results):
    """The tool calls to answer with (only tools the request offers: {name: parameters schema}),
    or [] to answer with text. tool_calls="auto" calls the first offered tool with arguments that
    follow its schema."""
    if after_results or not offered_tools or not knobs["tool_calls"]:
        return []
    if knobs["tool_calls"] == "auto":
        name, parameters = next(iter(offered_tools.items()))
        return [{"name": name, "arguments": example_of(parameters or {}, parameters or {}) or {}}]
    return [c for c in knobs["tool_calls"] if c["name"] in offered_tools]


def results_reply(results):
    return split_tokens("Tool results: " + " | ".join(results))


def count_words(*texts):
    return sum(len(t.split()) for t in texts if isinstance(t, str))


class _Server(ThreadingHTTPServer):
    daemon_threads = True      # a hung handler never keeps the process alive
    allow_reuse_address = True

    def __init__(self, addr, handler, peer):
        self.peer = peer
        self.conns = set()
        self.conns_lock = threading.Lock()
        super().__init__(addr, handler)

    def server_bind(self):
        # HTTPServer.server_bind calls getfqdn(), which can stall on hosts without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request, client_address):
        # Clients vanishing is routine here; anything else is a peer bug worth seeing.
        if not isinstance(sys.exc_info()[1], (ConnectionError, Stopping)):
            traceback.print_exc()


class Peer:
    """Base for OllamaPeer / AnthropicPeer. Subclasses set KNOBS, FAULTS, Handler."""

    KNOBS = {}
    FAULTS = ()
    Handler = None

    def __init__(self, port=0, host="127.0.0.1", **knobs):
        self._lock = threading.Lock()
        self._defaults = {**self.KNOBS, **self._checked(knobs)}  # reset() returns here
        self._knobs = dict(self._defaults)
        self._addr = (host, port)
        self._server = self._thread = None
        self._stopping = threading.Event()
        self._clear()

    # -- lifecycle --------------------------------------------------------
    def start(self):
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(self._addr, self.Handler, self)
            self._addr = self._server.server_address[:2]   # a restart reuses the port
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                name=f"{type(self).__name__}:{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self):
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()          # wakes hung handlers and token delays
        server.shutdown()
        with server.conns_lock:       # unblock keep-alive readers and streams
            for conn in list(server.conns):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        server.server_close()
        self._thread.join(2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1] if self._server else self._addr[1]

    @property
    def url(self):
        return f"http://{self._addr[0]}:{self.port}"

    # -- knobs --------------------------------------------------------------
    def _checked(self, knobs):
        unknown = set(knobs) - set(self.KNOBS)
        if unknown:
            raise TypeError(f"unknown knob(s) {sorted(unknown)}; known: {sorted(self.KNOBS)}")
        if knobs.get("fault") not in (None, *self.FAULTS):
            raise ValueError(f"unknown fault {knobs['fault']!r}; known: {self.FAULTS}")
        return knobs

    def set(self, **knobs):
        with self._lock:
            self._knobs.update(self._checked(knobs))
            if "fault" in knobs or "fail_times" in knobs:
                self._faults_used = 0     # fail_times counts from now
        return self

    @property
    def knobs(self):
        with self._lock:
            return dict(self._knobs)

    def reset(self):
        """Restore the constructor's knobs and clear records and counters."""
        with self._lock:
            self._knobs = dict(self._defaults)
            self._clear()
        return self

    def _clear(self):
        self._requests, self._disconnects, self._completed, self._faults_used = [], 0, 0, 0
        self._in_flight = self._peak_in_flight = 0

    def _take_fault(self, path):
        """The fault for this request (or None), consuming one of fail_times."""
        with self._lock:
            k = self._knobs
            if k["fault"] is None or path not in k["fault_paths"]:
                return None
            if k["fail_times"] is not None and self._faults_used >= k["fail_times"]:
                return None
            self._faults_used += 1
            return k["fault"]

    # -- records --------------------------------------------------------------
    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    def requests_to(self, path, method=None):
        return [r for r in self.requests if r.path == path and method in (None, r.method)]

    @property
    def disconnects(self):
        return self._disconnects

    @property
    def completed(self):
        return self._completed

    @property
    def in_flight(self):
        """Requests being answered right now."""
        return self._in_flight

    @property
    def peak_in_flight(self):
        """The most requests answered at once since the last reset (a concurrency ceiling check)."""
        return self._peak_in_flight

    def _enter(self, delta):
        with self._lock:
            self._in_flight += delta
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)

    def _record(self, rec):
        with self._lock:
            self._requests.append(rec)

    def _count(self, what, delta=1):
        with self._lock:
            setattr(self, what, getattr(self, what) + delta)

    def wait_until(self, predicate, timeout=2.0):
        """Poll predicate(self) until true or timeout; returns the last result."""
        deadline = time.monotonic() + timeout
        while not (ok := predicate(self)) and time.monotonic() < deadline:
            time.sleep(0.01)
        return ok

    def expected_text(self, n=None, json=False):
        """Exact reply text for the current knobs, cut to n tokens (as a max-token limit of n
        would). json=True gives the JSON-mode reply (Ollama `format`, Anthropic output_config)."""
        toks = reply_tokens(self.knobs, json)
        return "".join(toks if n is None else toks[:n])


class BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive + chunked streams, like the real servers
    ROUTES = {}                     # path -> (allowed methods, route name)
    JSON_CTYPE = "application/json"
    GARBAGE = "{not json\n"        # the malformed_line fault's line

    @property
    def peer(self):
        return self.server.peer

    def log_message(self, *args):   # quiet; tests read peer.requests instead
        pass

    def version_string(self):
        return ""

    def send_response(self, code, message=None):
        # Like BaseHTTPRequestHandler's, minus the "Server: BaseHTTP/..." header.
        self.log_request(code)
        self.answered = True
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def setup(self):
        super().setup()
        with self.server.conns_lock:
            self.server.conns.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.server.conns_lock:
                self.server.conns.discard(self.connection)

    # -- dispatch -------------------------------------------------------------
    def _dispatch(self):
        url = urlsplit(self.path)
        self.route = url.path
        self.query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self.raw_body = self._read_body()
        try:
            self.body = json.loads(self.raw_body) if self.raw_body else None
        except ValueError:
            self.body = None
        self.peer._record(Recorded(self.command, self.route,
                                   {k.lower(): v for k, v in self.headers.items()},
                                   self.body, self.query, time.monotonic()))
        self.knobs = self.peer.knobs   # one consistent snapshot per request
        self.t0 = time.perf_counter_ns()
        self.t_first = None
        self.fault = None              # the peer sets it once the route is known
        self.answered = False          # a status line went out
        self.peer._enter(1)
        try:
            self.handle_request()
        except (ClientGone, Stopping):
            self.close_connection = True
        except Exception as e:   # a peer bug: say so loudly rather than vanish
            traceback.print_exc()
            self.close_connection = True
            if not self.answered:
                self.send_body(500, f"test peer bug: {e!r}", "text/plain")
        finally:
            self.peer._enter(-1)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch

    def handle_request(self):
        raise NotImplementedError

    def _read_body(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while (size := int(self.rfile.readline().split(b";")[0], 16)):
                data += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return data
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    # -- plain responses ------------------------------------------------------
    def send_body(self, status, data, ctype, headers=()):
        if isinstance(data, str):
            data = data.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self._write(data)

    def send_json(self, status, obj, headers=()):
        self.send_body(status, self.dumps(obj), self.JSON_CTYPE, headers)

    @staticmethod
    def dumps(obj):
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

    # -- streams --------------------------------------------------------------
    def start_stream(self, ctype, headers=()):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()

    def write_chunk(self, data):
        if isinstance(data, str):
            data = data.encode()
        self._write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_stream(self):
        self._write(b"0\r\n\r\n")

    def run_stream(self, body):
        """Run body(), which writes a whole stream (ending with finish_stream() when it
        completes normally); a client that went away is counted in peer.disconnects."""
        try:
            body()
        except ClientGone:
            self.peer._count("_disconnects")
            raise

    def token_loop(self, tokens, write, skip_first_delay=False):
        """Write tokens with the knob delays. Returns (tokens written, fault that cut in or None);
        malformed_line is handled here: a corrupt line, then the stream carries on."""
        fault = self.fault if self.fault in MID_STREAM_FAULTS else None
        at = min(self.knobs["fault_after"], len(tokens)) if fault else -1
        for i in range(len(tokens) + 1):
            if i == at:
                if fault != "malformed_line":
                    return i, fault
                self.write_chunk(self.GARBAGE)
            if i == len(tokens):
                break
            if i == 0:
                self.pause(0 if skip_first_delay else self.knobs["first_token_delay"])
                self.t_first = time.perf_counter_ns()
            else:
                self.pause(self.knobs["token_delay"])
            write(tokens[i])
        return len(tokens), None

    def raw_stream(self, ctype):
        """Serve the raw_stream knob as the body of a 200 stream, exactly as given (each list item
        is one HTTP chunk), then end the body cleanly. True when the knob was set."""
        raw = self.knobs["raw_stream"]
        if raw is None:
            return False

        def body():
            self.start_stream(ctype)
            for piece in [raw] if isinstance(raw, (bytes, str)) else raw:
                if piece:   # an empty chunk would end the body early
                    self.write_chunk(piece)
            self.finish_stream()

        self.run_stream(body)
        return True

    def finish_stream(self):
        """Count the stream as completed, then write the terminating chunk: the count is
        visible before the client can see the end of the body."""
        self.peer._count("_completed")
        try:
            self.end_stream()
        except ClientGone:
            self.peer._count("_completed", -1)
            raise

    def _write(self, data):
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as e:
            if self.peer._stopping.is_set():
                raise Stopping from e
            raise ClientGone from e
        except OSError as e:   # e.g. the socket was shut down by stop()
            raise Stopping from e

    def pause(self, seconds):
        if seconds and self.peer._stopping.wait(seconds):
            raise Stopping

    def drop(self):
        """Close abruptly: a FIN with no terminating chunk / no response at all."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def network_fault(self, html_fault: str, page: str) -> bool:
        """Faults of the network path (a stalled connection, a slow or failing proxy), which come
        before any API check. True when the request has been answered (or abandoned)."""
        if self.fault == "hang":
            self.hang()
            return True
        if self.fault == "slow_headers":
            self.pause(self.knobs["first_token_delay"])
        if self.fault == html_fault:
            self.send_body(500, page, "text/html")
            return True
        return False

    def hang(self):
        """Never answer; give up when the peer stops or the client goes away."""
        while not self.peer._stopping.wait(0.05):
            if select.select([self.connection], [], [], 0)[0]:
                try:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        break
                except OSError:
                    break
        self.drop()
