"""im.map / %%infer --map: one template over many rows, concurrently, in order, resumable."""
import threading
import time

import pandas as pd
import pytest

import inference_magics as im
from inference_magics import cache
from tests.conftest import wait_until


@pytest.fixture
def rows(peers):
    cache._caches.clear()
    ollama, claude = peers
    ollama.set(echo=True)
    yield ollama, claude
    cache._caches.clear()


def chat_requests(peer):
    return [r for r in peer.requests if r.path == "/api/chat"]


def test_a_thousand_rows_in_order_with_a_concurrency_ceiling_seen_at_the_peer(rows):
    ollama, _ = rows
    ollama.set(token_delay=0.002)
    items = [f"ticket {i}" for i in range(1000)]
    mapped = im.map("Classify: {row}", items, concurrency=4, progress=False)
    assert [r.output for r in mapped.rows] == [f"echo: Classify: ticket {i}" for i in range(1000)]
    assert mapped.failed == 0 and len(chat_requests(ollama)) == 1000
    assert ollama.peak_in_flight == 4  # bounded, and actually concurrent


def test_failed_rows_keep_their_error_and_the_batch_goes_on(rows):
    ollama, _ = rows
    bad = im.map("Say: {row}", ["a", "b", "c"], model="no-such-model:1b", progress=False)
    assert bad.failed == 3 and all("ollama pull no-such-model:1b" in r.error for r in bad.rows)


def test_a_secret_row_never_reaches_the_cloud(rows):
    ollama, claude = rows
    items = ["the weather today", "my password is hunter2hunter2", "the sea"]
    mapped = im.map("Summarize: {row}", items, model="claude-haiku-4.5", progress=False)
    assert mapped.rows[0].backend == "anthropic" and mapped.rows[2].backend == "anthropic"
    assert "refused to send this prompt to anthropic" in mapped.rows[1].error and mapped.rows[1].output is None
    sent = " ".join(str(r.body) for r in claude.requests if r.path == "/v1/messages")
    assert "hunter2" not in sent
    routed = im.map("Summarize: {row}", items, progress=False)  # no model named: the secret row stays local
    assert routed.rows[1].backend == "ollama" and not routed.failed


def test_an_interrupt_keeps_finished_rows_and_a_rerun_sends_only_the_missing(rows):
    ollama, _ = rows
    ollama.set(token_delay=0.01)
    items = [f"row {i}" for i in range(40)]
    main = threading.main_thread()

    def interrupt_soon():
        wait_until(lambda: len(chat_requests(ollama)) >= 8, timeout=10)
        import _thread
        _thread.interrupt_main()

    threading.Thread(target=interrupt_soon).start()
    with pytest.raises(im.InferenceInterrupted) as err:
        im.map("{row}", items, concurrency=2, progress=False)
    first = err.value.mapped
    finished = [r for r in first.rows if r.output is not None and not r.error]
    assert 6 <= len(finished) < 40 and main.is_alive()  # 8 requests sent; up to 2 were stopped
    before = len(chat_requests(ollama))
    again = im.map("{row}", items, concurrency=2, progress=False)
    sent_again = len(chat_requests(ollama)) - before
    assert [r.output for r in again.rows] == [f"echo: row {i}" for i in range(40)]
    assert sent_again == 40 - sum(r.cached for r in again.rows) and sent_again <= 40 - len(finished)


def test_an_interrupt_stops_the_running_rows_too_and_keeps_their_partial_text(rows):
    """The stop button on a map: the rows that were streaming stop with it (their responses closed,
    the server stops generating, no worker thread goes on), as the message says — before, they ran
    to their end in the background after the cell had returned, and their answers landed in _map
    behind the user's back (and were spent for, on Claude)."""
    ollama, _ = rows
    ollama.set(echo=False, tokens=2000, token_delay=0.01)

    def interrupt_mid_stream():
        wait_until(lambda: ollama.in_flight == 4, timeout=10)
        time.sleep(0.2)  # some tokens arrive first
        import _thread
        _thread.interrupt_main()

    threading.Thread(target=interrupt_mid_stream).start()
    with pytest.raises(im.InferenceInterrupted) as err:
        im.map("{row}", [f"row {i}" for i in range(12)], concurrency=4, progress=False)
    assert wait_until(lambda: ollama.disconnects == 4, timeout=5) and ollama.completed == 0
    assert wait_until(lambda: not [t for t in threading.enumerate() if t.name.startswith("map")])
    stopped = [r for r in err.value.mapped.rows if r.error]
    assert len(stopped) == 4 and all(r.error.startswith("interrupted before it finished") for r in stopped)
    partial = [r.output for r in stopped if r.output]
    assert partial and all(text.startswith("word0 word1") for text in partial)  # kept in its row
    assert len(ollama.requests_to("/api/chat")) == 4  # no row started after the interrupt


