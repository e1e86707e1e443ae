"""Ask the user yes or no from inside a running cell, before something that must not go ahead
unasked (a spend above INFERENCE_CONFIRM_USD; a tool call): input() where the front end gives the
kernel a stdin (JupyterLab, Notebook 7, VS Code, consoles), and CannotAsk where it has none (a
headless nbclient/nbval run), so the caller can say so in one line and start nothing.

Why not Run / Skip buttons: while a cell runs, the kernel reads no shell message, so a button's
click (a comm message) only arrives after the cell has ended. jupyter-ui-poll works around that
by driving the kernel's message loop from inside the cell, but it calls Kernel.do_one_iteration,
which ipykernel 7.4 (ours) no longer has — the wait never sees the click (measured in a real
kernel; also jupyter-ui-poll issue #54). ipykernel 7's subshells do not help either: the widget
front end sends its comm messages on the main shell.
"""
from __future__ import annotations


class CannotAsk(Exception):
    """This front end gives the kernel no way to ask (no stdin)."""


def ask(question: str, *, yes: str = "y", no: str = "N") -> bool:
    """True to go ahead: the user typed yes. Raises CannotAsk when nothing can answer."""
    from IPython.core.error import StdinNotImplementedError

    try:
        answer = input(f"{question} [{yes}/{no}] ")
    except (StdinNotImplementedError, EOFError):
        raise CannotAsk(question) from None
    return answer.strip().lower() in ("y", "yes", yes.lower())
