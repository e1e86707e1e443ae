"""Showing an answer in a cell: one display, updated at a bounded rate while tokens arrive, then
one final update with the rendered answer and a metrics footer. It never knows which backend
produced the text. Every draw (partial or final) goes through the untrusted-text renderer: the
answer, its thinking, the footer and the notices are published as inert HTML plus plain text."""
from __future__ import annotations

import heapq
import itertools
import json
import threading
import time

from .. import untrusted

UPDATE_INTERVAL_S = 0.1  # at most ~10 display updates per second, however fast tokens arrive
# every update re-sends the whole text (as HTML and as plain text), so a long answer slows its
# updates down to keep the bytes per second under this budget (jupyter_server's limit is 1 MB/s)
DISPLAY_BYTES_PER_S = 500_000
# rendering Markdown costs CPU on every draw: space the draws so that it stays a small share of
# the time (a draw that took 10 ms waits at least 0.4 s before the next)
RENDER_COST_FACTOR = 40


def footer(result) -> str:
    parts = [result.backend, result.model]
    if result.route is not None:
        parts.append(result.route.reason)
    m = result.metrics
    if m.load_s:
        parts.append(f"model load {m.load_s:.1f} s")
    if m.ttft_s is not None and not getattr(result, "cached", False):  # a replay's "0.00 s" measures nothing
        parts.append(f"first token {m.ttft_s:.2f} s")
    if m.tokens_per_s:
        parts.append(f"{m.tokens_per_s:.1f} tok/s")
    counted = result.usage.input_tokens or result.usage.output_tokens
    if getattr(result, "usage_estimated", False):  # cut short: the backend never sent its counts
        parts.append(f"≈ {result.usage.output_tokens} out tokens arrived")
    elif counted:
        parts.append(f"{result.usage.input_tokens} in / {result.usage.output_tokens} out tokens")
    if result.usage.cache_creation_input_tokens or result.usage.cache_read_input_tokens:
        parts.append(f"prompt cache: {result.usage.cache_creation_input_tokens} written / "
                     f"{result.usage.cache_read_input_tokens} read")
    if getattr(result, "cached", False):
        parts.append(f"cached (answered {result.cached_at.replace('T', ' ')[:16]} UTC)")
    if result.cost_usd and counted:  # free (local, cached) or uncounted: no made-up "≈ $0.0000"
        parts.append(f"≈ ${result.cost_usd:.4f}" if result.cost_usd >= 0.00005 else "< $0.0001")
    if result.interrupted:
        parts.append("interrupted")
    elif result.stop_reason == "incomplete" and result.error:
        parts.append(result.error.split(" — ")[0])  # "incomplete: the stream ended before … finished"
    elif result.error:
        parts.append("stopped by an error")
    return " · ".join(p for p in parts if p)


def _body_html(result, streamed=None) -> str:
    if result.parsed is not None and result.options.get("schema"):  # a typed answer: a small table of fields
        from ..typed_answers import fields_html

        return fields_html(result.parsed)
    if result.parsed is not None:
        return untrusted.code_html(json.dumps(result.parsed, indent=2, ensure_ascii=False), "json")
    text = result.text
    if streamed is not None and streamed.exact(text):
        return streamed.render(text)  # only what arrived after the last draw is rendered again
    return untrusted.markdown_html(untrusted.without_cut_off_heading(text))  # no empty heading at the end


def _body_plain(result) -> str:
    if result.parsed is not None and result.options.get("schema"):
        from ..typed_answers import fields_plain

        return fields_plain(result.parsed)
    if result.parsed is not None:
        return json.dumps(result.parsed, indent=2, ensure_ascii=False)
    return result.text


def _thinking_html(result) -> str:
    if not result.thinking:
        return ""
    words = len(result.thinking.split())
    return (f"<details><summary>Thinking ({words} words)</summary>"
            f'<div style="{untrusted.THINKING_STYLE}">{untrusted.markdown_html(result.thinking)}</div></details>')


def result_html(result, streamed=None) -> str:
    """The final view: thinking (folded), the answer, then the footer and notices — rendered apart
    from the answer, so an answer cut inside a code block cannot swallow them. `streamed`: the
    StreamingMarkdown that drew the answer while it arrived, whose finished blocks are reused."""
    notes = [untrusted.note_html(footer(result))] + [untrusted.note_html(f"⚠ {n}", warn=True) for n in result.notices]
    return _thinking_html(result) + _body_html(result, streamed) + "".join(notes)


