"""A deterministic Anthropic Messages API server for tests; wire facts per Part A of
/work/shared/reference/anthropic-and-jupyter.md (named SSE events, error envelopes, pagination),
plus the Message Batches API (types in the SDK's anthropic/types/messages/message_batch*.py)."""
import base64
import hashlib
import itertools
import re
import string
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from .base import COMMON_KNOBS, BaseHandler, Peer, count_words, planned_calls, reply_tokens, results_reply

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
    "billing": (402, "billing_error", "There's an issue with your billing or payment information."),
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
        content = m.get("content")
        final_assistant = role == "assistant" and i == len(msgs) - 1
        if not final_assistant and (content == "" or content == []):
            return f"messages.{i}: all messages must have non-empty content except for the optional final assistant message"
        if isinstance(content, str) and content and not content.strip():
            return "messages: text content blocks must contain non-whitespace text"
        if final_assistant and isinstance(content, str) and content != content.rstrip():
            return "messages: final assistant content cannot end with trailing whitespace"
        for j, block in enumerate(content if isinstance(content, list) else ()):
            if isinstance(block, dict) and block.get("type") == "text":
                if not block.get("text"):
                    return f"messages.{i}.content.{j}.text: text content blocks must be non-empty"
                if not str(block["text"]).strip():
                    return "messages: text content blocks must contain non-whitespace text"
            if problem := media_problem(block, f"messages.{i}.content.{j}"):
                return problem
    if "system" in body and not isinstance(body["system"], (str, list)):
        return "system: Input should be a valid string"
    oc = body.get("output_config")
    if oc is not None and (not isinstance(oc, dict) or not isinstance(oc.get("format", {}), dict)):
        return "output_config: Input should be a valid dictionary"
    if oc is not None and (problem := schema_problem((oc.get("format") or {}).get("schema"))):
        return f"output_config.format.schema: {problem}"
    t = body.get("temperature")
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t <= 1):
        return "temperature: range: 0..1"
    return None


IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
# Structured outputs compile the schema to a grammar: numeric, string-length and array-size
# constraints are refused (minItems only 0 or 1), as Anthropic's "JSON Schema limitations" list;
# the SDK's transform_schema moves them into the description instead.
UNSUPPORTED_SCHEMA_KEYS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
                           "minLength", "maxLength", "maxItems", "uniqueItems", "minProperties", "maxProperties")


def schema_problem(schema):
    """What the API says of a structured-output schema using a constraint it does not support, or None."""
    if isinstance(schema, list):
        return next((p for p in map(schema_problem, schema) if p), None)
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type") if isinstance(schema.get("type"), str) else "schema"
    for key in UNSUPPORTED_SCHEMA_KEYS:
        if key in schema:
            return f"For '{kind}' type, property '{key}' is not supported"
    if schema.get("minItems", 0) not in (0, 1):
        return f"For '{kind}' type, property 'minItems' only supports values 0 or 1"
    subschemas = [schema.get(key) for key in ("items", "additionalProperties", "not", "anyOf", "allOf", "oneOf",
                                              "prefixItems")]
    subschemas += [list(schema.get(key).values()) for key in ("properties", "$defs", "definitions")
                   if isinstance(schema.get(key), dict)]
    return next((p for p in map(schema_problem, subschemas) if p), None)


def media_problem(block, where):
    """What the API says of a malformed base64 image or document block (its source), or None."""
    kind = block.get("type") if isinstance(block, dict) else None
    if kind not in ("image", "document"):
        return None
    source = block.get("source")
    if not isinstance(source, dict) or source.get("type") != "base64":
        return None  # url/file sources: not modelled here
    allowed = IMAGE_TYPES if kind == "image" else ("application/pdf",)
    if source.get("media_type") not in allowed:
        return (f"{where}.{kind}.source.base64.media_type: Input should be "
                + " or ".join(", ".join(f"'{t}'" for t in allowed).rsplit(", ", 1)))
    try:
        base64.b64decode(source.get("data") or "", validate=True)
    except (ValueError, TypeError):
        return f"{where}.{kind}.source.base64.data: The {kind} was specified using the base64 source type, but the data is not valid base64."
    if not source.get("data"):
        return f"{where}.{kind}.source.base64.data: String should have at least 1 character"
    return None


