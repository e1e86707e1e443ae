"""The response cache (INFERENCE_CACHE=off|on|replay): an identical request is answered from a
local file instead of a model, so a notebook re-runs at once, for nothing, with the same text.

The key is the SHA-256 of everything that decides an answer: backend, resolved model, messages,
system prompt and options (and, once the API takes them, a schema and tools). The file
(INFERENCE_CACHE_FILE, else responses.sqlite3 in the data folder) is a plain SQLite file that can
travel with a notebook. What it keeps is redacted like the history, and a prompt that holds a
secret is kept by its hash only: its text is not written.

`--map` rows go through the same cache (that is how an interrupted map resumes).
"""
from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime, timezone
from pathlib import Path

from .cache import cache_at
from .errors import InferenceError
from .paths import data_dir
from .write_behind import flush

FILENAME = "responses.sqlite3"
KIND = "response"
MODES = ("off", "on", "replay")


class CacheMiss(InferenceError):
    """INFERENCE_CACHE=replay and this request was never recorded."""


_counts = {"hits": 0, "misses": 0}
_counts_lock = threading.Lock()


def mode(settings, cache: bool | str | None = None) -> str:
    """The mode for one request: a cell's --cache turns it on (replay stays replay), --no-cache off."""
    if cache is None:
        return settings.cache
    if isinstance(cache, str):
        if cache not in MODES:
            from .errors import ConfigError
            raise ConfigError(f"cache must be one of {', '.join(MODES)} (or True/False), not {cache!r}.")
        return cache
    if not cache:
        return "off"
    return "replay" if settings.cache == "replay" else "on"


def request_key(backend: str, model: str, messages, system: str | None, options: dict, *, schema=None,
                tools=None, sample: int = 1, attachments=()) -> str:
    """The hex SHA-256 naming one request. schema and tools are part of it (None until the API has
    them); a repeated sample (2, 3, ...) of the same request has its own key."""
    described = {"backend": backend, "model": model, "messages": [dict(m) for m in messages], "system": system,
                 "options": {k: options.get(k) for k in ("temperature", "max_tokens", "format")},
                 "schema": schema, "tools": tools}
    if sample != 1:
        described["sample"] = sample
    if attachments:  # images/PDFs by their SHA-256 (issue 16); absent, the key is unchanged
        described["attachments"] = list(attachments)
    text = json.dumps(described, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def path_for(settings) -> Path:
    if settings.cache_file:
        return Path(settings.cache_file).expanduser()
    return data_dir(settings) / FILENAME


def lookup(settings, key: str) -> tuple[dict | None, str | None]:
    """(the stored answer or None, a one-time notice if the file failed)."""
    flush()  # an answer still being written (write_behind) is found
    found, notice = cache_at(path_for(settings)).get_many(KIND, "", [bytes.fromhex(key)])
    entry = json.loads(next(iter(found.values()))) if found else None
    with _counts_lock:
        _counts["hits" if entry else "misses"] += 1
    return entry, notice


def store(settings, key: str, result, prompt: str) -> str | None:
    """Keep a finished answer. Returns a one-time notice if the file failed."""
    from .history import _clean  # the history's redaction: registered keys first, then every detector
    from .privacy import find_secret

    usage = result.usage
    entry = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "backend": result.backend, "model": result.model, "stop_reason": result.stop_reason,
        "text": _clean(result.text), "thinking": _clean(result.thinking or ""),
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                  "cache_creation_input_tokens": usage.cache_creation_input_tokens,
                  "cache_read_input_tokens": usage.cache_read_input_tokens},
        "cost_usd": result.cost_usd,
        # a prompt holding a secret is kept by its hash (the key) only
        "prompt": None if find_secret(prompt or "") else _clean(prompt or ""),
    }
    blob = json.dumps(entry, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return cache_at(path_for(settings)).put_many(KIND, "", [(bytes.fromhex(key), blob)])


def replay_problem(settings) -> str | None:
    """Why replay cannot read the cache file at all (missing, corrupt), or None. Asked before a
    lookup, so that a mistyped INFERENCE_CACHE_FILE is not created empty and every request then
    called "never recorded"."""
    path = path_for(settings)
    if not path.is_file():
        return f"the cache file {path} does not exist — check INFERENCE_CACHE_FILE (or record it with INFERENCE_CACHE=on)"
    problem = cache_at(path).problem
    return f"the cache file cannot be read: {problem} — restore the recorded file" if problem else None


def replay_miss(key: str, problem: str | None = None) -> CacheMiss:
    if problem:
        return CacheMiss(f"INFERENCE_CACHE=replay and request {key[:16]} cannot be replayed: {problem}.")
    return CacheMiss(f"INFERENCE_CACHE=replay and request {key[:16]} is not in the cache — run it once with "
                     "INFERENCE_CACHE=on (or this cell with --no-cache) to record it.")


def stats(settings) -> dict:
    """Size, hits and misses of the cache in force (hits and misses since this kernel started)."""
    path = path_for(settings)
    flush()
    (entries, size), notice = cache_at(path).count(KIND)
    with _counts_lock:
        counts = dict(_counts)
    return {"mode": settings.cache, "file": str(path), "entries": entries, "bytes": size, **counts,
            "notice": notice}


def clear(settings) -> str | None:
    with _counts_lock:
        _counts.update(hits=0, misses=0)
    flush()  # an entry still being written is cleared too
    return cache_at(path_for(settings)).clear(KIND)


def embedding_store(settings, use_cache: bool):
    """Where embeddings are kept: with INFERENCE_CACHE=on|replay, the response cache file too, so a
    notebook's vectors travel with its answers and replay needs no embedding model; otherwise the
    embeddings cache in the data folder (None when the caller skips caching, except in replay)."""
    from .cache import cache_for

    if settings.cache == "replay" or (use_cache and settings.cache == "on"):
        return cache_at(path_for(settings))
    return cache_for(settings) if use_cache else None


def embedding_miss(backend: str, model: str, missing: int, problem: str | None = None) -> CacheMiss:
    if problem:
        return CacheMiss(f"INFERENCE_CACHE=replay and {missing} text(s) cannot be replayed: {problem}.")
    return CacheMiss(f"INFERENCE_CACHE=replay and {missing} text(s) were never embedded with {backend} · {model} — "
                     "run it once with INFERENCE_CACHE=on to record them.")