def result_plain(result) -> str:
    return "\n".join([_body_plain(result), "", f"— {footer(result)}"] + [f"⚠ {n}" for n in result.notices])


def result_bundle(result, streamed=None) -> dict:
    return untrusted.bundle(result_html(result, streamed), result_plain(result))


class _Deferred:
    """The one thread that runs every deferred draw, in time order. A thread per draw (threading.Timer)
    would cost more than the draw's wait: in a kernel, each new thread that publishes a display opens
    its own ZMQ pipe to the iopub thread. Like a Timer thread it has no parent header of its own, so
    its displays go to the cell that is running, as before."""

    def __init__(self):
        self._wake = threading.Condition()
        self._due: list[tuple[float, int, object]] = []  # a heap of (monotonic time, order, call)
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def call_at(self, when: float, call) -> None:
        with self._wake:
            if self._thread is None or not self._thread.is_alive():  # first use, or a forked child
                self._thread = threading.Thread(target=self._run, name="inference_magics-display", daemon=True)
                self._thread.start()
            heapq.heappush(self._due, (when, next(self._order), call))
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._wake.wait(self._due[0][0] - time.monotonic() if self._due else None)
                call = heapq.heappop(self._due)[2]
            try:
                call()
            except Exception:  # noqa: BLE001 — a failed partial draw is redrawn by the next one or by
                pass  # the final view, which runs on the cell's thread and reports there; the thread lives on


_deferred = _Deferred()


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
        # the deferred draw's token while one is due (it will show any change made before it runs),
        # else None: an attribute, not a property, because every token of an answer reads it
        self.pending: object | None = None
        self._closed = False

    def poke(self) -> None:
        if self.pending is not None or self._closed:
            return  # the per-token fast path, without the lock: a pending draw will show this change too
        with self._lock:
            if self._closed or self.pending is not None:
                return  # a draw is already due; it will show this change too
            now = time.monotonic()
            wait = self._interval() - (now - self._last)
            if wait > 0:
                token = self.pending = object()
                _deferred.call_at(now + wait, lambda: self._fire(token))
                return
            self._last = now
            self._draw()

    def flush(self) -> None:
        """Draw now (e.g. the final state), cancelling any deferred draw."""
        with self._lock:
            self.pending = None
            if not self._closed:
                self._last = time.monotonic()
                self._draw()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self.pending = None  # a deferred draw already scheduled finds its token gone and does nothing

    def _fire(self, token) -> None:
        with self._lock:
            if self.pending is not token:
                return  # cancelled by flush() or close()
            self.pending = None
            if not self._closed:
                self._last = time.monotonic()
                self._draw()


class CellView:
    """A live view of one answer in the current cell (a display handle, chatlab-style)."""

    def __init__(self, route, interval: float = UPDATE_INTERVAL_S):
        from IPython.display import display

        self._size = 0
        self._parts: list[str] = []
        self._joined = ""  # the first _joined_count parts, joined at earlier draws (not again at each)
        self._joined_count = 0
        self._thinking: list[str] = []
        self._route = route
        self._markdown = untrusted.StreamingMarkdown()
        self._render_s = 0.0  # what rendering cost at the last draw
        untrusted.warm_up()  # the first view in a kernel imports markdown-it while the request is sent
        self._handle = display(self._waiting_bundle("waiting for the first token…"), raw=True, display_id=True)
        self._throttle = Throttle(self._draw, lambda: max(interval, 2 * self._size / DISPLAY_BYTES_PER_S,
                                                          RENDER_COST_FACTOR * self._render_s))

    def add(self, text: str) -> None:
        """Called per delta: coalesced; the display follows at a bounded rate (and bytes rate)."""
        self._parts.append(text)
        self._size += len(text)
        if self._throttle.pending is None:  # per token: a draw already due shows this text too (no call)
            self._throttle.poke()

    def _waiting_bundle(self, why: str) -> dict:
        line = f"{self._route.backend} · {self._route.model} — {self._route.reason} — {why}"
        return untrusted.bundle(untrusted.note_html(line), line)  # names a server chose: escaped

    def waiting(self, why: str) -> None:
        """Why nothing has arrived yet: a retry's wait ("rate limited by Claude; retrying in 12 s"),
        the embedded model starting. Serialised with the draws, never over an answer already shown."""
        with self._throttle._lock:
            if self._parts or self._thinking or self._throttle._closed:
                return
            self._handle.update(self._waiting_bundle(why), raw=True)

    def add_thinking(self, text: str) -> None:
        """A thinking model's reasoning, shown dimmed until the answer starts."""
        self._thinking.append(text)
        if not self._parts:
            self._throttle.poke()

    def _draw(self) -> None:
        if self._parts:
            shown = self._text_so_far()
            started, warm = time.perf_counter(), untrusted.ready()
            rendered = self._markdown.render(shown)
            if warm:  # a draw that waited for the one-time import says nothing about the next ones
                self._render_s = time.perf_counter() - started
            self._handle.update(untrusted.bundle(rendered, shown), raw=True)
        else:
            tail = "".join(self._thinking)[-600:]
            self._handle.update(untrusted.bundle(untrusted.note_html(f"thinking… {tail}"), f"thinking… {tail}"),
                                raw=True)

    def _text_so_far(self) -> str:
        count = len(self._parts)  # add() only ever appends, on the cell's thread: the first `count` are final
        if count > self._joined_count:
            self._joined += "".join(self._parts[self._joined_count:count])
            self._joined_count = count
        return self._joined

    def finish(self, result) -> None:
        """The final update: the whole answer, footer, and the route in the output metadata."""
        self._throttle.close()
        from ..answer_provenance import of  # backend, model, options, route, hashes, usage, cost, times, cache

        meta = {"inference_magics": {"backend": result.backend, "model": result.model,
                                     "stop_reason": result.stop_reason, **of(result)}}
        self._handle.update(result_bundle(result, self._markdown), raw=True, metadata=meta)


