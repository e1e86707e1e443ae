"""The Anthropic Messages API, through the official `anthropic` SDK (imported on first use:
it costs about a second, which `%load_ext` must not pay)."""
from __future__ import annotations

import re
import threading
import time
import warnings
from typing import Iterator

from ..errors import (AuthenticationFailed, BackendError, BackendUnavailable, ConfigError, Incomplete,
                      InferenceError, ModelNotFound, RateLimited)
from ..settings import CONNECT_TIMEOUT_S
from .base import Done, Event, Health, ModelInfo, Request, ThinkingDelta, ToolCall, Usage, wait_to_retry
from .retry import RetryBudget
from .spec import ANTHROPIC

DEFAULT_MAX_TOKENS = ANTHROPIC.default_max_tokens  # the API requires max_tokens
OFFICIAL_URL = "https://api.anthropic.com"
# used when the model list cannot be read (no network, a proxy without /v1/models)
FAMILY_FALLBACK = {"sonnet": "claude-sonnet-4-6", "opus": "claude-opus-4-6", "haiku": "claude-haiku-4-5"}
JSON_INSTRUCTION = ("Respond with one valid JSON value only: no prose before or after it, no Markdown code fences.")
# prompt caching: below the model's minimum (1,024 tokens at the least) the API ignores a mark, so
# only prefixes about that long are marked (estimated at 4 characters a token); at most 4 marks
CACHE_MIN_CHARS = 4 * 1024
EPHEMERAL = {"type": "ephemeral"}
NO_KEY = ("no ANTHROPIC_API_KEY is set — add a line ANTHROPIC_API_KEY=... to ./.env (loaded automatically), "
          "or set it in the environment before starting Jupyter.")

# the SDK warns about deprecated models with a Python warning; we show one line in the footer instead
warnings.filterwarnings("ignore", message=r"The model '.*' is deprecated", category=DeprecationWarning)


