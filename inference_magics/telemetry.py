"""Every completion as an OpenTelemetry span, in the GenAI semantic conventions (`gen_ai.*`).

Tracing is on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set, or
INFERENCE_OTEL=on; INFERENCE_OTEL=off wins. This is the only module that imports opentelemetry,
and it does so only once tracing is on: off, each function here is a few dictionary look-ups.

    parent()                 the trace context a completion created now belongs to
    completion(result, ...)  one finished completion -> one `chat {model}` span
    begin(operation, ...)    a parent span (map, experiment, summarize) or an embeddings span;
                             `.run(fn, ...)` runs work in a worker thread as its child
    flush() / status()       for tests and `%infer_otel`

Spans are exported by a BatchSpanProcessor in its own thread, in batches: a collector that is
down or slow never delays or fails a cell; the first failed export gives one notice per kernel.

Prompt and answer text go out only with OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true,
and even then never for a private prompt, never under INFERENCE_PRIVACY=local-only to a collector
that is not on this machine, and always with secrets redacted: the collector is a destination
like any other.
"""
from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import unquote

from . import settings as settings_module

SWITCH = "INFERENCE_OTEL"
TRACES_ENDPOINT, ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_HEADERS, HEADERS = "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"
CAPTURE = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
SERVICE = "OTEL_SERVICE_NAME"
NAMES = (SWITCH, TRACES_ENDPOINT, ENDPOINT, TRACES_HEADERS, HEADERS, CAPTURE, SERVICE)
DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"  # the OTLP/HTTP default port
EXIT_WAIT_S = 3.0  # at most this long at exit to send the last spans


@dataclass(frozen=True)
class Config:
    on: bool
    why: str                 # why tracing is on or off, for %infer_otel
    endpoint: str = ""
    headers: tuple = field(default=(), repr=False)  # (name, value) pairs; values are credentials, never shown
    service: str = "inference_magics"
    capture: bool = False    # the convention's content switch is set
    content: str = "off"     # "captured", or why not


def _provider(backend: str) -> str:
    """gen_ai.provider.name: as the backend's spec says (the embedded model is llama.cpp), else its name."""
    from .backends import REGISTRY

    return REGISTRY[backend].provider if backend in REGISTRY and REGISTRY[backend].provider else backend


def _url(raw: str) -> str:
    """An endpoint as it may be shown: no user:password, no query."""
    return re.sub(r"\?.*$", "?…", re.sub(r"//[^/@\s]*@", "//***@", raw))


def _headers(raw: str | None) -> tuple:
    pairs = []
    for item in (raw or "").split(","):
        name, sep, value = item.partition("=")
        if sep and name.strip():
            pairs.append((unquote(name.strip()).lower(), unquote(value.strip())))
    return tuple(pairs)


def config() -> Config:
    """What tracing does now (read afresh each time, like every setting)."""
    values = settings_module.outside_values(*NAMES)
    switch = values.get(SWITCH, "").strip().lower()
    signal, base = values.get(TRACES_ENDPOINT, "").strip(), values.get(ENDPOINT, "").strip()
    if switch in ("off", "false", "0", "no"):
        return Config(False, f"{SWITCH}={switch} (it wins over the OTLP endpoint)")
    if not (signal or base or switch in ("on", "true", "1", "yes")):
        return Config(False, f"neither {ENDPOINT} nor {TRACES_ENDPOINT} is set, and {SWITCH} is not on")
    # the signal-specific URL is used as written; the base URL gets the traces path (as the SDK does)
    endpoint = signal or (base.rstrip("/") + "/v1/traces" if base else DEFAULT_ENDPOINT)
    why = (f"{TRACES_ENDPOINT} is set" if signal else f"{ENDPOINT} is set" if base else
           f"{SWITCH}=on (the default OTLP/HTTP endpoint)")
    capture = values.get(CAPTURE, "").strip().lower() == "true"
    return Config(True, why, endpoint, _headers(values.get(TRACES_HEADERS) or values.get(HEADERS)),
                  values.get(SERVICE, "").strip() or "inference_magics", capture, _content_rule(capture, endpoint))