def test_an_interrupt_during_a_retry_wait_sends_no_retry(rows):
    """Rows waiting out Claude's retry-after when the stop button is pressed stop there: before, their
    threads slept on and sent the retry after the cell had ended."""
    _, claude = rows
    claude.set(fault="rate_limit", retry_after="20")

    def interrupt_once_all_wait():
        wait_until(lambda: len(claude.requests_to("/v1/messages")) == 2, timeout=10)
        import _thread
        _thread.interrupt_main()

    threading.Thread(target=interrupt_once_all_wait).start()
    with pytest.raises(im.InferenceInterrupted) as err:
        im.map("{row}", ["a", "b", "c"], model="claude-haiku-4.5", concurrency=2, progress=False)
    assert wait_until(lambda: not [t for t in threading.enumerate() if t.name.startswith("map")])
    assert len(claude.requests_to("/v1/messages")) == 2  # no retry, and the third row never started
    assert [r.error[:11] if r.error else None for r in err.value.mapped.rows] == ["interrupted"] * 2 + [None]


def test_dataframes_columns_and_json_fields(rows):
    ollama, _ = rows
    frame = pd.DataFrame({"title": ["Cats", "Dogs"], "year": [2001, 2002]}, index=["a", "b"])
    mapped = im.map("Title {row.title} from {row.year}", frame, progress=False)
    assert [r.prompt for r in mapped.rows] == ["Title Cats from 2001", "Title Dogs from 2002"]
    out = mapped.value()
    assert list(out.columns) == ["title", "year", "output", "backend", "model", "tokens", "error"]
    assert list(out.index) == ["a", "b"] and out.loc["a", "output"] == "echo: Title Cats from 2001"
    ollama.set(echo=False)
    parsed = im.map("{row}", frame, column="title", format="json", progress=False).frame()
    assert "answer" in parsed.columns
    ollama.set(echo=True)
    assert im.map("{row}", pd.Series(["x", "y"]), progress=False).value()["output"].tolist() == ["echo: x", "echo: y"]
    assert im.map("{row}", ["x", "y"], progress=False).value() == ["echo: x", "echo: y"]  # a list gives a list


@pytest.mark.parametrize("items, column, message", [
    (None, None, "nothing to map over"),
    ([], None, "no rows to map over"),
    ("a string", None, "cannot map over a str"),
    (pd.DataFrame({"a": [1]}), "b", "has no column 'b'"),
])
def test_bad_input_is_one_line(rows, items, column, message):
    with pytest.raises(im.ConfigError, match=message):
        im.map("{row}", items, column=column, progress=False)


def test_message_batches_submit_persist_and_collect(rows):
    ollama, claude = rows
    claude.set(batch_seconds=0.3, tokens=4)
    items = ["the weather", "my password is hunter2hunter2", "the sea"]
    from inference_magics import message_batches as batch

    job = batch.submit("Summarize: {row}", items, model="claude-haiku-4.5")
    assert job["id"].startswith("msgbatch_") and job["rows"] == 3 and list(job["refused"]) == ["1"]
    sent = [r.body for r in claude.requests if r.path == "/v1/messages/batches"]
    assert len(sent[0]["requests"]) == 2 and "hunter2" not in str(sent)
    with pytest.raises(im.ConfigError, match="still in_progress"):
        batch.collect(job["id"])
    assert [j["id"] for j in batch.jobs()] == [job["id"]]  # remembered in the data folder
    cache._caches.clear()  # as a later kernel would
    assert wait_until(lambda: batch.jobs()[0]["status"] == "ended", timeout=5)
    mapped = batch.collect(job["id"])
    assert [r.output for r in mapped.rows] == [claude.expected_text(), None, claude.expected_text()]
    assert "refused" in mapped.rows[1].error and mapped.rows[0].tokens == 4


