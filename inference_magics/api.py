"""The Python API (a contract: magics, widgets, notebooks and tests all go through it).

    im.route(prompt, ...) -> Route         where a prompt would go, and why; calls no model
    im.stream(prompt, ...) -> Stream       iterate text deltas; .result after exhaustion
    im.infer(prompt, ...) -> Result        the whole answer
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

from . import routing, settings as settings_module
from .backends import get_backend, local_backend_installed
from .backends.base import Done, ModelLoad, Notice, Request, TextDelta, ThinkingDelta, Usage
from .errors import BackendError, BackendUnavailable, ConfigError, InferenceError, InferenceInterrupted
from .pricing import estimate_cost
from .routing import Route

MAX_TOKENS_LIMIT = 1_000_000


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

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        state = "interrupted" if self.interrupted else "error" if self.error else self.stop_reason
        preview = self.text if len(self.text) <= 60 else self.text[:57] + "..."
        return f"Result({preview!r}, backend={self.backend!r}, model={self.model!r}, stop={state!r})"

    def _repr_markdown_(self) -> str:
        from .render import result_markdown  # render only when a notebook asks for it
        return result_markdown(self)


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
    parts = [system or ""] + [str(m.get("content", "")) for m in messages or ()] + [prompt or ""]
    return "\n".join(p for p in parts if p)


def _resolve(route: Route, settings) -> Route:
    """Family names (sonnet, opus, haiku) become the newest dated id from the API's model list."""
    if route.backend != "anthropic" or route.model not in routing.FAMILIES:
        return route
    resolved = get_backend("anthropic", settings).resolve(route.model)
    return replace(route, model=resolved, reason=f"{route.reason}; {route.model} = {resolved}")


def _not_installed(settings) -> frozenset[str]:
    return frozenset() if local_backend_installed(settings) else frozenset({"local"})


