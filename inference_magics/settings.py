"""Every setting in one place: process environment, then $PAI_DIR/.env, then ./.env (the
environment wins), with per-kernel `%config InferenceMagics.<name> = ...` overrides on top.

Settings are read afresh for each request (a few file stats and a small parse) so that `%env`,
an edited .env file and `%config` all take effect in the next cell without a reload.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field as dc_field, make_dataclass
from pathlib import Path
from typing import Any, Callable

from .backends import REGISTRY
from .errors import ConfigError, redact, register_secret

#: how long we wait for a TCP connection before calling a backend unreachable
CONNECT_TIMEOUT_S = 2.0


class Secret:
    """Holds a credential; never shows it in str(), repr() or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value
        register_secret(value)

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other):
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self):
        return hash(self._value)


# --- parsers: text -> value, or ConfigError naming what is accepted ----------------------------
def _choice(*options: str) -> Callable[[str, str], str]:
    def parse(var: str, raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ConfigError(f"{var}={raw!r} is not valid — use one of: {', '.join(options)}.")
        return value
    return parse


def _bool(var: str, raw: str) -> bool:
    value = str(raw).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{var}={raw!r} is not valid — use true or false.")


def _positive_int(var: str, raw: str) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"{var}={raw!r} is not valid — use a positive whole number (milliseconds or a count).")
    return value


MAX_TIMEOUT_MS = 86_400_000  # one day: longer waits overflow the socket layer's timeout (OverflowError deep in a client)


def _milliseconds(var: str, raw: str) -> int:
    value = _positive_int(var, raw)
    if value > MAX_TIMEOUT_MS:
        raise ConfigError(f"{var}={raw!r} is too long — use milliseconds from 1 to {MAX_TIMEOUT_MS} (one day).")
    return value


def _optional_positive_int(var: str, raw: str) -> int | None:
    return _positive_int(var, raw) if str(raw).strip() else None


# llama.cpp's own limits for the embedded server: past them llama-server exits with a line that does
# not name the setting (n_seq_max must be <= 256; stoi of --ctx-size; std::bad_alloc for the threads)
MAX_LOCAL_PARALLEL = 256           # LLAMA_MAX_SEQ (src/llama-cparams.h): sequences, so slots, per context
MAX_LOCAL_CTX_TOTAL = 2**31 - 1    # --ctx-size (the window × the slots) is read with std::stoi: a 32-bit int
MAX_LOCAL_THREADS = 512            # GGML_MAX_N_THREADS (ggml.h): the CPU backend's thread arrays
THREADS_PER_CPU = 4                # more threads than this per CPU only wait for each other at every step


def _local_parallel(var: str, raw: str) -> int:
    value = _positive_int(var, raw)
    if value > MAX_LOCAL_PARALLEL:
        raise ConfigError(f"{var}={raw!r} is more slots than llama-server has — use 1 to {MAX_LOCAL_PARALLEL}.")
    return value


def _local_ctx_size(var: str, raw: str) -> int:
    value = _positive_int(var, raw)
    if value > MAX_LOCAL_CTX_TOTAL:
        raise ConfigError(f"{var}={raw!r} is more than llama-server accepts — use 1 to {MAX_LOCAL_CTX_TOTAL} tokens "
                          "(and keep it × INFERENCE_LOCAL_PARALLEL within that).")
    return value


def max_local_threads() -> int:
    """The most INFERENCE_LOCAL_THREADS accepts on this machine: a few per CPU, and never more than ggml's limit."""
    return min(MAX_LOCAL_THREADS, THREADS_PER_CPU * (os.cpu_count() or 1))


def _local_threads(var: str, raw: str) -> int | None:
    value = _optional_positive_int(var, raw)
    most = max_local_threads()
    if value is not None and value > most:
        raise ConfigError(f"{var}={raw!r} is far more threads than this machine's {os.cpu_count() or 1} CPUs — use "
                          f"1 to {most}, or leave it unset (one fewer than the cores).")
    return value


def _count(var: str, raw: str) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(f"{var}={raw!r} is not valid — use a whole number, 0 or more.")
    return value