class AnthropicBackend:
    name = "anthropic"

    def __init__(self, settings):
        self._key = settings.anthropic_api_key
        self.url = (settings.anthropic_base_url or OFFICIAL_URL).rstrip("/")
        self._base_url = settings.anthropic_base_url
        self._timeout_ms = settings.anthropic_timeout
        self._retries = settings.anthropic_max_retries
        self._max_wait_s = settings.max_retry_wait_s
        self._client = None
        self._models: list | None = None  # the API's model list, read once per kernel
        self._models_failed_at = float("-inf")  # don't re-dial an unreachable API on every cell
        self._lock = threading.Lock()

    def _sdk(self):
        if self._key is None:
            raise AuthenticationFailed(NO_KEY)
        with self._lock:
            if self._client is None:
                import anthropic
                import httpx2

                # no SDK retries: it would honour any retry-after (a day, even); ours are capped in total
                self._client = anthropic.Anthropic(
                    api_key=self._key.get(), base_url=self._base_url, max_retries=0,
                    timeout=httpx2.Timeout(self._timeout_ms / 1000, connect=CONNECT_TIMEOUT_S))
            return self._client

    # --- models -----------------------------------------------------------------------------
    def _model_list(self) -> list:
        if self._models is None:
            client = self._sdk()
            if time.monotonic() - self._models_failed_at < 60:
                raise BackendUnavailable("the Anthropic model list could not be read a moment ago.")
            try:
                self._models = self._retrying(lambda: list(client.models.list(limit=100)))
            except Exception as exc:  # any SDK or transport failure: classified below
                self._models_failed_at = time.monotonic()
                raise self._translate(exc, "") from None
        return self._models

    def resolve(self, model: str) -> str:
        """A family name (sonnet/opus/haiku) -> the newest model id of that family."""
        if model not in FAMILY_FALLBACK:
            return model
        try:
            ids = [m for m in self._model_list() if f"-{model}-" in f"{m.id}-"]
        except InferenceError:
            ids = []
        if not ids:
            return FAMILY_FALLBACK[model]
        newest = max(ids, key=lambda m: (m.created_at is not None, m.created_at or 0, _version(m.id)))
        return newest.id

    def deprecation(self, model: str) -> str | None:
        """One line if the model is deprecated or retired, from the API's model list or the SDK's table."""
        for m in self._models or ():
            if m.id == model and (getattr(m, "retires_at", None) or getattr(m, "lifecycle", None) in ("deprecated",)):
                when = getattr(m, "retires_at", None)
                return f"{model} is deprecated{f' and retires {when:%Y-%m-%d}' if when else ''} — use `sonnet`, `opus` or `haiku` to follow the newest models."
        try:
            from anthropic._data import DEPRECATED_MODELS
        except ImportError:
            return None
        if model in DEPRECATED_MODELS:
            return (f"{model} is deprecated and reaches end of life on {DEPRECATED_MODELS[model]} — use `sonnet`, "
                    "`opus` or `haiku` to follow the newest models.")
        return None

    def list_models(self) -> list[ModelInfo]:
        newest = {self.resolve(family): family for family in FAMILY_FALLBACK}
        return [ModelInfo(backend=self.name, name=m.id, kind="chat", family=_family(m.id), aliases=_aliases(m.id, newest),
                          modified_at=m.created_at.isoformat() if m.created_at else None)
                for m in self._model_list()]

    def health(self) -> Health:
        if self._key is None:
            return Health(False, NO_KEY)
        start = time.perf_counter()
        try:
            self._models, self._models_failed_at = None, float("-inf")
            count = len(self._model_list())
        except InferenceError as exc:
            return Health(False, exc.message, time.perf_counter() - start)
        return Health(True, f"Anthropic API at {self.url}, {count} models", time.perf_counter() - start)

    # --- generation -------------------------------------------------------------------------
    def stream(self, request: Request) -> Iterator[Event]:
        _check_temperature(request)
        client = self._sdk()
        call = dict(model=request.model, max_tokens=request.max_tokens or DEFAULT_MAX_TOKENS,
                    messages=_wire_messages(_with_attachments(request)))
        if request.schema:  # the Messages API's structured output: the answer follows the schema
            call["output_config"] = {"format": {"type": "json_schema", "schema": _structured(request.schema)}}
        if request.tools:
            call["tools"] = [{"name": t["name"], "description": t.get("description", ""),
                              "input_schema": t["parameters"]} for t in request.tools]
        system = request.system
        if request.format == "json":  # Claude has no JSON mode for free text: instruct, then validate
            system = f"{system}\n\n{JSON_INSTRUCTION}" if system else JSON_INSTRUCTION
        if system:
            call["system"] = system
        _mark_cacheable(call, request.stable_prefix_chars)
        if request.temperature is not None:  # SDK 1.0 removed the keyword; the API still takes the field
            call["extra_body"] = {"temperature": request.temperature}
        # retries are ours, not the SDK's: the wait is capped in total and the cell says why
        budget = RetryBudget(self._retries, self._max_wait_s)
        while True:
            started = False
            try:
                if not request.stream:
                    message = client.messages.create(**call)
                    yield "".join(b.text for b in message.content if b.type == "text")
                    yield from _tool_calls(message)
                    yield _done(message)
                    return
                finished = False
                with client.messages.stream(**call) as events:
                    for event in events:
                        started = True
                        if event.type == "text":
                            yield _checked_text(event.text)
                        elif event.type == "thinking":
                            yield ThinkingDelta(_checked_text(event.thinking))
                        elif event.type == "message_stop":
                            finished = True
                    message = events.get_final_message()
                if not finished:
                    raise Incomplete("incomplete: the stream ended before Claude finished (no message_stop) — the "
                                     "partial answer is kept; run the cell again.")
                yield from _tool_calls(message)  # tool_use blocks, their input gathered from input_json_delta
                yield _done(message)
                return
            except InferenceError:
                raise
            except Exception as exc:  # SDK and transport errors, classified by data, not class
                why = None if started else self._retryable(exc)
                if why is None:
                    raise self._translate(exc, request.model) from None
                wait, asked = budget.next_wait(getattr(getattr(exc, "response", None), "headers", None))
                if wait is None:
                    raise self._translate(exc, request.model, budget.gave_up(asked)) from None
                yield from wait_to_retry(why, wait)

    def _retrying(self, call, model: str = ""):
        """call(), retried as the SDK would retry it, within the same capped budget (for the calls
        that stream nothing: the model list and the Message Batches endpoints)."""
        budget = RetryBudget(self._retries, self._max_wait_s)
        while True:
            try:
                return call()
            except Exception as exc:
                if self._retryable(exc) is None:
                    raise
                wait, asked = budget.next_wait(getattr(getattr(exc, "response", None), "headers", None))
                if wait is None:
                    raise self._translate(exc, model, budget.gave_up(asked)) from None
                time.sleep(wait)

    def _retryable(self, exc: Exception) -> str | None:
        """Why this failure is worth a retry (as the SDK would retry it), or None."""
        import anthropic

        if isinstance(exc, anthropic.APIConnectionError):  # a timeout is one too
            return "cannot reach Claude"
        if not isinstance(exc, anthropic.APIStatusError) or exc.status_code == 200:
            return None  # an `event: error` mid-stream is not retried (the SDK does not either)
        should = exc.response.headers.get("x-should-retry")
        status, kind = exc.status_code, _error_type(exc)
        if should == "false" or (should != "true" and status not in (408, 409, 429) and status < 500):
            return None
        if status == 429 or kind == "rate_limit_error":
            return "rate limited by Claude (429)"
        if status == 529 or kind == "overloaded_error":
            return "Claude is overloaded (529)"
        return f"Claude answered HTTP {status}"

    def count_tokens(self, request: Request) -> int:
        """Input tokens of this request, from the API's token counter (POST /v1/messages/count_tokens; no generation)."""
        client = self._sdk()
        call = dict(model=request.model, messages=_wire_messages(_with_attachments(request)))
        if request.system:
            call["system"] = request.system
        try:
            return client.messages.count_tokens(**call).input_tokens
        except Exception as exc:
            raise self._translate(exc, request.model) from None

    # --- Message Batches: half the price, results within 24 h ----------------------------------
    def _params(self, request: Request) -> dict:
        # checked before sending: the batch API validates each row's params only when it runs it,
        # so a bad value would come back hours later as every row `errored`
        _check_temperature(request)
        params = dict(model=request.model, max_tokens=request.max_tokens or DEFAULT_MAX_TOKENS,
                      messages=list(request.messages))
        if request.system:
            params["system"] = request.system
        _mark_cacheable(params, request.stable_prefix_chars)
        if request.temperature is not None:
            params["temperature"] = request.temperature
        return params

    def submit_batch(self, requests: dict[str, Request]) -> str:
        """Send {custom_id: Request} as one Message Batch; returns the batch id."""
        client = self._sdk()
        items = [{"custom_id": key, "params": self._params(r)} for key, r in requests.items()]
        try:
            batch = self._retrying(lambda: client.messages.batches.create(requests=items))
        except Exception as exc:
            raise self._translate(exc, next(iter(requests.values())).model) from None
        return batch.id

    def batch_status(self, batch_id: str) -> dict:
        client = self._sdk()
        try:
            batch = self._retrying(lambda: client.messages.batches.retrieve(batch_id))
        except Exception as exc:
            raise self._translate(exc, "") from None
        counts = batch.request_counts
        return {"status": batch.processing_status, "succeeded": counts.succeeded, "errored": counts.errored,
                "processing": counts.processing, "canceled": counts.canceled, "expired": counts.expired}

    def batch_results(self, batch_id: str) -> dict[str, tuple[str | None, str | None, int]]:
        """{custom_id: (text, error, output tokens)} of an ended batch."""
        client = self._sdk()
        try:
            found = {}
            for entry in self._retrying(lambda: client.messages.batches.results(batch_id)):
                result = entry.result
                if result.type == "succeeded":
                    text = "".join(b.text for b in result.message.content if b.type == "text")
                    found[entry.custom_id] = (text, None, result.message.usage.output_tokens or 0)
                elif result.type == "errored":
                    error = getattr(getattr(result.error, "error", None), "message", None) or str(result.error)
                    found[entry.custom_id] = (None, f"Claude refused this row: {error}", 0)
                else:
                    found[entry.custom_id] = (None, f"this row was {result.type} before it ran", 0)
        except Exception as exc:
            raise self._translate(exc, "") from None
        return found

    def _translate(self, exc: Exception, model: str, gave_up: str | None = None) -> InferenceError:
        import anthropic
        import httpx2

        if isinstance(exc, InferenceError):  # already one line (e.g. the retry budget ran out)
            return exc
        retries = f"after {self._retries} retries" if self._retries else "(retries are off)"
        if isinstance(exc, anthropic.APITimeoutError):
            return BackendError(f"Claude sent nothing for {self._timeout_ms} ms (ANTHROPIC_TIMEOUT) — run the cell "
                                "again or raise ANTHROPIC_TIMEOUT.")
        if isinstance(exc, anthropic.APIConnectionError):
            return BackendUnavailable(f"cannot reach the Anthropic API at {self.url} — check the network or "
                                      "ANTHROPIC_BASE_URL.")
        if not isinstance(exc, anthropic.APIStatusError):
            # a 200 that is not an event stream (a web page, a proxy) surfaces from the SDK as a bare
            # AssertionError when it finds no message events
            # e.g. the connection dying mid-body can escape the SDK as a raw transport error
            if isinstance(exc, (httpx2.HTTPError, OSError)):
                return BackendError(f"the connection to the Anthropic API broke mid-answer ({type(exc).__name__}) "
                                    "— the partial answer is kept; run the cell again.")
            # anything else is the SDK failing to read what it got: not the Messages API's events
            return BackendError(f"the server at {self.url} sent a reply that is not the Anthropic API "
                                f"({type(exc).__name__}) — check ANTHROPIC_BASE_URL; any partial answer is kept.")
        status, kind, text = exc.status_code, _error_type(exc), _error_message(exc)
        if isinstance(exc.body, str) and re.search(r"<html|<!doctype", exc.body, re.IGNORECASE) or (
                status == 200 and kind is None and "<" in text):
            return BackendError(f"the server at {self.url} answered HTTP {status} with a web page, not the Anthropic "
                                "API — check ANTHROPIC_BASE_URL.")
        if status == 200:  # an `event: error` after the stream started; the SDK never retries these
            cls = RateLimited if kind == "overloaded_error" else BackendError
            return cls(f"Claude's stream failed mid-answer ({kind}: {text}) — the partial answer is kept; "
                       "run the cell again.")
        if status == 401 or kind == "authentication_error":
            return AuthenticationFailed("Anthropic rejected the API key (401 authentication_error) — check "
                                        "ANTHROPIC_API_KEY in your environment or .env.")
        if status == 403 or kind == "permission_error":
            return AuthenticationFailed(f"the API key may not use {model or 'this resource'} (403 permission_error) "
                                        "— check the workspace's model access in the Anthropic console.")
        if (status == 404 or kind == "not_found_error") and not model:  # a batch id, a path: not a model
            return BackendError(f"the Anthropic API found nothing there (404 not_found_error: {text[:200]}) — check "
                                "the id (a Message Batch is kept for 29 days) and ANTHROPIC_BASE_URL.")
        if status == 404 or kind == "not_found_error":
            return ModelNotFound(f"Claude has no model {model!r} (404 not_found_error) — use sonnet, opus or haiku, "
                                 "or an id from %models.")
        if status == 413:
            return BackendError("the request is too large for the Anthropic API (413) — shorten the prompt.")
        if status == 402 or kind == "billing_error":  # the account, not the request
            return AuthenticationFailed(f"the Anthropic account cannot pay for this request (402 billing_error: "
                                        f"{text[:200]}) — add credits or check billing in the Anthropic console.")
        if status == 429 or kind == "rate_limit_error":
            if gave_up:
                return RateLimited(f"Claude is rate limiting requests (429 rate_limit_error) and {gave_up}")
            return RateLimited(f"Anthropic's rate limit still applies {retries} (429 rate_limit_error) — wait a "
                               "minute and run the cell again.")
        if status == 529 or kind == "overloaded_error":
            if gave_up:
                return RateLimited(f"Claude is overloaded (529 overloaded_error) and {gave_up}")
            return RateLimited(f"Claude is overloaded {retries} (529 overloaded_error) — try again shortly or use "
                               "haiku.")
        if status >= 500 and gave_up:
            return BackendError(f"the Anthropic API failed (HTTP {status} {kind or ''}) and {gave_up}")
        if status >= 500:
            return BackendError(f"the Anthropic API failed (HTTP {status} {kind or ''}) {retries} — try again shortly.")
        return BackendError(f"the Anthropic API refused the request (HTTP {status} {kind or ''}: {text[:300]}) — "
                            "check the model name and options.")


