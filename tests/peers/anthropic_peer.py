"""A deterministic Anthropic Messages API server for tests; wire facts per Part A of
/work/shared/reference/anthropic-and-jupyter.md (named SSE events, error envelopes, pagination)."""
import hashlib
import itertools
import string

from .base import COMMON_KNOBS, BaseHandler, Peer, count_words, reply_tokens

# Newest first, as GET /v1/models lists them.
DEFAULT_MODELS = (
    {"type": "model", "id": "claude-sonnet-4-6", "display_name": "Claude Sonnet 4.6",
     "created_at": "2026-02-17T00:00:00Z"},
    {"type": "model", "id": "claude-opus-4-6", "display_name": "Claude Opus 4.6",
     "created_at": "2026-02-04T00:00:00Z"},
    {"type": "model", "id": "claude-opus-4-5-20251101", "display_name": "Claude Opus 4.5",
     "created_at": "2025-11-24T00:00:00Z"},
    {"type": "model", "id": "claude-haiku-4-5-20251001", "display_name": "Claude Haiku 4.5",
     "created_at": "2025-10-15T00:00:00Z"},
    {"type": "model", "id": "claude-sonnet-4-5-20250929", "display_name": "Claude Sonnet 4.5",
     "created_at": "2025-09-29T00:00:00Z"},
)
DEFAULT_ALIASES = {"claude-sonnet-4-5": "claude-sonnet-4-5-20250929",
                   "claude-opus-4-5": "claude-opus-4-5-20251101",
                   "claude-haiku-4-5": "claude-haiku-4-5-20251001"}