def reply_plan(body, knobs):
    """(tokens, stop reason) of the reply to a valid /v1/messages body under these knobs."""
    fmt = (body.get("output_config") or {}).get("format") or {}
    tokens = reply_tokens(knobs, json_mode=fmt.get("type") == "json_schema", schema=fmt.get("schema"))
    if body["max_tokens"] < len(tokens):
        return tokens[:body["max_tokens"]], "max_tokens"
    return tokens, knobs.get("stop_reason") or "end_turn"


def tool_turn(body):
    """(tool results the last user turn carries, or None; a problem the API would report, or None).
    Each tool_result must answer a tool_use of the assistant turn just before it."""
    msgs = body["messages"]
    last = msgs[-1].get("content")
    results = [b for b in last if isinstance(b, dict) and b.get("type") == "tool_result"] \
        if isinstance(last, list) else []
    if not results:
        return None, None
    before = msgs[-2].get("content") if len(msgs) > 1 and msgs[-2].get("role") == "assistant" else None
    asked = {b.get("id") for b in before if isinstance(b, dict) and b.get("type") == "tool_use"} \
        if isinstance(before, list) else set()
    for b in results:
        if b.get("tool_use_id") not in asked:
            return None, (f"messages.{len(msgs) - 1}.content: unexpected `tool_use_id` found in `tool_result` "
                          "blocks: each `tool_result` block must have a corresponding `tool_use` block in the "
                          "previous message.")
    if asked - {b.get("tool_use_id") for b in results}:
        return None, ("messages: `tool_use` ids were found without `tool_result` blocks immediately after: "
                      + ", ".join(sorted(asked - {b.get('tool_use_id') for b in results})))
    return [text_of(b.get("content")) for b in results], None


def message_object(msg_id, model, n_in, content, stop, out, written=0, read=0):
    """A Message object, as /v1/messages answers and message_start / batch results carry it.
    n_in is the input neither written to nor read from the prompt cache, as the API reports it."""
    return {"id": msg_id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": n_in, "cache_creation_input_tokens": written,
                      "cache_read_input_tokens": read, "output_tokens": out}}


# -- prompt caching -----------------------------------------------------------------
# The shortest prefix each model caches (tokens, here whitespace words); a shorter marked
# prefix is processed normally, silently, as the API does. Per Anthropic's prompt-caching page.
MIN_CACHEABLE = {"claude-opus-4-6": 4096, "claude-opus-4-5-20251101": 4096, "claude-haiku-4-5-20251001": 4096,
                 "claude-sonnet-4-6": 2048, "claude-sonnet-4-5-20250929": 1024}
CACHE_TTL_S = 300      # "ephemeral": five minutes, refreshed by every read
MAX_BREAKPOINTS = 4


def prompt_blocks(body):
    """The prompt in the order the cache sees it (system, then messages), as (block, words)."""
    system = body.get("system")
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) else list(system or [])
    for m in body.get("messages") or []:
        content = m.get("content") if isinstance(m, dict) else None
        blocks += ([{"type": "text", "text": content, "role": m.get("role")}] if isinstance(content, str)
                   else [dict(b, role=m.get("role")) for b in content or [] if isinstance(b, dict)])
    return [(b, count_words(b.get("text", ""))) for b in blocks]


def cache_breakpoints(body):
    """[(prefix key, prefix words)] for every block marked cache_control, shortest first, or an
    error message the API would give."""
    marks, seen, words = [], [], 0
    for block, n in prompt_blocks(body):
        words += n
        seen.append({k: v for k, v in block.items() if k != "cache_control"})
        control = block.get("cache_control")
        if control is None:
            continue
        if not isinstance(control, dict) or control.get("type") != "ephemeral":
            return None, "cache_control.type: Input should be 'ephemeral'"
        key = hashlib.sha256(repr((body.get("model"), seen)).encode()).hexdigest()
        marks.append((key, words))
    if len(marks) > MAX_BREAKPOINTS:
        return None, (f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
                      f"Found {len(marks)}.")
    return marks, None


