"""The local Ollama server, through the official `ollama` client (httpx underneath)."""
from __future__ import annotations

import json
import time
from typing import Iterator

import httpx
import ollama
from pydantic import ValidationError

from ..errors import (AuthenticationFailed, BackendError, BackendUnavailable, InferenceError, ModelNotFound,
                      RateLimited)
from ..settings import CONNECT_TIMEOUT_S
from ..transport import RedirectRefused, client_options, get, shown_location
from .base import Done, Event, Health, ModelInfo, ModelLoad, Request, ThinkingDelta, ToolCall, Usage

# Ollama's load_duration for a model already in memory is its scheduler's few milliseconds; above
# this it loaded the model for this request, and that time is kept out of time-to-first-token
MODEL_LOAD_MIN_S = 0.05
SHOW_ERRORS = (ollama.ResponseError, ConnectionError, httpx.HTTPError, json.JSONDecodeError)


class OllamaBackend:
    name = "ollama"

    def __init__(self, settings):
        self.url = settings.ollama_base_url
        self._timeout_ms = settings.ollama_timeout
        # a short connect timeout so a stopped server is reported at once, a long read timeout
        # because a model may take a while to load before its first token
        # on this machine: straight to the address (no proxy), and never redirected (transport.py)
        self._client = ollama.Client(
            host=self.url, timeout=httpx.Timeout(settings.ollama_timeout / 1000, connect=CONNECT_TIMEOUT_S),
            **client_options(self.url, label="Ollama", var="OLLAMA_BASE_URL"))

    # --- generation -------------------------------------------------------------------------
    def stream(self, request: Request) -> Iterator[Event]:
        options = {}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        messages = [_wire_message(m) for m in request.messages]
        if request.attachments:  # images ride on the last user message as base64 (`images`, issue 16)
            at = request.last_user_turn()
            messages[at] = {**messages[at], "images": [a.b64() for a in request.attachments]}
        if request.system:
            messages.insert(0, {"role": "system", "content": request.system})
        call = dict(model=request.model, messages=messages, options=options or None,
                    format=request.schema or request.format or None, stream=request.stream)
        if request.tools:  # Ollama's tools: {"type": "function", "function": {name, description, parameters}}
            call["tools"] = [{"type": "function", "function": spec} for spec in request.tools]
        first = None
        try:
            asked = time.perf_counter()
            if not request.stream:
                reply = self._client.chat(**call)
                yield from self._deltas(reply.message)
                yield from self._load(reply, time.perf_counter() - asked)
                yield self._done(reply)
                return
            done = final = None
            for chunk in self._client.chat(**call):  # read to the end, so the connection goes back to the pool
                first = first or time.perf_counter() - asked
                # pydantic answers each attribute read through its __getattr__ hook (~470 instructions);
                # it keeps the validated fields in each model's __dict__, so two such reads a chunk and
                # plain subscripts do what six reads did (580 instructions a token less, 1%)
                fields = chunk.__dict__
                message = fields["message"]
                said = message.__dict__ if message is not None else None
                if said is not None and said["thinking"] is None and said["tool_calls"] is None:
                    if said["content"]:  # the common chunk, one token of text: no generator per chunk
                        yield said["content"]
                else:
                    yield from self._deltas(message)
                if fields["done"]:
                    done, final = self._done(chunk), chunk
            if done is not None:
                yield from self._load(final, first)
                yield done
                return
        except ValidationError as exc:
            final = _final_without_message(exc)
            if final is None:
                raise self._translate(exc, request.model) from None
            yield from self._load(final, first or time.perf_counter() - asked)
            yield self._done(final)
            return
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError, json.JSONDecodeError) as exc:
            raise self._translate(exc, request.model) from None
        except InferenceError:
            raise
        except Exception as exc:  # the client parses each line itself: a valid JSON line of the wrong shape
            # ([1,2,3], null, {"error": 5}) fails inside it with whatever its code tripped on
            raise self._not_ollama(type(exc).__name__) from None
        # a stream must end with done:true; anything else means the server went away
        raise BackendError(f"the Ollama stream from {self.url} ended without its final chunk — the partial answer "
                           "is kept; check the server log and run the cell again.")

    def _deltas(self, message) -> Iterator[Event]:
        if message is None:
            raise self._not_ollama("a chunk without its message")
        if message.thinking:
            yield ThinkingDelta(message.thinking)
        if message.content:
            yield message.content
        for call in message.tool_calls or ():  # Ollama gives no call ids: the name and order tell them apart
            self._calls = getattr(self, "_calls", 0) + 1
            yield ToolCall(f"call_{self._calls}", call.function.name, dict(call.function.arguments or {}))

    @staticmethod
    def _load(chunk, waited_s: float) -> Iterator[Event]:
        """The final chunk's load_duration (ns), when the server loaded the model for this request;
        a load happens before the first chunk, so it is never more than the wait for that chunk."""
        load = chunk.load_duration
        if isinstance(load, int) and load / 1e9 >= MODEL_LOAD_MIN_S:
            yield ModelLoad(min(load / 1e9, waited_s))

    @staticmethod
    def _done(chunk) -> Done:
        speed = None
        if chunk.eval_count and chunk.eval_duration:
            speed = chunk.eval_count / chunk.eval_duration * 1e9
        return Done(stop_reason=chunk.done_reason or "stop",
                    usage=Usage(chunk.prompt_eval_count or 0, chunk.eval_count or 0),
                    model=chunk.model, server_tokens_per_s=speed)

    # --- embeddings -------------------------------------------------------------------------
    def embed(self, texts: list[str], model: str) -> list[list[float]]:
        """One request for the whole batch: /api/embed takes a list and returns unit vectors. A server
        before v0.2.6 has no /api/embed (gin's plain `404 page not found`): its legacy /api/embeddings
        takes one prompt a request and returns a vector that is not normalised, so it is made unit length."""
        try:
            try:
                return list(self._client.embed(model=model, input=texts).embeddings)
            except ollama.ResponseError as exc:
                if exc.status_code != 404 or str(exc.error).strip() != "404 page not found":
                    raise
            return [_unit(self._client.embeddings(model=model, prompt=text).embedding) for text in texts]
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError, json.JSONDecodeError, ValidationError) as exc:
            raise self._translate(exc, model) from None
        except InferenceError:  # ours already (a refused redirect): one line as it is
            raise
        except Exception as exc:  # a reply of the wrong shape fails inside the client (e.g. a list, not an object)
            raise self._not_ollama(type(exc).__name__) from None

    # --- errors -----------------------------------------------------------------------------
    def _translate(self, exc: Exception, model: str) -> InferenceError:
        url = self.url
        if isinstance(exc, (ConnectionError, httpx.ConnectError, httpx.ConnectTimeout)):
            return BackendUnavailable(f"cannot connect to Ollama at {url} — start it with `ollama serve`, "
                                      "or set OLLAMA_BASE_URL to where it runs.")
        if isinstance(exc, httpx.TimeoutException):
            return BackendError(f"Ollama at {url} sent nothing for {self._timeout_ms} ms (OLLAMA_TIMEOUT) — the model "
                                "may still be loading; run the cell again or raise OLLAMA_TIMEOUT.")
        if isinstance(exc, httpx.HTTPError):
            return BackendError(f"the connection to Ollama at {url} broke mid-answer ({type(exc).__name__}) — the "
                                "partial answer is kept; check the server and run the cell again.")
        if isinstance(exc, (json.JSONDecodeError, ValidationError)):
            return self._not_ollama()
        error, status = str(exc.error), exc.status_code
        if status == -1:  # an {"error": ...} line after the stream had started
            return BackendError(f"Ollama failed mid-answer: {error} — the partial answer is kept; run the cell again "
                                "or check the server log.")
        if "<html" in error.lower() or "<!doctype" in error.lower():
            return BackendError(f"the server at {url} answered HTTP {status} with a web page, not the Ollama API — "
                                "check OLLAMA_BASE_URL.")
        if status == 404 and "model" in error and "not found" in error:
            return ModelNotFound(f"model {model!r} is not pulled on Ollama at {url} — run `ollama pull {model}`"
                                 f"{self._installed_hint()}.")
        if status == 404:
            return BackendError(f"the server at {url} does not speak the Ollama API ({error}) — check OLLAMA_BASE_URL.")
        if status == 503:
            return RateLimited(f"Ollama at {url} is busy ({error}) — wait a moment and run the cell again.")
        if status == 429:  # not the model's fault: the server (or ollama.com, for a *-cloud model) limits requests
            return RateLimited(f"Ollama at {url} is rate limiting requests ({error[:200]}) — wait a minute and run "
                               "the cell again (a *-cloud model counts against your ollama.com usage).")
        if status == 401:  # a *-cloud model, and this Ollama is not signed in to ollama.com (docs/api/authentication)
            return AuthenticationFailed(f"Ollama at {url} answered `{error[:100]}` for {model!r}: a cloud model needs the "
                                        "server signed in to ollama.com — run `ollama signin` there, or pick a local "
                                        "model (see %models).")
        if status == 400 and "does not support" in error:
            return ModelNotFound(f"Ollama says {error} — pick another model (see %models).")
        if status >= 500:  # the model failed on the server (runner crash, out of memory), or ollama.com for a cloud model
            return BackendError(f"Ollama answered HTTP {status}: {error[:300]} — Ollama failed on its side; check "
                                "its server log (a model too large for memory ends this way) and run the cell again.")
        return BackendError(f"Ollama answered HTTP {status}: {error[:300]} — check the model name and options.")

    def _not_ollama(self, what: str = "") -> BackendError:
        return BackendError(f"the server at {self.url} sent a reply that is not Ollama's protocol"
                            f"{f' ({what})' if what else ''} — check that OLLAMA_BASE_URL points at an Ollama server; "
                            "any partial answer is kept.")

    def _installed_hint(self) -> str:
        try:
            names = [m.name for m in self.list_models()]
        except InferenceError:
            return ""
        return f"; installed: {', '.join(names)}" if names else "; no models are installed yet"

    # --- discovery --------------------------------------------------------------------------
    def list_models(self) -> list[ModelInfo]:
        try:
            listing = self._client.list()
        except (ollama.ResponseError, ConnectionError, httpx.HTTPError, json.JSONDecodeError, ValidationError) as exc:
            raise self._translate(exc, "") from None
        except InferenceError:  # ours already (a refused redirect): one line as it is
            raise
        except Exception as exc:  # a reply of the wrong shape fails inside the client
            raise self._not_ollama(type(exc).__name__) from None
        models = []
        for m in listing.models:
            details = m.details
            models.append(ModelInfo(
                backend=self.name, name=m.model or "", kind="embed" if _is_embedding(m) else "chat", size=m.size,
                parameter_size=details.parameter_size if details else None,
                family=details.family if details else None,
                quantization=details.quantization_level if details else None,
                modified_at=m.modified_at.isoformat() if m.modified_at else None))
        return models

    def capabilities(self, model: str) -> list[str] | None:
        """What /api/show says this model can do (completion, vision, tools, ...); None when the
        server does not say (before v0.6.4). Read once per model (issue 16: vision)."""
        try:
            found = self._shown(model).get("capabilities")
        except SHOW_ERRORS as exc:
            raise self._translate(exc, model) from None
        return [str(c) for c in found] if isinstance(found, list) else None

    def forwarded_host(self, model: str) -> str | None:
        """Where this server sends the model's requests, if not to a model in its own memory: a
        cloud model and any model made FROM one (`ollama cp gpt-oss:120b-cloud big`, a Modelfile)
        carry /api/show `remote_host` (https://ollama.com:443) whatever their name. None when the
        server cannot tell: a model it does not have, a server from before cloud models (a 4xx) or
        no server at all (the request itself then fails the same way, or falls back where privacy
        allows); a server that answers wrongly is one line."""
        try:
            remote = self._shown(model).get("remote_host")
        except ollama.ResponseError as exc:
            if 400 <= exc.status_code < 500:
                return None
            raise self._translate(exc, model) from None
        except (ConnectionError, httpx.ConnectError, httpx.ConnectTimeout):
            return None
        except SHOW_ERRORS as exc:
            raise self._translate(exc, model) from None
        return shown_location(str(remote)) if remote else None  # server text, shown in a refusal

    def _shown(self, model: str) -> dict:
        """/api/show for this model, read once. Raw JSON: the client's ShowResponse drops the
        fields it does not know (`remote_host`, `remote_model`)."""
        cache = self.__dict__.setdefault("_show_cache", {})
        if model not in cache:
            reply = self._client._request_raw("POST", "/api/show", json={"model": model}).json()
            if not isinstance(reply, dict):
                raise json.JSONDecodeError("not an object", "", 0)  # a reply that is not Ollama's
            cache[model] = reply
        return cache[model]

    def health(self) -> Health:
        start = time.perf_counter()
        try:
            reply = get(f"{self.url}/api/version", label="Ollama", var="OLLAMA_BASE_URL",
                        timeout=httpx.Timeout(CONNECT_TIMEOUT_S))
            version = reply.json().get("version", "?") if reply.status_code == 200 else None
        except RedirectRefused as exc:
            return Health(False, exc.message, time.perf_counter() - start)
        except (httpx.HTTPError, ValueError, AttributeError):
            version = None
        latency = time.perf_counter() - start
        if version is None:
            return Health(False, f"no Ollama server at {self.url} — start it with `ollama serve`", latency)
        return Health(True, f"Ollama {version} at {self.url}", latency)


