"""What every backend speaks: a Request goes down, events come back up."""
from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
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
    # typed answers and tool calling (tools.py, typed_answers.py): a JSON schema the answer must
    # follow, and the tools the model may call ({"name", "description", "parameters"} each). Tool
    # turns in `messages` are neutral: an assistant turn may carry "tool_calls" [{"id", "name",
    # "arguments"}], and a {"role": "tool", "tool_call_id", "name", "content", "is_error"} turn
    # answers one; each backend encodes them in its own protocol.
    schema: dict | None = None
    tools: tuple[dict, ...] = ()
    # images and PDFs for the last user message (attachments.Attachment); each backend encodes them
    attachments: tuple = ()

    def last_user_turn(self) -> int:
        """Where attachments go: the last user message (a tool loop's later turns answer tool calls)."""
        return max((i for i, m in enumerate(self.messages) if m.get("role") == "user"), default=len(self.messages) - 1)


# A piece of the answer's text is the str itself, not an object around it: one comes for every token
# of every answer, and building a slotted dataclass for each, then unwrapping it, cost ~2,000
# instructions a token, 3% of the official Ollama client's own ~59,000 (counted under cachegrind).
# Every other event is a small dataclass below; thinking deltas are slotted, not frozen, because
# they too come once per token.
@dataclass(slots=True)
class ThinkingDelta:
    text: str


@dataclass(frozen=True)
class ToolCall:
    """The model asks to call one of the request's tools (arguments as the model wrote them)."""
    id: str
    name: str
    arguments: object


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0   # for Claude: the input not read from or written to its prompt cache
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0  # Claude's prompt cache: input written to it (billed 1.25x)
    cache_read_input_tokens: int = 0      # ... and input read from it (billed 0.1x)

    def __add__(self, other: "Usage") -> "Usage":
        """Two requests' counts together (a tool loop's steps, a typed answer's retry)."""
        return Usage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


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


def wait_to_retry(why: str, seconds: float) -> Iterator[Waiting]:
    """A retry's wait, said and then slept a second at a time with the time left: each Waiting is a
    point where the consumer may close the stream, so a map row or an experiment run whose cell was
    interrupted stops there instead of sending its retry after the user pressed stop."""
    end, left = time.monotonic() + seconds, seconds
    while True:
        yield Waiting(f"{why}; retrying in {left:.0f} s")
        if left <= 0:
            return
        time.sleep(min(1.0, left))
        if (left := end - time.monotonic()) <= 0:
            return


@dataclass(frozen=True)
class ModelLoad:
    """The backend waited this long for its model to load before asking: kept out of time-to-first-token."""
    seconds: float


Event = str | ThinkingDelta | ToolCall | Notice | Waiting | ModelLoad | Done


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
    """What every backend does. What only some do is declared in their spec's `capabilities`
    (backends/spec.py), and a caller asks `spec.supports(...)` before calling the method that
    capability names below; tests/test_backend_specs.py checks that each class has them."""
    name: str

    def __init__(self, settings) -> None:
        """Built from the settings its spec names (one instance per distinct set of their values)."""

    def stream(self, request: Request) -> Iterator[Event]:
        """Yield the answer's text as str pieces, and ThinkingDelta, ToolCall... events, then exactly
        one Done. Raise InferenceError subclasses with one actionable line. Closing the generator
        closes the HTTP response."""

    def list_models(self) -> list[ModelInfo]: ...

    def health(self) -> Health: ...


class Embeds(Protocol):  # capability "embed"
    def embed(self, texts: list[str], model: str) -> list[list[float]]: ...


class ResolvesNames(Protocol):  # capability "resolve": family names and the deprecation hook
    def resolve(self, model: str) -> str:
        """A family name (sonnet) -> the newest dated model id; any other name unchanged."""

    def deprecation(self, model: str) -> str | None:
        """One line for the footer when this model is deprecated, else None."""


class CountsTokens(Protocol):  # capability "count_tokens"
    def count_tokens(self, request: Request) -> int: ...


class DescribesModels(Protocol):  # capability "describe": what a model can do, as its server says
    def capabilities(self, model: str) -> list[str] | None: ...  # None: the server does not say


class MessageBatches(Protocol):  # capability "batch": half price, results within 24 hours
    def submit_batch(self, requests: dict[str, Request]) -> str: ...

    def batch_status(self, batch_id: str) -> dict: ...

    def batch_results(self, batch_id: str) -> dict[str, tuple[str | None, str | None, int]]: ...


#: the methods each optional capability promises (vision, tools and schema travel in the Request)
METHODS = {"embed": Embeds, "resolve": ResolvesNames, "count_tokens": CountsTokens, "batch": MessageBatches,
           "describe": DescribesModels}
