"""A persistent key-value cache in SQLite under the data folder, for results worth not asking for
twice: embedding vectors (by backend, model and text) and mapped rows (by model, rendered prompt
and options). Keys are SHA-256 digests; values are bytes (a mapped row's answer is stored with its
secrets redacted, see batch._encode). The file is owner-only from its creation.

A cache that cannot be opened or written (corrupt, locked, read-only) never fails the work: it
is skipped, and the first problem is reported once as a notice.
"""
from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

from . import migrations
from .paths import create_private_file, data_dir, make_private_dir

_CHUNK = 500  # SQLite's limit on bound parameters is far above this; keeps statements small
FILENAME = "cache.sqlite3"
MIGRATIONS = (  # numbered by position; only ever appended to (see migrations.py)
    # a file from before the migrations already has this table (user_version 0): kept as it is
    lambda db: db.execute("CREATE TABLE IF NOT EXISTS blobs (kind TEXT, scope TEXT, digest BLOB, value BLOB, "
                          "PRIMARY KEY (kind, scope, digest)) WITHOUT ROWID"),
)


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class BlobCache:
    def __init__(self, path: Path):
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._failed = False
        self.problem: str | None = None  # why the cache went off (kept: replay must say it, not "never recorded")
        self._busy_said = False

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            make_private_dir(self.path.parent)
            create_private_file(self.path)  # owner-only before the first byte; SQLite's journal gets this mode
            db = sqlite3.connect(self.path, timeout=1.0, check_same_thread=False)
            migrations.upgrade(db, MIGRATIONS)
            self._db = db
        return self._db

    def _guard(self, action):
        """Run a cache action; on failure disable the cache and return the notice (once)."""
        if self._failed:
            return None, None
        try:
            with self._lock:
                return action(self._connect()), None
        except (sqlite3.Error, OSError) as exc:
            if isinstance(exc, sqlite3.OperationalError) and ("locked" in str(exc) or "busy" in str(exc)):
                # another kernel is writing the same file: this action is skipped, the cache stays on
                if self._busy_said:
                    return None, None
                self._busy_said = True
                return None, (f"the cache at {self.path} was busy (another kernel is writing it), so it was "
                              "skipped for this request — nothing to fix; later requests use it again.")
            self._failed = True
            self.problem = f"{self.path} failed ({exc})"
            return None, (f"the cache is off for this session: {self.problem} — fix or delete that "
                          "file, or point INFERENCE_CACHE_FILE (or INFERENCE_DATA_DIR) at a writable place.")

    def get_many(self, kind: str, scope: str, digests: list[bytes]) -> tuple[dict[bytes, bytes], str | None]:
        def fetch(db):
            found = {}
            for start in range(0, len(digests), _CHUNK):
                chunk = digests[start:start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(f"SELECT digest, value FROM blobs WHERE kind=? AND scope=? AND digest IN ({marks})",
                                  (kind, scope, *chunk))
                found.update(rows)
            return found

        found, notice = self._guard(fetch)
        return found or {}, notice

    def put_many(self, kind: str, scope: str, items: list[tuple[bytes, bytes]]) -> str | None:
        def store(db):
            with db:
                db.executemany("INSERT OR REPLACE INTO blobs VALUES (?, ?, ?, ?)",
                               [(kind, scope, key, value) for key, value in items])

        return self._guard(store)[1]


    def values(self, kind: str, scope: str) -> tuple[list[bytes], str | None]:
        values, notice = self._guard(lambda db: [v for (v,) in db.execute(
            "SELECT value FROM blobs WHERE kind=? AND scope=?", (kind, scope))])
        return values or [], notice

    def count(self, kind: str) -> tuple[tuple[int, int], str | None]:
        """(entries, bytes) of one kind."""
        found, notice = self._guard(lambda db: db.execute(
            "SELECT count(*), coalesce(sum(length(value)), 0) FROM blobs WHERE kind=?", (kind,)).fetchone())
        return tuple(found or (0, 0)), notice

    def clear(self, kind: str) -> str | None:
        def drop(db):
            with db:
                db.execute("DELETE FROM blobs WHERE kind=?", (kind,))

        return self._guard(drop)[1]


_caches: dict[Path, BlobCache] = {}
_caches_lock = threading.Lock()


def cache_for(settings) -> BlobCache:
    """The cache file in the data folder (one object per file, shared by the kernel's threads)."""
    path = data_dir(settings) / FILENAME
    with _caches_lock:
        if path not in _caches:
            _caches[path] = BlobCache(path)
        return _caches[path]


def cache_at(path: Path) -> BlobCache:
    """The cache in a given file (one object per file, shared by the kernel's threads)."""
    path = Path(path).expanduser()
    with _caches_lock:
        if path not in _caches:
            _caches[path] = BlobCache(path)
        return _caches[path]