def _wire_message(message: dict) -> dict:
    """A neutral tool turn (backends/base.py) as Ollama's: tool_calls' arguments as objects, a
    tool result as role `tool` with `tool_name`."""
    if message.get("role") == "tool":
        return {"role": "tool", "content": message["content"], "tool_name": message.get("name")}
    if message.get("tool_calls"):
        return {"role": "assistant", "content": message.get("content") or "",
                "tool_calls": [{"function": {"name": c["name"], "arguments": c["arguments"]}}
                               for c in message["tool_calls"]]}
    return message


def _final_without_message(exc: ValidationError):
    """The final chunk, when the client refused it only for a missing `message`: docs/api.md's
    "Chat request (With History)" shows one (real servers always send a message). It still ends
    the answer and carries the counts; anything else the client refused is not Ollama's protocol."""
    errors = exc.errors()
    part = errors[0].get("input") if errors else None
    if not isinstance(part, dict) or part.get("done") is not True or \
            any(e.get("type") != "missing" or tuple(e.get("loc", ())) != ("message",) for e in errors):
        return None
    try:
        return ollama.ChatResponse(**{**part, "message": {"role": "assistant", "content": ""}})
    except ValidationError:
        return None


def _unit(vector) -> list[float]:
    """A legacy /api/embeddings vector at unit length, as /api/embed returns them."""
    norm = sum(x * x for x in vector) ** 0.5
    return [x / norm for x in vector] if norm else list(vector)


def _is_embedding(model) -> bool:
    """The official client drops /api/tags' `capabilities`, so tell by family and name: embedding
    models are BERT-family encoders or say so in their name (nomic-embed-text, all-minilm, bge-m3)."""
    family = (model.details.family or "") if model.details else ""
    name = (model.model or "").lower()
    return "bert" in family or any(word in name for word in ("embed", "minilm", "bge", "e5-"))
