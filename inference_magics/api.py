"""The Python API (a contract: magics, widgets, notebooks and tests all go through it).

    im.route(prompt, ...) -> Route         where a prompt would go, and why; calls no model
    im.stream(prompt, ...) -> Stream       iterate text deltas; .result after exhaustion
    im.infer(prompt, ...) -> Result        the whole answer
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field, replace
from functools import partial
from datetime import datetime, timezone
from typing import Any, Iterator

from . import policy, routing, settings as settings_module, telemetry
from .backends import get_backend, not_installed, spec
from .backends.base import Done, ModelLoad, Notice, Request, ThinkingDelta, ToolCall, Usage, Waiting
from .errors import (BackendError, BackendUnavailable, ConfigError, Incomplete, InferenceError,
                     InferenceInterrupted)
from .interpolate import wire_safe
from .pricing import estimate_cost
from .routing import Route

MAX_TOKENS_LIMIT = 1_000_000
MAX_TOKEN_COUNT = 10**12  # a token count past this is not a count (and would overflow SQLite and the cost)
EMPTY_ANSWER = ("the model returned an empty answer — ask again, rephrase, or pick a larger model "
                "(%models lists them).")


@dataclass
class Metrics:
    ttft_s: float | None = None       # time to first token, from the call (less any model load)
    load_s: float | None = None       # time the backend spent loading its model first (embedded model)
    total_s: float | None = None
    tokens_per_s: float | None = None  # output tokens over the streaming time


@dataclass
class Result:
    text: str = ""
    backend: str = ""
    model: str = ""
    route: Route | None = None
    stop_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    metrics: Metrics = field(default_factory=Metrics)
    thinking: str = ""
    cost_usd: float | None = None
    notices: list[str] = field(default_factory=list)  # one-line advisories (deprecations, fallbacks)
    parsed: Any = None        # the parsed value when format="json"
    error: str | None = None  # set when the stream failed after producing output
    interrupted: bool = False
    usage_estimated: bool = False  # cut short before the backend's counts: output tokens estimated from what arrived
    # provenance: what was asked, when, and whether the answer came from the response cache
    options: dict = field(default_factory=dict)      # temperature, max_tokens, format as asked
    requested_at: str | None = None                  # UTC, ISO 8601
    request_sha256: str | None = None                # the response cache's key for this request
    messages_sha256: str | None = None               # SHA-256 of the exact system + messages sent
    cached: bool = False
    cached_at: str | None = None                     # when the cached answer was first made (UTC)
    # typed answers and tools (typed_answers.py, tools.py)
    tool_calls: list = field(default_factory=list)   # ToolCall events the model asked for in this answer
    tool_runs: list = field(default_factory=list)    # tools.ToolRun: the calls the tool loop ran, in order

    def __str__(self) -> str:
        return self.text

    @property
    def code(self) -> str | None:
        """The answer's code: its first fenced block, or all of it when the answer is only code (issue 16)."""
        from .code_blocks import extract_code

        return extract_code(self.text)

    def __repr__(self) -> str:
        state = "interrupted" if self.interrupted else "error" if self.error else self.stop_reason
        preview = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return f"Result({preview!r}, backend={self.backend!r}, model={self.model!r}, stop={state!r})"


CUT_AT_LIMIT = "the answer was cut at the token limit — raise --max-tokens (max_tokens=) for a longer one."
CUT_STOPS = ("length", "max_tokens")  # the backends' words for "cut at the token limit"
# the stop reasons that leave an answer unfinished, by their wire value (Ollama's done_reason,
# Claude's stop_reason, an OpenAI-compatible server's finish_reason): the notice each adds
STOP_NOTICES = {
    **dict.fromkeys(CUT_STOPS, CUT_AT_LIMIT),
    "content_filter": "the server's content filter stopped the answer (finish_reason content_filter) — any text "
                      "shown is partial; rephrase the request or try another model.",
    "refusal": "Claude declined to answer (stop_reason refusal: its safety classifiers stopped the reply) — any text "
               "shown is partial; rephrase the request or try another model.",
    "model_context_window_exceeded": "the answer was cut: prompt and answer filled the model's context window "
                                     "(model_context_window_exceeded) — shorten the prompt or the history.",
    "pause_turn": "Claude paused a long-running turn (pause_turn) — the answer is unfinished; run the cell again.",
}