def test_a_batch_without_a_model_uses_the_configured_claude_model(rows, monkeypatch):
    """No --model: the batch goes to the model the settings name (ANTHROPIC_DEFAULT_MODEL), not a fixed one."""
    ollama, claude = rows
    monkeypatch.setenv("ANTHROPIC_DEFAULT_MODEL", "haiku")
    from inference_magics import message_batches as batch

    job = batch.submit("Summarize: {row}", ["the weather", "the sea"])
    sent = [r.body for r in claude.requests if r.path == "/v1/messages/batches"][-1]["requests"]
    assert {r["params"]["model"] for r in sent} == {job["model"]} and job["model"].startswith("claude-haiku-4-5")


def test_batch_api_needs_a_claude_model(rows):
    from inference_magics import message_batches as batch

    with pytest.raises(im.ConfigError, match="not a Claude model"):
        batch.submit("{row}", ["a"], model="llama3.2:3b")


@pytest.mark.parametrize("options, message", [
    (dict(temperature=1.5), "Claude accepts --temperature from 0 to 1, not 1.5"),
    (dict(temperature="hot"), "temperature must be a number"),
    (dict(max_tokens=0), "max_tokens must be a whole number"),
])
def test_a_batch_with_options_claude_refuses_is_not_sent(rows, options, message):
    """The batch API checks a row's params only when it runs it: sent, every row would come back
    `errored` hours later (and its estimate would count against the spending cap) — refused now,
    as a cell is refused."""
    _, claude = rows
    from inference_magics import budget, message_batches as batch

    spent = budget.kernel_spend()
    with pytest.raises(im.ConfigError, match=message):
        batch.submit("Summarize: {row}", ["the weather", "the sea"], model="haiku", **options)
    assert not [r for r in claude.requests if r.path == "/v1/messages/batches"]
    assert budget.kernel_spend() == spent


def test_column_rows_answer_to_row_and_to_row_dot_column(rows):
    """The README's own form: `--column text` with `{row.text}` sends each row's text (it used to send
    the literal braces), and `{row}` sends the same."""
    ollama, _ = rows
    frame = pd.DataFrame({"text": ["good film", "bad film"], "stars": [5, 1]})
    for template in ("Classify the sentiment of: {row.text}", "Classify the sentiment of: {row}"):
        ollama.reset()
        ollama.set(echo=True)
        cache._caches.clear()
        mapped = im.map(template, frame, column="text", progress=False, cache=False)
        sent = [str(r.body["messages"][-1]["content"]) for r in chat_requests(ollama)]
        assert sorted(sent) == ["Classify the sentiment of: bad film", "Classify the sentiment of: good film"]
        assert [r.output for r in mapped.rows] == ["echo: Classify the sentiment of: good film",
                                                   "echo: Classify the sentiment of: bad film"]


@pytest.mark.parametrize("template, column, expected", [
    ("Rate: {row.txt}", "text", "write {row} or {row.text}"),
    ("Rate: {row.titel}", None, "columns are text, stars"),
    ("Rate: {row.name}", None, None),  # a list of str: str has no .name
])
def test_a_placeholder_that_resolves_for_no_row_is_refused_before_anything_is_sent(rows, template, column, expected):
    ollama, _ = rows
    frame = pd.DataFrame({"text": ["good film", "bad film"], "stars": [5, 1]})
    items = ["a", "b"] if expected is None else frame
    with pytest.raises(im.InferenceError) as caught:
        im.map(template, items, column=column, progress=False)
    message = caught.value.message
    assert "matches nothing in any row" in message and "\n" not in message
    assert expected is None or expected in message
    assert not chat_requests(ollama)


def test_a_placeholder_that_some_rows_have_is_kept(rows):
    ollama, _ = rows
    mapped = im.map("Title: {row.title}", [{"title": "one"}, {"name": "two"}], progress=False)
    assert mapped.rows[0].output == "echo: Title: one" and mapped.rows[1].output == "echo: Title: {row.title}"
