"""The notebook as context for %%infer (issue 16), on the IPython side: what `--image`,
`--figure`, `--file`, `--fix`, `--insert`, `--continue`/`--thread`/`--reset` and `{var}` take from
the kernel, and how an answer's code is offered as a new cell (never run).

The magics call these few functions; the work is in the library modules: attachments.py,
object_context.py, threads.py, last_error.py, code_blocks.py.
"""
from __future__ import annotations

import re

from IPython.core.error import UsageError

from .. import settings as settings_module, threads
from ..errors import ConfigError
from ..privacy import redact_secrets
from ..interpolate import interpolate

FIX_KEEP_LOCAL = "a --fix sends code and its traceback, so it stays on this machine like a code review"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x9b]")


def render_prompt(prompt: str, namespace: dict) -> str:
    """`{var}` fields rendered for a model within INFERENCE_CONTEXT_TOKENS each; one line says
    what was shortened."""
    from ..object_context import Renderer

    renderer = Renderer(settings_module.load().context_tokens)
    text = interpolate(prompt, namespace, render=renderer.render)
    if renderer.notes:
        print(f"shortened for the model (INFERENCE_CONTEXT_TOKENS={renderer.budget_tokens}): "
              + "; ".join(renderer.notes), flush=True)
    return text


def attachments(args, namespace: dict) -> tuple:
    """--image (repeatable: a variable holding a Figure, PIL image or bytes, or a file path),
    --figure (matplotlib's current figure) and --file (an image or a PDF)."""
    from .. import attachments as loading

    found = []
    try:
        for item in args.image or ():
            if item.isidentifier() and item in namespace:
                found.append(loading.load(namespace[item], name=item))
            else:
                found.append(loading.load(item))
        if args.figure:
            found.append(loading.current_figure())
        if args.file:
            found.append(loading.load(args.file))
    except ConfigError as exc:  # a bad flag value: one usage line, no traceback
        raise UsageError(exc.message) from None
    return tuple(found)


def fix_prompt(question: str) -> str:
    """The last error of this kernel as a prompt, with the user's extra question."""
    from ..last_error import last

    error = last()
    if error is None:
        raise UsageError("--fix: no cell has failed in this kernel yet — run the failing cell first, then "
                         "%infer --fix (an error from %%infer itself does not count).")
    print(f"fixing {error.headline()}", flush=True)
    return error.prompt(question)


def thread_name(args) -> str | None:
    """The conversation this cell continues, if any (--thread NAME, or --continue for the default one)."""
    if args.thread is not None and not args.thread.strip():
        raise UsageError("--thread needs a name, e.g. --thread analysis.")
    return args.thread or (threads.DEFAULT if args.continue_ else None)


def reset(args) -> None:
    name = thread_name(args) or threads.DEFAULT
    count = threads.reset(name)
    print(f"thread {name!r} cleared ({count} message{'s' if count != 1 else ''})." if count
          else f"thread {name!r} was already empty.")


def thread_messages(name: str, prompt: str, backend: str) -> list[dict]:
    kept, dropped = threads.fitted(name, prompt, backend, settings_module.load())
    if dropped:
        print(threads.dropped_notice(dropped, name), flush=True)
    return kept


def keep_exchange(name: str | None, prompt: str, result, keep_local: str | None = None) -> None:
    if name and result is not None and not result.error and not result.interrupted:
        threads.add_exchange(name, prompt, result.text, keep_local=keep_local)


def offer_code(shell, result) -> None:
    """The answer's code as a new cell below (IPython's set_next_input payload); never run."""
    code = result.code if result is not None else None
    if not code:
        print("no code to insert: the answer has no fenced code block.", flush=True)
        return
    shell.set_next_input(code, replace=False)


def list_threads(name: str | None) -> None:
    """%infer_thread: every thread with its size, or one thread's turns (untrusted text: plain, no control characters)."""
    if not name:
        found = threads.names()
        if not found:
            print("no threads yet — %%infer --continue (or --thread NAME) starts one.")
        for each, count in found.items():
            print(f"{each}: {count // 2} exchange{'s' if count // 2 != 1 else ''}")
        return
    turns = threads.messages(name)
    if not turns:
        print(f"thread {name!r} is empty.")
    for number, turn in enumerate(turns, 1):
        text = redact_secrets(_CONTROL.sub("", turn["content"])).strip()  # turns hold {var} values
        preview = text if len(text) <= 300 else text[:299] + "…"
        print(f"[{number}] {turn['role']}: {preview}")