def _check_options(temperature, max_tokens, format) -> None:
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            raise ConfigError(f"temperature must be a number from 0 to 2, not {temperature!r}.")
    if max_tokens is not None:
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 0 < max_tokens <= MAX_TOKENS_LIMIT:
            raise ConfigError(f"max_tokens must be a whole number from 1 to {MAX_TOKENS_LIMIT:,}, not {max_tokens!r}.")
    if format not in (None, "json"):
        raise ConfigError(f"format must be 'json' or left out, not {format!r}.")


def _routing_text(prompt: str, system: str | None, messages) -> str:
    """Everything that would be sent: the privacy guard must see all of it, not just the prompt."""
    return policy.outgoing_text(prompt, system, messages)


def _resolve(route: Route, settings) -> Route:
    """Family names (sonnet, opus, haiku) become the newest dated id from the API's model list."""
    if not spec(route.backend).supports("resolve") or route.model not in spec(route.backend).aliases:
        return route
    resolved = get_backend(route.backend, settings).resolve(route.model)
    return replace(route, model=resolved, reason=f"{route.reason}; {route.model} = {resolved}")


def route(prompt: str, *, model: str | None = None, backend: str | None = None, task: str | None = None,
          system: str | None = None, messages=None, keep_local: str | None = None) -> Route:
    """Where this prompt would go and why. Calls no model (it may read Claude's model list to
    resolve a family name such as `sonnet`)."""
    current = settings_module.load()
    decided = routing.decide(_routing_text(prompt, system, messages), current, model=model, backend=backend, task=task,
                             unavailable=not_installed(current), keep_local=keep_local)
    return _resolve(decided, current)