def _check_temperature(request: Request) -> None:
    if request.temperature is not None and not 0 <= request.temperature <= 1:
        raise ConfigError(f"Claude accepts --temperature from 0 to 1, not {request.temperature:g}.")


def _mark_cacheable(call: dict, stable_prefix_chars: int) -> None:
    """Mark the long stable prefixes for Claude's prompt cache (cache_control ephemeral): the
    system prompt, the chat history before the new turn, and a --map template's fixed part."""
    def marked(text: str) -> dict:
        return {"type": "text", "text": text, "cache_control": EPHEMERAL}

    size = len(call.get("system") or "")
    if size >= CACHE_MIN_CHARS:
        call["system"] = [marked(call["system"])]
    messages = call["messages"]
    history = [m for m in messages[:-1] if isinstance(m.get("content"), str)]
    size += sum(len(m["content"]) for m in history)
    if len(messages) > 1 and isinstance(messages[-2].get("content"), str) and size >= CACHE_MIN_CHARS:
        messages[-2] = {**messages[-2], "content": [marked(messages[-2]["content"])]}
    last = messages[-1]
    if 0 < stable_prefix_chars < len(last.get("content") or "") and size + stable_prefix_chars >= CACHE_MIN_CHARS:
        text = last["content"]
        messages[-1] = {**last, "content": [marked(text[:stable_prefix_chars]),
                                            {"type": "text", "text": text[stable_prefix_chars:]}]}