def _content_rule(capture: bool, endpoint: str) -> str:
    """Whether prompt and answer text may go to this collector at all (a private prompt never does)."""
    from .backends import is_loopback

    if not capture:
        return f"off ({CAPTURE} is not true)"
    try:
        privacy = settings_module.load().privacy
    except Exception:  # a bad setting fails the completion itself with its own line; send no content
        return "withheld: the settings cannot be read"
    if privacy == "local-only" and not is_loopback(endpoint):
        return "withheld: INFERENCE_PRIVACY=local-only and the collector is not on this machine"
    return "captured"


# --- the exporter, built once tracing is first used ----------------------------------------------
def _probe(endpoint: str) -> str | None:
    """Why a collector cannot be reached, when the exporter did not say (runs in the export thread)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname or "localhost", port), timeout=1.0).close()
    except ConnectionRefusedError:
        return "connection refused: nothing listens there"
    except socket.timeout:
        return "no answer within 1 s"
    except (OSError, ValueError) as exc:
        return getattr(exc, "strerror", None) or type(exc).__name__
    return None  # something listens: the exporter's own line stands


class _Watched:
    """The OTLP exporter, remembering whether its last export failed (the SDK only logs it)."""

    def __init__(self, inner, failures: "_Failures", endpoint: str):
        self.inner, self.failures, self.endpoint = inner, failures, endpoint

    def export(self, spans):
        from opentelemetry.sdk.trace.export import SpanExportResult

        try:
            outcome = self.inner.export(spans)
        except Exception as exc:  # an exporter bug must not kill the export thread
            self.failures.note(f"{type(exc).__name__}: {exc}", self.endpoint)
            return SpanExportResult.FAILURE
        if outcome is SpanExportResult.SUCCESS:
            self.failures.ok()
        else:
            self.failures.note(None, self.endpoint)
        return outcome

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _Failures(logging.Handler):
    """Export outcomes, and the exporter's own log lines (kept out of the notebook's stderr: the
    one notice says it instead)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.last_error: str | None = None  # the last export's failure, None after a success
        self.failed = 0
        self.sent = 0
        self._reason: str | None = None

    def emit(self, record):
        if record.levelno < logging.WARNING:
            return
        text = record.getMessage()
        status = re.search(r"code: (\d+), reason: ([^\n]{0,80})", text)
        if "refused" in text.lower():
            self._reason = "connection refused: nothing listens there"
        elif status:
            self._reason = f"the collector answered HTTP {status[1]} {status[2]}".rstrip()
        elif "timed out" in text.lower() or "timeout" in text.lower() and "max retries" not in text:
            self._reason = "timed out"
        elif "max retries or shutdown" not in text:
            self._reason = text.splitlines()[0][:160]

    def note(self, reason: str | None, endpoint: str) -> None:
        """A failed export: why, from the exporter's log lines or else from a look at the port."""
        self.failed += 1
        self.last_error = reason or self._reason or _probe(endpoint) or "the export failed after its retries"
        self._reason = None

    def ok(self) -> None:
        self.sent += 1
        self.last_error = None


@dataclass
class _Pipeline:
    key: tuple = field(repr=False)  # holds the header values
    provider: object
    tracer: object
    failures: _Failures


_lock = threading.Lock()
_pipeline: _Pipeline | None = None
_notice_given = False
_missing_sdk: str | None = None


def _get(cfg: Config) -> _Pipeline | None:
    """The tracer for this endpoint, built on first use (and rebuilt if the endpoint changes)."""
    global _pipeline, _missing_sdk
    key = (cfg.endpoint, cfg.headers, cfg.service)
    current = _pipeline
    if current is not None and current.key == key:
        return current
    with _lock:
        if _pipeline is not None and _pipeline.key == key:
            return _pipeline
        try:
            built = _build(cfg, key)
        except ImportError as exc:
            _missing_sdk = f"{exc.name or 'opentelemetry'} is not installed"
            return None
        old, _pipeline = _pipeline, built
    if old is not None:  # spans already queued for the old endpoint go out in the background
        threading.Thread(target=_close, args=(old,), name="otel-close", daemon=True).start()
    return built


