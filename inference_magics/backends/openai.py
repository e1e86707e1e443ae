"""Any OpenAI-compatible server (llama.cpp's llama-server, vLLM, LM Studio, Ollama's /v1).

Spoken with httpx rather than the `openai` SDK: the SDK costs about a second to import (measured:
1.0 s against httpx's 0.1 s, which Ollama's client loads anyway) and the protocol we need — SSE
chat completions, embeddings, the model list — is small. `OpenAIWire` is the protocol; the
`local` backend reuses it for its own llama-server.
"""
from __future__ import annotations

import json
import time
from contextlib import closing
from typing import Iterator

import httpx

from ..errors import (AuthenticationFailed, BackendError, BackendUnavailable, InferenceError, ModelNotFound,
                      RateLimited)
from ..settings import CONNECT_TIMEOUT_S
from ..transport import client_options
from .base import Done, Event, Health, ModelInfo, Request, ThinkingDelta, ToolCall, Usage, Waiting, wait_to_retry
from .retry import RetryBudget

RETRIES = 2  # for 429 and 503 ("Loading model") before any output, with backoff


class OpenAIWire:
    """The OpenAI chat-completions / embeddings / models protocol against one base URL."""

    def __init__(self, base_url: str, *, api_key=None, timeout_ms: int, label: str, fix: str, key_var: str = "",
                 url_var: str = "OPENAI_BASE_URL", max_wait_s: float = 60):
        self.url = base_url.rstrip("/")
        self.api_key = api_key  # a Secret or None; a wire is rebuilt, not re-keyed, when it changes
        self.label, self._fix, self._key_var, self._timeout_ms = label, fix, key_var, timeout_ms
        self._max_wait_s = max_wait_s  # the total a request may wait to retry (INFERENCE_MAX_RETRY_WAIT_S)
        self._url_var = url_var
        headers = {"Authorization": f"Bearer {api_key.get()}"} if api_key is not None else {}
        # on this machine: straight to the address (no proxy), and never redirected (transport.py)
        self._http = httpx.Client(base_url=self.url, headers=headers,
                                  timeout=httpx.Timeout(timeout_ms / 1000, connect=CONNECT_TIMEOUT_S),
                                  **client_options(self.url, label=label, var=url_var))

    def close(self) -> None:
        self._http.close()

    # --- chat ---------------------------------------------------------------------------------
    def stream(self, request: Request, model: str, extra_body: dict | None = None) -> Iterator[Event]:
        messages = [_wire_message(m) for m in request.messages]
        if request.attachments:  # content parts: the text, then each image as a data URL (issue 16)
            at = request.last_user_turn()
            messages[at] = {**messages[at], "content": [{"type": "text", "text": messages[at]["content"]}] + [
                {"type": "image_url", "image_url": {"url": a.data_url()}} for a in request.attachments]}
        if request.system:
            messages.insert(0, {"role": "system", "content": request.system})
        body = {"model": model, "messages": messages, "stream": request.stream}
        if request.schema:  # llama-server turns it into a grammar; vLLM and LM Studio constrain with it too
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": _schema_name(request.schema), "schema": request.schema}}
        if request.tools:
            body["tools"] = [{"type": "function", "function": spec} for spec in request.tools]
        if request.stream:
            body["stream_options"] = {"include_usage": True}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.format == "json" and not request.schema:
            body["response_format"] = {"type": "json_object"}
        body.update(extra_body or {})
        try:
            response = None
            for item in self._open("POST", "/chat/completions", body, model):
                if isinstance(item, Waiting):
                    yield item
                else:
                    response = item
            with closing(response):
                if request.stream:
                    yield from self._sse(response, model)
                else:
                    yield from self._whole(response.read(), model)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None

    def _send(self, method: str, path: str, body: dict | None, model: str = ""):
        """Open a streamed response, retrying 429/503 before any output; raise on other errors."""
        return next(item for item in self._open(method, path, body, model) if not isinstance(item, Waiting))

    def _open(self, method: str, path: str, body: dict | None, model: str = "") -> Iterator:
        """Yields a Waiting line before each retry of a 429/503 (then sleeps), and last the open
        response. The retries and their total wait are bounded (INFERENCE_MAX_RETRY_WAIT_S)."""
        budget = RetryBudget(RETRIES, self._max_wait_s)
        while True:
            response = self._http.send(self._http.build_request(method, path, json=body), stream=True)
            if response.status_code < 400:
                yield response
                return
            text = response.read().decode("utf-8", "replace")
            response.close()
            if response.status_code == 400 and body and "max_tokens" in body and "max_completion_tokens" in text:
                # OpenAI's o-series and gpt-5 models: "Unsupported parameter: 'max_tokens' ... Use
                # 'max_completion_tokens' instead." — the same limit, under its newer name
                body = {("max_completion_tokens" if k == "max_tokens" else k): v for k, v in body.items()}
                continue
            if response.status_code not in (429, 503):
                raise self._status_error(response.status_code, text, model, path=path)
            wait, asked = budget.next_wait(response.headers)
            if wait is None:
                raise self._status_error(response.status_code, text, model, budget.gave_up(asked))
            why = "rate limited by" if response.status_code == 429 else "busy (503):"
            yield from wait_to_retry(f"{why} {self.label}", wait)

    def _sse(self, response: httpx.Response, model: str) -> Iterator[Event]:
        stop, usage, speed, reported = None, Usage(), None, model
        calls: dict = {}  # streamed tool calls, by index: their arguments arrive in pieces
        for line in response.iter_lines():
            if line.startswith("error:"):  # llama-server before Sept. 2025: `error: {...}`, then [DONE]
                raise BackendError(f"{self.label} failed mid-answer: {_error_text(line[6:].strip())} — the partial "
                                   "answer is kept; run the cell again.")
            if not line.startswith("data:"):
                continue  # comments, blank separators, event: lines
            data = line[5:].strip()
            if data == "[DONE]":
                yield from self._tool_calls(calls, stop)
                yield Done(stop_reason=stop, usage=usage, model=reported, server_tokens_per_s=speed)
                return
            chunk = self._json(data)
            if "error" in chunk:
                raise BackendError(f"{self.label} failed mid-answer: {_error_text(chunk)} — the partial answer is "
                                   "kept; run the cell again.")
            for choice in self._choices(chunk):
                yield from self._deltas(choice, "delta")
                self._collect_calls(choice.get("delta"), calls)
                stop = _text(choice.get("finish_reason")) or stop
            reported, usage, speed = _text(chunk.get("model")) or reported, _usage(chunk) or usage, _speed(chunk) or speed
        raise BackendError(f"the stream from {self.label} at {self.url} ended before [DONE] — the partial answer is "
                           "kept; check the server and run the cell again.")

    def _whole(self, raw: bytes, model: str) -> Iterator[Event]:
        reply = self._json(raw)
        choice = next(iter(self._choices(reply)), {})
        yield from self._deltas(choice, "message")
        calls: dict = {}
        self._collect_calls(choice.get("message"), calls)
        yield from self._tool_calls(calls, _text(choice.get("finish_reason")))
        yield Done(stop_reason=_text(choice.get("finish_reason")), model=_text(reply.get("model")) or model,
                   usage=_usage(reply) or Usage(), server_tokens_per_s=_speed(reply))

    # what carries the answer must have the protocol's shape (else one line, partial kept);
    # metadata of the wrong type (model, finish_reason, usage, timings) is ignored
    def _choices(self, chunk: dict) -> list[dict]:
        choices = chunk.get("choices")
        if choices is None:
            return []
        if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
            raise self._not_openai(f"its choices are {_kind(choices)}, not a list of objects")
        return choices

    def _deltas(self, choice: dict, key: str) -> Iterator[Event]:
        delta = choice.get(key)
        if delta is None:
            return
        if not isinstance(delta, dict):
            raise self._not_openai(f"a choice's {key} is {_kind(delta)}")
        # thinking: `reasoning_content` (llama-server, DeepSeek) or `reasoning` (Ollama's /v1, vLLM
        # >= 0.11, OpenRouter), one of them; a refusal (OpenAI) is shown as the answer's text
        thinking = "reasoning_content" if delta.get("reasoning_content") is not None else "reasoning"
        for field in (thinking, "content", "refusal"):
            value = delta.get(field)
            if value is not None and not isinstance(value, str):
                if field == "reasoning":  # OpenRouter's request option of that name is an object
                    continue
                raise self._not_openai(f"{field} is {_kind(value)}, not text")
            if value:
                yield ThinkingDelta(value) if field == thinking else value

    def _collect_calls(self, delta, calls: dict) -> None:
        """Gather `tool_calls` pieces: the first piece of a call has its id and name, the rest add
        to its arguments (a JSON string)."""
        pieces = delta.get("tool_calls") if isinstance(delta, dict) else None
        if pieces is None:
            return
        if not isinstance(pieces, list) or not all(isinstance(p, dict) for p in pieces):
            raise self._not_openai(f"its tool_calls are {_kind(pieces)}, not a list of objects")
        for n, piece in enumerate(pieces):
            index = piece.get("index") if isinstance(piece.get("index"), int) else n
            call = calls.setdefault(index, {"id": "", "name": "", "arguments": ""})
            function = piece.get("function") if isinstance(piece.get("function"), dict) else {}
            call["id"] = _text(piece.get("id")) or call["id"]
            call["name"] += _text(function.get("name")) or ""
            arguments = function.get("arguments")  # absent from vLLM's first piece: nothing to add
            if arguments is not None:
                call["arguments"] += arguments if isinstance(arguments, str) else json.dumps(arguments)

    def _tool_calls(self, calls: dict, stop: str | None) -> Iterator[ToolCall]:
        ordered = sorted(calls.items())
        if stop == "length" and ordered:  # the last call was being written at the token limit: its
            ordered.pop()  # arguments are cut, so it is not run (the cell says to raise --max-tokens)
        for index, call in ordered:
            try:
                arguments = json.loads(call["arguments"] or "{}")
            except (ValueError, RecursionError):  # not JSON, or nested past the decoder's depth
                arguments = call["arguments"]  # the tool loop reports it to the model as an error
            yield ToolCall(call["id"] or f"call_{index}", call["name"], arguments)

    def _not_openai(self, what: str) -> BackendError:
        return BackendError(f"{self.label} at {self.url} sent a reply that is not the OpenAI API ({what}) — check "
                            "the URL; any partial answer is kept.")

    # --- models and embeddings ---------------------------------------------------------------
    def model_ids(self) -> list[str]:
        try:
            with closing(self._send("GET", "/models", None)) as response:
                listing = self._json(response.read())
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        models = listing.get("data") or []
        if not isinstance(models, list):
            raise self._not_openai(f"its model list is {_kind(models)}")
        return [m["id"] for m in models if isinstance(m, dict) and isinstance(m.get("id"), str)]

    def embed(self, texts: list[str], model: str) -> list[list[float]]:
        try:
            with closing(self._send("POST", "/embeddings", {"model": model, "input": texts}, model)) as response:
                reply = self._json(response.read())
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        items = reply.get("data") or []
        if not isinstance(items, list) or not all(isinstance(i, dict) and isinstance(i.get("embedding"), list)
                                                  for i in items):
            raise self._not_openai("its embeddings are not a list of {\"embedding\": [...]} objects")
        items = sorted(items, key=lambda i: i["index"] if isinstance(i.get("index"), int) else 0)
        return [item["embedding"] for item in items]

    def ping(self) -> float:
        """Seconds for a model listing; raises InferenceError when the server is not usable."""
        start = time.perf_counter()
        self.model_ids()
        return time.perf_counter() - start

    # --- errors -------------------------------------------------------------------------------
    def _json(self, data) -> dict:
        try:
            value = json.loads(data)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise BackendError(f"{self.label} at {self.url} sent a reply that is not the OpenAI API — check the URL; "
                               "any partial answer is kept.")
        return value

    def _transport_error(self, exc: httpx.HTTPError) -> InferenceError:
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
            return BackendUnavailable(f"cannot connect to {self.label} at {self.url} — {self._fix}")
        if isinstance(exc, httpx.TimeoutException):
            return BackendError(f"{self.label} at {self.url} sent nothing for {self._timeout_ms} ms — run the cell "
                                "again, or raise the timeout.")
        return BackendError(f"the connection to {self.label} at {self.url} broke mid-answer ({type(exc).__name__}) — "
                            "the partial answer is kept; run the cell again.")

    def _status_error(self, status: int, text: str, model: str, gave_up: str = "", path: str = "") -> InferenceError:
        detail = _error_text(text)
        if "<html" in text.lower() or "<!doctype" in text.lower():
            return BackendError(f"the server at {self.url} answered HTTP {status} with a web page, not an "
                                "OpenAI-compatible API — check the URL.")
        if status == 401 or status == 403:
            if not self._key_var:  # the local llama-server: its key is ours, from its state file
                return AuthenticationFailed(f"{self.label} rejected its API key (HTTP {status}) — {self._fix}")
            return AuthenticationFailed(f"{self.label} rejected the API key (HTTP {status}) — check {self._key_var}.")
        if status == 404 and "model" in detail.lower():
            return ModelNotFound(f"{self.label} has no model {model!r} ({detail}) — see %models for what it serves.")
        if status == 404:
            return BackendError(f"{self.label} at {self.url} has no {path or 'such endpoint'} (HTTP 404: {detail[:200]}) — "
                                f"check {self._url_var}: an OpenAI-compatible base URL usually ends in /v1.")
        if status == 429:
            return RateLimited(f"{self.label} is rate limiting requests (429) and {gave_up}")
        if status == 503:
            return RateLimited(f"{self.label} is not ready ({detail}, 503; it may still be loading its model) and "
                               f"{gave_up}")
        if status == 501:
            return BackendError(f"{self.label} does not support this ({detail}) — for embeddings, start it with "
                                "--embeddings or use another backend.")
        return BackendError(f"{self.label} answered HTTP {status}: {detail[:300]} — check the model and options.")


