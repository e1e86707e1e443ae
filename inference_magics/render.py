"""Showing an answer in a cell: one display, updated at a bounded rate while tokens arrive, then
one final update with the rendered Markdown and a metrics footer. It never knows which backend
produced the text."""
from __future__ import annotations

import html
import json
import threading
import time

UPDATE_INTERVAL_S = 0.1  # at most ~10 display updates per second, however fast tokens arrive
# every update re-sends the whole text (twice: Markdown and plain), so a long answer slows its
# updates down to keep the bytes per second under this budget (jupyter_server's limit is 1 MB/s)
DISPLAY_BYTES_PER_S = 500_000


def footer(result) -> str:
    parts = [result.backend, result.model]
    if result.route is not None:
        parts.append(result.route.reason)
    m = result.metrics
    if m.load_s:
        parts.append(f"model load {m.load_s:.1f} s")
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
    # the footer and notices carry names a server chose (model ids, error texts): escape them
    lines = _thinking_markdown(result) + [_body(result), "", f"<sub>{html.escape(footer(result))}</sub>"]
    lines += [f"<sub>⚠ {html.escape(notice)}</sub>" for notice in result.notices]
    return "\n".join(lines)


def result_plain(result) -> str:
    return "\n".join([_body(result), "", f"— {footer(result)}"] + [f"⚠ {n}" for n in result.notices])


def _bundle(markdown: str, plain: str) -> dict:
    return {"text/markdown": markdown, "text/plain": plain}


class Throttle:
    """Calls `draw()` at most once per interval. A call that comes too soon is deferred to the end
    of the interval rather than dropped, so text that arrives just before a pause (a slow token,
    a thinking model) is on screen within the interval, not when the next token comes. Draws are
    serialised, and none happens after close() — a late partial can never cover a final view."""

    def __init__(self, draw, interval=UPDATE_INTERVAL_S):
        self._draw = draw
        self._interval = interval if callable(interval) else (lambda: interval)  # seconds, or a function
        self._lock = threading.Lock()
        self._last = float("-inf")
        self._timer: threading.Timer | None = None
        self._closed = False

    def poke(self) -> None:
        if self._timer is not None or self._closed:
            return  # the per-token fast path, without the lock: a pending draw will show this change too
        with self._lock:
            if self._closed or self._timer is not None:
                return  # a draw is already due; it will show this change too
            wait = self._interval() - (time.monotonic() - self._last)
            if wait > 0:
                self._timer = threading.Timer(wait, self._fire)
                self._timer.daemon = True
                self._timer.start()
                return
            self._last = time.monotonic()
            self._draw()

    def flush(self) -> None:
        """Draw now (e.g. the final state), cancelling any deferred draw."""
        with self._lock:
            self._cancel()
            if not self._closed:
                self._last = time.monotonic()
                self._draw()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._cancel()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            if not self._closed:
                self._last = time.monotonic()
                self._draw()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class CellView:
    """A live view of one answer in the current cell (a display handle, chatlab-style)."""

    def __init__(self, route, interval: float = UPDATE_INTERVAL_S):
        from IPython.display import display

        self._size = 0
        self._parts: list[str] = []
        self._thinking: list[str] = []
        self._route = route
        waiting = f"{route.backend} · {route.model} — {route.reason} — waiting for the first token…"
        self._handle = display(_bundle(f"<sub>{html.escape(waiting)}</sub>", waiting), raw=True, display_id=True)
        self._throttle = Throttle(self._draw, lambda: max(interval, 2 * self._size / DISPLAY_BYTES_PER_S))

    def add(self, text: str) -> None:
        """Called per delta: coalesced; the display follows at a bounded rate (and bytes rate)."""
        self._parts.append(text)
        self._size += len(text)
        self._throttle.poke()

    def status(self, text: str) -> None:
        """What the backend is doing before the first token (starting the embedded model…)."""
        with self._throttle._lock:  # serialised with the draws, and never over an answer already shown
            if self._parts or self._throttle._closed:
                return
            line = f"{self._route.backend} · {self._route.model} — {text}"
            self._handle.update(_bundle(f"<sub>{html.escape(line)}</sub>", line), raw=True)

    def add_thinking(self, text: str) -> None:
        """A thinking model's reasoning, shown dimmed until the answer starts."""
        self._thinking.append(text)
        if not self._parts:
            self._throttle.poke()

    def _draw(self) -> None:
        if self._parts:
            shown = "".join(self._parts)
            self._handle.update(_bundle(shown, shown), raw=True)
        else:
            tail = "".join(self._thinking)[-600:]
            self._handle.update(_bundle(f"<sub>thinking… {html.escape(tail)}</sub>", f"thinking… {tail}"), raw=True)

    def finish(self, result) -> None:
        """The final update: full Markdown, footer, and the route in the output metadata."""
        self._throttle.close()
        meta = {"inference_magics": {"backend": result.backend, "model": result.model,
                                     "stop_reason": result.stop_reason}}
        self._handle.update(_bundle(result_markdown(result), result_plain(result)), raw=True, metadata=meta)


