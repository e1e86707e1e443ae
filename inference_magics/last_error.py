"""The last exception a notebook cell raised, for `%infer --fix`: its type and message, the
traceback frames inside the notebook, and the failing cell's source, as a prompt.

The notebook layer calls `remember_run` after every cell (IPython's post_run_cell event) so our
own errors (a refused prompt, a usage line) and interrupts never replace the user's last error.
This is text sent to a model like any prompt: the policy checks it (a message may carry values).
"""
from __future__ import annotations

import re
import traceback
from dataclasses import dataclass

MAX_SOURCE_CHARS = 12_000
MAX_MESSAGE_CHARS = 2_000
# how ipykernel and IPython name a cell's code: /tmp/ipykernel_123/456.py, <ipython-input-3-abc>, <cell line: 2>
_CELL_FILE = re.compile(r"(?:ipykernel_\d+[/\\]\d+\.py|<ipython-input-\d+-[0-9a-f]+>)$")

INSTRUCTION = ("This notebook cell raised an exception. Explain briefly why it happened, then give the whole "
               "corrected cell as one complete ```python code block. Keep what the cell was meant to do.")


@dataclass(frozen=True)
class LastError:
    type_name: str
    message: str
    frames: tuple[str, ...]   # the traceback's frames inside the notebook, formatted, outermost first
    library_frames: int       # frames outside the notebook (library code), summarised
    raised_in: str            # where it was raised, when that is outside the notebook
    cell_source: str
    execution_count: int | None = None

    def headline(self) -> str:
        """Type and cell only: the message may hold a value (a secret) that the output must not repeat."""
        where = f" in cell [{self.execution_count}]" if self.execution_count else ""
        return f"{self.type_name}{where}"

    def prompt(self, question: str = "") -> str:
        parts = [INSTRUCTION]
        if question.strip():
            parts.append(f"The user also asks: {question.strip()}")
        from .privacy import cut_point  # never half a secret: the policy judges only what is kept

        source = self.cell_source
        if len(source) > MAX_SOURCE_CHARS:
            kept = cut_point(source, MAX_SOURCE_CHARS)
            source = source[:kept] + f"\n# … {len(self.cell_source) - kept:,} more characters"
        parts.append(f"The failing cell:\n```python\n{source.rstrip()}\n```")
        trace = list(self.frames)
        if self.library_frames:
            trace.append(f"  … then {self.library_frames} frame{'s' if self.library_frames != 1 else ''} in "
                         f"library code, raised in {self.raised_in}")
        message = self.message if len(self.message) <= MAX_MESSAGE_CHARS else \
            self.message[:cut_point(self.message, MAX_MESSAGE_CHARS)] + " …"
        parts.append("Traceback (the frames in this notebook):\n" + "\n".join(trace) + f"\n{self.type_name}: {message}")
        return "\n\n".join(parts)


_last: LastError | None = None

# errors that are ours or the user's doing, not a bug to fix: they never replace the last error
_SKIPPED = ("KeyboardInterrupt", "UsageError", "InferenceInterrupted", "SystemExit")


def remember_run(result, cell_names: dict | None = None) -> None:
    """IPython's post_run_cell: keep the error of a failed cell (an ExecutionResult, duck-typed)."""
    exc = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
    if exc is None or _is_ours(exc):
        return
    info = getattr(result, "info", None)
    remember(exc, getattr(info, "raw_cell", "") or "", getattr(result, "execution_count", None), cell_names)


def remember(exc: BaseException, cell_source: str, execution_count: int | None = None,
             cell_names: dict | None = None) -> None:
    global _last
    _last = describe(exc, cell_source, execution_count, cell_names)


def last() -> LastError | None:
    return _last


def describe(exc: BaseException, cell_source: str, execution_count: int | None = None,
             cell_names: dict | None = None) -> LastError:
    names = cell_names or {}
    frames, library, raised_in = [], 0, ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if _CELL_FILE.search(frame.filename or ""):
            count = names.get(frame.filename)
            # the failing cell by role, not number: counts differ between front ends (nbval, nbclient,
            # JupyterLab), and the same error should make the same request (the response cache's key)
            cell = ("The failing cell" if count is not None and count == execution_count
                    else f"Cell In[{count}]" if count else "a notebook cell")
            frames.append(f'  {cell}, line {frame.lineno}, in {frame.name}\n    {(frame.line or "").strip()}')
        elif frames:  # frames before the first notebook frame are IPython's own machinery
            library += 1
            raised_in = f"{_short_path(frame.filename)}:{frame.lineno} ({frame.name})"
    if isinstance(exc, SyntaxError) and not frames:
        frames.append(f"  line {exc.lineno}: {(exc.text or '').rstrip()}")
    try:
        message = str(exc)
    except Exception:  # a user exception's __str__ may raise anything
        message = "(its message could not be read)"
    return LastError(type(exc).__name__, message, tuple(frames), library, raised_in, cell_source, execution_count)


def _is_ours(exc: BaseException) -> bool:
    from .errors import InferenceError

    return isinstance(exc, InferenceError) or type(exc).__name__ in _SKIPPED


def _short_path(path: str) -> str:
    parts = re.split(r"[/\\]", path or "")
    if "site-packages" in parts:
        parts = parts[parts.index("site-packages") + 1:]
    return "/".join(parts[-3:])
