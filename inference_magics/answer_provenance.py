"""Provenance: what produced an answer, saved in the notebook with it.

Every answer's display output carries metadata under the key "inference_magics" (backend, resolved
model, options, route and reason, SHA-256 of the exact messages sent, usage, cost, request time and
duration, whether it came from the response cache, the package version). `im.provenance(path)`
reads them back from a saved notebook, one row per answer.
"""
from __future__ import annotations

import json
from pathlib import Path

KEY = "inference_magics"


def of(result) -> dict:
    """The provenance record of one Result (JSON-safe)."""
    from . import __version__

    route, usage, metrics = getattr(result, "route", None), result.usage, result.metrics
    return {
        "kind": "answer",
        "backend": result.backend, "model": result.model,
        "options": dict(getattr(result, "options", {}) or {}),
        "route": route.backend if route is not None else None,
        "route_reason": route.reason if route is not None else None,
        "messages_sha256": getattr(result, "messages_sha256", None),
        "request_sha256": getattr(result, "request_sha256", None),
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
                  "cache_creation_input_tokens": getattr(usage, "cache_creation_input_tokens", 0),
                  "cache_read_input_tokens": getattr(usage, "cache_read_input_tokens", 0)},
        "cost_usd": result.cost_usd,
        "requested_at": getattr(result, "requested_at", None),
        "duration_s": round(metrics.total_s, 4) if metrics.total_s is not None else None,
        "cached": bool(getattr(result, "cached", False)),
        "cached_at": getattr(result, "cached_at", None),
        "stop_reason": result.stop_reason,
        "version": __version__,
    }


def of_rows(results, kind: str) -> dict:
    """One output holding several answers (a map's rows, an experiment's runs)."""
    from . import __version__

    return {"kind": kind, "version": __version__, "answers": [of(r) for r in results if r is not None]}


_COLUMNS = ["cell", "output", "kind", "backend", "model", "route", "route_reason", "options", "messages_sha256",
            "request_sha256", "input_tokens", "output_tokens", "cache_creation_input_tokens",
            "cache_read_input_tokens", "cost_usd", "requested_at", "duration_s", "cached", "cached_at",
            "stop_reason", "version"]


def _flat(record: dict, cell: int, output: int, kind: str) -> dict:
    usage = record.get("usage") or {}
    row = {name: record.get(name) for name in _COLUMNS}
    row.update(cell=cell, output=output, kind=kind, **{k: usage.get(k) for k in (
        "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")})
    return row


def read(path: str | Path):
    """A saved notebook's answers as a pandas DataFrame, one row per answer (a map gives a row per
    mapped row). `cell` is the code cell's position among all cells, counting from 0."""
    import pandas

    from .errors import ConfigError

    try:
        notebook = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the notebook {str(path)!r}: {exc.strerror} — check the path.") from None
    except ValueError as exc:
        raise ConfigError(f"{str(path)!r} is not a notebook (not JSON: {exc}) — give an .ipynb file.") from None
    rows = []
    for cell_index, cell in enumerate(notebook.get("cells", []) if isinstance(notebook, dict) else []):
        for output_index, output in enumerate(cell.get("outputs", []) if isinstance(cell, dict) else []):
            record = (output.get("metadata") or {}).get(KEY) if isinstance(output, dict) else None
            if not isinstance(record, dict):
                continue
            if "answers" in record:
                rows += [_flat(answer, cell_index, output_index, record.get("kind", "answers"))
                         for answer in record["answers"] if isinstance(answer, dict)]
            elif record.get("kind") == "answer":
                rows.append(_flat(record, cell_index, output_index, "answer"))
    return pandas.DataFrame(rows, columns=_COLUMNS)