def _usd(var: str, raw: str) -> float:
    try:
        value = float(str(raw).strip().lstrip("$"))
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"{var}={raw!r} is not valid — use an amount in US dollars, e.g. 1.00.")
    return value


def _optional_usd(var: str, raw: str) -> float | None:
    return _usd(var, raw) if str(raw).strip() else None


def _prices(var: str, raw: str) -> tuple | None:
    """JSON {"model or family": [input, output] or {"input": .., "output": .., "cache_write": .., "cache_read": ..}}."""
    if not str(raw).strip():
        return None
    from .pricing import parse_overrides  # small; only when the variable is set

    return parse_overrides(var, raw)


def _text(var: str, raw: str) -> str:
    value = str(raw).strip()
    if not value:
        raise ConfigError(f"{var} is empty — give a value or remove the line to use the default.")
    return value


def _optional_text(var: str, raw: str) -> str | None:
    return str(raw).strip() or None


def _secret(var: str, raw: str) -> Secret | None:
    value = str(raw).strip()
    # a key travels in an HTTP header: ASCII without spaces. A pasted curly quote or an invisible
    # character would otherwise fail deep in the client; the message never shows the key
    bad = next((i for i, c in enumerate(value) if not "!" <= c <= "~"), None)
    if bad is not None:
        raise ConfigError(f"{var} has a character an HTTP header cannot carry at position {bad + 1} of "
                          f"{len(value)} (non-ASCII, a space or a control character) — paste the key again "
                          "from its console as plain text.")
    return Secret(value) if value else None


def _masked(raw: str) -> str:
    """A URL as it may be shown: no user:password, no query (it may hold a key)."""
    return re.sub(r"\?.*$", "?…", re.sub(r"//[^/@\s]*@", "//***@", str(raw)))


def _register_url_secrets(url: str) -> str:
    """A URL's credentials (user:password or a token before `@`, the query string) are secrets:
    registered, so `redact` masks them in every error line, health detail, route reason and record."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if "@" in parts.netloc:
        register_secret(parts.netloc.rpartition("@")[0])
    register_secret(parts.query)
    return url


def _check_host(var: str, raw: str, host: str, example: str) -> None:
    """A host name is letters, digits, dots, - and _ (any script: IDNA spells it), or [IPv6]: anything
    else (a pasted control code, an emoji, a stray bracket) fails in the HTTP client with a traceback."""
    if host and not re.fullmatch(r"\[[0-9a-fA-F:.]+\]|[\w.-]+", host):
        raise ConfigError(f"{var}={_masked(raw)!r} has a host name no server can have ({_masked(host)!r}) — "
                          f"use a URL such as {example}.")


def _http_url(var: str, raw: str) -> str:
    """Accept what Ollama's own OLLAMA_HOST accepts: a URL, host:port, a bare host or :port."""
    text = str(raw).strip().rstrip("/")
    if not text:
        raise ConfigError(f"{var} is empty — use a URL such as http://localhost:11434.")
    bare = re.fullmatch(r"((?:https?://)?)([0-9a-fA-F:.]*:[0-9a-fA-F:.]*)", text)
    if bare and _is_ipv6(bare.group(2)):  # `::1`, as Ollama reads it: an IPv6 address without a port
        text = f"{bare.group(1)}[{bare.group(2)}]"
    match = re.fullmatch(r"(?:(https?)://)?(\[[0-9a-fA-F:]+\]|[^/:\s]*)(?::([^/\s]*))?(/\S*)?", text)
    if not match or "://" in text and not match.group(1):
        raise ConfigError(f"{var}={_masked(raw)!r} is not a usable URL — use http://HOST:PORT, e.g. http://localhost:11434.")
    scheme, host, port, path = match.groups()
    if (path or "").startswith("//"):  # `http//host:11434`: a scheme missing its colon, read as a host named http
        raise ConfigError(f"{var}={_masked(raw)!r} is not a usable URL — write the scheme as http:// (e.g. "
                          "http://localhost:11434).")
    _check_host(var, raw, host.rpartition("@")[2], "http://localhost:11434")
    scheme = scheme or "http"
    host = host or "127.0.0.1"
    if host in ("0.0.0.0", "[::]"):  # a bind address (as in OLLAMA_HOST for the server), not one to dial
        host = "127.0.0.1"
    if not port:  # a bare host means Ollama's port; a URL without a port means the scheme's port
        port = "11434" if "://" not in text else ("443" if scheme == "https" else "80")
    if not port.isdigit() or not 0 < int(port) < 65536:  # a port that runs into password@host or ?key= is not echoed
        shown = f" {port!r}" if re.fullmatch(r"\w*", port) else ""
        raise ConfigError(f"{var}={_masked(raw)!r} has a bad port{shown} — use a number from 1 to 65535.")
    return _register_url_secrets(f"{scheme}://{host}:{int(port)}{path or ''}")


