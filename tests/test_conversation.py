"""Conversation rules, pure: commands, trimming to the context window, transcripts."""
import json

from inference_magics.conversation import Conversation, Turn, parse_command, trim_to_context


def test_commands_are_parsed():
    assert parse_command("/model llama3.2:3b").name == "model"
    assert parse_command("/model llama3.2:3b").argument == "llama3.2:3b"
    assert parse_command("  /SAVE notes.md ").argument == "notes.md" and parse_command("/save x").name == "save"
    assert parse_command("/system Be terse and exact.").argument == "Be terse and exact."
    assert parse_command("hello /clear") is None and parse_command("//not a command") is None


def test_trimming_drops_the_oldest_whole_exchanges():
    history = []
    for i in range(10):
        history += [{"role": "user", "content": f"question {i} " + "x" * 400},
                    {"role": "assistant", "content": f"answer {i} " + "y" * 400}]
    kept, dropped = trim_to_context(history, "new question", context_tokens=1500, reserve=500)
    assert dropped > 0 and kept[0]["role"] == "user" and kept[-1] == history[-1]
    assert sum(len(m["content"]) for m in kept) // 4 <= 1000
    everything, none = trim_to_context(history, "q", context_tokens=200_000)
    assert everything == history and none == 0


def test_transcripts():
    conversation = Conversation([Turn("user", "hi"), Turn("assistant", "hello", meta="ollama · m"),
                                 Turn("notice", "new conversation"), Turn("assistant", "partial", done=False)])
    assert conversation.messages() == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert "**You**\n\nhi" in conversation.as_markdown() and "<sub>ollama · m</sub>" in conversation.as_markdown()
    assert json.loads(conversation.as_json())[1] == {"role": "assistant", "content": "hello", "meta": "ollama · m"}
