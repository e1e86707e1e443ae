"""Claude's Message Batches API behind `%%infer --map --batch-api` and `%infer_batches`: every row
in one job at about half the price, results within 24 hours. Jobs are remembered in the data
folder, so a later kernel can list, poll and collect them. Each row is judged by the privacy
policy before it is sent; a refused row keeps its reason and is never sent.
"""
from __future__ import annotations

import json
import time

from . import api, policy, settings as settings_module
from .backends import get_backend, offering
from .backends.base import Request
from .batch import Mapped, Row, render_prompts
from .cache import cache_for, digest
from .errors import ConfigError, InferenceError, PrivacyError
from .interpolate import wire_safe


def batch_backend():
    """The backend with a Message Batches API (its spec declares "batch")."""
    return offering("batch")[0]


def submit(template: str, items, *, column: str | None = None, model: str | None = None, system=None, temperature=None,
           max_tokens=None, namespace=None) -> dict:
    """Send every row to Claude as one Message Batch and remember the job (in the data folder), so
    a later kernel can collect it with `collect(id)`. Rows that must stay local are refused in
    their row and never sent."""
    # as a cell checks them: the batch API reads each row's options only when it runs the row, and
    # a bad one would come back hours later as every row failed
    api._check_options(temperature, max_tokens, None)
    settings = settings_module.load()
    batcher = batch_backend()
    policy.check("", batcher.name, model, settings, how="--batch-api")  # local-only: not one request to Claude
    # as im.stream does: lone surrogates become a visible ? before anything is sent
    prompts = [wire_safe(prompt) for prompt in render_prompts(template, items, column, namespace)]
    system = wire_safe(system) if system else system
    requests, refused = {}, {}
    for index, prompt in enumerate(prompts):
        try:
            # no model named: the batch backend's own default (ANTHROPIC_DEFAULT_MODEL), as a cell would use
            route = api.route(prompt, model=model, backend=None if model else batcher.name, system=system)
            if route.backend != batcher.name:
                raise ConfigError(f"--batch-api sends rows to {batcher.label}'s Message Batches API, and {route.model} "
                                  f"is not a {batcher.label} model — name one ({', '.join(batcher.aliases)}, ...).")
            policy.check(policy.outgoing_text(prompt, system), route.backend, route.model, settings)
        except PrivacyError as exc:
            refused[str(index)] = exc.message
            continue
        requests[str(index)] = Request(model=route.model, messages=({"role": "user", "content": prompt},),
                                       system=system, temperature=temperature, max_tokens=max_tokens)
    if not requests:
        raise ConfigError("every row was refused for the cloud (each carries something private) — run them locally "
                          "without --batch-api.")
    from . import budget  # a batch's estimate counts against the caps when it is sent

    found = budget.estimate(batcher.name, route.model, [prompts[int(i)] for i in requests], system=system,
                            max_tokens=max_tokens, settings=settings)
    budget.refuse_over_budget(settings, found.batch_cost_usd, route.model, f"this Message Batch of {len(requests)} rows")
    batch_id = get_backend(batcher.name, settings).submit_batch(requests)
    budget.add_spend(found.batch_cost_usd)
    job = {"id": batch_id, "rows": len(prompts), "refused": refused, "model": route.model,
           "created_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    cache_for(settings).put_many("batch-job", "", [(digest(batch_id), json.dumps(job).encode())])
    return job


def jobs() -> list[dict]:
    """Every Message Batch submitted from this machine, newest first, with its current status."""
    settings = settings_module.load()
    found, _ = cache_for(settings).values("batch-job", "")
    known = sorted((json.loads(v) for v in found), key=lambda job: job["created_at"], reverse=True)
    try:
        policy.check("", batch_backend().name, None, settings, how="polling Message Batches")
    except PrivacyError:  # local-only: list what this machine knows, ask Claude nothing
        for job in known:
            job["status"] = "not polled (INFERENCE_PRIVACY=local-only)"
        return known
    backend = get_backend(batch_backend().name, settings)
    for job in known:
        try:
            job.update(backend.batch_status(job["id"]))
        except InferenceError as exc:
            job["status"] = f"unknown: {exc.message}"
    return known


def collect(batch_id: str) -> Mapped:
    """The rows of an ended batch, in input order (refused rows keep their reason)."""
    settings = settings_module.load()
    found, _ = cache_for(settings).get_many("batch-job", "", [digest(batch_id)])
    if not found:
        raise ConfigError(f"no batch {batch_id!r} was submitted from here — %infer_batches lists the known ones.")
    job = json.loads(next(iter(found.values())))
    batcher = batch_backend()
    policy.check("", batcher.name, job["model"], settings, how="collecting a Message Batch")
    backend = get_backend(batcher.name, settings)
    status = backend.batch_status(batch_id)
    if status["status"] != "ended":
        raise ConfigError(f"batch {batch_id} is still {status['status']} ({status['processing']} rows to go) — "
                          "collect it later; results arrive within 24 hours.")
    results = backend.batch_results(batch_id)
    rows = []
    for index in range(job["rows"]):
        row = Row(index, "", backend=batcher.name, model=job["model"])
        row.output, row.error, row.tokens = results.get(str(index), (None, job["refused"].get(str(index)), 0))
        rows.append(row)
    return Mapped(rows)