def _is_ipv6(text: str) -> bool:
    import ipaddress

    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address)
    except ValueError:
        return False


def _url(var: str, raw: str, example: str = "http://localhost:8080/v1") -> str:
    """A full http(s) URL with an optional port, kept as written (minus a trailing slash)."""
    text = str(raw).strip().rstrip("/")
    # userinfo (user:password@, a token@) and a query are allowed: registered as secrets below
    match = re.fullmatch(r"https?://(?:[^/@\s]*@)?(\[[0-9a-fA-F:]+\]|[^/:@?#\s]+)(?::(\d*))?([/?#]\S*)?", text)
    if not match:
        raise ConfigError(f"{var}={_masked(raw)!r} is not a usable URL — use a full http:// or https:// URL, e.g. "
                          f"{example}.")
    _check_host(var, raw, match.group(1), example)
    port = match.group(2)
    if port is not None and not (port.isdigit() and 0 < int(port) < 65536):
        raise ConfigError(f"{var}={_masked(raw)!r} has a bad port {port!r} — use a number from 1 to 65535.")
    return _register_url_secrets(text)


def _optional_anthropic_url(var: str, raw: str) -> str | None:
    """Unset or empty: the official endpoint; else a full http(s) URL (a proxy or a gateway)."""
    return _url(var, raw, "https://api.anthropic.com") if str(raw).strip() else None


def _history(var: str, raw: str) -> str:
    """on, off (or their usual spellings), or the path of the database file: a bare word that is
    neither (`none`, `disabled`, a typo) would otherwise become a file of that name next to the notebook."""
    value = _text(var, raw)
    word = value.lower()
    if word in ("on", "true", "1", "yes", "off", "false", "0", "no"):
        return value
    if "/" in value or "\\" in value or "." in value or value.startswith("~"):
        return value
    raise ConfigError(f"{var}={raw!r} is not valid — use on, off, or the path of the history file "
                      "(e.g. ./history.sqlite3 or ~/notes/history.sqlite3).")


@dataclass(frozen=True)
class Var:
    field: str
    env: tuple[str, ...]  # the first is the documented name; later ones are accepted aliases
    default: Any
    parse: Callable[[str, str], Any]
    help: str

    @property
    def configurable(self) -> bool:
        """A %config trait? Every setting but the keys: keys belong in the environment or .env,
        never in a notebook's history."""
        return self.parse is not _secret