def _wire_message(message: dict) -> dict:
    """A neutral tool turn (backends/base.py) as the OpenAI protocol's: assistant `tool_calls`
    with JSON-string arguments, then one role `tool` message per result."""
    if message.get("role") == "tool":
        return {"role": "tool", "tool_call_id": message["tool_call_id"], "content": message["content"]}
    if message.get("tool_calls"):
        return {"role": "assistant", "content": message.get("content") or None,
                "tool_calls": [{"id": c["id"], "type": "function",
                                "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                               for c in message["tool_calls"]]}
    return message


def _schema_name(schema: dict) -> str:
    name = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in str(schema.get("title") or "answer"))
    return name[:64] or "answer"


def _error_text(payload) -> str:
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return payload.strip()[:300]
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error)


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}.get(
        type(value), "a number")


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _count_of(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _usage(reply: dict) -> Usage | None:
    usage = reply.get("usage")
    if not isinstance(usage, dict):
        return None
    return Usage(_count_of(usage.get("prompt_tokens")), _count_of(usage.get("completion_tokens")))


def _speed(reply: dict) -> float | None:
    timings = reply.get("timings")
    speed = timings.get("predicted_per_second") if isinstance(timings, dict) else None
    return float(speed) if isinstance(speed, (int, float)) and not isinstance(speed, bool) and speed > 0 else None


class OpenAIBackend:
    """OPENAI_BASE_URL, with an optional OPENAI_API_KEY."""

    name = "openai"

    def __init__(self, settings):
        self.wire = OpenAIWire(settings.openai_base_url, api_key=settings.openai_api_key,
                               timeout_ms=settings.openai_timeout, label="the OpenAI-compatible server",
                               fix="start it, or set OPENAI_BASE_URL to where it runs.", key_var="OPENAI_API_KEY",
                               max_wait_s=settings.max_retry_wait_s)
        self._default: str | None = None

    def _model(self, model: str) -> str:
        if model != "default":
            return model
        if self._default is None:  # the first model the server lists (llama-server serves exactly one)
            ids = self.wire.model_ids()
            if not ids:
                raise ModelNotFound(f"the OpenAI-compatible server at {self.wire.url} lists no models — load one, "
                                    "or set OPENAI_DEFAULT_MODEL.")
            self._default = ids[0]
        return self._default

    def stream(self, request: Request) -> Iterator[Event]:
        yield from self.wire.stream(request, self._model(request.model))

    def count_tokens(self, request: Request) -> int | None:
        """Input tokens by the server's tokenizer when it is llama-server (/apply-template and
        /tokenize beside /v1); None for any other server (asked once per kernel)."""
        from ..token_count import chat_messages, count_with_llama_server

        root = self.wire.url[:-3] if self.wire.url.endswith("/v1") else self.wire.url
        return count_with_llama_server(root, chat_messages(request), self.wire.api_key)

    def embed(self, texts: list[str], model: str) -> list[list[float]]:
        return self.wire.embed(texts, self._model(model))

    def list_models(self) -> list[ModelInfo]:
        return [ModelInfo(backend=self.name, name=i, kind="embed" if "embed" in i.lower() else "chat")
                for i in self.wire.model_ids()]

    def health(self) -> Health:
        try:
            latency = self.wire.ping()
        except InferenceError as exc:
            return Health(False, exc.message)
        return Health(True, f"OpenAI-compatible server at {self.wire.url}", latency)
