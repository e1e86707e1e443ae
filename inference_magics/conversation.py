"""A chat conversation as data: turns, trimming to a context window, and the slash commands.
Pure (no widgets, no I/O) so the rules are unit-tested on their own."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

CHARS_PER_TOKEN = 4  # a rough, model-independent estimate; we only need to stay clear of the limit


def context_tokens(backend: str | None, settings) -> int:
    """How many tokens a request to this backend may hold (its spec says; the embedded model's is a setting)."""
    from .backends import REGISTRY

    described = REGISTRY.get(backend) if backend else None
    return described.context(settings) if described else 4_096  # not chosen yet: a small context is safe

HELP = """Commands:
/clear — start a new conversation
/retry — ask again for the last message (the last answer is replaced)
/model NAME — answer with this model (auto: let the router choose)
/system TEXT — set the system prompt (/system alone clears it)
/save [PATH] — save the transcript as Markdown (.md) or JSON (.json)
/exit — close the chat, keeping the transcript in the cell
/help — this list"""


@dataclass
class Turn:
    role: str          # "user", "assistant", "notice" or "error"
    text: str = ""
    meta: str = ""     # the answer's footer: backend · model · reason · timing · tokens
    done: bool = True
    provenance: dict | None = None  # an answer's record (answer_provenance.of), saved by /save as JSON

    @property
    def message(self) -> dict | None:
        """What the model sees of this turn (notices and errors are for the reader only)."""
        return {"role": self.role, "content": self.text} if self.role in ("user", "assistant") else None


@dataclass
class Command:
    name: str
    argument: str = ""


def parse_command(text: str) -> Command | None:
    """`/name argument` at the start of the input, else None (a normal message)."""
    stripped = text.strip()
    if not stripped.startswith("/") or stripped.startswith("//"):
        return None
    name, _, argument = stripped[1:].partition(" ")
    return Command(name.lower(), argument.strip())


def estimate_tokens(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN + 1


def trim_to_context(history: list[dict], prompt: str, context_tokens: int, reserve: int = 1024) -> tuple[list[dict], int]:
    """Drop the oldest whole turns until history + prompt fit in the context, leaving `reserve`
    tokens for the answer. Returns (kept history, number of messages dropped)."""
    budget = max(context_tokens - reserve, context_tokens // 2) - estimate_tokens(prompt)
    kept = list(history)
    while kept and sum(estimate_tokens(m["content"]) for m in kept) > budget:
        kept.pop(0)
        if kept and kept[0]["role"] == "assistant":  # never start with an answer to a dropped question
            kept.pop(0)
    return kept, len(history) - len(kept)


@dataclass
class Conversation:
    turns: list[Turn] = field(default_factory=list)

    def messages(self) -> list[dict]:
        """The finished user/assistant turns, as a model's message list (an empty answer is left
        out: the transcript shows it with a notice, and some APIs refuse a blank turn)."""
        return [t.message for t in self.turns if t.message is not None and t.done and t.text.strip()]

    def as_markdown(self) -> str:
        parts = []
        for turn in self.turns:
            heading = {"user": "**You**", "assistant": "**Assistant**"}.get(turn.role, f"*{turn.role}*")
            parts.append(f"{heading}\n\n{turn.text}" + (f"\n\n<sub>{turn.meta}</sub>" if turn.meta else ""))
        return "\n\n---\n\n".join(parts) + "\n"

    def as_json(self) -> str:
        return json.dumps([{"role": t.role, "content": t.text, "meta": t.meta,
                            **({"inference_magics": t.provenance} if t.provenance else {})} for t in self.turns],
                          indent=2, ensure_ascii=False)
