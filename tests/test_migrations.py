"""Migrations: a history and a cache made before the numbered migrations (the schema as released
until now, written here as it was) are upgraded on open and lose nothing."""
import sqlite3

import pytest

from inference_magics import migrations
from inference_magics.cache import BlobCache
from inference_magics.history import SCHEMA_VERSION, HistoryStore

# history.sqlite3 as the released code made it: one table, user_version 1
RELEASED_HISTORY = """CREATE TABLE completions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL,
    prompt TEXT NOT NULL, system TEXT, backend TEXT, model TEXT, reason TEXT, options TEXT NOT NULL,
    output TEXT NOT NULL, thinking TEXT NOT NULL, stop_reason TEXT, input_tokens INTEGER, output_tokens INTEGER,
    ttft_s REAL, total_s REAL, tokens_per_s REAL, cost_usd REAL, interrupted INTEGER NOT NULL, error TEXT)"""
# cache.sqlite3 / responses.sqlite3 as released: no user_version at all
RELEASED_CACHE = ("CREATE TABLE IF NOT EXISTS blobs (kind TEXT, scope TEXT, digest BLOB, value BLOB, "
                  "PRIMARY KEY (kind, scope, digest)) WITHOUT ROWID")


def test_a_released_history_is_upgraded_and_keeps_every_entry(tmp_path):
    path = tmp_path / "history.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(RELEASED_HISTORY)
        old.execute("PRAGMA user_version = 1")
        old.executemany("INSERT INTO completions VALUES (NULL, ?, ?, NULL, 'ollama', 'llama3.2', 'default', '{}', ?, '', "
                        "'stop', 3, 4, 0.1, 0.5, 8.0, ?, 0, NULL)",
                        [(f"2026-11-0{i}T10:00:00", f"prompt {i}", f"answer {i}", 0.01 * i) for i in range(1, 6)])
    old.close()
    store = HistoryStore(path)
    entries = store.entries()
    assert sorted(e.prompt for e in entries) == [f"prompt {i}" for i in range(1, 6)]
    assert {e.output for e in entries} == {f"answer {i}" for i in range(1, 6)}
    assert store.cost_since("2026-11-04T00:00:00") == pytest.approx(0.09)
    store.close()
    with sqlite3.connect(path) as after:
        assert migrations.version(after) == SCHEMA_VERSION > 1
        indexes = [row[0] for row in after.execute("SELECT name FROM sqlite_master WHERE type='index'")]
    after.close()
    assert "completions_created_at" in indexes


def test_a_released_cache_is_upgraded_and_keeps_every_value(tmp_path):
    path = tmp_path / "cache.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(RELEASED_CACHE)
        old.executemany("INSERT INTO blobs VALUES (?, ?, ?, ?)",
                        [("embed:ollama", "all-minilm", bytes([i]) * 32, b"v%d" % i) for i in range(10)])
    old.close()
    cache = BlobCache(path)
    found, notice = cache.get_many("embed:ollama", "all-minilm", [bytes([i]) * 32 for i in range(10)])
    assert notice is None and sorted(found.values()) == sorted(b"v%d" % i for i in range(10))
    with sqlite3.connect(path) as after:
        assert migrations.version(after) == 1
    after.close()


def test_steps_run_once_in_order_and_a_failed_step_changes_nothing(tmp_path):
    conn = sqlite3.connect(tmp_path / "x.sqlite3", isolation_level=None)
    ran = []
    steps = [lambda c: (ran.append(1), c.execute("CREATE TABLE a (x)")),
             lambda c: (ran.append(2), c.execute("CREATE TABLE b (x)"))]
    migrations.upgrade(conn, steps[:1])
    migrations.upgrade(conn, steps)
    migrations.upgrade(conn, steps)
    assert ran == [1, 2] and migrations.version(conn) == 2

    def broken(c):
        c.execute("CREATE TABLE c (x)")
        raise sqlite3.OperationalError("step 3 failed")

    with pytest.raises(sqlite3.OperationalError):
        migrations.upgrade(conn, [*steps, broken])
    assert migrations.version(conn) == 2
    assert "c" not in [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    with pytest.raises(sqlite3.DatabaseError, match="newer"):
        migrations.upgrade(conn, steps[:1])
