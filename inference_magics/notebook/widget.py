"""The chat widget: a multi-turn conversation in the notebook that never blocks the kernel.

Answers stream in a worker thread (one per widget), so the user can run other cells meanwhile;
the transcript is re-rendered at most ~10 times a second. Every turn goes through the same API,
so routing, the privacy guard and the history apply exactly as for %%infer.
"""
from __future__ import annotations

import datetime
import threading
from dataclasses import replace
from pathlib import Path

import anywidget
import traitlets

from .. import api, routing, telemetry
from ..conversation import HELP, Conversation, Turn, context_tokens, parse_command, trim_to_context
from ..errors import InferenceError
from ..paths import redacted, write_private

from ..answer_provenance import of
from .render import Throttle, footer
from ..untrusted import StreamingMarkdown, escape, markdown_html

STATIC = Path(__file__).resolve().parent / "static"
AUTO = "auto"


class ChatWidget(anywidget.AnyWidget):
    _esm = STATIC / "chat.js"
    _css = STATIC / "chat.css"

    transcript_html = traitlets.Unicode("").tag(sync=True)
    models = traitlets.List(traitlets.Dict(), default_value=[{"label": "auto (routing)", "value": AUTO}]).tag(sync=True)
    choice = traitlets.Unicode(AUTO).tag(sync=True)   # "auto" or "<backend> <model>"
    # synced state is saved in the notebook file, where a secret typed in the chat must not be kept:
    # the page shows the system prompt redacted (`system_shown`; sent back unchanged, it keeps the
    # prompt as typed), and gets the text Edit puts back by message, on request
    system = traitlets.Unicode("")
    system_shown = traitlets.Unicode("").tag(sync=True)
    route = traitlets.Unicode("").tag(sync=True)
    busy = traitlets.Bool(False).tag(sync=True)
    closed = traitlets.Bool(False).tag(sync=True)
    last_user_text = traitlets.Unicode("")  # what "Edit" puts back in the input (sent on request)

    def __init__(self, model: str | None = None, *, backend: str | None = None, system: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.conversation = Conversation()
        self._streaming = StreamingMarkdown()  # the answer being streamed (untrusted: see untrusted.py)
        self._rendered: dict[int, str] = {}  # id(turn) -> HTML of finished turns
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._current: Turn | None = None  # the answer being streamed
        self._status: tuple[Turn | None, str] = (None, "")  # an answer that waits, and why
        self._worker: threading.Thread | None = None
        self._throttle = Throttle(self._render)
        self.observe(self._describe_choice, names="choice")
        self.observe(lambda change: setattr(self, "system_shown", redacted(change["new"])), names="system")
        self.system = system or ""
        if model or backend:
            self._choose(model, backend)
        self._describe_choice()
        self.on_msg(self._on_frontend_message)
        self._loader = threading.Thread(target=self._load_models, name="chat-models", daemon=True)
        self._loader.start()

    def _repr_mimebundle_(self, **kwargs):
        """Where widgets cannot be drawn (an untrusted notebook, a viewer without the widget state, a
        terminal), a line that says what this is instead of `<ChatWidget object at 0x…>`. (No HTML
        copy of the transcript: it would be frozen at display time, and an update_display would
        rebuild the live view at every answer.)"""
        shown = super()._repr_mimebundle_(**kwargs)
        data = shown[0] if isinstance(shown, tuple) else shown  # (data, metadata) or data
        if isinstance(data, dict):
            data["text/plain"] = ("inference_magics chat — the conversation shows where widgets run (JupyterLab, "
                                  "VS Code), in a trusted notebook (jupyter trust FILE); /save PATH keeps a "
                                  "Markdown copy.")
        return shown

    # --- public API ---------------------------------------------------------------------------
    @property
    def history(self) -> list[dict]:
        """The conversation as [{role, content}, ...]: what the model sees next turn."""
        return self.conversation.messages()

    def ask(self, text: str, *, wait: bool = False) -> None:
        """Send a message (or a /command) as if typed; `wait=True` blocks until the answer is done."""
        self._handle(text)
        if wait and self._worker is not None:
            self._worker.join()

    def stop(self) -> None:
        """End the answer being streamed at once; the partial text stays. The worker closes the
        connection when the server next sends something (before the first token it cannot)."""
        self._stop.set()
        if self._current is not None:
            self._settle(self._current, meta="stopped")

    # --- frontend messages ------------------------------------------------------------------
    def _on_frontend_message(self, _widget, content, _buffers) -> None:
        if content.get("type") == "send":
            if "system" in content:
                self._system_from_page(content["system"])
            if content.get("choice"):
                self.choice = content["choice"]
            if (content.get("replace_last") and content.get("text", "").strip() and not self.busy
                    and parse_command(content["text"]) is None):
                self._forget_last_exchange()  # "Edit": the new message (not a command) replaces the last one
            self._handle(content.get("text", ""))
        elif content.get("type") == "stop":
            self.stop()
        elif content.get("type") == "regenerate":
            self._handle("/retry")
        elif content.get("type") == "system":
            self._system_from_page(content.get("text", ""))
        elif content.get("type") == "edit":
            self.send({"type": "edit", "text": self.last_user_text})

    def _system_from_page(self, text: str) -> None:
        if text != self.system_shown:  # the redacted prompt sent back unchanged keeps the one typed
            self.system = text

    def _handle(self, text: str) -> None:
        if not text.strip() or self.closed:
            return
        command = parse_command(text)
        if command is not None:
            self._command(command.name, command.argument)
        elif self.busy:
            self._note("error", "an answer is still streaming — press Stop first, or wait for it.")
        else:
            self._start_answer(text)
        self._draw(force=True)

    # --- commands ------------------------------------------------------------------------------
    def _command(self, name: str, argument: str) -> None:
        if name == "clear":
            self.stop()
            self.conversation = Conversation()
            self._rendered.clear()
            self._note("notice", "new conversation")
        elif name == "help":
            self._note("notice", HELP)
        elif name == "retry":
            if self.busy:
                self._note("error", "an answer is still streaming — press Stop first, or wait for it.")
            elif (text := self._forget_last_exchange()) is None:
                self._note("error", "there is no message to ask again yet.")
            else:
                self._start_answer(text)
        elif name == "model":
            if not argument:
                self._note("notice", f"model: {self.choice}")
            else:
                self._choose(argument, None)
                self._note("notice", f"answering with {self.choice}")
        elif name == "system":
            self.system = argument
            self._note("notice", f"system prompt set: {argument}" if argument else "system prompt cleared")
        elif name == "save":
            self._save(argument)
        elif name == "exit":
            self.stop()
            self.closed = True
        else:
            self._note("error", f"unknown command /{name} — /help lists the commands.")

    def _forget_last_exchange(self) -> str | None:
        """Remove the last message and everything after it (its answer, notices); return its text."""
        turns = self.conversation.turns
        last = next((i for i in range(len(turns) - 1, -1, -1) if turns[i].role == "user"), None)
        if last is None:
            return None
        text = turns[last].text
        for turn in turns[last:]:
            self._rendered.pop(id(turn), None)  # a new turn may be given the same id
        del turns[last:]
        return text

    def _describe_choice(self, _change=None) -> None:
        """The label beside the dropdown says where the next message goes (not where the last went)."""
        if self.choice == AUTO:
            self.route = "auto: each message is routed (private ones stay on this machine)"
        else:
            backend, _, model = self.choice.partition(" ")
            self.route = f"{backend} · {model} — you chose it"

    def _choose(self, model: str | None, backend: str | None) -> None:
        if model in (None, "", AUTO) and backend is None:
            self.choice = AUTO
            return
        known = {o["value"] for o in self.models}
        if model and " " in model and model in known:
            self.choice = model
            return
        model = routing.canonical_model(model) if model else routing.model_for(backend, "chat", _settings())
        value = _same_model(f"{backend or routing.backend_for_model(model)} {model}", known)
        if value not in known:
            self.models = self.models + [{"label": value.replace(" ", " · ", 1), "value": value}]
        self.choice = value

    def _save(self, argument: str) -> None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = Path(argument or f"chat-{stamp}.md").expanduser()
        # what we write is kept at rest: every turn redacted by the privacy detector, the file owner-only
        kept = Conversation([replace(t, text=redacted(t.text), meta=redacted(t.meta)) for t in self.conversation.turns])
        text = kept.as_json() if path.suffix.lower() == ".json" else kept.as_markdown()
        try:
            write_private(path, text)
        except OSError as exc:
            self._note("error", f"could not save to {path}: {exc.strerror} — give another path: /save PATH")
            return
        self._note("notice", f"saved {len(self.conversation.turns)} turns to {path}")

    def _note(self, role: str, text: str) -> None:
        self.conversation.turns.append(Turn(role, text))

    # --- answering -----------------------------------------------------------------------------
    def _start_answer(self, text: str) -> None:
        self.last_user_text = text
        prior = self.conversation.messages()
        self.conversation.turns.append(Turn("user", text))
        answer = Turn("assistant", done=False)
        self.conversation.turns.append(answer)
        self._stop = stop = threading.Event()  # one per answer: a new answer never revives an old one
        self._current = answer
        self.busy = True
        self._worker = threading.Thread(target=self._answer, args=(text, prior, answer, stop), name="chat-answer",
                                        daemon=True)
        self._worker.start()

    def _answer(self, text: str, prior: list[dict], answer: Turn, stop: threading.Event) -> None:
        backend, model = (None, None) if self.choice == AUTO else self.choice.split(" ", 1)
        telemetry.conversation(self.conversation)  # this turn's span names its conversation
        try:
            history, dropped = trim_to_context(prior, text, context_tokens(backend, _settings()))
            if dropped:
                self._note_for(answer, "notice", f"{dropped} earlier messages were left out to fit the model's "
                                                 "context window", before=2)
            running = api.stream(text, messages=history, system=self.system or None, backend=backend, model=model,
                                 task="chat")
            self.route = str(running.route)

            def add(delta: str) -> None:
                if stop.is_set():
                    raise _Stopped
                answer.text += delta
                self._draw()

            try:
                running.each(add, None, lambda why: self._waiting(answer, why))
            except _Stopped:
                running.close()  # closes the HTTP response: the server stops generating
                if running.result.interrupted:  # stop() settled the turn as "stopped": now say what arrived
                    with self._lock:
                        answer.meta = footer(running.result)
                        self._rendered.pop(id(answer), None)  # a settled turn's HTML is kept: draw it again
                    self._draw(force=True)
                return
            answer.meta = footer(running.result)
            answer.provenance = of(running.result)
            for notice in running.result.notices:
                if notice == api.CUT_AT_LIMIT:  # the chat has no --max-tokens to raise
                    notice = "the answer was cut at the token limit — ask the model to continue."
                self._note_for(answer, "notice", notice)
        except InferenceError as exc:
            if exc.result is not None and not answer.done:
                answer.text = exc.result.text
            self._note_for(answer, "error", exc.message)
        except Exception as exc:  # a widget thread must never die silently
            self._note_for(answer, "error", f"unexpected {type(exc).__name__}: {exc} — the chat is still usable.")
        finally:
            self._settle(answer)

    def _waiting(self, answer: Turn, why: str) -> None:
        """Why nothing has arrived yet (a retry's wait, the embedded model starting): shown in place
        of the answer until its first token."""
        self._status = (answer, why)
        self._draw()

    def _note_for(self, answer: Turn, role: str, text: str, before: int = 0) -> None:
        """Add a line to the conversation this answer belongs to (not to a newer one after /clear)."""
        with self._lock:
            if answer in self.conversation.turns and not answer.done:
                turns = self.conversation.turns
                turns.insert(len(turns) - before, Turn(role, text))

    def _settle(self, answer: Turn, meta: str = "") -> None:
        """Finish a turn once: drop it if nothing arrived, draw, then leave the busy state."""
        with self._lock:
            if answer.done:
                return
            answer.done = True
            answer.meta = answer.meta or meta
            if not answer.text and not answer.meta and answer in self.conversation.turns:
                self.conversation.turns.remove(answer)
            if answer is self._current:
                self._draw(force=True)
                self.busy = False  # last: when a view sees "not busy", the final transcript is already there

    # --- drawing -------------------------------------------------------------------------------
    def _draw(self, force: bool = False) -> None:
        self._throttle.flush() if force else self._throttle.poke()

    def _render(self) -> None:
        self.transcript_html = "".join(self._turn_html(t) for t in list(self.conversation.turns))

    def _turn_html(self, turn: Turn) -> str:
        cached = self._rendered.get(id(turn))
        if cached is not None:
            return cached
        if turn.role in ("user", "assistant"):
            who = "You" if turn.role == "user" else "Assistant"
            if not turn.text:  # the reason it waits, if one was given (untrusted, like all server text)
                waiting = self._status[1] if self._status[0] is turn and not turn.done else "…"
                body = f"<p class='im-status'>{escape(waiting)}</p>"
            elif turn.done or turn.role == "user":
                body = markdown_html(redacted(turn.text))  # kept in the notebook file: no secret
            else:
                body = self._streaming.render(turn.text)
            meta = f"<div class='im-meta'>{escape(redacted(turn.meta))}</div>" if turn.meta else ""
            out = (f"<div class='im-turn im-{turn.role}'><div class='im-who'>{who}</div>"
                   f"<div class='im-body'>{body}</div>{meta}</div>")
        else:
            out = f"<div class='im-turn im-{turn.role}'>{escape(redacted(turn.text))}</div>"
        if turn.done:
            self._rendered[id(turn)] = out
        return out

    def _load_models(self) -> None:
        """Fill the dropdown from %models (chat models only), off the kernel's thread."""
        from ..catalog import models

        try:
            listing = models()
        except InferenceError:
            return
        options = [{"label": "auto (routing)", "value": AUTO}]
        options += [{"label": f"{m.backend} · {m.name}", "value": f"{m.backend} {m.name}"}
                    for m in listing if m.kind == "chat"]
        listed = {x["value"] for x in options}
        extra = [o for o in self.models if _same_model(o["value"], listed) not in listed]
        if self.choice not in listed and _same_model(self.choice, listed) in listed:
            self.choice = _same_model(self.choice, listed)  # "ollama llama3.2" is the listed "…:latest"
        self.models = options + extra


class _Stopped(Exception):
    """Stop was pressed: ends the answer's each() at its next token."""


def _same_model(value: str, known) -> str:
    """The listed entry for a choice, if it names one: Ollama's `llama3.2` is `llama3.2:latest`."""
    if value in known or ":" in value.partition(" ")[2]:
        return value
    return f"{value}:latest" if f"{value}:latest" in known else value


def _settings():
    from .. import settings

    return settings.load()
