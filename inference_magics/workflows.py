"""Two workflows of the original design, as API functions the magics wrap (the third, the
experiment, is experiments.py):

    review(code)            a structured code review, kept on this machine by default
    summarize(text)         map-reduce over chunks that fit the model's context
"""
from __future__ import annotations

import os
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import api, telemetry
from . import settings as settings_module
from .conversation import CHARS_PER_TOKEN, context_tokens
from .errors import ConfigError, InferenceError, InferenceInterrupted

REVIEW_SYSTEM = """You are a senior code reviewer. Review the code the user sends (its lines are numbered).
Answer in Markdown with exactly these sections, in this order:
## Summary
What the code does, in two or three sentences.
## Bugs
Each bug as a bullet starting with the line reference (e.g. "L12:"), what goes wrong, and why. "None found." if none.
## Security
Injection, secrets, unsafe input handling, with line references. "None found." if none.
## Style
Naming, structure, idioms, with line references.
## Suggested patch
One fenced diff or code block fixing the most important problems."""

LENGTHS = {"short": "in two or three sentences", "medium": "in about one paragraph of 5-8 sentences",
           "long": "thoroughly, in several paragraphs"}
SHAPES = {"bullets": "as a bulleted list of the key points", "paragraph": "as flowing prose"}


MAX_FILE_BYTES = 5_000_000  # --file: about 1.2 M tokens, far more than any model reads in one go


def read_input_file(path: str) -> str:
    """The text of a --file: a regular file of at most MAX_FILE_BYTES (read with that bound, so a
    device, a FIFO or a file still growing can never exhaust memory or hang the cell)."""
    where = Path(path).expanduser()
    try:
        # O_NONBLOCK: opening a FIFO with no writer would block; the check below refuses it anyway
        fd = os.open(where, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError(f"cannot read --file {path!r}: {exc.strerror} — check the path.") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a device, pipe or socket"
            raise ConfigError(f"--file {path!r} is {kind}, not a regular file — give the path of a text file.")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"--file {path!r} is larger than {MAX_FILE_BYTES / 1e6:g} MB, the limit for one cell — "
                          "split it, or pass the part you need with --var.")
    return data.decode("utf-8", errors="replace")


def numbered(code: str) -> str:
    lines = code.splitlines() or [""]
    width = len(str(len(lines)))
    return "\n".join(f"{i:>{width}} | {line}" for i, line in enumerate(lines, 1))


def review_stream(code: str, *, model=None, backend=None, **options) -> api.Stream:
    if not code.strip():
        raise ConfigError("there is no code to review — put it in the cell, or use --file PATH or --var NAME.")
    return api.stream(f"Review this code:\n\n```\n{numbered(code)}\n```", system=REVIEW_SYSTEM, model=model,
                      backend=backend, task="code", keep_local="code review stays on this machine by default",
                      **options)


def review(code: str, **options) -> api.Result:
    """A structured review (summary, bugs with line references, security, style, suggested patch)."""
    return review_stream(code, **options).each(lambda text: None)


# --- summarization -------------------------------------------------------------------------------
def _chunk(text: str, size: int) -> list[str]:
    """Pieces of at most `size` characters, cut at paragraph, then line, then sentence boundaries."""
    pieces, rest = [], text.strip()
    while len(rest) > size:
        window = rest[:size]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(". "))
        cut = cut + 1 if cut > size // 3 else size
        pieces.append(rest[:cut].strip())
        rest = rest[cut:].strip()
    return pieces + ([rest] if rest else [])


def _instruction(length: str, shape: str) -> str:
    if length not in LENGTHS:
        raise ConfigError(f"--length must be one of {', '.join(LENGTHS)}, not {length!r}.")
    if shape not in SHAPES:
        raise ConfigError(f"the summary format must be one of {', '.join(SHAPES)}, not {shape!r}.")
    return f"Summarize the text below {LENGTHS[length]}, {SHAPES[shape]}. Keep names, numbers and conclusions."


