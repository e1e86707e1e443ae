"""What we keep at rest — the history (with its SQLite -wal and -shm files), the `--map` row cache,
chat /save files — is redacted by the privacy detector and owner-only (0600 files, 0700 folders).
Each test reads the files' bytes from disk."""
import json
import os
import stat

import pytest

import inference_magics as im
from inference_magics import cache
from inference_magics.notebook.widget import ChatWidget

SECRET = "ghp_Q8vN2kLp7RzX4mWc9TfB1yHs6JdE3gUa0KoI"  # a GitHub token shape
PRIVATE = f"Why does git reject this token? {SECRET}"


@pytest.fixture(autouse=True)
def common_umask():
    """0022, the usual umask, which would leave 0644 files and 0755 folders if we relied on it."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def on_disk(folder) -> dict:
    """Every file under `folder` with its bytes (a database and its -wal / -shm / -journal files)."""
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_history_and_its_wal_files_hold_no_secret_and_are_owner_only(peers, tmp_path):
    ollama, _ = peers
    ollama.set(text=f"Your token {SECRET} was revoked.")
    result = im.infer(PRIVATE, system=f"context: {SECRET}")
    assert SECRET in result.text  # the answer itself is the user's, untouched
    data = tmp_path / "data"
    files = on_disk(data)
    names = {p.name for p in files}
    assert {"history.sqlite3", "history.sqlite3-wal", "history.sqlite3-shm"} <= names, names
    for path, raw in files.items():
        assert SECRET.encode() not in raw, path
        assert mode(path) == 0o600, path
    assert mode(data) == 0o700
    entry = im.recall(limit=1)[0]
    assert "[redacted" in entry.prompt and "[redacted" in entry.output and "[redacted" in entry.system


def test_the_map_cache_stores_answers_redacted_and_owner_only(peers, tmp_path):
    ollama, _ = peers
    cache._caches.clear()
    ollama.set(text=f"The token is {SECRET}.")
    first = im.map("Find the token in: {row}", ["ticket 1", "ticket 2"], progress=False)
    assert all(SECRET in r.output for r in first.rows)  # this run's answers are untouched
    files = on_disk(tmp_path / "data")
    store = tmp_path / "data" / "responses.sqlite3"  # the --map row cache is the response cache
    assert store in files and mode(store) == 0o600
    for path, raw in files.items():
        assert SECRET.encode() not in raw, path
        assert mode(path) == 0o600, path
    cache._caches.clear()  # as a later kernel would
    again = im.map("Find the token in: {row}", ["ticket 1", "ticket 2"], progress=False)
    assert all(r.cached for r in again.rows) and len(ollama.requests_to("/api/chat")) == 2
    assert all(SECRET not in r.output and "[redacted" in r.output for r in again.rows)


def test_map_json_fields_are_redacted_in_the_cache(peers, tmp_path):
    ollama, _ = peers
    cache._caches.clear()
    ollama.set(text=json.dumps({"token": SECRET, "kind": "github"}))
    mapped = im.map("Extract: {row}", ["a"], format="json", progress=False)
    assert mapped.rows[0].parsed == {"token": SECRET, "kind": "github"}
    assert all(SECRET.encode() not in raw for raw in on_disk(tmp_path / "data").values())


@pytest.mark.parametrize("name", ["chat.md", "chat.json"])
def test_chat_save_files_are_redacted_and_owner_only(peers, tmp_path, name):
    ollama, _ = peers
    ollama.set(text=f"Revoke {SECRET} now.")
    widget = ChatWidget()
    try:
        widget.ask(PRIVATE, wait=True)
        target = tmp_path / name
        target.write_text("an older file, world-readable\n")
        os.chmod(target, 0o644)
        widget.ask(f"/save {target}")
        assert "saved" in widget.conversation.turns[-1].text
    finally:
        widget._loader.join(timeout=10)
    text = target.read_text()
    assert SECRET not in text and "[redacted" in text and mode(target) == 0o600
    if name.endswith(".json"):
        turns = json.loads(text)  # still valid JSON after redaction
        assert [t["role"] for t in turns][:2] == ["user", "assistant"]


def test_a_history_file_owned_by_someone_else_is_never_written(peers, tmp_path, monkeypatch):
    """INFERENCE_HISTORY may name any path; a file planted there by another user is refused (one
    notice) rather than filled with prompts it could read."""
    if os.getuid() != 0:
        pytest.skip("making a file owned by another user needs root")
    planted = tmp_path / "shared" / "history.sqlite3"
    planted.parent.mkdir()
    planted.write_bytes(b"")
    os.chown(planted, 65534, 65534)
    os.chmod(planted, 0o666)
    monkeypatch.setenv("INFERENCE_HISTORY", str(planted))
    result = im.infer("This is confidential: the merger closes Friday.")
    assert result.text and any("belongs to another user" in n for n in result.notices)
    assert planted.read_bytes() == b"" and mode(planted) == 0o666
