"""One prompt template over many rows: `im.map("Classify: {row}", items)` (this module's
`map_rows`) and `%%infer --map VAR`.

Rows run concurrently (bounded), each with its own routing, so privacy is judged per row: a row
that carries a secret stays on this machine, or is refused in its own row. A failed row keeps its
error and the batch goes on. Finished rows are cached by (model, rendered prompt, options), so an
interrupted or failed batch resumes where it stopped when run again.
"""
from __future__ import annotations

import json
import time
from collections import ChainMap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from . import api, settings as settings_module
from .cache import cache_for, digest
from .errors import ConfigError, InferenceError, InferenceInterrupted
from .interpolate import interpolate, wire_safe

CONCURRENCY = {"anthropic": 8, "openai": 8}  # a local server gets 4: more only queues there
DEFAULT_CONCURRENCY = 4


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


@dataclass
class Mapped:
    rows: list[Row]
    items: object = None  # what was mapped over, to give a DataFrame back its columns
    notices: list[str] = field(default_factory=list)
    wall_s: float = 0.0

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
        if any(isinstance(p, dict) for p in parsed):
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
            return items[column].tolist()
        return [row for _, row in items.iterrows()]  # {row.title} reads a column
    if column is not None:
        raise ConfigError("--column applies to a DataFrame only.")
    if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        raise ConfigError(f"cannot map over a {kind} — pass a list, a pandas Series or a DataFrame.")
    rows = items.tolist() if hasattr(items, "tolist") else list(items)
    if not rows:
        raise ConfigError("there are no rows to map over (the list is empty).")
    return rows


def _key(prompt: str, options: dict) -> bytes:
    return digest(json.dumps({"prompt": prompt, **options}, sort_keys=True, default=str))


def map_rows(template: str, items, *, column: str | None = None, model=None, backend=None, system=None,
             temperature=None, max_tokens=None, format=None, concurrency: int | None = None, cache: bool = True,
             progress=None, on_progress=None, namespace=None) -> Mapped:
    """Render `template` once per row (`{row}`, `{row.title}`, `{index}`) and ask a model for each,
    concurrently, in input order. Other `{name}`s come from `namespace` (the notebook's variables,
    for the magic). An interrupt stops the batch and keeps every finished row (InferenceInterrupted
    with `.mapped`)."""
    if not template.strip():
        raise ConfigError("the template is empty — write it in the cell body, e.g. Classify: {row}")
    names = namespace or {}
    rows = [Row(i, interpolate(template, ChainMap({"row": item, "index": i}, names)))
            for i, item in enumerate(rows_of(items, column))]
    options = dict(model=model, backend=backend, system=system, temperature=temperature, max_tokens=max_tokens,
                   format=format)
    mapped = Mapped(rows, items)
    store = cache_for(settings_module.load()) if cache else None
    pending = _from_cache(rows, options, store, mapped)
    if concurrency is None:
        concurrency = CONCURRENCY.get(api.route(rows[0].prompt, model=model, backend=backend).backend,
                                      DEFAULT_CONCURRENCY)
    if concurrency < 1:
        raise ConfigError(f"--concurrency must be 1 or more, not {concurrency}.")
    started = time.perf_counter()

    def one(row: Row) -> None:
        try:
            result = api.infer(row.prompt, **options)
        except InferenceError as exc:
            row.error = exc.message
            return
        except Exception as exc:  # a row must never fail silently
            row.error = f"unexpected {type(exc).__name__}: {exc}"
            return
        row.output, row.backend, row.model = result.text, result.backend, result.model
        row.tokens, row.parsed = result.usage.output_tokens, result.parsed
        if store is not None and (notice := store.put_many("map", "", [(_key(row.prompt, options), _encode(row))])):
            mapped.notices.append(notice)

    from .embeddings import progress_bar

    bar = progress_bar(len(pending), progress if progress is not None else len(pending) > 1)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="map")
    futures = [pool.submit(one, row) for row in pending]
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
        pool.shutdown(wait=False, cancel_futures=True)  # rows not started never start; running ones finish
        mapped.wall_s = time.perf_counter() - started
        interrupted = InferenceInterrupted(None)
        interrupted.mapped = mapped
        raise interrupted from None
    finally:
        pool.shutdown(wait=False)
        if bar is not None:
            bar.close()
    mapped.wall_s = time.perf_counter() - started
    return mapped


