"""The local history: what it writes (every field, never a secret), with which permissions, and how it
fails — quietly, once, and never at the cost of the completion."""
from __future__ import annotations

import copy
import os
import sqlite3
import stat
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest

from inference_magics import errors
from inference_magics.api import Metrics, Result
from inference_magics.backends.base import Usage
from inference_magics.history import Entry, HistoryError, HistoryStore, history_path
from inference_magics.privacy import redact_secrets
from inference_magics.routing import Route

SENTINEL_KEY = "histsentinel-4f9c2e7a1b"  # a registered key that matches no secret pattern: only registration hides it
KEY_BODY = "MIIEpAIBAAKCAQEAsentinelKeyBody0123456789abcdef"
PRIVATE_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\nMoreKeyBodyLine42\n-----END RSA PRIVATE KEY-----"
PASSWORD = "Hunter2-sentinel"
GITHUB_TOKEN = "ghp_" + "A1b2" * 9
CARD = "4111 1111 1111 1111"  # passes the Luhn check


def make_result(text="A process has its own memory; threads share it.", **changes) -> Result:
    fields = dict(text=text, backend="ollama", model="llama3.2:latest",
                  route=Route("ollama", "llama3.2:latest", "default backend"), stop_reason="stop",
                  usage=Usage(input_tokens=12, output_tokens=34), metrics=Metrics(ttft_s=0.25, total_s=1.5, tokens_per_s=22.7),
                  thinking="", cost_usd=None)
    fields.update(changes)
    return Result(**fields)


def record(store, prompt="What is a thread?", result=None, system=None, options=None):
    return store.record(result or make_result(), prompt=prompt, system=system, options=options or {})


def database_bytes(path) -> bytes:
    """The database file and any journal, WAL or shared-memory file beside it."""
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))


def assert_one_line_notice(notice, path):
    assert notice and notice.startswith("history is not being saved: ") and "\n" not in notice
    assert str(path) in notice and "INFERENCE_HISTORY=off" in notice


# --- where it lives ---------------------------------------------------------------------------
def test_history_path_maps_on_off_and_paths(tmp_path):
    import platformdirs

    from inference_magics.settings import Settings

    for value in ("on", " ON ", "true"):
        assert history_path(Settings(history=value, data_dir=str(tmp_path))) == tmp_path / "history.sqlite3"
    assert history_path(Settings()) == Path(platformdirs.user_data_dir("inference_magics")) / "history.sqlite3"
    for value in ("off", "false", "0", "no", "Off"):
        assert history_path(Settings(history=value)) is None
    assert history_path(Settings(history="~/notes/h.db")) == Path(os.path.expanduser("~/notes/h.db"))
    assert history_path(Settings(history=str(tmp_path))) == tmp_path / "history.sqlite3"  # a folder: a file in it


def test_the_store_opens_lazily(tmp_path):
    path = tmp_path / "new" / "history.sqlite3"
    store = HistoryStore(path)
    assert store.recent() == [] and store.search("x") == [] and store.count() == 0
    assert not path.parent.exists(), "reading an empty history must not create it"
    assert record(store) is None
    assert path.is_file() and store.count() == 1


def test_permissions_are_owner_only(tmp_path):
    os.chmod(tmp_path, 0o755)
    path = tmp_path / "made" / "deeper" / "history.sqlite3"
    old_umask = os.umask(0o022)  # a common umask, which would otherwise leave 0755/0644
    try:
        assert record(HistoryStore(path)) is None
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(tmp_path / "made").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o755, "a directory we did not create keeps its mode"
    for sibling in path.parent.iterdir():
        assert stat.S_IMODE(os.stat(sibling).st_mode) & 0o077 == 0, sibling


