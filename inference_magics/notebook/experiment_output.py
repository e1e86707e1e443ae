"""What `%%experiment` shows after its columns: the comparison table and the chart.

The table relabels the runs' machine names (Experiment.rows(), the `--out` DataFrame's columns,
which stay as they are for code) for people: "First token (s)" for `ttft_s`, and so on. The chart
is a PNG with a transparent background and mid-grey text, so it reads on JupyterLab's light and
dark themes; its legend sits above the plot area, never over a bar."""
from __future__ import annotations

# machine name (Experiment.rows(), the DataFrame) -> the header people read
HEADERS = {"model": "Model", "sample": "Sample", "backend": "Backend", "load_s": "Load (s)",
           "ttft_s": "First token (s)", "total_s": "Total (s)", "tokens_per_s": "Tokens/s",
           "output_tokens": "Output tokens", "cost_usd": "Cost (USD)", "error": "Error"}
NONE = "—"

# text and axes: #767676 is 4.5:1 on white and 4.2:1 on JupyterLab's dark background (#111); no
# grey reaches 4.5:1 on both
TEXT = "#767676"
LOAD, FIRST_TOKEN, GENERATING, SPEED = "#9a9a9a", "#3b82c4", "#f28e2b", "#3fa34d"


def _name(row: dict) -> str:
    """The model that answered (`local` is shown as the model it stands for)."""
    return row.get("resolved_model") or row["model"]


def chart_label(name: str, limit: int = 40) -> str:
    """A model name as a chart label (here and in %infer_cost): the server's text (untrusted) on one
    line, short, and with no `$` left for matplotlib to read as mathematics (a malformed formula
    would fail the chart)."""
    flat = " ".join(str(name).split())
    flat = flat if len(flat) <= limit else flat[: limit - 1] + "…"
    return flat.replace("$", "\\$")  # outside mathematics a backslash is itself, and \$ is a dollar


def _seconds(value) -> str:
    return NONE if value is None else f"{value:.2f}"


def _cells(row: dict) -> dict:
    cached = row["cached"]
    return {"model": _name(row), "sample": row["sample"], "backend": row["backend"],
            "load_s": _seconds(row["load_s"]),
            # an answer from the response cache took no model time: its timings measure nothing
            "ttft_s": "cached" if cached else _seconds(row["ttft_s"]),
            "total_s": NONE if cached else _seconds(row["total_s"]),
            "tokens_per_s": NONE if cached or row["tokens_per_s"] is None else f"{row['tokens_per_s']:.1f}",
            "output_tokens": NONE if row["output_tokens"] is None else row["output_tokens"],
            "cost_usd": NONE if row["cost_usd"] is None else f"${row['cost_usd']:.4f}",
            "error": row["error"] or ""}


def table(rows: list[dict], wall_s: float) -> dict:
    """The comparison table as a display bundle (HTML and aligned text), human headers. Sample
    shows only with --repeat, Error only when a run failed."""
    from .tables import bundle

    names = [n for n in HEADERS if (n != "sample" or any(r["sample"] > 1 for r in rows))
             and (n != "error" or any(r["error"] for r in rows))]
    cells = [_cells(row) for row in rows]
    caption = f"{len(rows)} run{'s' * (len(rows) != 1)} in {wall_s:.2f} s wall time"
    if any(r["load_s"] for r in rows):
        caption += " · first token and tokens/s exclude the model load"
    if any(r["cached"] for r in rows):
        caption += " · cached answers took no model time: nothing to time or chart"
    return bundle([HEADERS[n] for n in names], [[c[n] for n in names] for c in cells], caption)


def _timed(rows: list[dict]) -> list[dict]:
    """The runs a model answered (not failed, not from the cache): the ones with timings to draw."""
    return [r for r in rows if r["total_s"] is not None and r["ttft_s"] is not None and not r["error"]
            and not r["cached"]]


def chart(rows: list[dict]) -> bytes | None:
    """A PNG: per run, a bar of where its time went (model load, to first token, generating) and
    one of its tokens per second, each labelled with its value. None when no run has timings."""
    drawn = figure(rows)
    if drawn is None:
        return None
    import io

    buffer = io.BytesIO()
    drawn.savefig(buffer, format="png", dpi=100, transparent=True)
    return buffer.getvalue()


def figure(rows: list[dict]):
    """The chart's matplotlib Figure (None when no run has timings)."""
    done = _timed(rows)
    if not done:
        return None
    from matplotlib.figure import Figure  # no pyplot: no global state, works in any backend

    labels = [chart_label(_name(r)) + (f" #{r['sample']}" if r["sample"] > 1 else "") for r in done]
    loads = [r["load_s"] or 0.0 for r in done]
    firsts = [max(r["ttft_s"], 0.0) for r in done]
    generating = [max(r["total_s"] - load - first, 0.0) for r, load, first in zip(done, loads, firsts)]
    speeds = [r["tokens_per_s"] or 0.0 for r in done]

    drawn = Figure(figsize=(8.4, 1.2 + 0.42 * len(done)), layout="constrained")
    times, speed = drawn.subplots(1, 2, width_ratios=[2.4, 1], sharey=True)
    rows_at = list(range(len(done)))
    if any(loads):
        times.barh(rows_at, loads, color=LOAD, label="model load", height=0.6)
    times.barh(rows_at, firsts, left=loads, color=FIRST_TOKEN, label="to first token", height=0.6)
    times.barh(rows_at, generating, left=[a + b for a, b in zip(loads, firsts)], color=GENERATING,
               label="generating", height=0.6)
    ends = [a + b + c for a, b, c in zip(loads, firsts, generating)]
    for y, end, first, load in zip(rows_at, ends, firsts, loads):
        said = f"{end:.2f} s · first token {first:.2f} s" + (f" · load {load:.2f} s" if load else "")
        times.annotate(said, (end, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8,
                       color=TEXT)
    times.set_xlim(0, max(ends) * 1.9 or 1)  # room for the labels at the bars' ends
    times.set_xlabel("seconds", color=TEXT)
    speed.barh(rows_at, speeds, color=SPEED, height=0.6)
    for y, value in zip(rows_at, speeds):
        speed.annotate(f"{value:.1f}" if value else NONE, (value, y), xytext=(4, 0), textcoords="offset points",
                       va="center", fontsize=8, color=TEXT)
    speed.set_xlim(0, max(speeds) * 1.35 or 1)
    speed.set_xlabel("tokens / s", color=TEXT)
    times.set_yticks(rows_at, labels, fontsize=9)
    times.invert_yaxis()  # the first model on top, as in the table
    for axis in (times, speed):
        axis.set_facecolor("none")
        axis.tick_params(colors=TEXT, labelcolor=TEXT, labelsize=8)
        axis.tick_params(axis="y", length=0, labelsize=9)
        for side, spine in axis.spines.items():
            spine.set_visible(side == "bottom")
            spine.set_color(TEXT)
    # above the plot area, outside it: it never covers a bar
    drawn.legend(loc="outside upper left", ncols=3, frameon=False, fontsize=8, labelcolor=TEXT)
    return drawn
