"""Ask the user yes or no from inside a running cell: Run / Skip buttons where the front end
draws widgets, input() where it only has a stdin, and a plain "cannot ask" where it has neither
(a headless run). Used before spending money (INFERENCE_CONFIRM_USD) and by anything else that
must not go ahead unasked.

While a cell runs, the kernel does not read its shell channel, so a button's click (a comm message)
would only arrive after the cell ends. jupyter-ui-poll replays those pending messages from inside
the waiting cell, which is what lets the click through; an interrupt while waiting means no.
"""
from __future__ import annotations

import time


class CannotAsk(Exception):
    """This front end gives the kernel no way to ask (no stdin and no widgets)."""


def _front_end() -> str:
    """'widgets' (JupyterLab, Notebook 7, VS Code: they say which cell runs, and draw widgets),
    'stdin' (a front end that answers input()), 'none' (a headless run), or 'terminal'."""
    try:
        from IPython import get_ipython
    except ImportError:
        return "terminal"
    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None:
        return "terminal"  # plain IPython or Python: input() reads the terminal
    parent = kernel.get_parent() or {}
    if not parent.get("content", {}).get("allow_stdin"):
        return "none"
    if parent.get("metadata", {}).get("cellId"):  # sent by the notebook front ends, not by consoles
        try:
            import ipywidgets  # noqa: F401
            import jupyter_ui_poll  # noqa: F401
        except ImportError:
            return "stdin"
        return "widgets"
    return "stdin"


def ask(question: str, *, yes: str = "Run", no: str = "Skip") -> bool:
    """True to go ahead. Buttons labelled `yes` / `no` where widgets run, else input() ([y/N]);
    raises CannotAsk when nothing can answer."""
    where = _front_end()
    if where == "widgets":
        return _ask_with_buttons(question, yes, no)
    if where == "none":
        raise CannotAsk(question)
    from IPython.core.error import StdinNotImplementedError

    try:
        answer = input(f"{question} [y/N] ")
    except (StdinNotImplementedError, EOFError):
        raise CannotAsk(question) from None
    return answer.strip().lower() in ("y", "yes")


def _ask_with_buttons(question: str, yes: str, no: str) -> bool:
    import ipywidgets as widgets
    from IPython.display import display
    from jupyter_ui_poll import ui_events

    from .untrusted import escape

    chosen: list[bool] = []
    go = widgets.Button(description=yes, button_style="warning", icon="play")
    skip = widgets.Button(description=no, icon="times")
    go.add_class("im-confirm-yes")
    skip.add_class("im-confirm-no")
    go.on_click(lambda _: chosen.append(True))
    skip.on_click(lambda _: chosen.append(False))
    label = widgets.HTML(escape(question))
    box = widgets.VBox([label, widgets.HBox([go, skip])])
    box.add_class("im-confirm")
    display(box)
    try:
        with ui_events() as poll:
            while not chosen:
                poll(10)  # handle the clicks (comm messages) queued while this cell runs
                time.sleep(0.05)
    except KeyboardInterrupt:
        chosen.append(False)
    go.disabled = skip.disabled = True
    label.value = escape(question) + f" — <b>{escape(yes if chosen[0] else no)}</b>"
    return chosen[0]