def _wire_messages(messages) -> list[dict]:
    """Neutral tool turns (backends/base.py) as Messages API blocks: an assistant turn's calls
    become tool_use blocks, and the results that follow become one user turn of tool_result blocks."""
    wired: list[dict] = []
    for message in messages:
        if message.get("role") == "tool":
            block = {"type": "tool_result", "tool_use_id": message["tool_call_id"], "content": message["content"]}
            if message.get("is_error"):
                block["is_error"] = True
            if wired and wired[-1]["role"] == "user" and isinstance(wired[-1]["content"], list) and all(
                    b.get("type") == "tool_result" for b in wired[-1]["content"]):
                wired[-1]["content"].append(block)
            else:
                wired.append({"role": "user", "content": [block]})
        elif message.get("tool_calls"):
            text = message.get("content")  # a whitespace-only text block is refused by the API
            blocks = [{"type": "text", "text": text}] if isinstance(text, str) and text.strip() else []
            blocks += [{"type": "tool_use", "id": c["id"], "name": c["name"],
                        "input": c["arguments"] if isinstance(c["arguments"], dict) else {}}
                       for c in message["tool_calls"]]
            wired.append({"role": "assistant", "content": blocks})
        elif message.get("role") == "assistant" and isinstance(message.get("content"), str) and \
                not message["content"].strip():
            # a blank answer (a refusal, an empty reply): the API refuses an empty or whitespace-only
            # turn ("all messages must have non-empty content ..."); left out, the user turns around
            # it are combined into one, as the API combines consecutive same-role turns
            continue
        else:
            wired.append(message)
    return wired


