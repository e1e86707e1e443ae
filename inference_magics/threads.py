"""Conversations across cells: `%%infer --continue` (`-c`) and `--thread NAME` send the earlier
turns of that thread along; `%infer_thread` lists them; `--reset` clears a thread.

Kept in this kernel's memory only (a restarted kernel starts afresh), like the chat widget's
conversation. Trimming to the model's context is the chat's (conversation.trim_to_context).
"""
from __future__ import annotations

import threading

from .conversation import context_tokens, trim_to_context

DEFAULT = "default"  # the thread --continue uses when no --thread is named

_threads: dict[str, list[dict]] = {}
_kept_local: dict[str, str] = {}  # thread -> why one of its turns was kept on this machine by default (--fix)
_lock = threading.Lock()


def messages(name: str = DEFAULT) -> list[dict]:
    """The thread's turns, oldest first, as a model's message list (copies)."""
    with _lock:
        return [dict(m) for m in _threads.get(name, ())]


def add_exchange(name: str, prompt: str, answer: str, keep_local: str | None = None) -> None:
    """Keep a finished question and answer (an empty or failed answer is not kept: the next
    turn would otherwise answer to nothing). `keep_local`: why this turn stayed on this machine by
    default (a --fix); every later turn of the thread then does too, unless a model is named."""
    if not answer.strip():
        return
    with _lock:
        if keep_local:
            _kept_local.setdefault(name, keep_local)
        _threads.setdefault(name, []).extend(
            [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}])


def reset(name: str = DEFAULT) -> int:
    """Forget a thread; returns how many messages it held."""
    with _lock:
        _kept_local.pop(name, None)
        return len(_threads.pop(name, ()))


def kept_local(name: str) -> str | None:
    """Why this thread's turns stay on this machine by default (None: routed as usual)."""
    with _lock:
        reason = _kept_local.get(name)
    return f"thread {name!r} holds a turn kept on this machine ({reason})" if reason else None


def names() -> dict[str, int]:
    """Every thread with its number of messages."""
    with _lock:
        return {name: len(turns) for name, turns in _threads.items()}


def fitted(name: str, prompt: str, backend: str, settings) -> tuple[list[dict], int]:
    """The thread's turns that fit the backend's context with this prompt (oldest dropped first,
    as the chat does), and how many messages were dropped."""
    return trim_to_context(messages(name), prompt, context_tokens(backend, settings))


def dropped_notice(dropped: int, name: str) -> str:
    return (f"thread {name!r}: the {dropped} oldest message{'s' if dropped != 1 else ''} were left out to fit the "
            "model's context.")