def _from_cache(rows: list[Row], options: dict, store, mapped: Mapped) -> list[Row]:
    """Fill the rows a previous run finished; return the ones still to run."""
    if store is None:
        return rows
    found, notice = store.get_many("map", "", [_key(row.prompt, options) for row in rows])
    if notice:
        mapped.notices.append(notice)
    pending = []
    for row in rows:
        blob = found.get(_key(row.prompt, options))
        if blob is None:
            pending.append(row)
        else:
            saved = json.loads(blob)
            row.output, row.backend, row.model = saved["output"], saved["backend"], saved["model"]
            row.tokens, row.parsed, row.cached = saved["tokens"], saved["parsed"], True
    return pending


def _encode(row: Row) -> bytes:
    kept = {k: v for k, v in asdict(row).items() if k in ("output", "backend", "model", "tokens", "parsed")}
    return json.dumps(kept, default=str).encode()


# --- Claude's Message Batches API: about half the price, results within 24 hours ----------------
def submit(template: str, items, *, column: str | None = None, model: str = "sonnet", system=None, temperature=None,
           max_tokens=None, namespace=None) -> dict:
    """Send every row to Claude as one Message Batch and remember the job (in the data folder), so
    a later kernel can collect it with `collect(id)`. Rows that must stay local are refused in
    their row and never sent."""
    from .backends import get_backend
    from .backends.base import Request
    from .errors import PrivacyError

    names = namespace or {}
    # as im.stream does: lone surrogates become a visible ? before anything is sent
    prompts = [wire_safe(interpolate(template, ChainMap({"row": item, "index": i}, names)))
               for i, item in enumerate(rows_of(items, column))]
    system = wire_safe(system) if system else system
    requests, refused = {}, {}
    for index, prompt in enumerate(prompts):
        try:
            route = api.route(prompt, model=model or "sonnet", system=system)
        except PrivacyError as exc:
            refused[str(index)] = exc.message
            continue
        if route.backend != "anthropic":
            raise ConfigError(f"--batch-api sends rows to Claude's Message Batches API, and {route.model} is not a "
                              "Claude model — name one (sonnet, haiku, claude-...).")
        requests[str(index)] = Request(model=route.model, messages=({"role": "user", "content": prompt},),
                                       system=system, temperature=temperature, max_tokens=max_tokens)
    if not requests:
        raise ConfigError("every row was refused for the cloud (each carries something private) — run them locally "
                          "without --batch-api.")
    settings = settings_module.load()
    batch_id = get_backend("anthropic", settings).submit_batch(requests)
    job = {"id": batch_id, "rows": len(prompts), "refused": refused, "model": route.model,
           "created_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    cache_for(settings).put_many("batch-job", "", [(digest(batch_id), json.dumps(job).encode())])
    return job


def jobs() -> list[dict]:
    """Every Message Batch submitted from this machine, newest first, with its current status."""
    from .backends import get_backend

    settings = settings_module.load()
    found, _ = cache_for(settings).values("batch-job", "")
    known = sorted((json.loads(v) for v in found), key=lambda job: job["created_at"], reverse=True)
    backend = get_backend("anthropic", settings)
    for job in known:
        try:
            job.update(backend.batch_status(job["id"]))
        except InferenceError as exc:
            job["status"] = f"unknown: {exc.message}"
    return known


def collect(batch_id: str) -> Mapped:
    """The rows of an ended batch, in input order (refused rows keep their reason)."""
    from .backends import get_backend

    settings = settings_module.load()
    found, _ = cache_for(settings).get_many("batch-job", "", [digest(batch_id)])
    if not found:
        raise ConfigError(f"no batch {batch_id!r} was submitted from here — %infer_batches lists the known ones.")
    job = json.loads(next(iter(found.values())))
    backend = get_backend("anthropic", settings)
    status = backend.batch_status(batch_id)
    if status["status"] != "ended":
        raise ConfigError(f"batch {batch_id} is still {status['status']} ({status['processing']} rows to go) — "
                          "collect it later; results arrive within 24 hours.")
    results = backend.batch_results(batch_id)
    rows = []
    for index in range(job["rows"]):
        row = Row(index, "", backend="anthropic", model=job["model"])
        row.output, row.error, row.tokens = results.get(str(index), (None, job["refused"].get(str(index)), 0))
        rows.append(row)
    return Mapped(rows)