class Stream:
    """Iterate for text deltas as they arrive; afterwards `.result` holds the whole Result.

    Errors are InferenceError subclasses with `.result` holding whatever arrived; an interrupt
    raises InferenceInterrupted (a KeyboardInterrupt) with the partial result, marked interrupted.
    To stop early call `.close()`, or use `with im.stream(...) as s:` — either closes the HTTP
    response so the server stops generating (a bare `break` leaves it open until the Stream is
    garbage-collected).
    """

    def __init__(self, prompt: str, *, model=None, backend=None, system=None, temperature=None, max_tokens=None,
                 format=None, stream=True, messages=None, task=None, keep_local=None, cache=None,
                 stable_prefix_chars=0, sample=1, schema=None, tools=None, images=None):
        self._started = time.perf_counter()
        self._trace_parent = telemetry.parent()  # a map row's or an experiment run's span, if tracing

        requested_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        _check_options(temperature, max_tokens, format)
        if not (prompt and prompt.strip()) and not messages:
            raise ConfigError("the prompt is empty — write a question or instruction.")
        self._settings = settings_module.load()
        # lone surrogates (pasted or decoded bytes) cannot travel as UTF-8: replaced visibly, here,
        # so that every backend, the privacy guard and the history see the same text
        prompt, system = wire_safe(prompt or ""), wire_safe(system) if system else system
        messages = [{**m, "content": wire_safe(m["content"])}
                    if isinstance(m, dict) and isinstance(m.get("content"), str) else m for m in messages or ()]
        self._prompt = prompt
        from .attachments import load_all  # images/PDFs follow the text: judged and routed by it (issue 16)

        self._attachments = load_all(images)
        history = tuple(messages)
        self._history = history
        self._turns = history + (({"role": "user", "content": prompt},) if prompt and prompt.strip() else ())
        self._text_for_routing = _routing_text(prompt, system, history)
        if self._attachments:  # a PDF's (or an image's) own text is judged with the prompt
            from .attachments import scannable_text

            self._text_for_routing += "\n" + scannable_text(self._attachments)
        self._choice = dict(model=model, backend=backend, task=task, keep_local=keep_local)
        self._options = dict(system=system, temperature=temperature, max_tokens=max_tokens, format=format,
                             stream=stream)
        self._typed = dict(schema=schema, tools=tuple(tools or ()))  # a JSON schema dict, tool specs (tools.py)
        self.record_extra: dict = {}  # the tool loop adds the calls it ran before this request (history)
        from . import response_cache  # imported on first use: %load_ext stays light (no sqlite3)

        self._cache_mode = response_cache.mode(self._settings, cache)
        self._stable_prefix_chars = stable_prefix_chars  # a --map template's fixed part, for prompt caching
        self._sample = sample  # %%experiment --repeat: each sample is cached apart (sample 1 as a plain request)
        self._unavailable = not_installed(self._settings)
        self.route = _resolve(routing.decide(self._text_for_routing, self._settings, **self._choice,
                                             unavailable=self._unavailable), self._settings)
        self._result = Result(backend=self.route.backend, model=self.route.model, route=self.route,
                              requested_at=requested_at,
                              options={k: v for k, v in dict(temperature=temperature, max_tokens=max_tokens,
                                                             format=format).items() if v is not None})
        self._chunks: list[str] = []
        self._finished = False
        self._iterator: Iterator[str] | None = None
        self._on_thinking = None  # set by each(): thinking models reason before they answer
        self._on_waiting = None   # set by each(): why nothing arrives yet, said while it lasts

    def __iter__(self) -> Iterator[str]:
        if self._iterator is None:
            self._iterator = self._run()
        return self._iterator

    @property
    def result(self) -> Result:
        """The Result; while the stream is unfinished (or was left by a `break`), the text so far."""
        if not self._finished:
            self._result.text = "".join(self._chunks)
        return self._result

    def close(self) -> None:
        """Stop early: closes the HTTP response, so the server stops generating."""
        if self._iterator is not None:
            self._iterator.close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def each(self, on_text, on_thinking=None, on_waiting=None) -> "Result":
        """Feed every delta to `on_text` (reasoning deltas to `on_thinking`, and why nothing arrives
        yet — a retry's wait, the embedded model starting — to `on_waiting`); an interrupt anywhere
        (in the network wait or in a callback) closes the response and raises InferenceInterrupted
        with the partial result."""
        self._on_thinking, self._on_waiting = on_thinking, on_waiting
        try:
            for text in self:
                on_text(text)
        except InferenceInterrupted:
            raise
        except KeyboardInterrupt:
            self.close()
            raise InferenceInterrupted(self.result) from None
        return self.result

    def _request_key(self) -> str:
        from . import response_cache

        return response_cache.request_key(self.route.backend, self.route.model, self._turns,
                                          self._options["system"], self._options, sample=self._sample,
                                          schema=self._typed["schema"], tools=list(self._typed["tools"]) or None,
                                          attachments=[a.sha256 for a in self._attachments])

    def _cached(self) -> dict | None:
        """The response cache's answer to this request, if the mode allows one; replay never asks a model."""
        result = self._result
        result.request_sha256 = self._request_key()
        if self._cache_mode == "off":
            return None
        from . import response_cache

        if self._cache_mode == "replay" and (problem := response_cache.replay_problem(self._settings)):
            raise response_cache.replay_miss(result.request_sha256, problem)  # the file, not the request
        entry, notice = response_cache.lookup(self._settings, result.request_sha256)
        if notice:
            result.notices.append(notice)
        if entry is None and self._cache_mode == "replay":
            raise response_cache.replay_miss(result.request_sha256, response_cache.replay_problem(self._settings))
        return entry

    def _run(self) -> Iterator[str]:
        result, chunks, thinking = self._result, self._chunks, []
        first_token_at = None
        unavailable = set(self._unavailable)
        if self._attachments:  # what the spec alone refuses is refused before any cache: it could never be asked
            from . import vision

            vision.check(self.route.backend, self.route.model, self._attachments, self._settings, ask_server=False)
        entry = self._cached()
        if entry is not None:
            yield from self._replay(entry)
            return
        from . import budget  # a cap is checked before anything is sent (a cached answer costs nothing)

        self._reserved = budget.check(self._settings, self.route.backend, self.route.model, self._prompt,
                                      system=self._options["system"], messages=self._history,
                                      max_tokens=self._options["max_tokens"])
        try:
            while True:
                # the one policy, at the moment of sending: system, history and prompt, to this backend and model
                policy.check(self._text_for_routing, self.route.backend, self.route.model, self._settings)
                backend = get_backend(self.route.backend, self._settings)
                if self._attachments:  # a model that cannot see them is one line naming one that can
                    from . import vision

                    vision.check(self.route.backend, self.route.model, self._attachments, self._settings)
                request = Request(model=self.route.model, messages=self._turns, **self._options,
                                  stable_prefix_chars=self._stable_prefix_chars, attachments=self._attachments,
                                  **self._typed)
                result.messages_sha256 = _messages_digest(request)
                events = backend.stream(request)
                try:
                    for event in events:
                        if type(event) is str:  # a piece of the answer, one per token: the path kept short
                            if first_token_at is None:
                                first_token_at = time.perf_counter()
                            chunks.append(event)
                            yield event
                        elif isinstance(event, ToolCall):
                            result.tool_calls.append(event)
                        elif isinstance(event, ThinkingDelta):
                            if type(event.text) is not str:
                                raise _not_text(self.route.backend, event.text)
                            thinking.append(event.text)
                            if self._on_thinking is not None:
                                self._on_thinking(event.text)
                        elif isinstance(event, Notice):
                            if not event.transient:
                                result.notices.append(event.text)
                            elif self._on_waiting is not None:  # "starting the embedded model…"
                                self._on_waiting(event.text)
                        elif isinstance(event, Waiting):
                            if self._on_waiting is not None:
                                self._on_waiting(event.text)
                        elif isinstance(event, ModelLoad):
                            result.metrics.load_s = (result.metrics.load_s or 0) + event.seconds
                        elif isinstance(event, Done):
                            self._finish_ok(event, backend)
                        else:
                            raise _not_text(self.route.backend, event)
                    break
                except BackendUnavailable:
                    if chunks or self.route.explicit:
                        raise
                    unavailable.add(self.route.backend)
                    rerouted = routing.decide(self._text_for_routing, self._settings, **self._choice,
                                              unavailable=frozenset(unavailable))
                    if rerouted.backend in unavailable:
                        raise
                    self.route = _resolve(rerouted, self._settings)
                    result.route, result.backend, result.model = self.route, self.route.backend, self.route.model
                except InferenceError:
                    raise
                except Exception as exc:  # a fault nobody foresaw (a parser's, a callback's): one line, partial kept
                    raise BackendError(f"unexpected {type(exc).__name__} while streaming the answer from "
                                       f"{self.route.backend}: {str(exc)[:200]} — the partial answer is kept; run "
                                       "the cell again, and please report this.") from None
                finally:
                    events.close()  # the HTTP response too, at once, however the loop ended
        except InferenceError as exc:
            if isinstance(exc, Incomplete):
                result.stop_reason = "incomplete"
            self._finish(chunks, thinking, first_token_at, error=exc.message)
            raise exc.with_result(result) from exc
        except (KeyboardInterrupt, GeneratorExit) as exc:
            self._finish(chunks, thinking, first_token_at, interrupted=True)
            if isinstance(exc, GeneratorExit):
                raise
            raise InferenceInterrupted(result) from None
        if not "".join(chunks).strip() and not result.tool_calls and result.stop_reason != "refusal":  # said plainly, never passed along as if it were an answer
            result.notices.append(EMPTY_ANSWER)
        self._finish(chunks, thinking, first_token_at)
        if self._options["format"] == "json":
            self._parse_json()
        if self._cache_mode == "on":
            from . import response_cache, write_behind

            result.request_sha256 = self._request_key()  # a fallback may have changed the route
            write_behind.submit(partial(response_cache.store, self._settings, result.request_sha256,
                                        write_behind.snapshot(result), self._prompt))  # redacted off the cell's thread

    def _replay(self, entry: dict) -> Iterator[str]:
        """Answer from the response cache: the stored text at once, marked cached with its date."""
        result = self._result
        result.cached, result.cached_at = True, entry["created_at"]
        result.model, result.stop_reason = entry["model"] or result.model, entry["stop_reason"]
        result.usage = Usage(**entry["usage"])
        if result.stop_reason in STOP_NOTICES:  # a replay reads like the original
            result.notices.append(STOP_NOTICES[result.stop_reason])
        self._chunks.append(entry["text"])
        yield entry["text"]
        result.messages_sha256 = _messages_digest(Request(model=self.route.model, messages=self._turns,
                                                          system=self._options["system"],
                                                          attachments=self._attachments))
        self._finish(self._chunks, [entry.get("thinking") or ""], time.perf_counter())
        if self._options["format"] == "json":
            self._parse_json()

    def _finish_ok(self, done: Done, backend) -> None:
        result = self._result
        result.stop_reason = done.stop_reason if isinstance(done.stop_reason, str) else None
        result.usage = Usage(*(n if isinstance(n, int) and 0 <= n < MAX_TOKEN_COUNT else 0
                               for n in (done.usage.input_tokens, done.usage.output_tokens,
                                         done.usage.cache_creation_input_tokens, done.usage.cache_read_input_tokens)))
        if isinstance(done.model, str) and done.model:
            result.model = done.model
        if spec(self.route.backend).supports("resolve") and (line := backend.deprecation(result.model)):
            result.notices.append(line)
        if result.stop_reason in STOP_NOTICES:
            result.notices.append(STOP_NOTICES[result.stop_reason])

    def _finish(self, chunks, thinking, first_token_at, *, error=None, interrupted=False) -> None:
        result, now = self._result, time.perf_counter()
        result.text, result.thinking = "".join(chunks), "".join(thinking)
        self._finished = True
        result.error, result.interrupted = error, interrupted
        if interrupted:
            result.stop_reason = "interrupted"
        if (interrupted or error) and chunks and not (result.usage.input_tokens or result.usage.output_tokens):
            # the backend's counts come with its last message, which never came: count what arrived,
            # one streamed piece per token (exact for Ollama, llama-server and OpenAI; Claude's pieces
            # hold a few tokens, so there it is a lower bound)
            result.usage = Usage(output_tokens=len(chunks))
            result.usage_estimated = True
        metrics = result.metrics
        metrics.total_s = now - self._started
        if first_token_at is not None:
            metrics.ttft_s = first_token_at - self._started - (metrics.load_s or 0)
            generating = now - first_token_at
            if result.usage.output_tokens and generating > 0 and not result.cached:
                metrics.tokens_per_s = result.usage.output_tokens / generating
        usage = result.usage
        result.cost_usd = 0.0 if result.cached else None if result.usage_estimated else estimate_cost(
            result.backend, result.model, usage.input_tokens, usage.output_tokens,
            cache_write_tokens=usage.cache_creation_input_tokens, cache_read_tokens=usage.cache_read_input_tokens,
            overrides=self._settings.prices)
        if not result.cached:
            from .budget import settle

            # the reservation made at the check is released; an unknown cost counts as that estimate
            settle(getattr(self, "_reserved", 0.0), result.cost_usd, unknown=result.usage_estimated)
            self._reserved = 0.0
        self._record()
        if notice := telemetry.completion(result, parent=self._trace_parent, started=self._started, ended=now,
                                          turns=self._turns, **self._options):
            result.notices.append(notice)

    def _record(self) -> None:
        """Every completion, finished or not, goes to the history (secrets redacted there). The first
        write opens the file on this thread, so an unusable history is reported in this cell; later
        ones go to the write-behind thread (their rare failures are reported with the next answer)."""
        from . import write_behind
        from .history import store_for

        self._result.notices.extend(write_behind.take_notices())
        store = store_for(self._settings)
        if store is None:
            return
        options = {**self._choice, **{k: v for k, v in self._options.items() if k != "system"}, **self.record_extra}
        record = partial(store.record, write_behind.snapshot(self._result), prompt=self._prompt,
                         system=self._options["system"], options={k: v for k, v in options.items() if v is not None})
        if store.opened:
            write_behind.submit(record)
        elif notice := record():
            self._result.notices.append(notice)

    def _parse_json(self) -> None:
        result = self._result
        text = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", result.text)  # tolerate a fenced answer
        try:
            result.parsed = json.loads(text)
        except ValueError as exc:
            result.error = f"the answer is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            raise BackendError(f"{result.error} — the raw text is kept in .text; ask again or drop --format json.",
                               result=result) from None


