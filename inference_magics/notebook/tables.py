"""Small tables for the magics: HTML for notebooks, aligned text for everything else. Cells can
hold model and server text (model names, answers, error texts): every one is escaped."""
from __future__ import annotations

import re

from ..untrusted import NO_MATH, bundle as output_bundle, escape, note_html


def bundle(columns: list[str], rows: list[list], caption: str = "") -> dict:
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    head = "".join(f"<th style='text-align:left'>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{escape(v)}</td>" for v in row) + "</tr>"
                   for row in cells)
    # the caption sits above the table, not in a <caption>, which wraps at a narrow table's width
    cap = (f"<div style='color:var(--jp-ui-font-color1);font-size:var(--jp-content-font-size0,0.85em);"
           f"margin-bottom:4px'>{escape(caption)}</div>"
           if caption else "")
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    plain = "\n".join(([caption] if caption else []) + lines)
    return {"text/html": f"<div class='{NO_MATH}'>{cap}<table style='overflow-wrap:anywhere'><thead><tr>{head}"
                         f"</tr></thead><tbody>{body}</tbody></table></div>", "text/plain": plain}


def human_size(size: int | None) -> str:
    if not size:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


# --- embeddings ---------------------------------------------------------------------------------
def _embed_caption(done, query: bool = False) -> str:
    """`query`: the ranked texts were embedded with the query, which the cache and request counts include."""
    count = len(done.vectors)
    texts = f"{count} text{'s' * (count != 1)}" + (" and the query" if query else "")
    source = f"{done.cached} from the cache, {done.requests} request{'s' * (done.requests != 1)}"
    return (f"{done.model} ({done.backend}) · {done.dims} dimensions · {texts} · {source}"
            + "".join(f" · ⚠ {n}" for n in done.notices))


def embed_bundle(done, single: bool) -> dict:
    caption = _embed_caption(done)
    if single:
        v = done.vectors[0]
        shown = ", ".join(f"{x:.4f}" for x in v[:4]) + (", …, " + f"{v[-1]:.4f}" if len(v) > 4 else "")
        detail = f"[{shown}]"
    else:
        detail = f"array of shape {done.vectors.shape}"
    return output_bundle(f"{note_html(caption)}<code>{escape(detail)}</code>", f"{caption}\n{detail}")


def embed_json(done, single: bool) -> dict:
    vectors = done.vectors.tolist()
    return {"backend": done.backend, "model": done.model, "dimensions": done.dims,
            "embedding" if single else "embeddings": vectors[0] if single else vectors}


def similar_bundle(ranked: list[dict], done, query: str) -> dict:
    rows = [[r["rank"], f"{r['score']:.4f}", r["index"], _short(r["text"])] for r in ranked]
    return bundle(["rank", "score", "index", "text"], rows, f"most similar to {_short(query, 60)!r} · "
                  + _embed_caption(done, query=True))