# --- what it keeps ----------------------------------------------------------------------------
def test_every_field_round_trips(tmp_path):
    store = HistoryStore(tmp_path / "history.sqlite3")
    result = make_result(text='{"ok": true}', thinking="they asked for JSON", cost_usd=0.0123, interrupted=True,
                         error="the stream broke after 3 tokens", stop_reason="max_tokens",
                         route=Route("anthropic", "claude-sonnet-4-5", "complex reasoning → Claude"),
                         backend="anthropic", model="claude-sonnet-4-5")
    options = {"temperature": 0.2, "max_tokens": 100, "format": "json", "stream": True, "model": None}
    before = copy.deepcopy(result)
    assert store.record(result, prompt="Design it", system="Be terse.", options=options) is None
    assert result == before, "recording must not change the result"
    (entry,) = store.recent()
    assert isinstance(entry, Entry) and entry.id == 1
    assert (entry.prompt, entry.system, entry.backend, entry.model, entry.reason) == \
        ("Design it", "Be terse.", "anthropic", "claude-sonnet-4-5", "complex reasoning → Claude")
    assert entry.options == options
    assert (entry.output, entry.thinking, entry.stop_reason) == ('{"ok": true}', "they asked for JSON", "max_tokens")
    assert (entry.input_tokens, entry.output_tokens) == (12, 34)
    assert (entry.ttft_s, entry.total_s, entry.tokens_per_s, entry.cost_usd) == (0.25, 1.5, 22.7, 0.0123)
    assert entry.interrupted is True and entry.error == "the stream broke after 3 tokens"
    created = datetime.fromisoformat(entry.created_at)
    assert created.utcoffset().total_seconds() == 0 and abs((datetime.now(timezone.utc) - created).total_seconds()) < 60
    with pytest.raises(Exception):
        entry.prompt = "changed"  # frozen


def test_a_bare_result_is_recorded_too(tmp_path):
    store = HistoryStore(tmp_path / "history.sqlite3")
    assert store.record(Result(), prompt="hi", system=None, options={}) is None
    (entry,) = store.entries()
    assert entry.reason is None and entry.output == "" and entry.interrupted is False and entry.error is None


def test_recent_is_newest_first_and_limited(tmp_path):
    store = HistoryStore(tmp_path / "history.sqlite3")
    for i in range(5):
        record(store, prompt=f"prompt {i}")
    assert [e.prompt for e in store.recent(limit=3)] == ["prompt 4", "prompt 3", "prompt 2"]
    assert [e.prompt for e in store.entries()] == [f"prompt {i}" for i in (4, 3, 2, 1, 0)]
    assert len(store.entries(limit=2)) == 2 and store.count() == 5


def test_search_is_case_insensitive_and_takes_wildcards_literally(tmp_path):
    store = HistoryStore(tmp_path / "history.sqlite3")
    ok = make_result(text="ok")
    record(store, prompt="Explain a Process", result=ok)
    record(store, prompt="plain", result=make_result(text="I am 100% sure"))
    record(store, prompt="name it in snake_case", result=ok)
    record(store, prompt="x", system="Answer in ÄRGER mode", result=ok)
    record(store, prompt="process again", result=ok)
    assert [e.prompt for e in store.search("PROCESS")] == ["process again", "Explain a Process"]
    assert [e.prompt for e in store.search("100%")] == ["plain"]          # matched in the output
    assert [e.prompt for e in store.search("%")] == ["plain"]             # not "anything"
    assert [e.prompt for e in store.search("_")] == ["name it in snake_case"]  # not "any one character"
    assert [e.prompt for e in store.search("ärger")] == ["x"]             # in the system prompt, beyond ASCII
    assert store.search("nowhere") == []
    assert len(store.search("", limit=2)) == 2


# --- never a secret ---------------------------------------------------------------------------
def test_redact_secrets_replaces_each_secret_with_its_label():
    text = f"{PRIVATE_KEY}\npassword = {PASSWORD}\ntoken {GITHUB_TOKEN}\ncard {CARD}\norder 1234 5678 9012 3456"
    clean = redact_secrets(text)
    for secret in (KEY_BODY, "MoreKeyBodyLine42", PASSWORD, GITHUB_TOKEN, CARD):
        assert secret not in clean
    for label in ("a private key", "a password", "a GitHub token", "a card number"):
        assert f"[redacted: {label}]" in clean
    assert "order 1234 5678 9012 3456" in clean, "a number failing the Luhn check is not a card"
    cut_off = redact_secrets(f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}")  # no END line: the rest goes
    assert cut_off == "[redacted: a private key]"
    assert redact_secrets("nothing to see") == "nothing to see"


