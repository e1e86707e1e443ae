"""A local SQLite log of every completion, so an answer from last week can be found again.

Owner-only files (directory 0700, database 0600), secrets redacted before anything is written, and
a history that cannot be written (corrupt, locked, read-only) never breaks a completion: the write
is skipped and the problem is reported once, as one line with the fix.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import migrations
from .errors import InferenceError
from .paths import create_private_file, data_dir, make_private_dir, redacted

FILENAME = "history.sqlite3"
BUSY_TIMEOUT_S = 2.0  # a locked database fails fast instead of hanging a cell
_FIX = "set INFERENCE_HISTORY to another file, or INFERENCE_HISTORY=off"

_TABLE = """CREATE TABLE completions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL,
    prompt TEXT NOT NULL, system TEXT, backend TEXT, model TEXT, reason TEXT, options TEXT NOT NULL,
    output TEXT NOT NULL, thinking TEXT NOT NULL, stop_reason TEXT, input_tokens INTEGER, output_tokens INTEGER,
    ttft_s REAL, total_s REAL, tokens_per_s REAL, cost_usd REAL, interrupted INTEGER NOT NULL, error TEXT)"""
MIGRATIONS = (  # numbered by position; only ever appended to (see migrations.py)
    lambda conn: conn.execute(_TABLE),
    # the daily budget reads today's spend: an index, not a scan of every completion ever made
    lambda conn: conn.execute("CREATE INDEX completions_created_at ON completions (created_at)"),
)
SCHEMA_VERSION = len(MIGRATIONS)


class HistoryError(InferenceError):
    """The history database cannot be read (reads raise; writes only report)."""


@dataclass(frozen=True)
class Entry:
    id: int
    created_at: str  # ISO 8601, UTC
    prompt: str
    system: str | None
    backend: str
    model: str
    reason: str | None
    options: dict
    output: str
    thinking: str
    stop_reason: str | None
    input_tokens: int | None
    output_tokens: int | None
    ttft_s: float | None
    total_s: float | None
    tokens_per_s: float | None
    cost_usd: float | None
    interrupted: bool
    error: str | None


_COLUMNS = [f.name for f in fields(Entry)]


def history_path(settings) -> Path | None:
    """INFERENCE_HISTORY as a path: on → <data folder>/history.sqlite3, off → None, a folder → a file in it."""
    word = settings.history.strip().lower()
    if word in ("on", "true", "1", "yes"):
        return data_dir(settings) / FILENAME
    if word in ("off", "false", "0", "no"):
        return None
    path = Path(settings.history.strip()).expanduser()
    return path / FILENAME if path.is_dir() else path


def _clean(value: Any) -> Any:
    """Text with secrets removed, by the same detector as the privacy policy (see paths.redacted)."""
    return redacted(value)


class _Unusable(Exception):
    """The file is a database, but not one we may write to (the reason is the message)."""


def _reason(path: Path, exc: Exception) -> str:
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if isinstance(exc, _Unusable):
        return f"{path} {text}"
    if "not a database" in text or "malformed" in text:
        return f"{path} is not a usable SQLite database ({text}) — move it aside, {_FIX}"
    if "locked" in text or "busy" in text:
        return f"{path} is locked by another process ({text}) — close the program holding it, {_FIX}"
    if isinstance(exc, OSError) or "readonly" in text or "unable to open" in text:
        return f"{path} is read-only or cannot be created ({text}) — fix the permissions, {_FIX}"
    return f"{path} could not be written ({type(exc).__name__}: {text}) — {_FIX}"


class HistoryStore:
    """Appends completions to one SQLite file. Opens on first use; safe to share between threads."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._reported = False

    def _create(self) -> None:
        """Missing directories 0700 and a new file 0600 (SQLite gives its journal the file's mode)."""
        make_private_dir(self.path.parent)
        create_private_file(self.path)  # SQLite gives the -wal and -shm files this mode too

    @staticmethod
    def _prepare(conn: sqlite3.Connection) -> None:
        def ours(version: int) -> None:
            if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise _Unusable(f"is another program's SQLite database, not a history — {_FIX}")

        try:
            migrations.upgrade(conn, MIGRATIONS, ours)
        except sqlite3.DatabaseError as exc:
            if "newer inference_magics" not in str(exc):
                raise
            raise _Unusable(f"{exc} — upgrade it, {_FIX}") from None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._create()
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
            give_up = time.monotonic() + BUSY_TIMEOUT_S
            while True:
                try:
                    # write-ahead log: a commit is one append, so two kernels sharing the file rarely wait;
                    # NORMAL sync may lose the last entries on power loss, acceptable for a log
                    conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute("PRAGMA synchronous=NORMAL")
                    self._prepare(conn)
                    break
                except sqlite3.OperationalError as exc:
                    # two kernels opening a new file at once: while one switches it to WAL (or recovers
                    # its log) SQLite answers the other "locked" at once, without its busy timeout
                    if ("locked" in str(exc) or "busy" in str(exc)) and time.monotonic() < give_up:
                        time.sleep(0.02)
                        continue
                    conn.close()
                    raise
                except BaseException:
                    conn.close()  # and with it any unfinished transaction
                    raise
            conn.create_function("contains", 2, lambda hay, needle: hay is not None and needle in hay.casefold(),
                                 deterministic=True)
            self._conn = conn
        return self._conn

    def _drop(self) -> None:
        """Forget a failed connection, so the next call starts afresh (the lock may be gone by then)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def record(self, result, *, prompt: str, system: str | None, options: dict | None) -> str | None:
        """Append one completion. Never raises; returns a one-line notice the first time a write fails."""
        try:
            route = result.route
            # an answer cut short before the backend sent its counts: unknown (NULL), not 0 / 0 and $0
            counted = bool(result.usage.input_tokens or result.usage.output_tokens) or not (
                result.interrupted or result.error)
            row = dict(
                created_at=datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                prompt=_clean(prompt or ""), system=_clean(system), backend=result.backend, model=result.model,
                reason=_clean(route.reason) if route is not None else None,
                options=json.dumps(_clean(dict(options or {}))), output=_clean(result.text or ""),
                thinking=_clean(result.thinking or ""), stop_reason=result.stop_reason,
                # output counted from what arrived (usage_estimated): the input count is still unknown
                input_tokens=result.usage.input_tokens if counted and not getattr(result, "usage_estimated", False)
                else None,
                output_tokens=result.usage.output_tokens if counted else None,
                ttft_s=result.metrics.ttft_s, total_s=result.metrics.total_s,
                tokens_per_s=result.metrics.tokens_per_s, cost_usd=result.cost_usd if counted else None,
                interrupted=bool(result.interrupted), error=_clean(result.error))
            with self._lock:
                try:
                    conn = self._connection()
                    conn.execute("BEGIN IMMEDIATE")  # take the write lock now, waiting at most the busy timeout
                    conn.execute(f"INSERT INTO completions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                 tuple(row.values()))
                    conn.execute("COMMIT")
                except BaseException:  # an interrupt too: closing rolls back an unfinished insert
                    self._drop()
                    raise
            return None
        except Exception as exc:  # the completion matters more than its log
            with self._lock:  # once per store, even when several threads fail together
                first, self._reported = not self._reported, True
            return f"history is not being saved: {_reason(self.path, exc)}" if first else None

    @property
    def opened(self) -> bool:
        """Whether the file has been opened (and so found usable) by this store."""
        return self._conn is not None

    def _read(self, query: str, args: tuple, empty: list) -> list:
        from .write_behind import flush

        flush()  # completions still being written are part of what is read
        with self._lock:
            if self._conn is None and not self.path.exists():
                return empty  # nothing recorded yet: reading does not create the file
            try:
                return self._connection().execute(query, args).fetchall()
            except Exception as exc:
                self._drop()
                raise HistoryError(f"history cannot be read: {_reason(self.path, exc)}") from None

    def _select(self, where: str = "", args: tuple = (), limit: int | None = None) -> list[Entry]:
        query = f"SELECT {', '.join(_COLUMNS)} FROM completions {where} ORDER BY id DESC LIMIT ?"
        entries = []
        for row in self._read(query, (*args, -1 if limit is None else limit), []):
            values = dict(zip(_COLUMNS, row))
            values.update(options=json.loads(values["options"]), interrupted=bool(values["interrupted"]))
            entries.append(Entry(**values))
        return entries

    def recent(self, limit: int = 20) -> list[Entry]:
        return self._select(limit=limit)

    def search(self, text: str, limit: int = 20) -> list[Entry]:
        """Case-insensitive substring of prompt, system or output (any character, % and _ too, is literal)."""
        needle = text.casefold()
        return self._select("WHERE contains(prompt, ?) OR contains(system, ?) OR contains(output, ?)",
                            (needle,) * 3, limit)

    def entries(self, limit: int | None = None) -> list[Entry]:
        return self._select(limit=limit)

    def cost_since(self, created_at: str) -> float:
        """USD recorded since this UTC time (ISO 8601)."""
        return self._read("SELECT coalesce(sum(cost_usd), 0) FROM completions WHERE created_at >= ?",
                          (created_at,), [(0.0,)])[0][0]

    def spend(self) -> list[tuple[str, str, str, int, int, int, float]]:
        """(day, backend, model, calls, input tokens, output tokens, USD) per UTC day and model, newest day first."""
        return self._read("SELECT substr(created_at, 1, 10) AS day, backend, model, count(*), "
                          "coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0), "
                          "coalesce(sum(cost_usd), 0) FROM completions GROUP BY day, backend, model "
                          "ORDER BY day DESC, backend, model", (), [])

    def count(self) -> int:
        return self._read("SELECT count(*) FROM completions", (), [(0,)])[0][0]

    def close(self) -> None:
        with self._lock:
            self._drop()


_stores: dict[Path, HistoryStore] = {}
_stores_lock = threading.Lock()


def store_for(settings) -> HistoryStore | None:
    """The store INFERENCE_HISTORY points at (one per file, shared by the kernel's threads), or None when off."""
    path = history_path(settings)
    if path is None:
        return None
    with _stores_lock:
        if path not in _stores:
            _stores[path] = HistoryStore(path)
        return _stores[path]


def recall(search: str | None = None, limit: int = 20, semantic: str | None = None) -> list:
    """Past completions, newest first: all, those containing `search`, or — with `semantic` — the
    `limit` most similar in meaning to that query, as (score, Entry) pairs, best first."""
    from . import settings as settings_module

    store = store_for(settings_module.load())
    if store is None:
        raise HistoryError("the history is off (INFERENCE_HISTORY=off) — set INFERENCE_HISTORY=on to keep one.")
    if semantic is not None:
        return similar(store.entries(), semantic, limit)
    return store.search(search, limit) if search else store.recent(limit)


def similar(entries: list[Entry], query: str, k: int) -> list[tuple[float, Entry]]:
    """Rank past prompts and answers by cosine similarity to `query`, reusing the embedding cache."""
    if not entries:
        return []
    from .embeddings import most_similar, run

    done = run([f"{e.prompt}\n\n{e.output}" for e in entries] + [query], progress=False)
    return [(score, entries[i]) for i, score in most_similar(done.vectors[-1], done.vectors[:-1], k)]
