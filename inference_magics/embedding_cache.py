"""A persistent cache of embedding vectors, keyed by (backend, model, SHA-256 of the text), in
SQLite under the data folder: embedding the same texts again costs no request.

A cache that cannot be opened or written (corrupt, locked, read-only) never fails an embedding:
it is skipped, and the first problem is reported once as a notice.
"""
from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import numpy as np

from .paths import make_private_dir, private_file

_CHUNK = 500  # SQLite's limit on bound parameters is far above this; keeps statements small


def digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


class EmbeddingCache:
    def __init__(self, path: Path):
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._failed = False

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            make_private_dir(self.path.parent)
            db = sqlite3.connect(self.path, timeout=1.0, check_same_thread=False)
            db.execute("CREATE TABLE IF NOT EXISTS vectors (backend TEXT, model TEXT, digest BLOB, dims INTEGER, "
                       "vector BLOB, PRIMARY KEY (backend, model, digest)) WITHOUT ROWID")
            private_file(self.path)
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
            self._failed = True
            return None, (f"the embedding cache is off for this session: {self.path} failed ({exc}) — fix or "
                          "delete that file, or point INFERENCE_DATA_DIR elsewhere.")

    def get_many(self, backend: str, model: str, digests: list[bytes]) -> tuple[dict[bytes, np.ndarray], str | None]:
        def fetch(db):
            found = {}
            for start in range(0, len(digests), _CHUNK):
                chunk = digests[start:start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(f"SELECT digest, vector FROM vectors WHERE backend=? AND model=? AND digest IN ({marks})",
                                  (backend, model, *chunk))
                for key, blob in rows:
                    found[key] = np.frombuffer(blob, dtype=np.float32)
            return found

        found, notice = self._guard(fetch)
        return found or {}, notice

    def put_many(self, backend: str, model: str, items: list[tuple[bytes, np.ndarray]]) -> str | None:
        def store(db):
            with db:
                db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?)",
                               [(backend, model, key, len(vec), np.asarray(vec, np.float32).tobytes())
                                for key, vec in items])

        return self._guard(store)[1]
