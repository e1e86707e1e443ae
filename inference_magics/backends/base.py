"""What every backend speaks: a Request goes down, events come back up."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Protocol


@dataclass(frozen=True)
class Request:
    model: str
    messages: tuple[dict, ...]  # [{"role": "user"|"assistant", "content": str}, ...]
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    format: str | None = None  # None or "json"
    stream: bool = True
    # the first N characters of the last user message repeat across requests (a --map template's
    # fixed part): a backend with prompt caching may mark that prefix as cacheable
    stable_prefix_chars: int = 0
    # images and PDFs for the last user message (attachments.Attachment); each backend encodes them
    attachments: tuple = ()


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ThinkingDelta:
    text: str


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0   # for Claude: the input not read from or written to its prompt cache
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0  # Claude's prompt cache: input written to it (billed 1.25x)
    cache_read_input_tokens: int = 0      # ... and input read from it (billed 0.1x)


@dataclass(frozen=True)
class Done:
    stop_reason: str | None
    usage: Usage = field(default_factory=Usage)
    model: str | None = None  # the model id the server reports (resolved aliases)
    server_tokens_per_s: float | None = None  # generation speed as the server measured it


@dataclass(frozen=True)
class Notice:
    """A one-line advisory for the footer (a restarted server, a fallback inside a backend). A
    `transient` one says what is happening while the cell waits ("starting the embedded model…")
    and is not kept in the footer."""
    text: str
    transient: bool = False


@dataclass(frozen=True)
class Waiting:
    """Why nothing is arriving yet (a retry backoff): shown live in the cell, not kept."""
    text: str


@dataclass(frozen=True)
class ModelLoad:
    """The backend waited this long for its model to load before asking: kept out of time-to-first-token."""
    seconds: float


Event = TextDelta | ThinkingDelta | Notice | Waiting | ModelLoad | Done


@dataclass(frozen=True)
class ModelInfo:
    backend: str
    name: str
    kind: str = "chat"  # "chat" or "embed"
    size: int | None = None
    parameter_size: str | None = None
    family: str | None = None
    quantization: str | None = None
    modified_at: str | None = None
    aliases: tuple[str, ...] = ()  # other names the router accepts for it
    default_for: str = ""          # the tasks it is configured as default for (chat, code, embeddings)


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str
    latency_s: float | None = None


class Backend(Protocol):
    name: str

    @classmethod
    def config_key(cls, settings) -> tuple: ...

    def stream(self, request: Request) -> Iterator[Event]:
        """Yield TextDelta/ThinkingDelta events, then exactly one Done. Raise InferenceError
        subclasses with one actionable line. Closing the generator closes the HTTP response."""

    def list_models(self) -> list[ModelInfo]: ...

    def health(self) -> Health: ...