class ExperimentView:
    """One column per model, filled as the answers stream in (Markdown, through the untrusted-text
    renderer); then a comparison table and a chart."""

    COLUMN_STYLE = ("flex:1;min-width:220px;border:1px solid rgba(128,128,128,0.35);"  # kept when sanitized
                    "border:1px solid var(--jp-border-color2,#e0e0e0);border-radius:6px;"
                    "padding:6px 10px;background:var(--jp-layout-color0,#fff);color:var(--jp-content-font-color1,#000)")

    def __init__(self, runs):
        from IPython.display import display

        self._markdown: dict[int, untrusted.StreamingMarkdown] = {}  # per run, while it streams
        self._final: dict[int, str] = {}  # per run, once it is done
        self._handle = display(self._bundle(runs), raw=True, display_id=True)

    @staticmethod
    def title(run) -> str:
        """`model · backend`; a backend name alone (its default model) is shown once, as the model
        it resolved to when known."""
        model = run.result.model if run.result is not None and run.result.model else run.model
        backend = run.backend or ""
        head = model if not backend or model == backend else f"{model} · {backend}"
        return head + (f" (#{run.sample})" if run.sample > 1 else "")

    def _column(self, run) -> str:
        if run.done and run.result is not None and not run.error:
            body = self._final.get(id(run))
            if body is None:
                body = self._final[id(run)] = untrusted.markdown_html(run.text)
        else:
            body = self._markdown.setdefault(id(run), untrusted.StreamingMarkdown()).render(run.text)
        notes = []
        if run.error:
            notes.append(untrusted.note_html("⚠ " + run.error, warn=True))
        elif not run.done:
            notes.append(untrusted.note_html("…"))
        elif run.result is not None:
            notes.append(untrusted.note_html(footer(run.result)))
        return (f'<div style="{self.COLUMN_STYLE}"><div style="font-weight:600">{untrusted.escape(self.title(run))}'
                f"</div>{body}{''.join(notes)}</div>")

    def _bundle(self, runs) -> dict:
        columns = "".join(self._column(run) for run in runs)
        plain = "\n\n".join(f"[{self.title(r)}] {r.text or r.error or ''}" for r in runs)
        return untrusted.bundle(f'<div style="display:flex;gap:8px;flex-wrap:wrap">{columns}</div>', plain)

    def update(self, experiment) -> None:
        self._handle.update(self._bundle(experiment.runs), raw=True)

    def finish(self, experiment) -> None:
        from IPython.display import display

        from ..answer_provenance import KEY, of_rows
        from . import experiment_output

        self.update(experiment)
        rows = experiment.rows()
        display(experiment_output.table(rows, experiment.wall_s), raw=True,
                metadata={KEY: of_rows([run.result for run in experiment.runs], "experiment")})
        chart = experiment_output.chart(rows)
        if chart is not None:
            display({"image/png": chart, "text/plain": "where each run's time went, and its tokens per second"},
                    raw=True)