VARS: tuple[Var, ...] = (
    Var("default_backend", ("INFERENCE_DEFAULT_BACKEND",), "ollama", _choice(*REGISTRY),
        "Backend used when neither the cell nor the router picks one."),
    Var("privacy", ("INFERENCE_PRIVACY",), "default", _choice("default", "local-only"),
        "local-only: no request reaches a cloud backend, whatever the flags (default: private prompts stay local)."),
    Var("enable_routing", ("INFERENCE_ENABLE_ROUTING", "OLLAMA_ENABLE_ROUTING"), True, _bool,
        "Route by prompt content (privacy words stay local, hard reasoning goes to Claude). "
        "The secret-content guard stays on either way."),
    Var("ollama_base_url", ("OLLAMA_BASE_URL", "OLLAMA_HOST"), "http://localhost:11434", _http_url,
        "Where the Ollama server listens. OLLAMA_HOST is honoured when OLLAMA_BASE_URL is unset."),
    Var("ollama_timeout", ("OLLAMA_TIMEOUT",), 30000, _milliseconds,
        "Milliseconds to wait for Ollama to send data (connecting gives up after 2 s)."),
    Var("ollama_default_model", ("OLLAMA_DEFAULT_MODEL",), "llama3.2:latest", _text, "Ollama model for general prompts."),
    Var("ollama_chat_model", ("OLLAMA_CHAT_MODEL",), "llama3.2:3b", _text, "Ollama model for chat."),
    Var("ollama_code_model", ("OLLAMA_CODE_MODEL",), "qwen2.5-coder:7b", _text, "Ollama model for code tasks."),
    Var("ollama_embed_model", ("OLLAMA_EMBED_MODEL",), "nomic-embed-text:latest", _text, "Ollama model for embeddings."),
    Var("anthropic_api_key", ("ANTHROPIC_API_KEY",), None, _secret, "Claude API key. Never shown in any output."),
    Var("anthropic_default_model", ("ANTHROPIC_DEFAULT_MODEL",), "sonnet", _text,
        "Claude model; the family names sonnet, opus and haiku resolve to the newest model of that family."),
    Var("anthropic_timeout", ("ANTHROPIC_TIMEOUT",), 60000, _milliseconds,
        "Milliseconds to wait for Claude to send data (connecting gives up after 2 s)."),
    Var("anthropic_base_url", ("ANTHROPIC_BASE_URL",), None, _optional_anthropic_url,
        "Anthropic API endpoint; unset means the official one."),
    Var("anthropic_max_retries", ("ANTHROPIC_MAX_RETRIES",), 2, _count,
        "Retries (with backoff, honouring retry-after) for 429/529 and connection errors before a stream starts."),
    Var("max_retry_wait_s", ("INFERENCE_MAX_RETRY_WAIT_S",), 60, _count,
        "Seconds a cell may spend waiting to retry a rate-limited or busy server, in total; a server asking "
        "for a longer wait gets one line saying when to try again (0: never wait)."),
    Var("openai_base_url", ("OPENAI_BASE_URL",), "http://localhost:8080/v1", _url,
        "An OpenAI-compatible server (llama-server, vLLM, LM Studio, Ollama's /v1). Private prompts go there "
        "only when it is on this machine (a loopback address)."),
    Var("openai_api_key", ("OPENAI_API_KEY",), None, _secret, "Key for the OpenAI-compatible server, if it needs one."),
    Var("openai_default_model", ("OPENAI_DEFAULT_MODEL",), None, _optional_text,
        "Model on the OpenAI-compatible server; unset means the first one it lists."),
    Var("openai_timeout", ("OPENAI_TIMEOUT",), 60000, _milliseconds,
        "Milliseconds to wait for the OpenAI-compatible server to send data (connecting gives up after 2 s)."),
    Var("local_server", ("INFERENCE_LOCAL_SERVER",), None, _optional_text,
        "The llama-server binary for the embedded local backend; unset means llama-server on PATH, else the one "
        "the `local` extra builds."),
    Var("local_model", ("INFERENCE_LOCAL_MODEL",), None, _optional_text,
        "A GGUF file, or the name of a model Ollama has pulled (e.g. llama3.2:3b); unset means the packaged "
        "Gemma 3 270M."),
    Var("local_ctx_size", ("INFERENCE_LOCAL_CTX_SIZE",), 4096, _local_ctx_size,
        "Context window, in tokens, for the embedded local model (each slot has it: this × INFERENCE_LOCAL_PARALLEL "
        f"is at most {MAX_LOCAL_CTX_TOTAL})."),
    Var("local_start_timeout", ("INFERENCE_LOCAL_START_TIMEOUT",), 120000, _milliseconds,
        "Milliseconds to wait for the embedded server to load its model."),
    Var("local_parallel", ("INFERENCE_LOCAL_PARALLEL",), 4, _local_parallel,
        "Requests the embedded server runs at once (llama-server slots, batched together; 1 to "
        f"{MAX_LOCAL_PARALLEL}); each slot has the full context window."),
    Var("local_threads", ("INFERENCE_LOCAL_THREADS",), None, _local_threads,
        "CPU threads the embedded server computes with (1 to 4 per CPU); unset means one fewer than this "
        "machine's cores (at least 1), so a busy kernel or browser never stalls it."),
    Var("local_idle_timeout", ("INFERENCE_LOCAL_IDLE_TIMEOUT",), 60000, _milliseconds,
        "Milliseconds the embedded server (shared by your kernels) stays loaded after its last kernel ends."),
    Var("local_embed_model", ("INFERENCE_LOCAL_EMBED_MODEL",), None, _optional_text,
        "Embedding model of the embedded backend: a GGUF file or an Ollama-pulled model; unset means the "
        "packaged all-MiniLM-L6-v2 (the model of Ollama's all-minilm)."),
    Var("data_dir", ("INFERENCE_DATA_DIR",), None, _optional_text,
        "Folder for the embedding cache and the history (owner-only); unset: the user data directory."),
    Var("history", ("INFERENCE_HISTORY",), "on", _history,
        "on (a SQLite log of every completion in the data folder), off, or the path of the database file."),
    Var("embed_batch_size", ("INFERENCE_EMBED_BATCH_SIZE",), 256, _positive_int,
        "Texts per embedding request (a list of 10,000 texts makes ceil(10,000 / this) requests)."),
    Var("cache", ("INFERENCE_CACHE",), "off", _choice("off", "on", "replay"),
        "Response cache: on answers an identical request from the cache file at once; replay never calls a model "
        "(a miss is an error naming the request's hash); off always asks."),
    Var("cache_file", ("INFERENCE_CACHE_FILE",), None, _optional_text,
        "The response cache, a portable SQLite file that can travel with a notebook; unset: responses.sqlite3 in "
        "the data folder."),
    Var("prices", ("INFERENCE_PRICES",), None, _prices,
        'Price overrides as JSON, USD per million tokens: {"sonnet": [3, 15]} or {"claude-x": {"input": 3, '
        '"output": 15, "cache_write": 3.75, "cache_read": 0.3}}.'),
    Var("confirm_usd", ("INFERENCE_CONFIRM_USD",), 1.0, _usd,
        "--map, --batch-api and %%experiment --repeat ask before starting when their estimate is above this (USD)."),
    Var("budget_usd", ("INFERENCE_BUDGET_USD",), None, _optional_usd,
        "Most estimated spend per kernel (USD); a call that would pass it is refused. Unset: no cap."),
    Var("daily_budget_usd", ("INFERENCE_DAILY_BUDGET_USD",), None, _optional_usd,
        "Most spend per day (UTC), counted from the history (USD); a call that would pass it is refused. Unset: no cap."),
    Var("context_tokens", ("INFERENCE_CONTEXT_TOKENS",), 2000, _positive_int,
        "Tokens (about 4 characters each) one {var} of %%infer may take: a DataFrame, array, long list, dict or "
        "string is shortened to fit, and says what was left out."),
)
_BY_FIELD = {var.field: var for var in VARS}


