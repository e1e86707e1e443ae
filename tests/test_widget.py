"""The chat widget's behaviour in-process against the peers (the kernel and browser tests cover
the comm and the page)."""
import json

import pytest

from inference_magics.notebook.widget import ChatWidget
from tests.conftest import closed_port, wait_until


def settled(*widgets):
    """Let each widget's background model listing finish, so it never reaches the next test's peers."""
    for widget in widgets:
        widget._loader.join(timeout=10)
        widget.stop()
        if widget._worker is not None:
            widget._worker.join(timeout=10)


@pytest.fixture
def chat(peers):
    ollama, claude = peers
    widget = ChatWidget()
    yield widget, ollama, claude
    settled(widget)


def chats(peer):
    return [r.body for r in peer.requests if r.path == "/api/chat"]


def test_multi_turn_sends_the_whole_conversation(chat):
    widget, ollama, _ = chat
    ollama.set(tokens=5)
    widget.ask("first question", wait=True)
    widget.ask("second question", wait=True)
    assert [m["role"] for m in widget.history] == ["user", "assistant", "user", "assistant"]
    sent = chats(ollama)[-1]["messages"]
    assert [m["content"] for m in sent] == ["first question", ollama.expected_text(), "second question"]
    assert sent[0]["role"] == "user" and chats(ollama)[-1]["model"] == "llama3.2:3b"  # the chat model
    html = widget.transcript_html
    assert html.count("im-turn im-user") == 2 and html.count("im-turn im-assistant") == 2
    assert "first token" in html and "ollama · llama3.2:3b" in widget.route


def test_stop_keeps_the_partial_answer_and_closes_the_stream(chat):
    widget, ollama, _ = chat
    ollama.set(tokens=400, token_delay=0.02)
    widget.ask("tell me a long story")
    assert wait_until(lambda: len(widget.conversation.turns[-1].text) > 20)
    widget.stop()
    assert wait_until(lambda: not widget.busy, timeout=2)
    partial = widget.history[-1]["content"]
    assert partial.startswith("word0 word1") and len(partial) < len(ollama.expected_text())
    assert wait_until(lambda: ollama.disconnects == 1)
    # the footer, once the stream is closed, says where the answer came from and how much of it arrived
    assert wait_until(lambda: "out tokens arrived" in widget.conversation.turns[-1].meta), widget.conversation.turns[-1]
    meta = widget.conversation.turns[-1].meta
    assert meta.startswith("ollama · llama3.2:3b") and meta.endswith("interrupted") and "$" not in meta, meta
    assert wait_until(lambda: "out tokens arrived" in widget.transcript_html)  # and is drawn


def test_a_secret_never_leaves_even_in_a_later_turn(chat):
    widget, _, claude = chat
    widget.ask("my password is hunter2hunter2", wait=True)  # routed locally
    widget.ask("/model claude-haiku-4.5")
    widget.ask("what did I just tell you?", wait=True)  # the history carries the secret
    errors = [t for t in widget.conversation.turns if t.role == "error"]
    assert errors and "refused to send this prompt to anthropic" in errors[-1].text
    assert not [r for r in claude.requests if r.path == "/v1/messages"]
    widget.ask("/model auto")
    widget.ask("still there?", wait=True)  # the widget stays usable
    assert widget.history[-1]["role"] == "assistant"


def test_backend_errors_appear_in_the_widget_with_the_fix(monkeypatch, chat):
    widget, _, _ = chat
    widget.ask("/model no-such-model:1b")
    widget.ask("hello", wait=True)
    assert "`ollama pull no-such-model:1b`" in widget.conversation.turns[-1].text
    assert "im-turn im-error" in widget.transcript_html and not widget.busy
    monkeypatch.setenv("OLLAMA_BASE_URL", f"http://127.0.0.1:{closed_port()}")
    widget.ask("/model llama3.2:3b")
    widget.ask("hello", wait=True)
    assert "cannot connect to Ollama" in widget.conversation.turns[-1].text


