"""One prompt template over many rows: `im.map("Classify: {row}", items)` (this module's
`map_rows`) and `%%infer --map VAR`. (`--batch-api` is message_batches.py.)

Rows run concurrently (bounded), each with its own routing, so privacy is judged per row: a row
that carries a secret stays on this machine, or is refused in its own row. A failed row keeps its
error and the batch goes on. Finished rows go to the response cache (response_cache.py, the same
one INFERENCE_CACHE governs for single prompts), so an interrupted or failed batch resumes where it
stopped when run again.
"""
from __future__ import annotations

import re
import threading
import time
from collections import ChainMap
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from . import api, telemetry
from .backends import REGISTRY
from .errors import ConfigError, InferenceError, InferenceInterrupted
from .interpolate import interpolate, unresolved

DEFAULT_CONCURRENCY = 4  # each backend's spec says its own: a local server only queues more


@dataclass
class Row:
    index: int
    prompt: str
    output: str | None = None
    backend: str = ""
    model: str = ""
    tokens: int = 0
    error: str | None = None
    parsed: object = None
    cached: bool = False
    result: object = field(default=None, repr=False)  # the api Result (provenance), None if not asked


@dataclass
class Mapped:
    rows: list[Row]
    items: object = None  # what was mapped over, to give a DataFrame back its columns
    notices: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    schema: object = None  # typed_answers.Schema with --schema: one typed column per field

    @property
    def outputs(self) -> list:
        return [row.parsed if row.parsed is not None else row.output for row in self.rows]

    @property
    def failed(self) -> int:
        return sum(1 for row in self.rows if row.error)

    def frame(self):
        """A DataFrame in input order: the input's columns (if it had any), then output, backend,
        model, tokens, error — and with format json, one column per parsed field."""
        import pandas

        extra = pandas.DataFrame([{"output": r.output, "backend": r.backend, "model": r.model, "tokens": r.tokens,
                                   "error": r.error} for r in self.rows])
        parsed = [r.parsed for r in self.rows]
        if self.schema is not None:  # typed columns: ints stay ints and bools bools, a failed row is empty
            from .typed_answers import columns

            extra = pandas.concat([extra, columns(parsed, self.schema)], axis=1)
        elif any(isinstance(p, dict) for p in parsed):
            extra = pandas.concat([extra, pandas.DataFrame([p if isinstance(p, dict) else {} for p in parsed])],
                                  axis=1)
        if isinstance(self.items, pandas.DataFrame):
            return pandas.concat([self.items.reset_index(drop=True), extra], axis=1).set_axis(self.items.index)
        return extra

    def value(self):
        """What `--out` holds: a DataFrame for a DataFrame or Series, else the list of outputs."""
        kind = type(self.items).__name__
        return self.frame() if kind in ("DataFrame", "Series") else self.outputs


def rows_of(items, column: str | None) -> list:
    """The rows to map over: a list's items, a Series' values, a DataFrame's rows (or one column)."""
    if items is None:
        raise ConfigError("nothing to map over (got None) — pass a list, a pandas Series or a DataFrame.")
    kind = type(items).__name__
    if kind == "DataFrame":
        if column is not None:
            if column not in items.columns:
                raise ConfigError(f"the DataFrame has no column {column!r} — its columns: "
                                  f"{', '.join(map(str, items.columns))}.")
            rows = items[column].tolist()
        else:
            rows = [row for _, row in items.iterrows()]  # {row.title} reads a column
        if not rows:
            raise ConfigError("there are no rows to map over (the DataFrame is empty).")
        return rows
    if column is not None:
        raise ConfigError("--column applies to a DataFrame only.")
    if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        raise ConfigError(f"cannot map over a {kind} — pass a list, a pandas Series or a DataFrame.")
    rows = items.tolist() if hasattr(items, "tolist") else list(items)
    if not rows:
        raise ConfigError("there are no rows to map over (the list is empty).")
    return rows


class ColumnValue:
    """One row of `--column text`: the column's value, which `{row}` and `{row.text}` both name
    (the second reads as it would without --column)."""

    __slots__ = ("value", "column")

    def __init__(self, value, column: str):
        self.value, self.column = value, column

    def __getattr__(self, name: str):
        if name == self.column:
            return self.value
        raise AttributeError(name)

    def __str__(self) -> str:
        return str(self.value)


def render_prompts(template: str, items, column: str | None, namespace) -> list[str]:
    """The template rendered for each row. A `{row...}` or `{index}` field that resolves for no row
    is a mistake (a misspelt column, say), refused before anything is sent rather than sent as
    literal braces."""
    rows = rows_of(items, column)
    if column is not None:
        rows = [ColumnValue(value, column) for value in rows]
    names = namespace or {}
    scopes = [ChainMap({"row": item, "index": i}, names) for i, item in enumerate(rows)]
    row_fields = {path for path in unresolved(template, scopes[0]) if re.match(r"(row|index)\b", path)}
    for scope in scopes[1:]:
        if not row_fields:
            break
        row_fields &= set(unresolved(template, scope))
    if row_fields:
        path = sorted(row_fields)[0]
        if column is not None:
            hint = f"with --column {column} each row is that column's value: write {{row}} or {{row.{column}}}"
        elif type(items).__name__ == "DataFrame":
            hint = f"the rows' columns are {', '.join(map(str, items.columns))}: write {{row.COLUMN}}"
        else:
            hint = f"each row is a {type(rows[0]).__name__}: write {{row}} for the whole item"
        raise ConfigError(f"{{{path}}} matches nothing in any row, so no prompt would carry it — {hint}.")
    return [interpolate(template, scope) for scope in scopes]