def _has_anthropic_key(self) -> bool:
    return self.anthropic_api_key is not None


# the settings in force: one frozen field per row of VARS, with the row's default
def _settings_repr(self) -> str:
    """Like a dataclass repr, with URL credentials masked (keys already show as Secret('***'))."""
    return redact(f"Settings({', '.join(f'{v.field}={getattr(self, v.field)!r}' for v in VARS)})")


Settings = make_dataclass("Settings", [(v.field, Any, dc_field(default=v.default)) for v in VARS], frozen=True,
                          repr=False,
                          namespace={"has_anthropic_key": property(_has_anthropic_key), "__repr__": _settings_repr,
                                     "__doc__": "The settings in force; one field per row of VARS."})

# per-kernel overrides, written by the %config traits (notebook/config.py)
_overrides: dict[str, Any] = {}


def set_override(field: str, raw: Any) -> Any:
    """Validate and store a %config value; None removes the override. Returns the parsed value."""
    var = _BY_FIELD[field]
    if raw is None:
        _overrides.pop(field, None)
        return None
    value = raw if isinstance(raw, bool) and var.parse is _bool else var.parse(f"InferenceMagics.{field}", str(raw))
    _overrides[field] = value
    return value


def clear_overrides() -> None:
    _overrides.clear()


def _dotenv_files() -> list[tuple[Path, bool]]:
    """The .env files, most trusted first, each with whether it is the user's own: $PAI_DIR/.env
    is; ./.env in the notebook's folder (which may have come with a cloned repository) is not."""
    files = []
    pai_dir = os.environ.get("PAI_DIR")
    if pai_dir:
        files.append((Path(pai_dir).expanduser() / ".env", True))
    folder = Path.cwd() / ".env"
    if not any(path.resolve() == folder.resolve() for path, _ in files):
        files.append((folder, False))
    return [(path, own) for path, own in files if path.is_file()]