def _build(cfg: Config, key: tuple) -> _Pipeline:
    import requests
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from . import __version__
    from .backends import is_loopback

    failures = _Failures()
    # the SDK's and exporter's log lines would land in whatever cell runs when an export fails
    sdk_log = logging.getLogger("opentelemetry")
    sdk_log.propagate = False
    sdk_log.handlers = [h for h in sdk_log.handlers if not isinstance(h, _Failures)] + [failures]
    session = requests.Session()
    if is_loopback(cfg.endpoint):
        session.trust_env = False  # a collector on this machine is reached directly, never through a proxy
    exporter = OTLPSpanExporter(endpoint=cfg.endpoint, headers=dict(cfg.headers), session=session)
    provider = TracerProvider(resource=Resource.create({"service.name": cfg.service}), shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(_Watched(exporter, failures, cfg.endpoint)))
    pipeline = _Pipeline(key, provider, provider.get_tracer("inference_magics", __version__), failures)
    import atexit

    atexit.register(_close, pipeline)
    return pipeline


def _close(pipeline: _Pipeline) -> None:
    """Send what is queued, unless the collector is failing; and never wait more than
    EXIT_WAIT_S for it (a collector that went down since cannot hold a kernel's exit)."""
    if pipeline.failures.last_error is None:
        closing = threading.Thread(target=pipeline.provider.shutdown, name="otel-shutdown", daemon=True)
        closing.start()
        closing.join(EXIT_WAIT_S)


def flush(timeout_s: float = 10.0) -> bool:
    """Export every finished span now (tests use it instead of sleeping)."""
    pipeline = _pipeline
    return True if pipeline is None else pipeline.provider.force_flush(int(timeout_s * 1000))


def _notice(cfg: Config, pipeline: _Pipeline | None) -> str | None:
    """The one notice per kernel: the collector cannot be reached, or the SDK is missing."""
    global _notice_given
    if _notice_given:
        return None
    if pipeline is None:
        _notice_given = True
        return (f"tracing is on ({cfg.why}) but {_missing_sdk} — pip install opentelemetry-sdk "
                f"opentelemetry-exporter-otlp-proto-http, or set {SWITCH}=off.")
    error = pipeline.failures.last_error
    if error is None:
        return None
    _notice_given = True
    return (f"tracing: spans could not be sent to {_url(cfg.endpoint)} ({error}) — start the collector or set "
            f"{SWITCH}=off; cells are not affected, and this notice shows once.")


# --- spans ---------------------------------------------------------------------------------------
_conversation: contextvars.ContextVar[str | None] = contextvars.ContextVar("im_conversation", default=None)
_RUN = os.urandom(6).hex()  # this process: conversation ids never collide across kernels


def conversation(chat) -> None:
    """Mark the completions this thread makes from now on (a chat widget's answer worker) as turns
    of one conversation: `gen_ai.conversation.id`. A new conversation (/clear) gets a new id."""
    _conversation.set(f"{_RUN}-{id(chat):x}")


def parent():
    """The trace context in force now (None when tracing is off): a completion created here is its
    child even when it is iterated elsewhere."""
    if not config().on:
        return None
    try:
        from opentelemetry import context
    except ImportError:  # completion() gives the one notice that says so
        return None
    return context.get_current()


def _epoch_ns(perf: float, now_ns: int, now_perf: float) -> int:
    return now_ns - int((now_perf - perf) * 1e9)


def _messages(system, turns, answer: str, finish_reason) -> dict:
    """The convention's opt-in content attributes, secrets redacted."""
    from .privacy import redact_secrets

    def parts(text) -> list:
        return [{"type": "text", "content": redact_secrets(str(text))}]

    attributes = {
        "gen_ai.input.messages": json.dumps([{"role": t.get("role", "user"), "parts": parts(t.get("content", ""))}
                                             for t in turns], ensure_ascii=False),
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": parts(answer),
                                               "finish_reason": finish_reason or "unknown"}], ensure_ascii=False),
    }
    if system:
        attributes["gen_ai.system_instructions"] = json.dumps(parts(system), ensure_ascii=False)
    return attributes