def _tool_calls(message) -> Iterator[ToolCall]:
    blocks = list(message.content)
    if message.stop_reason == "max_tokens" and blocks and blocks[-1].type == "tool_use":
        # cut at the token limit while writing its arguments: the SDK reads the partial JSON as far
        # as it goes (a number cut short, a trailing string dropped), so running it would call the
        # function with arguments the model never wrote — the API says to ask again with more
        # max_tokens; the cell says so (stop reason max_tokens)
        blocks.pop()
    for block in blocks:
        if block.type == "tool_use":
            yield ToolCall(block.id, block.name, block.input)


def _structured(schema):
    """The schema as Claude's structured output takes it, by the SDK's own transform (as
    `messages.parse` sends it): every object closed, and the constraints the API refuses with a 400
    (minimum, maxLength, minItems above 1, ...) moved into the description — our own validation of
    the answer still enforces them. A schema the transform cannot read (a field of any type, `{}`)
    is only closed."""
    from anthropic import transform_schema

    try:
        return transform_schema(schema)
    except (ValueError, TypeError, KeyError, AttributeError):
        return _closed(schema)


def _closed(schema):
    """Claude's structured output wants every object closed (additionalProperties: false)."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: _closed(value) for key, value in schema.items()}
    if closed.get("type") == "object" and "additionalProperties" not in closed:
        closed["additionalProperties"] = False
    return closed


def _with_attachments(request: Request) -> list[dict]:
    """The messages, with the attachments as base64 blocks before the last user turn's text:
    images as `image` blocks, PDFs as `document` blocks (issue 16)."""
    messages = list(request.messages)
    if not request.attachments:
        return messages
    blocks = [{"type": "image" if a.is_image else "document",
               "source": {"type": "base64", "media_type": a.mime, "data": a.b64()}} for a in request.attachments]
    at = request.last_user_turn()
    last = messages[at]
    text = last.get("content")
    messages[at] = {**last, "content": blocks + ([{"type": "text", "text": text}] if isinstance(text, str) and text
                                                 else list(text or []))}
    return messages


def _checked_text(text) -> str:
    if not isinstance(text, str):
        raise BackendError(f"Claude's stream carried {type(text).__name__} where text belongs — not the Anthropic "
                           "API; check ANTHROPIC_BASE_URL. Any partial answer is kept.")
    return text


def _done(message) -> Done:
    usage = message.usage
    return Done(stop_reason=message.stop_reason, model=message.model,
                usage=Usage(usage.input_tokens or 0, usage.output_tokens or 0,
                            getattr(usage, "cache_creation_input_tokens", 0) or 0,
                            getattr(usage, "cache_read_input_tokens", 0) or 0))


def _error_type(exc) -> str | None:
    kind = getattr(exc, "type", None)
    if kind is None and isinstance(exc.body, dict):
        error = exc.body.get("error", exc.body)
        kind = error.get("type") if isinstance(error, dict) else None
    return kind


def _error_message(exc) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(getattr(exc, "api_message", None) or body or exc.message)


def _aliases(model_id: str, newest: dict[str, str]) -> tuple[str, ...]:
    """Names the router also accepts: the family for its newest model, the undated id, the dotted form."""
    names = [newest[model_id]] if model_id in newest else []
    undated = re.sub(r"-\d{8}$", "", model_id)
    if undated != model_id:
        names.append(undated)
    dotted = re.sub(r"-(\d)-(\d)$", r"-\1.\2", undated)
    if dotted != undated:
        names.append(dotted)
    return tuple(names)


def _family(model_id: str) -> str | None:
    return next((f for f in FAMILY_FALLBACK if f in model_id), None)


def _version(model_id: str) -> tuple:
    return tuple(int(n) for n in re.findall(r"\d+", model_id))