def _read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE pairs of one file. A line that is not KEY=VALUE is named, with its file and line,
    instead of being skipped silently."""
    from dotenv.parser import parse_stream  # small, but only needed when a .env exists

    values: dict[str, str] = {}
    with open(path, encoding="utf-8", errors="replace") as stream:
        for binding in parse_stream(stream):
            if binding.error:
                text = binding.original.string.strip()[:60]
                raise ConfigError(f"{path} line {binding.original.line} is not KEY=VALUE ({text!r}) — fix it "
                                  "or start it with # to make it a comment.")
            if binding.key is not None and binding.value is not None:
                values[binding.key] = binding.value
    return values


# What a notebook folder's ./.env may not set, and why: where an API key is sent, where prompts go
# when that is off this machine, anything that weakens privacy, and which program we run. These
# come only from the environment, $PAI_DIR/.env or %config; a ./.env line for one is ignored with
# one visible notice naming the file and the variable (README "Privacy", docs/RELIABILITY.md).
def _folder_may_not_set(field: str, value: Any, trusted: dict[str, str], environ) -> str | None:
    from .backends import is_loopback

    if field == "anthropic_base_url" and value:
        return "change where your Anthropic API key is sent"
    if field == "openai_base_url":
        if not is_loopback(value):
            return "send prompts to another host"
        if any("OPENAI_API_KEY" in source for source in (environ, trusted)):
            return "change where your OPENAI_API_KEY is sent"
    if field == "ollama_base_url" and not is_loopback(value):
        return "send prompts to another host"
    if field == "enable_routing" and value is False:
        return "turn privacy-word routing off"
    if field == "privacy" and value != "local-only":
        return "weaken INFERENCE_PRIVACY"
    if field == "local_server":
        return "choose the program we run"
    return None


_noticed: set[tuple[str, str, str]] = set()


def _notice_once(path: Path, name: str, raw: str, reason: str, field: str | None) -> None:
    """One line on stderr (shown under the cell in a notebook), once per file, variable and value."""
    key = (str(path), name, raw)
    if key in _noticed:
        return
    _noticed.add(key)
    where = "the environment, in $PAI_DIR/.env, or with %config InferenceMagics." + field if field else \
        "the environment or in $PAI_DIR/.env"
    print(f"inference_magics: ignored {name} from {path} — a notebook folder's .env may not {reason}; set it in "
          f"{where}.", file=sys.stderr, flush=True)


# OpenTelemetry's own variables (read by telemetry.py) that a folder's ./.env may not set: a
# collector elsewhere, with content capture on, would receive every prompt that is not private
_TRACE_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


def _drop_folder_tracing(path: Path, from_folder: dict, trusted: dict, environ, merged: dict) -> None:
    from .backends import is_loopback

    def decided_elsewhere(name: str) -> bool:
        return name not in from_folder or name in trusted or name in environ

    for name in _TRACE_ENDPOINTS:
        if not decided_elsewhere(name) and not is_loopback(from_folder[name]):
            _notice_once(path, name, from_folder[name], "send traces to another host", None)
            merged.pop(name, None)
    if not decided_elsewhere(_CAPTURE_CONTENT) and from_folder[_CAPTURE_CONTENT].strip().lower() == "true":
        _notice_once(path, _CAPTURE_CONTENT, from_folder[_CAPTURE_CONTENT], "export prompt and answer text", None)
        merged.pop(_CAPTURE_CONTENT, None)


def _dotenv_values(environ=None) -> dict[str, str]:
    """Values from the .env files, earlier files winning ($PAI_DIR/.env before ./.env), without
    the ./.env lines it may not set (each ignored with a notice)."""
    environ = os.environ if environ is None else environ
    files = _dotenv_files()
    if not files:
        return {}
    trusted: dict[str, str] = {}
    merged: dict[str, str] = {}
    folder: tuple[Path, dict[str, str]] | None = None
    for path, own in reversed(files):
        values = _read_dotenv(path)
        merged.update(values)
        if own:
            trusted.update(values)
        else:
            folder = (path, values)
    if folder is None:
        return merged
    path, from_folder = folder
    for var in VARS:
        if var.field in _overrides or any(n in environ for n in var.env):
            continue  # %config or the environment decides; the file's line changes nothing
        name = next((n for n in var.env if n in merged), None)
        if name is None or name in trusted or name not in from_folder:
            continue
        value = var.parse(name, from_folder[name])  # a bad value is named as for any .env line
        if value == var.default and not any(n in trusted for n in var.env):
            continue  # what it would be anyway
        reason = _folder_may_not_set(var.field, value, trusted, environ)
        if reason is not None:
            _notice_once(path, name, from_folder[name], reason, var.field)
            for alias in var.env:
                if alias in from_folder and alias not in trusted:
                    merged.pop(alias, None)
    _drop_folder_tracing(path, from_folder, trusted, environ, merged)
    return merged


def configured(field: str) -> bool:
    """Did the user set this one (environment, .env or %config), rather than leave the default?"""
    names = _BY_FIELD[field].env
    return field in _overrides or any(n in os.environ for n in names) or any(n in _dotenv_values() for n in names)


def outside_values(*names: str) -> dict[str, str]:
    """Variables that are not in the table above (OpenTelemetry's own, read by telemetry.py), from
    the environment or the .env files, the environment winning. Only the names set are returned."""
    found = {n: os.environ[n] for n in names if n in os.environ}
    if len(found) < len(names) and _dotenv_files():
        from_files = _dotenv_values()
        found.update({n: from_files[n] for n in names if n not in found and n in from_files})
    return found


def _resolve(var: Var, environ, from_files: dict[str, str]) -> Any:
    if var.field in _overrides:
        return _overrides[var.field]
    for source in (environ, from_files):  # the environment wins over .env files
        name = next((n for n in var.env if n in source), None)
        if name is not None:
            return var.parse(name, source[name])
    return var.default


def current(field: str) -> Any:
    """The value of one setting in force now (what `%config InferenceMagics.<field>` shows)."""
    return _resolve(_BY_FIELD[field], os.environ, _dotenv_values())


def load(environ: dict[str, str] | None = None) -> Settings:
    """The settings in force now. Raises ConfigError naming the variable at fault."""
    environ = os.environ if environ is None else environ
    from_files = _dotenv_values(environ)
    loaded = Settings(**{var.field: _resolve(var, environ, from_files) for var in VARS})
    _check_together(loaded)
    return loaded


def _check_together(loaded) -> None:
    """Limits on two settings at once, named with both."""
    total = loaded.local_ctx_size * loaded.local_parallel
    if total > MAX_LOCAL_CTX_TOTAL:
        raise ConfigError(f"INFERENCE_LOCAL_CTX_SIZE × INFERENCE_LOCAL_PARALLEL = {loaded.local_ctx_size} × "
                          f"{loaded.local_parallel} = {total} tokens, more than llama-server accepts — keep the "
                          f"product within 1 to {MAX_LOCAL_CTX_TOTAL} (each slot keeps the whole window): lower one "
                          "of them.")
