"""A deterministic OpenAI-compatible server (/v1/models, /v1/chat/completions, /v1/embeddings)
for tests: the dialect llama.cpp's llama-server, vLLM, LM Studio and Ollama's /v1 speak, with
llama-server's extras (`timings`, `reasoning_content`, its 503 / 501 error bodies)."""
import base64
import hashlib
import itertools
import struct
import time

from .anthropic_peer import HTML_500
from .base import (COMMON_KNOBS, BaseHandler, Peer, count_words, planned_calls, reply_tokens, results_reply,
                   split_tokens)
from .ollama_peer import unit_vector

DEFAULT_MODELS = ("gemma-3-270m", "qwen2.5-7b-instruct", "nomic-embed-text-v1.5")
EMBEDDING_DIMS = 768
FINGERPRINT = "b0-peer"


def oai_error(message, etype="invalid_request_error", code=None, param=None):
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


NOT_FOUND = {"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}}
BAD_JSON = oai_error("We could not parse the JSON body of your request. (HINT: This likely means "
                     "you aren't using your HTTP library correctly. The API expects a JSON payload, "
                     "but what was sent was not valid JSON.)")
BAD_KEY = oai_error("Incorrect API key provided", code="invalid_api_key")
GEN_ERROR = {"error": {"message": "an error occurred while generating", "type": "server_error",
                       "code": 500}}
NO_EMBEDDINGS = {"error": {"code": 501, "type": "not_supported_error", "message":
                           "This server does not support embeddings. Start it with `--embeddings`"}}
# fault -> (status, body); answered after the auth check, before the body is looked at
API_FAULTS = {
    "rate_limit": (429, oai_error("Rate limit reached", "requests", "rate_limit_exceeded")),
    "server_error": (500, oai_error("The server had an error while processing your request. "
                                    "Sorry about that!", "server_error")),
    "loading_503": (503, {"error": {"code": 503, "message": "Loading model",
                                    "type": "unavailable_error"}}),
}


def text_of(content):
    """Plain text of a message content: a string or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return ""


def prompt_tokens(messages):
    return max(1, count_words(*(text_of(m.get("content")) for m in messages if isinstance(m, dict))))


def int_field(body, *names):
    """The first of names holding a real integer (not a bool), else None."""
    for name in names:
        v = body.get(name)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    return None


class OpenAIHandler(BaseHandler):
    JSON_CTYPE = "application/json; charset=utf-8"
    GARBAGE = "data: {not json\n\n"   # the malformed_line fault's event
    ROUTES = {"/v1/models": (("GET",), "models"),
              "/v1/chat/completions": (("POST",), "chat"),
              "/v1/embeddings": (("POST",), "embeddings")}

    def handle_request(self):
        methods, name = self.ROUTES.get(self.route, ((), None))
        if self.command not in methods:   # llama-server: one 404 for any unmatched method+path
            return self.send_json(404, NOT_FOUND)
        self.fault = self.peer._take_fault(self.route)
        if self.network_fault("html", HTML_500):
            return
        key = self.knobs["api_key"]
        if key is not None and self.headers.get("authorization") != f"Bearer {key}":
            return self.send_json(401, BAD_KEY)
        if self.fault in API_FAULTS:
            status, body = API_FAULTS[self.fault]
            extra = [("retry-after", str(self.knobs["retry_after"]))] if status == 429 else []
            return self.send_json(status, body, extra)
        getattr(self, "route_" + name)()

    # -- helpers ------------------------------------------------------------------
    def json_object(self):
        if not isinstance(self.body, dict):
            return self.send_json(400, BAD_JSON)
        return self.body

    def model_for(self, body):
        """The model name to answer with, or None after answering the error."""
        name = body.get("model")
        if name is None or name == "":
            if self.knobs["any_model"]:   # llama-server: the one model it serves
                return (self.peer.model_ids() or ["default"])[0]
            return self.send_json(400, oai_error("you must provide a model parameter"))
        if not isinstance(name, str) or self.peer.resolve(name) is None:
            return self.send_json(404, oai_error(f"The model `{name}` does not exist",
                                                 code="model_not_found"))
        return name

    def nonstream_fault(self):
        """Mid-stream faults on a one-shot reply: what a failing server would do instead."""
        if self.fault == "error_mid_stream":
            self.send_json(500, self.generation_error())
        elif self.fault == "drop_mid_stream":
            self.drop()
        elif self.fault == "malformed_line":
            self.send_body(200, "{not json", self.JSON_CTYPE)
        else:
            return False
        return True

    def generation_error(self):
        """The error a failed generation reports (its message set by the error_text knob)."""
        text = self.knobs["error_text"]
        return GEN_ERROR if text is None else {"error": {**GEN_ERROR["error"], "message": text}}

    def timings(self, n_prompt, n_predicted):
        """llama-server's `timings`, from this request's clock (first token = end of prompt)."""
        end = time.perf_counter_ns()
        first = self.t_first or end
        prompt_ms, predicted_ms = (first - self.t0) / 1e6, (end - first) / 1e6
        return {"cache_n": 0, "prompt_n": n_prompt, "prompt_ms": prompt_ms,
                "prompt_per_token_ms": prompt_ms / n_prompt,
                "prompt_per_second": 1e3 * n_prompt / prompt_ms if prompt_ms else 0.0,
                "predicted_n": n_predicted, "predicted_ms": predicted_ms,
                "predicted_per_token_ms": predicted_ms / n_predicted if n_predicted else 0.0,
                "predicted_per_second": 1e3 * n_predicted / predicted_ms if predicted_ms else 0.0}

    # -- routes -------------------------------------------------------------------
    def route_models(self):
        self.send_json(200, {"object": "list", "data": self.peer.models()})

    def route_chat(self):
        body = self.json_object()
        if body is None:
            return
        msgs = body.get("messages")
        if not isinstance(msgs, list) or not msgs:
            return self.send_json(400, oai_error("'messages' is required"))
        model = self.model_for(body)
        if model is None:
            return
        if self.knobs["reject_max_tokens"] and "max_tokens" in body:   # OpenAI's o-series and gpt-5
            return self.send_json(400, oai_error(
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                "'max_completion_tokens' instead.", param="max_tokens", code="unsupported_parameter"))
        model = self.knobs["reply_model"] or model   # the name the server reports may differ
        k, n_in = self.knobs, prompt_tokens(msgs)
        fmt = body.get("response_format")
        json_mode = isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema")
        thoughts = split_tokens(k["reasoning"]) if k["reasoning"] is not None else []
        schema = (fmt.get("json_schema") or {}).get("schema") if isinstance(fmt, dict) else None
        tokens = reply_tokens(k, json_mode, schema=schema if isinstance(schema, dict) else None)
        reason = k["finish_reason"] or "stop"
        after_results = isinstance(msgs[-1], dict) and msgs[-1].get("role") == "tool"
        if after_results:   # the results since the last assistant turn, each answering one of its calls
            tail = []
            for m in reversed(msgs):
                if not isinstance(m, dict) or m.get("role") != "tool":
                    asked = {c.get("id") for c in (m.get("tool_calls") or [])} if isinstance(m, dict) else set()
                    break
                tail.insert(0, m)
            else:
                asked = set()
            if any(m.get("tool_call_id") not in asked for m in tail):
                return self.send_json(400, oai_error("a 'tool' message must answer a tool_call_id of the "
                                                     "assistant message before it"))
            tokens = results_reply([str(m.get("content", "")) for m in tail])
        offered = {t["function"].get("name"): t["function"].get("parameters") for t in body.get("tools") or []
                   if isinstance(t, dict) and isinstance(t.get("function"), dict)}
        calls = [dict(c, id=f"call_{self.peer._new_id()[-24:]}") for c in planned_calls(k, offered, after_results)]
        if calls:
            thoughts, tokens, reason = [], [], "tool_calls"
        limit = int_field(body, "max_completion_tokens", "max_tokens")
        budget = limit if limit is not None and limit > 0 else None
        for c in calls:   # the arguments' text, a token per 7 characters: cut where max_tokens runs out
            c["text"] = self.dumps(c["arguments"])
            if budget is not None:
                if budget * 7 < len(c["text"]):
                    c["text"], reason = c["text"][:budget * 7], "length"
                budget = max(0, budget - -(-len(c["text"]) // 7))
        if limit is not None and 0 < limit < len(thoughts) + len(tokens):   # reasoning counts
            thoughts, tokens = thoughts[:limit], tokens[:max(0, limit - len(thoughts))]
            reason = "length"
        slow = self.fault == "slow_headers"   # its delay was spent before the status line
        cid, created = self.peer._new_id(), int(time.time())

        def usage(n):
            return {"prompt_tokens": n_in, "completion_tokens": n, "total_tokens": n_in + n}

        if not body.get("stream"):
            if self.nonstream_fault():
                return
            n = len(thoughts) + len(tokens)
            if n:   # the generation still takes its time
                self.pause(0 if slow else k["first_token_delay"])
                self.t_first = time.perf_counter_ns()
                self.pause(k["token_delay"] * (n - 1))
            message = {"role": "assistant", "content": "".join(tokens)}
            if calls:
                message = {"role": "assistant", "content": None, "tool_calls": [
                    {"id": c["id"], "type": "function",
                     "function": {"name": c["name"], "arguments": c["text"]}} for c in calls]}
            if k["reasoning"] is not None:
                message[k["reasoning_field"]] = "".join(thoughts)
            if k["refusal"] is not None:   # OpenAI: a refusal instead of the content
                message = {"role": "assistant", "content": None, "refusal": k["refusal"]}
            return self.send_json(200, {
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "system_fingerprint": FINGERPRINT,
                "choices": [{"index": 0, "message": message, "finish_reason": reason}],
                "usage": usage(n), "timings": self.timings(n_in, n)})

        opts = body.get("stream_options")
        want_usage = isinstance(opts, dict) and opts.get("include_usage") is True

        def chunk(delta, finish=None):
            return {"id": cid, "object": "chat.completion.chunk", "created": created,
                    "model": model, "system_fingerprint": FINGERPRINT,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        if self.raw_stream("text/event-stream"):
            return

        def write_stream():
            self.start_stream("text/event-stream", [("Cache-Control", "no-cache")])
            send = lambda obj: self.write_chunk(f"data: {self.dumps(obj)}\n\n")
            send(chunk({"role": "assistant", "content": None}))
            for i, c in enumerate(calls):   # the first piece names the call; its arguments follow in pieces
                first = {"name": c["name"]} if k["tool_call_style"] == "vllm" else {"name": c["name"], "arguments": ""}
                send(chunk({"tool_calls": [{"index": i, "id": c["id"], "type": "function", "function": first}]}))
                text = c["text"]
                for j in range(0, len(text), 7):
                    send(chunk({"tool_calls": [{"index": i, "function": {"arguments": text[j:j + 7]}}]}))
            t_first = None
            for i, t in enumerate(thoughts):   # reasoning first; faults count content tokens
                self.pause(k["token_delay"] if i else 0 if slow else k["first_token_delay"])
                t_first = t_first or time.perf_counter_ns()
                send(chunk({k["reasoning_field"]: t}))
            if thoughts and tokens:
                self.pause(k["token_delay"])
            if k["refusal"] is not None:   # OpenAI: the refusal streams in delta.refusal, not content
                send(chunk({"refusal": k["refusal"]}))
            n, fault = self.token_loop([] if k["refusal"] is not None else tokens, lambda t: send(chunk({"content": t})),
                                       skip_first_delay=slow or bool(thoughts))
            self.t_first = t_first or self.t_first
            if fault == "error_mid_stream" and k["error_field"]:   # llama-server before b6530 (PR #16109)
                self.write_chunk(f"error: {self.dumps(self.generation_error()['error'])}\n\n")
                self.write_chunk("data: [DONE]\n\n")
                return self.end_stream()   # a clean end: only the unknown field tells of the failure
            if fault == "error_mid_stream":   # status stays 200, no [DONE]
                send(self.generation_error())
                self.end_stream()
                self.close_connection = True
                return
            if fault == "drop_mid_stream":
                return self.drop()
            n += len(thoughts)
            timings = self.timings(n_in, n)
            send({**chunk({}, reason), **({} if want_usage else {"timings": timings})})
            if want_usage:
                send({**chunk({}), "choices": [], "usage": usage(n), "timings": timings})
            self.write_chunk("data: [DONE]\n\n")
            self.finish_stream()

        self.run_stream(write_stream)

    def route_embeddings(self):
        if not self.knobs["embeddings"]:
            return self.send_json(501, NO_EMBEDDINGS)
        body = self.json_object()
        if body is None:
            return
        inp = body.get("input")
        if inp is None:
            return self.send_json(400, oai_error("'input' is required"))
        texts = [inp] if isinstance(inp, str) else inp
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return self.send_json(400, oai_error("'input' must be a string or an array of strings"))
        if not texts or not all(texts):
            return self.send_json(400, oai_error("'input' cannot be empty"))
        fmt = body.get("encoding_format") or "float"
        if fmt not in ("float", "base64"):
            return self.send_json(400, oai_error("'encoding_format' must be 'float' or 'base64'"))
        model = self.model_for(body)
        if model is None or self.nonstream_fault():
            return

        def encode(vec):   # base64: the raw little-endian float32 array
            return base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode() \
                if fmt == "base64" else vec

        n = sum(max(1, count_words(t)) for t in texts)
        self.send_json(200, {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": encode(self.peer.embedding(t))}
                     for i, t in enumerate(texts)],
            "model": model, "usage": {"prompt_tokens": n, "total_tokens": n}})


class OpenAIPeer(Peer):
    """OpenAI-compatible server on 127.0.0.1; clients use base_url (url + "/v1"). Extra knobs:
    models (ids or /v1/models entries), any_model, api_key (None = no auth), retry_after,
    reasoning (text streamed as reasoning_content first), embeddings, fault_paths, reply_model
    (the `model` a chat reply reports, as OpenAI reports a dated id for an alias; None = the one
    asked for), error_text (the message of a failed generation; None = llama-server's), finish_reason
    (a text reply's instead of "stop", e.g. content_filter), reasoning_field ("reasoning_content" as
    llama-server and DeepSeek, "reasoning" as Ollama's /v1 and vLLM >= 0.11), tool_call_style
    ("openai": a call's first piece has `arguments: ""`; "vllm": only its name), error_field (an
    error_mid_stream is llama-server's old `error: {...}` SSE field, then `data: [DONE]`),
    reject_max_tokens (400 for `max_tokens`, as OpenAI for o-series and gpt-5 models), refusal (the
    text OpenAI streams in `delta.refusal` instead of an answer)."""

    KNOBS = {**COMMON_KNOBS, "models": DEFAULT_MODELS, "any_model": False, "api_key": None,
             "retry_after": "0", "reasoning": None, "embeddings": True, "reply_model": None, "error_text": None,
             "finish_reason": None, "reasoning_field": "reasoning_content", "tool_call_style": "openai",
             "error_field": False, "reject_max_tokens": False, "refusal": None,
             "fault_paths": ("/v1/chat/completions", "/v1/embeddings")}
    FAULTS = ("rate_limit", "server_error", "loading_503", "error_mid_stream", "drop_mid_stream",
              "malformed_line", "html", "hang", "slow_headers")
    Handler = OpenAIHandler

    def _clear(self):
        super()._clear()
        self._ids = itertools.count()

    @property
    def base_url(self):
        return self.url + "/v1"

    @property
    def api_key(self):
        return self.knobs["api_key"]

    def models(self):
        """The /v1/models entries for the current `models` knob."""
        created = int(time.time())
        return [{"id": m, "object": "model", "created": created, "owned_by": "llamacpp"}
                if isinstance(m, str) else m for m in self.knobs["models"]]

    def model_ids(self):
        return [m["id"] for m in self.models()]

    def resolve(self, name):
        """The model a request for `name` runs on, or None if the peer would answer 404."""
        return name if self.knobs["any_model"] or name in self.model_ids() else None

    def embedding(self, text):
        """The vector /v1/embeddings returns for text (float encoding)."""
        return unit_vector(text, EMBEDDING_DIMS)

    @property
    def embed_texts(self):
        """Every text sent to /v1/embeddings, in order."""
        out = []
        for r in self.requests_to("/v1/embeddings"):
            inp = r.body.get("input") if isinstance(r.body, dict) else None
            out += [inp] if isinstance(inp, str) else inp if isinstance(inp, list) else []
        return out

    def _new_id(self):
        """chatcmpl- plus 32 characters, as llama-server; deterministic per reset()."""
        with self._lock:
            n = next(self._ids)
        return "chatcmpl-" + hashlib.sha256(f"chatcmpl{n}".encode()).hexdigest()[:32]