def _short(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --- models and health ----------------------------------------------------------------------------
MODEL_COLUMNS = ["backend", "name", "kind", "parameters", "quantization", "family", "size", "modified",
                 "default for", "aliases"]


def model_rows(listing) -> list[dict]:
    rows = [{"backend": m.backend, "name": m.name, "kind": m.kind, "parameters": m.parameter_size or "",
             "quantization": m.quantization or "", "family": m.family or "", "size": human_size(m.size),
             "modified": (m.modified_at or "")[:10], "default for": m.default_for, "aliases": ", ".join(m.aliases)}
            for m in listing]
    rows += [{**{c: "" for c in MODEL_COLUMNS}, "backend": name, "name": f"unavailable: {why}"}
             for name, why in listing.unavailable.items()]
    return rows


def models_bundle(rows: list[dict]) -> dict:
    return bundle(MODEL_COLUMNS, [[row[c] for c in MODEL_COLUMNS] for row in rows])


def as_frame(rows: list[dict]):
    try:
        import pandas
    except ImportError:
        return rows
    return pandas.DataFrame(rows, columns=MODEL_COLUMNS)


def health_bundle(status: dict, privacy: str = "default") -> dict:
    rows = [[name, "ok" if h.ok else "down", f"{h.latency_s * 1000:.0f} ms" if h.latency_s is not None else "",
             h.detail] for name, h in status.items()]
    mode = ("privacy: local-only — no request reaches a cloud backend" if privacy == "local-only"
            else "privacy: private prompts stay on this machine")
    return bundle(["backend", "status", "latency", "detail"], rows, mode)


# --- history ------------------------------------------------------------------------------------
_MARKDOWN_MARKS = re.compile(r"^\s{0,3}(?:#{1,6}\s+|>\s?|[-*+]\s+|\d+[.)]\s+)|```\w*|[*_`~]{1,3}|^\|?[-:| ]+\|?$",
                             re.MULTILINE)
# what each backend calls the way an answer ended, in one vocabulary
_STOP_WORDS = {"end_turn": "complete", "stop": "complete", "stop_sequence": "complete", "max_tokens": "length limit",
               "length": "length limit", "tool_use": "tool call", "tool_calls": "tool call", "refusal": "refused"}


def _state(entry) -> str:
    if entry.interrupted:
        return "interrupted"
    if entry.error:
        return "error: " + _short(entry.error, 100)
    return _STOP_WORDS.get(entry.stop_reason or "", entry.stop_reason or "")


def _tokens(entry) -> str:
    """"in / out"; "—" for a count the backend never sent (an interrupted answer: its output is
    counted from what arrived, its input stays unknown)."""
    if entry.input_tokens is None and entry.output_tokens is None:
        return "—"
    return " / ".join("—" if n is None else str(n) for n in (entry.input_tokens, entry.output_tokens))


def history_bundle(rows, caption: str) -> dict:
    """rows: Entry objects, or (score, Entry) pairs from a semantic search."""
    scored = bool(rows) and isinstance(rows[0], tuple)
    columns = (["score"] if scored else []) + ["when (UTC)", "backend · model", "prompt", "answer", "tokens", "state"]
    table = []
    for row in rows:
        score, entry = row if scored else (None, row)
        answer = _MARKDOWN_MARKS.sub("", entry.output or "")  # a preview reads as text, not as Markdown source
        cells = [entry.created_at[:19].replace("T", " "), f"{entry.backend} · {entry.model}", _short(entry.prompt, 80),
                 _short(answer, 80), _tokens(entry), _state(entry)]
        table.append(([f"{score:.3f}"] if scored else []) + cells)
    return bundle(columns, table, caption)


# --- mapped rows --------------------------------------------------------------------------------
def map_bundle(mapped, shown: int = 20) -> dict:
    rows = mapped.rows
    done = [r for r in rows if r.output is not None or r.error]
    cached = sum(r.cached for r in rows)
    caption = (f"{len(done)} of {len(rows)} rows · {mapped.failed} failed · {cached} from the cache · "
               f"{sum(r.tokens for r in rows)} output tokens · {mapped.wall_s:.1f} s"
               + "".join(f" · ⚠ {n}" for n in mapped.notices))
    table = [[r.index, _short(r.output or "", 80), f"{r.backend} · {r.model}" if r.backend else "", r.tokens,
              _short(r.error or "", 80)] for r in rows[:shown]]
    more = f" (first {shown} shown)" if len(rows) > shown else ""
    return bundle(["row", "output", "backend · model", "tokens", "error"], table, caption + more)


def batch_job_bundle(job: dict) -> dict:
    refused = len(job["refused"])
    text = (f"submitted Message Batch {job['id']}: {job['rows'] - refused} rows to {job['model']}"
            + (f", {refused} refused (private rows stay local)" if refused else "")
            + f" — results within 24 hours: %infer_batches {job['id']} --out NAME collects them.")
    return output_bundle(note_html(text), text)


def batch_jobs_bundle(jobs: list[dict]) -> dict:
    rows = [[j["id"], j["created_at"], j["model"], j["rows"], j.get("status", ""),
             f"{j.get('succeeded', 0)} ok / {j.get('errored', 0)} failed / {j.get('processing', 0)} to go"]
            for j in jobs]
    return bundle(["batch", "submitted", "model", "rows", "status", "progress"], rows,
                  f"{len(jobs)} Message Batch{'es' * (len(jobs) != 1)}")


# --- spend ----------------------------------------------------------------------------------------
def spend_bundles(rows: list[tuple]) -> tuple[dict, dict]:
    """Two tables from the history's (day, backend, model, calls, in, out, usd) rows: by model, by day."""
    by_model: dict[tuple, list] = {}
    by_day: dict[str, list] = {}
    for day, backend, model, calls, tokens_in, tokens_out, usd in rows:
        for key, table in (((backend, model), by_model), (day, by_day)):
            total = table.setdefault(key, [0, 0, 0, 0.0])
            for i, value in enumerate((calls, tokens_in, tokens_out, usd)):
                total[i] += value or 0
    spent = sum(v[3] for v in by_day.values())
    models = bundle(["backend · model", "calls", "input tokens", "output tokens", "USD"],
                    [[f"{b} · {m}", c, i, o, f"{u:.4f}"] for (b, m), (c, i, o, u) in
                     sorted(by_model.items(), key=lambda kv: -kv[1][3])],
                    f"spend by model, from the history: ${spent:.4f} in all")
    days = bundle(["day (UTC)", "calls", "input tokens", "output tokens", "USD"],
                  [[d, c, i, o, f"{u:.4f}"] for d, (c, i, o, u) in sorted(by_day.items(), reverse=True)],
                  "spend by day")
    return models, days


def spend_chart(rows: list[tuple]) -> bytes | None:
    """A PNG: USD per day, stacked by model (None when nothing was spent)."""
    spent = [r for r in rows if r[6]]
    if not spent:
        return None
    import io

    from matplotlib.figure import Figure  # no pyplot: no global state

    from .experiment_output import chart_label  # a model name is a server's text: no `$` for mathtext

    days = sorted({r[0] for r in spent})
    models = sorted({r[2] for r in spent})
    figure = Figure(figsize=(max(5, 0.8 * len(days) + 2), 3))
    axis = figure.subplots()
    bottom = [0.0] * len(days)
    for model in models:
        heights = [sum(r[6] for r in spent if r[0] == day and r[2] == model) for day in days]
        axis.bar(days, heights, bottom=bottom, label=chart_label(model))
        bottom = [b + h for b, h in zip(bottom, heights)]
    axis.set_ylabel("USD")
    axis.legend(fontsize=7)
    axis.tick_params(axis="x", labelrotation=20, labelsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()
