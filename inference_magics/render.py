"""Showing an answer in a cell: one display, updated at a bounded rate while tokens arrive, then
one final update with the rendered Markdown and a metrics footer. It never knows which backend
produced the text."""
from __future__ import annotations

import json
import time

UPDATE_INTERVAL_S = 0.1  # at most ~10 display updates per second, however fast tokens arrive


def footer(result) -> str:
    parts = [result.backend, result.model]
    if result.route is not None:
        parts.append(result.route.reason)
    m = result.metrics
    if m.ttft_s is not None:
        parts.append(f"first token {m.ttft_s:.2f} s")
    if m.tokens_per_s:
        parts.append(f"{m.tokens_per_s:.1f} tok/s")
    if result.usage.input_tokens or result.usage.output_tokens:
        parts.append(f"{result.usage.input_tokens} in / {result.usage.output_tokens} out tokens")
    if result.cost_usd is not None:
        parts.append(f"≈ ${result.cost_usd:.4f}")
    if result.interrupted:
        parts.append("interrupted")
    elif result.error:
        parts.append("stopped by an error")
    return " · ".join(p for p in parts if p)


def _body(result) -> str:
    if result.parsed is not None:
        return "```json\n" + json.dumps(result.parsed, indent=2, ensure_ascii=False) + "\n```"
    return result.text


def _thinking_markdown(result) -> list[str]:
    if not result.thinking:
        return []
    words = len(result.thinking.split())
    return [f"<details><summary>Thinking ({words} words)</summary>", "", result.thinking, "", "</details>", ""]


def result_markdown(result) -> str:
    lines = _thinking_markdown(result) + [_body(result), "", f"<sub>{footer(result)}</sub>"]
    lines += [f"<sub>⚠ {notice}</sub>" for notice in result.notices]
    return "\n".join(lines)


def result_plain(result) -> str:
    return "\n".join([_body(result), "", f"— {footer(result)}"] + [f"⚠ {n}" for n in result.notices])


def _bundle(markdown: str, plain: str) -> dict:
    return {"text/markdown": markdown, "text/plain": plain}


class CellView:
    """A live view of one answer in the current cell (a display handle, chatlab-style)."""

    def __init__(self, route, interval: float = UPDATE_INTERVAL_S):
        from IPython.display import display

        self._interval = interval
        self._parts: list[str] = []
        self._thinking: list[str] = []
        self._last_update = 0.0
        waiting = f"{route.backend} · {route.model} — {route.reason} — waiting for the first token…"
        self._handle = display(_bundle(f"<sub>{waiting}</sub>", waiting), raw=True, display_id=True)

    def add(self, text: str) -> None:
        """Called per delta: coalesces, and updates the display only if the interval has passed."""
        self._parts.append(text)
        if self._due():
            shown = "".join(self._parts)
            self._handle.update(_bundle(shown, shown), raw=True)

    def add_thinking(self, text: str) -> None:
        """A thinking model's reasoning, shown dimmed until the answer starts."""
        self._thinking.append(text)
        if not self._parts and self._due():
            tail = "".join(self._thinking)[-600:]
            self._handle.update(_bundle(f"<sub>thinking… {tail}</sub>", f"thinking… {tail}"), raw=True)

    def _due(self) -> bool:
        now = time.monotonic()
        if now - self._last_update < self._interval:
            return False
        self._last_update = now
        return True

    def finish(self, result) -> None:
        """The final update: full Markdown, footer, and the route in the output metadata."""
        meta = {"inference_magics": {"backend": result.backend, "model": result.model,
                                     "stop_reason": result.stop_reason}}
        self._handle.update(_bundle(result_markdown(result), result_plain(result)), raw=True, metadata=meta)