def paginate(items, query):
    """(page, None) for a newest-first list endpoint (limit / after_id / before_id, as
    /v1/models and /v1/messages/batches page), or (None, the error message)."""
    try:
        limit = int(query.get("limit", 20))
    except ValueError:
        return None, "limit: Input should be a valid integer"
    if not 1 <= limit <= 1000:
        return None, "limit: Input should be between 1 and 1000"
    ids = [it["id"] for it in items]
    if query.get("after_id"):
        start = ids.index(query["after_id"]) + 1 if query["after_id"] in ids else len(ids)
        page, has_more = items[start:start + limit], start + limit < len(items)
    elif query.get("before_id"):
        end = ids.index(query["before_id"]) if query["before_id"] in ids else 0
        start = max(0, end - limit)
        page, has_more = items[start:end], start > 0
    else:
        page, has_more = items[:limit], limit < len(items)
    return {"data": page, "has_more": has_more, "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None}, None


# -- Message Batches -------------------------------------------------------------
BATCH_ROUTE = re.compile(r"/v1/messages/batches/([^/]+)(/cancel|/results)?")
CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
MAX_BATCH_REQUESTS = 100_000
BATCH_EXPIRY = 24 * 3600
RESULT_TYPES = ("succeeded", "errored", "canceled", "expired")


def rfc3339(t):
    """Epoch seconds as the API writes times ("2024-08-20T18:37:24.100435Z"); None stays None."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def batch_problem(body):
    """The first problem the API would report for a POST /v1/messages/batches body, or None.
    Only the envelope is checked here; each request's params are validated when it is
    processed and a bad one ends up an `errored` result, as the API documents."""
    if "requests" not in body:
        return "requests: Field required"
    reqs = body["requests"]
    if not isinstance(reqs, list):
        return "requests: Input should be a valid list"
    if not reqs:
        return "requests: List should have at least 1 item after validation, not 0"
    if len(reqs) > MAX_BATCH_REQUESTS:
        return (f"requests: List should have at most {MAX_BATCH_REQUESTS} items after "
                f"validation, not {len(reqs)}")
    seen = set()
    for i, r in enumerate(reqs):
        if not isinstance(r, dict):
            return f"requests.{i}: Input should be a valid dictionary"
        for name in ("custom_id", "params"):
            if name not in r:
                return f"requests.{i}.{name}: Field required"
        cid = r["custom_id"]
        if not isinstance(cid, str):
            return f"requests.{i}.custom_id: Input should be a valid string"
        if not CUSTOM_ID.fullmatch(cid):
            return f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
        if cid in seen:
            return (f"requests.{i}.custom_id: Duplicate custom_id {cid!r}; each custom_id must be "
                    "unique within a Message Batch")
        seen.add(cid)
        if not isinstance(r["params"], dict):
            return f"requests.{i}.params: Input should be a valid dictionary"
    return None


@dataclass(eq=False)
class Batch:
    """A Message Batch as the peer keeps it (peer.batches[id]). Time is simulated lazily: the
    batch ends `seconds` after creation; its requests finish evenly over that time, in input
    order, so a cancel cuts the ones not finished when it was initiated (ending
    `cancel_seconds` later). Results were worked out at creation, from that request's knobs."""
    id: str
    requests: list              # [{"custom_id", "params"}] as submitted
    answers: list               # per request, its result if processed: succeeded / errored
    results_url: str
    created: float              # epoch seconds
    seconds: float              # the batch_seconds knob at creation
    cancel_seconds: float       # the cancel_seconds knob at creation
    cancel_initiated: float = None
    ended: float = None
    outcomes: list = None       # per request, its final result once the batch has ended

    @property
    def status(self):
        if self.ended is not None:
            return "ended"
        return "in_progress" if self.cancel_initiated is None else "canceling"

    def advance(self, now):
        """Bring the batch up to `now` (epoch seconds)."""
        if self.ended is not None:
            return
        canceled = self.cancel_initiated is not None
        if canceled:
            end = self.cancel_initiated + self.cancel_seconds
        else:
            end = self.created + self.seconds
        if now < end:
            return
        n = len(self.answers)
        done = n
        if canceled and self.seconds > 0:
            done = min(n, int(n * (self.cancel_initiated - self.created) / self.seconds))
        self.ended = end
        self.outcomes = self.answers[:done] + [{"type": "canceled"} for _ in range(n - done)]

    def view(self):
        """The MessageBatch object."""
        counts = dict.fromkeys(("processing", *RESULT_TYPES), 0)
        if self.outcomes is None:
            counts["processing"] = len(self.requests)
        else:
            for o in self.outcomes:
                counts[o["type"]] += 1
        return {"id": self.id, "type": "message_batch", "processing_status": self.status,
                "request_counts": counts, "ended_at": rfc3339(self.ended),
                "created_at": rfc3339(self.created),
                "expires_at": rfc3339(self.created + BATCH_EXPIRY),
                "cancel_initiated_at": rfc3339(self.cancel_initiated),
                "results_url": self.results_url if self.ended is not None else None,
                "archived_at": None}

    def lines(self):
        """The results file's entries (MessageBatchIndividualResponse), in input order."""
        return [{"custom_id": r["custom_id"], "result": o}
                for r, o in zip(self.requests, self.outcomes or ())]


class AnthropicHandler(BaseHandler):
    ROUTES = {"/v1/messages": (("POST",), "messages"),
              "/v1/messages/count_tokens": (("POST",), "count_tokens"),
              "/v1/models": (("GET",), "models"),
              "/v1/messages/batches": (("GET", "POST"), "batches")}
    BATCH_ROUTES = {None: (("GET", "DELETE"), "batch"), "/cancel": (("POST",), "batch_cancel"),
                    "/results": (("GET",), "batch_results")}

    def end_headers(self):
        self.send_header("request-id", self.rid)   # on every response, like the API
        super().end_headers()

    def error(self, status, etype, message, headers=()):
        self.send_json(status, {"type": "error", "error": {"type": etype, "message": message},
                                "request_id": self.rid}, headers)

    def handle_request(self):
        self.rid = self.peer._new_id("req_011C", 20)
        batch = BATCH_ROUTE.fullmatch(self.route)
        if self.route.startswith("/v1/models/"):
            methods, name = ("GET",), "model"
        elif batch:
            self.batch_id = batch[1]
            methods, name = self.BATCH_ROUTES[batch[2]]
        else:
            methods, name = self.ROUTES.get(self.route, (None, None))
        if methods is None:
            return self.error(404, "not_found_error", "Not Found")
        if self.command not in methods:
            return self.error(405, "invalid_request_error", "Method Not Allowed")
        self.fault = self.peer._take_fault(self.route)
        if self.network_fault("html", HTML_500):
            return
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
        model, problem = self.peer.check(body, need_max_tokens)
        if problem is not None:
            return self.error(*problem), None
        return body, model

    # -- routes -------------------------------------------------------------------
    def route_count_tokens(self):
        body, _ = self.checked_body(need_max_tokens=False)
        if body is not None:
            self.send_json(200, {"input_tokens": input_tokens(body)})

    def route_models(self):
        page, problem = paginate(self.peer.models(), self.query)
        if problem is not None:
            return self.error(400, "invalid_request_error", problem)
        self.send_json(200, page)

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
        marks, problem = cache_breakpoints(body)
        if problem is not None:
            return self.error(400, "invalid_request_error", problem)
        k, n_in = self.knobs, input_tokens(body)
        written, read = self.peer.use_prompt_cache(model, marks)
        n_in -= written + read
        tokens, reason = reply_plan(body, k)
        results, problem = tool_turn(body)
        if problem is not None:
            return self.error(400, "invalid_request_error", problem)
        if results is not None:
            tokens = results_reply(results)
        offered = {t.get("name"): t.get("input_schema") for t in body.get("tools") or [] if isinstance(t, dict)}
        calls = [dict(c, id=self.peer._new_id("toolu_01", 22)) for c in planned_calls(k, offered, results is not None)]
        if calls:
            tokens, reason = [], "tool_use"
        slow = self.fault == "slow_headers"   # its delay was spent before the status line
        msg_id = self.peer._new_id("msg_01", 22)

        def message(content, stop, out):
            return message_object(msg_id, model, n_in, content, stop, out, written, read)

        if not body.get("stream"):
            if self.fault == "error_mid_stream":   # a one-shot reply can only fail whole
                return self.error(529, "overloaded_error", "Overloaded")
            if self.fault == "drop_mid_stream":
                return self.drop()
            if tokens:   # the generation still takes its time
                self.pause(0 if slow else k["first_token_delay"])
                self.pause(k["token_delay"] * (len(tokens) - 1))
            if calls:
                return self.send_json(200, message([{"type": "tool_use", "id": c["id"], "name": c["name"],
                                                     "input": c["arguments"]} for c in calls], reason, len(calls)))
            return self.send_json(200, message([{"type": "text", "text": "".join(tokens)}],
                                               reason, len(tokens)))

        if self.raw_stream("text/event-stream; charset=utf-8"):
            return

        def write_stream():
            self.start_stream("text/event-stream; charset=utf-8", [("Cache-Control", "no-cache")])

            def event(name, data):   # every event has an event: line, or the SDK skips it
                self.write_chunk(f"event: {name}\ndata: {self.dumps(data)}\n\n")

            event("message_start", {"type": "message_start", "message": message([], None, 1)})
            if calls:   # tool_use blocks: the input arrives as input_json_delta pieces of one JSON text
                # each piece is an output token: at max_tokens the arguments stop mid-JSON, the
                # block is closed as it is, and the stop reason is max_tokens (the tool use is cut)
                budget, stop, out = body["max_tokens"], "tool_use", len(calls)
                for i, c in enumerate(calls):
                    if not budget:
                        break
                    event("content_block_start", {"type": "content_block_start", "index": i, "content_block": {
                        "type": "tool_use", "id": c["id"], "name": c["name"], "input": {}}})
                    text = self.dumps(c["arguments"])
                    for piece in (text[j:j + 7] for j in range(0, len(text), 7)):
                        if not budget:
                            stop, out = "max_tokens", body["max_tokens"]
                            break
                        budget -= 1
                        event("content_block_delta", {"type": "content_block_delta", "index": i,
                                                      "delta": {"type": "input_json_delta", "partial_json": piece}})
                    event("content_block_stop", {"type": "content_block_stop", "index": i})
                event("message_delta", {"type": "message_delta",
                                        "delta": {"stop_reason": stop, "stop_sequence": None},
                                        "usage": {"output_tokens": out}})
                event("message_stop", {"type": "message_stop"})
                return self.finish_stream()
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
            if k["message_stop"]:   # off: the body ends cleanly but Claude never said it finished
                event("message_stop", {"type": "message_stop"})
            self.finish_stream()

        self.run_stream(write_stream)

    # -- Message Batches ----------------------------------------------------------
    def batch_answer(self, params):
        """The result a batch request gets if processed: what /v1/messages would answer for
        these params (non-streaming), as a MessageBatchSucceededResult or ...ErroredResult."""
        model, problem = self.peer.check(params, need_max_tokens=True)
        if problem is None and params.get("stream"):
            problem = (400, "invalid_request_error",
                       "stream: Streaming is not supported in the Message Batches API")
        if problem is not None:   # every params problem is an invalid request inside a batch
            return {"type": "errored", "error": {"type": "error", "error": {
                "type": "invalid_request_error", "message": problem[2]}}}
        tokens, reason = reply_plan(params, self.knobs)
        msg = message_object(self.peer._new_id("msg_01", 22), model, input_tokens(params),
                             [{"type": "text", "text": "".join(tokens)}], reason, len(tokens))
        return {"type": "succeeded", "message": msg}

    def route_batches(self):
        if self.command == "GET":
            page, problem = paginate(self.peer._advanced_batches(Batch.view)[::-1], self.query)
            if problem is not None:
                return self.error(400, "invalid_request_error", problem)
            return self.send_json(200, page)
        body = self.json_object()
        if body is None:
            return
        if (problem := batch_problem(body)) is not None:
            return self.error(400, "invalid_request_error", problem)
        reqs = [{"custom_id": r["custom_id"], "params": r["params"]} for r in body["requests"]]
        bid = self.peer._new_id("msgbatch_01", 22)
        batch = Batch(id=bid, requests=reqs, answers=[self.batch_answer(r["params"]) for r in reqs],
                      results_url=f"{self.peer.url}/v1/messages/batches/{bid}/results",
                      created=time.time(), seconds=self.knobs["batch_seconds"],
                      cancel_seconds=self.knobs["cancel_seconds"])
        with self.peer._lock:
            self.peer._batches[bid] = batch
            view = batch.view()   # always in_progress: processing starts after the answer
        self.send_json(200, view)

    def found_batch(self, action=None):
        """Bring the path's batch up to date and apply action(batch) (under the peer's lock);
        (batch, view, action's result), or None after answering 404."""
        with self.peer._lock:
            batch = self.peer._batches.get(self.batch_id)
            if batch is not None:
                batch.advance(time.time())
                done = action(batch) if action else None
                view = batch.view()
        if batch is None:
            return self.error(404, "not_found_error", f"Message Batch {self.batch_id} not found")
        return batch, view, done

    def route_batch(self):
        if self.command == "GET":
            if found := self.found_batch():
                self.send_json(200, found[1])
            return

        def delete(batch):
            if batch.status != "ended":
                return False
            del self.peer._batches[batch.id]
            return True

        if found := self.found_batch(delete):
            if not found[2]:
                return self.error(400, "invalid_request_error",
                                  f"Message Batch {self.batch_id} cannot be deleted while it is "
                                  "still processing; cancel it first")
            self.send_json(200, {"id": self.batch_id, "type": "message_batch_deleted"})

    def route_batch_cancel(self):
        def cancel(batch):
            if batch.status == "ended":
                return False
            if batch.cancel_initiated is None:   # answered "canceling"; ends cancel_seconds later
                batch.cancel_initiated = time.time()
            return True

        if found := self.found_batch(cancel):
            if not found[2]:
                return self.error(400, "invalid_request_error",
                                  f"Message Batch {self.batch_id} has already ended; it can no "
                                  "longer be canceled")
            self.send_json(200, found[1])

    def route_batch_results(self):
        found = self.found_batch()
        if not found:
            return
        batch = found[0]
        if batch.status != "ended":
            return self.error(400, "invalid_request_error",
                              f"Message Batch {self.batch_id} has not finished processing; its "
                              "results are not available yet")
        # With this results path in fault_paths, the stream faults hit the download:
        # error_mid_stream fails it whole (JSONL has no in-band error), drop_mid_stream cuts
        # the connection after fault_after lines.
        if self.fault == "error_mid_stream":
            return self.error(529, "overloaded_error", "Overloaded")
        cut = self.knobs["fault_after"] if self.fault == "drop_mid_stream" else -1
        self.start_stream("application/binary")   # what the SDK asks for (Accept)
        for i, entry in enumerate(batch.lines()):
            if i == cut:
                return self.drop()
            self.write_chunk(self.dumps(entry) + "\n")
        self.end_stream()


class AnthropicPeer(Peer):
    """Anthropic API on 127.0.0.1. Extra knobs: api_key, retry_after, message_stop (False: a stream
    ends cleanly without it), models (entries or ids), stop_reason (a text reply's stop reason instead of
    end_turn: refusal, model_context_window_exceeded, pause_turn, stop_sequence),
    aliases (alias -> id), fault_paths, batch_seconds (a Message Batch ends this long after
    creation), cancel_seconds (a canceled batch stays "canceling" this long).
    peer.batches: {id: Batch} of the Message Batches created (reset() clears them)."""

    KNOBS = {**COMMON_KNOBS, "api_key": "sk-ant-peer-test-key", "retry_after": "0", "message_stop": True,
             "models": DEFAULT_MODELS, "aliases": DEFAULT_ALIASES, "fault_paths": ("/v1/messages",),
             "batch_seconds": 0.0, "cancel_seconds": 0.0,
             "stop_reason": None}
    FAULTS = ("rate_limit", "overloaded", "server_error", "forbidden", "too_large", "billing",
              "error_mid_stream", "drop_mid_stream", "html", "hang", "slow_headers")
    Handler = AnthropicHandler

    def _clear(self):
        super()._clear()
        self._ids = itertools.count()
        self._batches = {}   # id -> Batch, in creation order
        self._prompt_cache = {}   # prefix key -> expiry (epoch seconds)

    def use_prompt_cache(self, model, marks):
        """(tokens written, tokens read) for a request with these cache breakpoints: the longest
        cached prefix is read (and its life renewed); longer marked prefixes long enough for the
        model are written."""
        minimum = MIN_CACHEABLE.get(model, 1024)
        now = time.time()
        with self._lock:
            read = 0
            for key, words in reversed(marks):
                if self._prompt_cache.get(key, 0) > now:
                    read = words
                    break
            written = 0
            for key, words in marks:
                if words >= minimum:
                    self._prompt_cache[key] = now + CACHE_TTL_S
                    if words > read:
                        written = words - read
        return written, read

    @property
    def batches(self):
        """{id: Batch}, oldest first, brought up to now."""
        return {b.id: b for b in self._advanced_batches()}

    def _advanced_batches(self, fn=None):
        """Every batch brought up to now, oldest first, or fn(batch) of each (under the lock)."""
        now = time.time()
        with self._lock:
            for b in self._batches.values():
                b.advance(now)
            return [fn(b) if fn else b for b in self._batches.values()]

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

    def check(self, body, need_max_tokens):
        """(model id, None) for a request body /v1/messages (or count_tokens) would run, else
        (None, (status, error type, message)) as it would answer."""
        if (problem := validate(body, need_max_tokens)) is not None:
            return None, (400, "invalid_request_error", problem)
        model = self.resolve(body["model"])
        if model is None:
            return None, (404, "not_found_error", f"model: {body['model']}")
        return model, None

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