def _messages_digest(request: Request) -> str:
    """SHA-256 of the exact system prompt and messages a backend was given (provenance)."""
    sent = {"system": request.system, "messages": [dict(m) for m in request.messages]}
    if request.attachments:  # the bytes sent, by their digests
        sent["attachments"] = [a.sha256 for a in request.attachments]
    return hashlib.sha256(json.dumps(sent, sort_keys=True, ensure_ascii=False, default=str)
                          .encode("utf-8", "surrogatepass")).hexdigest()

def _not_text(backend: str, what) -> BackendError:
    """A backend yielded something that is neither text (a str) nor one of the events."""
    return BackendError(f"{backend} sent {type(what).__name__} where the answer's text belongs — the partial "
                        "answer is kept; run the cell again.")


def stream(prompt: str, **options) -> Stream:
    """Stream an answer: `for text in im.stream("...")`; `.result` afterwards."""
    return Stream(prompt, **options)


def infer(prompt: str, *, model=None, backend=None, system=None, temperature=None, max_tokens=None, format=None,
          stream=True, messages=None, task=None, keep_local=None, cache=None, stable_prefix_chars=0,
          schema=None, tools=None, max_steps=None, confirm=None, images=None, stop=None) -> Result:
    """Ask a model and return the whole Result (str(result) is the text). `cache`: None follows
    INFERENCE_CACHE; True uses the response cache (replay stays replay), False skips it.
    `schema`: a pydantic model, dataclass, TypedDict or JSON-schema dict; `.parsed` is then a
    validated instance (typed_answers.py). `tools`: functions the model may call (tools.py).
    `images`: paths, PNG/JPEG bytes, PIL images, matplotlib Figures or PDFs, sent with the prompt
    (a private prompt's attachments stay on this machine with it). `stop`: a threading.Event another
    thread may set (a map's interrupt): the answer ends at its next delta with its response closed, as
    an interrupt ends it (InferenceInterrupted with the partial Result)."""
    watch = _stopper(stop)
    if schema is not None or tools:  # typed answers and tool calling: their own modules, run over Stream
        from . import typed_answers, tools as tool_loop

        options = dict(model=model, backend=backend, system=system, temperature=temperature, max_tokens=max_tokens,
                       format=format, stream=stream, messages=messages, task=task, keep_local=keep_local, cache=cache,
                       images=images)
        if tools:
            if schema is not None:
                raise ConfigError("schema= and tools= together are not supported yet — ask with tools first, then "
                                  "pass the answer to a schema= request.")
            running = tool_loop.ToolLoop(prompt, tools, max_steps=max_steps, confirm=confirm, **options)
        else:
            running = typed_answers.TypedStream(prompt, schema, **options)
        return running.each(watch or _ignore, watch, watch)
    running = Stream(prompt, model=model, backend=backend, system=system, temperature=temperature,
                     max_tokens=max_tokens, format=format, stream=stream, messages=messages, task=task,
                     keep_local=keep_local, cache=cache, stable_prefix_chars=stable_prefix_chars, images=images)
    return running.each(watch or _ignore, watch, watch)


def _ignore(_text) -> None:
    pass


def _stopper(stop):
    """None without `stop`; else a callback for every delta (text, thinking, a retry's wait) that ends
    the stream once `stop` is set: each() turns its KeyboardInterrupt into a closed response and
    InferenceInterrupted with the partial Result."""
    if stop is None:
        return None

    def watch(_text) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
    return watch