# fault -> (status, error type, message), answered as the API's JSON error envelope
API_FAULTS = {
    "rate_limit": (429, "rate_limit_error",
                   "This request would exceed the rate limit for your organization of 50 requests "
                   "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits."),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "server_error": (500, "api_error", "Internal server error"),
    "forbidden": (403, "permission_error",
                  "Your API key does not have permission to use the specified resource."),
    "too_large": (413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
}
HTML_500 = ("<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
            "<center><h1>500 Internal Server Error</h1></center>\r\n</body>\r\n</html>\r\n")
BAD_JSON = "There was an error parsing the body of your request. Please check that the body is valid JSON."
_B62 = string.digits + string.ascii_letters


def text_of(content):
    """Plain text of a message content / system value (string or list of blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def input_tokens(body):
    """Deterministic rough count: whitespace words of system + all messages (at least 1)."""
    msgs = body.get("messages") or []
    return max(1, count_words(text_of(body.get("system")),
                              *(text_of(m.get("content")) for m in msgs if isinstance(m, dict))))


def validate(body, need_max_tokens):
    """The first problem the API would report for this body, or None."""
    for name in ("model", "max_tokens", "messages") if need_max_tokens else ("model", "messages"):
        if name not in body:
            return f"{name}: Field required"
    if not isinstance(body["model"], str):
        return "model: Input should be a valid string"
    if need_max_tokens:
        mt = body["max_tokens"]
        if not isinstance(mt, int) or isinstance(mt, bool):
            return "max_tokens: Input should be a valid integer"
        if mt < 1:
            return "max_tokens: Input should be greater than or equal to 1"
    msgs = body["messages"]
    if not isinstance(msgs, list):
        return "messages: Input should be a valid list"
    if not msgs:
        return "messages: at least one message is required"
    for i, m in enumerate(msgs):
        role = m.get("role") if isinstance(m, dict) else None
        if role == "system":
            return ('messages: Unexpected role "system". The Messages API accepts a top-level '
                    '`system` parameter, not "system" as an input message role.')
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
    if "system" in body and not isinstance(body["system"], (str, list)):
        return "system: Input should be a valid string"
    oc = body.get("output_config")
    if oc is not None and (not isinstance(oc, dict) or not isinstance(oc.get("format", {}), dict)):
        return "output_config: Input should be a valid dictionary"
    t = body.get("temperature")
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 1):
        return "temperature: range: 0..1"
    return None


class AnthropicHandler(BaseHandler):
    ROUTES = {"/v1/messages": (("POST",), "messages"),
              "/v1/messages/count_tokens": (("POST",), "count_tokens"),
              "/v1/models": (("GET",), "models")}

    def end_headers(self):
        self.send_header("request-id", self.rid)   # on every response, like the API
        super().end_headers()

    def error(self, status, etype, message, headers=()):
        self.send_json(status, {"type": "error", "error": {"type": etype, "message": message},
                                "request_id": self.rid}, headers)

    def handle_request(self):
        self.rid = self.peer._new_id("req_011C", 20)
        if self.route.startswith("/v1/models/"):
            methods, name = ("GET",), "model"
        else:
            methods, name = self.ROUTES.get(self.route, (None, None))
        if methods is None:
            return self.error(404, "not_found_error", "Not Found")
        if self.command not in methods:
            return self.error(405, "invalid_request_error", "Method Not Allowed")
        self.fault = self.peer._take_fault(self.route)
        # Faults of the network path (proxy, stalled connection) come before the API checks.
        if self.fault == "hang":
            return self.hang()
        if self.fault == "slow_headers":
            self.pause(self.knobs["first_token_delay"])
        if self.fault == "html":
            return self.send_body(500, HTML_500, "text/html")
        if not self.authorised():
            return
        if "anthropic-version" not in self.headers:
            return self.error(400, "invalid_request_error", "anthropic-version: header is required")
        if self.fault in API_FAULTS:
            status, etype, msg = API_FAULTS[self.fault]
            extra = [("retry-after", str(self.knobs["retry_after"]))] if status == 429 else []
            return self.error(status, etype, msg, extra)
        getattr(self, "route_" + name)()

    def authorised(self):
        key = self.knobs["api_key"]
        x_key, auth = self.headers.get("x-api-key"), self.headers.get("authorization")
        if x_key == key or auth == f"Bearer {key}":
            return True
        if x_key is None and auth is None:
            self.error(401, "authentication_error", "x-api-key header is required")
        else:
            self.error(401, "authentication_error", "invalid x-api-key")
        return False

    def json_object(self):
        if not isinstance(self.body, dict):
            return self.error(400, "invalid_request_error", BAD_JSON)
        return self.body

    def checked_body(self, need_max_tokens):
        """Body and resolved model id, or (None, None) after answering the error."""
        body = self.json_object()
        if body is None:
            return None, None
        if (problem := validate(body, need_max_tokens)) is not None:
            return self.error(400, "invalid_request_error", problem), None
        model = self.peer.resolve(body["model"])
        if model is None:
            return self.error(404, "not_found_error", f"model: {body['model']}"), None
        return body, model

    # -- routes -------------------------------------------------------------------
    def route_count_tokens(self):
        body, _ = self.checked_body(need_max_tokens=False)
        if body is not None:
            self.send_json(200, {"input_tokens": input_tokens(body)})

    def route_models(self):
        q, models = self.query, self.peer.models()
        try:
            limit = int(q.get("limit", 20))
        except ValueError:
            return self.error(400, "invalid_request_error", "limit: Input should be a valid integer")
        if not 1 <= limit <= 1000:
            return self.error(400, "invalid_request_error", "limit: Input should be between 1 and 1000")
        ids = [m["id"] for m in models]
        if q.get("after_id"):
            start = ids.index(q["after_id"]) + 1 if q["after_id"] in ids else len(ids)
            page, has_more = models[start:start + limit], start + limit < len(models)
        elif q.get("before_id"):
            end = ids.index(q["before_id"]) if q["before_id"] in ids else 0
            start = max(0, end - limit)
            page, has_more = models[start:end], start > 0
        else:
            page, has_more = models[:limit], limit < len(models)
        self.send_json(200, {"data": page, "has_more": has_more,
                             "first_id": page[0]["id"] if page else None,
                             "last_id": page[-1]["id"] if page else None})

    def route_model(self):
        wanted = self.route[len("/v1/models/"):]
        model = self.peer.resolve(wanted)
        if model is None:
            return self.error(404, "not_found_error", f"model: {wanted}")
        self.send_json(200, next(m for m in self.peer.models() if m["id"] == model))

    def route_messages(self):
        body, model = self.checked_body(need_max_tokens=True)
        if body is None:
            return
        k, n_in = self.knobs, input_tokens(body)
        fmt = (body.get("output_config") or {}).get("format") or {}
        tokens = reply_tokens(k, json_mode=fmt.get("type") == "json_schema")
        reason = "end_turn"
        if body["max_tokens"] < len(tokens):
            tokens, reason = tokens[:body["max_tokens"]], "max_tokens"
        slow = self.fault == "slow_headers"   # its delay was spent before the status line
        msg_id = self.peer._new_id("msg_01", 22)

        def message(content, stop, out):
            return {"id": msg_id, "type": "message", "role": "assistant", "model": model,
                    "content": content, "stop_reason": stop, "stop_sequence": None,
                    "usage": {"input_tokens": n_in, "cache_creation_input_tokens": 0,
                              "cache_read_input_tokens": 0, "output_tokens": out}}

        if not body.get("stream"):
            if self.fault == "error_mid_stream":   # a one-shot reply can only fail whole
                return self.error(529, "overloaded_error", "Overloaded")
            if self.fault == "drop_mid_stream":
                return self.drop()
            if tokens:   # the generation still takes its time
                self.pause(0 if slow else k["first_token_delay"])
                self.pause(k["token_delay"] * (len(tokens) - 1))
            return self.send_json(200, message([{"type": "text", "text": "".join(tokens)}],
                                               reason, len(tokens)))

        def write_stream():
            self.start_stream("text/event-stream; charset=utf-8", [("Cache-Control", "no-cache")])

            def event(name, data):   # every event has an event: line, or the SDK skips it
                self.write_chunk(f"event: {name}\ndata: {self.dumps(data)}\n\n")

            event("message_start", {"type": "message_start", "message": message([], None, 1)})
            event("content_block_start", {"type": "content_block_start", "index": 0,
                                          "content_block": {"type": "text", "text": ""}})
            event("ping", {"type": "ping"})
            n, fault = self.token_loop(tokens, lambda t: event("content_block_delta", {
                "type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": t}}), skip_first_delay=slow)
            if fault == "error_mid_stream":
                event("error", {"type": "error",
                                "error": {"type": "overloaded_error", "message": "Overloaded"}})
                self.end_stream()
                self.close_connection = True
                return
            if fault == "drop_mid_stream":
                return self.drop()
            event("content_block_stop", {"type": "content_block_stop", "index": 0})
            event("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": reason, "stop_sequence": None},
                                    "usage": {"output_tokens": n}})   # cumulative
            event("message_stop", {"type": "message_stop"})
            self.finish_stream()

        self.run_stream(write_stream)


class AnthropicPeer(Peer):
    """Anthropic API on 127.0.0.1. Extra knobs: api_key, retry_after, models (entries or ids),
    aliases (alias -> id), fault_paths."""

    KNOBS = {**COMMON_KNOBS, "api_key": "sk-ant-peer-test-key", "retry_after": "0",
             "models": DEFAULT_MODELS, "aliases": DEFAULT_ALIASES, "fault_paths": ("/v1/messages",)}
    FAULTS = ("rate_limit", "overloaded", "server_error", "forbidden", "too_large",
              "error_mid_stream", "drop_mid_stream", "html", "hang", "slow_headers")
    Handler = AnthropicHandler

    def _clear(self):
        super()._clear()
        self._ids = itertools.count()

    @property
    def api_key(self):
        return self.knobs["api_key"]

    def models(self):
        return [m if isinstance(m, dict) else
                {"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
                for m in self.knobs["models"]]

    def resolve(self, name):
        """The model id a request for `name` runs on (aliases resolved), or None if unknown."""
        name = self.knobs["aliases"].get(name, name)
        return name if any(m["id"] == name for m in self.models()) else None

    def _new_id(self, prefix, length):
        """Realistic-looking, deterministic ids (msg_01…, req_011C…)."""
        with self._lock:
            n = next(self._ids)
        digest = int.from_bytes(hashlib.sha256(f"{prefix}{n}".encode()).digest(), "big")
        chars = []
        for _ in range(length):
            digest, r = divmod(digest, 62)
            chars.append(_B62[r])
        return prefix + "".join(chars)