def _withheld(route, system, turns) -> str | None:
    """Why this completion's text must not go to any collector, or None."""
    from .privacy import classify

    if route is not None and route.private:
        return "withheld: private"
    sent = "\n".join([system or ""] + [str(t.get("content", "")) for t in turns])
    return "withheld: private" if classify(sent) is not None else None


def completion(result, **details) -> str | None:
    """Record one finished (or failed, or interrupted) completion as a `chat {model}` span.
    Returns the one-per-kernel notice when spans cannot be exported, else None. Tracing never
    fails a completion: a fault here becomes that notice."""
    try:
        cfg = config()
        return _completion(cfg, result, **details) if cfg.on else None
    except Exception as exc:
        return _fault(exc)


def _fault(exc: Exception) -> str | None:
    global _notice_given
    if _notice_given:
        return None
    _notice_given = True
    return f"tracing failed ({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}) — the " \
           f"answer is unaffected; set {SWITCH}=off to stop tracing. This notice shows once."


def _completion(cfg: Config, result, *, parent, started: float, ended: float, turns=(), system=None,
                temperature=None, max_tokens=None, format=None, **_ignored) -> str | None:
    """Called from the Stream's finish, so during an error the exception being handled names `error.type`."""
    pipeline = _get(cfg)
    if pipeline is None:
        return _notice(cfg, None)
    from opentelemetry.trace import SpanKind, Status, StatusCode

    from .privacy import redact_secrets

    route = result.route
    backend = result.backend or (route.backend if route else "")
    requested = route.model if route else result.model
    now_ns, now_perf = time.time_ns(), time.perf_counter()
    start_ns = _epoch_ns(started, now_ns, now_perf)
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": _provider(backend),
        "gen_ai.system": _provider(backend),  # the name before semantic conventions 1.37
        "gen_ai.request.model": requested,
        "gen_ai.response.model": result.model,
        "gen_ai.output.type": "json" if format == "json" else "text",
        "gen_ai.usage.input_tokens": result.usage.input_tokens,
        "gen_ai.usage.output_tokens": result.usage.output_tokens,
        "inference_magics.backend": backend,
        "inference_magics.route.reason": route.reason if route else "",
        "inference_magics.private": bool(route and route.private),
        "inference_magics.cached": bool(result.cached),  # answered from the response cache: no request
        "inference_magics.interrupted": result.interrupted,
    }
    if result.stop_reason:
        attributes["gen_ai.response.finish_reasons"] = [result.stop_reason]
    if (conversation_id := _conversation.get()) is not None:
        attributes["gen_ai.conversation.id"] = conversation_id
    if max_tokens is not None:
        attributes["gen_ai.request.max_tokens"] = max_tokens
    if temperature is not None:
        attributes["gen_ai.request.temperature"] = float(temperature)
    if result.cost_usd is not None:
        attributes["inference_magics.cost_usd"] = result.cost_usd
    if result.metrics.ttft_s is not None:
        attributes["inference_magics.ttft_s"] = result.metrics.ttft_s
    if cfg.capture:
        content = cfg.content if cfg.content != "captured" else (_withheld(route, system, turns) or "captured")
        attributes["inference_magics.content"] = content
        if content == "captured":
            attributes.update(_messages(system, turns, result.text, result.stop_reason))
    span = pipeline.tracer.start_span(f"chat {requested}", context=parent, kind=SpanKind.CLIENT,
                                      start_time=start_ns, attributes=attributes)
    if result.metrics.ttft_s is not None:
        span.add_event("gen_ai.first_token", {"gen_ai.response.time_to_first_chunk": result.metrics.ttft_s},
                       timestamp=start_ns + int(result.metrics.ttft_s * 1e9))
    if result.error and not result.interrupted:
        handled = sys.exc_info()[1]
        kind = type(handled).__name__ if handled is not None else "_OTHER"
        span.set_attribute("error.type", kind)
        # an error line may quote what the server said, and a server may echo the prompt
        private = attributes["inference_magics.private"]
        span.set_status(Status(StatusCode.ERROR, f"{kind} (the message is withheld: private)" if private else
                               redact_secrets(result.error)))
    span.end(end_time=_epoch_ns(ended, now_ns, now_perf))
    return _notice(cfg, pipeline)