def route(prompt: str, *, model: str | None = None, backend: str | None = None, task: str | None = None,
          system: str | None = None, messages=None) -> Route:
    """Where this prompt would go and why. Calls no model (it may read Claude's model list to
    resolve a family name such as `sonnet`)."""
    current = settings_module.load()
    decided = routing.decide(_routing_text(prompt, system, messages), current, model=model, backend=backend, task=task,
                             unavailable=_not_installed(current))
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
                 format=None, stream=True, messages=None, task=None, keep_local=None):
        self._started = time.perf_counter()
        _check_options(temperature, max_tokens, format)
        if not (prompt and prompt.strip()) and not messages:
            raise ConfigError("the prompt is empty — write a question or instruction.")
        self._settings = settings_module.load()
        self._prompt = prompt or ""
        history = tuple(messages or ())
        self._turns = history + (({"role": "user", "content": prompt},) if prompt and prompt.strip() else ())
        self._text_for_routing = _routing_text(prompt, system, history)
        self._choice = dict(model=model, backend=backend, task=task, keep_local=keep_local)
        self._options = dict(system=system, temperature=temperature, max_tokens=max_tokens, format=format,
                             stream=stream)
        self._unavailable = _not_installed(self._settings)
        self.route = _resolve(routing.decide(self._text_for_routing, self._settings, **self._choice,
                                             unavailable=self._unavailable), self._settings)
        self._result = Result(backend=self.route.backend, model=self.route.model, route=self.route)
        self._chunks: list[str] = []
        self._finished = False
        self._iterator: Iterator[str] | None = None
        self._on_thinking = None  # set by each(): thinking models reason before they answer
        self._on_notice = None    # set by each(): what the backend is doing before the first token

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

    def each(self, on_text, on_thinking=None, on_notice=None) -> "Result":
        """Feed every delta to `on_text` (and reasoning deltas to `on_thinking`); an interrupt
        anywhere (in the network wait or in a callback) closes the response and raises
        InferenceInterrupted with the partial result."""
        self._on_thinking = on_thinking
        self._on_notice = on_notice
        try:
            for text in self:
                on_text(text)
        except InferenceInterrupted:
            raise
        except KeyboardInterrupt:
            self.close()
            raise InferenceInterrupted(self.result) from None
        return self.result

    def _run(self) -> Iterator[str]:
        result, chunks, thinking = self._result, self._chunks, []
        first_token_at = None
        unavailable = set(self._unavailable)
        try:
            while True:
                backend = get_backend(self.route.backend, self._settings)
                request = Request(model=self.route.model, messages=self._turns, **self._options)
                try:
                    for event in backend.stream(request):
                        if isinstance(event, TextDelta):
                            if first_token_at is None:
                                first_token_at = time.perf_counter()
                            chunks.append(event.text)
                            yield event.text
                        elif isinstance(event, ThinkingDelta):
                            thinking.append(event.text)
                            if self._on_thinking is not None:
                                self._on_thinking(event.text)
                        elif isinstance(event, Notice):
                            if not event.transient:
                                result.notices.append(event.text)
                            if self._on_notice is not None:
                                self._on_notice(event.text)
                        elif isinstance(event, ModelLoad):
                            result.metrics.load_s = (result.metrics.load_s or 0) + event.seconds
                        elif isinstance(event, Done):
                            self._finish_ok(event, backend)
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
        except InferenceError as exc:
            self._finish(chunks, thinking, first_token_at, error=exc.message)
            exc.result = result
            raise
        except (KeyboardInterrupt, GeneratorExit) as exc:
            self._finish(chunks, thinking, first_token_at, interrupted=True)
            if isinstance(exc, GeneratorExit):
                raise
            raise InferenceInterrupted(result) from None
        self._finish(chunks, thinking, first_token_at)
        if self._options["format"] == "json":
            self._parse_json()

    def _finish_ok(self, done: Done, backend) -> None:
        result = self._result
        result.stop_reason, result.usage = done.stop_reason, done.usage
        if done.model:
            result.model = done.model
        note = getattr(backend, "deprecation", None)
        if note and (line := note(result.model)):
            result.notices.append(line)
        if done.stop_reason in ("length", "max_tokens"):
            result.notices.append("the answer was cut at the token limit — raise --max-tokens for a longer one.")

    def _finish(self, chunks, thinking, first_token_at, *, error=None, interrupted=False) -> None:
        result, now = self._result, time.perf_counter()
        result.text, result.thinking = "".join(chunks), "".join(thinking)
        self._finished = True
        result.error, result.interrupted = error, interrupted
        if interrupted:
            result.stop_reason = "interrupted"
        metrics = result.metrics
        metrics.total_s = now - self._started
        if first_token_at is not None:
            metrics.ttft_s = first_token_at - self._started - (metrics.load_s or 0)
            generating = now - first_token_at
            if result.usage.output_tokens and generating > 0:
                metrics.tokens_per_s = result.usage.output_tokens / generating
        result.cost_usd = estimate_cost(result.backend, result.model, result.usage.input_tokens,
                                        result.usage.output_tokens)
        self._record()

    def _record(self) -> None:
        """Every completion, finished or not, goes to the history (secrets redacted there)."""
        from .history import store_for

        store = store_for(self._settings)
        if store is None:
            return
        options = {**self._choice, **{k: v for k, v in self._options.items() if k != "system"}}
        notice = store.record(self._result, prompt=self._prompt, system=self._options["system"],
                              options={k: v for k, v in options.items() if v is not None})
        if notice:
            self._result.notices.append(notice)

    def _parse_json(self) -> None:
        result = self._result
        text = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", result.text)  # tolerate a fenced answer
        try:
            result.parsed = json.loads(text)
        except ValueError as exc:
            result.error = f"the answer is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            error = BackendError(f"{result.error} — the raw text is kept in .text; ask again or drop --format json.")
            error.result = result
            raise error from None


def stream(prompt: str, **options) -> Stream:
    """Stream an answer: `for text in im.stream("...")`; `.result` afterwards."""
    return Stream(prompt, **options)


def infer(prompt: str, *, model=None, backend=None, system=None, temperature=None, max_tokens=None, format=None,
          stream=True, messages=None, task=None, keep_local=None) -> Result:
    """Ask a model and return the whole Result (str(result) is the text)."""
    running = Stream(prompt, model=model, backend=backend, system=system, temperature=temperature,
                     max_tokens=max_tokens, format=format, stream=stream, messages=messages, task=task,
                     keep_local=keep_local)
    return running.each(lambda text: None)