class ExperimentView:
    """One column per model, filled as the answers stream in; then a comparison table and a chart."""

    def __init__(self, runs):
        from IPython.display import display

        self._handle = display(self._bundle(runs), raw=True, display_id=True)

    @staticmethod
    def _bundle(runs) -> dict:
        columns = []
        for run in runs:
            state = "⚠ " + run.error if run.error else ("" if run.done else "…")
            head = f"{run.model}" + (f" · {run.backend}" if run.backend else "") + (
                f" (#{run.sample})" if run.sample > 1 else "")
            columns.append(
                "<div style='flex:1;min-width:220px;border:1px solid #ddd;border-radius:6px;padding:6px'>"
                f"<div style='font-weight:600'>{html.escape(head)}</div>"
                f"<div style='white-space:pre-wrap'>{html.escape(run.text)}</div>"
                f"<div style='color:#a33;font-size:85%'>{html.escape(state)}</div></div>")
        plain = "\n\n".join(f"[{r.model}] {r.text or r.error or ''}" for r in runs)
        return {"text/html": "<div style='display:flex;gap:8px;flex-wrap:wrap'>" + "".join(columns) + "</div>",
                "text/plain": plain}

    def update(self, experiment) -> None:
        self._handle.update(self._bundle(experiment.runs), raw=True)

    def finish(self, experiment) -> None:
        from IPython.display import display

        from .tables import bundle

        self.update(experiment)
        rows = experiment.rows()
        columns = ["model", "sample", "backend", "ttft_s", "total_s", "tokens_per_s", "output_tokens", "cost_usd", "error"]

        def cell(value):
            return f"{value:.3f}" if isinstance(value, float) else value

        display(bundle(columns, [[cell(row[c]) for c in columns] for row in rows],
                       f"{len(rows)} runs in {experiment.wall_s:.2f} s wall time"), raw=True)
        chart = latency_chart(rows)
        if chart is not None:
            display({"image/png": chart, "text/plain": "latency and throughput per model"}, raw=True)


def latency_chart(rows: list[dict]) -> bytes | None:
    """A PNG: time to first token and total time, and tokens per second, per run."""
    done = [r for r in rows if r["total_s"] is not None and not r["error"]]
    if not done:
        return None
    import io

    from matplotlib.figure import Figure  # no pyplot: no global state, works in any backend

    labels = [r["model"] + (f" #{r['sample']}" if r["sample"] > 1 else "") for r in done]
    figure = Figure(figsize=(max(6, 1.4 * len(done)), 3.2))
    latency, speed = figure.subplots(1, 2)
    positions = range(len(done))
    latency.bar([p - 0.2 for p in positions], [r["ttft_s"] or 0 for r in done], width=0.4, label="first token")
    latency.bar([p + 0.2 for p in positions], [r["total_s"] for r in done], width=0.4, label="total")
    latency.set_ylabel("seconds")
    latency.legend()
    speed.bar(list(positions), [r["tokens_per_s"] or 0 for r in done], color="tab:green")
    speed.set_ylabel("tokens / s")
    for axis in (latency, speed):
        axis.set_xticks(list(positions), labels, rotation=20, ha="right", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()