class _Off:
    """What begin() gives when tracing is off: runs the work, records nothing."""

    def run(self, fn, *args, **kwargs):
        return fn(*args, **kwargs)

    def end(self, error: str | None = None) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> bool:
        return False


OFF = _Off()


class _Span(_Off):
    """A live span: the parent of whatever `.run()` runs, in any thread."""

    def __init__(self, tracer, name: str, attributes: dict, kind):
        from opentelemetry import trace

        self._tracer = tracer
        self._span = tracer.start_span(name, kind=kind, attributes=attributes)
        self._context = trace.set_span_in_context(self._span)
        self._token = None

    def run(self, fn, *args, **kwargs):
        from opentelemetry import context

        token = context.attach(self._context)
        try:
            return fn(*args, **kwargs)
        finally:
            context.detach(token)

    def end(self, error: str | None = None) -> None:
        if error:
            from opentelemetry.trace import Status, StatusCode

            from .privacy import redact_secrets

            self._span.set_status(Status(StatusCode.ERROR, redact_secrets(error)))
        self._span.end()

    def __enter__(self):
        from opentelemetry import context

        self._token = context.attach(self._context)
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        from opentelemetry import context

        context.detach(self._token)
        if exc is not None:
            self._span.set_attribute("error.type", kind.__name__)
        # the class only: an error line may quote a server, and a server may echo the texts it was sent
        self.end(kind.__name__ if exc is not None else None)
        return False


def begin(operation: str, model: str | None = None, *, route=None, **details):
    """A span for work that is not one completion: `embeddings` (a client call, one per request)
    or a parent (`map`, `experiment`, `summarize`) whose children are the completions run through
    `.run()`. Use it as `with begin(...):` or call `.end()`. `details` become
    `inference_magics.<name>` attributes."""
    try:
        cfg = config()
        return _begin(cfg, operation, model, route, details) if cfg.on else OFF
    except Exception:  # tracing never fails the work; completions report a fault as their notice
        return OFF


def _begin(cfg: Config, operation: str, model, route, details: dict):
    pipeline = _get(cfg)
    if pipeline is None:
        return OFF
    from opentelemetry.trace import SpanKind

    attributes = {"inference_magics.operation": operation}
    if route is not None:
        provider = _provider(route.backend)
        attributes.update({"gen_ai.operation.name": operation, "gen_ai.provider.name": provider,
                           "gen_ai.system": provider, "gen_ai.request.model": route.model,
                           "inference_magics.backend": route.backend, "inference_magics.route.reason": route.reason,
                           "inference_magics.private": route.private})
    attributes.update({f"inference_magics.{k}": v for k, v in details.items() if v is not None})
    kind = SpanKind.CLIENT if route is not None else SpanKind.INTERNAL
    return _Span(pipeline.tracer, f"{operation} {model}" if model else operation, attributes, kind)


def status() -> dict:
    """For %infer_otel: on or off and why, where spans go, whether text is included, how exports went."""
    cfg = config()
    shown = {"tracing": "on" if cfg.on else "off", "why": cfg.why}
    if not cfg.on:
        return shown
    pipeline = _pipeline if _pipeline is not None and _pipeline.key[0] == cfg.endpoint else None
    shown.update({
        "endpoint": _url(cfg.endpoint),
        "headers": ", ".join(name for name, _ in cfg.headers) or "none",
        "service.name": cfg.service,
        "content": cfg.content if cfg.content != "captured" else "captured, secrets redacted; a private prompt's "
                                                                  "text never (its span says withheld: private)",
        "exports": ("none yet" if pipeline is None or not (pipeline.failures.sent or pipeline.failures.failed) else
                    f"{pipeline.failures.sent} sent, {pipeline.failures.failed} failed"
                    + (f"; last: {pipeline.failures.last_error}" if pipeline.failures.last_error else "")),
    })
    if _missing_sdk:
        shown["problem"] = _missing_sdk
    return shown