def test_commands(chat, tmp_path):
    widget, ollama, _ = chat
    widget.ask("hello", wait=True)
    widget.ask("/system Answer in French.")
    assert widget.system == "Answer in French."
    widget.ask("again", wait=True)
    assert chats(ollama)[-1]["messages"][0] == {"role": "system", "content": "Answer in French."}
    widget.ask(f"/save {tmp_path / 'chat.json'}")
    saved = json.loads((tmp_path / "chat.json").read_text())
    assert [t["role"] for t in saved if t["role"] in ("user", "assistant")] == ["user", "assistant"] * 2
    answers = [t for t in saved if t["role"] == "assistant"]
    assert all(t["inference_magics"]["backend"] == "ollama" and t["inference_magics"]["messages_sha256"]
               for t in answers)  # each answer's provenance travels with the saved chat
    widget.ask(f"/save {tmp_path / 'chat.md'}")
    assert "**You**\n\nhello" in (tmp_path / "chat.md").read_text()
    widget.ask("/help")
    assert "/clear — start a new conversation" in widget.conversation.turns[-1].text
    widget.ask("/bogus")
    assert "unknown command /bogus" in widget.conversation.turns[-1].text
    widget.ask("/clear")
    assert widget.history == []
    widget.ask("/exit")
    assert widget.closed
    widget.ask("ignored after exit", wait=True)
    assert widget.history == []


def test_model_dropdown_lists_chat_models_only(chat):
    widget, _, _ = chat
    assert wait_until(lambda: len(widget.models) > 3)
    values = [o["value"] for o in widget.models]
    assert values[0] == "auto" and "ollama llama3.2:3b" in values and "anthropic claude-sonnet-4-6" in values
    assert not any("nomic-embed" in v or "minilm" in v for v in values)


def test_two_widgets_stream_independently(peers):
    ollama, _ = peers
    ollama.set(tokens=30, token_delay=0.01)
    first, second = ChatWidget(), ChatWidget()
    first.ask("one")
    second.ask("two")
    assert wait_until(lambda: not first.busy and not second.busy, timeout=10)
    assert first.history[-1]["content"] == second.history[-1]["content"] == ollama.expected_text()
    assert [m["content"] for m in first.history] == ["one", ollama.expected_text()]
    settled(first, second)


def test_model_output_cannot_inject_html(chat):
    widget, ollama, _ = chat
    ollama.set(text="<script>alert(1)</script> **bold**")
    widget.ask("hi", wait=True)
    assert "<script>" not in widget.transcript_html and "&lt;script&gt;" in widget.transcript_html
    assert "<strong>bold</strong>" in widget.transcript_html


def test_stop_before_the_first_token_is_immediate_and_the_widget_recovers(chat):
    widget, ollama, _ = chat
    ollama.set(first_token_delay=1.5, tokens=3)
    widget.ask("slow to start")
    assert wait_until(lambda: len(ollama.requests) > 0)
    widget.stop()
    assert not widget.busy  # at once, not when the first token comes
    ollama.set(first_token_delay=0)
    widget.ask("again", wait=True)
    assert widget.history[-1]["content"] == ollama.expected_text()


def test_clear_during_a_failing_answer_leaves_the_widget_usable(monkeypatch, chat):
    widget, ollama, _ = chat
    ollama.set(first_token_delay=0.5, fault="error_mid_stream", fault_after=0)
    widget.ask("this will fail")
    widget.ask("/clear")
    assert not widget.busy
    widget._worker.join(timeout=5)
    assert not any(t.role == "error" for t in widget.conversation.turns)  # the old error stays out
    ollama.set(first_token_delay=0, fault=None)
    widget.ask("works", wait=True)
    assert widget.history[-1]["content"] == ollama.expected_text()


def test_retry_and_edit_replace_the_last_exchange(chat):
    widget, ollama, _ = chat
    ollama.set(tokens=3)
    widget.ask("first question", wait=True)
    widget.ask("second question", wait=True)
    widget.ask("/retry", wait=True)  # what the Regenerate button sends
    assert [m["content"] for m in widget.history[::2]] == ["first question", "second question"]
    assert [m["content"] for m in chats(ollama)[-1]["messages"]] == ["first question", ollama.expected_text(),
                                                                    "second question"]
    assert widget.last_user_text == "second question"
    # "Edit": the frontend sends the new text with replace_last, as the comm would deliver it
    widget._on_frontend_message(widget, {"type": "send", "text": "second, reworded", "replace_last": True}, [])
    widget._worker.join(timeout=10)
    assert [m["content"] for m in widget.history[::2]] == ["first question", "second, reworded"]
    assert len(widget.history) == 4
    widget.ask("/clear")
    widget.ask("/retry")
    assert "no message to ask again" in widget.conversation.turns[-1].text


def test_the_route_label_follows_the_choice_and_the_dropdown_has_no_duplicates(chat):
    widget, ollama, _ = chat
    assert wait_until(lambda: len(widget.models) > 3)
    assert widget.route.startswith("auto:")
    widget.ask("/model llama3.2")  # listed as llama3.2:latest
    assert widget.choice == "ollama llama3.2:latest" and widget.route == "ollama · llama3.2:latest — you chose it"
    values = [o["value"] for o in widget.models]
    assert len(values) == len(set(values)) and "ollama llama3.2" not in values
    widget.ask("/model auto")
    assert widget.route.startswith("auto:")