def summarize_stream(text: str, *, length="medium", shape="bullets", model=None, backend=None, progress=None,
                     **options) -> api.Stream:
    """Map-reduce: text that would not fit the model's context is cut into chunks, each chunk is
    summarized (with a progress bar), and the partial summaries are merged — again in rounds if
    they still do not fit. Returns the stream of the final summary; `.chunks` says how many."""
    if not text or not text.strip():
        raise ConfigError("there is no text to summarize — put it in the cell, or use --file PATH or --var NAME.")
    instruction = _instruction(length, shape)
    route = api.route(text, model=model, backend=backend)  # the whole text: the privacy guard sees all of it
    # every request of the job goes where the whole document may go, even a chunk without the secret
    choice = dict(model=model, backend=backend,
                  keep_local=route.reason if route.private and not (model or backend) else None)
    budget = int(context_tokens(route.backend, settings_module.load()) * 0.6) * CHARS_PER_TOKEN
    parts = _chunk(text, budget)
    chunks = len(parts)
    notices = []
    trace = telemetry.begin("summarize", chunks=chunks)  # every step (chunk, merge, final) is its child
    try:
        for _ in range(4):  # each round shrinks the text; four rounds cover any document we can hold
            if len(parts) == 1:
                break
            partials = _map(parts, choice=choice, progress=progress, trace=trace, **options)
            empty = [i for i, partial in enumerate(partials) if not partial.strip()]
            if empty:  # said plainly; the part's opening lines stand in, so the merge still covers it
                notices.append(f"the model returned an empty summary for {len(empty)} of {len(parts)} parts "
                               f"(part {', '.join(str(i + 1) for i in empty)}); their opening lines stand in for "
                               "them.")
                partials = [_opening(parts[i]) if i in empty else partial for i, partial in enumerate(partials)]
            parts = _chunk("\n\n".join(f"Part {i}:\n{p}" for i, p in enumerate(partials, 1)), budget)
            instruction = (_instruction(length, shape) + f" The text is {len(partials)} partial summaries of one "
                           "long document, in order; merge them.")
        running = trace.run(api.stream, f"{instruction}\n\n---\n{parts[0]}", **choice, **options)
    finally:
        trace.end()  # the final step's span (it streams later) still names this one as its parent
    running.chunks = chunks
    running.result.notices.extend(notices)
    return running


def _opening(text: str, limit: int = 600) -> str:
    """The first sentences of a text, up to `limit` characters: what stands in for a part the
    model gave no summary of."""
    head = " ".join(text.split())[:limit]
    cut = head.rfind(". ")
    return head[:cut + 1] if cut > limit // 3 else head


def _map(chunks: list[str], *, choice: dict, progress, trace=telemetry.OFF, **options) -> list[str]:
    from .progress import progress_bar

    bar = progress_bar(len(chunks), True if progress is None else progress, label="summarizing", unit="chunk")
    ask = _instruction("medium", "bullets")
    results: list[str] = [""] * len(chunks)

    def one(i: int) -> None:
        results[i] = api.infer(f"{ask}\n\n---\n{chunks[i]}", **choice, **options).text
        if bar is not None:
            bar.update(1)

    pool = ThreadPoolExecutor(max_workers=2)  # a local server serves a couple of requests at once
    try:
        for future in [pool.submit(trace.run, one, i) for i in range(len(chunks))]:
            future.result()
    except (KeyboardInterrupt, InferenceError) as exc:
        pool.shutdown(wait=False, cancel_futures=True)  # queued chunks never start
        if isinstance(exc, KeyboardInterrupt):
            raise InferenceInterrupted(None) from None
        raise
    finally:
        pool.shutdown(wait=False)
        if bar is not None:
            bar.close()
    return results


def summarize(text: str, **options) -> api.Result:
    return summarize_stream(text, **options).each(lambda piece: None)
