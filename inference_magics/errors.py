"""One family of errors, each carrying a single actionable line: what failed, why, what to do."""
from __future__ import annotations

import logging
import re


class InferenceError(Exception):
    """Base of every error we raise to callers.

    In a notebook the message is shown as one red line instead of a traceback:
    IPython calls ``_render_traceback_`` on the exception it is about to display.
    """

    def __init__(self, message: str, *, result=None):
        # one line, whatever a server put in the text it sent us (line breaks, terminal escapes); a
        # server may echo the request: every secret the detector finds goes too, as in the history
        try:
            from .paths import redacted

            message = redacted(message)
        except Exception:  # noqa: BLE001 — the detector failing must not hide the error being raised
            message = redact(message)
        super().__init__(printable(message))
        self.result = result  # the partial Result of a stream that failed after producing text

    def with_result(self, result) -> "InferenceError":
        """The same error, carrying the Result that was being built when it was raised."""
        return type(self)(self.message, result=result)

    @property
    def message(self) -> str:
        return self.args[0]

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[31m{type(self).__name__}: {self.message}\x1b[0m"]


class ConfigError(InferenceError):
    """A setting (env var, .env line, %config trait) has a value we cannot use."""


class PrivacyError(InferenceError):
    """A private prompt was about to leave the machine; we refused."""


class BackendUnavailable(InferenceError):
    """The backend cannot be reached (connection refused, DNS, connect timeout)."""


class ModelNotFound(InferenceError):
    """The backend does not have the requested model."""


class AuthenticationFailed(InferenceError):
    """Missing or rejected credentials."""


class RateLimited(InferenceError):
    """Rate limited or overloaded, after the retries were spent."""


class BackendError(InferenceError):
    """Any other failure reported by a backend (bad request, server error, broken stream)."""


class TextTooLong(BackendError):
    """A text to embed has more tokens than the embedding model takes at once. `position` is its
    index in the batch the backend was sent; `tokens`, `limit` and `model` say the rest, so that
    the caller can name the text by its index in the user's own list (embeddings.py)."""

    position: int | None = None
    tokens: int | None = None
    limit: int | None = None
    model: str = ""

    @classmethod
    def of(cls, position: int | None, tokens: int | None, limit: int, model: str, single: bool = False) -> "TextTooLong":
        which = "the text" if single else ("a text" if position is None else f"text {position}")
        size = f" ({tokens} tokens)" if tokens else ""
        error = cls(f"{which}{size} is longer than {model} can embed: its limit is {limit} tokens — split the text "
                    "into shorter pieces (or shorten it) and embed those.")
        error.position, error.tokens, error.limit, error.model = position, tokens, limit, model
        return error


class Incomplete(BackendError):
    """The stream ended cleanly but the model never said it had finished: the answer may be cut
    short. The Result keeps the text, with stop_reason "incomplete"."""


class InferenceInterrupted(KeyboardInterrupt):
    """Ctrl-C / kernel interrupt during a stream. Still a KeyboardInterrupt, so loops stop;
    ``.result`` holds the partial Result, marked interrupted (``.mapped`` the finished rows of a
    --map, ``.experiment`` the runs of an experiment)."""

    def __init__(self, result=None, *, mapped=None, experiment=None, note: str | None = None):
        super().__init__("interrupted")
        self.result, self.mapped, self.experiment = result, mapped, experiment
        self.note = note  # what stopped and what to do, where there was no stream (a listing, an estimate)

    def _render_traceback_(self) -> list[str]:
        if self.note is not None:
            return [f"\x1b[33mInterrupted: {self.note}\x1b[0m"]
        if self.result is None:
            return ["\x1b[33mInterrupted: every stream was stopped; the partial answers are kept.\x1b[0m"]
        n = len(self.result.text)
        return [f"\x1b[33mInterrupted: the stream was stopped; the partial answer ({n} characters) is kept in _infer.\x1b[0m"]


# --- server text in messages ------------------------------------------------------------------
# error texts quote servers: control characters (ANSI escapes, OSC hyperlinks, bells) must not
# reach the terminal-like renderer of the error line
_BREAKS = re.compile(r"[\t\n\r\v\f]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # the rest of C0, DEL and C1: terminal escapes


def printable(text: str) -> str:
    """One line of text: line breaks become a space, other control characters go."""
    return _CONTROL.sub("", _BREAKS.sub(" ", text))


# --- secret redaction -------------------------------------------------------------------------
# Secrets we know of are registered here (the configured API keys); anything that looks like a
# key is masked too, so no error text, log line or repr can carry one.
_known_secrets: set[str] = set()
_KEY_SHAPES = re.compile(r"\b(sk-ant-[A-Za-z0-9_\-]{6,}|sk-[A-Za-z0-9_\-]{16,})")


def register_secret(value: str | None) -> None:
    if value and len(value) >= 6:
        _known_secrets.add(value)
        _mask_client_logs()


# the HTTP clients we drive log each request's URL once a user turns logging on (httpx, and httpx2
# under the Anthropic SDK, at INFO; the SDK itself at DEBUG): a URL's user:password@ or ?key= would
# be in those lines
_CLIENT_LOGGERS = ("httpx", "httpcore", "httpx2", "httpcore2", "anthropic._base_client", "ollama._client")


class _MaskSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


_MASK = _MaskSecrets()


def _mask_client_logs() -> None:
    for name in _CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        if _MASK not in logger.filters:
            logger.addFilter(_MASK)


def redact(text: str) -> str:
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, "***")
    return _KEY_SHAPES.sub(lambda m: m.group(0)[:7] + "***", text)