def test_secrets_never_reach_the_database_file(tmp_path):
    errors.register_secret(SENTINEL_KEY)
    path = tmp_path / "history.sqlite3"
    store = HistoryStore(path)
    secrets = f"VISIBLE-MARKER {SENTINEL_KEY} {PRIVATE_KEY} password: {PASSWORD} {GITHUB_TOKEN} card {CARD}"
    result = make_result(text=secrets, thinking=secrets, error=secrets,
                         route=Route("ollama", "llama3.2:latest", f"private: {SENTINEL_KEY}"))
    options = {"format": f"pwd={PASSWORD}", "stop": [GITHUB_TOKEN], SENTINEL_KEY: CARD, "temperature": 0.2}
    assert store.record(result, prompt=secrets, system=secrets, options=options) is None
    (entry,) = store.recent()
    store.close()
    raw = database_bytes(path)
    assert b"VISIBLE-MARKER" in raw, "the check reads the real text"
    for secret in (SENTINEL_KEY, KEY_BODY, "MoreKeyBodyLine42", PASSWORD, GITHUB_TOKEN, CARD, CARD.replace(" ", "")):
        assert secret.encode() not in raw, f"{secret!r} reached the history file"
    assert "[redacted: a GitHub token]" in entry.output and "***" in entry.prompt
    assert entry.options["temperature"] == 0.2


@pytest.mark.parametrize("said, words", [
    ("My wallet passphrase is correct horse battery staple orange", ["correct", "horse", "battery", "staple"]),
    ('passphrase: "velvet thunder quietly eats seven lemons"', ["velvet", "thunder", "lemons"]),
    ("Die Passphrase lautet: grüne Berge tanzen leise im Regen", ["Berge", "tanzen", "Regen"]),
])
def test_a_multi_word_passphrase_leaves_no_word_in_the_database_file(tmp_path, said, words):
    """Issue 14: a passphrase was only partly redacted in history (what followed its first space was kept)."""
    path = tmp_path / "history.sqlite3"
    store = HistoryStore(path)
    assert store.record(make_result(text=f"VISIBLE-MARKER {said}"), prompt=said, system=None, options={}) is None
    (entry,) = store.recent()
    store.close()
    raw = database_bytes(path)
    assert b"VISIBLE-MARKER" in raw and "[redacted: a password]" in entry.prompt, entry.prompt
    for word in words:
        assert word.encode() not in raw, f"{word!r} of the passphrase reached the history file"


# --- failing quietly, once --------------------------------------------------------------------
def test_a_corrupt_file_is_reported_once_and_never_raises(tmp_path):
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"this is not a database, just garbage " * 200)
    store = HistoryStore(path)
    result = make_result()
    before = copy.deepcopy(result)
    notice = record(store, result=result)
    assert_one_line_notice(notice, path)
    assert "not a usable SQLite database" in notice and "move it aside" in notice
    assert record(store, result=result) is None and record(store) is None  # once per store
    assert result == before
    with pytest.raises(HistoryError) as caught:
        store.recent()
    assert "\n" not in caught.value.message and str(path) in caught.value.message
    assert path.read_bytes().startswith(b"this is not a database"), "a file we cannot read is left as it was"


def test_a_locked_database_is_reported_and_writes_resume(tmp_path):
    path = tmp_path / "history.sqlite3"
    store = HistoryStore(path)
    assert record(store) is None
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        notice = record(store)  # waits at most the busy timeout (no timed assertion: machines are noisy)
        assert_one_line_notice(notice, path)
        assert "locked by another process" in notice
        assert record(HistoryStore(path)) is not None  # a fresh store reports it too, while opening
        assert record(store) is None                    # already reported
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert record(store, prompt="after the lock") is None  # writes resume once the lock is gone
    assert store.count() == 2 and store.recent()[0].prompt == "after the lock"


