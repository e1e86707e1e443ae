"""The notebook's progress line (registered with the library's progress.py at %load_ext): one
display, updated a few times a second and left at its final state ("✓ map: 40/40 rows in 3.2 s"),
so a saved notebook shows how the run ended rather than a widget frozen at 0%."""
from __future__ import annotations

import html
import sys
import threading
import time

from ..untrusted import NO_MATH  # model and server names can reach a label

UPDATE_INTERVAL_S = 0.25


def _in_kernel() -> bool:
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Progress:
    """`update(n)`, `set_postfix(**counts)`, `close()`: the tqdm calls our callers make."""

    def __init__(self, total: int, label: str, unit: str):
        from IPython.display import display

        self.total, self.label, self.unit = total, label, unit
        self.done = 0
        self._postfix: dict = {}
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._lock = threading.Lock()
        self._handle = display(self._bundle(final=False), raw=True, display_id=True)

    def update(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            if time.monotonic() - self._last_draw >= UPDATE_INTERVAL_S:
                self._draw(final=False)

    def set_postfix(self, refresh: bool = True, **counts) -> None:
        self._postfix = counts

    def close(self) -> None:
        with self._lock:
            self._draw(final=True)

    def _draw(self, *, final: bool) -> None:
        self._last_draw = time.monotonic()
        self._handle.update(self._bundle(final=final), raw=True)

    def _bundle(self, *, final: bool) -> dict:
        elapsed = time.monotonic() - self._started
        extra = "".join(f" · {name} {value}" for name, value in self._postfix.items() if value)
        how = f"{self.done}/{self.total} {self.unit}{'s' * (self.total != 1)} in {elapsed:.1f} s{extra}"
        if not final:
            text = f"{self.label}: {how}"
        else:
            text = f"✓ {self.label}: {how}" if self.done >= self.total else f"{self.label} stopped: {how}"
        bar = (f"<progress value='{self.done}' max='{max(self.total, 1)}' "
               "style='width:12em;vertical-align:middle;margin-right:0.6em'></progress>") if not final else ""
        return {"text/html": f"<div class='{NO_MATH}' style='opacity:0.7;font-size:var(--jp-ui-font-size1)'>"
                             f"{bar}{html.escape(text)}</div>",
                "text/plain": text}


def in_kernel(total: int, label: str, unit: str) -> Progress | None:
    """A display in a running kernel; None elsewhere (a terminal IPython keeps tqdm)."""
    return Progress(total, label, unit) if _in_kernel() else None
