"""Numbered schema migrations for our SQLite files (the history, the caches), in the manner of
simonw/llm's migrations: each file has an ordered list of steps, `PRAGMA user_version` counts the
steps applied, and opening a file applies the missing ones, in order, in one write transaction
(two kernels opening it at once: the second finds the work done). A step is never edited or
removed once released; a schema change is a new step at the end."""
from __future__ import annotations

import sqlite3
from typing import Callable, Sequence

Step = Callable[[sqlite3.Connection], None]


def version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def upgrade(conn: sqlite3.Connection, steps: Sequence[Step], check: Callable[[int], None] | None = None) -> None:
    """Bring the file up to `len(steps)`. `check(version)` may refuse a file first (raise); a file
    made by a newer release (more steps than we know) raises sqlite3.DatabaseError."""
    if version(conn) == len(steps):
        return  # the usual case: nothing to write
    conn.execute("BEGIN IMMEDIATE")  # decide under the write lock
    try:
        found = version(conn)
        if found > len(steps):
            raise sqlite3.DatabaseError(f"was written by a newer inference_magics (schema {found})")
        if check is not None:
            check(found)
        for number, step in enumerate(steps[found:], start=found + 1):
            step(conn)
            conn.execute(f"PRAGMA user_version = {number}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
