"""A progress line for long runs (embedding batches, --map rows, summary chunks) whose label says
what runs. The library only counts; the host draws: the notebook layer registers its display at
`%load_ext` (notebook/progress.py), elsewhere it is a tqdm bar on stderr."""
from __future__ import annotations

from typing import Callable

# (total, label, unit) -> a bar with update(n), set_postfix(**counts), close(); or None to decline
_display: Callable | None = None


def show_with(display: Callable | None) -> None:
    """Draw progress with `display` from now on (None: back to tqdm)."""
    global _display
    _display = display


def progress_bar(total: int, wanted, *, label: str, unit: str, show_from: int = 2):
    """A progress display for `total` steps, or None when not `wanted` (None: only from
    `show_from` steps, below which it would only flicker)."""
    if wanted is False or (wanted is None and total < show_from):
        return None
    bar = _display(total, label, unit) if _display is not None else None
    if bar is not None:
        return bar
    from tqdm import tqdm

    return tqdm(total=total, desc=label, unit=unit)
