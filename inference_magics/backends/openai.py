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
from .base import Done, Event, Health, ModelInfo, Request, TextDelta, ThinkingDelta, Usage

RETRIES = 2  # for 429 and 503 ("Loading model") before any output, with backoff


class OpenAIWire:
    """The OpenAI chat-completions / embeddings / models protocol against one base URL."""

    def __init__(self, base_url: str, *, api_key=None, timeout_ms: int, label: str, fix: str, key_var: str = "",
                 url_var: str = "OPENAI_BASE_URL"):
        self.url = base_url.rstrip("/")
        self.label, self._fix, self._key_var, self._timeout_ms = label, fix, key_var, timeout_ms
        headers = {"Authorization": f"Bearer {api_key.get()}"} if api_key is not None else {}
        # on this machine: straight to the address (no proxy), and never redirected (transport.py)
        self._http = httpx.Client(base_url=self.url, headers=headers,
                                  timeout=httpx.Timeout(timeout_ms / 1000, connect=CONNECT_TIMEOUT_S),
                                  **client_options(self.url, label=label, var=url_var))

    def close(self) -> None:
        self._http.close()

    # --- chat ---------------------------------------------------------------------------------
    def stream(self, request: Request, model: str, extra_body: dict | None = None) -> Iterator[Event]:
        messages = list(request.messages)
        if request.system:
            messages.insert(0, {"role": "system", "content": request.system})
        body = {"model": model, "messages": messages, "stream": request.stream}
        if request.stream:
            body["stream_options"] = {"include_usage": True}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.format == "json":
            body["response_format"] = {"type": "json_object"}
        body.update(extra_body or {})
        try:
            with closing(self._send("POST", "/chat/completions", body, model)) as response:
                if request.stream:
                    yield from self._sse(response, model)
                else:
                    yield from self._whole(response.read(), model)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None

    def _send(self, method: str, path: str, body: dict | None, model: str = ""):
        """Open a streamed response, retrying 429/503 before any output; raise on other errors."""
        for attempt in range(RETRIES + 1):
            response = self._http.send(self._http.build_request(method, path, json=body), stream=True)
            if response.status_code < 400:
                return response
            text = response.read().decode("utf-8", "replace")
            response.close()
            if response.status_code in (429, 503) and attempt < RETRIES:
                time.sleep(_backoff(response, attempt))
                continue
            raise self._status_error(response.status_code, text, model)
        raise AssertionError("unreachable")

    def _sse(self, response: httpx.Response, model: str) -> Iterator[Event]:
        stop, usage, speed, reported = None, Usage(), None, model
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # comments, blank separators, event: lines
            data = line[5:].strip()
            if data == "[DONE]":
                yield Done(stop_reason=stop, usage=usage, model=reported, server_tokens_per_s=speed)
                return
            chunk = self._json(data)
            if "error" in chunk:
                raise BackendError(f"{self.label} failed mid-answer: {_error_text(chunk)} — the partial answer is "
                                   "kept; run the cell again.")
            reported = chunk.get("model") or reported
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                if delta.get("reasoning_content"):
                    yield ThinkingDelta(delta["reasoning_content"])
                if delta.get("content"):
                    yield TextDelta(delta["content"])
                stop = choice.get("finish_reason") or stop
            if chunk.get("usage"):
                usage = Usage(chunk["usage"].get("prompt_tokens") or 0, chunk["usage"].get("completion_tokens") or 0)
            speed = (chunk.get("timings") or {}).get("predicted_per_second") or speed
        raise BackendError(f"the stream from {self.label} at {self.url} ended before [DONE] — the partial answer is "
                           "kept; check the server and run the cell again.")

    def _whole(self, raw: bytes, model: str) -> Iterator[Event]:
        reply = self._json(raw)
        choice = (reply.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        if message.get("reasoning_content"):
            yield ThinkingDelta(message["reasoning_content"])
        yield TextDelta(message.get("content") or "")
        usage = reply.get("usage") or {}
        yield Done(stop_reason=choice.get("finish_reason"), model=reply.get("model") or model,
                   usage=Usage(usage.get("prompt_tokens") or 0, usage.get("completion_tokens") or 0),
                   server_tokens_per_s=(reply.get("timings") or {}).get("predicted_per_second"))

    # --- models and embeddings ---------------------------------------------------------------
    def model_ids(self) -> list[str]:
        try:
            with closing(self._send("GET", "/models", None)) as response:
                listing = self._json(response.read())
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        return [m.get("id", "") for m in listing.get("data") or ()]

    def embed(self, texts: list[str], model: str) -> list[list[float]]:
        try:
            with closing(self._send("POST", "/embeddings", {"model": model, "input": texts}, model)) as response:
                reply = self._json(response.read())
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from None
        return [item["embedding"] for item in sorted(reply.get("data") or (), key=lambda d: d.get("index", 0))]

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

    def _status_error(self, status: int, text: str, model: str) -> InferenceError:
        detail = _error_text(text)
        if "<html" in text.lower() or "<!doctype" in text.lower():
            return BackendError(f"the server at {self.url} answered HTTP {status} with a web page, not an "
                                "OpenAI-compatible API — check the URL.")
        if status == 401 or status == 403:
            return AuthenticationFailed(f"{self.label} rejected the API key (HTTP {status}) — check {self._key_var}.")
        if status == 404 and "model" in detail.lower():
            return ModelNotFound(f"{self.label} has no model {model!r} ({detail}) — see %models for what it serves.")
        if status == 429:
            return RateLimited(f"{self.label} is rate limiting requests (429) after {RETRIES} retries — wait and "
                               "run the cell again.")
        if status == 503:
            return RateLimited(f"{self.label} is not ready ({detail}, 503) after {RETRIES} retries — it may still "
                               "be loading its model; run the cell again in a moment.")
        if status == 501:
            return BackendError(f"{self.label} does not support this ({detail}) — for embeddings, start it with "
                                "--embeddings or use another backend.")
        return BackendError(f"{self.label} answered HTTP {status}: {detail[:300]} — check the model and options.")


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


def _backoff(response: httpx.Response, attempt: int) -> float:
    try:
        return min(float(response.headers.get("retry-after", "")), 8.0)
    except ValueError:
        return min(0.5 * 2 ** attempt, 8.0)


class OpenAIBackend:
    """OPENAI_BASE_URL, with an optional OPENAI_API_KEY."""

    name = "openai"

    @classmethod
    def config_key(cls, settings) -> tuple:
        return (settings.openai_base_url, settings.openai_api_key, settings.openai_timeout)

    def __init__(self, settings):
        self.wire = OpenAIWire(settings.openai_base_url, api_key=settings.openai_api_key,
                               timeout_ms=settings.openai_timeout, label="the OpenAI-compatible server",
                               fix="start it, or set OPENAI_BASE_URL to where it runs.", key_var="OPENAI_API_KEY")
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