def stable_prefix(template: str) -> int:
    """Characters of the template before its first `{row...}`/`{index}` field: the same in every
    row's prompt, so worth a prompt-cache breakpoint (Claude)."""
    match = re.search(r"(?<!\{)\{(?:row|index)\b", template)
    prefix = template[:match.start()] if match else template
    return len(prefix) if "{" not in prefix else 0  # other {names} may change its length


def map_rows(template: str, items, *, column: str | None = None, model=None, backend=None, system=None,
             temperature=None, max_tokens=None, format=None, concurrency: int | None = None, cache: bool = True,
             progress=None, on_progress=None, namespace=None, schema=None) -> Mapped:
    """Render `template` once per row (`{row}`, `{row.title}`, `{index}`) and ask a model for each,
    concurrently, in input order. Other `{name}`s come from `namespace` (the notebook's variables,
    for the magic). An interrupt stops the batch and keeps every finished row (InferenceInterrupted
    with `.mapped`)."""
    if not template.strip():
        raise ConfigError("the template is empty — write it in the cell body, e.g. Classify: {row}")
    rows = [Row(i, prompt) for i, prompt in enumerate(render_prompts(template, items, column, namespace))]
    options = dict(model=model, backend=backend, system=system, temperature=temperature, max_tokens=max_tokens,
                   format=format)
    if schema is not None:  # checked once, before any row is sent; each row validates its own answer
        from .typed_answers import Schema

        schema = schema if isinstance(schema, Schema) else Schema(schema)
        options["schema"] = schema
    mapped = Mapped(rows, items, schema=schema)
    pending = rows
    fixed = stable_prefix(template)
    if concurrency is None:
        first = _backend_of(rows[0].prompt, model, backend, system)
        concurrency = REGISTRY[first].concurrency if first in REGISTRY else DEFAULT_CONCURRENCY
    if concurrency < 1:
        raise ConfigError(f"--concurrency must be 1 or more, not {concurrency}.")
    started = time.perf_counter()
    stop = threading.Event()  # set by an interrupt: every running row ends at its next delta

    def one(row: Row) -> None:
        try:
            # cache=True: rows a previous run finished come from the response cache (resuming a map)
            result = api.infer(row.prompt, **options, cache=cache, stable_prefix_chars=fixed, stop=stop)
        except KeyboardInterrupt as exc:  # stopped by the interrupt: its response is closed, its partial text kept
            partial = getattr(exc, "result", None)
            row.output = partial.text if partial is not None and partial.text else None
            row.error = "interrupted before it finished — run the cell again to finish the missing rows"
            return
        except InferenceError as exc:
            row.error = exc.message
            if schema is not None and getattr(exc, "result", None) is not None:
                row.output = exc.result.text  # the answer that did not match, kept in its row
            return
        except Exception as exc:  # a row must never fail silently
            row.error = f"unexpected {type(exc).__name__}: {exc}"
            return
        row.output, row.backend, row.model = result.text, result.backend, result.model
        row.tokens, row.parsed, row.cached = result.usage.output_tokens, result.parsed, result.cached
        row.result = result
        for notice in result.notices:
            if notice.startswith("the cache is off") and notice not in mapped.notices:
                mapped.notices.append(notice)

    from .progress import progress_bar

    bar = progress_bar(len(pending), progress if progress is not None else len(pending) > 1, label="map", unit="row")
    trace = telemetry.begin("map", rows=len(rows), concurrency=concurrency)  # each row's span is its child
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="map")
    futures = [pool.submit(trace.run, one, row) for row in pending]
    try:
        done = 0
        while done < len(futures):
            time.sleep(0.1)  # short waits: an interrupt lands here at once
            now = sum(f.done() for f in futures)
            if bar is not None and now > done:
                bar.update(now - done)
                bar.set_postfix(failed=mapped.failed, tokens=sum(r.tokens for r in rows), refresh=False)
            done = now
            if on_progress:
                on_progress(mapped)
    except KeyboardInterrupt:
        stop.set()  # running rows stop at their next delta and close their responses: the servers stop too
        pool.shutdown(wait=False, cancel_futures=True)  # rows not started never start
        try:  # a moment for the running rows to say so in their rows (one still waiting for its first token may not)
            wait(futures, timeout=2)
        except KeyboardInterrupt:
            pass
        mapped.wall_s = time.perf_counter() - started
        raise InferenceInterrupted(mapped=mapped) from None
    finally:
        pool.shutdown(wait=False)
        trace.end()
        if bar is not None:
            bar.close()
    mapped.wall_s = time.perf_counter() - started
    return mapped


def _backend_of(prompt: str, model, backend, system) -> str | None:
    """Where the first row goes, to size the pool. A row the policy refuses is refused in its own
    row when it runs (PrivacyError there), never for the whole batch here."""
    try:
        return api.route(prompt, model=model, backend=backend, system=system).backend
    except InferenceError:
        return None