def test_an_answer_cut_at_the_limit_suggests_what_the_chat_can_do(chat):
    widget, _, claude = chat
    claude.set(tokens=4200)  # past the 4,096 tokens a Claude answer gets by default
    widget.ask("/model claude-haiku-4.5")
    widget.ask("tell me everything", wait=True)
    notices = [t.text for t in widget.conversation.turns if t.role == "notice"]
    assert any("ask the model to continue" in n for n in notices) and not any("--max-tokens" in n for n in notices)


def test_where_widgets_cannot_be_drawn_the_cell_says_what_it_is(chat):
    widget, _, _ = chat
    shown = widget._repr_mimebundle_()
    data = shown[0] if isinstance(shown, tuple) else shown
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "object at 0x" not in data["text/plain"] and "chat" in data["text/plain"]


def test_the_chat_says_why_it_waits_while_a_server_asks_it_to_retry(monkeypatch, peers):
    _, claude = peers
    claude.set(fault="rate_limit", retry_after="1", fail_times=1)
    widget = ChatWidget("claude-haiku-4.5")
    shown = []
    widget.observe(lambda change: shown.append(change["new"]), names="transcript_html")
    widget.ask("hello", wait=True)
    settled(widget)
    assert any("<p class='im-status'>rate limited by Claude (429); retrying in 1 s</p>" in html for html in shown)
    assert "retrying" not in widget.transcript_html  # a status while it lasts, not kept
    assert widget.history[-1]["content"] == claude.expected_text()


def test_a_waiting_reason_is_shown_as_text_never_as_markup(chat):
    widget, _, _ = chat
    widget.ask("hello", wait=True)
    answer = widget.conversation.turns[-1]
    answer.text, answer.done = "", False  # as if it were still waiting for its first token
    widget._rendered.clear()
    widget._waiting(answer, "<img src=x onerror=alert(1)> retrying")
    widget._draw(force=True)
    assert "&lt;img src=x onerror=alert(1)&gt; retrying" in widget.transcript_html and "<img" not in widget.transcript_html


def test_edit_followed_by_a_command_keeps_the_last_exchange(chat):
    """✎ Edit, then a /command typed instead of the edited message: the command runs, and the last
    exchange (question and answer) is still there — nothing replaced it."""
    widget, ollama, _ = chat
    ollama.set(tokens=5)
    widget.ask("question one, carefully worded", wait=True)
    widget._on_frontend_message(widget, {"type": "send", "text": "/model llama3.2:3b", "replace_last": True}, [])
    assert [m["content"] for m in widget.history] == ["question one, carefully worded", ollama.expected_text()]
    widget._on_frontend_message(widget, {"type": "send", "text": "question two", "replace_last": True}, [])
    widget._worker.join(timeout=10)
    assert [m["content"] for m in widget.history] == ["question two", ollama.expected_text()]  # a message does replace


def test_no_secret_in_the_synced_state_that_the_notebook_file_keeps(chat):
    """Synced traits are saved in the notebook (Save Widget State): a secret typed in the chat, in
    /system or in the system field stays out of them; the model still gets the text as typed."""
    widget, ollama, _ = chat
    secret, key = "hunter2hunter2", "sk-ant-api03-" + "Qx7" * 30
    widget.ask(f"my password is {secret}", wait=True)
    widget.ask(f"/system use the key {key}")
    widget._on_frontend_message(widget, {"type": "system", "text": f"my password is {secret}"}, [])
    widget.ask("and again", wait=True)
    state = json.dumps(widget.get_state())
    assert secret not in state and key[:20] not in state, [k for k, v in widget.get_state().items()
                                                          if secret in json.dumps(v) or key[:20] in json.dumps(v)]
    assert "[redacted: a password]" in widget.transcript_html
    assert chats(ollama)[0]["messages"][-1]["content"] == f"my password is {secret}"  # sent as typed (locally)
    assert widget.system == f"my password is {secret}"
    # the page shows the prompt redacted; sent back unchanged with a message, it keeps the one typed
    assert secret not in widget.system_shown
    widget._on_frontend_message(widget, {"type": "send", "text": "once more", "system": widget.system_shown}, [])
    widget._worker.join(timeout=10)
    assert widget.system == f"my password is {secret}"
    assert chats(ollama)[-1]["messages"][0] == {"role": "system", "content": f"my password is {secret}"}