def test_a_path_that_cannot_be_created_is_reported(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    path = blocker / "history.sqlite3"  # fails for root too, unlike chmod
    store = HistoryStore(path)
    notice = record(store)
    assert_one_line_notice(notice, path)
    assert "cannot be created" in notice and "fix the permissions" in notice
    assert record(store) is None and store.recent() == [] and store.count() == 0


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="running as root: chmod does not stop root from writing (the file-as-directory test covers it)")
def test_a_read_only_directory_is_reported(tmp_path):
    directory = tmp_path / "locked-down"
    directory.mkdir()
    os.chmod(directory, 0o500)
    try:
        notice = record(HistoryStore(directory / "history.sqlite3"))
        assert_one_line_notice(notice, directory / "history.sqlite3")
        assert "read-only" in notice
    finally:
        os.chmod(directory, 0o700)


def test_another_programs_database_is_left_alone(tmp_path):
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as other:
        other.execute("CREATE TABLE customers (name TEXT)")
    other.close()
    notice = record(HistoryStore(path))
    assert_one_line_notice(notice, path)
    assert "another program's SQLite database" in notice
    with sqlite3.connect(path) as other:
        tables = [row[0] for row in other.execute("SELECT name FROM sqlite_master")]
    other.close()
    assert tables == ["customers"]


def test_a_newer_schema_is_not_written(tmp_path):
    path = tmp_path / "history.sqlite3"
    record(HistoryStore(path))
    with sqlite3.connect(path) as other:
        other.execute("PRAGMA user_version = 99")
    other.close()
    notice = record(HistoryStore(path))
    assert_one_line_notice(notice, path)
    assert "newer inference_magics (schema 99)" in notice


def test_a_broken_result_does_not_raise(tmp_path):
    store = HistoryStore(tmp_path / "history.sqlite3")
    notice = store.record(object(), prompt="p", system=None, options={})
    assert_one_line_notice(notice, tmp_path / "history.sqlite3")


# --- threads ----------------------------------------------------------------------------------
def run_writers(stores, threads_per_store=8, writes=25) -> list:
    notices = []

    def write(store, name):
        for i in range(writes):
            notices.append(record(store, prompt=f"{name} #{i}"))

    threads = [threading.Thread(target=write, args=(store, f"store {s} thread {t}"))
               for s, store in enumerate(stores) for t in range(threads_per_store)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return notices


def test_concurrent_records_all_land(tmp_path):
    store = HistoryStore(tmp_path / "history.sqlite3")
    assert run_writers([store]) == [None] * 200
    assert store.count() == 200 and len({e.prompt for e in store.entries()}) == 200


def test_two_stores_on_one_file_share_it(tmp_path):
    """Two kernels writing one history: SQLite's file lock and the busy timeout keep every write."""
    first, second = HistoryStore(tmp_path / "history.sqlite3"), HistoryStore(tmp_path / "history.sqlite3")
    assert run_writers([first, second], threads_per_store=4) == [None] * 200
    assert first.count() == second.count() == 200


def test_the_history_table_reads_as_text_with_one_vocabulary_for_how_answers_ended(tmp_path):
    from inference_magics.notebook.tables import history_bundle

    store = HistoryStore(tmp_path / "history.sqlite3")
    store.record(make_result(text="## Plan\n\n- **first** step\n```python\nx = 1\n```", stop_reason="end_turn",
                             backend="anthropic"), prompt="a", system=None, options={})
    store.record(make_result(text="cut", stop_reason="length"), prompt="b", system=None, options={})
    store.record(make_result(text="", error="Ollama failed mid-answer: out of memory"), prompt="c", system=None,
                 options={})
    plain = history_bundle(store.recent(), "3 entries")["text/plain"]
    assert "Plan first step x = 1" in plain and "##" not in plain and "**" not in plain and "```" not in plain
    assert "complete" in plain and "end_turn" not in plain and "length limit" in plain
    assert "error: Ollama failed mid-answer: out of memory" in plain
